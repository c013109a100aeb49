//! Pull-through cache rules and routing, both ways:
//! upstream reference → cached repository (`<prefix>/<upstream path>`), and
//! cached repository → upstream registry and path.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::reference::{DOCKER_HUB, DOCKER_HUB_ALIASES, Digest, ImageReference};

/// The upstream kinds ECR knows (`upstreamRegistry`). The SDK enum is non-exhaustive and AWS adds
/// kinds faster than the API reference lists them (the user guide named Chainguard before the
/// `upstreamRegistryUrl` list of the API reference did): an unknown value is carried as
/// [`UpstreamKind::Other`], never rejected, and such a rule is checked as a generic registry
/// (see [`PtcRule::unknown_kind_note`]).
///
/// Serialised as the `upstreamRegistry` value, e.g. `docker-hub`
/// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PullThroughCacheRule.html>,
/// <https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache.html>).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum UpstreamKind {
    /// `ecr-public`: Amazon ECR Public, `public.ecr.aws`.
    EcrPublic,
    /// `k8s`: the Kubernetes registry, `registry.k8s.io`.
    K8s,
    /// `quay`: `quay.io`.
    Quay,
    /// `docker-hub`: Docker Hub, `registry-1.docker.io`; needs a credential.
    DockerHub,
    /// `github-container-registry`: `ghcr.io`; needs a credential.
    GithubContainerRegistry,
    /// `gitlab-container-registry`: `registry.gitlab.com`; needs a credential.
    GitlabContainerRegistry,
    /// `azure-container-registry`: `<name>.azurecr.io`; needs a credential.
    AzureContainerRegistry,
    /// `ecr`: another private ECR registry, `<12 digits>.dkr.ecr.<region>.amazonaws.com`
    /// (ECR-to-ECR rules, with [`PtcRule::custom_role_arn`] instead of a secret).
    Ecr,
    /// `chainguard`: Chainguard's registry, `cgr.dev`; needs a credential (a Chainguard pull
    /// token in the secret). The user guide lists it with the upstreams that "require
    /// authentication with AWS Secrets Manager secret"
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache.html>), the
    /// SDK's `UpstreamRegistry` has `chainguard`; the host is Chainguard's own guide's
    /// (<https://edu.chainguard.dev/chainguard/containers/chainguard-registry/pull-through-guides/ecr-pull-through/>).
    Chainguard,
    /// Any other value ECR sends, kept as sent; or, for a rule built from a URL alone (an
    /// expected rule, or ECR's answer without `upstreamRegistry`) whose host this version does
    /// not know, that host. Such a rule is checked as a generic registry (see
    /// [`PtcRule::unknown_kind_note`]).
    Other(String),
}

impl UpstreamKind {
    /// The `upstreamRegistry` value, e.g. `docker-hub` (the text itself for `Other`).
    pub fn as_str(&self) -> &str {
        match self {
            Self::EcrPublic => "ecr-public",
            Self::K8s => "k8s",
            Self::Quay => "quay",
            Self::DockerHub => "docker-hub",
            Self::GithubContainerRegistry => "github-container-registry",
            Self::GitlabContainerRegistry => "gitlab-container-registry",
            Self::AzureContainerRegistry => "azure-container-registry",
            Self::Ecr => "ecr",
            Self::Chainguard => "chainguard",
            Self::Other(value) => value,
        }
    }

    /// The kind an `upstreamRegistry` value names; an unknown one is [`Other`](Self::Other), never
    /// an error.
    pub fn parse(value: &str) -> Self {
        match value {
            "ecr-public" => Self::EcrPublic,
            "k8s" => Self::K8s,
            "quay" => Self::Quay,
            "docker-hub" => Self::DockerHub,
            "github-container-registry" => Self::GithubContainerRegistry,
            "gitlab-container-registry" => Self::GitlabContainerRegistry,
            "azure-container-registry" => Self::AzureContainerRegistry,
            "ecr" => Self::Ecr,
            "chainguard" => Self::Chainguard,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The kind of an upstream registry URL, as ECR infers it.
    ///
    /// `url` is a bare host as [`normalise_upstream_url`] leaves it (no scheme, no path),
    /// compared without regard to case: `public.ecr.aws`, `registry.k8s.io`, `quay.io`,
    /// `registry-1.docker.io`, `ghcr.io`, `registry.gitlab.com`, `*.azurecr.io`, `cgr.dev`, or a
    /// private ECR host ([`is_private_ecr_host`]). `None` for any other (see
    /// [`UpstreamKind::for_url`]).
    pub fn from_url(url: &str) -> Option<Self> {
        let host = url.to_ascii_lowercase();
        Some(match host.as_str() {
            "public.ecr.aws" => Self::EcrPublic,
            "registry.k8s.io" => Self::K8s,
            "quay.io" => Self::Quay,
            "registry-1.docker.io" => Self::DockerHub,
            "ghcr.io" => Self::GithubContainerRegistry,
            "registry.gitlab.com" => Self::GitlabContainerRegistry,
            "cgr.dev" => Self::Chainguard,
            h if h.ends_with(".azurecr.io") => Self::AzureContainerRegistry,
            h if is_private_ecr_host(h) => Self::Ecr,
            _ => return None,
        })
    }

    /// The kind of a rule known by its upstream URL alone (an expected rule of `PTC_RULES`, or
    /// ECR's answer without `upstreamRegistry`): [`from_url`](Self::from_url)'s kind, else
    /// [`Other`](Self::Other) with the host, kept and checked as a generic registry; AWS adds
    /// upstreams before this code knows them.
    ///
    /// Refused: a host this code knows ECR cannot cache from ([`RuleError::UnsupportedUpstreamUrl`]:
    /// Google's registries, `mcr.microsoft.com`, ...) and what is not a registry host at all
    /// ([`RuleError::InvalidUpstreamUrl`]: empty, a path, a user, whitespace, a bad port).
    /// `url` is normalised as [`normalise_upstream_url`] leaves it.
    pub fn for_url(url: &str) -> Result<Self, RuleError> {
        if let Some(kind) = Self::from_url(url) {
            return Ok(kind);
        }
        if let Some(reason) = host_problem(url) {
            return Err(RuleError::InvalidUpstreamUrl {
                url: url.to_owned(),
                reason,
            });
        }
        let host = url.split(':').next().unwrap_or_default();
        if let Some(reason) = unsupported_reason(host) {
            return Err(RuleError::UnsupportedUpstreamUrl {
                url: url.to_owned(),
                reason,
            });
        }
        Ok(Self::Other(url.to_owned()))
    }

    /// Whether this version knows the kind: false for [`Other`](Self::Other) only.
    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Other(_))
    }

    /// Upstreams whose rules need a Secrets Manager credential: Docker Hub, GitHub, GitLab,
    /// Azure and Chainguard (see [`crate::secret::UpstreamCredential`]). False for a kind this
    /// version does not know: whether it needs one is left to ECR's own validation.
    pub fn needs_credentials(&self) -> bool {
        matches!(
            self,
            Self::DockerHub
                | Self::GithubContainerRegistry
                | Self::GitlabContainerRegistry
                | Self::AzureContainerRegistry
                | Self::Chainguard
        )
    }
}

/// What keeps a normalised upstream URL from being a registry host (`host` or `host:port`,
/// DNS labels of lowercase letters, digits and `-`), if anything.
fn host_problem(url: &str) -> Option<&'static str> {
    if url.is_empty() {
        return Some("empty");
    }
    if url.contains('/') || url.contains('@') || url.contains(char::is_whitespace) {
        return Some("a registry host such as quay.io, without a path, user or whitespace");
    }
    let (host, port) = match url.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (url, None),
    };
    if port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
        return Some("the port is not a number from 1 to 65535");
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if host.len() > 253 || !host.split('.').all(label_ok) {
        return Some("a host name of letters, digits, '-' and '.'");
    }
    None
}

impl From<String> for UpstreamKind {
    fn from(value: String) -> Self {
        Self::parse(&value)
    }
}

impl From<UpstreamKind> for String {
    fn from(value: UpstreamKind) -> Self {
        value.as_str().to_owned()
    }
}

impl fmt::Display for UpstreamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `<12 digits>.dkr.ecr.<region>.amazonaws.com` (and the `.com.cn` partition).
///
/// `host` must be lowercase already; the region is one or more of `[a-z0-9-]`.
pub fn is_private_ecr_host(host: &str) -> bool {
    let Some((account, rest)) = host.split_once(".dkr.ecr.") else {
        return false;
    };
    let region_ok = |r: &str| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && (rest.strip_suffix(".amazonaws.com").is_some_and(region_ok)
            || rest
                .strip_suffix(".amazonaws.com.cn")
                .is_some_and(region_ok))
}

/// Registries ECR cannot cache from at all, with the reason given to the user.
fn unsupported_reason(host: &str) -> Option<&'static str> {
    if host == "gcr.io" || host.ends_with(".gcr.io") || host.ends_with("-docker.pkg.dev") {
        Some(
            "Google Container Registry / Artifact Registry is not a supported pull-through cache upstream",
        )
    } else if host == "mcr.microsoft.com" {
        Some("Microsoft Container Registry is not a supported pull-through cache upstream")
    } else if host == "nvcr.io" || host == "docker.elastic.co" {
        Some("this registry is not a supported pull-through cache upstream")
    } else {
        None
    }
}

/// A repository prefix of a rule: 2-30 characters of lowercase path components, or `ROOT`.
/// The implied trailing `/` is not stored.
///
/// ECR's `ecrRepositoryPrefix`
/// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreatePullThroughCacheRule.html>).
/// Serialised as its text; deserialising checks it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Prefix(String);

impl Prefix {
    /// `ROOT`: the prefix of a rule without one, whose cached repositories are named by the
    /// upstream path alone.
    pub const ROOT: &'static str = "ROOT";

    /// `ROOT`, or 2 to 30 characters (a trailing `/` counted, then dropped) of `/`-separated
    /// components, each lowercase letters and digits joined by single `.`, `_` or `-`.
    ///
    /// [`RuleError::InvalidPrefix`] names the prefix and the rule it breaks.
    pub fn parse(value: &str) -> Result<Self, RuleError> {
        let invalid = |reason: &'static str| RuleError::InvalidPrefix {
            prefix: value.to_owned(),
            reason,
        };
        if value == Self::ROOT {
            return Ok(Self(value.to_owned()));
        }
        if !(2..=30).contains(&value.len()) {
            return Err(invalid("a prefix has 2 to 30 characters"));
        }
        let trimmed = value.strip_suffix('/').unwrap_or(value);
        for component in trimmed.split('/') {
            let mut chars = component.split(['.', '_', '-']);
            let ok = !component.is_empty()
                && chars.all(|part| {
                    !part.is_empty()
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                });
            if !ok {
                return Err(invalid(
                    "lowercase letters and digits, components joined by one '.', '_' or '-', separated by '/'",
                ));
            }
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// Whether this is the [`ROOT`](Self::ROOT) prefix.
    pub fn is_root(&self) -> bool {
        self.0 == Self::ROOT
    }

    /// The prefix without its trailing `/`, e.g. `docker-hub` or `team/ghcr`, or `ROOT`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Prefix {
    type Error = RuleError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Prefix> for String {
    fn from(value: Prefix) -> Self {
        value.0
    }
}

/// A pull-through cache rule, as ECR describes it
/// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PullThroughCacheRule.html>).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtcRule {
    /// `ecrRepositoryPrefix`: cached repositories are named `<prefix>/<upstream path>`.
    pub prefix: Prefix,
    /// `upstreamRegistryUrl`: a host such as `quay.io` or `registry-1.docker.io`.
    pub upstream_url: String,
    /// `upstreamRegistry`: from ECR's answer when it has one, else inferred from the URL (else
    /// [`UpstreamKind::Other`] with the URL).
    pub kind: UpstreamKind,
    /// `credentialArn`: the Secrets Manager secret (`ecr-pullthroughcache/...`) with the upstream
    /// credential (see [`crate::secret::UpstreamCredential`]); `None` for upstreams that need none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_arn: Option<String>,
    /// `customRoleArn`: the IAM role ECR assumes to pull from an upstream ECR registry (ECR-to-ECR
    /// rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_role_arn: Option<String>,
    /// `upstreamRepositoryPrefix` (ECR-to-ECR rules); `None` and `ROOT` both mean no prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_repository_prefix: Option<String>,
}

impl PtcRule {
    /// A rule from a prefix and an upstream URL, the kind inferred from the URL
    /// ([`UpstreamKind::for_url`]: a host this version does not know is kept as
    /// [`UpstreamKind::Other`], see [`unknown_kind_note`](Self::unknown_kind_note)).
    ///
    /// The URL is normalised first ([`normalise_upstream_url`]). Errors:
    /// [`RuleError::InvalidPrefix`], [`RuleError::InvalidUpstreamUrl`] (not a registry host),
    /// [`RuleError::UnsupportedUpstreamUrl`] (a registry this code knows ECR cannot cache from).
    pub fn new(prefix: &str, upstream_url: &str) -> Result<Self, RuleError> {
        let prefix = Prefix::parse(prefix)?;
        let upstream_url = normalise_upstream_url(upstream_url);
        let kind = UpstreamKind::for_url(&upstream_url)?;
        Ok(Self {
            prefix,
            upstream_url,
            kind,
            credential_arn: None,
            custom_role_arn: None,
            upstream_repository_prefix: None,
        })
    }

    /// The rule with `upstreamRepositoryPrefix` set, its trailing `/` dropped.
    pub fn with_upstream_prefix(mut self, upstream_prefix: &str) -> Self {
        self.upstream_repository_prefix = Some(upstream_prefix.trim_end_matches('/').to_owned());
        self
    }

    /// The rule with `credentialArn` set to `arn` (a Secrets Manager secret ARN).
    pub fn with_credential(mut self, arn: &str) -> Self {
        self.credential_arn = Some(arn.to_owned());
        self
    }

    /// For a rule whose kind this version does not know ([`UpstreamKind::Other`]), the note
    /// every report gives it; `None` for a known kind.
    ///
    /// Such a rule is accepted (settings, ECR's answer) and checked as a generic registry:
    /// routed by its prefix and URL like any rule; no credential is required of it (ECR's
    /// `ValidatePullThroughCacheRule` still judges it, and a secret it has is still checked);
    /// prewarm sends the rule's credential to the rule's own upstream origin only, never to a
    /// token service on another host (no [`crate::oci::known_token_hosts`] for an unknown
    /// host), and reads its `ratelimit-*` headers if it sends any.
    pub fn unknown_kind_note(&self) -> Option<String> {
        let UpstreamKind::Other(kind) = &self.kind else {
            return None;
        };
        let what = if *kind == self.upstream_url {
            format!(
                "upstream {} is not one this version knows",
                self.upstream_url
            )
        } else {
            format!(
                "upstream kind {kind:?} ({}) is not known to this version",
                self.upstream_url
            )
        };
        Some(format!(
            "{what}; checked as a generic registry (no credential required of it, its credential sent to {} only)",
            self.upstream_url
        ))
    }

    fn upstream_prefix(&self) -> Option<&str> {
        self.upstream_repository_prefix
            .as_deref()
            .filter(|p| !p.is_empty() && *p != Prefix::ROOT)
    }

    /// Does this rule pull from the registry a reference names? (References come with
    /// `host:443` already read as `host`.)
    fn serves_registry(&self, registry: &str) -> bool {
        let url = self.upstream_url.as_str();
        if registry == DOCKER_HUB {
            DOCKER_HUB_ALIASES.contains(&url)
        } else {
            url.eq_ignore_ascii_case(registry)
        }
    }
}

/// Strip a scheme and trailing slash users sometimes paste: `https://quay.io/` → `quay.io`.
/// Also trims whitespace and lowercases.
pub fn normalise_upstream_url(url: &str) -> String {
    let url = url.trim();
    let url = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    url.trim_end_matches('/').to_ascii_lowercase()
}

/// Why a rule could not be built ([`Prefix::parse`], [`PtcRule::new`]) or an image or a
/// repository could not be routed ([`RuleSet::route`], [`RuleSet::upstream_of`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// A prefix [`Prefix::parse`] refuses.
    #[error("invalid rule prefix {prefix:?}: {reason}")]
    InvalidPrefix {
        /// The prefix as given.
        prefix: String,
        /// The rule it breaks, e.g. `a prefix has 2 to 30 characters`.
        reason: &'static str,
    },
    /// An upstream URL of a registry this code knows ECR cannot cache from (none of the user
    /// guide's upstreams): Google Container Registry
    /// and Artifact Registry, `mcr.microsoft.com`, `nvcr.io`, `docker.elastic.co` (any other
    /// host is kept, see [`UpstreamKind::for_url`]).
    #[error("upstream registry URL {url:?} is not one ECR pull-through cache supports: {reason}")]
    UnsupportedUpstreamUrl {
        /// The URL, normalised.
        url: String,
        /// Which registry it is and that it is not supported.
        reason: &'static str,
    },
    /// An upstream URL that is not a registry host (`host` or `host:port`).
    #[error("upstream registry URL {url:?} is not a registry host: {reason}")]
    InvalidUpstreamUrl {
        /// The URL, normalised.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No rule serves the registry, and ECR cannot cache from it at all: Google Container
    /// Registry and Artifact Registry (`gcr.io`, `*.gcr.io`, `*-docker.pkg.dev`),
    /// `mcr.microsoft.com`, `nvcr.io`, `docker.elastic.co`.
    #[error("registry {registry} is not supported by ECR pull-through cache: {reason}")]
    UnsupportedRegistry {
        /// The reference's registry host (port included, if any).
        registry: String,
        /// Which registry it is and that it is not supported.
        reason: &'static str,
    },
    /// No rule serves the registry, which is Docker Hub or an upstream ECR supports (see
    /// [`UpstreamKind::from_url`]): a rule for it would make it routable.
    #[error("no pull-through cache rule for registry {registry}")]
    NoRule {
        /// The reference's registry host, e.g. `quay.io` or `docker.io`.
        registry: String,
    },
    /// No rule, and the host is none of the upstreams ECR documents (a self-hosted registry,
    /// or an upstream newer than this code: a rule for it would still be routed).
    #[error(
        "no pull-through cache rule for registry {registry}, which is not an upstream ECR pull-through cache is known to support (self-hosted registries are not supported)"
    )]
    UnknownRegistry {
        /// The reference's registry host (port included, if any).
        registry: String,
    },
    /// Every rule serving the registry has an upstream repository prefix, and the
    /// reference's path is under none of them (the first such rule is named).
    #[error(
        "{reference}: repository {repository} is outside the upstream prefix {upstream_prefix} of rule {prefix}"
    )]
    OutsideUpstreamPrefix {
        /// The normalised reference, e.g. `<host>/team/app:1`.
        reference: String,
        /// The reference's repository path on the upstream.
        repository: String,
        /// The rule's `upstreamRepositoryPrefix`.
        upstream_prefix: String,
        /// The rule's prefix.
        prefix: String,
    },
    /// A repository name under no rule's prefix, and the set has no `ROOT` rule.
    #[error("repository {repository} is not under any pull-through cache rule prefix")]
    NotCached {
        /// The repository name, as given.
        repository: String,
    },
    /// The cached repository name would be longer than 256 characters, ECR's limit for
    /// repository names.
    #[error("cached repository name {repository} would exceed 256 characters")]
    NameTooLong {
        /// The name it would have had, `<prefix>/<path>`.
        repository: String,
    },
    /// A valid OCI reference whose cached repository name ECR cannot create: ECR's
    /// `repositoryName` allows one separator between the letters and digits of a component,
    /// where the distribution spec also allows `__` and runs of `-` (see
    /// [`ecr_repository_name_problem`]).
    #[error(
        "cached repository name {repository} is not one ECR can create: {reason} (ECR's repositoryName pattern (?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*, 2 to 256 characters)"
    )]
    NotAnEcrName {
        /// The name it would have had, `<prefix>/<path>`.
        repository: String,
        /// Which part of ECR's rule it breaks.
        reason: &'static str,
    },
}

/// What keeps `name` from being an ECR repository name, if anything: ECR's `repositoryName`
/// is 2 to 256 characters matching
/// `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`: components of lowercase
/// letters and digits joined by one `.`, `_` or `-`, separated by one `/`
/// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html#ECR-CreateRepository-request-repositoryName>).
/// The distribution spec's names are wider (`a__b`, `a--b`), so an image that a registry
/// serves may have no repository in the cache: ECR refuses the name, the pull fails
/// (real cases: `quay.io/eclipse/che--centos--mysql-57-centos7`, docker-java/docker-java#1609;
/// the error ECR answers, int128/create-ecr-repository-action#231).
pub fn ecr_repository_name_problem(name: &str) -> Option<&'static str> {
    if !(2..=256).contains(&name.len()) {
        return Some("a repository name has 2 to 256 characters");
    }
    for component in name.split('/') {
        if component.is_empty() {
            return Some("an empty path component (a leading, trailing or doubled '/')");
        }
        let mut previous_separator = true;
        for b in component.bytes() {
            let separator = matches!(b, b'.' | b'_' | b'-');
            if separator && previous_separator {
                return Some(
                    "a component starts with '.', '_' or '-', or has two of them in a row (ECR allows one between letters and digits)",
                );
            }
            if !(separator || b.is_ascii_lowercase() || b.is_ascii_digit()) {
                return Some("only lowercase letters, digits, '.', '_', '-' and '/'");
            }
            previous_separator = separator;
        }
        if previous_separator {
            return Some("a component ends with '.', '_' or '-'");
        }
    }
    None
}

/// Where an upstream image lives in the cache: `<registry host>/<prefix>/<path>[:tag][@digest]`
/// (see [`CachedImage::uri`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CachedImage {
    /// The prefix of the rule that routes it.
    pub prefix: Prefix,
    /// The ECR repository name, e.g. `docker-hub/library/nginx`.
    pub repository: String,
    /// The reference's tag (`latest` when it had neither tag nor digest).
    pub tag: Option<String>,
    /// The reference's digest, if it had one.
    pub digest: Option<Digest>,
}

impl CachedImage {
    /// `<registry host>/<repository>[:tag][@digest]`.
    pub fn uri(&self, registry_host: &str) -> String {
        let mut uri = format!("{registry_host}/{}", self.repository);
        if let Some(tag) = &self.tag {
            uri.push(':');
            uri.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            uri.push('@');
            uri.push_str(digest.as_str());
        }
        uri
    }
}

/// Where a cached repository comes from (see [`RuleSet::upstream_of`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamRepository {
    /// The prefix of the rule the repository falls under.
    pub prefix: Prefix,
    /// The rule's upstream URL (for Docker Hub `registry-1.docker.io`).
    pub registry: String,
    /// The repository path on the upstream, the rule's upstream repository prefix in front when it
    /// has one, e.g. `library/nginx` for `docker-hub/library/nginx`.
    pub repository: String,
}

/// The rules of one registry, with routing both ways.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSet {
    rules: Vec<PtcRule>,
}

impl RuleSet {
    /// Rules are kept sorted by prefix so that routing is deterministic.
    pub fn new(mut rules: Vec<PtcRule>) -> Self {
        rules.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        Self { rules }
    }

    /// The rules, sorted by prefix.
    pub fn rules(&self) -> &[PtcRule] {
        &self.rules
    }

    /// Whether the set has no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule whose prefix is exactly `prefix` (no trailing `/`, e.g. `docker-hub`, or `ROOT`).
    pub fn get(&self, prefix: &str) -> Option<&PtcRule> {
        self.rules.iter().find(|r| r.prefix.as_str() == prefix)
    }

    /// Upstream reference → cached image. With several rules for one upstream, the first
    /// whose upstream prefix covers the path wins (rules sorted by prefix).
    ///
    /// Errors: [`RuleError::NameTooLong`], [`RuleError::NotAnEcrName`] (a name ECR cannot
    /// create); [`RuleError::OutsideUpstreamPrefix`] when rules
    /// serve the registry but none covers the path; otherwise, with no rule for the
    /// registry, [`RuleError::UnsupportedRegistry`], [`RuleError::NoRule`] or
    /// [`RuleError::UnknownRegistry`].
    pub fn route(&self, reference: &ImageReference) -> Result<CachedImage, RuleError> {
        let mut outside = None;
        for rule in self
            .rules
            .iter()
            .filter(|r| r.serves_registry(&reference.registry))
        {
            let path = match rule.upstream_prefix() {
                None => reference.repository.as_str(),
                Some(up) => match reference
                    .repository
                    .strip_prefix(up)
                    .and_then(|r| r.strip_prefix('/'))
                {
                    Some(rest) => rest,
                    None => {
                        outside.get_or_insert(RuleError::OutsideUpstreamPrefix {
                            reference: reference.to_string(),
                            repository: reference.repository.clone(),
                            upstream_prefix: up.to_owned(),
                            prefix: rule.prefix.to_string(),
                        });
                        continue;
                    }
                },
            };
            let repository = if rule.prefix.is_root() {
                path.to_owned()
            } else {
                format!("{}/{path}", rule.prefix)
            };
            if repository.len() > 256 {
                return Err(RuleError::NameTooLong { repository });
            }
            if let Some(reason) = ecr_repository_name_problem(&repository) {
                return Err(RuleError::NotAnEcrName { repository, reason });
            }
            return Ok(CachedImage {
                prefix: rule.prefix.clone(),
                repository,
                tag: reference.tag.clone(),
                digest: reference.digest.clone(),
            });
        }
        if let Some(err) = outside {
            return Err(err);
        }
        let host = reference.registry.split(':').next().unwrap_or_default();
        if let Some(reason) = unsupported_reason(host) {
            return Err(RuleError::UnsupportedRegistry {
                registry: reference.registry.clone(),
                reason,
            });
        }
        let known = reference.registry == DOCKER_HUB
            || UpstreamKind::from_url(&reference.registry).is_some();
        Err(if known {
            RuleError::NoRule {
                registry: reference.registry.clone(),
            }
        } else {
            RuleError::UnknownRegistry {
                registry: reference.registry.clone(),
            }
        })
    }

    /// The rule whose prefix a cached repository name falls under: the longest matching
    /// prefix, else a `ROOT` rule (as ECR matches).
    pub fn rule_for_repository(&self, repository: &str) -> Option<&PtcRule> {
        self.rules
            .iter()
            .filter(|r| {
                !r.prefix.is_root()
                    && repository
                        .strip_prefix(r.prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
            })
            .max_by_key(|r| r.prefix.as_str().len())
            .or_else(|| self.rules.iter().find(|r| r.prefix.is_root()))
    }

    /// Cached repository → upstream registry and path. [`RuleError::NotCached`] when no rule
    /// covers the name (see [`RuleSet::rule_for_repository`]).
    pub fn upstream_of(&self, repository: &str) -> Result<UpstreamRepository, RuleError> {
        let rule = self
            .rule_for_repository(repository)
            .ok_or_else(|| RuleError::NotCached {
                repository: repository.to_owned(),
            })?;
        let path = if rule.prefix.is_root() {
            repository
        } else {
            &repository[rule.prefix.as_str().len() + 1..]
        };
        let upstream = match rule.upstream_prefix() {
            Some(up) => format!("{up}/{path}"),
            None => path.to_owned(),
        };
        Ok(UpstreamRepository {
            prefix: rule.prefix.clone(),
            registry: rule.upstream_url.clone(),
            repository: upstream,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECR_UP: &str = "210987654321.dkr.ecr.eu-west-1.amazonaws.com";

    fn rules() -> RuleSet {
        RuleSet::new(vec![
            PtcRule::new("ecr-public", "public.ecr.aws").unwrap(),
            PtcRule::new("k8s", "registry.k8s.io").unwrap(),
            PtcRule::new("quay", "quay.io").unwrap(),
            PtcRule::new("docker-hub", "registry-1.docker.io")
                .unwrap()
                .with_credential("arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf"),
            PtcRule::new("ghcr", "ghcr.io").unwrap(),
            PtcRule::new("gitlab", "registry.gitlab.com").unwrap(),
            PtcRule::new("acr", "myteam.azurecr.io").unwrap(),
            PtcRule::new("team/ecr", ECR_UP).unwrap().with_upstream_prefix("upstream-app"),
        ])
    }

    fn route(input: &str) -> Result<String, RuleError> {
        let reference = ImageReference::parse(input).unwrap();
        rules()
            .route(&reference)
            .map(|c| c.uri("123456789012.dkr.ecr.us-east-1.amazonaws.com"))
    }

    const REG: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    #[test]
    fn routes_every_upstream_kind() {
        let cases = [
            (
                "public.ecr.aws/eks/aws-load-balancer-controller:v2.7.1",
                "ecr-public/eks/aws-load-balancer-controller:v2.7.1",
            ),
            ("registry.k8s.io/pause:3.9", "k8s/pause:3.9"),
            (
                "registry.k8s.io/coredns/coredns:v1.11.1",
                "k8s/coredns/coredns:v1.11.1",
            ),
            (
                "quay.io/prometheus/prometheus:v2.51.0",
                "quay/prometheus/prometheus:v2.51.0",
            ),
            ("nginx:1.25", "docker-hub/library/nginx:1.25"),
            ("docker.io/library/nginx", "docker-hub/library/nginx:latest"),
            (
                "index.docker.io/grafana/grafana:10.4.0",
                "docker-hub/grafana/grafana:10.4.0",
            ),
            (
                "registry-1.docker.io/bitnami/redis:7",
                "docker-hub/bitnami/redis:7",
            ),
            (
                "ghcr.io/fluxcd/source-controller:v1.2.4",
                "ghcr/fluxcd/source-controller:v1.2.4",
            ),
            (
                "registry.gitlab.com/group/project/image:1",
                "gitlab/group/project/image:1",
            ),
            ("myteam.azurecr.io/app:2", "acr/app:2"),
            (
                &format!("{ECR_UP}/upstream-app/image1:1.0"),
                "team/ecr/image1:1.0",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                route(input).unwrap(),
                format!("{REG}/{expected}"),
                "input {input}"
            );
        }
    }

    #[test]
    fn keeps_digest_and_tag() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            route(&format!("quay.io/a/b:1@{d}")).unwrap(),
            format!("{REG}/quay/a/b:1@{d}")
        );
        assert_eq!(
            route(&format!("nginx@{d}")).unwrap(),
            format!("{REG}/docker-hub/library/nginx@{d}")
        );
    }

    #[test]
    fn errors_name_the_registry() {
        match route("docker.elastic.co/elasticsearch/elasticsearch:8") {
            Err(RuleError::UnsupportedRegistry { registry, .. }) => {
                assert_eq!(registry, "docker.elastic.co")
            }
            other => panic!("{other:?}"),
        }
        for host in [
            "gcr.io",
            "us.gcr.io",
            "europe-docker.pkg.dev",
            "mcr.microsoft.com",
        ] {
            let err = route(&format!("{host}/x/y:1")).unwrap_err();
            assert!(
                matches!(err, RuleError::UnsupportedRegistry { .. }),
                "{host}: {err:?}"
            );
            assert!(
                err.to_string().contains(host) && err.to_string().contains("not supported"),
                "{err}"
            );
        }
        for host in [
            "registry.example.com:5000",
            "localhost:5000",
            "10.0.0.7",
            "registry.future-upstream.example",
        ] {
            let err = route(&format!("{host}/app:1")).unwrap_err();
            assert_eq!(
                err,
                RuleError::UnknownRegistry {
                    registry: host.into()
                }
            );
            assert!(
                err.to_string().contains(host) && err.to_string().contains("self-hosted"),
                "{err}"
            );
        }
        // Chainguard is an upstream ECR supports: without a rule, that rule is what is missing.
        assert_eq!(
            route("cgr.dev/chainguard/static:latest").unwrap_err(),
            RuleError::NoRule {
                registry: "cgr.dev".into()
            }
        );
        // A newer upstream with a rule is routed all the same.
        let future = PtcRule::new("future", "registry.future-upstream.example").unwrap();
        assert_eq!(
            RuleSet::new(vec![future])
                .route(
                    &ImageReference::parse("registry.future-upstream.example/team/app:1").unwrap()
                )
                .unwrap()
                .repository,
            "future/team/app"
        );
        // The HTTPS port is the registry itself.
        assert_eq!(
            route("quay.io:443/coreos/etcd:v3").unwrap(),
            format!("{REG}/quay/coreos/etcd:v3")
        );
        let err = RuleSet::new(vec![PtcRule::new("k8s", "registry.k8s.io").unwrap()])
            .route(&ImageReference::parse("ghcr.io/a/b:1").unwrap())
            .unwrap_err();
        assert_eq!(
            err,
            RuleError::NoRule {
                registry: "ghcr.io".into()
            }
        );
        let err = RuleSet::new(vec![PtcRule::new("quay", "quay.io").unwrap()])
            .route(&ImageReference::parse("nginx").unwrap())
            .unwrap_err();
        assert_eq!(
            err,
            RuleError::NoRule {
                registry: "docker.io".into()
            }
        );
    }

    #[test]
    fn upstream_prefix_must_cover_the_path() {
        let err = route(&format!("{ECR_UP}/other-app/image1:1")).unwrap_err();
        assert!(
            matches!(err, RuleError::OutsideUpstreamPrefix { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn root_prefix_maps_paths_unchanged() {
        let set = RuleSet::new(vec![PtcRule::new("ROOT", ECR_UP).unwrap()]);
        let cached = set
            .route(&ImageReference::parse(&format!("{ECR_UP}/team/app:1")).unwrap())
            .unwrap();
        assert_eq!(cached.repository, "team/app");
        let up = set.upstream_of("team/app").unwrap();
        assert_eq!(
            (up.registry.as_str(), up.repository.as_str()),
            (ECR_UP, "team/app")
        );
    }

    #[test]
    fn reverse_routes_every_kind() {
        let set = rules();
        let cases = [
            ("ecr-public/eks/x", "public.ecr.aws", "eks/x"),
            ("k8s/pause", "registry.k8s.io", "pause"),
            (
                "quay/prometheus/prometheus",
                "quay.io",
                "prometheus/prometheus",
            ),
            (
                "docker-hub/library/nginx",
                "registry-1.docker.io",
                "library/nginx",
            ),
            (
                "ghcr/fluxcd/source-controller",
                "ghcr.io",
                "fluxcd/source-controller",
            ),
            (
                "gitlab/group/project/image",
                "registry.gitlab.com",
                "group/project/image",
            ),
            ("acr/app", "myteam.azurecr.io", "app"),
            ("team/ecr/image1", ECR_UP, "upstream-app/image1"),
        ];
        for (cached, registry, path) in cases {
            let up = set.upstream_of(cached).unwrap();
            assert_eq!(
                (up.registry.as_str(), up.repository.as_str()),
                (registry, path),
                "{cached}"
            );
        }
        assert_eq!(
            set.upstream_of("quayx/a"),
            Err(RuleError::NotCached {
                repository: "quayx/a".into()
            })
        );
        assert!(matches!(
            set.upstream_of("quay"),
            Err(RuleError::NotCached { .. })
        ));
        assert!(matches!(
            set.upstream_of("quay/"),
            Err(RuleError::NotCached { .. })
        ));
    }

    #[test]
    fn longest_prefix_wins_and_root_is_last() {
        let set = RuleSet::new(vec![
            PtcRule::new("team", "quay.io").unwrap(),
            PtcRule::new("team/ecr", ECR_UP).unwrap(),
            PtcRule::new("ROOT", "210987654321.dkr.ecr.us-west-2.amazonaws.com").unwrap(),
        ]);
        assert_eq!(
            set.rule_for_repository("team/ecr/x")
                .unwrap()
                .prefix
                .as_str(),
            "team/ecr"
        );
        assert_eq!(
            set.rule_for_repository("team/x").unwrap().prefix.as_str(),
            "team"
        );
        assert_eq!(
            set.rule_for_repository("other/x").unwrap().prefix.as_str(),
            "ROOT"
        );
    }

    #[test]
    fn chainguard_is_a_known_kind() {
        // The user guide lists Chainguard Registry with the upstreams that need a secret; the
        // SDK's UpstreamRegistry value is `chainguard`.
        let kind = UpstreamKind::parse("chainguard");
        assert_eq!(kind, UpstreamKind::Chainguard);
        assert_eq!(kind.as_str(), "chainguard");
        assert!(kind.is_known() && kind.needs_credentials());
        assert_eq!(
            UpstreamKind::from_url("cgr.dev"),
            Some(UpstreamKind::Chainguard)
        );
        let rule = PtcRule::new("chainguard", "https://cgr.dev/").unwrap();
        assert_eq!(
            (rule.upstream_url.as_str(), &rule.kind),
            ("cgr.dev", &UpstreamKind::Chainguard)
        );
        assert_eq!(rule.unknown_kind_note(), None);
        let set = RuleSet::new(vec![rule]);
        let cached = set
            .route(&ImageReference::parse("cgr.dev/chainguard/static:latest").unwrap())
            .unwrap();
        assert_eq!(cached.repository, "chainguard/chainguard/static");
        assert_eq!(
            set.upstream_of("chainguard/chainguard/static")
                .unwrap()
                .registry,
            "cgr.dev"
        );
    }

    #[test]
    fn unknown_future_kinds_are_carried() {
        // A value ECR may send once AWS adds an upstream this version has never seen.
        let kind = UpstreamKind::parse("future-registry");
        assert_eq!(kind, UpstreamKind::Other("future-registry".into()));
        assert_eq!(kind.as_str(), "future-registry");
        assert!(!kind.is_known() && !kind.needs_credentials());
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, r#""future-registry""#);
        assert_eq!(serde_json::from_str::<UpstreamKind>(&json).unwrap(), kind);
        let rule = PtcRule {
            prefix: Prefix::parse("future").unwrap(),
            upstream_url: "registry.future-upstream.example".into(),
            kind,
            credential_arn: None,
            custom_role_arn: None,
            upstream_repository_prefix: None,
        };
        assert_eq!(
            rule.unknown_kind_note().unwrap(),
            "upstream kind \"future-registry\" (registry.future-upstream.example) is not known to this version; checked as a generic registry (no credential required of it, its credential sent to registry.future-upstream.example only)"
        );
        let set = RuleSet::new(vec![rule]);
        let cached = set
            .route(&ImageReference::parse("registry.future-upstream.example/org/app:1").unwrap())
            .unwrap();
        assert_eq!(cached.repository, "future/org/app");
        assert_eq!(
            set.upstream_of("future/org/app").unwrap().registry,
            "registry.future-upstream.example"
        );
    }

    #[test]
    fn a_rule_for_an_unknown_upstream_url_is_kept() {
        // What PTC_RULES and `ptc map --rule` build: a URL alone. A host this version does not
        // know is an upstream newer than the code, not an error.
        let rule = PtcRule::new("future", "https://Registry.Future-Upstream.example/").unwrap();
        assert_eq!(rule.upstream_url, "registry.future-upstream.example");
        assert_eq!(
            rule.kind,
            UpstreamKind::Other("registry.future-upstream.example".into())
        );
        assert!(!rule.kind.needs_credentials());
        let note = rule.unknown_kind_note().unwrap();
        assert!(
            note.starts_with(
                "upstream registry.future-upstream.example is not one this version knows; checked as a generic registry"
            ),
            "{note}"
        );
        assert!(PtcRule::new("self", "registry.example.com:5000").is_ok());
        // Still refused: what ECR cannot cache from, and what is not a registry host.
        for url in ["gcr.io", "europe-docker.pkg.dev", "mcr.microsoft.com:443"] {
            assert!(
                matches!(
                    PtcRule::new("up", url),
                    Err(RuleError::UnsupportedUpstreamUrl { .. })
                ),
                "{url}"
            );
        }
        for url in [
            "",
            "quay.io/coreos",
            "user@quay.io",
            "quay .io",
            "quay.io:0",
            "quay.io:99999",
            "quay..io",
            "-quay.io",
            "quay_io",
        ] {
            let err = PtcRule::new("up", url).unwrap_err();
            assert!(
                matches!(err, RuleError::InvalidUpstreamUrl { .. }),
                "{url:?}: {err:?}"
            );
        }
    }

    #[test]
    fn kinds_from_urls() {
        let cases = [
            ("public.ecr.aws", Some(UpstreamKind::EcrPublic)),
            ("registry.k8s.io", Some(UpstreamKind::K8s)),
            ("quay.io", Some(UpstreamKind::Quay)),
            ("registry-1.docker.io", Some(UpstreamKind::DockerHub)),
            ("ghcr.io", Some(UpstreamKind::GithubContainerRegistry)),
            (
                "registry.gitlab.com",
                Some(UpstreamKind::GitlabContainerRegistry),
            ),
            ("x.azurecr.io", Some(UpstreamKind::AzureContainerRegistry)),
            (ECR_UP, Some(UpstreamKind::Ecr)),
            ("CGR.dev", Some(UpstreamKind::Chainguard)),
            ("123.dkr.ecr.us-east-1.amazonaws.com", None),
            ("docker.io", None),
            ("gcr.io", None),
        ];
        for (url, kind) in cases {
            assert_eq!(UpstreamKind::from_url(url), kind, "{url}");
        }
        assert!(UpstreamKind::DockerHub.needs_credentials());
        assert!(!UpstreamKind::Quay.needs_credentials());
        assert_eq!(
            PtcRule::new("q", "quay.io"),
            Err(RuleError::InvalidPrefix {
                prefix: "q".into(),
                reason: "a prefix has 2 to 30 characters"
            })
        );
        let err = PtcRule::new("quay", "gcr.io").unwrap_err();
        assert!(
            matches!(err, RuleError::UnsupportedUpstreamUrl { .. })
                && err.to_string().contains("Google Container Registry"),
            "{err}"
        );
        assert_eq!(
            PtcRule::new("quay", "https://Quay.io/")
                .unwrap()
                .upstream_url,
            "quay.io"
        );
    }

    #[test]
    fn prefixes_follow_the_ecr_pattern() {
        for ok in [
            "ab",
            "docker-hub",
            "team/ecr",
            "a.b_c-d/e",
            "quay/",
            "ROOT",
            &"a".repeat(30),
        ] {
            assert!(Prefix::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a",
            "Docker",
            "a//b",
            "-ab",
            "ab-",
            "a..b",
            "/ab",
            "Root",
            &"a".repeat(31),
            "a b",
        ] {
            assert!(Prefix::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Prefix::parse("quay/").unwrap().as_str(), "quay");
    }

    #[test]
    fn names_ecr_cannot_create_are_not_routed() {
        // Valid OCI references (the distribution spec allows `__` and runs of `-`) whose
        // cached repository ECR's repositoryName pattern refuses.
        for input in [
            "quay.io/eclipse/che--centos--mysql-57-centos7:latest",
            "docker.io/a__b/c:1",
            "ghcr.io/org/a---b:1",
            "docker.io/library/x__y:1",
        ] {
            assert!(
                ImageReference::parse(input).is_ok(),
                "{input} is a valid reference"
            );
            let err = route(input).unwrap_err();
            assert!(
                matches!(err, RuleError::NotAnEcrName { .. }),
                "{input}: {err}"
            );
            assert!(err.to_string().contains("not one ECR can create"), "{err}");
        }
        // One separator between letters and digits is fine.
        assert_eq!(
            route("quay.io/a-b/c_d.e:1").unwrap(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/quay/a-b/c_d.e:1"
        );
    }

    #[test]
    fn ecr_repository_names_follow_the_api_pattern() {
        for ok in [
            "ab",
            "a/b",
            "quay/a-b/c_d.e",
            "docker-hub/library/nginx",
            "a1/2b",
        ] {
            assert_eq!(ecr_repository_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "a", "a__b", "a--b", "a.-b", "-a", "a-", "a//b", "/a", "a/", "A", "a b", "a/_b",
        ] {
            assert!(ecr_repository_name_problem(bad).is_some(), "{bad}");
        }
        assert!(ecr_repository_name_problem(&"a".repeat(257)).is_some());
        assert_eq!(ecr_repository_name_problem(&"a".repeat(256)), None);
    }
}
