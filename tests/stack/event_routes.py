"""Which functions an EventBridge event reaches, according to the SAM template's rules.

Two steps, each in the venv that has what it needs:

  rules [TEMPLATE]          (.venv-infra: samtranslator)
      Transforms the SAM template offline (no AWS call: local CodeUri replaced with an S3
      URI, managed-policy loader stubbed) and prints, as JSON, every AWS::Events::Rule with
      an EventPattern: its logical id, pattern, bus, state, the logical id of each Lambda
      target (Targets[].Arn is Fn::GetAtt [Function, Arn]) and whether an
      AWS::Lambda::Permission lets that rule invoke the function. Schedules
      (AWS::Scheduler::Schedule from ScheduleV2, or rules with only a ScheduleExpression)
      are not pattern rules and are left out. TEMPLATE defaults to infra/template.yaml.

  match RULES_JSON EVENT... (.venv: moto)
      Prints {event file: [function logical ids]}: the targets of every enabled rule whose
      pattern matches the event according to moto's EventBridge engine
      (moto.events.models.EventPattern), an implementation independent of this project.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _ref(value: object) -> str | None:
    """The logical id in {"Fn::GetAtt": [Id, Arn]}, {"Fn::GetAtt": "Id.Arn"} or {"Ref": Id}."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return att[0] if isinstance(att, list) else str(att).split(".")[0]
        if "Ref" in value:
            return value["Ref"]
    return None


def rules(template_path: Path) -> list[dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sam_transform import transformed
    from samtranslator.yaml_helper import yaml_parse

    resources = transformed(yaml_parse(template_path.read_text()))["Resources"]
    permissions = {
        (_ref(p["Properties"].get("FunctionName")), _ref(p["Properties"].get("SourceArn")))
        for p in resources.values()
        if p["Type"] == "AWS::Lambda::Permission"
        and p["Properties"].get("Principal") == "events.amazonaws.com"
    }
    out = []
    for rule_id, resource in sorted(resources.items()):
        props = resource.get("Properties", {})
        if resource["Type"] != "AWS::Events::Rule" or "EventPattern" not in props:
            continue
        targets = [_ref(t["Arn"]) for t in props.get("Targets", [])]
        out.append({
            "rule": rule_id,
            "pattern": props["EventPattern"],
            "bus": props.get("EventBusName", "default"),
            "state": props.get("State", "ENABLED"),
            "targets": [
                {"function": t, "permitted": (t, rule_id) in permissions}
                for t in targets
                if t in resources and resources[t]["Type"] == "AWS::Lambda::Function"
            ],
        })
    return out


def match(rules_json: Path, events: list[Path]) -> dict[str, list[str]]:
    from moto.events.models import EventPattern

    loaded = json.loads(rules_json.read_text())
    compiled = [(EventPattern.load(json.dumps(r["pattern"])), r) for r in loaded]
    routes = {}
    for path in events:
        event = json.loads(path.read_text())
        reached = set()
        for pattern, rule in compiled:
            # A disabled rule routes nothing; the template's rules are on the default bus,
            # where AWS service events (and CloudTrail's) are delivered.
            if rule["state"] == "DISABLED" or not pattern.matches_event(event):
                continue
            reached.update(t["function"] for t in rule["targets"] if t["permitted"])
        routes[str(path)] = sorted(reached)
    return routes


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "rules" and len(argv) <= 2:
        path = Path(argv[1]) if len(argv) == 2 else ROOT / "infra/template.yaml"
        print(json.dumps(rules(path), indent=2))
        return 0
    if len(argv) >= 2 and argv[0] == "match":
        print(json.dumps(match(Path(argv[1]), [Path(a) for a in argv[2:]]), indent=2))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
