//! The events the functions are invoked with: EventBridge envelopes, read with
//! `aws_lambda_events`' typed [`EventBridgeEvent`], and the fields each job reads from a
//! `detail`, with errors that name the field that is missing or wrong.
//!
//! Every function also takes plain invocation payloads (`{}`, a list of prefixes, images or
//! repositories); those are read by the function before it asks for an envelope.

pub use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::Deserialize as _;
use serde_json::Value;

/// The start of every message about a payload a function cannot use.
pub const REJECTED: &str = "unsupported or malformed event";

/// The EventBridge envelope of a payload (`detail-type`, `source`, `detail`, `time`, ...).
pub fn envelope(event: &Value) -> Result<EventBridgeEvent<Value>, String> {
    if !event.is_object() {
        return Err(format!("{REJECTED}: expected a JSON object"));
    }
    EventBridgeEvent::<Value>::deserialize(event).map_err(|err| {
        // serde's message does not always name the field: name it where we can.
        ["detail-type", "source"]
            .iter()
            .find_map(|field| text(event, &[field]).err())
            .unwrap_or_else(|| format!("{REJECTED}: not an EventBridge event: {err}"))
    })
}

/// A non-empty string at `path` from the event's root.
fn text<'a>(value: &'a Value, path: &[&str]) -> Result<&'a str, String> {
    string_at(value, path, &path.join("."))
}

/// A non-empty string in an envelope's `detail` at `path`; errors name it `detail.<path>`.
pub fn detail_text<'a>(
    event: &'a EventBridgeEvent<Value>,
    path: &[&str],
) -> Result<&'a str, String> {
    string_at(&event.detail, path, &format!("detail.{}", path.join(".")))
}

fn string_at<'a>(value: &'a Value, path: &[&str], shown: &str) -> Result<&'a str, String> {
    path.iter()
        .try_fold(value, |current, key| current.get(key))
        .ok_or_else(|| format!("{REJECTED}: missing field {shown}"))?
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{REJECTED}: field {shown} is not a non-empty string"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_envelope_and_detail_fields() {
        let event = json!({
            "version": "0", "id": "1", "detail-type": "ECR Pull Through Cache Action",
            "source": "aws.ecr", "account": "123456789012", "time": "2026-11-22T08:20:00Z",
            "region": "us-east-1", "resources": [],
            "detail": {"sync-status": "SUCCESS", "nested": {"name": "x"}, "empty": ""}
        });
        let envelope = envelope(&event).unwrap();
        assert_eq!(envelope.detail_type, "ECR Pull Through Cache Action");
        assert_eq!(envelope.source, "aws.ecr");
        assert_eq!(envelope.region.as_deref(), Some("us-east-1"));
        assert_eq!(detail_text(&envelope, &["sync-status"]).unwrap(), "SUCCESS");
        assert_eq!(detail_text(&envelope, &["nested", "name"]).unwrap(), "x");
        assert_eq!(
            detail_text(&envelope, &["nested", "other"]).unwrap_err(),
            "unsupported or malformed event: missing field detail.nested.other"
        );
        assert_eq!(
            detail_text(&envelope, &["empty"]).unwrap_err(),
            "unsupported or malformed event: field detail.empty is not a non-empty string"
        );
    }

    #[test]
    fn what_is_not_an_envelope_is_named() {
        let cases = [
            (json!([1]), "expected a JSON object"),
            (
                json!({"source": "aws.ecr", "detail": {}}),
                "missing field detail-type",
            ),
            (
                json!({"detail-type": 7, "source": "aws.ecr", "detail": {}}),
                "field detail-type is not a non-empty string",
            ),
            (
                json!({"detail-type": "Scheduled Event", "detail": {}}),
                "missing field source",
            ),
            (
                json!({"detail-type": "Scheduled Event", "source": "aws.events"}),
                "not an EventBridge event: missing field `detail`",
            ),
            (
                json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}, "time": "yesterday"}),
                "not an EventBridge event",
            ),
        ];
        for (event, expected) in cases {
            let err = envelope(&event).unwrap_err();
            assert!(err.starts_with(REJECTED), "{event}: {err}");
            assert!(err.contains(expected), "{event}: {err}");
        }
    }
}
