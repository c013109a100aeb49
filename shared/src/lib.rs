//! ptc-core: the domain and the adapters of the ECR pull-through cache control plane.
//!
//! - [`reference`]: image references as people write them, normalised.
//! - [`rules`]: pull-through cache rules and routing both ways.
//! - [`config`]: typed settings, read once.
//! - [`aws`]: one `SdkConfig`, retries and timeouts, and the error of every AWS call.
//! - [`ecr`], [`secrets`], [`metrics`]: port traits, aws-sdk adapters and in-memory fakes.
//! - [`registry`]: the OCI distribution client.
//! - [`objects`]: objects read from S3 (long watch lists).
//! - [`events`]: EventBridge envelopes and the detail fields the jobs read.
//!
//! Each job's report type lives with the job (its fields are the job's own); they share the
//! shape: entries with an outcome and a reason, a summary, run-level errors.

pub mod aws;
pub mod config;
pub mod deadline;
pub mod ecr;
pub mod events;
pub mod logging;
pub mod metrics;
pub mod objects;
pub mod reference;
pub mod registry;
pub mod rules;
pub mod secret;
pub mod secrets;
pub mod watchlist;

pub use aws::{AwsError, AwsErrorKind};
pub use config::Settings;
pub use reference::{Digest, ImageReference};
pub use rules::{PtcRule, RuleSet};

/// The three service clients every job builds from one `SdkConfig`.
#[derive(Clone)]
pub struct AwsClients {
    pub ecr: aws_sdk_ecr::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub s3: aws_sdk_s3::Client,
}

impl AwsClients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            ecr: aws_sdk_ecr::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            // Path-style addressing when an endpoint is overridden (the local stack has no
            // bucket DNS names); virtual-hosted style against AWS.
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(config)
                    .force_path_style(config.endpoint_url().is_some())
                    .build(),
            ),
        }
    }
}

/// What every Lambda's `main` does first: the settings (a bad one stops start-up with a
/// message naming it, on stderr, which Lambda logs), the log format, one `SdkConfig` and the
/// clients built from it.
pub async fn lambda_start(function: &str) -> Result<(Settings, AwsClients), config::ConfigError> {
    let settings = Settings::load().inspect_err(|e| eprintln!("{function}: {e}"))?;
    logging::init(settings.log_format, settings.log_filter.as_deref());
    let sdk = aws::load_sdk_config(&aws::AwsOptions::from_settings(&settings)).await;
    let clients = AwsClients::new(&sdk);
    Ok((settings, clients))
}

/// A Lambda invocation whose run had run-level errors (it could not do its work: the rules
/// or the templates could not be listed, the watch list could not be read, the event was not
/// one the function handles, an item could not be written, metrics could not be published).
/// The function fails the invocation with it, after logging the report, so that Lambda's
/// `Errors` metric, the asynchronous retry and the failure destination (the stack's failure
/// queue keeps the event for a redrive) see the run; `RunErrors` pages as well. Item
/// failures (one image, one repository, one rule) are findings in the report, not this.
#[derive(Debug, thiserror::Error)]
#[error("{job}: the run had {} error(s): {}", errors.len(), errors.join("; "))]
pub struct RunFailed {
    pub job: String,
    pub errors: Vec<String>,
}

impl RunFailed {
    /// The stable `errorType` of the Lambda error document.
    pub const ERROR_TYPE: &'static str = "RunFailed";
}

/// The end of every Lambda invocation: the report as one JSON line on stdout (the function's
/// log), then the report as the answer, or [`RunFailed`] when the run had run-level errors.
pub fn lambda_answer<R: serde::Serialize>(
    job: &str,
    report: R,
    errors: &[String],
) -> Result<R, RunFailed> {
    match serde_json::to_string(&report) {
        Ok(line) => println!("{line}"),
        Err(e) => tracing::error!(error = %e, "the report could not be written as JSON"),
    }
    if errors.is_empty() {
        Ok(report)
    } else {
        Err(RunFailed {
            job: job.to_owned(),
            errors: errors.to_vec(),
        })
    }
}
