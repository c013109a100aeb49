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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template")
    parser.add_argument("--bucket", default="ptc-artifacts")
    parser.add_argument("--key", default="functions.zip")
    parser.add_argument("--region", default="us-east-1", help="the region's partition goes into ARNs")
    args = parser.parse_args()
    os.environ["AWS_DEFAULT_REGION"] = args.region  # samtranslator reads it through boto3

    with open(args.template, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    code = {"Bucket": args.bucket, "Key": args.key}
    template.get("Globals", {}).get("Function", {})["CodeUri"] = code
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            if "CodeUri" in resource.get("Properties", {}):
                resource["Properties"]["CodeUri"] = code
    out = transform(template, {}, NoManagedPolicies(), passthrough_metadata=True)
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
