//! The validate-rules Lambda: wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use ptc_core::aws::{AwsOptions, load_sdk_config};
use ptc_core::ecr::SdkEcr;
use ptc_core::metrics;
use ptc_core::secrets::SdkSecrets;
use ptc_core::{AwsClients, Settings};
use serde_json::Value;
use validate_rules::{Deps, Options, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let settings = Settings::load().inspect_err(|e| eprintln!("validate-rules: {e}"))?;
    ptc_core::logging::init(settings.log_format);
    let sdk = load_sdk_config(&AwsOptions::from_settings(&settings)).await;
    let clients = AwsClients::new(&sdk);
    let ecr = SdkEcr::new(clients.ecr);
    let secrets = SdkSecrets::new(clients.secrets);
    let metrics = metrics::for_sink(settings.metrics_sink, clients.cloudwatch, false);
    let options = Options::from_settings(&settings);
    let deps = Deps {
        ecr: &ecr,
        secrets: &secrets,
        metrics: metrics.as_ref(),
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let deps = &deps;
        let options = &options;
        async move {
            let report = handle(
                deps,
                options,
                &event.payload,
                time::OffsetDateTime::now_utc(),
            )
            .await;
            // The report, as one JSON line in the function's log.
            println!("{}", serde_json::to_string(&report)?);
            Ok::<_, Error>(report)
        }
    }))
    .await
}
