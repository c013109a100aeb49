//! What one Lambda execution environment keeps across invocations ([`Environment`]), and
//! one invocation with it ([`Environment::invoke`]): the registry client is made on the
//! first invocation (its `GetAuthorizationToken` token is then reused, and refreshed when it
//! expires), each run stops before the invocation's deadline.

use std::collections::BTreeMap;
use std::sync::Arc;

use ptc_core::ecr::EcrApi;
use ptc_core::metrics::MetricsApi;
use ptc_core::objects::ObjectsApi;
use ptc_core::oci::RegistryClient;
use ptc_core::secrets::SecretsApi;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::{Deps, Options, PrewarmReport, handle, registry_unavailable};

/// The ports, the HTTP client and the options every invocation of an execution environment
/// shares; built once at start-up by `main.rs`.
pub struct Environment {
    /// ECR's API (see [`Deps::ecr`]); shared with the registry token source.
    pub ecr: Arc<dyn EcrApi>,
    /// Secrets Manager (see [`Deps::secrets`]).
    pub secrets: Box<dyn SecretsApi>,
    /// Where the runs' data points go (see [`Deps::metrics`]).
    pub metrics: Box<dyn MetricsApi>,
    /// The long watch list's store (see [`Deps::objects`]).
    pub objects: Box<dyn ObjectsApi>,
    /// The HTTP client of every registry request (connection reuse across invocations).
    pub http: reqwest::Client,
    /// `PTC_UPSTREAM_ENDPOINTS`: upstream host → URL (see [`Deps::upstream_endpoints`]).
    pub upstream_endpoints: BTreeMap<String, String>,
    /// `PTC_REGISTRY_ENDPOINT`: the registry endpoint's URL instead of the token's
    /// `proxyEndpoint` (the local stack).
    pub registry_endpoint: Option<String>,
    /// The runs' options, from the settings.
    pub options: Options,
    /// The registry client and host, made on the first invocation that reaches ECR.
    cache: OnceCell<(RegistryClient, String)>,
}

impl Environment {
    /// An environment whose registry client is made on the first invocation.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ecr: Arc<dyn EcrApi>,
        secrets: Box<dyn SecretsApi>,
        metrics: Box<dyn MetricsApi>,
        objects: Box<dyn ObjectsApi>,
        http: reqwest::Client,
        upstream_endpoints: BTreeMap<String, String>,
        registry_endpoint: Option<String>,
        options: Options,
    ) -> Self {
        Self {
            ecr,
            secrets,
            metrics,
            objects,
            http,
            upstream_endpoints,
            registry_endpoint,
            options,
            cache: OnceCell::new(),
        }
    }

    /// One invocation: `payload` to a report, stopping before `deadline_ms` (the
    /// invocation's deadline, milliseconds since the Unix epoch). A registry endpoint that
    /// cannot be reached (no token) gives a report with that error and no run.
    pub async fn invoke(&self, payload: &Value, deadline_ms: u64) -> PrewarmReport {
        let stop_at = ptc_core::deadline::stop_at(deadline_ms);
        let finish_by = ptc_core::deadline::finish_by(deadline_ms);
        let cache = self
            .cache
            .get_or_try_init(|| {
                RegistryClient::for_ecr(
                    self.http.clone(),
                    self.ecr.clone(),
                    self.registry_endpoint.as_deref(),
                )
            })
            .await;
        let (client, host) = match cache {
            Ok(cache) => cache,
            Err(err) => {
                return registry_unavailable(self.metrics.as_ref(), &self.options, err.to_string())
                    .await;
            }
        };
        let deps = Deps {
            ecr: self.ecr.as_ref(),
            secrets: self.secrets.as_ref(),
            objects: self.objects.as_ref(),
            metrics: self.metrics.as_ref(),
            cache: client,
            registry_host: host,
            http: &self.http,
            upstream_endpoints: &self.upstream_endpoints,
        };
        handle(
            &deps,
            &self.options,
            payload,
            time::OffsetDateTime::now_utc(),
            Some((stop_at, finish_by)),
        )
        .await
    }
}
