//! The health-metrics Lambda: wiring only.

use health_metrics::{Deadline, Deps, Options, handle_until};
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use ptc_core::aws::SdkEcr;
use ptc_core::aws::SdkObjects;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (settings, clients) = ptc_core::lambda_start("health-metrics").await?;
    let ecr = SdkEcr::new(clients.ecr());
    let objects = SdkObjects::lazy(clients.clone());
    let metrics = ptc_core::aws::for_sink(settings.metrics_sink, clients.cloudwatch(), false);
    let options = Options::from_settings(&settings);
    let deps = Deps {
        ecr: &ecr,
        objects: &objects,
        metrics: metrics.as_ref(),
    };
    let (deps, options) = (&deps, &options);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // The inventory stops before the invocation's deadline and publishes what it read.
        let report = handle_until(
            deps,
            options,
            &event.payload,
            time::OffsetDateTime::now_utc(),
            Some(Deadline::of_invocation(event.context.deadline)),
        )
        .await;
        // The report as one JSON log line; a run with run-level errors fails the invocation.
        let errors = report.errors.clone();
        ptc_core::lambda_answer(report.job, report, &errors).map_err(|e| Diagnostic {
            error_type: ptc_core::RunFailed::ERROR_TYPE.into(),
            error_message: e.to_string(),
        })
    }))
    .await
}
