"""The SAM template as the plain CloudFormation that AWS deploys, transformed offline.

Run by .venv-infra/bin/python (aws-sam-translator comes with aws-sam-cli):

    sam_transform.py TEMPLATE [--bucket B] [--key K] [--region R] > transformed.json

This is the `AWS::Serverless-2016-10-31` transform CloudFormation applies at deploy time,
done here by the same library (samtranslator) without an AWS account: the functions'
`CodeUri` (a local folder, which `sam package` would upload) is replaced by the S3 object
s3://B/K, the region (for the partition in ARNs) is --region, and managed policies are
looked up in an empty map (the template names none; SAM adds AWSLambdaBasicExecutionRole
by ARN). A SAM resource's Metadata (checkov's skips) is copied onto the resources generated
from it, so the skips hold on the output too. Parameters are not resolved: conditions and
`!Ref`s stay in the output for CloudFormation to resolve.
"""

import argparse
import json
import os
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """The managed policy loader samtranslator asks for policy names it does not know."""

    def load(self):
        return {}


def transformed(template: dict, region: str = "us-east-1", parameters: dict | None = None,
                code: dict | str | None = None) -> dict:
    """`template` (parsed, SAM) after the transform, offline; every tool of the stack that
    needs the deployed shape (template.py, event_routes.py, cfn_deploy.py through main) calls
    this one. `code` is the S3 location put in place of each function's local `CodeUri`."""
    os.environ.setdefault("AWS_DEFAULT_REGION", region)  # samtranslator reads it through boto3
    code = code or {"Bucket": "ptc-artifacts", "Key": "functions.zip"}
    template.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = code
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            props = resource.setdefault("Properties", {})
            if "CodeUri" in props:
                props["CodeUri"] = code
    return transform(template, parameters or {}, NoManagedPolicies(), passthrough_metadata=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template")
    parser.add_argument("--bucket", default="ptc-artifacts")
    parser.add_argument("--key", default="functions.zip")
    parser.add_argument("--region", default="us-east-1", help="the region's partition goes into ARNs")
    args = parser.parse_args()
    os.environ["AWS_DEFAULT_REGION"] = args.region

    with open(args.template, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    out = transformed(template, args.region, code={"Bucket": args.bucket, "Key": args.key})
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
