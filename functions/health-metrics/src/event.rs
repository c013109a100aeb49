//! "ECR Pull Through Cache Action" events to metrics: `CacheSyncSuccess` and
//! `CacheSyncFailure` counts per prefix (and failure code).
//!
//! The event and its `detail` fields are ECR's:
//! <https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html>.

use ptc_core::events::{self, EventBridgeEvent};
use ptc_core::metrics::{MetricDatum, Unit};
use ptc_core::rules::Prefix;
use serde::Serialize;
use serde_json::Value;

/// The `detail-type` of the pull through cache sync event (source `aws.ecr`).
pub const DETAIL_TYPE: &str = "ECR Pull Through Cache Action";

/// One sync event, read and checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncEvent {
    /// `detail.ecr-repository-prefix`, checked to be a rule prefix, without a trailing `/`:
    /// the `Prefix` dimension.
    pub prefix: String,
    /// `detail.repository-name`: the cached repository the sync was for.
    pub repository: String,
    /// `detail.sync-status` as sent (`SUCCESS`, or a failure status).
    pub status: String,
    /// The status is exactly `SUCCESS`.
    pub success: bool,
    /// The failure code as a bounded dimension value: `detail.failure-code` when it is 1-64
    /// ASCII letters, digits, `_`, `-` or `.`, `Other` for anything else, `Unknown` when
    /// the event has none. Absent for a success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    /// `detail.failure-reason`, cut to 500 characters; absent for a success or when the
    /// event has none. In the report and the log only, never a dimension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// `<repository>:<image-tag>`, or `<repository>:<image-digest>` without a tag; absent
    /// when the event names neither.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// A failure code becomes a dimension value, and each dimension value is a billed custom
/// metric: keep codes that look like codes, fold anything else into `Other`.
fn bounded_code(code: &str) -> String {
    let ok = (1..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok { code.to_owned() } else { "Other".into() }
}

/// Read a sync event. The status `SUCCESS` is a success; anything else is a failure (the
/// failure status value is not documented).
///
/// Errors start with `unsupported or malformed event`: not an EventBridge envelope, another
/// detail-type, `sync-status`, `ecr-repository-prefix` or `repository-name` missing or not
/// a non-empty string, or a prefix that cannot be a rule prefix.
pub fn parse(event: &Value) -> Result<SyncEvent, String> {
    from_envelope(&events::envelope(event)?)
}

/// [`parse`], for an envelope the caller has already read.
pub fn from_envelope(event: &EventBridgeEvent<Value>) -> Result<SyncEvent, String> {
    if event.detail_type != DETAIL_TYPE {
        return Err(events::rejected(format!(
            "detail-type {:?} is not {DETAIL_TYPE:?}",
            event.detail_type
        )));
    }
    let text = |path: &[&str]| events::detail_text(event, path);
    let status = text(&["sync-status"])?.to_owned();
    let prefix = text(&["ecr-repository-prefix"])?;
    Prefix::parse(prefix).map_err(events::rejected)?;
    let repository = text(&["repository-name"])?.to_owned();
    let success = status == "SUCCESS";
    let failure_code = (!success).then(|| {
        text(&["failure-code"])
            .map(bounded_code)
            .unwrap_or_else(|_| "Unknown".into())
    });
    let failure_reason = text(&["failure-reason"])
        .ok()
        .map(|r| r.chars().take(500).collect());
    let image = text(&["image-tag"])
        .or_else(|_| text(&["image-digest"]))
        .ok()
        .map(|r| format!("{repository}:{r}"));
    Ok(SyncEvent {
        prefix: prefix.trim_end_matches('/').to_owned(),
        repository,
        status,
        success,
        failure_code,
        failure_reason: (!success).then_some(failure_reason).flatten(),
        image,
    })
}

/// The event's metrics: one count per prefix (and failure code); a failure is also counted
/// without dimension, the series the alarm watches (an alarm cannot add up the per-prefix
/// series: SEARCH is refused in alarms). That is, a value of 1 (`Count`) of
/// `CacheSyncSuccess` with `Prefix`, or of `CacheSyncFailure` with `Prefix` and
/// `FailureCode` and once more without dimension.
pub fn metrics(event: &SyncEvent) -> Vec<MetricDatum> {
    let total = (!event.success)
        .then(|| MetricDatum::new("CacheSyncFailure", 1.0, Unit::Count).ok())
        .flatten();
    let datum = if event.success {
        MetricDatum::new("CacheSyncSuccess", 1.0, Unit::Count)
            .and_then(|d| d.dimension("Prefix", &event.prefix))
    } else {
        MetricDatum::new("CacheSyncFailure", 1.0, Unit::Count)
            .and_then(|d| d.dimension("Prefix", &event.prefix))
            .and_then(|d| {
                d.dimension(
                    "FailureCode",
                    event.failure_code.as_deref().unwrap_or("Unknown"),
                )
            })
    };
    datum.into_iter().chain(total).collect()
}

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// The inventory: `{}` (`source` "invocation {}") or a scheduled event ("schedule").
    Inventory {
        /// `invocation {}` or `schedule`: the report's `trigger`.
        source: &'static str,
    },
    /// An "ECR Pull Through Cache Action" event: its counts only.
    Sync(SyncEvent),
}

/// The trigger of an invocation payload, or why it is refused (not an object, not an
/// EventBridge envelope, a detail-type this function does not handle, a bad sync event).
pub fn trigger(event: &Value) -> Result<Trigger, String> {
    let object = ptc_core::events::object(event)?;
    if object.is_empty() {
        return Ok(Trigger::Inventory {
            source: "invocation {}",
        });
    }
    let envelope = ptc_core::events::envelope(event)?;
    match envelope.detail_type.as_str() {
        "Scheduled Event" => Ok(Trigger::Inventory { source: "schedule" }),
        DETAIL_TYPE => from_envelope(&envelope).map(Trigger::Sync),
        other => Err(ptc_core::events::rejected(format!(
            "detail-type {other:?} is not one this function handles"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fixture(name: &str) -> Value {
        ptc_tests::fixtures::json(env!("CARGO_MANIFEST_DIR"), name)
    }

    #[test]
    fn success_and_failure_become_counts_per_prefix_and_code() {
        let ok = parse(&fixture("ptc-action-success.json")).unwrap();
        assert!(ok.success);
        let m = metrics(&ok);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].name, "CacheSyncSuccess");
        assert_eq!(m[0].dimensions, [("Prefix".into(), "k8s".into())]);

        let failed = parse(&fixture("ptc-action-failure.json")).unwrap();
        assert!(!failed.success);
        let m = metrics(&failed);
        assert_eq!(m[0].name, "CacheSyncFailure");
        assert_eq!(
            m[0].dimensions,
            [
                ("Prefix".into(), "docker-hub".into()),
                ("FailureCode".into(), "UNAUTHORIZED".into())
            ]
        );
        assert_eq!(m[0].value, 1.0);
    }

    #[test]
    fn odd_codes_are_bounded_and_bad_events_explained() {
        let mut event = fixture("ptc-action-failure.json");
        event["detail"]["failure-code"] = json!("a code with spaces and an id 1234-5678");
        assert_eq!(
            parse(&event).unwrap().failure_code.as_deref(),
            Some("Other")
        );
        event["detail"]
            .as_object_mut()
            .unwrap()
            .remove("failure-code");
        assert_eq!(
            parse(&event).unwrap().failure_code.as_deref(),
            Some("Unknown")
        );
        for (path, value) in [
            ("sync-status", json!(null)),
            ("ecr-repository-prefix", json!(42)),
            ("ecr-repository-prefix", json!("Not A Prefix")),
            ("repository-name", json!("")),
        ] {
            let mut bad = fixture("ptc-action-success.json");
            bad["detail"][path] = value;
            let err = parse(&bad).unwrap_err();
            assert!(err.starts_with(events::REJECTED), "{path}: {err}");
            assert!(
                err.contains(path) || err.contains("Not A Prefix"),
                "{path}: {err}"
            );
        }
        assert!(parse(&json!({"detail": "x"})).is_err());
    }
}
