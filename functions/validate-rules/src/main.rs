//! The validate-rules Lambda: wiring only.

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use ptc_core::aws::SdkEcr;
use ptc_core::aws::SdkSecrets;
use serde_json::Value;
use validate_rules::{Deps, Options, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (settings, clients) = ptc_core::lambda_start("validate-rules").await?;
    let ecr = SdkEcr::new(clients.ecr());
    let secrets = SdkSecrets::new(clients.secrets());
    let metrics = ptc_core::aws::for_sink(settings.metrics_sink, clients.cloudwatch(), false);
    let options = Options::from_settings(&settings);
    let deps = Deps {
        ecr: &ecr,
        secrets: &secrets,
        metrics: metrics.as_ref(),
        templates: &ecr,
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
            // The report as one JSON log line; a run with run-level errors fails the invocation.
            let errors = report.errors.clone();
            ptc_core::lambda_answer(report.job, report, &errors).map_err(|e| Diagnostic {
                error_type: ptc_core::RunFailed::ERROR_TYPE.into(),
                error_message: e.to_string(),
            })
        }
    }))
    .await
}
