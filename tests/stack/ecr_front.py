"""The ECR APIs that moto lacks or gets wrong, answered in the AWS JSON 1.1 protocol in
front of moto: pull-through cache rules (with a Validate that really reads the secret
and really authenticates to the upstream), repository creation templates, an
authorization token that expires like ECR's (12 hours) and is checked by the registry
endpoint, DescribeRepositories with `maxResults` / `nextToken` honoured, and the archive
storage class: UpdateImageStorageClass, and DescribeImages with its `filter` (moto 5.2
reads no `filter` and knows no image status: it would list archived images as pullable);
the registry permissions policy (GetRegistryPolicy / PutRegistryPolicy /
DeleteRegistryPolicy: moto's validator refuses `ecr:BatchImportUpstreamImage`) and the
REGISTRY_POLICY_SCOPE account setting that decides what it is enforced for.

Every operation answers for the caller's account, found from the request's credentials as
moto finds it (accounts.account_of): a consumer account's assumed-role credentials see that
account's rules, templates, repositories and registry policy. A token from
GetAuthorizationToken remembers the account and access key it was issued to, so that the
registry endpoint can tell a consumer's pull from the cache account's own.

Independent of ptc-core on purpose: the rules here are written from the ECR
documentation, so a routing bug in ptc-core shows up as a test failure."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import threading
from dataclasses import dataclass

from werkzeug.wrappers import Request, Response

import accounts
from iam_eval import as_list, authorize_identity, parse_policy
from upstreams import open_upstream

TARGET = "AmazonEC2ContainerRegistry_V20150921."
PREFIX_RE = re.compile(r"^((?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*/?|ROOT)$")
UPSTREAM_KINDS = {
    "public.ecr.aws": "ecr-public",
    "registry.k8s.io": "k8s",
    "quay.io": "quay",
    "registry-1.docker.io": "docker-hub",
    "ghcr.io": "github-container-registry",
    "registry.gitlab.com": "gitlab-container-registry",
}
NEEDS_SECRET = {"docker-hub", "github-container-registry", "gitlab-container-registry", "azure-container-registry"}
MAX_RULES = 50
TOKEN_TTL = 12 * 3600
# "You can expect ECR to restore the image within 20 minutes"
# (https://docs.aws.amazon.com/AmazonECR/latest/userguide/archive_restore_image.html).
RESTORE_SECONDS = 20 * 60
IMAGE_STATUS_FILTERS = {"ACTIVE", "ARCHIVED", "ACTIVATING", "ANY"}
# PutRegistryPolicy: "policyText ... Length Constraints: Minimum length of 0. Maximum length
# of 10240." (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PutRegistryPolicy.html)
REGISTRY_POLICY_MAX = 10240
# The registry policy scope (https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry-permissions-create.html):
# "V1 - For version 1, Amazon ECR only enforces the following permissions at the private
# registry level": ecr:ReplicateImage, ecr:BatchImportUpstreamImage, ecr:CreateRepository
# (a V1 policy naming another action is refused: "Invalid registry policy provided", as
# https://repost.aws/questions/QUotxPDrRVT2ikDhEV92zQwA reports and moto reproduces);
# "V2 - For version 2, Amazon ECR allows all ECR actions in the policy and enforces the
# registry policy in all ECR requests". "The V2 version is the default registry policy scope."
REGISTRY_SCOPE_V1_ACTIONS = {"ecr:replicateimage", "ecr:batchimportupstreamimage", "ecr:createrepository"}
REGISTRY_SCOPES = {"V1", "V2"}
DEFAULT_REGISTRY_SCOPE = "V2"
POLICY_VERSIONS = {"2012-10-17", "2008-10-17"}
STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
INVALID_REGISTRY_POLICY = "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided'"
# Pull-time update exclusions
# (https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-time-update-exclusions.html):
# "Pull-time update exclusions allow you to specify IAM role ARNs that should not update image
# pull times when they pull images ... When a role in the exclusion list pulls an image, the
# pull time remains unchanged. Any other role continues to update pull time. You can configure
# up to 100 exclusions per account." The ARN's pattern and length are those of the API model's
# PrincipalArn shape (botocore's ecr service-2.json, the same as the AWS::ECR::PullTimeUpdateExclusion
# schema); `\w` is ASCII there (a Java pattern), hence re.ASCII.
PRINCIPAL_ARN_RE = re.compile(r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:(role|user)/[\w+=,.@-]+(/[\w+=,.@-]+)*$", re.ASCII)
PRINCIPAL_ARN_MAX = 200
MAX_PULL_TIME_EXCLUSIONS = 100

# The account the operation being answered is for (set per request by EcrFront.handle; the
# stack's werkzeug server answers each request on its own thread).
_request = threading.local()


@dataclass(frozen=True)
class Token:
    """What a registry token was issued to: its expiry, the caller's account, and the access
    key it was asked with (the registry endpoint finds the principal from it)."""

    expires: float
    account: str
    access_key: str | None


class EcrError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def upstream_kind(url: str) -> str | None:
    if url in UPSTREAM_KINDS:
        return UPSTREAM_KINDS[url]
    if url.endswith(".azurecr.io"):
        return "azure-container-registry"
    if re.fullmatch(r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com", url):
        return "ecr"
    return None


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class EcrFront:
    def __init__(self, stack) -> None:
        self.stack = stack
        self.lock = threading.RLock()
        self.rules: dict[tuple[str, str, str], dict] = {}  # (account, region, prefix) -> rule
        self.templates: dict[tuple[str, str, str], dict] = {}  # (account, region, prefix) -> template
        self.tokens: dict[str, Token] = {}  # password -> what it was issued to
        self.settings: dict[tuple[str, str, str], str] = {}  # (account, region, name) -> value
        # (account, region) -> {principal ARN: createdAt}, in the order they were registered
        self.exclusions: dict[tuple[str, str], dict[str, dt.datetime]] = {}
        self.token_ttl = TOKEN_TTL
        self.throttle: dict[str, int] = {}  # operation -> throttled answers left
        self.calls: dict[str, int] = {}

    # -- dispatch -------------------------------------------------------------
    def handles(self, request: Request) -> bool:
        target = request.headers.get("X-Amz-Target", "")
        if not target.startswith(TARGET):
            return False
        op = target[len(TARGET):]
        with self.lock:
            self.calls[op] = self.calls.get(op, 0) + 1
            if self.throttle.get(op, 0) > 0:
                return True
        return hasattr(self, f"op_{op}")

    def handle(self, request: Request, region: str) -> Response:
        op = request.headers["X-Amz-Target"][len(TARGET):]
        try:
            with self.lock:
                if self.throttle.get(op, 0) > 0:
                    self.throttle[op] -= 1
                    raise EcrError("ThrottlingException", "Rate exceeded")
            body = json.loads(request.get_data() or b"{}")
            _request.account = accounts.account_of(request.headers, self.stack.account)
            _request.access_key = accounts.access_key_of(request.headers)
            result = getattr(self, f"op_{op}")(body, region)
            return Response(json.dumps(result, default=_json_default), 200, content_type="application/x-amz-json-1.1")
        except EcrError as err:
            payload = {"__type": err.code, "message": err.message}
            return Response(json.dumps(payload), err.status, headers={"x-amzn-ErrorType": err.code}, content_type="application/x-amz-json-1.1")
        finally:
            _request.account = _request.access_key = None

    # -- helpers --------------------------------------------------------------
    @property
    def account(self) -> str:
        """The caller's account while an operation is answered; the cache account (the
        stack's own) everywhere else, e.g. for the registry endpoint."""
        return getattr(_request, "account", None) or self.stack.account

    def secret_value(self, region: str, arn: str) -> dict:
        """Read a secret the way ECR does; raises EcrError with ECR's exception names."""
        from moto.secretsmanager.models import secretsmanager_backends

        backend = secretsmanager_backends[self.account][region]
        name = arn.split(":secret:", 1)[-1] if ":secret:" in arn else arn
        if not name.startswith("ecr-pullthroughcache/"):
            raise EcrError("UnableToAccessSecretException", f"The secret {arn} name must start with ecr-pullthroughcache/.")
        try:
            value = backend.get_secret_value(arn, None, None)
        except Exception as exc:  # moto raises its own exception types
            kind = type(exc).__name__
            if "NotFound" in kind:
                raise EcrError("SecretNotFoundException", f"The specified secret {arn} could not be found.") from exc
            raise EcrError("UnableToAccessSecretException", f"The secret {arn} could not be accessed: {kind}.") from exc
        return value

    def _rule(self, region: str, prefix: str) -> dict:
        rule = self.rules.get((self.account, region, prefix.rstrip("/") if prefix != "ROOT" else prefix))
        if rule is None:
            raise EcrError("PullThroughCacheRuleNotFoundException", f"The pull through cache rule with prefix '{prefix}' does not exist in the registry with id '{self.account}'")
        return rule

    def rules_for(self, region: str, account: str | None = None) -> list[dict]:
        account = account or self.account
        with self.lock:
            return [dict(r) for (acct, reg, _), r in self.rules.items() if acct == account and reg == region]

    def templates_for(self, region: str, account: str | None = None) -> list[dict]:
        account = account or self.account
        with self.lock:
            return [dict(t) for (acct, reg, _), t in self.templates.items() if acct == account and reg == region]

    def token(self, password: str) -> Token | None:
        """The token's record while it is valid; None once it has expired or was never issued."""
        with self.lock:
            token = self.tokens.get(password)
        return token if token is not None and token.expires > now().timestamp() else None

    def token_valid(self, password: str) -> bool:
        return self.token(password) is not None

    def registry_policy(self, account: str, region: str) -> str | None:
        """The registry permissions policy of an account's registry in a region (kept on
        moto's ECR backend, which has the attribute and keeps it per account and region)."""
        from moto.ecr.models import ecr_backends

        return ecr_backends[account][region].registry_policy or None

    def registry_policy_scope(self, account: str, region: str) -> str:
        with self.lock:
            return self.settings.get((account, region, "REGISTRY_POLICY_SCOPE"), DEFAULT_REGISTRY_SCOPE)

    # -- authorization token --------------------------------------------------
    def op_GetAuthorizationToken(self, body: dict, region: str) -> dict:
        """A consumer account's role needs `ecr:GetAuthorizationToken` in its identity policy
        (it is decided by identity policies alone: "...because no identity-based policy
        allows the ecr:GetAuthorizationToken action"). The cache account's own callers are
        not checked, as before."""
        access_key = getattr(_request, "access_key", None)
        if self.account != self.stack.account:
            caller = accounts.resolve_caller(self.account, access_key, self.stack.organization)
            problem = authorize_identity(caller, "ecr:GetAuthorizationToken", "*")
            if problem:
                raise EcrError("AccessDeniedException", problem)
        password = secrets.token_urlsafe(48)
        expires = now() + dt.timedelta(seconds=self.token_ttl)
        with self.lock:
            self.tokens[password] = Token(expires.timestamp(), self.account, access_key)
        token = base64.b64encode(f"AWS:{password}".encode()).decode()
        return {
            "authorizationData": [
                {
                    "authorizationToken": token,
                    "expiresAt": expires,
                    "proxyEndpoint": f"https://{self.account}.dkr.ecr.{region}.amazonaws.com",
                }
            ]
        }

    # -- pull-through cache rules ---------------------------------------------
    def op_CreatePullThroughCacheRule(self, body: dict, region: str) -> dict:
        prefix = body.get("ecrRepositoryPrefix", "")
        url = body.get("upstreamRegistryUrl", "")
        if not (2 <= len(prefix) <= 30) or not PREFIX_RE.match(prefix):
            raise EcrError("InvalidParameterException", f"Invalid parameter at 'ecrRepositoryPrefix' failed to satisfy constraint: '{prefix}'")
        prefix = prefix.rstrip("/") if prefix != "ROOT" else prefix
        kind = body.get("upstreamRegistry") or upstream_kind(url)
        if kind is None or (body.get("upstreamRegistry") and upstream_kind(url) not in (kind, None)):
            raise EcrError("UnsupportedUpstreamRegistryException", f"The upstream registry URL '{url}' is not supported.")
        credential = body.get("credentialArn")
        role = body.get("customRoleArn")
        if kind in NEEDS_SECRET and not credential:
            raise EcrError("InvalidParameterException", f"A credentialArn is required for upstream registry '{url}'.")
        if kind == "ecr" and not role:
            raise EcrError("InvalidParameterException", "A customRoleArn is required for an ECR upstream.")
        if credential:
            self.secret_value(region, credential)
        upstream_prefix = body.get("upstreamRepositoryPrefix")
        if upstream_prefix and kind != "ecr":
            raise EcrError("InvalidParameterException", "upstreamRepositoryPrefix is supported only for ECR upstreams.")
        with self.lock:
            if (self.account, region, prefix) in self.rules:
                raise EcrError("PullThroughCacheRuleAlreadyExistsException", f"A pull through cache rule with prefix '{prefix}' already exists.")
            if len(self.rules_for(region)) >= MAX_RULES:
                raise EcrError("LimitExceededException", f"The maximum number of pull through cache rules ({MAX_RULES}) has been reached.")
            rule = {
                "ecrRepositoryPrefix": prefix,
                "upstreamRegistryUrl": url,
                "createdAt": now(),
                "updatedAt": now(),
                "registryId": self.account,
                "upstreamRegistry": kind,
            }
            if credential:
                rule["credentialArn"] = credential
            if role:
                rule["customRoleArn"] = role
            if kind == "ecr":
                rule["upstreamRepositoryPrefix"] = upstream_prefix or "ROOT"
            self.rules[(self.account, region, prefix)] = rule
            return {k: v for k, v in rule.items() if k != "updatedAt"}

    def op_DescribePullThroughCacheRules(self, body: dict, region: str) -> dict:
        wanted = body.get("ecrRepositoryPrefixes")
        with self.lock:
            if wanted:
                rules = [dict(self._rule(region, p)) for p in wanted]
            else:
                rules = sorted(self.rules_for(region), key=lambda r: r["ecrRepositoryPrefix"])
        return self._page(rules, body, "pullThroughCacheRules")

    def op_UpdatePullThroughCacheRule(self, body: dict, region: str) -> dict:
        with self.lock:
            rule = self._rule(region, body.get("ecrRepositoryPrefix", ""))
            if body.get("credentialArn"):
                self.secret_value(region, body["credentialArn"])
                rule["credentialArn"] = body["credentialArn"]
            if body.get("customRoleArn"):
                rule["customRoleArn"] = body["customRoleArn"]
            rule["updatedAt"] = now()
            out = {k: rule[k] for k in ("ecrRepositoryPrefix", "registryId", "updatedAt") if k in rule}
            for k in ("credentialArn", "customRoleArn", "upstreamRepositoryPrefix"):
                if k in rule:
                    out[k] = rule[k]
            return out

    def op_DeletePullThroughCacheRule(self, body: dict, region: str) -> dict:
        with self.lock:
            rule = self._rule(region, body.get("ecrRepositoryPrefix", ""))
            del self.rules[(self.account, region, rule["ecrRepositoryPrefix"])]
            return {k: v for k, v in rule.items() if k != "updatedAt"}

    def op_ValidatePullThroughCacheRule(self, body: dict, region: str) -> dict:
        with self.lock:
            rule = dict(self._rule(region, body.get("ecrRepositoryPrefix", "")))
        failure = None
        creds = None
        if rule.get("credentialArn"):
            try:
                value = self.secret_value(region, rule["credentialArn"])
                doc = json.loads(value.get("SecretString") or "{}")
                if not isinstance(doc, dict) or not doc.get("username") or not doc.get("accessToken"):
                    failure = "The secret does not contain the keys username and accessToken."
                else:
                    creds = (doc["username"], doc["accessToken"])
            except EcrError as err:
                failure = f"{err.code}: {err.message}"
            except ValueError:
                failure = "The secret value is not valid JSON."
        if failure is None:
            failure = self.probe_upstream(rule["upstreamRegistryUrl"], creds)
        out = {k: rule[k] for k in ("ecrRepositoryPrefix", "registryId", "upstreamRegistryUrl") if k in rule}
        for k in ("credentialArn", "customRoleArn", "upstreamRepositoryPrefix"):
            if k in rule:
                out[k] = rule[k]
        out["isValid"] = failure is None
        if failure:
            out["failure"] = failure
        return out

    def probe_upstream(self, url: str, creds: tuple[str, str] | None) -> str | None:
        """GET /v2/ on the upstream with the rule's credentials; None when it accepts them."""
        upstream = self.stack.upstream_for(url)
        if upstream is None:
            return f"Unable to reach the upstream registry {url}."
        try:
            status, _, _ = open_upstream(upstream.url, "/v2/", creds, None, 10)
        except OSError as err:
            return f"Unable to reach the upstream registry {url}: {err}."
        if status == 200:
            return None
        if status in (401, 403):
            return "Invalid credentials: the upstream registry refused the username and access token."
        return f"The upstream registry answered HTTP {status}."

    # -- repository creation templates ----------------------------------------
    def _template_from(self, body: dict, existing: dict | None) -> dict:
        prefix = body.get("prefix", "")
        if prefix != "ROOT" and not PREFIX_RE.match(prefix):
            raise EcrError("InvalidParameterException", f"Invalid parameter at 'prefix' failed to satisfy constraint: '{prefix}'")
        applied = body.get("appliedFor") or (existing or {}).get("appliedFor")
        if not applied or any(a not in ("REPLICATION", "PULL_THROUGH_CACHE", "CREATE_ON_PUSH") for a in applied):
            raise EcrError("InvalidParameterException", "appliedFor must list REPLICATION, PULL_THROUGH_CACHE or CREATE_ON_PUSH.")
        for field in ("lifecyclePolicy", "repositoryPolicy"):
            if body.get(field):
                try:
                    json.loads(body[field])
                except ValueError as exc:
                    raise EcrError("InvalidParameterException", f"Invalid parameter at '{field}': not JSON.") from exc
        template = dict(existing or {})
        for field in ("description", "encryptionConfiguration", "resourceTags", "imageTagMutability",
                      "imageTagMutabilityExclusionFilters", "repositoryPolicy", "lifecyclePolicy", "customRoleArn"):
            if field in body:
                template[field] = body[field]
        template["prefix"] = prefix.rstrip("/") if prefix != "ROOT" else prefix
        template["appliedFor"] = applied
        template.setdefault("imageTagMutability", "MUTABLE")
        template.setdefault("encryptionConfiguration", {"encryptionType": "AES256"})
        template.setdefault("createdAt", now())
        template["updatedAt"] = now()
        return template

    def op_CreateRepositoryCreationTemplate(self, body: dict, region: str) -> dict:
        template = self._template_from(body, None)
        with self.lock:
            if (self.account, region, template["prefix"]) in self.templates:
                raise EcrError("TemplateAlreadyExistsException", f"A template with prefix '{template['prefix']}' already exists.")
            self.templates[(self.account, region, template["prefix"])] = template
        return {"registryId": self.account, "repositoryCreationTemplate": template}

    def op_UpdateRepositoryCreationTemplate(self, body: dict, region: str) -> dict:
        prefix = body.get("prefix", "").rstrip("/") or body.get("prefix", "")
        with self.lock:
            existing = self.templates.get((self.account, region, prefix))
            if existing is None:
                raise EcrError("TemplateNotFoundException", f"The template with prefix '{prefix}' does not exist.")
            template = self._template_from(body, existing)
            self.templates[(self.account, region, prefix)] = template
        return {"registryId": self.account, "repositoryCreationTemplate": template}

    def op_DeleteRepositoryCreationTemplate(self, body: dict, region: str) -> dict:
        prefix = body.get("prefix", "").rstrip("/") or body.get("prefix", "")
        with self.lock:
            template = self.templates.pop((self.account, region, prefix), None)
        if template is None:
            raise EcrError("TemplateNotFoundException", f"The template with prefix '{prefix}' does not exist.")
        return {"registryId": self.account, "repositoryCreationTemplate": template}

    def op_DescribeRepositoryCreationTemplates(self, body: dict, region: str) -> dict:
        wanted = body.get("prefixes")
        with self.lock:
            templates = sorted(self.templates_for(region), key=lambda t: t["prefix"])
        if wanted:
            templates = [t for t in templates if t["prefix"] in {p.rstrip("/") if p != "ROOT" else p for p in wanted}]
        out = self._page(templates, body, "repositoryCreationTemplates")
        out["registryId"] = self.account
        return out

    # -- pull-time update exclusions -------------------------------------------------
    # https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-time-update-exclusions.html and
    # https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-time-update-exclusions-considerations.html:
    # "The default page size for listing exclusions is 100 ... If you try to create an exclusion
    # that already exists, you'll receive an ExclusionAlreadyExistsException error. If you try to
    # delete an exclusion that doesn't exist, you'll receive an ExclusionNotFoundException error."
    # (both are the errors botocore's model declares for Register / Deregister). Kept per account
    # and region, as the registry is; the registry endpoint reads the cache account's list.
    @staticmethod
    def _principal_arn(body: dict) -> str:
        arn = body.get("principalArn")
        if not isinstance(arn, str) or len(arn) > PRINCIPAL_ARN_MAX or not PRINCIPAL_ARN_RE.fullmatch(arn):
            raise EcrError("InvalidParameterException",
                           f"Invalid parameter at 'principalArn' failed to satisfy constraint: 'must be an IAM role or user ARN "
                           f"matching {PRINCIPAL_ARN_RE.pattern} with at most {PRINCIPAL_ARN_MAX} characters' ({arn!r})")
        return arn

    def op_RegisterPullTimeUpdateExclusion(self, body: dict, region: str) -> dict:
        """https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_RegisterPullTimeUpdateExclusion.html"""
        arn = self._principal_arn(body)
        with self.lock:
            registered = self.exclusions.setdefault((self.account, region), {})
            if arn in registered:
                raise EcrError("ExclusionAlreadyExistsException", f"The pull time update exclusion for '{arn}' already exists in the registry with id '{self.account}'")
            if len(registered) >= MAX_PULL_TIME_EXCLUSIONS:
                raise EcrError("LimitExceededException", f"The maximum number of pull time update exclusions ({MAX_PULL_TIME_EXCLUSIONS}) has been reached for the registry with id '{self.account}'")
            registered[arn] = created = now()
        return {"principalArn": arn, "createdAt": created}

    def op_DeregisterPullTimeUpdateExclusion(self, body: dict, region: str) -> dict:
        """https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DeregisterPullTimeUpdateExclusion.html"""
        arn = self._principal_arn(body)
        with self.lock:
            registered = self.exclusions.get((self.account, region), {})
            if arn not in registered:
                raise EcrError("ExclusionNotFoundException", f"The pull time update exclusion for '{arn}' does not exist in the registry with id '{self.account}'")
            del registered[arn]
        return {"principalArn": arn}

    def op_ListPullTimeUpdateExclusions(self, body: dict, region: str) -> dict:
        """https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ListPullTimeUpdateExclusions.html:
        `maxResults` 1-1000, "If this parameter is not used ... returns up to 100 results"."""
        with self.lock:
            arns = list(self.exclusions.get((self.account, region), {}))
        return self._page(arns, body, "pullTimeUpdateExclusions", default_max=100)

    def has_pull_time_exclusions(self, account: str, region: str) -> bool:
        with self.lock:
            return bool(self.exclusions.get((account, region)))

    def pull_time_excluded(self, account: str, region: str, principal_arns) -> bool:
        """Whether a pull by a caller with these principal ARNs leaves the image's
        lastRecordedPullTime unchanged in `account`'s registry."""
        with self.lock:
            registered = self.exclusions.get((account, region))
            return bool(registered) and any(arn in registered for arn in principal_arns)

    # -- the registry permissions policy -----------------------------------------
    # https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PutRegistryPolicy.html
    # https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetRegistryPolicy.html
    # https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DeleteRegistryPolicy.html
    # One policy per registry (account and region); kept as the text that was put.
    def op_PutRegistryPolicy(self, body: dict, region: str) -> dict:
        text = body.get("policyText")
        scope = self.registry_policy_scope(self.account, region)
        problem = registry_policy_problem(text, scope)
        if problem:
            # ECR's message (moto's too); what is wrong is added for whoever reads the test log.
            raise EcrError("InvalidParameterException", f"{INVALID_REGISTRY_POLICY} ({problem})")
        from moto.ecr.models import ecr_backends

        with self.lock:
            ecr_backends[self.account][region].registry_policy = text
        return {"registryId": self.account, "policyText": text}

    def op_GetRegistryPolicy(self, body: dict, region: str) -> dict:
        text = self.registry_policy(self.account, region)
        if text is None:
            raise EcrError("RegistryPolicyNotFoundException", f"Registry policy does not exist in the registry with id '{self.account}'")
        return {"registryId": self.account, "policyText": text}

    def op_DeleteRegistryPolicy(self, body: dict, region: str) -> dict:
        from moto.ecr.models import ecr_backends

        with self.lock:
            backend = ecr_backends[self.account][region]
            text = backend.registry_policy
            if not text:
                raise EcrError("RegistryPolicyNotFoundException", f"Registry policy does not exist in the registry with id '{self.account}'")
            backend.registry_policy = None
        return {"registryId": self.account, "policyText": text}

    # https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PutAccountSetting.html and
    # API_GetAccountSetting.html: REGISTRY_POLICY_SCOPE is V1 or V2 (V2 by default, see
    # REGISTRY_SCOPES above). BASIC_SCAN_TYPE_VERSION is not reproduced.
    def _setting_name(self, body: dict) -> str:
        name = body.get("name")
        if name != "REGISTRY_POLICY_SCOPE":
            raise EcrError("InvalidParameterException", f"Invalid parameter at 'name': the stack knows REGISTRY_POLICY_SCOPE only, not {name!r}")
        return name

    def op_GetAccountSetting(self, body: dict, region: str) -> dict:
        name = self._setting_name(body)
        return {"name": name, "value": self.registry_policy_scope(self.account, region)}

    def op_PutAccountSetting(self, body: dict, region: str) -> dict:
        name = self._setting_name(body)
        value = body.get("value")
        if value not in REGISTRY_SCOPES:
            raise EcrError("InvalidParameterException", f"Invalid parameter at 'value': {value!r} is not V1 or V2")
        with self.lock:
            self.settings[(self.account, region, name)] = value
        return {"name": name, "value": value}

    # -- moto fixes -----------------------------------------------------------
    def op_DescribeRepositories(self, body: dict, region: str) -> dict:
        """moto ignores maxResults; ECR pages with it (1-1000, default 100)."""
        from moto.ecr.models import ecr_backends

        backend = ecr_backends[self.account][region]
        names = body.get("repositoryNames")
        repos = backend.describe_repositories(registry_id=body.get("registryId"), repository_names=names)
        items = [_repository_json(r) for r in repos]
        if names:
            return {"repositories": items}
        return self._page(items, body, "repositories", default_max=100)

    # -- the archive storage class ------------------------------------------------
    # https://docs.aws.amazon.com/AmazonECR/latest/userguide/archive_restore_image.html: an
    # archived image stays described (imageStatus ARCHIVED) but cannot be pulled (404); a
    # restore (targetStorageClass STANDARD) makes it ACTIVATING, then ACTIVE within 20 minutes.
    # The state lives on moto's Image objects.
    @staticmethod
    def image_status(image) -> str:
        status = getattr(image, "_ptc_status", "ACTIVE")
        if status == "ACTIVATING" and now().timestamp() >= getattr(image, "_ptc_restored_by", 0):
            image._ptc_status = status = "ACTIVE"
            image._ptc_activated_at = now()
        return status

    def _repository(self, body: dict, region: str):
        from moto.ecr.models import ecr_backends

        name = body.get("repositoryName", "")
        repo = ecr_backends[self.account][region].repositories.get(name)
        if repo is None:
            raise EcrError("RepositoryNotFoundException", f"The repository with name '{name}' does not exist in the registry with id '{self.account}'")
        return repo

    @staticmethod
    def _find_image(repo, image_id: dict):
        tag, digest = image_id.get("imageTag"), image_id.get("imageDigest")
        for image in repo.images:
            if (digest is None or image.get_image_digest() == digest) and (tag is None or tag in image.image_tags):
                return image
        return None

    def op_UpdateImageStorageClass(self, body: dict, region: str) -> dict:
        """https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_UpdateImageStorageClass.html"""
        repo = self._repository(body, region)
        target = body.get("targetStorageClass")
        if target not in ("ARCHIVE", "STANDARD"):
            raise EcrError("InvalidParameterException", "targetStorageClass must be ARCHIVE or STANDARD.")
        image_id = body.get("imageId") or {}
        with self.lock:
            image = self._find_image(repo, image_id)
            if image is None:
                raise EcrError("ImageNotFoundException", f"The image with imageId {image_id} does not exist within the repository with name '{repo.name}' in the registry with id '{self.account}'")
            status = self.image_status(image)
            # Asking for the class the image is already in (or is on its way to) changes nothing;
            # AWS does not document this case.
            if target == "ARCHIVE" and status == "ACTIVE":
                image._ptc_status = "ARCHIVED"
                image._ptc_archived_at = now()
            elif target == "STANDARD" and status == "ARCHIVED":
                image._ptc_status = "ACTIVATING"
                image._ptc_restored_by = now().timestamp() + RESTORE_SECONDS
            status = self.image_status(image)
        return {"registryId": self.account, "repositoryName": repo.name,
                "imageId": {"imageDigest": image.get_image_digest(), **({"imageTag": image_id["imageTag"]} if image_id.get("imageTag") else {})},
                "imageStatus": status}

    def op_DescribeImages(self, body: dict, region: str) -> dict:
        """ECR's rule for `filter.imageStatus`: "If not specified, only images with ACTIVE
        status are returned"
        (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImagesFilter.html),
        applied to a lookup by `imageIds` too (an image filtered out is not found);
        `filter.tagStatus` TAGGED / UNTAGGED / ANY; `maxResults` 1-1000 (default 100) and
        `nextToken` when no `imageIds` are given."""
        repo = self._repository(body, region)
        flt = body.get("filter") or {}
        wanted = flt.get("imageStatus") or "ACTIVE"
        if wanted not in IMAGE_STATUS_FILTERS:
            raise EcrError("InvalidParameterException", f"Invalid parameter at 'filter.imageStatus': {wanted}")
        tag_status = flt.get("tagStatus") or "ANY"

        def keep(image) -> bool:
            status_ok = wanted == "ANY" or self.image_status(image) == wanted
            tags_ok = tag_status == "ANY" or (tag_status == "TAGGED") == bool(image.image_tags)
            return status_ok and tags_ok

        with self.lock:
            if body.get("imageIds"):
                found = []
                for image_id in body["imageIds"]:
                    image = self._find_image(repo, image_id)
                    if image is None or not keep(image):
                        raise EcrError("ImageNotFoundException", f"The image with imageId {image_id} does not exist within the repository with name '{repo.name}' in the registry with id '{self.account}'")
                    if image not in found:
                        found.append(image)
                return {"imageDetails": [self._image_json(repo, i) for i in found]}
            items = [self._image_json(repo, i) for i in repo.images if keep(i)]
        return self._page(items, body, "imageDetails", default_max=100)

    def _image_json(self, repo, image) -> dict:
        out = {
            "registryId": repo.registry_id,
            "repositoryName": repo.name,
            "imageDigest": image.get_image_digest(),
            "imagePushedAt": image.image_pushed_at,
            "imageStatus": self.image_status(image),
        }
        if image.image_tags:
            out["imageTags"] = list(image.image_tags)
        size = image.get_image_size_in_bytes()
        if size is not None:
            out["imageSizeInBytes"] = size
        if image.image_manifest_media_type:
            out["imageManifestMediaType"] = image.image_manifest_media_type
        for key, attr in (("lastRecordedPullTime", "last_recorded_pull_time"),
                          ("lastArchivedAt", "_ptc_archived_at"), ("lastActivatedAt", "_ptc_activated_at")):
            value = getattr(image, attr, None)
            if value is not None:
                out[key] = value
        return out

    @staticmethod
    def _page(items: list, body: dict, key: str, default_max: int = 1000) -> dict:
        max_results = body.get("maxResults") or default_max
        if not (1 <= max_results <= 1000):
            raise EcrError("InvalidParameterException", "maxResults must be between 1 and 1000.")
        start = 0
        if body.get("nextToken"):
            try:
                start = int(base64.b64decode(body["nextToken"]).decode())
            except ValueError as exc:
                raise EcrError("InvalidParameterException", "Invalid nextToken.") from exc
        page = items[start:start + max_results]
        out = {key: page}
        if start + max_results < len(items):
            out["nextToken"] = base64.b64encode(str(start + max_results).encode()).decode()
        return out


def registry_policy_problem(text, scope: str) -> str | None:
    """Why ECR would refuse `text` as a registry policy, or None. The checks: the API's
    length limit; a JSON object whose Statement is a statement or a non-empty list of them;
    each statement with Effect (Allow or Deny), a Principal, an Action and a Resource (the
    IAM JSON policy grammar, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html,
    and the registry policy examples, which always name them), no element IAM does not know;
    the actions the scope allows (V1: the three registry actions or `ecr:*`; V2: ECR actions
    only, an assumption: AWS says "all ECR actions"). Not checked: Sid uniqueness, Condition
    operators, ARN syntax."""
    if not isinstance(text, str) or not text.strip():
        return "policyText is required"
    if len(text) > REGISTRY_POLICY_MAX:
        return f"policyText has {len(text)} characters, more than {REGISTRY_POLICY_MAX}"
    doc = parse_policy(text)
    if doc is None:
        return "not a JSON object"
    if "Version" in doc and doc["Version"] not in POLICY_VERSIONS:
        return f"Version {doc['Version']!r} is not 2012-10-17 or 2008-10-17"
    unknown = set(doc) - {"Version", "Id", "Statement"}
    if unknown:
        return f"unknown policy elements {sorted(unknown)}"
    raw = doc.get("Statement")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        return "Statement must be a statement or a non-empty list of statements"
    for index, stmt in enumerate(raw):
        where = f"statement {stmt.get('Sid') or index}" if isinstance(stmt, dict) else f"statement {index}"
        if not isinstance(stmt, dict):
            return f"{where} is not an object"
        unknown = set(stmt) - STATEMENT_KEYS
        if unknown:
            return f"{where} has unknown elements {sorted(unknown)}"
        if stmt.get("Effect") not in ("Allow", "Deny"):
            return f"{where}: Effect must be Allow or Deny"
        if "Principal" not in stmt and "NotPrincipal" not in stmt:
            return f"{where}: no Principal"
        if "Resource" not in stmt and "NotResource" not in stmt:
            return f"{where}: no Resource"
        if "Action" not in stmt and "NotAction" not in stmt:
            return f"{where}: no Action"
        actions = as_list(stmt.get("Action", stmt.get("NotAction")))
        if not actions or not all(isinstance(a, str) and a for a in actions):
            return f"{where}: Action must be a string or a list of strings"
        for action in actions:
            lowered = action.lower()
            if scope == "V1" and lowered not in REGISTRY_SCOPE_V1_ACTIONS | {"ecr:*"}:
                return f"{where}: {action} is not a registry action of scope V1 (ecr:ReplicateImage, ecr:BatchImportUpstreamImage, ecr:CreateRepository)"
            if scope == "V2" and not lowered.startswith("ecr:"):
                return f"{where}: {action} is not an ECR action"
    # The IAM grammar as moto checks it (element types, Condition operators, ARN formats),
    # without moto's Version and Sid-uniqueness rules, which ECR does not document.
    from moto.iam.policy_validation import IAMPolicyDocumentValidator

    validator = IAMPolicyDocumentValidator(text)
    validator._validate_version = lambda: None
    validator._validate_sid_uniqueness = lambda: None
    try:
        validator.validate()
    except Exception as exc:  # moto's MalformedPolicyDocument
        return getattr(exc, "message", None) or str(exc)
    return None


def _repository_json(repo) -> dict:
    created = repo.created_at
    if isinstance(created, dt.datetime):
        created = created.timestamp()
    return {
        "repositoryArn": repo.arn,
        "registryId": repo.registry_id,
        "repositoryName": repo.name,
        "repositoryUri": repo.uri,
        "createdAt": created,
        "imageTagMutability": repo.image_tag_mutability,
        "imageScanningConfiguration": repo.image_scanning_configuration,
        "encryptionConfiguration": repo.encryption_configuration,
    }


def _json_default(value):
    if isinstance(value, dt.datetime):
        return value.timestamp()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
