//! The registry client: credentials ([`Credentials`], [`CredentialSource`]) bound to their
//! origin, retries with backoff ([`RetryPolicy`]), bounded reads of every answer, the Bearer
//! token dance ([`parse_challenge`]) and redirects followed without credentials across
//! origins. The module documentation of [`crate::oci`] gives the rules.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use base64::Engine as _;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode};
use tokio::sync::Mutex;

use crate::oci::*;
use crate::reference::Digest;
use crate::secret::Secret;

/// Most bytes of an error answer read for its message; the rest is dropped unread.
pub const MAX_ERROR_BODY_BYTES: usize = 4 * 1024;

/// Most bytes of a token service's answer (a token is a few KiB at most).
pub const MAX_TOKEN_BODY_BYTES: usize = 64 * 1024;

/// Credentials for a registry: sent only to the registry's own origin and the token
/// services of [`known_token_hosts`].
#[derive(Clone, Debug)]
pub enum Credentials {
    /// No `Authorization` header; a Bearer challenge gets an anonymous token request.
    Anonymous,
    /// `Authorization: Basic base64(username:password)`, also to a token service that may
    /// receive it.
    Basic {
        /// The user name, e.g. `AWS` for ECR.
        username: String,
        /// The password or access token; never logged.
        password: Secret,
    },
}

impl Credentials {
    fn basic_header(&self) -> Option<String> {
        match self {
            Self::Anonymous => None,
            Self::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()))
            )),
        }
    }
}

/// Where a [`RegistryClient`] gets its credentials: fixed [`Credentials`], or a source that
/// renews them such as [`crate::aws::EcrTokenSource`].
#[async_trait]
pub trait CredentialSource: Send + Sync {
    /// Current credentials; `refresh` asks for new ones (after a 401).
    async fn credentials(&self, refresh: bool) -> Result<Credentials, RegistryError>;
}

#[async_trait]
impl CredentialSource for Credentials {
    async fn credentials(&self, _refresh: bool) -> Result<Credentials, RegistryError> {
        Ok(self.clone())
    }
}

/// Retry behaviour of the client: exponential backoff with jitter between `min_delay` and
/// `max_delay`; the `Retry-After` of a 429 or a 503 (at most [`MAX_RETRY_AFTER`]) replaces the
/// computed delay. `Default`: 4 retries, 200 ms to 5 s.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 4).
    pub max_retries: usize,
    /// The first backoff delay (default 200 ms).
    pub min_delay: Duration,
    /// The longest backoff delay (default 5 s).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Longest wait for a TCP (and TLS) connection, whatever the request timeout: a host that
/// does not answer in 10 s is down or unreachable, and waiting longer only delays the retry.
pub const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A shared HTTP client: connection reuse, timeouts, rustls with the system's roots (TLS
/// verification is never turned off).
///
/// `timeout` (`PTC_HTTP_TIMEOUT_SECS`, 20 s by default) is used three ways:
/// - **read-idle timeout**: no byte for `timeout` fails the request, whatever it is (no
///   answer head within `timeout` of sending it, or a body silent that long). A download
///   that is progressing is never cut by it.
/// - **whole-request timeout** of every request but a blob GET: manifests, HEADs, token
///   requests, tags lists, pings (small answers, bounded in size).
/// - **connect timeout**: `timeout`, at most [`MAX_CONNECT_TIMEOUT`].
///
/// A blob GET ([`RegistryClient::get_blob`]) replaces the whole-request timeout by a budget
/// that grows with the blob's declared size ([`BlobBudget`]), so a large layer can finish on
/// a slow but working link.
///
/// Up to 32 idle connections per host, user agent `ptc/<version>`, redirects followed only
/// within the first request's origin (the client follows others by hand, without
/// credentials). A client that cannot be built is [`RegistryError::Transport`].
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, RegistryError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::custom(same_origin_redirects))
        .timeout(timeout)
        .read_timeout(timeout)
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
        .pool_max_idle_per_host(32)
        .user_agent(concat!("ptc/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| RegistryError::Transport {
            url: String::new(),
            message: e.to_string(),
        })
}

/// The fixed part of a blob download's budget: connecting, the answer head (ECR may fetch a
/// layer from the upstream before it answers a first pull), the redirect to storage, and
/// the client's retries of those steps (4 retries, backoff up to 5 s, `Retry-After` up to
/// [`MAX_RETRY_AFTER`]).
pub const BLOB_BUDGET_BASE: Duration = Duration::from_secs(60);

/// The slowest average download rate a blob budget allows: 1 MiB/s (8 Mbit/s). A Lambda's
/// network is much faster; a link this slow would take 30 min for 2 GiB, and a server that
/// trickles bytes (slower than this, but never silent for the read-idle timeout) must not
/// hold a worker for hours.
pub const BLOB_MIN_BYTES_PER_SEC: u64 = 1024 * 1024;

/// The longest blob budget, whatever the declared size: 1 hour. The size comes from an
/// untrusted manifest; a Lambda runs at most 15 minutes anyway, and the CLI should not hang
/// for longer on one layer.
pub const BLOB_BUDGET_MAX: Duration = Duration::from_secs(3600);

/// How long a blob download may take in all:
/// `min(base + size / min_bytes_per_sec, max)`; [`Default`] is [`BLOB_BUDGET_BASE`] (60 s),
/// [`BLOB_MIN_BYTES_PER_SEC`] (1 MiB/s) and [`BLOB_BUDGET_MAX`] (1 h). E.g. 60 s for a
/// small blob, 60 s + 190.7 s for a 200 MB layer.
///
/// The budget covers the whole [`RegistryClient::get_blob`] call: its retries of the request
/// and its one restart of a download that failed mid-stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobBudget {
    /// The fixed part (connecting, the answer head, redirects, retries).
    pub base: Duration,
    /// The slowest average rate allowed, in bytes per second (at least 1).
    pub min_bytes_per_sec: u64,
    /// The ceiling.
    pub max: Duration,
}

impl Default for BlobBudget {
    fn default() -> Self {
        Self {
            base: BLOB_BUDGET_BASE,
            min_bytes_per_sec: BLOB_MIN_BYTES_PER_SEC,
            max: BLOB_BUDGET_MAX,
        }
    }
}

impl BlobBudget {
    /// The budget of a blob of `size` bytes (its descriptor's size), to the millisecond.
    pub fn for_size(&self, size: u64) -> Duration {
        let rate = u128::from(self.min_bytes_per_sec.max(1));
        let millis = u128::from(size) * 1000 / rate;
        let transfer = Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX));
        self.base.saturating_add(transfer).min(self.max)
    }
}

/// Added to a blob's budget for the HTTP client's own whole-request timeout, so that the
/// budget (checked around the whole call) always expires first and a timeout the HTTP client
/// reports while the body streams can only be the read-idle one.
const BLOB_TIMEOUT_SLACK: Duration = Duration::from_secs(1);

/// Most redirects one request follows (reqwest's default).
pub const MAX_REDIRECTS: usize = 10;

/// The client follows a redirect by itself only within the origin of the first request.
/// reqwest rebuilds each hop from the first request's headers and drops `Authorization` only
/// when the origin changes from the hop just before: a chain registry -> storage/a ->
/// storage/b would send the credential again at storage/b. So a hop to another origin stops
/// here, and [`RegistryClient`] follows it by hand, without any credential.
fn same_origin_redirects(attempt: reqwest::redirect::Attempt) -> reqwest::redirect::Action {
    if attempt.previous().len() > MAX_REDIRECTS {
        return attempt.error("too many redirects");
    }
    let same = attempt
        .previous()
        .first()
        .is_some_and(|first| first.origin() == attempt.url().origin());
    if same {
        attempt.follow()
    } else {
        attempt.stop()
    }
}

/// The token services an upstream is documented to use, besides its own host: where its
/// credential may go when a `WWW-Authenticate: Bearer realm=...` names another host. Docker
/// Hub's registry (`registry-1.docker.io`) sends clients to `auth.docker.io`; GitLab's
/// registry to `gitlab.com/jwt/auth`; ghcr.io, quay.io, public.ecr.aws and Azure registries
/// are their own token services (same origin, always allowed). Any other realm gets an
/// anonymous token request: the credential never leaves the hosts it belongs to.
/// (The Docker CLI and containerd send the registry's credential to whatever realm the
/// registry names; this client holds other people's credentials and is stricter.)
pub fn known_token_hosts(upstream_host: &str) -> &'static [&'static str] {
    match upstream_host {
        "registry-1.docker.io" | "docker.io" | "index.docker.io" => &["auth.docker.io"],
        "registry.gitlab.com" => &["gitlab.com"],
        _ => &[],
    }
}

/// One registry (one base URL) with its credentials.
pub struct RegistryClient {
    http: reqwest::Client,
    base: String,
    credentials: Arc<dyn CredentialSource>,
    /// Hosts besides the base's origin that may receive the credentials in a token request
    /// (https only); see [`known_token_hosts`].
    token_hosts: Vec<String>,
    bearer: Mutex<HashMap<String, Secret>>,
    retry: RetryPolicy,
    blob_budget: BlobBudget,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

struct Answer {
    headers: HeaderMap,
    response: reqwest::Response,
}

/// How far one download of a blob got: whether its body had started, and the bytes read.
#[derive(Default)]
struct BlobProgress {
    streaming: bool,
    received: u64,
}

impl RegistryClient {
    /// `base` is `scheme://host[:port]` (no trailing slash).
    pub fn new(http: reqwest::Client, base: &str, credentials: Arc<dyn CredentialSource>) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            credentials,
            token_hosts: Vec::new(),
            bearer: Mutex::new(HashMap::new()),
            retry: RetryPolicy::default(),
            blob_budget: BlobBudget::default(),
        }
    }

    /// Token services besides the registry's own origin that may receive its credentials
    /// (https only): [`known_token_hosts`] of the upstream.
    pub fn with_token_hosts(mut self, hosts: &[&str]) -> Self {
        self.token_hosts = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
        self
    }

    /// The client with `retry` instead of [`RetryPolicy::default`].
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The client with `budget` for blob downloads instead of [`BlobBudget::default`].
    pub fn with_blob_budget(mut self, budget: BlobBudget) -> Self {
        self.blob_budget = budget;
        self
    }

    /// The base URL, `scheme://host[:port]` without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /v2/`: checks reachability and credentials.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        self.send(Method::GET, "/v2/", None, None, None)
            .await
            .map(|_| ())
    }

    /// GET a manifest by tag or digest with the full `Accept` list.
    ///
    /// The body (at most [`MAX_MANIFEST_BYTES`], else [`RegistryError::InvalidManifest`]) is
    /// checked against `reference` when it is a digest and against the
    /// `Docker-Content-Digest` header when present ([`RegistryError::DigestMismatch`]), then
    /// parsed ([`Manifest::parse`]); `rate_limit` holds the answer's `ratelimit-*` headers
    /// (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests>).
    pub async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Manifest, RegistryError> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let url = format!("{}{path}", self.base);
        let answer = self
            .send(
                Method::GET,
                &path,
                Some(MANIFEST_ACCEPT),
                Some(repository),
                None,
            )
            .await?;
        let rate_limit = RateLimit::from_headers(&answer.headers);
        let content_type = answer
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let header_digest = answer
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok());
        let body = read_limited(answer.response, &url, MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| match e {
                RegistryError::Refused { url, .. } => RegistryError::InvalidManifest {
                    url,
                    reason: "larger than 4 MiB".into(),
                },
                other => other,
            })?;
        let requested = Digest::parse(reference).ok();
        let mut manifest =
            Manifest::parse(&url, content_type.as_deref(), body, requested.as_ref())?;
        if let Some(header) = header_digest {
            let actual = header.of_content(&manifest.body);
            if actual != header {
                return Err(RegistryError::DigestMismatch {
                    url,
                    expected: header.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        manifest.rate_limit = rate_limit;
        Ok(manifest)
    }

    /// HEAD a manifest: digest and rate-limit headers without counting as a Docker Hub pull.
    pub async fn head_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<ManifestHead, RegistryError> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let answer = self
            .send(
                Method::HEAD,
                &path,
                Some(MANIFEST_ACCEPT),
                Some(repository),
                None,
            )
            .await?;
        let headers = &answer.headers;
        Ok(ManifestHead {
            digest: headers
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Digest::parse(v).ok()),
            media_type: headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            size: headers
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
            rate_limit: RateLimit::from_headers(headers),
        })
    }

    /// List a repository's tags: `GET /v2/<name>/tags/list?n=<page_size>`, following the
    /// `Link: <...>; rel="next"` pagination of the distribution spec
    /// (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-tags>),
    /// within `limits`: at most [`TagListLimits::max_pages`] requests and
    /// [`TagListLimits::max_tags`] tags kept, each page's body at most [`MAX_TAGS_PAGE_BYTES`]
    /// ([`RegistryError::Refused`] beyond, unread).
    ///
    /// A next link is followed only to this registry's origin and the same path (its query,
    /// e.g. `n` and `last`, is taken as given): one to another host, scheme, port or path
    /// ends the listing there, with [`TagList::complete`] false, and nothing is sent to it.
    /// Entries that are not valid tags (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`) are dropped, so a
    /// tag from the list can go into a URL path as it is. `complete` is false when a bound
    /// stopped the listing. A body that is not a tags list is [`RegistryError::Refused`].
    pub async fn list_tags(
        &self,
        repository: &str,
        limits: TagListLimits,
    ) -> Result<TagList, RegistryError> {
        let list_path = format!("/v2/{repository}/tags/list");
        let mut path = format!("{list_path}?n={}", limits.page_size.max(1));
        let mut out = TagList {
            tags: Vec::new(),
            complete: false,
            pages: 0,
        };
        let mut seen = std::collections::HashSet::new();
        while out.pages < limits.max_pages {
            let url = format!("{}{path}", self.base);
            let answer = self
                .send(Method::GET, &path, None, Some(repository), None)
                .await?;
            out.pages += 1;
            let next = answer
                .headers
                .get_all(reqwest::header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_link)
                .map(str::to_owned);
            let body = read_limited(answer.response, &url, MAX_TAGS_PAGE_BYTES).await?;
            let page: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| RegistryError::Refused {
                    url: url.clone(),
                    message: format!("the tags list is not JSON: {e}"),
                })?;
            let tags = match page.get("tags") {
                Some(serde_json::Value::Array(tags)) => tags.as_slice(),
                Some(serde_json::Value::Null) | None => &[],
                Some(_) => {
                    return Err(RegistryError::Refused {
                        url,
                        message: "the tags list's `tags` is not an array".into(),
                    });
                }
            };
            for tag in tags.iter().filter_map(|t| t.as_str()) {
                if out.tags.len() >= limits.max_tags {
                    return Ok(out);
                }
                if valid_tag(tag) && seen.insert(tag.to_owned()) {
                    out.tags.push(tag.to_owned());
                }
            }
            let Some(next) = next else {
                out.complete = true;
                return Ok(out);
            };
            match self.same_listing(&url, &next, &list_path) {
                Some(next_path) => path = next_path,
                None => {
                    tracing::warn!(registry = %self.base, link = %next, "tags list: next page on another origin or path, not followed");
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// The path and query of `link` (relative to `page_url`) when it is this registry's
    /// origin and `list_path`; `None` otherwise.
    fn same_listing(&self, page_url: &str, link: &str, list_path: &str) -> Option<String> {
        let page = reqwest::Url::parse(page_url).ok()?;
        let next = page.join(link).ok()?;
        let base = reqwest::Url::parse(&self.base).ok()?;
        if next.origin() != base.origin() || next.path() != list_path {
            return None;
        }
        Some(match next.query() {
            Some(query) => format!("{list_path}?{query}"),
            None => list_path.to_owned(),
        })
    }

    /// GET the blob a descriptor names (following the redirect to storage), streamed and
    /// checked against its digest. Reading stops, with an error, past the descriptor's size:
    /// a server cannot make it read more. Returns the number of bytes read.
    ///
    /// Time: the whole call has the budget [`BlobBudget::for_size`] of the descriptor's size
    /// ([`RegistryClient::with_blob_budget`]), instead of the HTTP client's whole-request
    /// timeout; when it is spent the download stops with [`RegistryError::BlobTooSlow`], not
    /// retried. Within it, the read-idle timeout of [`http_client`] still stops a connection
    /// that is silent: [`RegistryError::BlobStalled`]. A download that keeps making progress is
    /// never cut short before its budget.
    ///
    /// Retries: the request, up to the answer's head, is retried as any other
    /// ([`RetryPolicy`]). A download that fails once its body is streaming (a stall, a reset
    /// connection: [`RegistryError::BlobStalled`] or [`RegistryError::Transport`]) is started
    /// again from its first byte **at most once**, within what is left of the same budget; a
    /// second such failure, a digest mismatch, a body over its size or a spent budget is
    /// returned. It is not resumed with a `Range` request: the retry may land on another
    /// storage URL (ECR redirects each GET to a fresh presigned one), a server may ignore
    /// `Range` and send the whole blob again, and the point of the download (making the cache
    /// import the layer) does not need it; one restart costs at most the blob's size again,
    /// and a download that is progressing is never restarted.
    pub async fn get_blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
    ) -> Result<u64, RegistryError> {
        let url = format!("{}/v2/{repository}/blobs/{}", self.base, descriptor.digest);
        let budget = self.blob_budget.for_size(descriptor.size);
        let deadline = tokio::time::Instant::now() + budget;
        let mut restarted = false;
        loop {
            let mut progress = BlobProgress::default();
            let attempt = tokio::time::timeout_at(
                deadline,
                self.get_blob_once(repository, descriptor, budget, &mut progress),
            )
            .await;
            let err = match attempt {
                Ok(Ok(total)) => return Ok(total),
                Ok(Err(err)) => err,
                Err(_elapsed) => {
                    return Err(RegistryError::BlobTooSlow {
                        url,
                        budget,
                        min_bytes_per_sec: self.blob_budget.min_bytes_per_sec,
                        received: progress.received,
                        expected: descriptor.size,
                    });
                }
            };
            let mid_stream = progress.streaming
                && matches!(
                    err,
                    RegistryError::BlobStalled { .. } | RegistryError::Transport { .. }
                );
            if !mid_stream || restarted || tokio::time::Instant::now() >= deadline {
                return Err(err);
            }
            tracing::warn!(error = %err, received = progress.received, size = descriptor.size, "blob download failed mid-stream: started again from its first byte (once)");
            restarted = true;
        }
    }

    /// One download of a blob (see [`Self::get_blob`]): the request with its retries, then the
    /// body, hashed as it comes. `progress` says how far it got.
    async fn get_blob_once(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        budget: Duration,
        progress: &mut BlobProgress,
    ) -> Result<u64, RegistryError> {
        let digest = &descriptor.digest;
        let path = format!("/v2/{repository}/blobs/{digest}");
        let url = format!("{}{path}", self.base);
        let mut answer = self
            .send(
                Method::GET,
                &path,
                None,
                Some(repository),
                Some(budget + BLOB_TIMEOUT_SLACK),
            )
            .await?;
        let too_large = || RegistryError::Refused {
            url: url.clone(),
            message: format!(
                "the blob is larger than its descriptor's {} bytes",
                descriptor.size
            ),
        };
        if answer
            .response
            .content_length()
            .is_some_and(|l| l > descriptor.size)
        {
            return Err(too_large());
        }
        progress.streaming = true;
        let mut hasher = digest.hasher();
        let mut last_byte = tokio::time::Instant::now();
        loop {
            let chunk = match answer.response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                // The whole-request timeout is past the budget (BLOB_TIMEOUT_SLACK), which
                // `get_blob` enforces first: a timeout here is the read-idle one.
                Err(e) if e.is_timeout() => {
                    return Err(RegistryError::BlobStalled {
                        url,
                        silent: last_byte.elapsed(),
                        received: progress.received,
                        expected: descriptor.size,
                    });
                }
                Err(e) => return Err(transport(&url, &e)),
            };
            last_byte = tokio::time::Instant::now();
            progress.received = progress.received.saturating_add(chunk.len() as u64);
            if progress.received > descriptor.size {
                return Err(too_large());
            }
            hasher.update(&chunk);
        }
        // Checked in the descriptor's own algorithm (sha256 or sha512).
        let actual = hasher.finish();
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                url,
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(progress.received)
    }

    /// One request with auth handling, inside the retry loop.
    async fn send(
        &self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        repository: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Answer, RegistryError> {
        let url = format!("{}{path}", self.base);
        let attempt = || async {
            let mut refreshed = false;
            let mut bearer_tried = false;
            loop {
                let auth = self.auth_header(repository, refreshed).await?;
                let mut request = self.http.request(method.clone(), &url);
                if let Some(accept) = accept {
                    request = request.header(ACCEPT, accept);
                }
                if let Some(auth) = &auth {
                    request = request.header(AUTHORIZATION, auth.expose());
                }
                if let Some(timeout) = timeout {
                    request = request.timeout(timeout);
                }
                let mut response = request.send().await.map_err(|e| transport(&url, &e))?;
                if response.status().is_redirection() {
                    // To another origin (storage): followed without any credential.
                    response = self
                        .follow_anonymously(&method, accept, timeout, response)
                        .await?;
                }
                let status = response.status();
                let headers = response.headers().clone();
                if status.is_success() {
                    return Ok(Answer { headers, response });
                }
                if status == StatusCode::UNAUTHORIZED {
                    let challenge = headers
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    if let Some(params) = challenge
                        .strip_prefix("Bearer ")
                        .or_else(|| challenge.strip_prefix("bearer "))
                    {
                        if !bearer_tried {
                            bearer_tried = true;
                            self.fetch_bearer(params, repository).await?;
                            continue;
                        }
                    } else if !refreshed {
                        refreshed = true;
                        continue;
                    }
                    return Err(RegistryError::Unauthorized { url: url.clone() });
                }
                return Err(error_for(&url, status, &headers, response).await);
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_retries)
            .with_jitter();
        attempt
            .retry(backoff)
            .when(RegistryError::retryable)
            .adjust(|err, delay| delay.map(|d| err.retry_after().map_or(d, |ra| ra.min(MAX_RETRY_AFTER))))
            .notify(|err, delay| tracing::debug!(error = %err, delay_ms = delay.as_millis() as u64, "registry request retried"))
            .await
    }

    async fn auth_header(
        &self,
        repository: Option<&str>,
        refresh: bool,
    ) -> Result<Option<Secret>, RegistryError> {
        if let Some(repo) = repository
            && let Some(token) = self.bearer.lock().await.get(&scope(repo))
        {
            return Ok(Some(Secret::new(format!("Bearer {}", token.expose()))));
        }
        let creds = self.credentials.credentials(refresh).await?;
        Ok(creds.basic_header().map(Secret::new))
    }

    /// The Bearer token dance: `GET realm?service=...&scope=repository:<repo>:pull`, with
    /// Basic credentials when the registry has some and the realm may receive them (its
    /// origin, or a known token service); `params` is the challenge after `Bearer `. The
    /// token is kept for the repository's scope.
    pub async fn fetch_bearer(
        &self,
        params: &str,
        repository: Option<&str>,
    ) -> Result<(), RegistryError> {
        let fields = parse_challenge(params);
        let realm = fields
            .get("realm")
            .ok_or_else(|| RegistryError::Credentials("Bearer challenge without realm".into()))?;
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(service) = fields.get("service") {
            query.push(("service", service.clone()));
        }
        let scope_value = repository
            .map(scope)
            .or_else(|| fields.get("scope").cloned());
        if let Some(s) = &scope_value {
            query.push(("scope", s.clone()));
        }
        let mut token_url = reqwest::Url::parse(realm).map_err(|e| RegistryError::Refused {
            url: self.base.clone(),
            message: format!("Bearer realm {realm:?} is not a URL: {e}"),
        })?;
        // https anywhere, plain http on loopback only (as for every endpoint): never a token
        // request, with or without credentials, in clear text over the network.
        let loopback = crate::net::is_loopback(&token_url);
        // A registry off this machine never sends the client to a service on it (the Lambda
        // Runtime API listens on loopback; so may an operator's own services).
        let base_loopback =
            reqwest::Url::parse(&self.base).is_ok_and(|b| crate::net::is_loopback(&b));
        if loopback && !base_loopback {
            return Err(RegistryError::Refused {
                url: self.base.clone(),
                message: format!(
                    "Bearer realm {realm:?} is on this machine and the registry is not: no token is requested from it"
                ),
            });
        }
        match token_url.scheme() {
            "https" => {}
            "http" if loopback => {}
            other => {
                return Err(RegistryError::Refused {
                    url: self.base.clone(),
                    message: format!(
                        "Bearer realm {realm:?} is not https (scheme {other}): no token is requested from it"
                    ),
                });
            }
        }
        let allowed = self.may_receive_credentials(&token_url);
        token_url
            .query_pairs_mut()
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        let mut request = self.http.get(token_url);
        match self.credentials.credentials(false).await?.basic_header() {
            Some(basic) if allowed => request = request.header(AUTHORIZATION, basic),
            Some(_) => tracing::warn!(
                registry = %self.base,
                realm = %realm,
                "Bearer realm on another host than the registry and its known token services: token requested anonymously, the credential is not sent"
            ),
            None => {}
        }
        let response = request.send().await.map_err(|e| transport(realm, &e))?;
        if matches!(
            response.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            // The token service refused the credentials: the same outcome as a Basic 401.
            return Err(RegistryError::Unauthorized { url: realm.clone() });
        }
        if !response.status().is_success() {
            return Err(RegistryError::Credentials(format!(
                "token endpoint {realm} answered HTTP {}",
                response.status().as_u16()
            )));
        }
        let body = read_limited(response, realm, MAX_TOKEN_BODY_BYTES).await?;
        let body: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::Credentials(format!("token endpoint {realm}: {e}")))?;
        let token = body
            .get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| {
                RegistryError::Credentials(format!("token endpoint {realm} returned no token"))
            })?;
        self.bearer.lock().await.insert(
            scope_value.unwrap_or_default(),
            Secret::new(token.to_owned()),
        );
        Ok(())
    }
}

impl RegistryClient {
    /// Follow a redirect to another origin by hand, with no `Authorization` at all (hops
    /// within that origin are followed by the client, still without one), up to
    /// [`MAX_REDIRECTS`] in all. Returns the first answer that is not a redirect.
    async fn follow_anonymously(
        &self,
        method: &Method,
        accept: Option<&str>,
        timeout: Option<Duration>,
        mut response: reqwest::Response,
    ) -> Result<reqwest::Response, RegistryError> {
        for _ in 0..MAX_REDIRECTS {
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let from = response.url().clone();
            let Some(next) = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| from.join(l).ok())
            else {
                return Ok(response);
            };
            let mut request = self.http.request(method.clone(), next.clone());
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            if let Some(timeout) = timeout {
                request = request.timeout(timeout);
            }
            response = request
                .send()
                .await
                .map_err(|e| transport(next.as_str(), &e))?;
        }
        if response.status().is_redirection() {
            return Err(RegistryError::Refused {
                url: response.url().to_string(),
                message: "too many redirects (a redirect loop?)".into(),
            });
        }
        Ok(response)
    }

    /// May `url` (a token service) receive this registry's credentials? Its own origin
    /// (scheme, host and port of the base URL), or an https host of `token_hosts`.
    fn may_receive_credentials(&self, url: &reqwest::Url) -> bool {
        let same_origin =
            reqwest::Url::parse(&self.base).is_ok_and(|base| base.origin() == url.origin());
        same_origin
            || (url.scheme() == "https"
                && url.port().is_none()
                && url
                    .host_str()
                    .is_some_and(|h| self.token_hosts.iter().any(|t| t == h)))
    }
}

/// Most bytes of one page of a tags list: 1 MiB, room for several thousand tags (a tag is at
/// most 128 characters); a larger page is refused unread.
pub const MAX_TAGS_PAGE_BYTES: usize = 1024 * 1024;

/// Bounds of [`RegistryClient::list_tags`]. `Default`: pages of 1000 tags, at most 10 pages and
/// 10,000 tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagListLimits {
    /// `n`, the page size asked for (a registry may send fewer, or ignore it).
    pub page_size: usize,
    /// Most requests made.
    pub max_pages: usize,
    /// Most tags kept, whatever the pages hold.
    pub max_tags: usize,
}

impl Default for TagListLimits {
    fn default() -> Self {
        Self {
            page_size: 1000,
            max_pages: 10,
            max_tags: 10_000,
        }
    }
}

/// What [`RegistryClient::list_tags`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagList {
    /// The valid tags, in the registry's order, without duplicates.
    pub tags: Vec<String>,
    /// The registry said there was no next page; false when a bound, or a next link that was
    /// not followed, ended the listing.
    pub complete: bool,
    /// Pages requested.
    pub pages: usize,
}

/// The target of a `Link` header value's `rel="next"` entry (RFC 8288), e.g.
/// `</v2/x/tags/list?n=2&last=b>; rel="next"`.
fn next_link(value: &str) -> Option<&str> {
    value.split(',').find_map(|entry| {
        let entry = entry.trim();
        let (target, params) = entry.strip_prefix('<')?.split_once('>')?;
        let next = params.split(';').any(|p| {
            p.trim().strip_prefix("rel=").is_some_and(|r| {
                r.trim_matches('"')
                    .split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        next.then_some(target)
    })
}

/// The OCI tag grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The parameters of a `WWW-Authenticate: Bearer` challenge (`realm="...",service=...`),
/// keys lowercased; a malformed challenge gives what could be read, never a panic.
pub fn parse_challenge(params: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = params.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.insert(key, value.to_owned());
        rest = remaining.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
    }
    out
}

fn transport(url: &str, err: &reqwest::Error) -> RegistryError {
    if err.is_redirect() || err.is_builder() {
        // A redirect loop (or more than the client follows), a URL or scheme the client
        // cannot use: the same request would fail the same way again.
        return RegistryError::Refused {
            url: url.to_owned(),
            message: if err.is_redirect() {
                "too many redirects (a redirect loop?)".to_owned()
            } else {
                format!("the request cannot be made: {err}")
            },
        };
    }
    if err.is_timeout() {
        RegistryError::Timeout {
            url: url.to_owned(),
        }
    } else {
        let mut message = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(inner) = source {
            message.push_str(": ");
            message.push_str(&inner.to_string());
            source = inner.source();
        }
        RegistryError::Transport {
            url: url.to_owned(),
            message,
        }
    }
}

async fn error_for(
    url: &str,
    status: StatusCode,
    headers: &HeaderMap,
    response: reqwest::Response,
) -> RegistryError {
    // A few KiB for the message; the rest of a large body is dropped unread (dropping the
    // response closes the connection), however many times the request is retried.
    let text = read_prefix(response, MAX_ERROR_BODY_BYTES).await;
    let text = String::from_utf8_lossy(&text);
    let (code, message) = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("errors")?.get(0).cloned())
        .map(|e| {
            (
                e.get("code").and_then(|c| c.as_str()).map(str::to_owned),
                e.get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .unwrap_or((None, text.chars().take(200).collect()));
    let wait = || {
        headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, std::time::SystemTime::now()))
    };
    match status {
        StatusCode::NOT_FOUND => RegistryError::NotFound {
            url: url.to_owned(),
            code,
        },
        StatusCode::TOO_MANY_REQUESTS => RegistryError::RateLimited {
            url: url.to_owned(),
            retry_after: wait(),
            rate_limit: RateLimit::from_headers(headers),
        },
        // RFC 9110 10.2.3: a 503's Retry-After is how long the service expects to be down.
        StatusCode::SERVICE_UNAVAILABLE => RegistryError::Unavailable {
            url: url.to_owned(),
            retry_after: wait(),
            message: message.trim().to_owned(),
        },
        _ => RegistryError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
            message: message.trim().to_owned(),
        },
    }
}

/// The longest wait a `Retry-After` is read as: 2^31 seconds, the value RFC 9111 1.2.2 tells
/// a recipient to use for a delta-seconds "greater than the greatest integer it can
/// represent" (<https://www.rfc-editor.org/rfc/rfc9111#section-1.2.2>). Far beyond
/// [`MAX_RETRY_AFTER`], and small enough that a caller adding it to a clock cannot overflow.
pub const RETRY_AFTER_CEILING: Duration = Duration::from_secs(1 << 31);

/// A `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110 10.2.3), as the wait from
/// `now` (a date in the past is no wait), at most [`RETRY_AFTER_CEILING`]. `delay-seconds =
/// 1*DIGIT`: a sign (`-5`, `+5`) or a fraction make the value unreadable, and it is ignored; a
/// number of digits too large to hold is the ceiling, never ignored (ignoring it would retry at
/// once a server that asked for a long wait).
pub fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds).min(RETRY_AFTER_CEILING));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or_default()
            .min(RETRY_AFTER_CEILING),
    )
}

/// The whole body, or [`RegistryError::Refused`] as soon as it passes `limit` bytes.
async fn read_limited(
    mut response: reqwest::Response,
    url: &str,
    limit: usize,
) -> Result<Vec<u8>, RegistryError> {
    if response.content_length().is_some_and(|l| l > limit as u64) {
        return Err(RegistryError::Refused {
            url: url.to_owned(),
            message: format!("the answer is larger than {limit} bytes"),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(url, &e))? {
        if body.len() + chunk.len() > limit {
            return Err(RegistryError::Refused {
                url: url.to_owned(),
                message: format!("the answer is larger than {limit} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// At most the first `limit` bytes of a body (an error's message); the rest is not read.
async fn read_prefix(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    /// A small HTTP/1.1 server on 127.0.0.1, one thread per connection: `reply(n, head,
    /// socket)` answers the `n`th request (from 0) by writing to the socket itself, then the
    /// connection is closed. Returns the base URL and each request's head.
    fn serve(
        reply: impl Fn(usize, &str, &mut std::net::TcpStream) + Send + Sync + 'static,
    ) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
        use std::io::Read as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (reply, seen) = (Arc::new(reply), heads.clone());
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                let Ok(mut socket) = socket else { return };
                let (reply, seen) = (reply.clone(), seen.clone());
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(head.clone());
                        seen.len() - 1
                    };
                    reply(n, &head, &mut socket);
                });
            }
        });
        (base, heads)
    }

    fn write_head(socket: &mut std::net::TcpStream, status: u16, headers: &[(&str, String)]) {
        use std::io::Write as _;
        let mut text = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
        for (k, v) in headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str("\r\n");
        let _ = socket.write_all(text.as_bytes());
    }

    /// `body` in `chunk`-byte pieces, `pause` before each; stops at the first write error.
    fn write_paced(socket: &mut std::net::TcpStream, body: &[u8], chunk: usize, pause: Duration) {
        use std::io::Write as _;
        for piece in body.chunks(chunk) {
            std::thread::sleep(pause);
            if socket
                .write_all(piece)
                .and_then(|()| socket.flush())
                .is_err()
            {
                return;
            }
        }
    }

    fn blob(len: usize) -> (Vec<u8>, Descriptor) {
        let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let descriptor = Descriptor {
            media_type: String::new(),
            digest: Digest::sha256_of(&body),
            size: len as u64,
            platform: None,
        };
        (body, descriptor)
    }

    /// A client whose HTTP timeout (whole request for small answers, read-idle, connect) is
    /// `timeout`, with quick retries.
    fn client(base: &str, timeout: Duration) -> RegistryClient {
        RegistryClient::new(
            http_client(timeout).unwrap(),
            base,
            Arc::new(Credentials::Anonymous),
        )
        .with_retry(RetryPolicy {
            max_retries: 1,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
        })
    }

    /// Issue 18: a layer that takes longer than the whole-request timeout, but never goes
    /// silent for the read-idle timeout, completes (the old client cut it at the timeout).
    #[tokio::test]
    async fn a_steady_blob_longer_than_the_request_timeout_completes() {
        let (body, descriptor) = blob(16 * 16 * 1024);
        let served = body.clone();
        let (base, heads) = serve(move |_, _, socket| {
            write_head(socket, 200, &[("Content-Length", served.len().to_string())]);
            // 16 pieces, one every 100 ms: about 1.6 s, four times the 400 ms timeout.
            write_paced(socket, &served, 16 * 1024, Duration::from_millis(100));
        });
        let client = client(&base, Duration::from_millis(400));
        let started = std::time::Instant::now();
        let read = client.get_blob("a/b", &descriptor).await.unwrap();
        assert_eq!(read, body.len() as u64);
        assert!(
            started.elapsed() > Duration::from_millis(1200),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(heads.lock().unwrap().len(), 1, "downloaded once");
    }

    /// A body that goes silent for longer than the read-idle timeout fails with an error that
    /// names the stall, after one restart from the first byte (which stalls too).
    #[tokio::test]
    async fn a_blob_that_stalls_longer_than_the_idle_timeout_fails_naming_the_stall() {
        let (body, descriptor) = blob(64 * 1024);
        let served = body.clone();
        let (base, heads) = serve(move |_, _, socket| {
            use std::io::Write as _;
            write_head(socket, 200, &[("Content-Length", served.len().to_string())]);
            let _ = socket.write_all(&served[..1000]);
            let _ = socket.flush();
            std::thread::sleep(Duration::from_secs(3));
        });
        let client = client(&base, Duration::from_millis(300));
        let started = std::time::Instant::now();
        let err = client.get_blob("a/b", &descriptor).await.unwrap_err();
        match &err {
            RegistryError::BlobStalled {
                silent,
                received,
                expected,
                ..
            } => {
                assert!(*silent >= Duration::from_millis(250), "{silent:?}");
                assert_eq!((*received, *expected), (1000, 64 * 1024));
            }
            other => panic!("expected a stall, got {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("stalled")
                && text.contains("read-idle timeout")
                && text.contains("after 1000 of 65536 bytes"),
            "{text}"
        );
        assert_eq!(heads.lock().unwrap().len(), 2, "restarted once, not more");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    /// A connection reset mid-stream: the download starts again from its first byte, once,
    /// and completes.
    #[tokio::test]
    async fn a_blob_cut_mid_stream_is_downloaded_again_once() {
        let (body, descriptor) = blob(64 * 1024);
        let served = body.clone();
        let (base, heads) = serve(move |n, _, socket| {
            use std::io::Write as _;
            write_head(socket, 200, &[("Content-Length", served.len().to_string())]);
            let end = if n == 0 {
                served.len() / 2
            } else {
                served.len()
            };
            let _ = socket.write_all(&served[..end]);
            // Dropping the socket closes it: the first answer is short of its length.
        });
        let read = client(&base, Duration::from_secs(2))
            .get_blob("a/b", &descriptor)
            .await
            .unwrap();
        assert_eq!(read, body.len() as u64);
        assert_eq!(heads.lock().unwrap().len(), 2);
    }

    /// A server that trickles bytes (never silent for the idle timeout) is stopped by the
    /// size-scaled budget, and that is not retried.
    #[tokio::test]
    async fn a_blob_slower_than_its_budget_fails_and_is_not_restarted() {
        let (body, descriptor) = blob(256 * 1024);
        let served = body.clone();
        let (base, heads) = serve(move |_, _, socket| {
            write_head(socket, 200, &[("Content-Length", served.len().to_string())]);
            // 16 KiB every 100 ms: 160 KiB/s, 1.6 s in all.
            write_paced(socket, &served, 16 * 1024, Duration::from_millis(100));
        });
        let budget = BlobBudget {
            base: Duration::from_millis(300),
            min_bytes_per_sec: 1024 * 1024,
            max: Duration::from_secs(60),
        };
        // 300 ms + 256 KiB at 1 MiB/s = 550 ms.
        assert_eq!(budget.for_size(256 * 1024), Duration::from_millis(550));
        let err = client(&base, Duration::from_millis(400))
            .with_blob_budget(budget)
            .get_blob("a/b", &descriptor)
            .await
            .unwrap_err();
        match &err {
            RegistryError::BlobTooSlow {
                budget: spent,
                received,
                expected,
                ..
            } => {
                assert_eq!(*spent, Duration::from_millis(550));
                assert!(*received > 0 && *received < *expected, "{received}");
            }
            other => panic!("expected a spent budget, got {other:?}"),
        }
        assert!(err.to_string().contains("longer than its budget"), "{err}");
        assert_eq!(heads.lock().unwrap().len(), 1, "not restarted");
    }

    /// The budget is `base + size / min rate`, capped: 60 s for a small blob, 60 s + 190.734 s
    /// for 200 MB at 1 MiB/s, 1 h at most (a declared size is untrusted).
    #[test]
    fn the_blob_budget_scales_with_the_declared_size() {
        let budget = BlobBudget::default();
        assert_eq!(budget.for_size(0), Duration::from_secs(60));
        assert_eq!(budget.for_size(1024 * 1024), Duration::from_secs(61));
        assert_eq!(
            budget.for_size(200_000_000),
            Duration::from_secs(60) + Duration::from_millis(190_734)
        );
        assert_eq!(budget.for_size(u64::MAX), Duration::from_secs(3600));
        // 200 MB through 5 MB/s takes 40 s: well within its budget.
        assert!(budget.for_size(200_000_000) > Duration::from_secs(40) * 5);
        let zero_rate = BlobBudget {
            min_bytes_per_sec: 0,
            ..budget
        };
        assert_eq!(
            zero_rate.for_size(10),
            Duration::from_secs(70),
            "a rate of 0 is read as 1 B/s"
        );
    }

    /// Manifests keep the whole-request timeout: a manifest body trickled past it fails.
    #[tokio::test]
    async fn a_manifest_keeps_the_whole_request_timeout() {
        let (base, _) = serve(|_, _, socket| {
            let body = vec![b' '; 2048];
            write_head(socket, 200, &[("Content-Length", body.len().to_string())]);
            write_paced(socket, &body, 128, Duration::from_millis(50));
        });
        let err = client(&base, Duration::from_millis(300))
            .get_manifest("a/b", "1")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                RegistryError::Timeout { .. } | RegistryError::Transport { .. }
            ),
            "{err:?}"
        );
    }

    /// Pagination with `Link`, bounded pages, tags that are not tags dropped.
    #[tokio::test]
    async fn tags_are_listed_page_by_page_within_bounds() {
        let (base, heads) = serve(|n, _, socket| {
            use std::io::Write as _;
            let body = format!(r#"{{"name":"a/b","tags":["t{n}a","t{n}b","../x",7]}}"#);
            let link = format!("</v2/a/b/tags/list?n=2&last=t{n}b>; rel=\"next\"");
            write_head(
                socket,
                200,
                &[("Content-Length", body.len().to_string()), ("Link", link)],
            );
            let _ = socket.write_all(body.as_bytes());
        });
        let limits = TagListLimits {
            page_size: 2,
            max_pages: 3,
            max_tags: 100,
        };
        let list = client(&base, Duration::from_secs(2))
            .list_tags("a/b", limits)
            .await
            .unwrap();
        assert_eq!(list.tags, ["t0a", "t0b", "t1a", "t1b", "t2a", "t2b"]);
        assert!(!list.complete);
        assert_eq!(list.pages, 3);
        let heads = heads.lock().unwrap();
        assert_eq!(heads.len(), 3, "no request past max_pages");
        assert!(
            heads[0].starts_with("GET /v2/a/b/tags/list?n=2 "),
            "{}",
            heads[0]
        );
        assert!(
            heads[2].starts_with("GET /v2/a/b/tags/list?n=2&last=t1b "),
            "{}",
            heads[2]
        );
    }

    /// A next link to another origin (or another path) is not followed; a page over its byte
    /// bound is refused; a page over `max_tags` is cut.
    #[tokio::test]
    async fn hostile_tags_lists_are_bounded_and_stay_on_their_origin() {
        let (elsewhere, elsewhere_heads) = serve(|_, _, socket| write_head(socket, 404, &[]));
        let foreign = elsewhere.clone();
        let (base, heads) = serve(move |_, head, socket| {
            use std::io::Write as _;
            let (body, link) = if head.contains("/huge/") {
                (
                    format!(r#"{{"tags":["{}"]}}"#, "a".repeat(MAX_TAGS_PAGE_BYTES)),
                    None,
                )
            } else if head.contains("/many/") {
                let tags: Vec<String> = (0..50_000).map(|i| format!("\"t{i}\"")).collect();
                (format!(r#"{{"tags":[{}]}}"#, tags.join(",")), None)
            } else if head.contains("/path/") {
                (
                    r#"{"tags":["a"]}"#.to_owned(),
                    Some("</v2/other/tags/list?n=1>; rel=\"next\"".to_owned()),
                )
            } else {
                (
                    r#"{"tags":["a"]}"#.to_owned(),
                    Some(format!(
                        "<{foreign}/v2/a/b/tags/list?n=1&last=a>; rel=\"next\""
                    )),
                )
            };
            let mut headers = vec![("Content-Length", body.len().to_string())];
            if let Some(link) = link {
                headers.push(("Link", link));
            }
            write_head(socket, 200, &headers);
            let _ = socket.write_all(body.as_bytes());
        });
        let client = client(&base, Duration::from_secs(2));
        let list = client
            .list_tags("a/b", TagListLimits::default())
            .await
            .unwrap();
        assert_eq!(
            (list.tags.as_slice(), list.complete),
            (&["a".to_owned()][..], false)
        );
        assert!(
            elsewhere_heads.lock().unwrap().is_empty(),
            "nothing sent to the other origin"
        );
        let list = client
            .list_tags("path/x", TagListLimits::default())
            .await
            .unwrap();
        assert!(!list.complete && list.pages == 1);
        let err = client
            .list_tags("huge/x", TagListLimits::default())
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::Refused { .. }), "{err:?}");
        let list = client
            .list_tags("many/x", TagListLimits::default())
            .await
            .unwrap();
        assert_eq!((list.tags.len(), list.complete), (10_000, false));
        assert_eq!(heads.lock().unwrap().len(), 4);
    }

    #[test]
    fn next_links_are_read() {
        assert_eq!(
            next_link(r#"</v2/x/tags/list?n=2&last=b>; rel="next""#),
            Some("/v2/x/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://h/a>; rel="prev", <https://h/b>; rel=next"#),
            Some("https://h/b")
        );
        assert_eq!(next_link(r#"<https://h/a>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past is no wait"
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }

    /// RFC 9110 10.2.3: `delay-seconds = 1*DIGIT` (no sign, no fraction). RFC 9111 1.2.2: a
    /// delta-seconds too large to represent is read as 2^31, not dropped; a dropped one made a
    /// 429 asking for a very long wait look like one without Retry-After, retried at once.
    #[test]
    fn retry_after_is_only_digits_and_a_huge_wait_stays_huge() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(retry_after("+5", now), None);
        assert_eq!(retry_after("1.5", now), None);
        assert_eq!(retry_after("", now), None);
        assert_eq!(retry_after("0", now), Some(Duration::ZERO));
        for huge in [
            "99999999999999999999999999",
            "18446744073709551616",
            "4294967296",
        ] {
            assert_eq!(retry_after(huge, now), Some(RETRY_AFTER_CEILING), "{huge}");
        }
        assert_eq!(
            retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(RETRY_AFTER_CEILING)
        );
        let huge = RegistryError::RateLimited {
            url: "u".into(),
            retry_after: retry_after("99999999999999999999999999", now),
            rate_limit: RateLimit::default(),
        };
        assert!(!huge.retryable() && huge.asks_to_wait());
    }

    #[test]
    fn rate_limit_headers_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert("ratelimit-limit", HeaderValue::from_static("100;w=21600"));
        headers.insert(
            "ratelimit-remaining",
            HeaderValue::from_static("20;w=21600"),
        );
        assert_eq!(
            RateLimit::from_headers(&headers),
            RateLimit {
                limit: Some(100),
                remaining: Some(20),
                window_secs: Some(21600)
            }
        );
        assert_eq!(
            RateLimit::from_headers(&HeaderMap::new()),
            RateLimit::default()
        );
    }

    fn rate_limit(fields: &[(&'static str, &'static str)]) -> RateLimit {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(*name, HeaderValue::from_static(value));
        }
        RateLimit::from_headers(&headers)
    }

    fn limits(limit: u64, remaining: Option<u64>, window: u64) -> RateLimit {
        RateLimit {
            limit: Some(limit),
            remaining,
            window_secs: Some(window),
        }
    }

    /// draft-ietf-httpapi-ratelimit-headers-01, 3.1: `RateLimit-Limit = expiring-limit [,
    /// 1#quota-policy ]`; each list item is read on its own (a split on `;` over the whole
    /// value paired the first count with the last window, or read no count at all).
    #[test]
    fn a_rate_limit_listing_several_policies_is_read_item_by_item() {
        assert_eq!(
            rate_limit(&[
                ("ratelimit-limit", "100;w=21600, 500;w=86400"),
                ("ratelimit-remaining", "20;w=21600"),
            ]),
            limits(100, Some(20), 21600)
        );
        // The draft's examples: the window of the expiring limit is that of its policy.
        assert_eq!(
            rate_limit(&[(
                "ratelimit-limit",
                "10, 10;w=1, 50;w=60, 1000;w=3600, 5000;w=86400"
            )]),
            limits(10, None, 1)
        );
        assert_eq!(
            rate_limit(&[("ratelimit-limit", "100, 100;w=10")]),
            limits(100, None, 10)
        );
        assert_eq!(
            rate_limit(&[("ratelimit-limit", "10, 10;w=1;burst=1000, 1000;w=3600")]),
            limits(10, None, 1)
        );
        // A list split over two field lines is one list (RFC 9651 3.1, 4.2).
        assert_eq!(
            rate_limit(&[
                ("ratelimit-limit", "100;w=21600"),
                ("ratelimit-limit", "500;w=86400"),
            ]),
            limits(100, None, 21600)
        );
        // Whitespace the syntax allows; a comment parameter.
        assert_eq!(
            rate_limit(&[(
                "ratelimit-limit",
                " 100; w=21600;comment=\"pulls\" ,  500;w=86400 "
            )]),
            limits(100, None, 21600)
        );
    }

    /// What is not a count is no count: a negative remainder, a value that is not a
    /// Structured Field List (ignored whole, RFC 9651 4.2), a count without its window.
    #[test]
    fn unreadable_rate_limits_are_no_rate_limits() {
        assert_eq!(
            rate_limit(&[("ratelimit-remaining", "-1;w=21600")]).remaining,
            None
        );
        assert_eq!(
            rate_limit(&[("ratelimit-limit", "100;w=21600;w=60")]),
            limits(100, None, 60),
            "a repeated parameter keeps the last value (RFC 9651 4.2.3.2)"
        );
        assert_eq!(
            rate_limit(&[("ratelimit-limit", "lots;w=21600")]).limit,
            None
        );
        assert_eq!(
            rate_limit(&[("ratelimit-limit", "100;w=21600 junk")]),
            RateLimit::default()
        );
        assert_eq!(
            rate_limit(&[("ratelimit-limit", "100")]),
            RateLimit {
                limit: Some(100),
                ..RateLimit::default()
            }
        );
    }

    /// draft-ietf-httpapi-ratelimit-headers-11, sections 3 and 4: `RateLimit` names the
    /// policy and its remaining quota `r`, `RateLimit-Policy` gives the quota `q` and window
    /// `w`. The policy closest to running out is the one reported.
    #[test]
    fn the_current_draft_s_ratelimit_and_policy_are_read() {
        assert_eq!(
            rate_limit(&[
                ("ratelimit", "\"default\";r=50;t=30"),
                ("ratelimit-policy", "\"default\";q=100;w=60"),
            ]),
            limits(100, Some(50), 60)
        );
        assert_eq!(
            rate_limit(&[
                ("ratelimit", "\"permin\";r=40;t=30, \"perhr\";r=5;t=2000"),
                (
                    "ratelimit-policy",
                    "\"permin\";q=50;w=60,\"perhr\";q=1000;w=3600"
                ),
            ]),
            limits(1000, Some(5), 3600)
        );
        // Without a policy of that name: the remainder only.
        assert_eq!(
            rate_limit(&[("ratelimit", "\"default\";r=999;pk=:dHJpYWwxMjEzMjM=:")]),
            RateLimit {
                remaining: Some(999),
                ..RateLimit::default()
            }
        );
        // Docker Hub's headers win; the two generations are not mixed.
        assert_eq!(
            rate_limit(&[
                ("ratelimit-limit", "100;w=21600"),
                ("ratelimit-remaining", "76;w=21600"),
                ("ratelimit", "\"default\";r=1"),
                ("ratelimit-policy", "\"default\";q=5;w=1"),
            ]),
            limits(100, Some(76), 21600)
        );
    }

    #[test]
    fn bearer_challenges_are_parsed() {
        let f = parse_challenge(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        );
        assert_eq!(f["realm"], "https://auth.docker.io/token");
        assert_eq!(f["service"], "registry.docker.io");
        assert_eq!(f["scope"], "repository:library/nginx:pull");
    }

    #[test]
    fn retry_policy_classification() {
        let url = String::from("u");
        assert!(
            RegistryError::Status {
                url: url.clone(),
                status: 503,
                message: String::new()
            }
            .retryable()
        );
        assert!(
            !RegistryError::Status {
                url: url.clone(),
                status: 400,
                message: String::new()
            }
            .retryable()
        );
        assert!(
            !RegistryError::NotFound {
                url: url.clone(),
                code: None
            }
            .retryable()
        );
        assert!(RegistryError::Timeout { url: url.clone() }.retryable());
        let short = RegistryError::RateLimited {
            url: url.clone(),
            retry_after: Some(Duration::from_secs(1)),
            rate_limit: RateLimit::default(),
        };
        let long = RegistryError::RateLimited {
            url,
            retry_after: Some(Duration::from_secs(3600)),
            rate_limit: RateLimit::default(),
        };
        assert!(short.retryable() && !long.retryable());
        assert!(!short.asks_to_wait() && long.asks_to_wait());
    }

    /// RFC 9110 10.2.3: Retry-After also comes with a 503. A short one is waited for between
    /// retries, a longer one returned at once; without one, a 503 is retried with backoff.
    #[test]
    fn a_503_s_retry_after_is_classified_as_a_429_s() {
        let unavailable = |secs: Option<u64>| RegistryError::Unavailable {
            url: "https://quay.io/v2/".into(),
            retry_after: secs.map(Duration::from_secs),
            message: "maintenance".into(),
        };
        assert!(unavailable(None).retryable() && !unavailable(None).asks_to_wait());
        assert!(unavailable(Some(3)).retryable());
        assert_eq!(
            unavailable(Some(3)).retry_after(),
            Some(Duration::from_secs(3))
        );
        let long = unavailable(Some(3600));
        assert!(!long.retryable() && long.asks_to_wait());
        assert_eq!(
            long.to_string(),
            "https://quay.io/v2/: service unavailable (HTTP 503), retry after 3600s: maintenance"
        );
    }
}
