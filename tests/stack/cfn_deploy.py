"""Deploys the SAM-transformed template with moto's CloudFormation, in process and offline.

Run by .venv/bin/python (moto comes from tests/stack/requirements.txt):

    cfn_deploy.py TEMPLATE [KEY=VALUE ...]

TEMPLATE is what sam_transform.py prints (JSON), or the StackSet template
scripts/package-stackset.sh writes (YAML, no transform). The script puts each function's
code object (the S3Bucket/S3Key of every AWS::Lambda::Function, with `${Parameter}` and
`${AWS::Region}` of a Fn::Sub resolved: s3://ptc-artifacts/functions.zip for the SAM
transform's output, s3://<ArtifactBucketPrefix>-us-east-1/<key> for the StackSet's; a stub
`bootstrap`) into moto's S3, creates the stack with the KEY=VALUE parameters (the others
keep their defaults) and prints a JSON object:

  status, reason  the stack's status, or CREATE_FAILED and the error create_stack raised;
  resources       per logical id: type, physical id, and `by`: "moto" (moto's own
                  CloudFormation model made it), "api" (made here through the service's
                  API, see below) or "ignored" (moto reports it CREATE_COMPLETE, yet nothing
                  was made);
  found           per resource type, how many the services hold, counted through their
                  list/describe APIs, not through the stack;
  role_sids       per IAM role, the statement ids of its inline policies;
  queues          per queue name: the attributes SQS holds (VisibilityTimeout,
                  RedrivePolicy, SqsManagedSseEnabled, MessageRetentionPeriod...);
  tables          per DynamoDB table: key schema, billing mode, SSE, time to live and
                  point-in-time recovery, as DynamoDB describes them;
  event_source_mappings  each mapping as Lambda describes it;
  oam_links       the properties of each AWS::Oam::Link, as checked (see below);
  problems        wiring that did not resolve: a schedule, rule, failure destination or
                  event source mapping whose target or source is not an ARN of something
                  the stack made, a redrive target that is not a queue of the stack, a
                  queue whose visibility timeout is shorter than the timeout of the function
                  it feeds (Lambda refuses that mapping).

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

Three gaps are filled here, each marked below: moto keeps AWS::NoValue in lists as a null
(CloudFormation drops it); moto has no model for some types the template uses (those types
get a small model that creates the resource through the service's API with the template's
properties, so botocore checks them against the API's shapes (names, types, required
members) and moto's backend creates what a real stack would); and moto's
AWS::DynamoDB::Table model drops TimeToLiveSpecification and
PointInTimeRecoverySpecification (they are applied here through DynamoDB's API after the
table is made, as CloudFormation's handler does).
"""

import ast
import io
import json
import re
import sys
import zipfile

import boto3
from moto import mock_aws
from moto.cloudformation import parsing
from moto.cloudformation.models import cloudformation_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.common_models import CloudFormationModel

REGION = "us-east-1"

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


# AWS::Oam::Link: moto has no Observability Access Manager. The properties are checked as
# CreateLink would check them: botocore's input shape (LabelTemplate, ResourceTypes and
# SinkIdentifier required; the resource types from the API's enum), then the sink ARN's form.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-oam-link.html
OAM_LINKS = []


def create_oam_link(props, name):
    import botocore.session
    from botocore.exceptions import ParamValidationError
    from botocore.validate import ParamValidator

    operation = botocore.session.get_session().get_service_model("oam").operation_model("CreateLink")
    report = ParamValidator().validate(props, operation.input_shape)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())
    allowed = set(operation.input_shape.members["ResourceTypes"].member.enum)
    wrong = [t for t in props["ResourceTypes"] if t not in allowed]
    if wrong:
        raise ValueError(f"ResourceTypes {wrong}: not among {sorted(allowed)}")
    if not re.fullmatch(r"arn:[a-z0-9-]+:oam:[a-z0-9-]+:[0-9]{12}:sink/[A-Za-z0-9-]+", props["SinkIdentifier"]):
        raise ValueError(f"SinkIdentifier {props['SinkIdentifier']!r} is not a sink ARN")
    OAM_LINKS.append(props)
    return f"arn:aws:oam:{REGION}:{DEFAULT_ACCOUNT_ID}:link/{len(OAM_LINKS)}"


# Gap 3: moto's table model keeps neither the time to live nor point-in-time recovery.
from moto.dynamodb.models.table import Table as _Table  # noqa: E402

_create_table = _Table.create_from_cloudformation_json.__func__


def _create_table_with_ttl_and_pitr(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    table = _create_table(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    props = cloudformation_json.get("Properties", {})
    dynamodb = boto3.client("dynamodb", region_name=region_name)
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=table.name, TimeToLiveSpecification=ttl)
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr:
        dynamodb.update_continuous_backups(TableName=table.name, PointInTimeRecoverySpecification=pitr)
    return table


_Table.create_from_cloudformation_json = classmethod(_create_table_with_ttl_and_pitr)

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
    "AWS::Oam::Link": ("", create_oam_link),
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


def found(artifacts):
    """How many of each resource type the services hold, asked through their APIs (the
    artifact buckets made for the functions' code are not the stack's)."""
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
    buckets = [b["Name"] for b in s3.list_buckets().get("Buckets", []) if b["Name"] not in artifacts]
    bucket_policies = 0
    for bucket in buckets:
        try:
            s3.get_bucket_policy(Bucket=bucket)
            bucket_policies += 1
        except s3.exceptions.ClientError:
            pass
    # One AWS::SQS::QueuePolicy may cover several queues: count the distinct documents.
    queue_policies = len({
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {}).get("Policy")
        for url in queues
    } - {None})
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
        "AWS::DynamoDB::Table": len(list(pages("dynamodb", "list_tables", "TableNames"))),
        "AWS::Lambda::EventSourceMapping": len(list(pages("lambda", "list_event_source_mappings", "EventSourceMappings"))),
        # No API to ask (moto has none): the ones create_oam_link made.
        "AWS::Oam::Link": len(OAM_LINKS),
    }


def queues():
    """Each queue's attributes, by queue name."""
    sqs = client("sqs")
    out = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        out[url.rsplit("/", 1)[-1]] = attributes
    return out


def tables():
    """Each table as DynamoDB describes it, with its time to live and backups."""
    dynamodb = client("dynamodb")
    out = {}
    for name in pages("dynamodb", "list_tables", "TableNames"):
        table = dynamodb.describe_table(TableName=name)["Table"]
        out[name] = {
            "KeySchema": table["KeySchema"],
            "AttributeDefinitions": table["AttributeDefinitions"],
            "BillingMode": table.get("BillingModeSummary", {}).get("BillingMode"),
            "SSEDescription": table.get("SSEDescription"),
            "TimeToLive": dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"],
            "PointInTimeRecovery": dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
            .get("PointInTimeRecoveryDescription", {}),
        }
    return out


def event_source_mappings():
    return [
        {k: v for k, v in m.items() if k != "LastModified"}
        for m in pages("lambda", "list_event_source_mappings", "EventSourceMappings")
    ]


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
    sqs = client("sqs")
    attributes = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        attributes[a["QueueArn"]] = a
        if "RedrivePolicy" in a:
            target = json.loads(a["RedrivePolicy"]).get("deadLetterTargetArn")
            if target not in queues:
                out.append(f"queue {url}: dead letters to {target}, not a queue of the stack")
    for mapping in pages("lambda", "list_event_source_mappings", "EventSourceMappings"):
        source, function = mapping.get("EventSourceArn"), mapping.get("FunctionArn")
        if function not in functions:
            out.append(f"event source mapping {mapping['UUID']}: function {function} is not a function of the stack")
            continue
        if source not in queues:
            out.append(f"event source mapping {mapping['UUID']}: source {source} is not a queue of the stack")
            continue
        # Lambda refuses a mapping whose function's timeout exceeds the queue's visibility
        # timeout (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
        timeout = client("lambda").get_function_configuration(FunctionName=function)["Timeout"]
        visibility = int(attributes[source]["VisibilityTimeout"])
        if visibility < timeout:
            out.append(f"event source mapping {mapping['UUID']}: queue visibility timeout {visibility} s < function timeout {timeout} s")
    return out


def code_objects(template, parameters):
    """(bucket, key) of each function's code, `${Name}` of a Fn::Sub resolved from the
    parameters (given, else default) and the Region."""
    values = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    values.update(parameters)
    values["AWS::Region"] = REGION

    def resolve(value):
        if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], value["Fn::Sub"])
        if isinstance(value, str):
            return value
        raise ValueError(f"a function's code location cfn_deploy.py cannot resolve: {value}")

    out = set()
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Lambda::Function":
            code = resource["Properties"]["Code"]
            out.add((resolve(code["S3Bucket"]), resolve(code["S3Key"])))
    return sorted(out)


def deploy(template, parameters):
    s3 = client("s3")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    for bucket, key in code_objects(template, parameters):
        if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=code.getvalue())
    artifacts = {bucket for bucket, _ in code_objects(template, parameters)}

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
        "found": found(artifacts),
        "role_sids": role_sids(),
        "queues": queues(),
        "tables": tables(),
        "event_source_mappings": event_source_mappings(),
        "oam_links": OAM_LINKS,
        "problems": problems(),
    }


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    if sys.argv[1].endswith(".json"):
        template = json.loads(text)
    else:
        import yaml

        template = yaml.safe_load(text)  # the packaged template: intrinsics in long form
    parameters = dict(arg.split("=", 1) for arg in sys.argv[2:])
    with mock_aws():
        result = deploy(template, parameters)
    json.dump(result, sys.stdout, indent=1, default=str)
    print()


if __name__ == "__main__":
    main()
