#!/usr/bin/env bash
# Packages infra/template.yaml for CloudFormation StackSets: a template without a Transform
# and without AWS::Serverless::* resources, written to dist/stackset.yaml.
#
# StackSets with service-managed permissions cannot deploy a template that uses transforms or
# macros with the default execution role (AWS CloudFormation User Guide, "Configure a custom
# execution role template for StackSets":
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-custom-execution-role.html,
# and "CloudFormation macros overview":
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-macros-overview.html).
# So the AWS::Serverless-2016-10-31 transform is applied here, offline, by the same library
# CloudFormation runs (samtranslator, installed with aws-sam-cli in .venv-infra by
# scripts/setup.sh). No AWS call is made.
#
# Usage:
#   scripts/package-stackset.sh [-o OUT] [-t TEMPLATE] (--key-prefix PREFIX | BINARY=KEY ...)
#
#   BINARY=KEY         the S3 key of one function's zip (BINARY: validate-rules, prewarm,
#                      lifecycle-fixer, health-metrics); every function needs one;
#   --key-prefix P     the keys not given are P/<binary>.zip;
#   -o OUT             the output (default dist/stackset.yaml);
#   -t TEMPLATE        the SAM template (default infra/template.yaml).
#
# Each function's code is read from the bucket "${ArtifactBucketPrefix}-${AWS::Region}" (a
# parameter of the packaged template): one bucket per Region, since Lambda reads code only
# from a bucket in the function's Region. Fill them with the zips `sam build` makes:
#
#   sam build                               # .aws-sam/build/<Function>/bootstrap
#   for f in ValidateRules:validate-rules Prewarm:prewarm LifecycleFixer:lifecycle-fixer HealthMetrics:health-metrics; do
#     (cd .aws-sam/build/${f%%:*}Function && zip -q -j /tmp/${f##*:}.zip bootstrap)
#     for region in eu-west-1 us-east-1; do
#       aws s3 cp /tmp/${f##*:}.zip s3://my-ptc-artifacts-$region/ptc/1.4.0/${f##*:}.zip
#     done
#   done
#   scripts/package-stackset.sh --key-prefix ptc/1.4.0
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="$root/.venv-infra/bin/python"
if [ ! -x "$python" ]; then
  echo "package-stackset: $python not found: run scripts/setup.sh (it installs aws-sam-cli, which carries samtranslator)" >&2
  exit 2
fi
out="$root/dist/stackset.yaml"
template="$root/infra/template.yaml"
prefix=""
keys=()
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift 2 ;;
    -t) template="$2"; shift 2 ;;
    --key-prefix) prefix="$2"; shift 2 ;;
    -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
    *=*) keys+=("$1"); shift ;;
    *) echo "package-stackset: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$(dirname "$out")"
SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 "$python" - "$template" "$out" "$prefix" "${keys[@]}" <<'PY'
import copy
import json
import os
import sys

import yaml
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

template_path, out_path, prefix, *pairs = sys.argv[1:]
keys = {}
for pair in pairs:
    binary, key = pair.split("=", 1)
    if not key:
        sys.exit(f"package-stackset: {binary}= has no key")
    keys[binary] = key

with open(template_path, encoding="utf-8") as f:
    template = yaml_parse(f.read())
resources = template["Resources"]

BUCKET = {"Fn::Sub": "${ArtifactBucketPrefix}-${AWS::Region}"}
binaries = {}
for logical_id, resource in resources.items():
    if resource.get("Type") != "AWS::Serverless::Function":
        continue
    binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
    if not binary:
        sys.exit(f"package-stackset: {logical_id} has no Metadata.BuildProperties.Binary")
    binaries[logical_id] = binary
unknown = sorted(set(keys) - set(binaries.values()))
if unknown:
    sys.exit(f"package-stackset: no function builds {', '.join(unknown)} (functions: {', '.join(sorted(binaries.values()))})")
missing = sorted(b for b in binaries.values() if b not in keys and not prefix)
if missing:
    sys.exit(f"package-stackset: no S3 key for {', '.join(missing)}: give BINARY=KEY or --key-prefix")
for logical_id, binary in binaries.items():
    key = keys.get(binary) or f"{prefix.rstrip('/')}/{binary}.zip"
    resources[logical_id].setdefault("Properties", {})["CodeUri"] = {"Bucket": copy.deepcopy(BUCKET), "Key": key}
template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)


class NoManagedPolicies:
    """Managed policies are named by ARN in the output; nothing is looked up (no AWS call)."""

    def load(self):
        return {}


out = transform(template, {}, NoManagedPolicies(), passthrough_metadata=True)

# The translator writes the AWS managed policies SAM attaches with the partition of the
# Region it ran for ("arn:aws:iam::aws:policy/..."); a StackSet may also reach another
# partition, so the partition is left to CloudFormation.
for resource in out["Resources"].values():
    arns = resource.get("Properties", {}).get("ManagedPolicyArns")
    if isinstance(arns, list):
        resource["Properties"]["ManagedPolicyArns"] = [
            {"Fn::Sub": "arn:${AWS::Partition}:" + a[len("arn:aws:"):]} if isinstance(a, str) and a.startswith("arn:aws:") else a
            for a in arns
        ]
    # Build hints for `sam build` (BuildMethod, BuildProperties) mean nothing without SAM;
    # checkov's skips stay.
    metadata = resource.get("Metadata")
    if isinstance(metadata, dict):
        metadata.pop("BuildMethod", None)
        metadata.pop("BuildProperties", None)
        if not metadata:
            resource.pop("Metadata")

out["Parameters"]["ArtifactBucketPrefix"] = {
    "Type": "String",
    "AllowedPattern": "^[a-z0-9][a-z0-9.-]{1,40}[a-z0-9]$",
    "Description": "The functions' code is in the bucket <ArtifactBucketPrefix>-<Region> of each Region the StackSet deploys to (see the README, \"The fleet\").",
}
interface = out.get("Metadata", {}).get("AWS::CloudFormation::Interface")
if interface:
    interface["ParameterGroups"].insert(0, {"Label": {"default": "Packaging"}, "Parameters": ["ArtifactBucketPrefix"]})
out["Description"] = out.get("Description", "").rstrip() + " Packaged for CloudFormation StackSets (scripts/package-stackset.sh): no transform."

if "Transform" in out:
    sys.exit("package-stackset: the translator left a Transform")
serverless = sorted(k for k, r in out["Resources"].items() if r.get("Type", "").startswith("AWS::Serverless::"))
if serverless:
    sys.exit(f"package-stackset: still serverless: {', '.join(serverless)}")


class Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


Dumper.add_representer(str, _str)
with open(out_path, "w", encoding="utf-8") as f:
    f.write("# Generated by scripts/package-stackset.sh from infra/template.yaml: do not edit.\n")
    yaml.dump(out, f, Dumper=Dumper, sort_keys=False, width=120, allow_unicode=True)
size = os.path.getsize(out_path)
print(f"package-stackset: {out_path} ({size} bytes, {len(out['Resources'])} resources); functions: "
      + ", ".join(f"{b} <- s3://<ArtifactBucketPrefix>-<Region>/{keys.get(b) or prefix.rstrip('/') + '/' + b + '.zip'}" for b in sorted(binaries.values())))
PY
