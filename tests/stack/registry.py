"""The ECR registry endpoint (`<account>.dkr.ecr.<region>.amazonaws.com`) of the stack.

What it reproduces, from PTC-FACTS.md:
- Basic auth with the token of GetAuthorizationToken (`AWS:<password>`), refused once the
  token has expired.
- `<prefix>/<path>` routed to the rule's upstream (longest prefix wins, `ROOT` last,
  `upstreamRepositoryPrefix` substituted), written independently of ptc-core.
- First pull creates the repository with the matching PULL_THROUGH_CACHE creation template
  (else ECR's defaults: mutable tags, AES256, no policies, no tags) and records the
  manifest so that DescribeImages / BatchGetImage show it.
- A cached tag is re-checked upstream only after `refresh_seconds` (ECR: about 24 hours);
  a pull with the upstream down serves the cached copy.
- A first pull by digest into a repository that does not exist yet is served but does not
  populate the cache (as reported by users).
- Manifest pulls do not import layers (the pessimistic answer to an unconfirmed fact);
  layers are imported when a client fetches them, then served through a redirect, as ECR
  redirects layer downloads to S3.
- Layers are per repository, as in ECR (BatchCheckLayerAvailability and
  GetDownloadUrlForLayer take a repositoryName,
  https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_BatchCheckLayerAvailability.html):
  a layer GET/HEAD in repository R is served from the cache only when R holds it (moto's
  repo.layers, what BatchCheckLayerAvailability answers from, and the endpoint's own
  membership); otherwise it is imported from R's upstream into R. The bytes are stored once
  per digest, and dropped when no repository holds them any more.
- Pull-time update exclusions: a manifest pull by a principal on the cache account's
  exclusion list leaves the image's lastRecordedPullTime unchanged (Stack.record_pull,
  https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-time-update-exclusions.html).
  The principal is found from the token's account and access key for every token, the cache
  account's included, for that decision only (cross-account authorisation is unchanged).
- A throttled link for layer bytes (`blob_bytes_per_second`, 0 = off): the redirect target
  streams a layer at about that rate, with its Content-Length.

Cross-account pulls. A token is bound to the account (and access key) it was issued to
(ecr_front.Token). A token of the cache account pulls exactly as before: nothing below is
evaluated for it. A token of another account is held to the documented rules, both sides
(iam_eval.authorize_cross_account: the cache account's resource-based policies AND the
caller's identity policies from moto's IAM):
- a first pull, into a repository that does not exist yet, needs `ecr:CreateRepository`
  ("This permission can be granted by either an identity-based IAM policy or the private
  registry permissions policy": across accounts, the registry policy) and
  `ecr:BatchImportUpstreamImage` ("...the private registry permissions policy, an
  identity-based IAM policy, or ... the resource-based repository permissions policy"; the
  repository does not exist yet, so the registry policy),
  https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-iam.html;
- a new tag (or digest) in an existing repository needs `ecr:BatchImportUpstreamImage`
  (registry or repository policy); a stale cached tag whose refresh the caller may not
  import is served from the cache (an assumption: AWS does not say);
- reading what is cached needs `ecr:BatchGetImage` (manifests, GET and HEAD) and
  `ecr:GetDownloadUrlForLayer` (layers, GET and HEAD; `ecr:BatchCheckLayerAvailability` is
  not asked for: AWS does not say which action a registry HEAD is, and `docker pull` makes
  none) from the repository policy, which for a repository created by the pull is the
  creation template's (https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-creation-templates.html;
  users report exactly this: https://github.com/aws/containers-roadmap/issues/2053). The
  manifest is imported first, then read: a caller allowed to import but not to read leaves
  the image cached and gets the 403 for `ecr:BatchGetImage`;
- the registry policy counts for the three registry actions under REGISTRY_POLICY_SCOPE V1,
  and for every ECR action (pull actions included) under V2, the default
  (https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry-permissions-create.html).
A refusal is HTTP 403 with the distribution spec's DENIED code
(https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes) and
IAM's message, as `docker pull` shows it from ECR ("denied: User: arn:aws:sts::...
is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:... because no
identity-based policy allows the ecr:BatchGetImage action", reported in
https://github.com/aws/copilot-cli/issues/3518); it changes nothing and sends no event.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import time

from werkzeug.wrappers import Request, Response

import accounts
from iam_eval import Caller, authorize_cross_account
from upstreams import open_upstream

ACCEPT_ALL = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
INDEX_TYPES = {"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"}
CREATE = "ecr:CreateRepository"
IMPORT = "ecr:BatchImportUpstreamImage"
GET_IMAGE = "ecr:BatchGetImage"
GET_LAYER = "ecr:GetDownloadUrlForLayer"
REGISTRY_V1_ACTIONS = {"ecr:CreateRepository", "ecr:BatchImportUpstreamImage", "ecr:ReplicateImage"}


class RegistryError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: list | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or []


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def throttled(blob: bytes, rate: int):
    """The blob's bytes at about `rate` bytes a second: chunks of up to 64 KiB (smaller for a
    slow link, so that it stays smooth), each sent no earlier than its share of the time."""
    view = memoryview(blob)
    chunk = max(1024, min(64 * 1024, rate // 8))
    start = time.monotonic()
    for offset in range(0, len(view), chunk):
        piece = view[offset:offset + chunk]
        yield bytes(piece)
        ahead = start + (offset + len(piece)) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


class RegistryEndpoint:
    def __init__(self, stack, region: str) -> None:
        self.stack = stack
        self.region = region
        self.lock = threading.RLock()
        self.manifests: dict[tuple[str, str], tuple[str, bytes]] = {}  # (repo, digest) -> (media type, body)
        self.tags: dict[tuple[str, str], tuple[str, float]] = {}  # (repo, tag) -> (digest, fetched at)
        self.blobs: dict[str, bytes] = {}  # digest -> bytes, once for all the repositories holding it
        self.repo_layers: dict[str, set[str]] = {}  # repository -> the layer digests imported into it
        self.blob_bytes_per_second = 0  # the layer download link's speed; 0 = unthrottled
        self.refresh_seconds = 24 * 3600
        self.latency_ms = 0
        self.events: list[dict] = []
        self.counts: dict[str, int] = {}
        self.denials: list[dict] = []  # cross-account refusals, for the tests to read

    # -- WSGI -----------------------------------------------------------------
    def wsgi(self, environ, start_response):
        request = Request(environ)
        with self.lock:
            key = f"{request.method} {request.path}"
            self.counts[key] = self.counts.get(key, 0) + 1
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        try:
            response = self.route(request)
        except RegistryError as err:
            body = json.dumps({"errors": [{"code": err.code, "message": err.message}]})
            response = Response(body, err.status, err.headers, content_type="application/json")
        return response(environ, start_response)

    def route(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_s3/"):
            digest = path[len("/_s3/"):]
            with self.lock:
                blob = self.blobs.get(digest)
                rate = self.blob_bytes_per_second
            if blob is None:
                raise RegistryError(404, "BLOB_UNKNOWN", "blob unknown")
            if not rate or request.method == "HEAD":
                return Response(blob, 200, content_type="application/octet-stream")
            out = Response(throttled(blob, rate), 200, [("Content-Length", str(len(blob)))],
                           content_type="application/octet-stream", direct_passthrough=True)
            out.automatically_set_content_length = False
            return out
        token = self.authenticate(request)
        request.environ["ptc.token"] = token
        caller = self.caller_of(token)
        if path in ("/v2/", "/v2"):
            return Response("{}", 200, content_type="application/json", headers={"Docker-Distribution-API-Version": "registry/2.0"})
        if not path.startswith("/v2/"):
            raise RegistryError(404, "NOT_FOUND", f"no route for {path}")
        rest = path[len("/v2/"):]
        for kind in ("/manifests/", "/blobs/"):
            if kind in rest:
                name, ref = rest.rsplit(kind, 1)
                if request.method not in ("GET", "HEAD"):
                    raise RegistryError(405, "UNSUPPORTED", "the stack's endpoint serves pulls only")
                if kind == "/manifests/":
                    return self.manifest(request, name, ref, caller)
                return self.blob(request, name, ref, caller)
        raise RegistryError(404, "NOT_FOUND", f"no route for {path}")

    def authenticate(self, request: Request):
        """The token's record (ecr_front.Token), or a 401."""
        realm = f'Basic realm="https://{self.stack.account}.dkr.ecr.{self.region}.amazonaws.com/",service="ecr.amazonaws.com"'
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                user, password = "", ""
            token = self.stack.ecr.token(password) if user == "AWS" else None
            if token is not None:
                return token
            raise RegistryError(401, "DENIED", "Your authorization token has expired. Reauthenticate and try again.", [("WWW-Authenticate", realm)])
        raise RegistryError(401, "DENIED", "Not Authorized", [("WWW-Authenticate", realm)])

    # -- cross-account pulls (see the module docstring) ------------------------
    def caller_of(self, token) -> Caller | None:
        """None for a token of the cache account (its pulls are not evaluated); the caller
        behind a token of another account."""
        if token.account == self.stack.account:
            return None
        return accounts.resolve_caller(token.account, token.access_key, self.stack.organization)

    def pull_principals(self, request: Request) -> tuple[str, ...]:
        """The principal ARNs of whoever pulls with the request's token, for the pull-time
        update exclusions only; () when the cache account has no exclusions (nothing to decide)."""
        token = request.environ.get("ptc.token")
        if token is None or not self.stack.ecr.has_pull_time_exclusions(self.stack.account, self.region):
            return ()
        return accounts.resolve_caller(token.account, token.access_key, self.stack.organization).principal_arns

    def repository_arn(self, name: str) -> str:
        return f"arn:aws:ecr:{self.region}:{self.stack.account}:repository/{name}"

    def resource_policies(self, name: str, action: str) -> list[str]:
        """The cache account's resource-based policies that can grant `action` on repository
        `name`: the registry policy (for the registry actions under scope V1, for all under
        V2) and the repository's policy (never for CreateRepository: there is no repository
        yet). A pull that reads from a repository that does not exist (a first pull by
        digest, served but not cached) is read under the policy its creation template
        would give it."""
        docs = []
        scope = self.stack.ecr.registry_policy_scope(self.stack.account, self.region)
        registry_policy = self.stack.ecr.registry_policy(self.stack.account, self.region)
        if registry_policy and (action in REGISTRY_V1_ACTIONS or scope == "V2"):
            docs.append(registry_policy)
        if action == CREATE:
            return docs
        repo = self.stack.backend().repositories.get(name)
        if repo is not None:
            if repo.policy:
                docs.append(repo.policy)
        elif action in (GET_IMAGE, GET_LAYER):
            template = self.stack.template_for(name) or {}
            if template.get("repositoryPolicy"):
                docs.append(template["repositoryPolicy"])
        return docs

    def require(self, caller: Caller | None, name: str, action: str) -> None:
        """Nothing for the cache account's own pulls; a 403 DENIED naming the action when the
        other account's caller may not do it."""
        if caller is None:
            return
        resource = self.repository_arn(name)
        problem = authorize_cross_account(caller, action, resource, self.resource_policies(name, action))
        if problem:
            with self.lock:
                self.denials.append({"account": caller.account, "principal": caller.arn, "action": action,
                                     "repository": name, "message": problem})
            raise RegistryError(403, "DENIED", problem)

    def import_refusal(self, caller: Caller | None, name: str, repo_exists: bool) -> RegistryError | None:
        """Why the caller may not import into `name` (first pull: create, then import), or None."""
        try:
            if not repo_exists:
                self.require(caller, name, CREATE)
            self.require(caller, name, IMPORT)
        except RegistryError as err:
            return err
        return None

    # -- routing (independent of ptc-core) ------------------------------------
    def route_rule(self, name: str) -> tuple[dict, str] | None:
        rules = self.stack.ecr.rules_for(self.region)
        best = None
        for rule in rules:
            prefix = rule["ecrRepositoryPrefix"]
            if prefix != "ROOT" and name.startswith(prefix + "/") and (best is None or len(prefix) > len(best["ecrRepositoryPrefix"])):
                best = rule
        if best is not None:
            rest = name[len(best["ecrRepositoryPrefix"]) + 1:]
        else:
            best = next((r for r in rules if r["ecrRepositoryPrefix"] == "ROOT"), None)
            if best is None:
                return None
            rest = name
        upstream_prefix = best.get("upstreamRepositoryPrefix", "ROOT")
        if upstream_prefix != "ROOT":
            rest = f"{upstream_prefix}/{rest}"
        return best, rest

    def upstream_creds(self, rule: dict) -> tuple[str, str] | None:
        if not rule.get("credentialArn"):
            return None
        value = self.stack.ecr.secret_value(self.region, rule["credentialArn"])
        doc = json.loads(value.get("SecretString") or "{}")
        return doc["username"], doc["accessToken"]

    def fetch(self, rule: dict, path: str, accept: str | None) -> tuple[int, dict, bytes]:
        upstream = self.stack.upstream_for(rule["upstreamRegistryUrl"])
        if upstream is None:
            raise OSError(f"no upstream stands in for {rule['upstreamRegistryUrl']}")
        try:
            creds = self.upstream_creds(rule)
        except Exception as exc:  # secret missing or malformed: the pull fails like ECR's
            raise OSError(f"cannot read the rule's credential: {exc}") from exc
        return open_upstream(upstream.url, path, creds, accept, self.stack.upstream_timeout)

    # -- manifests --------------------------------------------------------------
    def forget_repository(self, name: str) -> None:
        """Drop what the endpoint holds of repository `name` (its tags, manifests and layer
        membership), as ECR does when the repository is deleted."""
        with self.lock:
            for key in [k for k in self.tags if k[0] == name]:
                del self.tags[key]
            for key in [k for k in self.manifests if k[0] == name]:
                del self.manifests[key]
            self.repo_layers.pop(name, None)

    def manifest(self, request: Request, name: str, ref: str, caller: Caller | None = None) -> Response:
        by_digest = ref.startswith("sha256:")
        routed = self.route_rule(name)
        if routed is not None and not self.stack.repository_exists(name):
            # The repository was deleted (DeleteRepository with force deletes its images):
            # nothing of it is cached any more, and the next pull creates it again.
            self.forget_repository(name)
        with self.lock:
            cached_digest = ref if by_digest else (self.tags.get((name, ref)) or (None, 0))[0]
            fetched_at = 0.0 if by_digest else (self.tags.get((name, ref)) or (None, 0.0))[1]
            cached = self.manifests.get((name, cached_digest)) if cached_digest else None
        # "Archived images cannot be pulled. Requests to pull the archived image will fail with
        # a 404 error" (https://docs.aws.amazon.com/AmazonECR/latest/userguide/archive-image.html),
        # nor is it fetched from the upstream again (AWS does not say that a pull through the
        # cache would; the documented rule is the 404).
        status = self.stack.image_status(name, cached_digest) if cached_digest else None
        if status not in (None, "ACTIVE"):
            raise RegistryError(404, "MANIFEST_UNKNOWN", f"The image {name}@{cached_digest} is {status}: archived images cannot be pulled until they are restored")
        fresh = cached is not None and (by_digest or time.time() - fetched_at < self.refresh_seconds)
        if routed is None:
            if cached is None:
                raise RegistryError(404, "NAME_UNKNOWN", f"The repository with name '{name}' does not exist in the registry with id '{self.stack.account}'")
            return self.serve_manifest(request, name, cached_digest, cached, caller)
        if fresh:
            return self.serve_manifest(request, name, cached_digest, cached, caller)
        rule, upstream_name = routed
        repo_exists = self.stack.repository_exists(name)
        refused = self.import_refusal(caller, name, repo_exists)
        if refused is not None:
            if cached is not None:
                # A stale tag the caller may not refresh: the cached copy, if it may read it.
                return self.serve_manifest(request, name, cached_digest, cached, caller)
            raise refused
        try:
            status, headers, body = self.fetch(rule, f"/v2/{upstream_name}/manifests/{ref}", request.headers.get("Accept") or ACCEPT_ALL)
        except OSError as err:
            status, headers, body = 0, {}, str(err).encode()
        if status != 200:
            self.event(rule, name, ref, None, "FAILURE", f"UPSTREAM_{status or 'UNREACHABLE'}", body[:200].decode(errors="replace"))
            if cached is not None:
                return self.serve_manifest(request, name, cached_digest, cached, caller)
            if status == 404:
                raise RegistryError(404, "MANIFEST_UNKNOWN", f"Requested image not found upstream: {upstream_name}:{ref}")
            raise RegistryError(500, "UNKNOWN", f"Failed to pull {upstream_name}:{ref} from the upstream registry (status {status or 'unreachable'}).")
        digest = sha256(body)
        if by_digest and digest != ref:
            raise RegistryError(500, "DIGEST_INVALID", f"upstream content for {ref} hashes to {digest}")
        # ECR does not cache what is not a manifest: a body cut short or an error page.
        problem = None
        try:
            doc = json.loads(body)
            if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
                problem = "the upstream sent a document that is not an image manifest"
        except ValueError:
            doc = {}
            problem = "the upstream sent a manifest that is not JSON (cut short, or an error page)"
        announced = next((v for k, v in headers.items() if k.lower() == "docker-content-digest"), None)
        if not problem and announced and announced != digest:
            problem = f"the upstream announced {announced} but sent content hashing to {digest}"
        if problem:
            self.event(rule, name, ref, None, "FAILURE", "UPSTREAM_INVALID_MANIFEST", problem)
            if cached is not None:
                return self.serve_manifest(request, name, cached_digest, cached, caller)
            raise RegistryError(500, "UNKNOWN", f"Failed to pull {upstream_name}:{ref}: {problem}.")
        media_type = headers.get("Content-Type") or doc.get("mediaType", "")
        if by_digest and not repo_exists:
            # A first pull by digest is served but does not populate the cache.
            return self.serve_manifest(request, name, digest, (media_type, body), caller)
        self.stack.ensure_repository(name, rule)
        self.stack.record_image(name, digest, media_type, body, None if by_digest else ref)
        with self.lock:
            self.manifests[(name, digest)] = (media_type, body)
            if not by_digest:
                self.tags[(name, ref)] = (digest, time.time())
        self.event(rule, name, None if by_digest else ref, digest, "SUCCESS")
        return self.serve_manifest(request, name, digest, (media_type, body), caller)

    def serve_manifest(self, request: Request, name: str, digest: str, cached: tuple[str, bytes], caller: Caller | None = None) -> Response:
        self.require(caller, name, GET_IMAGE)
        media_type, body = cached
        self.stack.record_pull(name, digest, self.pull_principals(request))
        headers = [("Docker-Content-Digest", digest), ("Content-Length", str(len(body)))]
        out = Response(b"" if request.method == "HEAD" else body, 200, headers, content_type=media_type)
        out.automatically_set_content_length = False
        return out

    # -- blobs ----------------------------------------------------------------
    def blob(self, request: Request, name: str, digest: str, caller: Caller | None = None) -> Response:
        if caller is not None:
            # Another account reads layers of a repository it may read, and of no other.
            if not self.stack.repository_exists(name):
                raise RegistryError(404, "BLOB_UNKNOWN", f"blob {digest} unknown to repository {name}")
            self.require(caller, name, GET_LAYER)
        with self.lock:
            have = digest in self.blobs and digest in self.repo_layers.get(name, ())
        if have and not self.stack.has_layer(name, digest):
            # ECR's state says R does not hold it (e.g. the repository was deleted and made
            # again): R imports it again.
            have = False
        if not have:
            routed = self.route_rule(name)
            if routed is None or not self.stack.repository_exists(name):
                raise RegistryError(404, "BLOB_UNKNOWN", f"blob {digest} unknown to repository {name}")
            rule, upstream_name = routed
            try:
                status, _, body = self.fetch(rule, f"/v2/{upstream_name}/blobs/{digest}", None)
            except OSError:
                status, body = 0, b""
            if status != 200:
                raise RegistryError(404, "BLOB_UNKNOWN", f"layer {digest} is not cached and the upstream answered {status or 'nothing'}")
            if sha256(body) != digest:
                raise RegistryError(500, "DIGEST_INVALID", f"upstream blob does not hash to {digest}")
            with self.lock:
                self.blobs.setdefault(digest, body)
                self.repo_layers.setdefault(name, set()).add(digest)
            self.stack.record_layer(name, digest, len(body))
            del body
        with self.lock:
            blob = self.blobs.get(digest)
        if blob is None:  # removed from the cache meanwhile
            raise RegistryError(404, "BLOB_UNKNOWN", f"blob {digest} unknown to repository {name}")
        size = len(blob)
        if request.method == "HEAD":
            out = Response(b"", 200, [("Content-Length", str(size)), ("Docker-Content-Digest", digest)])
            out.automatically_set_content_length = False
            return out
        return Response("", 307, [("Location", f"{request.host_url.rstrip('/')}/_s3/{digest}")])

    def forget_layer(self, name: str, digest: str) -> bool:
        """Repository `name` no longer holds layer `digest` (the bytes go when no repository
        holds them); whether it did."""
        with self.lock:
            held = self.repo_layers.get(name, set())
            removed = digest in held
            held.discard(digest)
            if not any(digest in layers for layers in self.repo_layers.values()):
                self.blobs.pop(digest, None)
        return removed

    def event(self, rule: dict, name: str, tag, digest, status: str, code: str | None = None, reason: str | None = None) -> None:
        detail = {
            "sync-status": status,
            "ecr-repository-prefix": rule["ecrRepositoryPrefix"],
            "repository-name": name,
            "upstream-registry-url": rule["upstreamRegistryUrl"],
        }
        if tag:
            detail["image-tag"] = tag
        if digest:
            detail["image-digest"] = digest
        if code:
            detail["failure-code"] = code
            detail["failure-reason"] = reason or ""
        with self.lock:
            self.events.append({
                "version": "0",
                "detail-type": "ECR Pull Through Cache Action",
                "source": "aws.ecr",
                "account": self.stack.account,
                "time": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": self.region,
                "resources": [],
                "detail": detail,
            })
