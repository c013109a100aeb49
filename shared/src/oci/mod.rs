//! The OCI distribution client the jobs pull with ([`RegistryClient`]): against the ECR registry endpoint
//! (Basic auth with the `GetAuthorizationToken` token, refreshed when it expires) and
//! against upstream registries (anonymous, Basic, or the Bearer token dance of Docker Hub,
//! quay.io and ghcr.io).
//!
//! Manifests are requested with the full `Accept` list a container runtime sends, checked
//! against their digest, and parsed (index or image). `ratelimit-*` headers are exposed on
//! every answer. 408, 429 and 5xx answers and transport errors are retried with exponential
//! backoff and jitter, honouring `Retry-After` up to a bound; beyond it the call returns
//! [`RegistryError::RateLimited`] so the caller can defer the work instead of sleeping.
//! What cannot succeed ([`RegistryError::Refused`]: redirect loops, bad URLs, bodies over
//! their bound) is not retried.
//!
//! Answers are untrusted: every body read is bounded ([`MAX_ERROR_BODY_BYTES`],
//! [`MAX_TOKEN_BODY_BYTES`], [`MAX_MANIFEST_BYTES`], a blob's descriptor size,
//! [`MAX_MANIFEST_DESCRIPTORS`]), and credentials go only to the registry's own origin and
//! the token services of [`known_token_hosts`] (https, or http on loopback).
//!
//! - [`media`]: manifest media types and the `Accept` list.
//! - [`manifest`]: manifests checked and parsed.
//! - [`client`]: credentials, retries, bounded reads, the client itself.

use std::time::Duration;

use reqwest::header::HeaderMap;

pub mod client;
pub mod manifest;
pub mod media;

pub use client::*;
pub use manifest::*;
pub use media::*;

/// Why a registry request failed. Transport errors, timeouts, HTTP 408 and 5xx answers, and
/// 429 answers whose `Retry-After` is absent or at most [`MAX_RETRY_AFTER`] are retried inside
/// the client ([`RetryPolicy`]); the error is returned once the retries are spent. The others
/// are returned at once. Messages start with the URL, but for
/// [`Credentials`](Self::Credentials)'s; none carries a credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// HTTP 401 again after refreshing the credentials (Basic) or fetching a Bearer token;
    /// also a token service answering 401 or 403.
    #[error("{url}: unauthorized (HTTP 401) after refreshing credentials")]
    Unauthorized {
        /// The request URL (the token service's realm when it refused).
        url: String,
    },
    /// HTTP 404: no such repository, manifest or blob.
    #[error("{url}: not found (HTTP 404{})", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    NotFound {
        /// The request URL.
        url: String,
        /// The first error code of the registry's error body, e.g. `MANIFEST_UNKNOWN`,
        /// `NAME_UNKNOWN`, `BLOB_UNKNOWN`
        /// (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes>).
        code: Option<String>,
    },
    /// HTTP 429: the registry's rate limit (Docker Hub's pull limit, for one).
    #[error("{url}: rate limited (HTTP 429){}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The request URL.
        url: String,
        /// The `Retry-After` header as a wait (see [`retry_after`]); over
        /// [`MAX_RETRY_AFTER`], the error is returned at once for the caller to defer the work.
        retry_after: Option<Duration>,
        /// The `ratelimit-*` headers of the 429 answer.
        rate_limit: RateLimit,
    },
    /// Any other answer that is not a success (after redirects).
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        /// The request URL.
        url: String,
        /// The HTTP status code, e.g. 500 or 403.
        status: u16,
        /// The first error's `message` of the registry's error body, else the first 200
        /// characters of the body (at most [`MAX_ERROR_BODY_BYTES`] read).
        message: String,
    },
    /// The request could not be sent or its answer not read (connection, DNS, TLS); also
    /// an HTTP client that could not be built (`url` empty).
    #[error("{url}: {message}")]
    Transport {
        /// The request URL.
        url: String,
        /// The error and its causes, joined by `: `.
        message: String,
    },
    /// The request, body included, took longer than the HTTP client's timeout
    /// (`PTC_HTTP_TIMEOUT_SECS`, see [`http_client`]).
    #[error("{url}: timed out")]
    Timeout {
        /// The request URL.
        url: String,
    },
    /// A manifest that cannot be used (see [`Manifest::parse`]), or one over
    /// [`MAX_MANIFEST_BYTES`].
    #[error("{url}: invalid manifest: {reason}")]
    InvalidManifest {
        /// The manifest's URL.
        url: String,
        /// What is wrong, e.g. `schemaVersion is not 2 (Docker schema 1 is not supported)`.
        reason: String,
    },
    /// Content whose digest is not the one it must have: the digest requested, the
    /// `Docker-Content-Digest` header, or a blob's descriptor.
    #[error("{url}: content digest {actual} does not match {expected}")]
    DigestMismatch {
        /// The content's URL.
        url: String,
        /// The digest the content must have.
        expected: String,
        /// The content's digest, in the expected digest's algorithm.
        actual: String,
    },
    /// No credentials could be had: `GetAuthorizationToken` failed or its `proxyEndpoint`
    /// is unusable, a Bearer challenge has no realm, a token service answered another
    /// failure than 401/403 or no `token`/`access_token`.
    #[error("registry credentials: {0}")]
    Credentials(String),
    /// An answer that can never succeed, so it is not retried: a redirect loop, a URL or a
    /// scheme the client refuses, a body over its bound.
    #[error("{url}: {message}")]
    Refused {
        /// The request URL (the registry's base URL for a refused token realm).
        url: String,
        /// Why, e.g. `the answer is larger than 65536 bytes` or `too many redirects (a
        /// redirect loop?)`.
        message: String,
    },
}

impl RegistryError {
    fn retryable(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Timeout { .. } => true,
            // 408 Request Timeout is the server asking for a retry (RFC 9110 15.5.9); other
            // 4xx answers say the request itself is wrong, and stay wrong.
            Self::Status { status, .. } => *status >= 500 || *status == 408,
            Self::RateLimited { retry_after, .. } => {
                retry_after.is_none_or(|d| d <= MAX_RETRY_AFTER)
            }
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Longest `Retry-After` the client sleeps through; longer ones are returned to the caller.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Docker-style rate-limit headers: `ratelimit-limit: 100;w=21600`.
///
/// Docker Hub sends them on manifest requests: the pulls allowed and left in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RateLimit {
    /// `ratelimit-limit`'s count: requests allowed per window, e.g. 100.
    pub limit: Option<u64>,
    /// `ratelimit-remaining`'s count: requests left in the current window.
    pub remaining: Option<u64>,
    /// The window, in seconds: `w=` of `ratelimit-limit`, else of `ratelimit-remaining` (e.g.
    /// 21600, 6 hours).
    pub window_secs: Option<u64>,
}

impl RateLimit {
    /// Read `ratelimit-limit` and `ratelimit-remaining` (`<count>[;w=<seconds>]`); a header that is
    /// absent or cannot be read leaves its fields `None`.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let parse = |name: &str| -> (Option<u64>, Option<u64>) {
            let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) else {
                return (None, None);
            };
            let mut parts = value.split(';');
            let count = parts.next().and_then(|v| v.trim().parse().ok());
            let window = parts
                .filter_map(|p| p.trim().strip_prefix("w="))
                .find_map(|w| w.parse().ok());
            (count, window)
        };
        let (limit, w1) = parse("ratelimit-limit");
        let (remaining, w2) = parse("ratelimit-remaining");
        Self {
            limit,
            remaining,
            window_secs: w1.or(w2),
        }
    }
}
