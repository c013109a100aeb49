//! One `SdkConfig` for every client, and the error every AWS adapter returns.
//!
//! Retries: the SDK's standard retry mode (exponential backoff with full jitter, throttling
//! and transient errors retried, a token bucket against retry storms) with the configured
//! number of attempts. Timeouts: per attempt and per operation, so a hung call fails with
//! a clear error instead of eating the Lambda's time.

use std::fmt;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::config::Settings;

/// How the SDK clients reach AWS (or the local stack).
#[derive(Debug, Clone)]
pub struct AwsOptions {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub max_attempts: u32,
    pub operation_timeout: Duration,
}

impl AwsOptions {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            region: settings.region.clone(),
            endpoint_url: settings
                .aws_endpoint
                .as_ref()
                .map(|e| e.as_str().to_owned()),
            max_attempts: settings.aws_max_attempts,
            operation_timeout: settings.aws_timeout,
        }
    }
}

/// Load the one `SdkConfig` the process uses: credentials and region from the usual chain,
/// then the endpoint override, retries and timeouts of the settings.
pub async fn load_sdk_config(options: &AwsOptions) -> SdkConfig {
    let attempt_timeout =
        (options.operation_timeout / options.max_attempts.max(1)).max(Duration::from_secs(2));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(options.max_attempts)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(10)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(attempt_timeout)
                .operation_timeout(options.operation_timeout)
                .build(),
        );
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &options.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// An SDK timestamp as a `time` value (the domain's type).
pub(crate) fn to_time(dt: Option<&aws_smithy_types::DateTime>) -> Option<time::OffsetDateTime> {
    dt.and_then(|d| time::OffsetDateTime::from_unix_timestamp_nanos(d.as_nanos()).ok())
}

/// What kind of failure an AWS call had; jobs decide on this, not on strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// Still throttled after every retry.
    Throttled,
    /// The named resource does not exist (the service's own error code is kept).
    NotFound(String),
    AccessDenied(String),
    /// Any other error the service returned, with its code.
    Service(String),
    Timeout,
    /// Could not reach the endpoint or read its answer.
    Transport,
}

/// An AWS call that failed: which operation, on what, and why.
#[derive(Debug, Clone, thiserror::Error)]
pub struct AwsError {
    pub operation: &'static str,
    pub kind: AwsErrorKind,
    pub message: String,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            AwsErrorKind::Throttled => "throttled after retries".to_owned(),
            AwsErrorKind::NotFound(code)
            | AwsErrorKind::AccessDenied(code)
            | AwsErrorKind::Service(code) => code.clone(),
            AwsErrorKind::Timeout => "timed out".to_owned(),
            AwsErrorKind::Transport => "could not reach the endpoint".to_owned(),
        };
        write!(f, "{} failed: {kind}", self.operation)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl AwsError {
    pub fn is_not_found(&self) -> bool {
        matches!(self.kind, AwsErrorKind::NotFound(_))
    }

    /// ECR's answer for a repository that does not exist (any repository operation,
    /// `RepositoryNotFoundException` in the ECR API reference): one deleted by someone else
    /// between a listing and a read or write is a benign race, not a failure of the run.
    pub fn is_repository_gone(&self) -> bool {
        self.code()
            .is_some_and(|code| code.contains("RepositoryNotFoundException"))
    }

    pub fn code(&self) -> Option<&str> {
        match &self.kind {
            AwsErrorKind::NotFound(c)
            | AwsErrorKind::AccessDenied(c)
            | AwsErrorKind::Service(c) => Some(c),
            AwsErrorKind::Throttled => Some("ThrottlingException"),
            _ => None,
        }
    }

    /// Classify any SDK error.
    pub fn from_sdk<E, R>(
        operation: &'static str,
        err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        use aws_smithy_runtime_api::client::result::SdkError;
        let (kind, message) = match &err {
            SdkError::TimeoutError(_) => (AwsErrorKind::Timeout, String::new()),
            SdkError::DispatchFailure(failure) => {
                if failure.is_timeout() {
                    (AwsErrorKind::Timeout, String::new())
                } else {
                    (
                        AwsErrorKind::Transport,
                        format!("{:?}", failure.as_connector_error().map(|e| e.to_string())),
                    )
                }
            }
            SdkError::ResponseError(_) => {
                (AwsErrorKind::Transport, "unreadable response".to_owned())
            }
            _ => {
                let code = err.code().unwrap_or("Unknown").to_owned();
                let message = err.message().unwrap_or_default().to_owned();
                (classify(&code), message)
            }
        };
        Self {
            operation,
            kind,
            message,
        }
    }
}

fn classify(code: &str) -> AwsErrorKind {
    match code {
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "ProvisionedThroughputExceededException"
        | "SlowDown" => AwsErrorKind::Throttled,
        c if c.ends_with("NotFoundException") || c == "ResourceNotFoundException" => {
            AwsErrorKind::NotFound(c.to_owned())
        }
        "AccessDeniedException"
        | "AccessDenied"
        | "UnauthorizedOperation"
        | "UnrecognizedClientException" => AwsErrorKind::AccessDenied(code.to_owned()),
        c => AwsErrorKind::Service(c.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(classify("ThrottlingException"), AwsErrorKind::Throttled);
        assert_eq!(classify("Throttling"), AwsErrorKind::Throttled);
        assert_eq!(
            classify("RepositoryNotFoundException"),
            AwsErrorKind::NotFound("RepositoryNotFoundException".into())
        );
        assert_eq!(
            classify("LifecyclePolicyNotFoundException"),
            AwsErrorKind::NotFound("LifecyclePolicyNotFoundException".into())
        );
        assert_eq!(
            classify("AccessDeniedException"),
            AwsErrorKind::AccessDenied("AccessDeniedException".into())
        );
        assert_eq!(
            classify("InvalidParameterException"),
            AwsErrorKind::Service("InvalidParameterException".into())
        );
    }

    #[test]
    fn display_names_operation_and_code() {
        let err = AwsError {
            operation: "DescribeImages",
            kind: AwsErrorKind::NotFound("RepositoryNotFoundException".into()),
            message: "no repo x".into(),
        };
        assert_eq!(
            err.to_string(),
            "DescribeImages failed: RepositoryNotFoundException: no repo x"
        );
    }
}
