"""The stack's accounts: the cache account (the one every test used so far) and two consumer
accounts whose clusters pull through its cache (issue 17, "SharedTooling").

moto keeps one set of backends per account and finds the account of a request from its
access key (`moto.iam.models.get_account_id_from`: the key's IAM backend; an unknown key is
moto's default account, 123456789012, the cache account). `sts:AssumeRole` of a role ARN in
another account returns temporary credentials of THAT account (moto's STS
`_create_access_key`), so a consumer's credentials are those of a role in its account
assumed through the stack's STS. moto checks neither that the role exists nor its trust
policy; the role is created here (with a trust policy naming the cache account) so that its
identity policies exist to be evaluated.

The organisation: the cache account and CONSUMER_IN_ORG are members of ORGANIZATION_ID,
CONSUMER_OUTSIDE_ORG is not (so a grant on `aws:PrincipalOrgID` can be seen to include one
consumer and exclude the other). A stand-in value for `aws:PrincipalOrgID` only; moto's
Organizations API knows nothing of it.
"""

from __future__ import annotations

import json
import os
import re

from iam_eval import Caller, parse_policy

CONSUMER_IN_ORG = "222233334444"
CONSUMER_OUTSIDE_ORG = "333344445555"
CONSUMER_ACCOUNTS = (CONSUMER_IN_ORG, CONSUMER_OUTSIDE_ORG)
ORGANIZATION_ID = "o-ptcstack01"
PARTITION = "aws"
ACCESS_KEY_RE = re.compile(r"Credential=([^/,\s]+)/")

# The identity policy a cluster role needs to pull through another account's cache: the
# node-role example of issue 17 (pull, import, create) plus GetAuthorizationToken, on every
# resource. A default for tests that are not about the consumer's own policy.
CONSUMER_PULL_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Token", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {
            "Sid": "PullThroughCache",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchImportUpstreamImage",
                "ecr:CreateRepository",
            ],
            "Resource": "*",
        },
    ],
}


def access_key_of(headers) -> str | None:
    """The access key id a SigV4 request was signed with (as moto reads it)."""
    match = ACCESS_KEY_RE.search(headers.get("Authorization", ""))
    return match.group(1) if match else None


def account_of(headers, default: str) -> str:
    """The account moto answers a request for, by moto's own precedence
    (moto.core.responses.BaseResponse.get_current_account): MOTO_ACCOUNT_ID, the
    x-moto-account-id header, then the access key's account."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if headers.get("x-moto-account-id"):
        return headers["x-moto-account-id"]
    key = access_key_of(headers)
    if not key:
        return default
    from moto.iam.models import get_account_id_from

    return get_account_id_from(key)


def _iam(account: str):
    from moto.iam.models import iam_backends

    return iam_backends[account][PARTITION]


def _managed_document(policy) -> dict | None:
    for version in getattr(policy, "versions", []):
        if getattr(version, "is_default", False):
            return parse_policy(version.document)
    return None


def _documents(entity) -> list[dict]:
    docs = [parse_policy(text) for text in getattr(entity, "policies", {}).values()]
    docs += [_managed_document(p) for p in getattr(entity, "managed_policies", {}).values()]
    return [d for d in docs if d]


def resolve_caller(account: str, access_key: str | None, organization: dict) -> Caller:
    """The caller behind an access key of `account`: an assumed role (its session ARN, its
    role ARN; its inline and attached policies, the AssumeRole session policy, its
    permissions boundary), an IAM user (its own and its groups' policies, its boundary is
    not read), or, for a key no IAM entity holds, an unknown principal of the account whose
    identity policies are not evaluated."""
    from moto.sts.models import sts_backends

    org_id = organization.get("id") if account in organization.get("accounts", ()) else None
    iam = _iam(account)
    assumed = None
    if access_key:
        assumed = next((r for r in sts_backends[account][PARTITION].assumed_roles if r.access_key_id == access_key), None)
    if assumed is not None:
        arns = [assumed.arn, assumed.role_arn]
        role = None
        try:
            role = iam.get_role_by_arn(assumed.role_arn)
        except Exception:
            name = assumed.role_arn.rsplit("/", 1)[-1]
            role = next((r for r in iam.get_roles() if r.name == name), None)
        identity: tuple = ()
        boundary = None
        if role is not None:
            arns.append(role.arn)
            identity = tuple(_documents(role))
            if role.permissions_boundary_arn:
                try:
                    boundary = _managed_document(iam.get_policy(role.permissions_boundary_arn)) or {}
                except Exception:
                    boundary = {}
        # A role that does not exist has no policies: its session may do nothing.
        session = tuple(d for d in [parse_policy(assumed.policy)] if d)
        return Caller(account=account, arn=assumed.arn, principal_arns=tuple(dict.fromkeys(arns)),
                      org_id=org_id, identity_policies=identity, session_policies=session,
                      permissions_boundary=boundary)
    user = iam.get_user_from_access_key_id(access_key) if access_key else None
    if user is not None:
        docs = _documents(user)
        for group in iam.get_groups_for_user(user.name):
            docs += _documents(group)
        return Caller(account=account, arn=user.arn, principal_arns=(user.arn,), org_id=org_id,
                      identity_policies=tuple(docs))
    return Caller(account=account, arn=f"arn:aws:iam::{account}:root", org_id=org_id, identity_policies=None)


def create_role(account: str, name: str, trusted_account: str, policy: dict | None,
                managed_policy_arns=(), permissions_boundary: str | None = None) -> str:
    """Create (or replace) role `name` in `account`, trusting `trusted_account` to assume it,
    with `policy` as its inline policy (none when None) and the managed policies attached;
    returns its ARN. moto validates the documents (IAMPolicyDocumentValidator)."""
    iam = _iam(account)
    existing = next((r for r in iam.get_roles() if r.name == name), None)
    if existing is not None:
        for arn in list(existing.managed_policies):
            iam.detach_role_policy(arn, name)
        for policy_name in list(existing.policies):
            iam.delete_role_policy(name, policy_name)
        iam.delete_role(name)
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{trusted_account}:root"}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(name, json.dumps(trust), "/", permissions_boundary, "ptc stack: a consumer's cluster role", [], None)
    if policy is not None:
        iam.put_role_policy(name, "ptc-consumer", json.dumps(policy))
    for arn in managed_policy_arns:
        iam.attach_role_policy(arn, name)
    return role.arn
