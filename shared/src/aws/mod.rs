//! The AWS SDK adapters, and the one `SdkConfig` every client is built from.
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
use crate::error::{AwsError, AwsErrorKind, classify};

pub mod cloudwatch;
pub mod dynamodb;
pub mod ecr;
pub mod ecr_registry;
pub mod s3;
pub mod secrets;
pub mod sqs;

pub use cloudwatch::{EmfMetrics, SdkMetrics, for_sink};
pub use dynamodb::SdkRunStore;
pub use ecr::SdkEcr;
pub use ecr_registry::EcrTokenSource;
pub use s3::SdkObjects;
pub use secrets::SdkSecrets;
pub use sqs::SdkQueue;

/// How the SDK clients reach AWS (or the local stack).
#[derive(Debug, Clone)]
pub struct AwsOptions {
    /// `PTC_REGION`, e.g. `eu-west-1`; `None`: the SDK's usual region chain (`AWS_REGION`, the
    /// profile, ...).
    pub region: Option<String>,
    /// `PTC_AWS_ENDPOINT_URL`: one endpoint for every service (the local stack), already checked
    /// by [`crate::config::Endpoint`] (https, or http on loopback); `None`: AWS's own endpoints.
    pub endpoint_url: Option<String>,
    /// `PTC_AWS_MAX_ATTEMPTS` (1-20, default 5): attempts per call, the first one included.
    pub max_attempts: u32,
    /// `PTC_AWS_TIMEOUT_SECS` (1-900 s, default 30): the whole call, retries included. Each attempt
    /// gets this divided by `max_attempts`, at least 2 s.
    pub operation_timeout: Duration,
}

impl AwsOptions {
    /// The options of the settings' AWS section (region, endpoint override, retries, timeout).
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
/// then the endpoint override, retries and timeouts of the settings
/// ([`sdk_config_loader`], loaded).
pub async fn load_sdk_config(options: &AwsOptions) -> SdkConfig {
    sdk_config_loader(options).load().await
}

/// The loader behind [`load_sdk_config`], for a caller that adds to it before loading (the
/// CLI's `--profile`).
///
/// Retries: standard mode, `max_attempts` attempts, backoff from 200 ms up to 10 s.
/// Timeouts: 5 s to connect, `operation_timeout` per call, `operation_timeout / max_attempts`
/// (at least 2 s) per attempt
/// (<https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html>).
pub fn sdk_config_loader(options: &AwsOptions) -> aws_config::ConfigLoader {
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
    loader
}

/// An SDK timestamp as a `time` value (the domain's type).
pub(crate) fn to_time(dt: Option<&aws_smithy_types::DateTime>) -> Option<time::OffsetDateTime> {
    dt.and_then(|d| time::OffsetDateTime::from_unix_timestamp_nanos(d.as_nanos()).ok())
}

/// The service clients of one `SdkConfig`, each built when asked for: a function builds only
/// the clients it uses, so a client it does not use costs neither start-up time nor binary
/// size (its endpoint rules and configuration code are not linked in).
#[derive(Clone, Debug)]
pub struct AwsClients {
    config: SdkConfig,
}

impl AwsClients {
    /// The clients of `config` (see [`load_sdk_config`]); none is built yet.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            config: config.clone(),
        }
    }

    /// ECR: rules, repositories, images, settings, templates (see [`SdkEcr`]).
    pub fn ecr(&self) -> aws_sdk_ecr::Client {
        aws_sdk_ecr::Client::new(&self.config)
    }

    /// Secrets Manager: the rules' credential secrets (see [`SdkSecrets`]).
    pub fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.config)
    }

    /// CloudWatch: `PutMetricData` (see [`SdkMetrics`], [`for_sink`]).
    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.config)
    }

    /// SQS: the work queue (see [`SdkQueue`]).
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.config)
    }

    /// DynamoDB: the runs' store (see [`SdkRunStore`]).
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.config)
    }

    /// S3: the long watch list (see [`SdkObjects`]). Path-style addressing when an endpoint
    /// is overridden (the local stack has no bucket DNS names), virtual-hosted style
    /// against AWS.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.config)
                .force_path_style(self.config.endpoint_url().is_some())
                .build(),
        )
    }
}

impl AwsError {
    /// Classify any SDK error of `operation` (its API name, e.g. `DescribeImages`).
    ///
    /// A timeout (of the SDK, or of the connection) is [`AwsErrorKind::Timeout`]; a
    /// connection that failed otherwise, or an answer that could not be read, is
    /// [`AwsErrorKind::Transport`]; a service error is classified on its code (`Unknown`
    /// when it has none, see [`AwsErrorKind`]) and keeps its message.
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
                    // The whole cause chain: "other" alone hides what failed (no
                    // credentials in the chain, a refused connection, a bad certificate).
                    // Credential providers' errors name no secret.
                    let mut causes = Vec::new();
                    let mut cause = failure
                        .as_connector_error()
                        .map(|e| e as &dyn std::error::Error);
                    while let Some(e) = cause {
                        causes.push(e.to_string());
                        cause = e.source();
                    }
                    causes.dedup();
                    (AwsErrorKind::Transport, causes.join(": "))
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
