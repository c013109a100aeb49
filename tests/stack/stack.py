#!/usr/bin/env python3
"""The local stack: everything the tests and the demo call "AWS", on 127.0.0.1 only.

    stack.py up [--state-dir DIR] [--seed demo] [--ready-file F] [--parent-pid PID] [--detach]
    stack.py down [--state-dir DIR]

One Python process serves:
- the AWS API endpoint: moto server (ECR, Secrets Manager, STS, EventBridge) with the
  project's stand-ins in front of it (PTC rules, creation templates, auth token,
  DescribeRepositories paging, CloudWatch over RPC v2 CBOR) and the test controls
  under `/_stack/`;
- the ECR registry endpoint (pull through by prefix);
- a steerable proxy in front of each upstream (CNCF distribution processes it starts).

Accounts (issue 17): the cache account (ACCOUNT, whose registry endpoint this is) and two
consumer accounts (accounts.CONSUMER_ACCOUNTS); `/_stack/accounts/<account>/roles` creates a
role in one and `/_stack/accounts/assume-role` returns that role's credentials through moto's
STS. The registry endpoint enforces the cross-account pull rules for their tokens
(registry.py, "Cross-account pulls").

It writes its endpoints as JSON to the ready file (and `<state-dir>/stack.json`), keeps
state and logs under the state dir, and exits when its parent process dies.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import re
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from werkzeug.serving import make_server  # noqa: E402
from werkzeug.wrappers import Request, Response  # noqa: E402

import accounts  # noqa: E402
import images  # noqa: E402
from cloudwatch import CloudWatch  # noqa: E402
from ecr_front import EcrFront  # noqa: E402
import ports  # noqa: E402
from registry import RegistryEndpoint  # noqa: E402
from upstreams import Upstream  # noqa: E402

ACCOUNT = "123456789012"
REGION = "us-east-1"
# The upstreams of the stack: the registry each stands in for, and its credentials.
UPSTREAMS = {
    "quay.io": None,
    "registry.k8s.io": None,
    "registry-1.docker.io": ("stack-user", "dckr_pat_stack_docker_token"),
    "ghcr.io": ("stack-user", "ghp_stack_github_token"),
}
DEMO_RULES = [
    ("quay", "quay.io", None),
    ("k8s", "registry.k8s.io", None),
    ("docker-hub", "registry-1.docker.io", "ecr-pullthroughcache/docker-hub"),
    ("ghcr", "ghcr.io", "ecr-pullthroughcache/ghcr"),
]
AUTH_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


def find_registry_binary() -> str:
    for candidate in (os.environ.get("PTC_DOCKER_REGISTRY"), "/usr/bin/docker-registry", "/usr/sbin/docker-registry"):
        if candidate and os.path.exists(candidate):
            return candidate
    raise SystemExit("docker-registry (CNCF distribution) not found: apt-get install docker-registry")


class Stack:
    def __init__(self, state_dir: str) -> None:
        self.state_dir = os.path.abspath(state_dir)
        os.makedirs(os.path.join(self.state_dir, "logs"), exist_ok=True)
        self.account = ACCOUNT
        self.region = REGION
        self.lock = threading.RLock()
        self.dynamodb_lock = threading.Lock()
        import dynamodb_tx

        self.dynamodb_conflicts = dynamodb_tx.Conflicts()
        self.dynamodb_conflicts_answered = 0
        self.upstream_timeout = 10.0
        self.ecr = EcrFront(self)
        self.cloudwatch = CloudWatch()
        self.registry = RegistryEndpoint(self, REGION)
        self.upstreams: dict[str, Upstream] = {}
        self.servers: list = []
        self.denied_secrets: set[str] = set()
        # Who is in the organisation `aws:PrincipalOrgID` names (see accounts.py).
        self.organization = {"id": accounts.ORGANIZATION_ID, "accounts": [ACCOUNT, accounts.CONSUMER_IN_ORG]}
        # Bound now and held: nothing else can take these ports before the servers start.
        self.aws_socket = ports.listen()
        self.registry_socket = ports.listen()
        self.aws_port = self.aws_socket.getsockname()[1]
        self.registry_port = self.registry_socket.getsockname()[1]
        self._patch_moto()
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.moto = DomainDispatcherApplication(create_backend_app)

    # -- moto fidelity patches --------------------------------------------------
    def _patch_moto(self) -> None:
        from moto.ecr import models

        import dynamodb_tx

        dynamodb_tx.install()

        stack = self

        def size(image) -> int | None:
            """ECR: the compressed size of the layers; for a list, the largest child."""
            cached = getattr(image, "_ptc_size", None)
            if cached is not None:
                return cached
            doc = json.loads(image.image_manifest)
            if "layers" in doc:
                image._ptc_size = sum(layer.get("size", 0) for layer in doc["layers"])
                return image._ptc_size
            sizes = []
            for child in doc.get("manifests", []):
                cached = stack.registry.manifests.get((image.repository_name, child["digest"]))
                if cached:
                    sizes.append(sum(layer.get("size", 0) for layer in json.loads(cached[1]).get("layers", [])))
            value = max(sizes) if sizes else None
            if value is not None and len(sizes) == len(doc.get("manifests", [])):
                image._ptc_size = value
            return value

        models.Image.get_image_size_in_bytes = size

        # ECR accepts PutRegistryScanningConfiguration without rules; moto iterates over None.
        original_put_scanning = models.ECRBackend.put_registry_scanning_configuration

        def put_scanning(backend, scan_type, rules):
            return original_put_scanning(backend, scan_type, rules or [])

        models.ECRBackend.put_registry_scanning_configuration = put_scanning

    # -- ECR state used by the registry endpoint --------------------------------
    def backend(self):
        from moto.ecr.models import ecr_backends

        return ecr_backends[self.account][self.region]

    def repository_exists(self, name: str) -> bool:
        return name in self.backend().repositories

    def template_for(self, name: str) -> dict | None:
        best = None
        for template in self.ecr.templates_for(self.region):
            if "PULL_THROUGH_CACHE" not in template["appliedFor"]:
                continue
            prefix = template["prefix"]
            if prefix != "ROOT" and name.startswith(prefix + "/") and (best is None or best["prefix"] == "ROOT" or len(prefix) > len(best["prefix"])):
                best = template
            elif prefix == "ROOT" and best is None:
                best = template
        return best

    def ensure_repository(self, name: str, rule: dict) -> None:
        with self.lock:
            backend = self.backend()
            if name in backend.repositories:
                return
            template = self.template_for(name) or {}
            repo = backend.create_repository(
                repository_name=name,
                registry_id=None,
                encryption_config=template.get("encryptionConfiguration"),
                image_scan_config=None,
                image_tag_mutability=template.get("imageTagMutability", "MUTABLE"),
                tags=template.get("resourceTags") or [],
            )
            if template.get("lifecyclePolicy"):
                repo.lifecycle_policy = template["lifecyclePolicy"]
            if template.get("repositoryPolicy"):
                repo.policy = template["repositoryPolicy"]

    def record_image(self, name: str, digest: str, media_type: str, body: bytes, tag: str | None) -> None:
        from moto.ecr.models import Image

        with self.lock:
            repo = self.backend().repositories[name]
            image = next((i for i in repo.images if i.get_image_digest() == digest), None)
            if tag:
                # A tag that moves leaves the old image untagged (ECR never deletes it).
                for other in repo.images:
                    if other is not image and tag in other.image_tags:
                        other.image_tags.remove(tag)
                        other.image_tag = other.image_tags[-1] if other.image_tags else None
            if image is None:
                image = Image(self.account, tag, body.decode(), name, media_type, digest)
                if tag is None:
                    image.image_tags = []
                repo.images.append(image)
            elif tag and tag not in image.image_tags:
                image.update_tag(tag)

    def image_status(self, name: str, digest: str) -> str | None:
        """The cached image's imageStatus (ACTIVE, ARCHIVED, ACTIVATING; see ecr_front), or
        None when the repository does not hold that digest."""
        repo = self.backend().repositories.get(name)
        with self.ecr.lock:
            for image in list(repo.images) if repo else []:
                if image.get_image_digest() == digest:
                    return self.ecr.image_status(image)
        return None

    def record_pull(self, name: str, digest: str, principal_arns=()) -> None:
        """Move the image's lastRecordedPullTime, unless the puller (any of its principal
        ARNs: the role ARN of an assumed-role session, a user's ARN) is on the registry's
        pull-time update exclusion list: "When a role in the exclusion list pulls an image,
        the pull time remains unchanged. Any other role continues to update pull time."
        (https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-time-update-exclusions.html)"""
        if principal_arns and self.ecr.pull_time_excluded(self.account, self.region, principal_arns):
            return
        with self.lock:
            repo = self.backend().repositories.get(name)
            for image in repo.images if repo else []:
                if image.get_image_digest() == digest:
                    image.last_recorded_pull_time = dt.datetime.now(dt.timezone.utc)

    def age_images(self, body: dict) -> dict:
        """Backdate images (all of a repository, or one digest): push and last-pull times."""
        now = dt.datetime.now(dt.timezone.utc)
        changed = 0
        with self.lock:
            repo = self.backend().repositories[body["repository"]]
            for image in repo.images:
                if body.get("digest") and image.get_image_digest() != body["digest"]:
                    continue
                if "pushed_days_ago" in body:
                    pushed = now - dt.timedelta(days=float(body["pushed_days_ago"]))
                    image.image_pushed_at = int(pushed.timestamp())
                if "pulled_days_ago" in body:
                    pulled = now - dt.timedelta(days=float(body["pulled_days_ago"]))
                    image.last_recorded_pull_time = pulled
                changed += 1
        return {"changed": changed}

    def age_secret(self, name: str, value_days_ago: float) -> dict:
        """Backdate a secret's current value (its version's CreatedDate, what GetSecretValue
        returns), leaving the secret's LastChangedDate as it is: an old token in a secret
        whose tags or description were edited since."""
        from moto.secretsmanager.models import secretsmanager_backends

        secret = secretsmanager_backends[self.account][self.region].secrets[name]
        stamp = int(time.time() - value_days_ago * 86400)
        changed = 0
        for version in secret.versions.values():
            if "AWSCURRENT" in version.get("version_stages", []):
                version["createdate"] = stamp
                changed += 1
        return {"changed": changed, "createdate": stamp}

    def record_layer(self, name: str, digest: str, size: int) -> None:
        with self.lock:
            repo = self.backend().repositories.get(name)
            if repo is not None:
                repo.layers[digest] = size

    def has_layer(self, name: str, digest: str) -> bool:
        """Whether repository `name` holds layer `digest` in ECR's state (moto's repo.layers,
        what BatchCheckLayerAvailability answers from): layers are per repository in ECR."""
        with self.lock:
            repo = self.backend().repositories.get(name)
            return repo is not None and digest in repo.layers

    def remove_layer(self, name: str, digest: str) -> dict:
        """`POST ecr/layers/remove {"repository", "digest"}`: drop a layer from one
        repository's cache (moto's repo.layers and the registry endpoint's membership), as if
        it had never been imported there; the next GET of it in that repository imports it
        from the upstream again."""
        with self.lock:
            repo = self.backend().repositories.get(name)
            removed = repo is not None and repo.layers.pop(digest, None) is not None
        removed = self.registry.forget_layer(name, digest) or removed
        return {"removed": removed}

    def upstream_for(self, url: str) -> Upstream | None:
        return self.upstreams.get(url)

    # -- the AWS endpoint ---------------------------------------------------------
    def aws_wsgi(self, environ, start_response):
        request = Request(environ)
        data = request.get_data()
        environ["wsgi.input"] = io.BytesIO(data)
        environ["CONTENT_LENGTH"] = str(len(data))
        path = request.path
        if path.startswith("/_stack/"):
            return self.control(request)(environ, start_response)
        match = AUTH_REGION.search(request.headers.get("Authorization", ""))
        region = match.group(1) if match else self.region
        if path.startswith("/service/GraniteServiceVersion20100801/operation/"):
            return self.cloudwatch.handle(request, region)(environ, start_response)
        denied = self._denied_secret(request, data)
        if denied:
            body = json.dumps({"__type": "AccessDeniedException", "Message": f"User is not authorized to access {denied} (denied by the stack)"})
            return Response(body, 400, content_type="application/x-amz-json-1.1")(environ, start_response)
        if self.ecr.handles(request) and not self._moto_answers(request, data):
            return self.ecr.handle(request, region)(environ, start_response)
        target = request.headers.get("X-Amz-Target", "")
        if target.startswith("DynamoDB_"):
            # DynamoDB applies each write atomically, an ADD included, and a transaction all or
            # nothing (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.AtomicCounters,
            # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html).
            # moto's backend is not thread-safe: two concurrent ADDs on one item lose one (seen
            # with two workers). Its requests go one at a time; a transaction that touches an
            # item another one is writing meanwhile is cancelled with TransactionConflict, as
            # DynamoDB does (dynamodb_tx.Conflicts).
            keys = self.dynamodb_conflicts.keys(data) if target.endswith(".TransactWriteItems") else []
            single = self.dynamodb_conflicts.single_key(target, data)
            if single and self.dynamodb_conflicts.claimed(single):
                # A plain write on an item a transaction is writing: DynamoDB refuses it with
                # TransactionConflictException (transaction-apis.html, "Transaction conflict
                # handling").
                self.dynamodb_conflicts_answered += 1
                body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
                                   "message": "Transaction is ongoing for the item"})
                return Response(body, 400, content_type="application/x-amz-json-1.0")(environ, start_response)
            if keys:
                taken = self.dynamodb_conflicts.claim(keys)
                if taken:
                    self.dynamodb_conflicts_answered += 1
                    status, headers, body = self.dynamodb_conflicts.cancelled(len(keys), taken)
                    return Response(body, status, headers)(environ, start_response)
            try:
                with self.dynamodb_lock:
                    return list(self.moto(environ, start_response))
            finally:
                if keys:
                    self.dynamodb_conflicts.release(keys)
        return self.moto(environ, start_response)

    def _denied_secret(self, request: Request, data: bytes) -> str | None:
        """A secret the tests made unreadable: Secrets Manager answers AccessDenied."""
        target = request.headers.get("X-Amz-Target", "")
        if not self.denied_secrets or not target.startswith("secretsmanager."):
            return None
        try:
            secret_id = str(json.loads(data or b"{}").get("SecretId", ""))
        except ValueError:
            return None
        return next((name for name in self.denied_secrets if name in secret_id), None)

    @staticmethod
    def _moto_answers(request: Request, data: bytes) -> bool:
        target = request.headers.get("X-Amz-Target", "")
        if target.endswith(".DescribeRepositories"):
            try:
                return bool(json.loads(data or b"{}").get("repositoryNames"))
            except ValueError:
                return True
        return False

    # -- test controls ------------------------------------------------------------
    def info(self) -> dict:
        return {
            "pid": os.getpid(),
            "account": self.account,
            "region": self.region,
            "aws_endpoint": f"http://127.0.0.1:{self.aws_port}",
            "registry_endpoint": f"http://127.0.0.1:{self.registry_port}",
            "state_dir": self.state_dir,
            "consumer_accounts": list(accounts.CONSUMER_ACCOUNTS),
            "organization": dict(self.organization),
            "upstreams": {
                host: {"url": u.url, "username": u.username, "password": u.password, "up": u.is_up}
                for host, u in self.upstreams.items()
            },
        }

    def control(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p][1:]
        body = request.get_json(silent=True) or {}
        try:
            result = self._control(request.method, parts, body)
        except (KeyError, ValueError) as err:
            return Response(json.dumps({"error": str(err)}), 400, content_type="application/json")
        return Response(json.dumps(result, default=str), 200, content_type="application/json")

    def _control(self, method: str, parts: list[str], body: dict):
        if parts == ["info"]:
            return self.info()
        if parts[:1] == ["upstreams"] and len(parts) >= 2:
            upstream = self.upstreams[parts[1]]
            if len(parts) == 3 and parts[2] == "counts":
                with upstream.lock:
                    return dict(upstream.counts)
            if len(parts) == 3 and parts[2] == "tag" and method == "POST":
                return self.tag_upstream(upstream, str(body["repository"]), str(body["from"]), str(body["to"]))
            if len(parts) == 3 and parts[2] == "image" and method == "POST":
                return self.push_big_image(upstream, str(body["repository"]), str(body.get("tag") or "latest"), int(body["layer_bytes"]))
            if method == "POST":
                with upstream.lock:
                    upstream.faults.update(body)
                    if body.get("reset_counts"):
                        upstream.counts.clear()
                if "down" in body:
                    upstream.stop_proxy() if body["down"] else upstream.start_proxy()
            return {"host": upstream.host, "up": upstream.is_up, "faults": upstream.faults.__dict__}
        if parts == ["seed", "inventory"] and method == "POST":
            return self.seed_inventory(str(body.get("prefix", "quay")), int(body.get("repositories", 1000)), int(body.get("images", 3)))
        if parts == ["seed", "bench"] and method == "POST":
            return self.seed_bench(int(body.get("repositories", 40)), int(body.get("tags", 50)))
        if parts[:1] == ["accounts"]:
            try:
                return self._accounts_control(method, parts[1:], body)
            except (KeyError, ValueError):
                raise
            except Exception as exc:  # moto's IAM / STS refusals: a 400 naming them
                raise ValueError(f"{type(exc).__name__}: {exc}") from exc
        if parts == ["dynamodb"]:
            return {"conflicts": self.dynamodb_conflicts_answered}
        if parts == ["registry", "counts"]:
            with self.registry.lock:
                return dict(self.registry.counts)
        if parts == ["registry", "denials"]:
            with self.registry.lock:
                if method == "POST" and body.get("reset"):
                    self.registry.denials.clear()
                return list(self.registry.denials)
        if parts == ["registry", "events"]:
            with self.registry.lock:
                return list(self.registry.events)
        if parts == ["secrets", "age"] and method == "POST":
            return self.age_secret(str(body["name"]), float(body["value_days_ago"]))
        if parts == ["secrets"]:
            if method == "POST":
                self.denied_secrets = set(body.get("deny", []))
            return {"deny": sorted(self.denied_secrets)}
        if parts == ["ecr", "age"] and method == "POST":
            return self.age_images(body)
        if parts == ["ecr", "layers", "remove"] and method == "POST":
            return self.remove_layer(str(body["repository"]), str(body["digest"]))
        if parts == ["ecr"]:
            if method == "POST":
                with self.ecr.lock:
                    if "token_ttl" in body:
                        self.ecr.token_ttl = int(body["token_ttl"])
                    for op, n in (body.get("throttle") or {}).items():
                        self.ecr.throttle[op] = int(n)
                    if "registry_latency_ms" in body:
                        self.registry.latency_ms = int(body["registry_latency_ms"])
                    if "refresh_seconds" in body:
                        self.registry.refresh_seconds = float(body["refresh_seconds"])
                    if body.get("revoke_tokens"):
                        self.ecr.tokens.clear()
                    if "upstream_timeout" in body:
                        self.upstream_timeout = float(body["upstream_timeout"])
                    if "blob_bytes_per_second" in body:
                        rate = int(body["blob_bytes_per_second"])
                        if rate < 0:
                            raise ValueError("blob_bytes_per_second must be 0 (off) or more")
                        self.registry.blob_bytes_per_second = rate
            with self.ecr.lock:
                return {"calls": dict(self.ecr.calls), "throttle": dict(self.ecr.throttle), "token_ttl": self.ecr.token_ttl,
                        "tokens": sorted(self.ecr.tokens), "blob_bytes_per_second": self.registry.blob_bytes_per_second}
        if parts == ["cloudwatch"]:
            cw = self.cloudwatch
            if method == "POST":
                if body.get("reset"):
                    cw.reset()
                if "age" in body:
                    moved = cw.age(str(body["age"]["namespace"]), float(body["age"]["seconds"]))
                    return {"moved": moved}
                with cw.lock:
                    cw.throttle_next = int(body.get("throttle_next", cw.throttle_next))
                    cw.fail_next = int(body.get("fail_next", cw.fail_next))
            with cw.lock:
                return {"put_calls": cw.put_calls, "series": len(cw.data), "throttle_next": cw.throttle_next}
        raise KeyError(f"no control at /_stack/{'/'.join(parts)}")

    def _accounts_control(self, method: str, parts: list[str], body: dict):
        """`GET accounts`: the cache account, the consumers, the organisation.
        `POST accounts/organization {"accounts": [...]}`: who is in the organisation.
        `POST accounts/<account>/roles {"name", "policy", "managed_policy_arns",
        "permissions_boundary"}`: create (or replace) a role in that account, trusting the
        cache account, with `policy` inline (none when null); answers its ARN.
        `POST accounts/assume-role {"role_arn", "session_name", "policy"}`: sts:AssumeRole
        through the stack's own STS endpoint (moto), with the cache account's test
        credentials; answers the temporary credentials (of the role's account)."""
        if not parts:
            return {"cache": self.account, "consumers": list(accounts.CONSUMER_ACCOUNTS), "organization": dict(self.organization)}
        if parts == ["organization"] and method == "POST":
            with self.lock:
                self.organization = {"id": self.organization["id"], "accounts": [str(a) for a in body["accounts"]]}
            return dict(self.organization)
        if parts == ["assume-role"] and method == "POST":
            import boto3

            sts = boto3.client("sts", endpoint_url=self.info()["aws_endpoint"], region_name=self.region,
                               aws_access_key_id="testing", aws_secret_access_key="testing")
            args = {"RoleArn": str(body["role_arn"]), "RoleSessionName": str(body.get("session_name") or "ptc-tests")}
            if body.get("policy") is not None:
                args["Policy"] = json.dumps(body["policy"])
            out = sts.assume_role(**args)
            creds = out["Credentials"]
            return {
                "access_key_id": creds["AccessKeyId"],
                "secret_access_key": creds["SecretAccessKey"],
                "session_token": creds["SessionToken"],
                "expiration": creds["Expiration"].isoformat(),
                "arn": out["AssumedRoleUser"]["Arn"],
                "account": out["AssumedRoleUser"]["Arn"].split(":")[4],
            }
        if len(parts) == 2 and parts[1] == "roles" and method == "POST":
            account = parts[0]
            if not re.fullmatch(r"\d{12}", account):
                raise ValueError(f"not an account id: {account}")
            arn = accounts.create_role(account, str(body["name"]), self.account, body.get("policy"),
                                       body.get("managed_policy_arns") or (), body.get("permissions_boundary"))
            return {"arn": arn}
        raise KeyError(f"no control at /_stack/accounts/{'/'.join(parts)}")

    # -- life cycle ---------------------------------------------------------------
    def serve(self, sock, app) -> None:
        server = make_server("127.0.0.1", sock.getsockname()[1], app, threaded=True, fd=sock.fileno())
        sock.close()  # the server holds its own descriptor of the same socket
        self.servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def start(self) -> None:
        binary = find_registry_binary()
        for host, creds in UPSTREAMS.items():
            upstream = Upstream(host, self.state_dir)
            if creds:
                upstream.username, upstream.password = creds
            # Docker Hub and ghcr.io answer with a Bearer token challenge, as the real ones do.
            upstream.bearer = host in ("registry-1.docker.io", "ghcr.io")
            upstream.start_registry(binary)
            self.upstreams[host] = upstream
        for upstream in self.upstreams.values():
            upstream.wait_ready()
            if upstream.host == "registry-1.docker.io":
                # Docker Hub sends rate-limit headers on every answer.
                upstream.faults.ratelimit_limit = 200
                upstream.faults.ratelimit_remaining = 200
            upstream.start_proxy()
        for host, entries in images.CATALOG.items():
            upstream = self.upstreams[host]
            for repo, tag, kind in entries:
                images.push(upstream.internal_url, images.build(repo, tag, kind), upstream.basic_auth())
        self.serve(self.aws_socket, self.aws_wsgi)
        self.serve(self.registry_socket, self.registry.wsgi)

    def stop(self) -> None:
        # The registry processes first: nothing below may leave them running.
        for upstream in self.upstreams.values():
            if upstream.process and upstream.process.poll() is None:
                upstream.process.terminate()
        for upstream in self.upstreams.values():
            if upstream.process:
                try:
                    upstream.process.wait(5)
                except Exception:
                    upstream.process.kill()
        for upstream in self.upstreams.values():
            try:
                upstream.stop_proxy()
            except Exception:
                pass
        for server in self.servers:
            try:
                server.shutdown()
            except Exception:
                pass

    def tag_upstream(self, upstream: Upstream, repository: str, source: str, target: str) -> dict:
        """Give an upstream image a new tag (`POST upstreams/<host>/tag {"repository", "from",
        "to"}`): the same manifest under another tag, so a test can pull a new tag of a
        repository the cache already holds."""
        import hashlib
        import urllib.request

        from registry import ACCEPT_ALL

        def call(method: str, data: bytes | None = None, media_type: str | None = None, ref: str = source):
            req = urllib.request.Request(f"{upstream.internal_url}/v2/{repository}/manifests/{ref}", data=data, method=method)
            req.add_header("Accept" if data is None else "Content-Type", media_type or ACCEPT_ALL)
            if upstream.basic_auth():
                req.add_header("Authorization", upstream.basic_auth())
            return urllib.request.urlopen(req, timeout=30)

        with call("GET") as resp:
            media_type, body = resp.headers["Content-Type"], resp.read()
        with call("PUT", body, media_type, target):
            pass
        return {"repository": repository, "tag": target, "digest": "sha256:" + hashlib.sha256(body).hexdigest()}

    def push_big_image(self, upstream: Upstream, repository: str, tag: str, layer_bytes: int) -> dict:
        """`POST upstreams/<host>/image {"repository", "tag", "layer_bytes"}`: push to that
        upstream a single-platform OCI image with one layer of `layer_bytes` random
        (incompressible) bytes and a config; answers the manifest's digest, the layer's digest
        and size. Pushed to the registry itself, not through the proxy: the upstream's request
        counts stay those of the pulls."""
        if not 1 <= layer_bytes <= 1 << 31:
            raise ValueError("layer_bytes must be between 1 and 2 GiB")
        built = images.build_big(repository, tag, layer_bytes)
        layer_digest = json.loads(built.manifests[-1][2])["layers"][0]["digest"]
        images.push(upstream.internal_url, built, upstream.basic_auth(), timeout=300)
        return {"repository": repository, "tag": tag, "digest": built.digest, "layer_digest": layer_digest,
                "layer_bytes": layer_bytes}

    def seed_bench(self, repositories: int, tags: int) -> dict:
        """Many images for benchmarks: `bench/app-N` repositories on quay.io, each a
        two-platform OCI index under `tags` tags (one set of blobs per repository)."""
        upstream = self.upstreams["quay.io"]
        names = []
        for r in range(repositories):
            built = images.build(f"bench/app-{r}", "t0", "oci-index", layers=1)
            images.push(upstream.internal_url, built)
            index = built.manifests[-1]
            for t in range(1, tags):
                images.put_manifest(upstream.internal_url, built.repository, f"t{t}", index[1], index[2])
            names += [f"quay.io/bench/app-{r}:t{t}" for t in range(tags)]
        return {"images": names}

    def seed_inventory(self, prefix: str, repositories: int, per_repository: int) -> dict:
        """Many cached repositories for inventory benchmarks, written straight into ECR's
        state: `<prefix>/inventory/app-N`, each with `per_repository` tagged single-platform
        images of known sizes (no registry traffic)."""
        import hashlib

        backend = self.backend()
        total = 0
        for r in range(repositories):
            name = f"{prefix}/inventory/app-{r}"
            with self.lock:
                if name not in backend.repositories:
                    backend.create_repository(
                        repository_name=name, registry_id=None, encryption_config=None,
                        image_scan_config=None, image_tag_mutability="MUTABLE", tags=[],
                    )
            for i in range(per_repository):
                size = 1000 * (i + 1)
                manifest = json.dumps({
                    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "0" * 64, "size": 2},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                "digest": "sha256:" + hashlib.sha256(f"{name}/{i}".encode()).hexdigest(), "size": size}],
                }).encode()
                digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
                self.record_image(name, digest, "application/vnd.oci.image.manifest.v1+json", manifest, f"v{i}")
                total += size
        return {"repositories": repositories, "images": repositories * per_repository, "bytes": total}

    def seed_demo(self) -> None:
        """The four rules of the seeds: quay, k8s, docker-hub (secret), ghcr (secret)."""
        import boto3

        kwargs = dict(endpoint_url=self.info()["aws_endpoint"], region_name=self.region,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
        sm = boto3.client("secretsmanager", **kwargs)
        ecr = boto3.client("ecr", **kwargs)
        for prefix, url, secret in DEMO_RULES:
            args = {"ecrRepositoryPrefix": prefix, "upstreamRegistryUrl": url}
            if secret:
                upstream = self.upstreams[url]
                arn = sm.create_secret(
                    Name=secret,
                    SecretString=json.dumps({"username": upstream.username, "accessToken": upstream.password}),
                )["ARN"]
                args["credentialArn"] = arn
            ecr.create_pull_through_cache_rule(**args)


def watch_parent(pid: int, stop) -> None:
    while True:
        try:
            os.kill(pid, 0)
        except OSError:
            stop()
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--state-dir", default=os.environ.get("PTC_STACK_DIR", os.path.join(HERE, "..", "..", ".stack")))
    parser.add_argument("--ready-file")
    parser.add_argument("--parent-pid", type=int)
    parser.add_argument("--remove-state-on-exit", action="store_true",
                        help="delete the state dir (registry data, logs) when stopping: tests")
    parser.add_argument("--seed", choices=["none", "demo"], default="none")
    parser.add_argument("--detach", action="store_true", help="return once the stack is ready; stop it with `down`")
    args = parser.parse_args()
    pid_file = os.path.join(os.path.abspath(args.state_dir), "stack.pid")
    info_file = os.path.join(os.path.abspath(args.state_dir), "stack.json")

    if args.command == "down":
        try:
            pid = int(open(pid_file).read())
        except (OSError, ValueError):
            print("stack: not running")
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        for _ in range(100):
            try:
                os.kill(pid, 0)
                time.sleep(0.1)
            except OSError:
                break
        os.remove(pid_file)
        print(f"stack: stopped (pid {pid})")
        return

    if args.detach:
        import subprocess

        os.makedirs(os.path.abspath(args.state_dir), exist_ok=True)
        ready = args.ready_file or info_file
        if os.path.exists(ready):
            os.remove(ready)
        log = open(os.path.join(os.path.abspath(args.state_dir), "stack.log"), "ab")
        cmd = [sys.executable, os.path.abspath(__file__), "up", "--state-dir", args.state_dir, "--seed", args.seed, "--ready-file", ready]
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        for _ in range(1200):
            if os.path.exists(ready):
                print(open(ready).read())
                return
            if proc.poll() is not None:
                raise SystemExit(f"stack: failed to start, see {args.state_dir}/stack.log")
            time.sleep(0.1)
        raise SystemExit("stack: not ready after 120 s")

    # One log line per request costs the stand-in throughput; errors are still logged.
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    stack = Stack(args.state_dir)
    stopping = threading.Event()

    def stop(*_):
        if stopping.is_set():
            return
        stopping.set()
        stack.stop()
        if args.remove_state_on_exit:
            import shutil

            shutil.rmtree(stack.state_dir, ignore_errors=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.parent_pid:
        threading.Thread(target=watch_parent, args=(args.parent_pid, stop), daemon=True).start()
    try:
        stack.start()
        if args.seed == "demo":
            stack.seed_demo()
    except Exception:
        stack.stop()
        raise
    with open(pid_file, "w") as fh:
        fh.write(str(os.getpid()))
    info = json.dumps(stack.info(), indent=2)
    for path in {os.path.abspath(info_file), os.path.abspath(args.ready_file or info_file)}:
        with open(path + ".tmp", "w") as fh:
            fh.write(info)
        os.replace(path + ".tmp", path)
    print(f"stack: ready, AWS {stack.info()['aws_endpoint']}, registry {stack.info()['registry_endpoint']}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
