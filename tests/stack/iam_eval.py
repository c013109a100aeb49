"""A small, explicit IAM policy evaluator: what the stack needs to decide a cross-account
pull through the cache, and nothing more.

Written from the IAM user guide, independent of ptc-core (a bug in the product's reading of
a policy must show up as a test failure, not be shared by the stand-in):
- policy elements (Principal, Action, Resource, Condition and their Not* forms):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html
- evaluation (an explicit Deny in any policy wins; otherwise an Allow is needed):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
- across accounts both sides must allow: the caller's identity-based policies AND a
  resource-based policy of the resource's account:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
- the wording of a denial:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html

What it does not reproduce (said once here, and in the stack's docs):
- Condition: only `StringEquals` / `StringNotEquals` on `aws:PrincipalOrgID` and
  `aws:PrincipalAccount`. Any other operator or key makes the statement NOT match (an Allow
  then grants nothing, a Deny then denies nothing), whatever the real context would be.
- No service control policies, resource control policies, VPC endpoint policies, or
  principal tags; `NotPrincipal` is a plain negation of the Principal forms below.
- Principal forms: "*", {"AWS": "*"}, an account id, `arn:aws:iam::<acct>:root`, and the
  exact ARNs of the caller (its role ARN, its assumed-role session ARN, or its user ARN).
  Service, Federated and CanonicalUser principals never match a caller of the stack.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

ALLOW = "Allow"
DENY = "Deny"
ACCOUNT_RE = re.compile(r"^\d{12}$")
ROOT_RE = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):root$")
STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                  "Resource", "NotResource", "Condition"}


@dataclass(frozen=True)
class Caller:
    """Who makes a request, as far as the evaluator needs to know.

    `identity_policies` is None when the stand-in cannot know them (a key no IAM entity of
    moto holds): they are then not evaluated at all. An empty tuple means "known to be none",
    which denies everything (an IAM entity without policies may do nothing)."""

    account: str
    arn: str  # what a denial names: the session ARN of an assumed role, a user's ARN
    principal_arns: tuple[str, ...] = ()  # the ARNs a Principal element may name to mean it
    org_id: str | None = None
    identity_policies: tuple[dict, ...] | None = None
    session_policies: tuple[dict, ...] = ()  # each must also allow (AssumeRole's Policy)
    permissions_boundary: dict | None = None  # must also allow, when set


def parse_policy(text) -> dict | None:
    """A policy document from its JSON text (or an already parsed document); None when it is
    not a JSON object."""
    if isinstance(text, dict):
        return text
    if not text:
        return None
    try:
        doc = json.loads(text)
    except (TypeError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def statements(doc: dict | None) -> list[dict]:
    """The Statement element: a list of statements or a single one."""
    if not doc:
        return []
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, dict)]


def glob_match(pattern: str, value: str, ignore_case: bool) -> bool:
    """IAM's wildcards: `*` any run of characters, `?` one character. Action names are
    case-insensitive, ARNs are not (IAM JSON policy reference, Action and Resource)."""
    if not isinstance(pattern, str):
        return False
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def action_matches(stmt: dict, action: str) -> bool:
    if "Action" in stmt:
        return any(glob_match(p, action, True) for p in as_list(stmt["Action"]))
    if "NotAction" in stmt:
        return not any(glob_match(p, action, True) for p in as_list(stmt["NotAction"]))
    return False


def resource_matches(stmt: dict, resource: str, resource_based: bool) -> bool:
    """A resource-based policy may leave Resource out: it then means the resource the policy
    is attached to (ECR repository policies are written so). An identity-based policy must
    name it."""
    if "Resource" in stmt:
        return any(glob_match(p, resource, False) for p in as_list(stmt["Resource"]))
    if "NotResource" in stmt:
        return not any(glob_match(p, resource, False) for p in as_list(stmt["NotResource"]))
    return resource_based


def _principal_names_caller(principal, caller: Caller) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for value in as_list(principal.get("AWS")):
        if not isinstance(value, str):
            continue
        if value == "*":
            return True
        if ACCOUNT_RE.match(value):
            if value == caller.account:
                return True
            continue
        root = ROOT_RE.match(value)
        if root:
            if root.group(1) == caller.account:
                return True
            continue
        if value in caller.principal_arns:
            return True
    return False


def principal_matches(stmt: dict, caller: Caller, resource_based: bool) -> bool:
    if not resource_based:
        return True  # an identity-based policy applies to the identity it is attached to
    if "Principal" in stmt:
        return _principal_names_caller(stmt["Principal"], caller)
    if "NotPrincipal" in stmt:
        return not _principal_names_caller(stmt["NotPrincipal"], caller)
    return False


def _context_value(key: str, caller: Caller) -> str | None:
    key = key.lower()
    if key == "aws:principalorgid":
        return caller.org_id
    if key == "aws:principalaccount":
        return caller.account
    return None


SUPPORTED_KEYS = {"aws:principalorgid", "aws:principalaccount"}


def condition_matches(stmt: dict, caller: Caller) -> bool:
    """All operators and keys must hold (AND); a key's values are alternatives (OR). A key
    absent from the context fails StringEquals and satisfies StringNotEquals (IAM condition
    operators: "If the key ... is not present in the request context, the values do not
    match"). Unsupported operators or keys: the statement does not match (see the module
    docstring)."""
    condition = stmt.get("Condition")
    if condition is None:
        return True
    if not isinstance(condition, dict):
        return False
    for operator, clauses in condition.items():
        if operator not in ("StringEquals", "StringNotEquals") or not isinstance(clauses, dict):
            return False
        for key, values in clauses.items():
            if key.lower() not in SUPPORTED_KEYS:
                return False
            actual = _context_value(key, caller)
            hit = actual is not None and actual in [v for v in as_list(values) if isinstance(v, str)]
            if operator == "StringEquals" and not hit:
                return False
            if operator == "StringNotEquals" and hit:
                return False
    return True


def evaluate(docs, caller: Caller, action: str, resource: str, resource_based: bool) -> str | None:
    """DENY when a matching statement denies, ALLOW when one allows and none denies, None
    when nothing applies (an implicit deny)."""
    allowed = False
    for doc in docs:
        for stmt in statements(parse_policy(doc)):
            if not (action_matches(stmt, action) and resource_matches(stmt, resource, resource_based)
                    and principal_matches(stmt, caller, resource_based) and condition_matches(stmt, caller)):
                continue
            if stmt.get("Effect") == DENY:
                return DENY
            if stmt.get("Effect") == ALLOW:
                allowed = True
    return ALLOW if allowed else None


def denial(caller: Caller, action: str, resource: str, why: str) -> str:
    return f"User: {caller.arn} is not authorized to perform: {action} on resource: {resource} {why}"


def authorize_cross_account(caller: Caller, action: str, resource: str, resource_policies) -> str | None:
    """None when a caller of another account may do `action` on `resource`; otherwise the
    message AWS gives. Both sides must allow (cross-account evaluation logic): the resource
    account's resource-based policies (any of them; a Deny in any wins) and the caller's
    identity-based policies, session policies and permissions boundary."""
    resource_results = [evaluate([doc], caller, action, resource, True) for doc in resource_policies]
    if caller.identity_policies is not None:
        if evaluate(caller.identity_policies, caller, action, resource, False) == DENY:
            return denial(caller, action, resource, "with an explicit deny in an identity-based policy")
    if DENY in resource_results:
        return denial(caller, action, resource, "with an explicit deny in a resource-based policy")
    for doc in caller.session_policies:
        verdict = evaluate([doc], caller, action, resource, False)
        if verdict == DENY:
            return denial(caller, action, resource, "with an explicit deny in a session policy")
        if verdict is None:
            return denial(caller, action, resource, f"because no session policy allows the {action} action")
    if caller.permissions_boundary is not None:
        verdict = evaluate([caller.permissions_boundary], caller, action, resource, False)
        if verdict == DENY:
            return denial(caller, action, resource, "with an explicit deny in a permissions boundary")
        if verdict is None:
            return denial(caller, action, resource, f"because no permissions boundary allows the {action} action")
    if ALLOW not in resource_results:
        return denial(caller, action, resource, f"because no resource-based policy allows the {action} action")
    if caller.identity_policies is not None and evaluate(caller.identity_policies, caller, action, resource, False) != ALLOW:
        return denial(caller, action, resource, f"because no identity-based policy allows the {action} action")
    return None


def authorize_identity(caller: Caller, action: str, resource: str) -> str | None:
    """An action on the caller's own account that only its identity-based policies decide
    (GetAuthorizationToken). None when allowed or when the stand-in does not know them."""
    if caller.identity_policies is None:
        return None
    verdict = evaluate(caller.identity_policies, caller, action, resource, False)
    if verdict == DENY:
        return denial(caller, action, resource, "with an explicit deny in an identity-based policy")
    for doc in caller.session_policies:
        if evaluate([doc], caller, action, resource, False) != ALLOW:
            return denial(caller, action, resource, f"because no session policy allows the {action} action")
    if caller.permissions_boundary is not None and evaluate([caller.permissions_boundary], caller, action, resource, False) != ALLOW:
        return denial(caller, action, resource, f"because no permissions boundary allows the {action} action")
    if verdict != ALLOW:
        return denial(caller, action, resource, f"because no identity-based policy allows the {action} action")
    return None
