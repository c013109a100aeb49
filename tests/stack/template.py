"""The SAM template as CloudFormation would create it: SAM transform, then intrinsics resolved.

    .venv-infra/bin/python tests/stack/template.py infra/template.yaml \\
        [--param Name=Value ...] [--region us-east-1] [--account 123456789012] [--stack-name ptc]

prints `{"Resources": {...}}`: every resource whose Condition holds, with its properties
resolved. The SAM transform is samtranslator's own, run offline (no AWS credentials: the
managed-policy map is empty, the code location a placeholder S3 object). Then parameters
(defaults, `--param` overrides, checked against AllowedValues/AllowedPattern/MinValue/
MaxValue; CommaDelimitedList and List<...> become lists), pseudo parameters, Conditions and
the intrinsic functions Ref, Fn::If, Fn::Equals, Fn::Not, Fn::And, Fn::Or, Fn::Sub, Fn::Join,
Fn::Split, Fn::Select and Fn::GetAtt are resolved. `Ref AWS::NoValue` removes the key or list
item. Ref and Fn::GetAtt of a resource give a plausible physical value (an SNS topic ARN, a
function name, a queue URL, `arn:aws:lambda:REGION:ACCOUNT:function:STACK-LogicalId`...),
not what CloudFormation would generate (it adds a random suffix). Any other intrinsic, a
Ref to an unknown name or to a resource whose Condition is false stops the tool (exit 1)
with the path where it was found.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any

NO_VALUE = object()  # Ref AWS::NoValue: the key or list item disappears


class TemplateError(Exception):
    pass


def load(path: str) -> dict:
    """The template as plain JSON data, short-form tags (!Ref, !Sub...) in their long form."""
    from cfnlint.decode import decode

    template, errors = decode(path)
    if errors:
        raise TemplateError(f"{path}: {'; '.join(str(e) for e in errors)}")
    return json.loads(json.dumps(template))


def sam_transform(template: dict, params: dict[str, str], region: str, account: str, stack: str) -> dict:
    """samtranslator's transform, offline (sam_transform.py): a placeholder code location,
    no IAM look-up."""
    if template.get("Transform") is None:
        return template
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from sam_transform import transformed

    values = dict(params)
    values.update({"AWS::Region": region, "AWS::AccountId": account, "AWS::StackName": stack, "AWS::Partition": "aws"})
    return transformed(template, region, values, code="s3://bucket/key")


def parameter_values(template: dict, overrides: dict[str, str]) -> dict[str, Any]:
    """Parameter name -> resolved value (a string, or a list for the list types)."""
    declared = template.get("Parameters", {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"--param {', '.join(unknown)}: not a parameter of the template")
    out: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in overrides:
            raw = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            raise TemplateError(f"Parameters.{name}: no default and no --param {name}=...")
        raw = ",".join(str(v) for v in raw) if isinstance(raw, list) else str(raw)
        kind = spec.get("Type", "String")
        if "AllowedValues" in spec and raw not in [str(v) for v in spec["AllowedValues"]]:
            raise TemplateError(f"Parameters.{name}: {raw!r} is not one of {spec['AllowedValues']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], raw):
            raise TemplateError(f"Parameters.{name}: {raw!r} does not match {spec['AllowedPattern']}")
        if kind == "Number":
            try:
                number = float(raw)
            except ValueError:
                raise TemplateError(f"Parameters.{name}: {raw!r} is not a number") from None
            if "MinValue" in spec and number < float(spec["MinValue"]) or "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise TemplateError(f"Parameters.{name}: {raw} is outside [{spec.get('MinValue')}, {spec.get('MaxValue')}]")
        out[name] = [v.strip() for v in raw.split(",")] if kind == "CommaDelimitedList" or kind.startswith("List<") else raw
    return out


class Resolver:
    def __init__(self, template: dict, params: dict[str, Any], region: str, account: str, stack: str):
        self.resources: dict[str, dict] = template.get("Resources", {})
        self.conditions: dict[str, Any] = template.get("Conditions", {})
        self.region, self.account, self.stack = region, account, stack
        self.refs: dict[str, Any] = dict(params)
        self.refs.update({
            "AWS::Region": region, "AWS::AccountId": account, "AWS::StackName": stack, "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com", "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack}/00000000-0000-0000-0000-000000000000",
            "AWS::NotificationARNs": [], "AWS::NoValue": NO_VALUE,
        })
        self.condition_values: dict[str, bool] = {}
        self.naming: set[str] = set()

    # -- conditions -----------------------------------------------------------
    def condition(self, name: str, path: str) -> bool:
        if name not in self.conditions:
            raise TemplateError(f"{path}: unknown condition {name!r}")
        if name not in self.condition_values:
            self.condition_values[name] = bool(self.resolve(self.conditions[name], f"Conditions.{name}", in_condition=True))
        return self.condition_values[name]

    def kept(self, logical_id: str) -> bool:
        name = self.resources[logical_id].get("Condition")
        return name is None or self.condition(name, f"Resources.{logical_id}.Condition")

    def check_rules(self, rules: dict) -> None:
        """CloudFormation's Rules section: every assertion of a rule whose RuleCondition holds
        must hold, or the stack is not created (the AssertDescription is the error).
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html"""
        for name, rule in rules.items():
            when = rule.get("RuleCondition")
            if when is not None and not self.resolve(when, f"Rules.{name}.RuleCondition", in_condition=True):
                continue
            for i, assertion in enumerate(rule.get("Assertions", [])):
                if not self.resolve(assertion["Assert"], f"Rules.{name}.Assertions[{i}]", in_condition=True):
                    raise TemplateError(f"Rules.{name}: {assertion.get('AssertDescription', 'assertion failed')}")

    # -- physical values of resources -------------------------------------------
    def _name(self, logical_id: str, prop: str | None, default: str | None = None) -> str:
        """The resource's name property when it sets one, else STACK-LogicalId (or default)."""
        props = self.resources[logical_id].get("Properties", {})
        if prop and prop in props:
            if logical_id in self.naming:
                raise TemplateError(f"Resources.{logical_id}.Properties.{prop}: refers to its own resource")
            self.naming.add(logical_id)
            try:
                value = self.resolve(props[prop], f"Resources.{logical_id}.Properties.{prop}")
            finally:
                self.naming.discard(logical_id)
            if isinstance(value, str):
                return value
        return default or f"{self.stack}-{logical_id}"

    def ref(self, logical_id: str, path: str) -> Any:
        kind = self.resources[logical_id].get("Type", "")
        r, a = self.region, self.account
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{r}:{a}:{self._name(logical_id, 'TopicName')}"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{r}.amazonaws.com/{a}/{self._name(logical_id, 'QueueName')}"
        if kind == "AWS::Lambda::Function":
            return self._name(logical_id, "FunctionName")
        if kind == "AWS::IAM::Role":
            return self._name(logical_id, "RoleName")
        if kind == "AWS::Logs::LogGroup":
            return self._name(logical_id, "LogGroupName")
        if kind == "AWS::CloudWatch::Alarm":
            return self._name(logical_id, "AlarmName")
        if kind == "AWS::CloudWatch::Dashboard":
            return self._name(logical_id, "DashboardName")
        if kind in ("AWS::Events::Rule", "AWS::Scheduler::Schedule"):
            return self._name(logical_id, "Name")
        if kind == "AWS::S3::Bucket":
            return self._name(logical_id, "BucketName", f"{self.stack}-{logical_id}".lower())
        if kind == "AWS::Lambda::EventInvokeConfig":
            return f"{self.stack}-{logical_id}"
        return self._name(logical_id, None)

    def get_att(self, logical_id: str, attribute: str, path: str) -> Any:
        kind = self.resources[logical_id].get("Type", "")
        r, a = self.region, self.account
        if kind == "AWS::Lambda::Function" and attribute == "Arn":
            return f"arn:aws:lambda:{r}:{a}:function:{self.ref(logical_id, path)}"
        if kind == "AWS::SQS::Queue":
            name = self._name(logical_id, "QueueName")
            found = {"Arn": f"arn:aws:sqs:{r}:{a}:{name}", "QueueName": name, "QueueUrl": self.ref(logical_id, path)}
            if attribute in found:
                return found[attribute]
        if kind == "AWS::SNS::Topic" and attribute in ("TopicArn", "TopicName"):
            arn = self.ref(logical_id, path)
            return arn if attribute == "TopicArn" else arn.rsplit(":", 1)[1]
        if kind == "AWS::IAM::Role" and attribute in ("Arn", "RoleId"):
            name = self.ref(logical_id, path)
            return f"arn:aws:iam::{a}:role/{name}" if attribute == "Arn" else f"AROA{logical_id.upper()[:17]}"
        if kind == "AWS::Logs::LogGroup" and attribute == "Arn":
            return f"arn:aws:logs:{r}:{a}:log-group:{self.ref(logical_id, path)}:*"
        if kind == "AWS::Events::Rule" and attribute == "Arn":
            return f"arn:aws:events:{r}:{a}:rule/{self.ref(logical_id, path)}"
        if kind == "AWS::Scheduler::Schedule" and attribute == "Arn":
            return f"arn:aws:scheduler:{r}:{a}:schedule/default/{self.ref(logical_id, path)}"
        if kind == "AWS::CloudWatch::Alarm" and attribute == "Arn":
            return f"arn:aws:cloudwatch:{r}:{a}:alarm:{self.ref(logical_id, path)}"
        if attribute == "Arn":
            # AWS::Service::Thing -> arn:aws:service:REGION:ACCOUNT:thing/NAME
            _, service, thing = (kind.split("::") + ["", ""])[:3]
            return f"arn:aws:{service.lower()}:{r}:{a}:{thing.lower()}/{self.ref(logical_id, path)}"
        raise TemplateError(f"{path}: Fn::GetAtt {logical_id}.{attribute} ({kind}) is not known to this tool")

    # -- intrinsics --------------------------------------------------------------
    def resolve(self, node: Any, path: str, in_condition: bool = False) -> Any:
        if isinstance(node, list):
            items = [self.resolve(v, f"{path}[{i}]", in_condition) for i, v in enumerate(node)]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref" or key.startswith("Fn::") or (in_condition and key == "Condition"):
                return self.intrinsic(key, arg, f"{path}.{key}", in_condition)
        out = {}
        for key, value in node.items():
            resolved = self.resolve(value, f"{path}.{key}", in_condition)
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out

    def intrinsic(self, key: str, arg: Any, path: str, in_condition: bool) -> Any:
        def res(value: Any, sub: str = "") -> Any:
            return self.resolve(value, path + sub, in_condition)

        def pair(n: int) -> list:
            if not isinstance(arg, list) or len(arg) != n:
                raise TemplateError(f"{path}: expects a list of {n}")
            return arg

        if key == "Ref":
            return self.lookup(arg, path)
        if key == "Condition":
            return self.condition(arg, path)
        if key == "Fn::If":
            name, yes, no = pair(3)
            return res(yes, "[1]") if self.condition(name, path) else res(no, "[2]")
        if key == "Fn::Equals":
            a, b = pair(2)
            return str(res(a, "[0]")) == str(res(b, "[1]"))
        if key == "Fn::Not":
            (a,) = pair(1)
            return not res(a, "[0]")
        if key == "Fn::Contains":  # Rules only: a string among a list of strings
            items, value = pair(2)
            items, value = res(items, "[0]"), res(value, "[1]")
            return str(value) in [str(i) for i in (items if isinstance(items, list) else [items])]
        if key == "Fn::And":
            return all(res(v, f"[{i}]") for i, v in enumerate(arg))
        if key == "Fn::Or":
            return any(res(v, f"[{i}]") for i, v in enumerate(arg))
        if key == "Fn::Sub":
            if isinstance(arg, str):
                return self.sub(arg, {}, path)
            text, variables = pair(2)
            return self.sub(text, {k: res(v, f"[1].{k}") for k, v in variables.items()}, path)
        if key == "Fn::Join":
            delimiter, items = pair(2)
            items = res(items, "[1]")
            if not isinstance(items, list):
                raise TemplateError(f"{path}: the second argument is not a list")
            return delimiter.join(str(v) for v in items)
        if key == "Fn::Split":
            delimiter, text = pair(2)
            return str(res(text, "[1]")).split(delimiter)
        if key == "Fn::Select":
            index, items = pair(2)
            items = res(items, "[1]")
            index = int(res(index, "[0]"))
            if not isinstance(items, list) or not 0 <= index < len(items):
                raise TemplateError(f"{path}: index {index} out of range")
            return items[index]
        if key == "Fn::GetAtt":
            if isinstance(arg, str):
                logical_id, _, attribute = arg.partition(".")
            else:
                logical_id, attribute = pair(2)
                attribute = res(attribute, "[1]")
            self.check_resource(logical_id, path)
            return self.get_att(logical_id, attribute, path)
        raise TemplateError(f"{path}: intrinsic function {key} is not supported by this tool")

    def check_resource(self, logical_id: str, path: str) -> None:
        if logical_id not in self.resources:
            raise TemplateError(f"{path}: unknown resource {logical_id!r}")
        if not self.kept(logical_id):
            raise TemplateError(f"{path}: resource {logical_id} is not created (its Condition is false)")

    def lookup(self, name: str, path: str) -> Any:
        if name in self.refs:
            return self.refs[name]
        self.check_resource(name, path)
        return self.ref(name, path)

    def sub(self, text: str, variables: dict[str, Any], path: str) -> str:
        def one(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = variables[name]
            elif "." in name and name.split(".", 1)[0] not in self.refs:
                logical_id, attribute = name.split(".", 1)
                self.check_resource(logical_id, path)
                value = self.get_att(logical_id, attribute, path)
            else:
                value = self.lookup(name, path)
            if value is NO_VALUE or isinstance(value, (list, dict)):
                raise TemplateError(f"{path}: ${{{name}}} is not a string")
            return str(value)

        return re.sub(r"\$\{([^}]*)\}", one, text)

    def resources_out(self) -> dict[str, dict]:
        out = {}
        for logical_id, resource in self.resources.items():
            if not self.kept(logical_id):
                continue
            body = {k: v for k, v in resource.items() if k != "Condition"}
            out[logical_id] = self.resolve(body, f"Resources.{logical_id}")
        return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template")
    parser.add_argument("--param", action="append", default=[], metavar="Name=Value")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account", default="123456789012")
    parser.add_argument("--stack-name", default="ptc")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--param {item}: expected Name=Value")
        overrides[name] = value
    from samtranslator.model.exceptions import InvalidDocumentException

    try:
        template = load(args.template)
        params = parameter_values(template, overrides)
        raw = {k: ",".join(v) if isinstance(v, list) else v for k, v in params.items()}
        transformed = sam_transform(template, raw, args.region, args.account, args.stack_name)
        resolver = Resolver(transformed, params, args.region, args.account, args.stack_name)
        resolver.check_rules(template.get("Rules", {}))
        resources = resolver.resources_out()
    except TemplateError as err:
        print(f"template.py: {err}", file=sys.stderr)
        return 1
    except InvalidDocumentException as err:
        print(f"template.py: the SAM transform refused the template: {'; '.join(c.message for c in err.causes)}", file=sys.stderr)
        return 1
    json.dump({"Resources": resources}, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
