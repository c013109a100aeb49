"""Tests of the stand-ins of issue 18 ("prewarm's steady state costs nothing"): pull-time
update exclusions (the API and the registry endpoint honouring them), per-repository layers
and the control that removes one, the throttled layer link, big upstream images, and the
CloudFormation model of AWS::ECR::PullTimeUpdateExclusion. Run with the stack's venv:

    .venv/bin/python -m unittest discover -s tests/stack -p 'test_*.py'

(`cargo test -p ptc-tests --lib` runs them too: tests/src/lib.rs, `stack_python_tests`.)

They start their own stack in this process (test_cross_account.py stops its own when its
module ends) and talk to it over HTTP with boto3 and urllib, as a client would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import accounts  # noqa: E402
from test_cross_account import CACHE, REGION, StackTestCase  # noqa: E402

K8S = "registry.k8s.io"
QUAY = "quay.io"


class Issue18Case(StackTestCase):
    """StackTestCase's helpers on a stack of this module's own."""

    stack = None
    state_dir = None

    @classmethod
    def setUpClass(cls):
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        from stack import Stack

        if Issue18Case.stack is None:
            Issue18Case.state_dir = tempfile.mkdtemp(prefix="ptc-stack-issue18-")
            Issue18Case.stack = Stack(Issue18Case.state_dir)
            Issue18Case.stack.start()
        cls.info = Issue18Case.stack.info()

    def tearDown(self):
        pass

    def error_code(self, call, **kwargs) -> str:
        from botocore.exceptions import ClientError

        with self.assertRaises(ClientError) as ctx:
            call(**kwargs)
        return ctx.exception.response["Error"]["Code"]

    def role(self, account=CACHE, name=None) -> tuple[str, dict]:
        """A role in `account` with the pull policy, and its assumed credentials."""
        StackTestCase.rules += 1
        arn = self.control(f"accounts/{account}/roles", {"name": name or f"puller-{StackTestCase.rules}",
                                                         "policy": accounts.CONSUMER_PULL_POLICY})["arn"]
        creds = self.control("accounts/assume-role", {"role_arn": arn, "session_name": "prewarm"})
        return arn, {"aws_access_key_id": creds["access_key_id"], "aws_secret_access_key": creds["secret_access_key"],
                     "aws_session_token": creds["session_token"]}

    def upstream_count(self, host: str, key: str) -> int:
        return self.control(f"upstreams/{host}/counts").get(key, 0)

    def download(self, token, name, digest) -> tuple[int, dict, bytes, float, float]:
        """A layer GET the way a client makes it: the registry's 307, then the redirect
        target. (status, headers, bytes, seconds to the first 64 KiB, seconds in all)."""
        status, body = self.pull(token, name, digest, "blobs")
        self.assertEqual(status, 307, body)
        req = urllib.request.Request(f"{self.info['registry_endpoint']}/v2/{name}/blobs/{digest}")
        req.add_header("Authorization", f"Basic {token}")
        started = time.monotonic()
        with urllib.request.urlopen(req, timeout=60) as resp:  # follows the redirect
            first = resp.read(64 * 1024)
            first_at = time.monotonic() - started
            data = first + resp.read()
            return resp.status, dict(resp.headers), data, first_at, time.monotonic() - started

    def layers_available(self, name, digests) -> dict:
        out = self.client("ecr").batch_check_layer_availability(repositoryName=name, layerDigests=list(digests))
        found = {layer["layerDigest"]: layer["layerAvailability"] for layer in out["layers"]}
        for failure in out["failures"]:
            found[failure["layerDigest"]] = failure["failureCode"]
        return found


def tearDownModule():
    if Issue18Case.stack is not None:
        Issue18Case.stack.stop()
        shutil.rmtree(Issue18Case.state_dir, ignore_errors=True)


class PullTimeExclusionApiTests(Issue18Case):
    """RegisterPullTimeUpdateExclusion / DeregisterPullTimeUpdateExclusion /
    ListPullTimeUpdateExclusions (https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-time-update-exclusions.html)."""

    def test_register_list_deregister_per_account_and_region(self):
        ecr = self.client("ecr", region="eu-west-1")
        arn = f"arn:aws:iam::{CACHE}:role/prewarm"
        self.assertEqual(ecr.list_pull_time_update_exclusions()["pullTimeUpdateExclusions"], [])
        out = ecr.register_pull_time_update_exclusion(principalArn=arn)
        self.assertEqual(out["principalArn"], arn)
        self.assertLess(abs(out["createdAt"].timestamp() - time.time()), 60)
        self.assertEqual(ecr.list_pull_time_update_exclusions()["pullTimeUpdateExclusions"], [arn])
        # "If you try to create an exclusion that already exists, you'll receive an
        # ExclusionAlreadyExistsException error."
        self.assertEqual(self.error_code(ecr.register_pull_time_update_exclusion, principalArn=arn), "ExclusionAlreadyExistsException")
        # Another region of the account, another account: lists of their own.
        self.assertEqual(self.client("ecr", region="eu-west-2").list_pull_time_update_exclusions()["pullTimeUpdateExclusions"], [])
        consumer = self.client("ecr", self.consumer(), region="eu-west-1")
        self.assertEqual(consumer.list_pull_time_update_exclusions()["pullTimeUpdateExclusions"], [])
        self.assertEqual(ecr.deregister_pull_time_update_exclusion(principalArn=arn)["principalArn"], arn)
        self.assertEqual(ecr.list_pull_time_update_exclusions()["pullTimeUpdateExclusions"], [])
        self.assertEqual(self.error_code(ecr.deregister_pull_time_update_exclusion, principalArn=arn), "ExclusionNotFoundException")

    def test_principal_arn_pattern_and_length(self):
        ecr = self.client("ecr", region="eu-west-3")
        longest = f"arn:aws:iam::{CACHE}:role/" + "r" * (200 - len(f"arn:aws:iam::{CACHE}:role/"))
        self.assertEqual(len(longest), 200)
        good = [f"arn:aws:iam::{CACHE}:role/prewarm", f"arn:aws:iam::{CACHE}:user/ci-bot",
                f"arn:aws:iam::{CACHE}:role/service-role/ptc/health+metrics=1,a.b@c-d",
                "arn:aws-cn:iam::210987654321:role/x", "arn:aws-us-gov:iam::210987654321:role/x", longest]
        for arn in good:
            with self.subTest(arn=arn):
                self.assertEqual(ecr.register_pull_time_update_exclusion(principalArn=arn)["principalArn"], arn)
        bad = [longest + "r", f"arn:aws:sts::{CACHE}:assumed-role/prewarm/session", f"arn:aws:iam::{CACHE}:group/admins",
               f"arn:aws:iam::{CACHE}:root", "arn:aws:iam::12345678901:role/x", f"arn:aws:iam::{CACHE}:role/",
               f"arn:aws:iam::{CACHE}:role/a//b", f"arn:aws:iam::{CACHE}:role/caf\u00e9", f"arn:aws:iam::{CACHE}:role/x\n",
               f"arn:AWS:iam::{CACHE}:role/x", "prewarm", ""]
        for arn in bad:
            with self.subTest(arn=arn):
                self.assertEqual(self.error_code(ecr.register_pull_time_update_exclusion, principalArn=arn), "InvalidParameterException")
                self.assertEqual(self.error_code(ecr.deregister_pull_time_update_exclusion, principalArn=arn), "InvalidParameterException")
        self.assertEqual(sorted(ecr.list_pull_time_update_exclusions()["pullTimeUpdateExclusions"]), sorted(good))

    def test_at_most_100_and_paged(self):
        ecr = self.client("ecr", region="ap-southeast-2")
        arns = [f"arn:aws:iam::{CACHE}:role/r{i:03}" for i in range(100)]
        for arn in arns:
            ecr.register_pull_time_update_exclusion(principalArn=arn)
        self.assertEqual(self.error_code(ecr.register_pull_time_update_exclusion, principalArn=f"arn:aws:iam::{CACHE}:role/one-more"),
                         "LimitExceededException")
        # Without maxResults: up to 100 results, no nextToken here.
        out = ecr.list_pull_time_update_exclusions()
        self.assertEqual(out["pullTimeUpdateExclusions"], arns)
        self.assertNotIn("nextToken", out)
        seen, token, pages = [], None, 0
        while True:
            out = ecr.list_pull_time_update_exclusions(maxResults=30, **({"nextToken": token} if token else {}))
            seen += out["pullTimeUpdateExclusions"]
            pages += 1
            token = out.get("nextToken")
            if not token:
                break
        self.assertEqual((seen, pages), (arns, 4))
        # The 100 are per account and region: another region still takes one.
        self.client("ecr", region="ap-southeast-1").register_pull_time_update_exclusion(principalArn=arns[0])
        # Deregistering one makes room again.
        ecr.deregister_pull_time_update_exclusion(principalArn=arns[0])
        ecr.register_pull_time_update_exclusion(principalArn=f"arn:aws:iam::{CACHE}:role/one-more")
        self.assertEqual(self.error_code(ecr.list_pull_time_update_exclusions, nextToken="not-a-token"), "InvalidParameterException")


class PullTimeExclusionPullTests(Issue18Case):
    """"When a role in the exclusion list pulls an image, the pull time remains unchanged. Any
    other role continues to update pull time.\""""

    def last_pull(self, name, tag):
        image = self.client("ecr").describe_images(repositoryName=name, imageIds=[{"imageTag": tag}])["imageDetails"][0]
        return image.get("lastRecordedPullTime")

    def backdate(self, name, days=10):
        self.control("ecr/age", {"repository": name, "pulled_days_ago": days})
        before = self.last_pull(name, "3.9")
        self.assertLess(before, dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days - 1))
        return before

    def test_excluded_pullers_leave_the_pull_time(self):
        prefix = self.new_rule(K8S)
        name = f"{prefix}/pause"
        self.assertEqual(self.pull(self.token(), name, "3.9")[0], 200)
        excluded_arn, excluded = self.role(name=f"prewarm-{prefix}")
        _, other = self.role(name=f"cluster-{prefix}")
        iam = self.client("iam")
        user = iam.create_user(UserName=f"scanner-{prefix}")["User"]["Arn"]
        key = iam.create_access_key(UserName=f"scanner-{prefix}")["AccessKey"]
        user_creds = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        ecr = self.client("ecr")
        ecr.register_pull_time_update_exclusion(principalArn=excluded_arn)
        ecr.register_pull_time_update_exclusion(principalArn=user)
        try:
            before = self.backdate(name)
            # The excluded role (its session's pulls: the role ARN is on the list), GET and HEAD.
            token = self.token(excluded)
            self.assertEqual(self.pull(token, name, "3.9")[0], 200)
            self.assertEqual(self.pull(token, name, "3.9", method="HEAD")[0], 200)
            self.assertEqual(self.last_pull(name, "3.9"), before)
            # The excluded user.
            self.assertEqual(self.pull(self.token(user_creds), name, "3.9")[0], 200)
            self.assertEqual(self.last_pull(name, "3.9"), before)
            # Any other role moves it.
            self.assertEqual(self.pull(self.token(other), name, "3.9")[0], 200)
            after = self.last_pull(name, "3.9")
            self.assertGreater(after, dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))
            # And so does the cache account's own (static) credentials' pull.
            before = self.backdate(name)
            self.assertEqual(self.pull(self.token(), name, "3.9")[0], 200)
            self.assertGreater(self.last_pull(name, "3.9"), before)
            # Once deregistered, the role's pulls count again.
            before = self.backdate(name)
            ecr.deregister_pull_time_update_exclusion(principalArn=excluded_arn)
            self.assertEqual(self.pull(token, name, "3.9")[0], 200)
            self.assertGreater(self.last_pull(name, "3.9"), before)
        finally:
            for arn in (excluded_arn, user):
                try:
                    ecr.deregister_pull_time_update_exclusion(principalArn=arn)
                except Exception:
                    pass

    def test_the_cache_registrys_list_decides(self):
        # The list of another region (or account) of the same ARN does not exclude the pull.
        prefix = self.new_rule(K8S)
        name = f"{prefix}/pause"
        self.assertEqual(self.pull(self.token(), name, "3.9")[0], 200)
        arn, creds = self.role(name=f"prewarm-elsewhere-{prefix}")
        self.client("ecr", region="us-west-2").register_pull_time_update_exclusion(principalArn=arn)
        before = self.backdate(name)
        self.assertEqual(self.pull(self.token(creds), name, "3.9")[0], 200)
        self.assertGreater(self.last_pull(name, "3.9"), before)


class PerRepositoryLayerTests(Issue18Case):
    """Layers are per repository (BatchCheckLayerAvailability answers for one repository)."""

    def test_a_repository_imports_its_own_layers(self):
        a, b = f"{self.new_rule(K8S)}/coredns/coredns", f"{self.new_rule(K8S)}/coredns/coredns"
        token = self.token()
        for name in (a, b):
            self.assertEqual(self.pull(token, name, "v1.11.1")[0], 200)
        manifest = json.loads(self.pull(token, a, "v1.11.1")[1])
        digests = [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]
        self.assertEqual(len(digests), 3)
        key = {d: f"GET /v2/coredns/coredns/blobs/{d}" for d in digests}
        upstream = {d: self.upstream_count(K8S, key[d]) for d in digests}
        for digest in digests:
            status, _, data, _, _ = self.download(token, a, digest)
            self.assertEqual((status, "sha256:" + hashlib.sha256(data).hexdigest()), (200, digest))
        self.assertEqual({d: self.upstream_count(K8S, key[d]) - upstream[d] for d in digests}, {d: 1 for d in digests})
        self.assertEqual(set(self.layers_available(a, digests).values()), {"AVAILABLE"})
        # B has not fetched them: ECR says they are missing there, though A holds them.
        self.assertEqual(set(self.layers_available(b, digests).values()), {"MissingLayerDigest"})
        # B's GET imports each from the upstream, into B.
        for digest in digests:
            self.assertEqual(self.download(token, b, digest)[0], 200)
        self.assertEqual({d: self.upstream_count(K8S, key[d]) - upstream[d] for d in digests}, {d: 2 for d in digests})
        self.assertEqual(set(self.layers_available(b, digests).values()), {"AVAILABLE"})
        # Held now: served from the cache, the upstream is not asked again.
        for digest in digests:
            self.assertEqual(self.download(token, b, digest)[0], 200)
            self.assertEqual(self.pull(token, b, digest, "blobs", method="HEAD")[0], 200)
        self.assertEqual({d: self.upstream_count(K8S, key[d]) - upstream[d] for d in digests}, {d: 2 for d in digests})

        # The remove control: exactly that layer, in exactly that repository.
        removed = digests[1]
        self.assertEqual(self.control("ecr/layers/remove", {"repository": b, "digest": removed}), {"removed": True})
        self.assertEqual(self.control("ecr/layers/remove", {"repository": b, "digest": removed}), {"removed": False})
        self.assertEqual(self.layers_available(b, digests), {digests[0]: "AVAILABLE", removed: "MissingLayerDigest", digests[2]: "AVAILABLE"})
        self.assertEqual(set(self.layers_available(a, digests).values()), {"AVAILABLE"})
        for digest in digests:
            status, _, data, _, _ = self.download(token, b, digest)
            self.assertEqual((status, "sha256:" + hashlib.sha256(data).hexdigest()), (200, digest))
        self.assertEqual({d: self.upstream_count(K8S, key[d]) - upstream[d] for d in digests},
                         {digests[0]: 2, removed: 3, digests[2]: 2})
        self.assertEqual(set(self.layers_available(b, digests).values()), {"AVAILABLE"})
        # Upstream down: a layer the repository does not hold is not served from another's.
        self.control("ecr/layers/remove", {"repository": b, "digest": removed})
        self.control(f"upstreams/{K8S}", {"down": True})
        try:
            self.assertEqual(self.pull(token, b, removed, "blobs")[0], 404)
            self.assertEqual(self.download(token, a, removed)[0], 200)
        finally:
            self.control(f"upstreams/{K8S}", {"down": False})
        self.assertEqual(self.control("ecr/layers/remove", {"repository": "no/such", "digest": removed}), {"removed": False})


class ThrottleTests(Issue18Case):
    def test_blob_downloads_stream_at_the_set_rate(self):
        prefix = self.new_rule(QUAY)
        pushed = self.control(f"upstreams/{QUAY}/image", {"repository": f"big/throttle-{prefix}", "tag": "v1", "layer_bytes": 5_000_000})
        name = f"{prefix}/big/throttle-{prefix}"
        token = self.token()
        self.assertEqual(self.pull(token, name, "v1")[0], 200)
        status, _, data, _, fast = self.download(token, name, pushed["layer_digest"])
        self.assertEqual((status, len(data)), (200, 5_000_000))
        self.assertLess(fast, 3)
        self.assertEqual(self.control("ecr")["blob_bytes_per_second"], 0)
        self.assertEqual(self.control("ecr", {"blob_bytes_per_second": 1_000_000})["blob_bytes_per_second"], 1_000_000)
        try:
            status, headers, data, first, slow = self.download(token, name, pushed["layer_digest"])
        finally:
            self.control("ecr", {"blob_bytes_per_second": 0})
        self.assertEqual(status, 200)
        self.assertEqual(int(headers["Content-Length"]), 5_000_000)
        self.assertEqual("sha256:" + hashlib.sha256(data).hexdigest(), pushed["layer_digest"])
        self.assertGreaterEqual(slow, 4.0)
        self.assertLess(slow, 15.0)
        # It streams: the first chunk comes long before the whole.
        self.assertLess(first, 1.0)
        self.assertEqual(self.control("ecr")["blob_bytes_per_second"], 0)


class BigImageTests(Issue18Case):
    def test_push_and_pull_through_a_big_image(self):
        prefix = self.new_rule(QUAY)
        size = 20_000_000
        started = time.monotonic()
        pushed = self.control(f"upstreams/{QUAY}/image", {"repository": f"big/app-{prefix}", "tag": "v1", "layer_bytes": size})
        self.assertLess(time.monotonic() - started, 20)
        self.assertEqual(set(pushed) >= {"digest", "layer_digest", "layer_bytes"}, True)
        self.assertEqual(pushed["layer_bytes"], size)
        name = f"{prefix}/big/app-{prefix}"
        token = self.token()
        status, body = self.pull(token, name, "v1")
        self.assertEqual(status, 200)
        self.assertEqual("sha256:" + hashlib.sha256(body).hexdigest(), pushed["digest"])
        manifest = json.loads(body)
        self.assertEqual(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json")
        self.assertEqual([(layer["digest"], layer["size"]) for layer in manifest["layers"]], [(pushed["layer_digest"], size)])
        status, _, data, _, _ = self.download(token, name, pushed["layer_digest"])
        self.assertEqual(status, 200)
        self.assertEqual(len(data), size)
        self.assertEqual("sha256:" + hashlib.sha256(data).hexdigest(), pushed["layer_digest"])
        # Incompressible: random bytes.
        import zlib

        self.assertGreater(len(zlib.compress(data[:1_000_000], 1)), 990_000)
        config = self.download(token, name, manifest["config"]["digest"])[2]
        self.assertEqual(json.loads(config)["rootfs"]["diff_ids"], [pushed["layer_digest"]])
        # An upstream behind Bearer auth and credentials takes it too.
        hub = self.control("upstreams/registry-1.docker.io/image", {"repository": f"library/big-{prefix}", "tag": "v1", "layer_bytes": 1000})
        self.assertEqual(hub["layer_bytes"], 1000)
        with self.assertRaises(urllib.error.HTTPError) as ctx:
            self.control(f"upstreams/{QUAY}/image", {"repository": "big/none", "tag": "v1", "layer_bytes": 0})
        self.assertEqual(ctx.exception.code, 400)


class CloudFormationTests(unittest.TestCase):
    """cfn_deploy.py's AWS::ECR::PullTimeUpdateExclusion, in a process of its own (mock_aws
    would reset the backends of the stack this module runs)."""

    def deploy(self, exclusions: dict) -> dict:
        template = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Resources": {
                "PrewarmRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}},
                **{logical: {"Type": "AWS::ECR::PullTimeUpdateExclusion", "Properties": props} for logical, props in exclusions.items()},
            },
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(template, fh)
        try:
            out = subprocess.run([sys.executable, os.path.join(HERE, "cfn_deploy.py"), fh.name],
                                 capture_output=True, text=True, timeout=120)
        finally:
            os.remove(fh.name)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def test_exclusions_are_made_and_counted(self):
        result = self.deploy({"Prewarm": {"PrincipalArn": {"Fn::GetAtt": ["PrewarmRole", "Arn"]}},
                              "Scanner": {"PrincipalArn": f"arn:aws:iam::{CACHE}:user/scanner"}})
        self.assertEqual(result["status"], "CREATE_COMPLETE", result)
        prewarm = result["resources"]["Prewarm"]
        self.assertEqual(prewarm["by"], "api")
        self.assertRegex(prewarm["physical_id"], rf"^arn:aws:iam::{CACHE}:role/")
        self.assertEqual(result["resources"]["Scanner"]["physical_id"], f"arn:aws:iam::{CACHE}:user/scanner")
        self.assertEqual(result["found"]["AWS::ECR::PullTimeUpdateExclusion"], 2)

    def test_invalid_exclusions_fail_the_stack(self):
        bad = {
            "pattern": {"PrincipalArn": f"arn:aws:sts::{CACHE}:assumed-role/prewarm/s"},
            "length": {"PrincipalArn": f"arn:aws:iam::{CACHE}:role/" + "r" * 200},
            "missing": {},
            "type": {"PrincipalArn": ["arn:aws:iam::123456789012:role/x"]},
            "unknown property": {"PrincipalArn": f"arn:aws:iam::{CACHE}:role/x", "RegistryId": CACHE},
        }
        for reason, props in bad.items():
            with self.subTest(reason=reason):
                result = self.deploy({"Bad": props})
                self.assertEqual(result["status"], "CREATE_FAILED", result)
        twice = self.deploy({"One": {"PrincipalArn": f"arn:aws:iam::{CACHE}:role/x"}, "Two": {"PrincipalArn": f"arn:aws:iam::{CACHE}:role/x"}})
        self.assertEqual(twice["status"], "CREATE_FAILED", twice)
        self.assertIn("ExclusionAlreadyExistsException", twice["reason"])


if __name__ == "__main__":
    unittest.main()
