"""Tests of the stack's accounts, registry policy API and cross-account pull rules
(issue 17, "The local stack"). Run with the stack's venv:

    .venv/bin/python -m unittest discover -s tests/stack -p 'test_*.py'

(`cargo test -p ptc-tests --lib` runs them too: tests/src/lib.rs, `stack_python_tests`.)

The evaluator tests need nothing; the others start one stack in this process (moto, the
registry endpoint, the four upstream registries) and talk to it over HTTP with boto3 and
urllib, as a client would.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import accounts  # noqa: E402
from iam_eval import ALLOW, DENY, Caller, authorize_cross_account, evaluate  # noqa: E402

B, C = accounts.CONSUMER_IN_ORG, accounts.CONSUMER_OUTSIDE_ORG
CACHE = "123456789012"
REGION = "us-east-1"
ORG = accounts.ORGANIZATION_ID
REPO_ARN = f"arn:aws:ecr:{REGION}:{CACHE}:repository/k8s/pause"
ROLE_B = f"arn:aws:iam::{B}:role/node"
SESSION_B = f"arn:aws:sts::{B}:assumed-role/node/s1"
PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
IMPORT = ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"]


def caller_b(identity=None) -> Caller:
    return Caller(account=B, arn=SESSION_B, principal_arns=(SESSION_B, ROLE_B), org_id=ORG,
                  identity_policies=None if identity is None else (identity,))


def policy(*statements) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(principal, actions, resource=None, **extra) -> dict:
    stmt = {"Effect": "Allow", "Principal": principal, "Action": actions, **extra}
    if resource is not None:
        stmt["Resource"] = resource
    return stmt


class EvaluatorTests(unittest.TestCase):
    """iam_eval on its own: the forms the cross-account rules rely on."""

    def decide(self, doc, action="ecr:BatchGetImage", caller=None, resource=REPO_ARN):
        return evaluate([doc], caller or caller_b(), action, resource, True)

    def test_principal_forms(self):
        for principal in ("*", {"AWS": "*"}, {"AWS": B}, {"AWS": f"arn:aws:iam::{B}:root"},
                          {"AWS": ROLE_B}, {"AWS": [C, SESSION_B]}):
            with self.subTest(principal=principal):
                self.assertEqual(self.decide(policy(allow(principal, PULL))), ALLOW)
        for principal in ({"AWS": C}, {"AWS": f"arn:aws:iam::{C}:root"}, {"AWS": f"arn:aws:iam::{B}:role/other"},
                          {"Service": "ecr.amazonaws.com"}, "arn:aws:iam::222233334444:root"):
            with self.subTest(principal=principal):
                self.assertIsNone(self.decide(policy(allow(principal, PULL))))

    def test_actions_wildcards_and_case(self):
        for action in ("ecr:*", "ECR:batchgetimage", "ecr:Batch*", "ecr:BatchGet?mage", "*"):
            with self.subTest(action=action):
                self.assertEqual(self.decide(policy(allow({"AWS": B}, action))), ALLOW)
        self.assertIsNone(self.decide(policy(allow({"AWS": B}, "ecr:BatchImport*"))))
        self.assertIsNone(self.decide(policy({"Effect": "Allow", "Principal": "*", "NotAction": "ecr:Batch*"})))

    def test_resource_wildcards(self):
        self.assertEqual(self.decide(policy(allow("*", PULL, f"arn:aws:ecr:{REGION}:{CACHE}:repository/k8s/*"))), ALLOW)
        self.assertEqual(self.decide(policy(allow("*", PULL, "*"))), ALLOW)
        self.assertIsNone(self.decide(policy(allow("*", PULL, f"arn:aws:ecr:{REGION}:{CACHE}:repository/quay/*"))))
        # ARNs are case-sensitive.
        self.assertIsNone(self.decide(policy(allow("*", PULL, f"arn:aws:ecr:{REGION}:{CACHE}:repository/K8S/*"))))

    def test_deny_overrides_allow(self):
        doc = policy(allow("*", "ecr:*"), {"Effect": "Deny", "Principal": {"AWS": B}, "Action": "ecr:BatchGetImage"})
        self.assertEqual(self.decide(doc), DENY)
        # In another policy too: resource policy allows, identity denies.
        identity = policy({"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
                          {"Effect": "Deny", "Action": "ecr:BatchGetImage", "Resource": "*"})
        problem = authorize_cross_account(caller_b(identity), "ecr:BatchGetImage", REPO_ARN, [policy(allow("*", PULL))])
        self.assertIn("explicit deny in an identity-based policy", problem)

    def test_conditions(self):
        org = policy(allow("*", PULL, Condition={"StringEquals": {"aws:PrincipalOrgID": ORG}}))
        self.assertEqual(self.decide(org), ALLOW)
        outside = Caller(account=C, arn=f"arn:aws:sts::{C}:assumed-role/node/s", org_id=None)
        self.assertIsNone(self.decide(org, caller=outside))
        self.assertEqual(self.decide(policy(allow("*", PULL, Condition={"StringEquals": {"aws:PrincipalAccount": [C, B]}}))), ALLOW)
        self.assertEqual(self.decide(policy(allow("*", PULL, Condition={"StringNotEquals": {"aws:PrincipalOrgID": "o-other"}}))), ALLOW)
        # Condition keys are case-insensitive.
        self.assertEqual(self.decide(policy(allow("*", PULL, Condition={"StringEquals": {"AWS:PrincipalOrgId": ORG}}))), ALLOW)
        # Unsupported operators and keys: the statement does not match, for Allow and Deny.
        for condition in ({"StringLike": {"aws:PrincipalOrgID": "o-*"}}, {"StringEquals": {"aws:PrincipalArn": ROLE_B}}):
            with self.subTest(condition=condition):
                self.assertIsNone(self.decide(policy(allow("*", PULL, Condition=condition))))
                deny = {"Effect": "Deny", "Principal": "*", "Action": "ecr:*", "Condition": condition}
                self.assertEqual(self.decide(policy(allow("*", PULL), deny)), ALLOW)

    def test_both_sides_must_allow(self):
        grant = [policy(allow({"AWS": B}, PULL))]
        self.assertIsNone(authorize_cross_account(caller_b(policy({"Effect": "Allow", "Action": PULL, "Resource": "*"})), "ecr:BatchGetImage", REPO_ARN, grant))
        problem = authorize_cross_account(caller_b(policy({"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"})), "ecr:BatchGetImage", REPO_ARN, grant)
        self.assertEqual(problem, f"User: {SESSION_B} is not authorized to perform: ecr:BatchGetImage on resource: {REPO_ARN} "
                                  "because no identity-based policy allows the ecr:BatchGetImage action")
        problem = authorize_cross_account(caller_b(), "ecr:BatchGetImage", REPO_ARN, [])
        self.assertIn("because no resource-based policy allows the ecr:BatchGetImage action", problem)


# -- against a running stack ------------------------------------------------------


class StackTestCase(unittest.TestCase):
    stack = None
    state_dir = None
    rules = 0

    @classmethod
    def setUpClass(cls):
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        from stack import Stack

        if StackTestCase.stack is None:
            StackTestCase.state_dir = tempfile.mkdtemp(prefix="ptc-stack-pytest-")
            StackTestCase.stack = Stack(StackTestCase.state_dir)
            StackTestCase.stack.start()
        cls.info = StackTestCase.stack.info()

    # boto3 clients ---------------------------------------------------------------
    def client(self, service, creds=None, region=REGION):
        import boto3

        creds = creds or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        return boto3.client(service, endpoint_url=self.info["aws_endpoint"], region_name=region, **creds)

    def control(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.info['aws_endpoint']}/_stack/{path}", data=data, method="GET" if body is None else "POST")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def consumer(self, account=B, policy_doc=accounts.CONSUMER_PULL_POLICY, name=None):
        """A role in `account` with `policy_doc` inline; its credentials (a boto3 kwargs dict)."""
        StackTestCase.rules += 1
        arn = self.control(f"accounts/{account}/roles", {"name": name or f"node-{StackTestCase.rules}", "policy": policy_doc})["arn"]
        creds = self.control("accounts/assume-role", {"role_arn": arn, "session_name": "cluster"})
        return {"aws_access_key_id": creds["access_key_id"], "aws_secret_access_key": creds["secret_access_key"],
                "aws_session_token": creds["session_token"]}

    def new_rule(self, upstream="registry.k8s.io") -> str:
        StackTestCase.rules += 1
        prefix = f"x{StackTestCase.rules}"
        self.client("ecr").create_pull_through_cache_rule(ecrRepositoryPrefix=prefix, upstreamRegistryUrl=upstream)
        return prefix

    def put_registry_policy(self, *statements):
        self.client("ecr").put_registry_policy(policyText=json.dumps(policy(*statements)))

    def tearDown(self):
        try:
            self.client("ecr").delete_registry_policy()
        except Exception:
            pass

    # the registry endpoint ---------------------------------------------------------
    def token(self, creds=None) -> str:
        return self.client("ecr", creds).get_authorization_token()["authorizationData"][0]["authorizationToken"]

    def pull(self, token, name, ref, kind="manifests", method="GET"):
        """(status, body as JSON or bytes) of a registry request with the token."""
        req = urllib.request.Request(f"{self.info['registry_endpoint']}/v2/{name}/{kind}/{ref}", method=method)
        req.add_header("Authorization", f"Basic {token}")
        req.add_header("Accept", ", ".join([
            "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json"]))

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            body = err.read()
            try:
                return err.code, json.loads(body)
            except ValueError:
                return err.code, body

    def assert_denied(self, answer, action, why=None):
        status, body = answer
        self.assertEqual(status, 403, body)
        error = body["errors"][0]
        self.assertEqual(error["code"], "DENIED")
        self.assertIn(f"is not authorized to perform: {action} on resource: arn:aws:ecr:{REGION}:{CACHE}:repository/", error["message"])
        if why:
            self.assertIn(why, error["message"])

    def repository_exists(self, name) -> bool:
        return name in self.stack.backend().repositories

    def first_layer(self, token, name, ref):
        status, body = self.pull(token, name, ref)
        self.assertEqual(status, 200)
        doc = json.loads(body)
        if "manifests" in doc:
            status, body = self.pull(token, name, doc["manifests"][0]["digest"])
            self.assertEqual(status, 200, body)
            doc = json.loads(body)
        return doc["layers"][0]["digest"]


def tearDownModule():
    if StackTestCase.stack is not None:
        StackTestCase.stack.stop()
        shutil.rmtree(StackTestCase.state_dir, ignore_errors=True)


class RegistryPolicyApiTests(StackTestCase):
    def error_code(self, call, **kwargs) -> str:
        from botocore.exceptions import ClientError

        with self.assertRaises(ClientError) as ctx:
            call(**kwargs)
        return ctx.exception.response["Error"]["Code"]

    def test_get_put_delete_per_account_and_region(self):
        ecr = self.client("ecr")
        self.assertEqual(self.error_code(ecr.get_registry_policy), "RegistryPolicyNotFoundException")
        text = json.dumps(policy(allow({"AWS": f"arn:aws:iam::{B}:root"}, IMPORT + ["ecr:ReplicateImage"],
                                       f"arn:aws:ecr:{REGION}:{CACHE}:repository/k8s/*")))
        out = ecr.put_registry_policy(policyText=text)
        self.assertEqual((out["registryId"], out["policyText"]), (CACHE, text))
        self.assertEqual(ecr.get_registry_policy()["policyText"], text)
        # Another region of the same account, and a consumer account: none.
        self.assertEqual(self.error_code(self.client("ecr", region="us-west-2").get_registry_policy), "RegistryPolicyNotFoundException")
        consumer = self.client("ecr", self.consumer())
        self.assertEqual(self.error_code(consumer.get_registry_policy), "RegistryPolicyNotFoundException")
        self.assertEqual(consumer.describe_registry()["registryId"], B)
        self.assertEqual(ecr.describe_registry()["registryId"], CACHE)
        self.assertEqual(ecr.delete_registry_policy()["policyText"], text)
        self.assertEqual(self.error_code(ecr.delete_registry_policy), "RegistryPolicyNotFoundException")

    def test_put_validates(self):
        ecr = self.client("ecr")
        good = allow({"AWS": B}, IMPORT, f"arn:aws:ecr:{REGION}:{CACHE}:repository/k8s/*")
        bad = {
            "not JSON": "{",
            "not an object": "[]",
            "no Statement": json.dumps({"Version": "2012-10-17"}),
            "empty Statement": json.dumps(policy()),
            "no Effect": json.dumps(policy({k: v for k, v in good.items() if k != "Effect"})),
            "no Principal": json.dumps(policy({k: v for k, v in good.items() if k != "Principal"})),
            "no Action": json.dumps(policy({k: v for k, v in good.items() if k != "Action"})),
            "no Resource": json.dumps(policy({k: v for k, v in good.items() if k != "Resource"})),
            "not an ECR action": json.dumps(policy({**good, "Action": "s3:GetObject"})),
            "unknown element": json.dumps(policy({**good, "Actions": "ecr:*"})),
        }
        for reason, text in bad.items():
            with self.subTest(reason=reason):
                self.assertEqual(self.error_code(ecr.put_registry_policy, policyText=text), "InvalidParameterException")
        # A single statement object is a Statement too.
        ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": good}))
        # 10,240 characters at most.
        padded = json.dumps(policy(good))
        padded = padded[:-1] + " " * (10240 - len(padded)) + "}"
        self.assertEqual(len(padded), 10240)
        ecr.put_registry_policy(policyText=padded)
        self.assertEqual(self.error_code(ecr.put_registry_policy, policyText=padded[:-1] + " }"), "InvalidParameterException")

    def test_scope_decides_the_actions(self):
        ecr = self.client("ecr")
        pull = json.dumps(policy(allow({"AWS": B}, PULL, f"arn:aws:ecr:{REGION}:{CACHE}:repository/k8s/*")))
        self.assertEqual(ecr.get_account_setting(name="REGISTRY_POLICY_SCOPE")["value"], "V2")
        ecr.put_registry_policy(policyText=pull)  # V2: every ECR action
        ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V1")
        try:
            self.assertEqual(self.error_code(ecr.put_registry_policy, policyText=pull), "InvalidParameterException")
            ecr.put_registry_policy(policyText=json.dumps(policy(allow({"AWS": B}, IMPORT + ["ecr:ReplicateImage"], "*"))))
            ecr.put_registry_policy(policyText=json.dumps(policy(allow({"AWS": B}, "ecr:*", "*"))))
        finally:
            ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V2")


class AccountsTests(StackTestCase):
    def test_consumer_credentials_are_the_consumers_account(self):
        creds = self.consumer(B)
        self.assertEqual(self.client("sts", creds).get_caller_identity()["Account"], B)
        data = self.client("ecr", creds).get_authorization_token()["authorizationData"][0]
        self.assertEqual(data["proxyEndpoint"], f"https://{B}.dkr.ecr.{REGION}.amazonaws.com")
        # The consumer's registry is its own: no rules, no repositories of the cache account.
        self.new_rule()
        self.assertEqual(self.client("ecr", creds).describe_pull_through_cache_rules()["pullThroughCacheRules"], [])
        self.assertTrue(self.client("ecr").describe_pull_through_cache_rules()["pullThroughCacheRules"])
        self.assertEqual(self.client("sts", self.consumer(C)).get_caller_identity()["Account"], C)

    def test_get_authorization_token_needs_the_identity_grant(self):
        from botocore.exceptions import ClientError

        creds = self.consumer(B, policy({"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": "*"}))
        with self.assertRaises(ClientError) as ctx:
            self.client("ecr", creds).get_authorization_token()
        self.assertEqual(ctx.exception.response["Error"]["Code"], "AccessDeniedException")
        self.assertIn("ecr:GetAuthorizationToken", ctx.exception.response["Error"]["Message"])


class CrossAccountPullTests(StackTestCase):
    def test_first_pull_needs_the_registry_grant(self):
        prefix = self.new_rule()
        name = f"{prefix}/pause"
        token = self.token(self.consumer(B))
        self.assert_denied(self.pull(token, name, "3.9"), "ecr:CreateRepository", "because no resource-based policy allows")
        self.assertFalse(self.repository_exists(name))
        # Only CreateRepository: the import is still missing, and nothing is created.
        self.put_registry_policy(allow({"AWS": B}, "ecr:CreateRepository", f"arn:aws:ecr:{REGION}:{CACHE}:repository/{prefix}/*"))
        self.assert_denied(self.pull(token, name, "3.9"), "ecr:BatchImportUpstreamImage")
        self.assertFalse(self.repository_exists(name))
        # Both registry grants, and the creation template's repository policy for the read.
        self.put_registry_policy(allow({"AWS": B}, IMPORT, f"arn:aws:ecr:{REGION}:{CACHE}:repository/{prefix}/*"))
        self.client("ecr").create_repository_creation_template(
            prefix=prefix, appliedFor=["PULL_THROUGH_CACHE"],
            repositoryPolicy=json.dumps(policy(allow({"AWS": f"arn:aws:iam::{B}:root"}, PULL))))
        status, body = self.pull(token, name, "3.9")
        self.assertEqual(status, 200, body)
        self.assertTrue(self.repository_exists(name))
        layer = self.first_layer(token, name, "3.9")
        self.assertEqual(self.pull(token, name, layer, "blobs")[0], 307)
        # Account C has no grant at all.
        self.assert_denied(self.pull(self.token(self.consumer(C)), name, "3.9"), "ecr:BatchGetImage")

    def test_first_pull_without_a_template_policy_is_imported_then_refused(self):
        prefix = self.new_rule()
        name = f"{prefix}/pause"
        self.put_registry_policy(allow({"AWS": B}, IMPORT, f"arn:aws:ecr:{REGION}:{CACHE}:repository/{prefix}/*"))
        self.assert_denied(self.pull(self.token(self.consumer(B)), name, "3.9"), "ecr:BatchGetImage")
        self.assertTrue(self.repository_exists(name))

    def test_org_condition_grants_members_only(self):
        prefix = self.new_rule()
        self.put_registry_policy(allow("*", IMPORT + PULL, f"arn:aws:ecr:{REGION}:{CACHE}:repository/{prefix}/*",
                                       Condition={"StringEquals": {"aws:PrincipalOrgID": ORG}}))
        self.assertEqual(self.pull(self.token(self.consumer(B)), f"{prefix}/pause", "3.9")[0], 200)
        self.assert_denied(self.pull(self.token(self.consumer(C)), f"{prefix}/coredns/coredns", "v1.11.1"), "ecr:CreateRepository")

    def test_new_tag_needs_the_import_grant(self):
        prefix = self.new_rule()
        name = f"{prefix}/pause"
        tag = f"3.9-{prefix}"
        self.control("upstreams/registry.k8s.io/tag", {"repository": "pause", "from": "3.9", "to": tag})
        self.assertEqual(self.pull(self.token(), name, "3.9")[0], 200)  # the cache account caches 3.9
        self.client("ecr").set_repository_policy(repositoryName=name, policyText=json.dumps(policy(allow({"AWS": B}, PULL))))
        token = self.token(self.consumer(B))
        self.assertEqual(self.pull(token, name, "3.9")[0], 200)
        self.assert_denied(self.pull(token, name, tag), "ecr:BatchImportUpstreamImage")
        # The import grant alone (no CreateRepository: the repository exists) is enough.
        self.put_registry_policy(allow({"AWS": B}, "ecr:BatchImportUpstreamImage", f"arn:aws:ecr:{REGION}:{CACHE}:repository/{prefix}/*"))
        self.assertEqual(self.pull(token, name, tag)[0], 200)
        # Or granted by the repository policy ("...or by using the resource-based repository
        # permissions policy").
        self.client("ecr").delete_registry_policy()
        other = f"{tag}-2"
        self.control("upstreams/registry.k8s.io/tag", {"repository": "pause", "from": "3.9", "to": other})
        self.assert_denied(self.pull(token, name, other), "ecr:BatchImportUpstreamImage")
        self.client("ecr").set_repository_policy(repositoryName=name, policyText=json.dumps(
            policy(allow({"AWS": B}, PULL + ["ecr:BatchImportUpstreamImage"]))))
        self.assertEqual(self.pull(token, name, other)[0], 200)

    def test_cached_pull_needs_the_repository_grant(self):
        prefix = self.new_rule()
        name = f"{prefix}/coredns/coredns"
        cache_token = self.token()
        self.assertEqual(self.pull(cache_token, name, "v1.11.1")[0], 200)
        layer = self.first_layer(cache_token, name, "v1.11.1")
        self.assertEqual(self.pull(cache_token, name, layer, "blobs")[0], 307)
        token = self.token(self.consumer(B))
        # The registry policy's import grants do not let B read.
        self.put_registry_policy(allow({"AWS": B}, IMPORT, "*"))
        self.assert_denied(self.pull(token, name, "v1.11.1"), "ecr:BatchGetImage", "because no resource-based policy allows")
        self.assertEqual(self.pull(token, name, "v1.11.1", method="HEAD")[0], 403)
        self.assert_denied(self.pull(token, name, layer, "blobs"), "ecr:GetDownloadUrlForLayer")
        self.client("ecr").set_repository_policy(repositoryName=name, policyText=json.dumps(policy(allow({"AWS": B}, "ecr:BatchGetImage"))))
        self.assertEqual(self.pull(token, name, "v1.11.1")[0], 200)
        self.assert_denied(self.pull(token, name, layer, "blobs"), "ecr:GetDownloadUrlForLayer")
        self.client("ecr").set_repository_policy(repositoryName=name, policyText=json.dumps(policy(allow({"AWS": B}, PULL))))
        self.assertEqual(self.pull(token, name, layer, "blobs")[0], 307)
        self.assertEqual(self.pull(token, name, layer, "blobs", method="HEAD")[0], 200)

    def test_v2_registry_policy_grants_pulls_v1_does_not(self):
        prefix = self.new_rule()
        name = f"{prefix}/coredns/coredns"
        self.assertEqual(self.pull(self.token(), name, "v1.11.1")[0], 200)
        token = self.token(self.consumer(B))
        self.put_registry_policy(allow({"AWS": B}, PULL, f"arn:aws:ecr:{REGION}:{CACHE}:repository/{prefix}/*"))
        self.assertEqual(self.pull(token, name, "v1.11.1")[0], 200)
        ecr = self.client("ecr")
        ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V1")
        try:
            self.assert_denied(self.pull(token, name, "v1.11.1"), "ecr:BatchGetImage")
        finally:
            ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V2")

    def test_a_deny_wins(self):
        prefix = self.new_rule()
        resource = f"arn:aws:ecr:{REGION}:{CACHE}:repository/{prefix}/*"
        self.put_registry_policy(
            allow("*", IMPORT + PULL, resource),
            {"Sid": "NoB", "Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{B}:root"}, "Action": "ecr:CreateRepository", "Resource": resource})
        self.assert_denied(self.pull(self.token(self.consumer(B)), f"{prefix}/pause", "3.9"), "ecr:CreateRepository",
                           "with an explicit deny in a resource-based policy")
        self.assertEqual(self.pull(self.token(self.consumer(C)), f"{prefix}/pause", "3.9")[0], 200)
        # A Deny in the consumer's own identity policy wins over the cache account's Allow.
        identity = json.loads(json.dumps(accounts.CONSUMER_PULL_POLICY))
        identity["Statement"].append({"Effect": "Deny", "Action": "ecr:BatchGetImage", "Resource": resource})
        self.assert_denied(self.pull(self.token(self.consumer(C, identity)), f"{prefix}/pause", "3.9"), "ecr:BatchGetImage",
                           "with an explicit deny in an identity-based policy")

    def test_the_consumers_identity_policy_must_allow(self):
        prefix = self.new_rule()
        self.put_registry_policy(allow({"AWS": B}, IMPORT + PULL, "*"))
        only_token = policy({"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:BatchImportUpstreamImage"], "Resource": "*"})
        self.assert_denied(self.pull(self.token(self.consumer(B, only_token)), f"{prefix}/pause", "3.9"), "ecr:CreateRepository",
                           "because no identity-based policy allows the ecr:CreateRepository action")
        self.assertEqual(self.pull(self.token(self.consumer(B)), f"{prefix}/pause", "3.9")[0], 200)

    def test_stale_tag_without_import_grant_serves_the_cached_copy(self):
        prefix = self.new_rule()
        name = f"{prefix}/pause"
        self.assertEqual(self.pull(self.token(), name, "3.9")[0], 200)
        self.client("ecr").set_repository_policy(repositoryName=name, policyText=json.dumps(policy(allow({"AWS": B}, PULL))))
        registry = self.stack.registry
        before, registry.refresh_seconds = registry.refresh_seconds, 0
        try:
            self.assertEqual(self.pull(self.token(self.consumer(B)), name, "3.9")[0], 200)
        finally:
            registry.refresh_seconds = before

    def test_same_account_pulls_are_unchanged(self):
        prefix = self.new_rule()
        # No registry policy, no template, no repository policy: the cache account pulls.
        token = self.token()
        self.assertEqual(self.pull(token, f"{prefix}/pause", "3.9")[0], 200)
        layer = self.first_layer(token, f"{prefix}/pause", "3.9")
        self.assertEqual(self.pull(token, f"{prefix}/pause", layer, "blobs")[0], 307)
        self.assertEqual(self.pull(token, f"{prefix}/coredns/coredns", "v1.11.1", method="HEAD")[0], 200)
        # A registry policy that grants consumers changes nothing for it.
        self.put_registry_policy(allow({"AWS": B}, IMPORT, "*"))
        self.assertEqual(self.pull(token, f"{prefix}/coredns/coredns", "v1.11.1")[0], 200)
        denials = [d for d in self.control("registry/denials") if d["account"] == CACHE]
        self.assertEqual(denials, [])


if __name__ == "__main__":
    unittest.main()
