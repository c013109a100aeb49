//! validate-rules: scheduled and event-driven health of every pull-through cache rule, of
//! each rule prefix for the other accounts it serves ([`cross_account`]), and of the usage
//! signal: the roles that pull for the product are ECR pull-time update exclusions
//! ([`pull_time`]).
//!
//! [`handle`] turns an invocation payload into a [`ValidationReport`]; `main.rs` wires it to
//! the Lambda runtime and `ptc validate` to the command line.

#![warn(missing_docs)]

pub mod credential;
pub mod cross_account;
pub mod event;
pub mod job;
pub mod options;
pub mod pull_time;
pub mod report;

pub use job::{Deps, run};
pub use options::Options;
pub use report::ValidationReport;
use time::OffsetDateTime;

/// One invocation: read the trigger from the payload, run, return the report. A payload that
/// cannot be read gives a report with the error (the Lambda then fails the invocation, see
/// `ptc_core::RunFailed`). Every invocation publishes its `RunErrors` point.
pub async fn handle(
    deps: &Deps<'_>,
    options: &Options,
    event: &serde_json::Value,
    now: OffsetDateTime,
) -> ValidationReport {
    match event::parse(event) {
        Ok(trigger) => run(deps, options, &trigger, now).await,
        Err(err) => {
            tracing::error!(error = %err, "event rejected");
            let mut report = ValidationReport::rejected(err.to_string());
            if options.publish_metrics {
                report.metrics_published = ptc_core::metrics::publish_run(
                    deps.metrics,
                    &options.namespace,
                    ptc_core::metrics::Run::new(report.job),
                    Vec::new(),
                    &mut report.errors,
                )
                .await;
            }
            report
        }
    }
}
