//! The prewarm Lambda: wiring only.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use prewarm::PrewarmReport;
use prewarm::invocation::Environment;
use ptc_core::aws::{SdkEcr, SdkObjects, SdkSecrets};
use ptc_core::oci::http_client;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (settings, clients) = ptc_core::lambda_start("prewarm").await?;
    let environment = Environment::new(
        Arc::new(SdkEcr::new(clients.ecr())),
        Box::new(SdkSecrets::new(clients.secrets())),
        ptc_core::aws::for_sink(settings.metrics_sink, clients.cloudwatch(), false),
        Box::new(SdkObjects::lazy(clients.clone())),
        http_client(settings.http_timeout)?,
        settings
            .upstream_endpoints
            .iter()
            .map(|(h, e)| (h.clone(), e.as_str().to_owned()))
            .collect(),
        settings
            .registry_endpoint
            .as_ref()
            .map(|e| e.as_str().to_owned()),
        prewarm::Options::from_settings(&settings),
    );
    let environment = &environment;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        answer(
            environment
                .invoke(&event.payload, event.context.deadline)
                .await,
        )
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
