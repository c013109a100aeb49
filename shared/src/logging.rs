//! Log set-up for the Lambda functions: one JSON object per line in Lambda (CloudWatch Logs
//! and Logs Insights read the fields), human text elsewhere. Filter: `PTC_LOG`, else `info`.

use crate::config::LogFormat;

/// Libraries whose trace output carries request and response contents (the AWS SDK logs
/// response bodies, GetAuthorizationToken's and GetSecretValue's included; the HTTP stack
/// logs headers): held at `debug` whatever `PTC_LOG` asks, so that no log level prints a
/// secret or a registry token.
const HELD_AT_DEBUG: [&str; 10] = [
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_http",
    "aws_sigv4",
    "aws_config",
    "hyper",
    "hyper_util",
    "reqwest",
    "h2",
];

/// `PTC_LOG` (`tracing` syntax), else `default`, with the libraries above held at `debug`.
pub fn filter(default: &str) -> tracing_subscriber::EnvFilter {
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("PTC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    for target in HELD_AT_DEBUG {
        if let Ok(directive) = format!("{target}=debug").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

pub fn init(format: LogFormat) {
    let filter = filter("info");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}
