//! The OCI distribution client the jobs pull with ([`RegistryClient`]): against the ECR registry endpoint
//! (Basic auth with the `GetAuthorizationToken` token, refreshed when it expires) and
//! against upstream registries (anonymous, Basic, or the Bearer token dance of Docker Hub,
//! quay.io and ghcr.io).
//!
//! Manifests are requested with the full `Accept` list a container runtime sends, checked
//! against their digest, and parsed (index or image). `ratelimit-*` headers are exposed on
//! every answer. 408, 429 and 5xx answers and transport errors are retried with exponential
//! backoff and jitter, honouring the `Retry-After` of a 429 or a 503 up to a bound; beyond it
//! the call returns [`RegistryError::RateLimited`] or [`RegistryError::Unavailable`] so the
//! caller can defer the work instead of sleeping.
//! What cannot succeed ([`RegistryError::Refused`]: redirect loops, bad URLs, bodies over
//! their bound) is not retried.
//!
//! Answers are untrusted: every body read is bounded ([`MAX_ERROR_BODY_BYTES`],
//! [`MAX_TOKEN_BODY_BYTES`], [`MAX_MANIFEST_BYTES`], [`MAX_TAGS_PAGE_BYTES`], a blob's
//! descriptor size, [`MAX_MANIFEST_DESCRIPTORS`]), and credentials go only to the registry's
//! own origin and the token services of [`known_token_hosts`] (https, or http on loopback).
//!
//! Time is bounded too ([`http_client`]): a connect timeout, a read-idle timeout (no byte for
//! `PTC_HTTP_TIMEOUT_SECS`), the same value as the whole-request timeout of small answers, and
//! for a blob a budget that grows with its declared size ([`BlobBudget`]), so a large layer
//! on a slow but working link completes.
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
/// 429 and 503 answers whose `Retry-After` is absent or at most [`MAX_RETRY_AFTER`] are retried
/// inside the client ([`RetryPolicy`]); the error is returned once the retries are spent. The
/// others are returned at once. Messages start with the URL, but for
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
    /// HTTP 503 (Service Unavailable), the registry down or overloaded. RFC 9110 10.2.3: "When
    /// sent with a 503 (Service Unavailable) response, Retry-After indicates how long the
    /// service is expected to be unavailable to the client"
    /// (<https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3>); the client waits that long
    /// between retries (at most [`MAX_RETRY_AFTER`]), as for a 429.
    #[error("{url}: service unavailable (HTTP 503){}: {message}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    Unavailable {
        /// The request URL.
        url: String,
        /// The `Retry-After` header as a wait (see [`retry_after`]); over
        /// [`MAX_RETRY_AFTER`], the error is returned at once for the caller to defer the work.
        retry_after: Option<Duration>,
        /// The first error's `message` of the registry's error body, else the first 200
        /// characters of the body.
        message: String,
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
    /// A request timed out (see [`http_client`]): connecting took longer than the connect
    /// timeout, an answer's head did not come within `PTC_HTTP_TIMEOUT_SECS`, or a small answer
    /// (manifest, HEAD, token, tags list) took longer than that in all. A blob's body has its
    /// own bounds: [`BlobStalled`](Self::BlobStalled) and [`BlobTooSlow`](Self::BlobTooSlow).
    #[error("{url}: timed out")]
    Timeout {
        /// The request URL.
        url: String,
    },
    /// A blob download during which no byte came for the read-idle timeout
    /// (`PTC_HTTP_TIMEOUT_SECS`, see [`http_client`]): a dead or stuck connection. Retried from
    /// the start at most once (see [`RegistryClient::get_blob`]).
    #[error("{url}: the download stalled: no byte for {:.1}s after {received} of {expected} bytes (read-idle timeout)", silent.as_secs_f64())]
    BlobStalled {
        /// The blob's URL.
        url: String,
        /// How long the connection was silent before the client gave up.
        silent: Duration,
        /// Bytes received (by the attempt that stalled).
        received: u64,
        /// The descriptor's size.
        expected: u64,
    },
    /// A blob download that was still going when its budget ([`BlobBudget::for_size`] of the
    /// descriptor's size) was spent: a link slower than [`BlobBudget::min_bytes_per_sec`] on
    /// average, or a server trickling bytes. Not retried.
    #[error("{url}: the download took longer than its budget of {}s for {expected} bytes ({received} bytes received; the budget assumes at least {min_bytes_per_sec} bytes/s)", budget.as_secs())]
    BlobTooSlow {
        /// The blob's URL.
        url: String,
        /// The budget that was spent.
        budget: Duration,
        /// The minimum average rate the budget was computed with.
        min_bytes_per_sec: u64,
        /// Bytes received (by the last attempt).
        received: u64,
        /// The descriptor's size.
        expected: u64,
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
            Self::Transport { .. } | Self::Timeout { .. } | Self::BlobStalled { .. } => true,
            // 408 Request Timeout is the server asking for a retry (RFC 9110 15.5.9); other
            // 4xx answers say the request itself is wrong, and stay wrong.
            Self::Status { status, .. } => *status >= 500 || *status == 408,
            Self::RateLimited { retry_after, .. } | Self::Unavailable { retry_after, .. } => {
                retry_after.is_none_or(|d| d <= MAX_RETRY_AFTER)
            }
            _ => false,
        }
    }

    /// The wait the server asked for: the `Retry-After` of a 429 or a 503.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Unavailable { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// A 429 or a 503 whose `Retry-After` is longer than [`MAX_RETRY_AFTER`]: the server asked
    /// for a wait the client did not sleep through, so the work is to be deferred, not failed.
    pub fn asks_to_wait(&self) -> bool {
        self.retry_after().is_some_and(|d| d > MAX_RETRY_AFTER)
    }
}

/// Longest `Retry-After` the client sleeps through; longer ones are returned to the caller.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// The rate-limit headers of an answer: the pulls allowed and left, and their window.
///
/// Read from two generations of the IETF draft "RateLimit header fields for HTTP"
/// (<https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/>), each a
/// Structured Field List (RFC 9651 3.1), whose field lines are joined before parsing and which
/// is ignored whole when it does not parse (RFC 9651 4.2), as the RFC asks:
///
/// - `ratelimit-limit` and `ratelimit-remaining` (drafts 00-06), which Docker Hub sends:
///   `ratelimit-limit: 100;w=21600`, `ratelimit-remaining: 76;w=21600`
///   (<https://docs.docker.com/docker-hub/usage/pulls/>). Draft 01 3.1 allows a list,
///   `RateLimit-Limit = expiring-limit [, 1#quota-policy ]`, e.g.
///   `10, 10;w=1, 50;w=60, 1000;w=3600`: the first item is the limit that applies now, and
///   its window is its own `w`, else that of the listed policy with the same count; the
///   other policies are informative.
/// - `RateLimit` and `RateLimit-Policy` (drafts 08 on), e.g. `RateLimit: "default";r=50;t=30`
///   with `RateLimit-Policy: "default";q=100;w=60` (draft 11, sections 3 and 4): the remaining
///   quota is the smallest `r` (the policy closest to its limit), its limit and window the
///   `q` and `w` of the policy of the same name. Read only when the older headers are
///   absent; no registry is known to send them yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RateLimit {
    /// Requests allowed per window, e.g. 100: `ratelimit-limit`'s first item, else the `q` of
    /// the `RateLimit-Policy` that `RateLimit` names.
    pub limit: Option<u64>,
    /// Requests left in the current window: `ratelimit-remaining`'s first item, else the
    /// smallest `r` of `RateLimit`.
    pub remaining: Option<u64>,
    /// The window, in seconds (e.g. 21600, 6 hours): the `w` of the limit (see above), else of
    /// `ratelimit-remaining`'s first item, else of the `RateLimit-Policy` that `RateLimit`
    /// names.
    pub window_secs: Option<u64>,
}

impl RateLimit {
    /// Read the headers (see [`RateLimit`]); what is absent or cannot be read (not a
    /// Structured Field List, a negative count) stays `None`.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut out = Self::default();
        if let Some(list) = sf_list(headers, "ratelimit-limit") {
            let mut items = list.iter().filter_map(sf_item);
            if let Some(first) = items.next() {
                out.limit = count(&first.bare_item);
                out.window_secs = param(first, "w").or_else(|| {
                    // `100, 100;w=10`: the window is the policy's whose count is the limit's.
                    items
                        .find(|i| out.limit.is_some() && count(&i.bare_item) == out.limit)
                        .and_then(|i| param(i, "w"))
                });
            }
        }
        if let Some(first) = sf_list(headers, "ratelimit-remaining")
            .as_ref()
            .and_then(|l| l.iter().find_map(sf_item))
        {
            out.remaining = count(&first.bare_item);
            out.window_secs = out.window_secs.or_else(|| param(first, "w"));
        }
        if out == Self::default() {
            out.fill_from_current_draft(headers);
        }
        out
    }

    /// `RateLimit` and `RateLimit-Policy` (draft 11), for an answer without the older headers
    /// (the two generations are not mixed).
    fn fill_from_current_draft(&mut self, headers: &HeaderMap) {
        let Some(limits) = sf_list(headers, "ratelimit") else {
            return;
        };
        // The service limit closest to running out.
        let Some((name, remaining)) = limits
            .iter()
            .filter_map(sf_item)
            .filter_map(|i| Some((i.bare_item.as_string()?, param(i, "r")?)))
            .min_by_key(|(_, r)| *r)
        else {
            return;
        };
        self.remaining = Some(remaining);
        let policies = sf_list(headers, "ratelimit-policy").unwrap_or_default();
        if let Some(policy) = policies
            .iter()
            .filter_map(sf_item)
            .find(|p| p.bare_item.as_string() == Some(name))
        {
            self.limit = param(policy, "q");
            self.window_secs = param(policy, "w");
        }
    }
}

/// The header's field lines joined with `, ` and parsed as a Structured Field List
/// (RFC 9651 4.2: "combined field value"); `None` when absent, not text, or not a List.
fn sf_list(headers: &HeaderMap, name: &str) -> Option<sfv::List> {
    let lines = headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().ok())
        .collect::<Option<Vec<_>>>()?;
    if lines.is_empty() {
        return None;
    }
    sfv::Parser::new(&lines.join(", "))
        .parse::<sfv::List>()
        .ok()
}

fn sf_item(entry: &sfv::ListEntry) -> Option<&sfv::Item> {
    match entry {
        sfv::ListEntry::Item(item) => Some(item),
        sfv::ListEntry::InnerList(_) => None,
    }
}

/// A non-negative Integer as a count.
fn count(value: &sfv::BareItem) -> Option<u64> {
    value
        .as_integer()
        .and_then(|i| u64::try_from(i64::from(i)).ok())
}

fn param(item: &sfv::Item, key: &str) -> Option<u64> {
    item.params.get(key).and_then(count)
}
