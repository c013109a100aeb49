//! The lifecycle-fixer Lambda: wiring only.

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use lifecycle_fixer::handle;
use lifecycle_fixer::{Deps, Options};
use ptc_core::aws::SdkEcr;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (settings, clients) = ptc_core::lambda_start("lifecycle-fixer").await?;
    let options =
        Options::from_settings(&settings).inspect_err(|e| eprintln!("lifecycle-fixer: {e}"))?;
    let ecr = SdkEcr::new(clients.ecr());
    let metrics = ptc_core::aws::for_sink(settings.metrics_sink, clients.cloudwatch(), false);
    let deps = Deps {
        ecr: &ecr,
        settings: &ecr,
        templates: &ecr,
        metrics: metrics.as_ref(),
    };
    let (deps, options) = (&deps, &options);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let mut options = options.clone();
        options.stop_at = Some(ptc_core::deadline::stop_at(event.context.deadline));
        let report = handle(deps, &options, &event.payload).await;
        // The report as one JSON log line; a run with run-level errors fails the invocation.
        let errors = report.failures();
        ptc_core::lambda_answer(report.job, report, &errors).map_err(|e| Diagnostic {
            error_type: ptc_core::RunFailed::ERROR_TYPE.into(),
            error_message: e.to_string(),
        })
    }))
    .await
}
