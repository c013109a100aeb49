//! The prewarm Lambda: wiring only.

use std::collections::BTreeMap;
use std::sync::Arc;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use prewarm::{Deps, Options, PrewarmReport, handle};
use ptc_core::aws::SdkEcr;
use ptc_core::aws::SdkObjects;
use ptc_core::aws::SdkSecrets;
use ptc_core::ecr::EcrApi;
use ptc_core::metrics::MetricsApi;
use ptc_core::oci::{RegistryClient, http_client};
use serde_json::Value;
use tokio::sync::OnceCell;

/// What every invocation of this execution environment shares.
struct Shared {
    ecr: Arc<dyn EcrApi>,
    secrets: SdkSecrets,
    metrics: Box<dyn MetricsApi>,
    objects: SdkObjects,
    http: reqwest::Client,
    upstream_endpoints: BTreeMap<String, String>,
    registry_endpoint: Option<String>,
    options: Options,
    /// The registry client and host: the token is fetched on the first invocation and reused
    /// (refreshed when it expires).
    cache: OnceCell<(RegistryClient, String)>,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (settings, clients) = ptc_core::lambda_start("prewarm").await?;
    let shared = Shared {
        ecr: Arc::new(SdkEcr::new(clients.ecr())),
        secrets: SdkSecrets::new(clients.secrets()),
        metrics: ptc_core::aws::for_sink(settings.metrics_sink, clients.cloudwatch(), false),
        objects: SdkObjects::lazy(clients.clone()),
        http: http_client(settings.http_timeout)?,
        upstream_endpoints: settings
            .upstream_endpoints
            .iter()
            .map(|(h, e)| (h.clone(), e.as_str().to_owned()))
            .collect(),
        registry_endpoint: settings
            .registry_endpoint
            .as_ref()
            .map(|e| e.as_str().to_owned()),
        options: Options::from_settings(&settings),
        cache: OnceCell::new(),
    };
    let shared = &shared;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let stop_at = ptc_core::deadline::stop_at(event.context.deadline);
        let cache = shared
            .cache
            .get_or_try_init(|| {
                RegistryClient::for_ecr(
                    shared.http.clone(),
                    shared.ecr.clone(),
                    shared.registry_endpoint.as_deref(),
                )
            })
            .await;
        let (client, host) = match cache {
            Ok(cache) => cache,
            Err(err) => {
                let report = prewarm::registry_unavailable(
                    shared.metrics.as_ref(),
                    &shared.options,
                    err.to_string(),
                )
                .await;
                return answer(report);
            }
        };
        let deps = Deps {
            ecr: shared.ecr.as_ref(),
            secrets: &shared.secrets,
            objects: &shared.objects,
            metrics: shared.metrics.as_ref(),
            cache: client,
            registry_host: host,
            http: &shared.http,
            upstream_endpoints: &shared.upstream_endpoints,
        };
        let report = handle(
            &deps,
            &shared.options,
            &event.payload,
            time::OffsetDateTime::now_utc(),
            Some(stop_at),
        )
        .await;
        answer(report)
    }))
    .await
}

/// The report as one JSON log line; a run with run-level errors fails the invocation.
fn answer(report: PrewarmReport) -> Result<PrewarmReport, Diagnostic> {
    let errors = report.errors.clone();
    ptc_core::lambda_answer(report.job, report, &errors).map_err(|e| Diagnostic {
        error_type: ptc_core::RunFailed::ERROR_TYPE.into(),
        error_message: e.to_string(),
    })
}
