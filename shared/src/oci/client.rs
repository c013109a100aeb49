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

/// A shared HTTP client: connection reuse, a per-request timeout, rustls with the system's
/// roots (TLS verification is never turned off).
///
/// `timeout` bounds each request (`PTC_HTTP_TIMEOUT_SECS`); connecting has at most 10 s of it.
/// Up to 32 idle connections per host, user agent `ptc/<version>`, redirects followed only
/// within the first request's origin (the client follows others by hand, without
/// credentials). A client that cannot be built is [`RegistryError::Transport`].
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, RegistryError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::custom(same_origin_redirects))
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(32)
        .user_agent(concat!("ptc/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| RegistryError::Transport {
            url: String::new(),
            message: e.to_string(),
        })
}

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

    /// The base URL, `scheme://host[:port]` without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /v2/`: checks reachability and credentials.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        self.send(Method::GET, "/v2/", None, None).await.map(|_| ())
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
            .send(Method::GET, &path, Some(MANIFEST_ACCEPT), Some(repository))
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
            .send(Method::HEAD, &path, Some(MANIFEST_ACCEPT), Some(repository))
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

    /// GET the blob a descriptor names (following the redirect to storage), streamed and
    /// checked against its digest. Reading stops, with an error, past the descriptor's size:
    /// a server cannot make it read more. Returns the number of bytes read.
    pub async fn get_blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
    ) -> Result<u64, RegistryError> {
        let digest = &descriptor.digest;
        let path = format!("/v2/{repository}/blobs/{digest}");
        let url = format!("{}{path}", self.base);
        let mut answer = self
            .send(Method::GET, &path, None, Some(repository))
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
        let mut hasher = digest.hasher();
        let mut total = 0u64;
        while let Some(chunk) = answer
            .response
            .chunk()
            .await
            .map_err(|e| transport(&url, &e))?
        {
            total = total.saturating_add(chunk.len() as u64);
            if total > descriptor.size {
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
        Ok(total)
    }

    /// One request with auth handling, inside the retry loop.
    async fn send(
        &self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        repository: Option<&str>,
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
                let mut response = request.send().await.map_err(|e| transport(&url, &e))?;
                if response.status().is_redirection() {
                    // To another origin (storage): followed without any credential.
                    response = self.follow_anonymously(&method, accept, response).await?;
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
