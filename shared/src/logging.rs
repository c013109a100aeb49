//! Log set-up for the Lambda functions: one JSON object per line in Lambda (CloudWatch Logs
//! and Logs Insights read the fields), human text elsewhere. Filter: `PTC_LOG`, else `info`.

use tracing::{Level, Subscriber};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{EnvFilter, FilterExt as _, filter_fn};
use tracing_subscriber::layer::{Filter, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use serde::{Deserialize, Serialize};

/// How log lines are written (`PTC_LOG_FORMAT`): one JSON object per line (the default in
/// Lambda), or human text (elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `json`: one JSON object per line, the event's fields flattened to the top level, for
    /// CloudWatch Logs Insights. The default when `AWS_LAMBDA_FUNCTION_NAME` is set.
    Json,
    /// `text`: human-readable lines without ANSI colours. The default outside Lambda.
    Text,
}

/// Libraries whose trace output carries request and response contents (the AWS SDK logs
/// response bodies, GetAuthorizationToken's and GetSecretValue's included; the HTTP stack
/// logs headers): capped at `debug` whatever `PTC_LOG` asks, so that no log level prints a
/// secret or a registry token. A cap only: they stay as quiet as the filter asks.
const CAPPED_AT_DEBUG: [&str; 10] = [
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

fn capped(target: &str) -> bool {
    CAPPED_AT_DEBUG.iter().any(|lib| {
        target
            .strip_prefix(lib)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Whether `spec` is a filter in `tracing` syntax; the settings check `PTC_LOG` with it, so
/// that a filter that cannot be read stops start-up instead of being ignored.
pub fn check_filter(spec: &str) -> Result<(), String> {
    EnvFilter::try_new(spec)
        .map(drop)
        .map_err(|e| format!("not a log filter: {e}"))
}

/// `spec` (the settings' `PTC_LOG`, `tracing` syntax), else `default`; the libraries above
/// never log at `trace`. A `spec` that cannot be read (the settings refuse it first) is
/// replaced by `default`.
pub fn filter<S>(spec: Option<&str>, default: &str) -> impl Filter<S> + Send + Sync + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let requested = spec
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    requested.and(filter_fn(|meta| {
        *meta.level() != Level::TRACE || !capped(meta.target())
    }))
}

/// The Lambdas' logs: `format` from the settings, `filter` their `PTC_LOG`, else `info`.
pub fn init(format: LogFormat, filter_spec: Option<&str>) {
    let layer = tracing_subscriber::fmt::layer().with_target(false);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => tracing_subscriber::registry()
            .with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_filter(filter(filter_spec, "info")),
            )
            .try_init(),
        LogFormat::Text => tracing_subscriber::registry()
            .with(
                layer
                    .with_ansi(false)
                    .with_filter(filter(filter_spec, "info")),
            )
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::Registry;

    use super::*;

    /// Records the target and level of every event that passes the filter.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<String>>>);

    impl<S: Subscriber> tracing_subscriber::Layer<S> for Seen {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let meta = event.metadata();
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {}", meta.target(), meta.level()));
        }
    }

    fn seen_with(spec: Option<&str>, default: &str) -> Vec<String> {
        let seen = Seen::default();
        let subscriber = Registry::default().with(seen.clone().with_filter(filter(spec, default)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "aws_smithy_runtime::client", "sdk debug");
            tracing::trace!(target: "aws_smithy_runtime::client", "sdk trace");
            tracing::trace!(target: "hyper_util", "http trace");
            tracing::warn!(target: "aws_config", "sdk warn");
            tracing::info!(target: "ptc_core::registry", "ours info");
            tracing::trace!(target: "ptc_core::registry", "ours trace");
            tracing::trace!(target: "hyperlink", "not the http library");
        });
        seen.0.lock().unwrap().clone()
    }

    #[test]
    fn the_default_keeps_the_libraries_quiet() {
        assert_eq!(seen_with(None, "warn"), ["aws_config WARN"]);
        assert_eq!(
            seen_with(None, "info"),
            ["aws_config WARN", "ptc_core::registry INFO"]
        );
    }

    #[test]
    fn trace_is_capped_at_debug_for_the_libraries_only() {
        assert_eq!(
            seen_with(Some("trace"), "warn"),
            [
                "aws_smithy_runtime::client DEBUG",
                "aws_config WARN",
                "ptc_core::registry INFO",
                "ptc_core::registry TRACE",
                "hyperlink TRACE",
            ]
        );
        assert_eq!(
            seen_with(Some("aws_smithy_runtime=trace"), "warn"),
            ["aws_smithy_runtime::client DEBUG"]
        );
    }

    #[test]
    fn a_filter_that_cannot_be_read_falls_back_to_the_default() {
        assert_eq!(seen_with(Some("=[bad"), "warn"), ["aws_config WARN"]);
        assert!(check_filter("=[bad").is_err());
        assert!(check_filter("warn,ptc_core=debug").is_ok());
    }
}
