//! Image references as people write them, parsed and normalised.
//!
//! `nginx`, `nats:2.10.12-alpine`, `docker.io/library/nginx`, `index.docker.io/grafana/grafana`,
//! `registry-1.docker.io/...`, `localhost:5000/team/app@sha256:...` all parse into one
//! [`ImageReference`]: a registry host, a repository path, and a tag and/or digest.
//! Docker Hub gets its implicit `library/` for official images, and a reference with neither
//! tag nor digest gets the implicit `latest`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The canonical host name used for Docker Hub in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Host names people use for Docker Hub; all normalise to [`DOCKER_HUB`].
pub const DOCKER_HUB_ALIASES: [&str; 4] = [
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// Why a reference was rejected. Every message names the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Nothing but whitespace.
    #[error("empty image reference")]
    Empty,
    /// Whitespace inside the reference (surrounding whitespace is ignored).
    #[error("image reference {input:?} contains whitespace")]
    Whitespace {
        /// The reference as given, trimmed.
        input: String,
    },
    /// A `:` after the last `/` with nothing after it, e.g. `nginx:`.
    #[error("image reference {input:?}: empty tag after ':'")]
    EmptyTag {
        /// The reference as given, trimmed.
        input: String,
    },
    /// A tag outside the OCI grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` (at most 128
    /// characters).
    #[error(
        "image reference {input:?}: invalid tag {tag:?} (letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')"
    )]
    InvalidTag {
        /// The reference as given, trimmed.
        input: String,
        /// The tag as written.
        tag: String,
    },
    /// The part after `@` is not a digest [`Digest::parse`] accepts.
    #[error("image reference {input:?}: invalid digest {digest:?} ({reason})")]
    InvalidDigest {
        /// The reference as given, trimmed.
        input: String,
        /// The text after `@`.
        digest: String,
        /// Why, from [`Digest::parse`], e.g. `a sha256 digest has 64 hex characters`.
        reason: &'static str,
    },
    /// An invalid repository path with uppercase letters in it, e.g. `Nginx`.
    #[error(
        "image reference {input:?}: repository path {path:?} must be lowercase (registries reject uppercase names)"
    )]
    Uppercase {
        /// The reference as given, trimmed.
        input: String,
        /// The repository path, Docker Hub's `library/` added, e.g. `library/Nginx`.
        path: String,
    },
    /// A repository path that breaks the rules of [`validate_path`].
    #[error("image reference {input:?}: invalid repository path {path:?} ({reason})")]
    InvalidPath {
        /// The reference as given, trimmed.
        input: String,
        /// The repository path, Docker Hub's `library/` added.
        path: String,
        /// Why, from [`validate_path`], e.g. `empty path component`.
        reason: &'static str,
    },
    /// A registry host that is not dot-separated labels of lowercase letters, digits and
    /// `-` (not at a label's start or end), with an optional port of 1 to 5 digits.
    #[error("image reference {input:?}: invalid registry host {host:?}")]
    InvalidHost {
        /// The reference as given, trimmed.
        input: String,
        /// The host as read (lowercased), port included.
        host: String,
    },
}

/// A content digest such as `sha256:<64 hex>`. Only validated values exist.
///
/// The OCI grammar, restricted to the two registered algorithms: `sha256:<64 hex>` or
/// `sha512:<128 hex>`, lowercase hex
/// (<https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests>).
/// Serialised as its text; deserialising checks it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// Parse `algorithm:hex`; sha256 (64 hex) and sha512 (128 hex) are accepted, lowercase only.
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        let (algorithm, hex) = value.split_once(':').ok_or("expected <algorithm>:<hex>")?;
        let expected = match algorithm {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err("algorithm must be sha256 or sha512"),
        };
        if hex.len() != expected {
            return Err(if expected == 64 {
                "a sha256 digest has 64 hex characters"
            } else {
                "a sha512 digest has 128 hex characters"
            });
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err("hex characters must be 0-9 or a-f (lowercase)");
        }
        Ok(Self(value.to_owned()))
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        use sha2::{Digest as _, Sha256};
        let hash = Sha256::digest(bytes);
        let mut hex = String::with_capacity(64);
        for byte in hash {
            hex.push_str(&format!("{byte:02x}"));
        }
        Self(format!("sha256:{hex}"))
    }

    /// The digest's text, `<algorithm>:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A hasher of this digest's algorithm (sha256 or sha512), to check content against it.
    pub fn hasher(&self) -> DigestHasher {
        if self.0.starts_with("sha512:") {
            DigestHasher::Sha512(sha2::Sha512::default())
        } else {
            DigestHasher::Sha256(sha2::Sha256::default())
        }
    }

    /// The digest of `bytes` in this digest's algorithm.
    pub fn of_content(&self, bytes: &[u8]) -> Digest {
        let mut hasher = self.hasher();
        hasher.update(bytes);
        hasher.finish()
    }
}

/// Content hashed with a digest's algorithm (OCI: sha256 or sha512), chunk by chunk.
pub enum DigestHasher {
    /// SHA-256, for `sha256:` digests.
    Sha256(sha2::Sha256),
    /// SHA-512, for `sha512:` digests.
    Sha512(sha2::Sha512),
}

impl DigestHasher {
    /// Hash the next chunk of the content.
    pub fn update(&mut self, bytes: &[u8]) {
        use sha2::Digest as _;
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything hashed.
    pub fn finish(self) -> Digest {
        use sha2::Digest as _;
        let (algorithm, hash) = match self {
            Self::Sha256(h) => ("sha256", h.finalize().to_vec()),
            Self::Sha512(h) => ("sha512", h.finalize().to_vec()),
        };
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        Digest(format!("{algorithm}:{hex}"))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Digest::parse(&value).map_err(|reason| format!("invalid digest {value:?}: {reason}"))
    }
}

impl From<Digest> for String {
    fn from(value: Digest) -> Self {
        value.0
    }
}

/// A normalised image reference: `<registry>/<repository>[:tag][@digest]`, which is also
/// its `Display` text (e.g. `docker.io/library/nginx:latest`) and what [`ImageReference::parse`]
/// reads back to the same value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageReference {
    /// Registry host, lowercase, with port if one was given; Docker Hub is always `docker.io`.
    pub registry: String,
    /// Repository path inside the registry, e.g. `library/nginx`.
    pub repository: String,
    /// Tag; `latest` when the reference had neither tag nor digest.
    pub tag: Option<String>,
    /// Digest, when the reference has `@<digest>`; a reference may carry both a tag and a digest
    /// (`name:tag@sha256:...`).
    pub digest: Option<Digest>,
}

impl ImageReference {
    /// Parse what a user wrote. Leading and trailing whitespace is ignored.
    ///
    /// The first path component is the registry host when it has a `.` or a `:` or is
    /// `localhost`; otherwise the reference is a Docker Hub path. The host is lowercased,
    /// `:443` dropped and Docker Hub's aliases ([`DOCKER_HUB_ALIASES`]) read as
    /// [`DOCKER_HUB`], whose one-component paths get `library/`. Every error names the input
    /// (see [`ReferenceError`]).
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let err_input = || trimmed.to_owned();
        if trimmed.chars().any(char::is_whitespace) {
            return Err(ReferenceError::Whitespace { input: err_input() });
        }

        let (name_and_tag, digest) = match trimmed.split_once('@') {
            Some((left, digest)) => {
                let parsed =
                    Digest::parse(digest).map_err(|reason| ReferenceError::InvalidDigest {
                        input: err_input(),
                        digest: digest.to_owned(),
                        reason,
                    })?;
                (left, Some(parsed))
            }
            None => (trimmed, None),
        };

        // A ':' after the last '/' separates the tag; one before it belongs to a host port.
        let last_slash = name_and_tag.rfind('/');
        let (name, tag) = match name_and_tag.rfind(':') {
            Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
                let tag = &name_and_tag[colon + 1..];
                if tag.is_empty() {
                    return Err(ReferenceError::EmptyTag { input: err_input() });
                }
                if !valid_tag(tag) {
                    return Err(ReferenceError::InvalidTag {
                        input: err_input(),
                        tag: tag.to_owned(),
                    });
                }
                (&name_and_tag[..colon], Some(tag.to_owned()))
            }
            _ => (name_and_tag, None),
        };

        let (registry, path) = split_registry(name);
        let registry = registry.to_ascii_lowercase();
        if !valid_host(&registry) {
            return Err(ReferenceError::InvalidHost {
                input: err_input(),
                host: registry,
            });
        }
        // `host:443` is `host`: the HTTPS port every registry listens on. Normalised here,
        // before the Docker Hub aliases, so that `docker.io:443/nginx` is `library/nginx`.
        let host = registry.strip_suffix(":443").unwrap_or(&registry);
        let registry = if DOCKER_HUB_ALIASES.contains(&host) {
            DOCKER_HUB.to_owned()
        } else {
            host.to_owned()
        };
        let mut repository = path.to_owned();
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        validate_path(&repository).map_err(|reason| {
            if repository.chars().any(|c| c.is_ascii_uppercase()) {
                ReferenceError::Uppercase {
                    input: err_input(),
                    path: repository.clone(),
                }
            } else {
                ReferenceError::InvalidPath {
                    input: err_input(),
                    path: repository.clone(),
                    reason,
                }
            }
        })?;

        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_owned()),
            _ => tag,
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// True for Docker Hub references (whichever alias was written).
    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }

    /// `:tag@digest` suffix, whichever parts exist.
    pub fn suffix(&self) -> String {
        let mut out = String::new();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest.as_str());
        }
        out
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.registry, self.repository, self.suffix())
    }
}

impl std::str::FromStr for ImageReference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Split off the registry host: the first component is a host when it has a '.', a ':' or is
/// `localhost`; otherwise the whole name is a Docker Hub path.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    bytes.len() <= MAX_TAG_LEN
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Repository path rules of the distribution spec: lowercase components of `[a-z0-9]` joined
/// by one '.', one or two '_', or any number of '-', separated by '/'.
///
/// The path alone is at most 255 characters here (the spec notes that many clients limit
/// host, `/` and name together to 255)
/// (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests>).
/// The error is the reason, e.g. `longer than 255 characters`.
pub fn validate_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("empty repository path");
    }
    if path.len() > MAX_NAME_LEN {
        return Err("longer than 255 characters");
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err("empty path component");
        }
        let bytes = component.as_bytes();
        if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
            return Err("a component must start and end with a letter or digit");
        }
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_lowercase() || b.is_ascii_digit() {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && matches!(bytes[i], b'.' | b'_' | b'-') {
                i += 1;
            }
            let sep = &component[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
            if sep.is_empty() {
                return Err("only lowercase letters, digits, '.', '_' and '-' are allowed");
            }
            if !ok {
                return Err("separators are one '.', one or two '_', or dashes");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// registry, repository, tag, digest
    type Parts = (String, String, Option<String>, Option<String>);

    fn ok(input: &str) -> Parts {
        let r = ImageReference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        (
            r.registry,
            r.repository,
            r.tag,
            r.digest.map(|d| d.to_string()),
        )
    }

    #[test]
    fn normalises_what_users_write() {
        let s = |v: &str| v.to_owned();
        let cases: Vec<(String, Parts)> = vec![
            (
                s("nginx"),
                (s("docker.io"), s("library/nginx"), Some(s("latest")), None),
            ),
            (
                s("nats:2.10.12-alpine"),
                (
                    s("docker.io"),
                    s("library/nats"),
                    Some(s("2.10.12-alpine")),
                    None,
                ),
            ),
            (
                s("docker.io/nginx:1.25"),
                (s("docker.io"), s("library/nginx"), Some(s("1.25")), None),
            ),
            (
                s("index.docker.io/library/nginx"),
                (s("docker.io"), s("library/nginx"), Some(s("latest")), None),
            ),
            (
                s("registry-1.docker.io/grafana/grafana:10.4.0"),
                (
                    s("docker.io"),
                    s("grafana/grafana"),
                    Some(s("10.4.0")),
                    None,
                ),
            ),
            // The HTTPS port is the host itself, Docker Hub's aliases included.
            (
                s("docker.io:443/nginx"),
                (s("docker.io"), s("library/nginx"), Some(s("latest")), None),
            ),
            (
                s("Index.Docker.IO:443/nginx:1.25"),
                (s("docker.io"), s("library/nginx"), Some(s("1.25")), None),
            ),
            (
                s("quay.io:443/coreos/etcd:v3"),
                (s("quay.io"), s("coreos/etcd"), Some(s("v3")), None),
            ),
            (
                s("registry.hub.docker.com/bitnami/redis"),
                (s("docker.io"), s("bitnami/redis"), Some(s("latest")), None),
            ),
            (
                s("grafana/grafana:10.4.0"),
                (
                    s("docker.io"),
                    s("grafana/grafana"),
                    Some(s("10.4.0")),
                    None,
                ),
            ),
            (
                s("quay.io/prometheus/prometheus:v2.51.0"),
                (
                    s("quay.io"),
                    s("prometheus/prometheus"),
                    Some(s("v2.51.0")),
                    None,
                ),
            ),
            (
                s("registry.k8s.io/pause:3.9"),
                (s("registry.k8s.io"), s("pause"), Some(s("3.9")), None),
            ),
            (
                s("Quay.IO/coreos/etcd"),
                (s("quay.io"), s("coreos/etcd"), Some(s("latest")), None),
            ),
            (
                s("localhost:5000/team/app:v1"),
                (s("localhost:5000"), s("team/app"), Some(s("v1")), None),
            ),
            (
                s("localhost/app"),
                (s("localhost"), s("app"), Some(s("latest")), None),
            ),
            (
                s("myreg.example.com:8443/a/b/c:1"),
                (s("myreg.example.com:8443"), s("a/b/c"), Some(s("1")), None),
            ),
            (
                format!("nginx@{D}"),
                (s("docker.io"), s("library/nginx"), None, Some(s(D))),
            ),
            (
                format!("ghcr.io/fluxcd/source-controller:v1.2.4@{D}"),
                (
                    s("ghcr.io"),
                    s("fluxcd/source-controller"),
                    Some(s("v1.2.4")),
                    Some(s(D)),
                ),
            ),
            (
                format!("localhost:5000/app@{D}"),
                (s("localhost:5000"), s("app"), None, Some(s(D))),
            ),
            (
                s("  nginx:1.25  "),
                (s("docker.io"), s("library/nginx"), Some(s("1.25")), None),
            ),
            (
                s("a__b/c-----d/e.f:_tag"),
                (s("docker.io"), s("a__b/c-----d/e.f"), Some(s("_tag")), None),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(ok(&input), expected, "input {input:?}");
        }
    }

    fn err(input: &str) -> ReferenceError {
        ImageReference::parse(input).expect_err(input)
    }

    #[test]
    fn rejects_invalid_input_with_a_reason() {
        assert_eq!(err(""), ReferenceError::Empty);
        assert_eq!(err("   "), ReferenceError::Empty);
        assert!(matches!(err("ngi nx"), ReferenceError::Whitespace { .. }));
        assert!(matches!(err("nginx:"), ReferenceError::EmptyTag { .. }));
        assert!(matches!(
            err("quay.io/a/b:"),
            ReferenceError::EmptyTag { .. }
        ));
        assert!(matches!(
            err("nginx:-bad"),
            ReferenceError::InvalidTag { .. }
        ));
        assert!(matches!(
            err("nginx:a/b"),
            ReferenceError::InvalidHost { .. }
        ));
        assert!(matches!(
            err(&format!("nginx:{}", "a".repeat(129))),
            ReferenceError::InvalidTag { .. }
        ));
        assert!(matches!(err("Nginx"), ReferenceError::Uppercase { .. }));
        assert!(matches!(
            err("quay.io/Prometheus/prometheus"),
            ReferenceError::Uppercase { .. }
        ));
        assert!(matches!(
            err("nginx@sha256:abc"),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(matches!(
            err("nginx@md5:0123"),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(matches!(
            err(&format!(
                "nginx@{}",
                D.to_uppercase().replace("SHA256", "sha256")
            )),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(matches!(
            err("nginx@"),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(matches!(
            err("quay.io//x"),
            ReferenceError::InvalidPath { .. }
        ));
        assert!(matches!(
            err("quay.io/x/"),
            ReferenceError::InvalidPath { .. }
        ));
        assert!(matches!(
            err("quay.io/"),
            ReferenceError::InvalidPath { .. }
        ));
        assert!(matches!(
            err("quay.io/-x"),
            ReferenceError::InvalidPath { .. }
        ));
        assert!(matches!(
            err("quay.io/a..b"),
            ReferenceError::InvalidPath { .. }
        ));
        assert!(matches!(
            err("quay.io/a___b"),
            ReferenceError::InvalidPath { .. }
        ));
        assert!(matches!(
            err("quay.io/a$b"),
            ReferenceError::InvalidPath { .. }
        ));
        assert!(matches!(
            err("host:99999999/x"),
            ReferenceError::InvalidHost { .. }
        ));
        assert!(matches!(
            err("bad_host.io/x"),
            ReferenceError::InvalidHost { .. }
        ));
        assert!(matches!(
            err(&format!("quay.io/{}", "a".repeat(256))),
            ReferenceError::InvalidPath { .. }
        ));
    }

    #[test]
    fn error_messages_name_the_input() {
        let message = err("Nginx:1").to_string();
        assert!(message.contains("\"Nginx:1\""), "{message}");
        assert!(message.contains("lowercase"), "{message}");
        let message = err("nginx@sha256:xyz").to_string();
        assert!(
            message.contains("sha256:xyz") && message.contains("64 hex"),
            "{message}"
        );
    }

    #[test]
    fn display_round_trips() {
        for input in ["nginx", "quay.io/a/b:1", &format!("ghcr.io/x/y:1@{D}")] {
            let parsed = ImageReference::parse(input).unwrap();
            assert_eq!(ImageReference::parse(&parsed.to_string()).unwrap(), parsed);
        }
        assert_eq!(
            ImageReference::parse("nginx").unwrap().to_string(),
            "docker.io/library/nginx:latest"
        );
    }

    #[test]
    fn digest_of_bytes_is_sha256() {
        assert_eq!(
            Digest::sha256_of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
