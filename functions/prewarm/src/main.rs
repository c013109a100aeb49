//! The prewarm Lambda: wiring only.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use prewarm::PrewarmReport;
use prewarm::invocation::{Answer, Environment, QueuePorts};
use ptc_core::aws::{SdkEcr, SdkObjects, SdkQueue, SdkRunStore, SdkSecrets};
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
    )
    .with_queue(
        settings
            .queue
            .places()
            .map(|(queue_url, dead_letter_url, table)| QueuePorts {
                queue: Box::new(SdkQueue::new(clients.sqs())),
                store: Box::new(SdkRunStore::new(clients.dynamodb(), table)),
                queue_url: queue_url.to_owned(),
                dead_letter_url: dead_letter_url.to_owned(),
                per_message: settings.queue.images_per_message,
                lease: settings.queue.run_lease,
                retry_backoff: settings.queue.retry_backoff,
            }),
    );
    let environment = &environment;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        match environment
            .answer(&event.payload, event.context.deadline)
            .await
        {
            Answer::Run(report) => answer(*report),
            Answer::Plan(plan) => {
                let errors = plan.errors.clone();
                ptc_core::lambda_answer(plan.job, plan, &errors)
                    .map_err(failed)
                    .and_then(to_value)
            }
            // A worker answers with its batch item failures, never an error: an error would
            // send the whole batch again. Only an event it cannot read at all fails.
            Answer::Batch(report) => {
                let response = report.batch_response();
                let errors = report.errors.clone();
                let unreadable = report.messages == 0 && !errors.is_empty();
                ptc_core::lambda_answer(
                    report.job,
                    *report,
                    if unreadable { &errors } else { &[] },
                )
                .map_err(failed)?;
                Ok(response)
            }
        }
    }))
    .await
}

fn to_value<T: serde::Serialize>(value: T) -> Result<Value, Diagnostic> {
    serde_json::to_value(value).map_err(|e| Diagnostic {
        error_type: "Serialisation".into(),
        error_message: e.to_string(),
    })
}

fn failed(e: ptc_core::RunFailed) -> Diagnostic {
    Diagnostic {
        error_type: ptc_core::RunFailed::ERROR_TYPE.into(),
        error_message: e.to_string(),
    }
}

/// The report as one JSON log line; a run with run-level errors fails the invocation. A
/// report too large for a log event or an answer is cut to what needs reading
/// ([`PrewarmReport::bounded`]).
fn answer(report: PrewarmReport) -> Result<serde_json::Value, Diagnostic> {
    let errors = report.errors.clone();
    let job = report.job;
    ptc_core::lambda_answer(job, report.bounded(), &errors).map_err(failed)
}
