//! What every Lambda function's `main` shares: start-up ([`lambda_start`]) and the end of an
//! invocation ([`lambda_answer`], [`RunFailed`]).

use crate::aws::{self, AwsClients, AwsOptions};
use crate::config::{ConfigError, Settings};
use crate::logging;

/// What every Lambda's `main` does first: the settings (a bad one stops start-up with a
/// message naming it, on stderr, which Lambda logs), the log format, one `SdkConfig` and the
/// clients built from it.
pub async fn lambda_start(function: &str) -> Result<(Settings, AwsClients), ConfigError> {
    let settings = Settings::load().inspect_err(|e| eprintln!("{function}: {e}"))?;
    logging::init(settings.log_format, settings.log_filter.as_deref());
    let sdk = aws::load_sdk_config(&AwsOptions::from_settings(&settings)).await;
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
    /// The job's name, e.g. `prewarm` or `lifecycle-fixer`; the message starts with it.
    pub job: String,
    /// The run-level errors, in the order they happened; the message joins them with `; `
    /// (`<job>: the run had <n> error(s): <e1>; <e2>`).
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
