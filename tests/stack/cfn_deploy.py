"""Deploys the SAM-transformed template with moto's CloudFormation, in process and offline.

Run by .venv/bin/python (moto comes from tests/stack/requirements.txt):

    cfn_deploy.py TRANSFORMED.json [KEY=VALUE ...]

TRANSFORMED.json is what sam_transform.py prints. The script puts the functions' code
object (s3://ptc-artifacts/functions.zip, a stub `bootstrap`) into moto's S3, creates the
stack with the KEY=VALUE parameters (the others keep their defaults) and prints a JSON
object:

  status, reason  the stack's status, or CREATE_FAILED and the error create_stack raised;
  resources       per logical id: type, physical id, and `by`: "moto" (moto's own
                  CloudFormation model made it), "api" (made here through the service's
                  API, see below) or "ignored" (moto reports it CREATE_COMPLETE, yet nothing
                  was made);
  found           per resource type, how many the services hold, counted through their
                  list/describe APIs, not through the stack;
  role_sids       per IAM role, the statement ids of its inline policies;
  problems        wiring that did not resolve: a schedule, rule or failure destination
                  whose target is not an ARN of something the stack made.

moto's CloudFormation resolves parameters (defaults, Number, CommaDelimitedList),
conditions, Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Split, Fn::If and AWS::NoValue, fails
on a Ref, GetAtt or ${} to a resource or parameter the template lacks, and creates each
resource through its service backend (a function's code object must exist, a role's inline
policies must have names and documents, ...). It does not check AllowedValues,
AllowedPattern or MinValue (LifecycleDays=0 deploys), property names or types against the
resource schemas, IAM policy grammar, schedule expressions (ValidateSchedule=nonsense
deploys), event patterns, or alarm metric math; a GetAtt of an attribute it does not model,
or a Ref to a resource it did not make, gives nothing (the property is dropped) instead of
an error.

Two gaps are filled here, each marked below: moto keeps AWS::NoValue in lists as a null
(CloudFormation drops it), and moto has no model for some types the template uses. Those
types get a small model that creates the resource through the service's API with the
template's properties, so botocore checks them against the API's shapes (names, types,
required members) and moto's backend creates what a real stack would.
"""

import ast
import io
import json
import sys
import zipfile

import boto3
from moto import mock_aws
from moto.cloudformation import parsing
from moto.cloudformation.models import cloudformation_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.common_models import CloudFormationModel

REGION = "us-east-1"
BUCKET, KEY = "ptc-artifacts", "functions.zip"

# Gap 1: CloudFormation drops `Ref: AWS::NoValue` from a list (the template's optional
# watch-list policy); moto leaves a null there and then fails on it.
_clean_json = parsing.clean_json


def _clean_json_without_novalue(value, resources_map):
    out = _clean_json(value, resources_map)
    if isinstance(value, list) and isinstance(out, list):
        return [item for item in out if item is not None]
    return out


parsing.clean_json = _clean_json_without_novalue

# moto's own models, before the ones below are added.
MOTO_TYPES = set(parsing.get_model_map())


def client(service):
    return boto3.client(service, region_name=REGION)


def put_alarm(props, name):
    client("cloudwatch").put_metric_alarm(**{**props, "AlarmName": name})
    return name


def create_schedule(props, name):
    client("scheduler").create_schedule(**{**props, "Name": name})
    return name


def put_event_invoke_config(props, name):
    client("lambda").put_function_event_invoke_config(**props)
    return f"{props['FunctionName']}:{props.get('Qualifier', '$LATEST')}"


def set_queue_policy(props, name):
    for url in props["Queues"]:
        policy = json.dumps(props["PolicyDocument"])
        client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    return name


def set_topic_policy(props, name):
    for arn in props["Topics"]:
        policy = json.dumps(props["PolicyDocument"])
        client("sns").set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=policy)
    return name


def set_bucket_policy(props, name):
    # PutBucketPolicy through moto's S3 (its own policy checks: JSON, a Statement); the
    # bucket must exist, as CloudFormation's handler requires.
    client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"]))
    return props["Bucket"]


def subscribe(props, name):
    out = client("sns").subscribe(**props, ReturnSubscriptionArn=True)
    return out["SubscriptionArn"]


# AWS::ECR::PullTimeUpdateExclusion: moto's ECR has no RegisterPullTimeUpdateExclusion, so
# nothing is called. The properties are checked as ECR would check the call: botocore's own
# input shape of RegisterPullTimeUpdateExclusion (names, types, required members), then the
# PrincipalArn pattern and maxLength of the resource schema and the API model (botocore does
# not check either); a duplicate ARN fails as ECR's ExclusionAlreadyExistsException, the
# 101st as LimitExceededException ("up to 100 exclusions per account").
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ecr-pulltimeupdateexclusion.html
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-time-update-exclusions.html
PULL_TIME_EXCLUSIONS = []


def register_pull_time_exclusion(props, name):
    import re

    import botocore.session
    from botocore.exceptions import ParamValidationError
    from botocore.validate import ParamValidator

    params = {key[:1].lower() + key[1:]: value for key, value in props.items()}
    operation = botocore.session.get_session().get_service_model("ecr").operation_model("RegisterPullTimeUpdateExclusion")
    report = ParamValidator().validate(params, operation.input_shape)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())
    arn = params["principalArn"]
    shape = operation.input_shape.members["principalArn"]
    pattern, max_length = shape.metadata["pattern"], shape.metadata["max"]
    if len(arn) > max_length or not re.fullmatch(pattern, arn, re.ASCII):
        raise ValueError(f"PrincipalArn {arn!r} does not satisfy the pattern {pattern} with at most {max_length} characters")
    if arn in PULL_TIME_EXCLUSIONS:
        raise ValueError(f"ExclusionAlreadyExistsException: the pull time update exclusion for {arn} already exists")
    if len(PULL_TIME_EXCLUSIONS) >= 100:
        raise ValueError("LimitExceededException: at most 100 pull time update exclusions per account")
    PULL_TIME_EXCLUSIONS.append(arn)
    return arn


# Gap 2: types moto's CloudFormation does not model (it would report them created and make
# nothing), with the name property CloudFormation fills in when the template does not.
API_TYPES = {
    "AWS::CloudWatch::Alarm": ("AlarmName", put_alarm),
    "AWS::Scheduler::Schedule": ("Name", create_schedule),
    "AWS::Lambda::EventInvokeConfig": ("", put_event_invoke_config),
    "AWS::SQS::QueuePolicy": ("", set_queue_policy),
    "AWS::SNS::TopicPolicy": ("", set_topic_policy),
    "AWS::SNS::Subscription": ("", subscribe),
    "AWS::ECR::PullTimeUpdateExclusion": ("", register_pull_time_exclusion),
    "AWS::S3::BucketPolicy": ("", set_bucket_policy),
}


def api_model(cfn_type, name_property, create):
    class ApiModel(CloudFormationModel):
        __module__ = "ptc.cfn_deploy"  # moto files its models by the module's second part

        def __init__(self, physical_id):
            self.physical_resource_id = physical_id

        @staticmethod
        def cloudformation_type():
            return cfn_type

        @staticmethod
        def cloudformation_name_type():
            return name_property

        @classmethod
        def has_cfn_attr(cls, attr):
            return False

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            return cls(create(cloudformation_json.get("Properties", {}), resource_name))

        @classmethod
        def update_from_cloudformation_json(cls, *args, **kwargs):
            raise NotImplementedError

        @classmethod
        def delete_from_cloudformation_json(cls, *args, **kwargs):
            pass

    return ApiModel


# Held here: moto finds models as CloudFormationModel.__subclasses__(), weak references.
API_MODELS = [api_model(t, name, create) for t, (name, create) in API_TYPES.items() if t not in MOTO_TYPES]
for _cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
    _cached.cache_clear()


def pages(service, method, key, **kwargs):
    for page in client(service).get_paginator(method).paginate(**kwargs):
        yield from page[key]


def found():
    """How many of each resource type the services hold, asked through their APIs."""
    functions = [f["FunctionName"] for f in pages("lambda", "list_functions", "Functions")]
    aws_lambda, sqs, sns = client("lambda"), client("sqs"), client("sns")
    permissions = 0
    invoke_configs = 0
    for name in functions:
        try:
            permissions += len(json.loads(aws_lambda.get_policy(FunctionName=name)["Policy"])["Statement"])
        except aws_lambda.exceptions.ResourceNotFoundException:
            pass
        invoke_configs += len(aws_lambda.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"])
    queues = sqs.list_queues().get("QueueUrls", [])
    s3 = client("s3")
    buckets = [b["Name"] for b in s3.list_buckets().get("Buckets", []) if b["Name"] != BUCKET]
    bucket_policies = 0
    for bucket in buckets:
        try:
            s3.get_bucket_policy(Bucket=bucket)
            bucket_policies += 1
        except s3.exceptions.ClientError:
            pass
    queue_policies = sum(
        "Policy" in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {})
        for url in queues
    )
    return {
        "AWS::Lambda::Function": len(functions),
        "AWS::Lambda::Permission": permissions,
        "AWS::Lambda::EventInvokeConfig": invoke_configs,
        "AWS::IAM::Role": len(list(pages("iam", "list_roles", "Roles"))),
        "AWS::Events::Rule": len(list(pages("events", "list_rules", "Rules"))),
        "AWS::Scheduler::Schedule": len(list(pages("scheduler", "list_schedules", "Schedules"))),
        "AWS::SQS::Queue": len(queues),
        "AWS::SQS::QueuePolicy": queue_policies,
        "AWS::SNS::Topic": len(list(pages("sns", "list_topics", "Topics"))),
        "AWS::SNS::Subscription": len(list(pages("sns", "list_subscriptions", "Subscriptions"))),
        "AWS::Logs::LogGroup": len(list(pages("logs", "describe_log_groups", "logGroups"))),
        "AWS::CloudWatch::Alarm": len(list(pages("cloudwatch", "describe_alarms", "MetricAlarms"))),
        "AWS::CloudWatch::Dashboard": len(list(pages("cloudwatch", "list_dashboards", "DashboardEntries"))),
        "AWS::S3::Bucket": len(buckets),
        "AWS::S3::BucketPolicy": bucket_policies,
        # No API to ask (moto has none): the ones register_pull_time_exclusion made.
        "AWS::ECR::PullTimeUpdateExclusion": len(PULL_TIME_EXCLUSIONS),
    }


def role_sids():
    """The statement ids of each role's inline policies."""
    iam = client("iam")
    out = {}
    for role in pages("iam", "list_roles", "Roles"):
        sids = []
        for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
            if isinstance(document, str):
                # moto keeps the dict CloudFormation gave it and returns its Python repr
                document = ast.literal_eval(document)
            statements = document["Statement"]
            statements = statements if isinstance(statements, list) else [statements]
            sids += [statement.get("Sid", "") for statement in statements]
        out[role["RoleName"]] = sids
    return out


def problems():
    """Targets that must be ARNs of what the stack made: functions and the failure queue."""
    functions = {f["FunctionArn"] for f in pages("lambda", "list_functions", "Functions")}
    queues = {
        client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for url in client("sqs").list_queues().get("QueueUrls", [])
    }
    out = []
    for entry in pages("scheduler", "list_schedules", "Schedules"):
        target = client("scheduler").get_schedule(Name=entry["Name"])["Target"]
        if target.get("Arn") not in functions:
            out.append(f"schedule {entry['Name']}: target {target.get('Arn')} is not a function")
        if target.get("DeadLetterConfig", {}).get("Arn") not in queues:
            out.append(f"schedule {entry['Name']}: dead letters to {target.get('DeadLetterConfig')}, not a queue")
    for rule in pages("events", "list_rules", "Rules"):
        targets = client("events").list_targets_by_rule(Rule=rule["Name"])["Targets"]
        if not targets:
            out.append(f"rule {rule['Name']}: no target")
        for target in targets:
            if target["Arn"] not in functions:
                out.append(f"rule {rule['Name']}: target {target['Arn']} is not a function")
            if target.get("DeadLetterConfig", {}).get("Arn") not in queues:
                out.append(f"rule {rule['Name']}: dead letters to {target.get('DeadLetterConfig')}, not a queue")
    for arn in functions:
        for config in client("lambda").list_function_event_invoke_configs(FunctionName=arn)["FunctionEventInvokeConfigs"]:
            destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if destination not in queues:
                out.append(f"function {arn}: failures go to {destination}, not a queue")
    return out


def deploy(template, parameters):
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=code.getvalue())

    cfn = client("cloudformation")
    try:
        cfn.create_stack(
            StackName="ptc",
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except Exception as e:  # moto raises instead of rolling back
        return {"status": "CREATE_FAILED", "reason": f"{type(e).__name__}: {e}"}
    stack = cfn.describe_stacks(StackName="ptc")["Stacks"][0]
    made = {r["LogicalResourceId"]: r for r in cfn.list_stack_resources(StackName="ptc")["StackResourceSummaries"]}
    conditions = cloudformation_backends[DEFAULT_ACCOUNT_ID][REGION].stacks[stack["StackId"]].resource_map.lazy_condition_map
    resources = {}
    for logical_id, resource in template["Resources"].items():
        if "Condition" in resource and not conditions[resource["Condition"]]:
            continue  # not part of this stack
        if logical_id in made:
            by = "moto" if resource["Type"] in MOTO_TYPES else "api"
            physical = made[logical_id]["PhysicalResourceId"]
        else:
            by, physical = "ignored", None
        resources[logical_id] = {"type": resource["Type"], "physical_id": physical, "by": by}
    return {
        "status": stack["StackStatus"],
        "reason": stack.get("StackStatusReason"),
        "resources": resources,
        "found": found(),
        "role_sids": role_sids(),
        "problems": problems(),
    }


def main():
    template = json.load(open(sys.argv[1], encoding="utf-8"))
    parameters = dict(arg.split("=", 1) for arg in sys.argv[2:])
    with mock_aws():
        result = deploy(template, parameters)
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
