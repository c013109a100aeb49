//! The events the functions are invoked with: EventBridge envelopes, read with
//! `aws_lambda_events`' typed [`EventBridgeEvent`], and the fields each job reads from a
//! `detail`, with errors that name the field that is missing or wrong.
//!
//! Every function also takes plain invocation payloads (`{}`, a list of prefixes, images or
//! repositories); those are read by the function before it asks for an envelope.

pub use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde_json::{Map, Value};

/// The start of every message about a payload a function cannot use.
pub const REJECTED: &str = "unsupported or malformed event";

/// The message for a payload a function cannot use: [`REJECTED`], then what is wrong.
pub fn rejected(what: impl std::fmt::Display) -> String {
    format!("{REJECTED}: {what}")
}

/// The payload as a JSON object: plain invocations and EventBridge envelopes both are.
pub fn object(event: &Value) -> Result<&Map<String, Value>, String> {
    event
        .as_object()
        .ok_or_else(|| rejected(format!("expected a JSON object, got {}", kind_of(event))))
}

/// A plain invocation's list (`{"images": [...]}` and the like), named `key` in errors.
pub fn string_list(list: &Value, key: &str) -> Result<Vec<String>, String> {
    list.as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| rejected(format!("{key} must be an array of strings")))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The EventBridge envelope of `event`, read field by field: only what a job reads can make
/// it refuse an event (`detail-type`, a non-empty string; the error names the field).
/// `detail` is kept as it is (`null` when absent: a job that reads a field of it gets an
/// error naming that field); `source`, `version`, `id`, `account`, `time`, `region` and
/// `resources`, which no job decides on, are kept when well-formed and otherwise left out
/// (`source` empty), never a reason to refuse the event (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html>).
pub fn envelope(event: &Value) -> Result<EventBridgeEvent<Value>, String> {
    let fields = object(event)?;
    let mut envelope = EventBridgeEvent::<Value>::default();
    envelope.detail_type = text(event, &["detail-type"])?.to_owned();
    // No job decides on `source` (the EventBridge rules route by it): kept when a string.
    envelope.source = fields
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    envelope.detail = fields.get("detail").cloned().unwrap_or(Value::Null);
    let string = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_owned);
    envelope.version = string("version");
    envelope.id = string("id");
    envelope.account = string("account");
    envelope.region = string("region");
    envelope.time = fields
        .get("time")
        .and_then(|t| serde_json::from_value(t.clone()).ok());
    envelope.resources = fields
        .get("resources")
        .and_then(|r| serde_json::from_value(r.clone()).ok());
    Ok(envelope)
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
        .ok_or_else(|| rejected(format!("missing field {shown}")))?
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| rejected(format!("field {shown} is not a non-empty string")))
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
    fn plain_invocations_are_objects_with_lists_of_strings() {
        assert_eq!(
            object(&json!([1])).unwrap_err(),
            "unsupported or malformed event: expected a JSON object, got an array"
        );
        assert!(object(&json!({})).unwrap().is_empty());
        assert_eq!(
            string_list(&json!(["a", "b"]), "images").unwrap(),
            ["a", "b"]
        );
        assert!(string_list(&json!([]), "images").unwrap().is_empty());
        for bad in [json!("a"), json!(["a", 1]), json!({"a": 1}), Value::Null] {
            assert_eq!(
                string_list(&bad, "images").unwrap_err(),
                "unsupported or malformed event: images must be an array of strings",
                "{bad}"
            );
        }
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
        ];
        for (event, expected) in cases {
            let err = envelope(&event).unwrap_err();
            assert!(err.starts_with(REJECTED), "{event}: {err}");
            assert!(err.contains(expected), "{event}: {err}");
        }
    }

    #[test]
    fn fields_no_job_reads_never_refuse_an_event() {
        // No job reads `time`, `resources`, `account`, `region`, `id` or `version`: a
        // malformed one is left out, and a schedule without `detail` is still a schedule.
        for event in [
            json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}, "time": "yesterday"}),
            json!({"detail-type": "Scheduled Event", "source": "aws.events"}),
            json!({"detail-type": "Scheduled Event", "detail": {}}),
            json!({"detail-type": "Scheduled Event", "source": 7, "detail": {}, "resources": "arn:x", "account": 123456789012_u64, "region": null, "id": [], "version": 0}),
        ] {
            let envelope = envelope(&event).unwrap_or_else(|e| panic!("{event}: {e}"));
            assert_eq!(envelope.detail_type, "Scheduled Event");
            assert_eq!(envelope.time, None);
            assert_eq!(envelope.resources, None);
        }
        // A detail field a job reads still names itself when missing.
        let envelope = envelope(&json!({"detail-type": "x", "source": "aws.ecr"})).unwrap();
        assert_eq!(
            detail_text(&envelope, &["repository-name"]).unwrap_err(),
            "unsupported or malformed event: missing field detail.repository-name"
        );
    }
}
