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

#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    #[error("{url}: unauthorized (HTTP 401) after refreshing credentials")]
    Unauthorized { url: String },
    #[error("{url}: not found (HTTP 404{})", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    NotFound { url: String, code: Option<String> },
    #[error("{url}: rate limited (HTTP 429){}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        url: String,
        retry_after: Option<Duration>,
        rate_limit: RateLimit,
    },
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url}: {message}")]
    Transport { url: String, message: String },
    #[error("{url}: timed out")]
    Timeout { url: String },
    #[error("{url}: invalid manifest: {reason}")]
    InvalidManifest { url: String, reason: String },
    #[error("{url}: content digest {actual} does not match {expected}")]
    DigestMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("registry credentials: {0}")]
    Credentials(String),
    /// An answer that can never succeed, so it is not retried: a redirect loop, a URL or a
    /// scheme the client refuses, a body over its bound.
    #[error("{url}: {message}")]
    Refused { url: String, message: String },
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub window_secs: Option<u64>,
}

impl RateLimit {
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
