//! The prewarm Lambda: wiring only.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use prewarm::{Deps, Options, handle, job::stop_before};
use ptc_core::aws::{AwsOptions, load_sdk_config};
use ptc_core::ecr::{EcrApi, SdkEcr};
use ptc_core::metrics::SdkMetrics;
use ptc_core::registry::{RegistryClient, http_client};
use ptc_core::secrets::SdkSecrets;
use ptc_core::{AwsClients, Settings};
use serde_json::Value;
use tokio::sync::OnceCell;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let settings = Settings::load().inspect_err(|e| eprintln!("prewarm: {e}"))?;
    ptc_core::logging::init(settings.log_format);
    let sdk = load_sdk_config(&AwsOptions::from_settings(&settings)).await;
    let clients = AwsClients::new(&sdk);
    let ecr: Arc<dyn EcrApi> = Arc::new(SdkEcr::new(clients.ecr));
    let secrets = SdkSecrets::new(clients.secrets);
    let metrics = SdkMetrics::new(clients.cloudwatch);
    let http = http_client(settings.http_timeout)?;
    let upstream_endpoints = settings
        .upstream_endpoints
        .iter()
        .map(|(h, e)| (h.clone(), e.as_str().to_owned()))
        .collect();
    let options = Options::from_settings(&settings);
    let registry_endpoint = settings
        .registry_endpoint
        .as_ref()
        .map(|e| e.as_str().to_owned());
    // The registry token is fetched on the first invocation and reused (refreshed when it expires).
    let cache: OnceCell<(RegistryClient, String)> = OnceCell::new();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (ecr, secrets, metrics, http, upstream_endpoints, options, cache, registry_endpoint) = (
            &ecr,
            &secrets,
            &metrics,
            &http,
            &upstream_endpoints,
            &options,
            &cache,
            &registry_endpoint,
        );
        async move {
            let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
            let left = Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
            let stop_at = Instant::now() + left - stop_before(left);
            let (client, host) = cache
                .get_or_try_init(|| {
                    RegistryClient::for_ecr(http.clone(), ecr.clone(), registry_endpoint.as_deref())
                })
                .await?;
            let deps = Deps {
                ecr: ecr.as_ref(),
                secrets,
                metrics,
                cache: client,
                registry_host: host,
                http,
                upstream_endpoints,
            };
            let report = handle(
                &deps,
                options,
                &event.payload,
                time::OffsetDateTime::now_utc(),
                Some(stop_at),
            )
            .await;
            println!("{}", serde_json::to_string(&report)?);
            Ok::<_, Error>(report)
        }
    }))
    .await
}
