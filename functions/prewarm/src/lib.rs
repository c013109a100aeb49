//! prewarm: keep the watch list cached, verified and fresh.
//!
//! [`handle`] reads an invocation payload (`{}`, a scheduled event, or `{"images": [...]}`)
//! and runs [`job::run`]; `main.rs` wires it to the Lambda runtime and `ptc prewarm` to the
//! command line.

#![warn(missing_docs)]

pub mod event;
pub mod invocation;
pub mod job;
pub mod memory;
pub mod options;
pub mod queued;
pub mod report;
pub mod resolve;
pub mod sources;
pub mod survey;

use std::time::Instant;

pub use event::parse_event;
pub use job::{Deps, run};
pub use options::{Options, Progress};
pub use report::{ImageResult, Outcome, PrewarmReport};
use serde_json::Value;
use time::OffsetDateTime;

/// One invocation; a payload that cannot be read gives a report with the error. `deadline`:
/// when to stop starting images and when work in flight must end ([`Options::stop_at`],
/// [`Options::finish_by`]).
pub async fn handle(
    deps: &Deps<'_>,
    options: &Options,
    event: &Value,
    now: OffsetDateTime,
    deadline: Option<(Instant, Instant)>,
) -> PrewarmReport {
    match parse_event(event) {
        Ok((trigger, images)) => {
            let mut options = options.clone();
            options.stop_at = deadline.map(|(stop, _)| stop);
            options.finish_by = deadline.map(|(_, finish)| finish);
            run(deps, &options, &trigger, images, now).await
        }
        Err(err) => {
            tracing::error!(error = %err, "event rejected");
            failed_before_run(deps.metrics, options, "unsupported event", err).await
        }
    }
}

/// The invocation could not reach the registry endpoint (no `GetAuthorizationToken`): a
/// report with the error, and the run's `RunErrors` point.
pub async fn registry_unavailable(
    metrics: &dyn ptc_core::metrics::MetricsApi,
    options: &Options,
    error: String,
) -> PrewarmReport {
    tracing::error!(error = %error, "the registry endpoint cannot be reached");
    failed_before_run(
        metrics,
        options,
        "registry unavailable",
        format!("cannot authenticate to the registry endpoint: {error}"),
    )
    .await
}

async fn failed_before_run(
    metrics: &dyn ptc_core::metrics::MetricsApi,
    options: &Options,
    trigger: &str,
    error: String,
) -> PrewarmReport {
    let mut report = PrewarmReport::new(trigger, options.mode);
    report.errors.push(error);
    if options.publish_metrics && !options.dry_run {
        report.metrics_published = ptc_core::metrics::publish_run(
            metrics,
            &options.namespace,
            ptc_core::metrics::Run::new(report.job),
            Vec::new(),
            &mut report.errors,
        )
        .await;
    }
    report
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn events() {
        assert_eq!(parse_event(&json!({})).unwrap().1, Vec::<String>::new());
        assert_eq!(
            parse_event(&json!({"images": ["nginx:1.25"]})).unwrap(),
            ("on-demand list".into(), vec!["nginx:1.25".into()])
        );
        assert_eq!(
            parse_event(
                &json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
            )
            .unwrap()
            .0,
            "schedule"
        );
        assert!(
            parse_event(&json!({"images": "nginx"}))
                .unwrap_err()
                .contains("array of strings")
        );
        assert!(
            parse_event(&json!({"images": [1]}))
                .unwrap_err()
                .contains("array of strings")
        );
        assert!(
            parse_event(&json!({"detail-type": "Other", "source": "x", "detail": {}}))
                .unwrap_err()
                .contains("\"Other\" is not one")
        );
        // A schedule needs no `source` and no `detail`: the job reads neither (issue 16).
        assert_eq!(
            parse_event(&json!({"detail-type": "Scheduled Event"})).unwrap(),
            ("schedule".to_owned(), Vec::<String>::new())
        );
        assert!(
            parse_event(&json!({"image": ["nginx"]}))
                .unwrap_err()
                .contains("neither images nor a scheduled event")
        );
        assert!(parse_event(&json!([1])).is_err());
    }
}
