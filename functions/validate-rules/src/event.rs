//! What an invocation asks for, read from the event payload.
//!
//! - `{}` or a scheduled event (EventBridge rule or Scheduler): every rule.
//! - `{"prefixes": ["quay", ...]}`: those rules (manual runs).
//! - CloudTrail "AWS API Call via CloudTrail" for Create/Update/DeletePullThroughCacheRule:
//!   the prefix in `requestParameters.ecrRepositoryPrefix`.
//! - "ECR Pull Through Cache Action" with a `sync-status` other than `SUCCESS`: the prefix
//!   in `ecr-repository-prefix`. A `SUCCESS` needs nothing.
//!
//! Anything else is an error value naming what is wrong; the handler reports it.

use ptc_core::events;
use serde::Serialize;
use serde_json::Value;

const RULE_EVENTS: [&str; 3] = [
    "CreatePullThroughCacheRule",
    "UpdatePullThroughCacheRule",
    "DeletePullThroughCacheRule",
];

/// What one invocation validates, read by [`parse`]. Serialised with a `kind` tag
/// (`all`, `prefixes`, `nothing`). Every variant carries `source`: a short text naming
/// where the run came from, which becomes the report's `trigger`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Trigger {
    /// Every rule of the registry: `{}`, `{"prefixes": []}` or a "Scheduled Event". The
    /// only trigger whose run publishes the registry totals and the `FullRuns` heartbeat.
    All {
        /// `invocation {}`, `invocation with an empty prefix list` or `schedule`.
        source: String,
    },
    /// Only these prefixes.
    Prefixes {
        /// `invocation`, `CloudTrail <eventName>` (with `(the call failed: <errorCode>)`
        /// when the call failed), or `pull-through cache sync <status> for <prefix>`.
        source: String,
        /// The prefixes as the payload wrote them, unchecked here: the run reads `quay/` as
        /// `quay`, reports one that cannot be a rule prefix as a run-level error, and one
        /// the registry lacks in
        /// [`ValidationReport::not_found`](crate::ValidationReport::not_found).
        prefixes: Vec<String>,
    },
    /// Nothing to validate (e.g. a successful cache sync).
    Nothing {
        /// Why: a sync `SUCCESS`, or a refused CloudTrail call for a prefix that cannot
        /// exist.
        source: String,
    },
}

impl Trigger {
    /// The variant's `source` text.
    pub fn source(&self) -> &str {
        match self {
            Self::All { source } | Self::Prefixes { source, .. } | Self::Nothing { source } => {
                source
            }
        }
    }
}

/// What is wrong with a payload; the message starts with [`events::REJECTED`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EventError(pub String);

fn rejected(what: impl std::fmt::Display) -> EventError {
    EventError(events::rejected(what))
}

/// Read the trigger from an invocation payload (the shapes are listed in the module doc).
/// Errors: an [`EventError`] naming what is wrong: not a JSON object, a `prefixes` that is
/// not an array of strings, a detail-type or CloudTrail `eventName` this function does not
/// handle, or a missing or non-string field (named as `detail.<path>`).
pub fn parse(event: &Value) -> Result<Trigger, EventError> {
    let object = events::object(event).map_err(EventError)?;
    if object.is_empty() {
        return Ok(Trigger::All {
            source: "invocation {}".into(),
        });
    }
    if let Some(prefixes) = object.get("prefixes") {
        let prefixes = events::string_list(prefixes, "prefixes").map_err(EventError)?;
        return Ok(if prefixes.is_empty() {
            Trigger::All {
                source: "invocation with an empty prefix list".into(),
            }
        } else {
            Trigger::Prefixes {
                source: "invocation".into(),
                prefixes,
            }
        });
    }
    let event = events::envelope(event).map_err(EventError)?;
    let field = |path: &[&str]| events::detail_text(&event, path).map_err(EventError);
    match event.detail_type.as_str() {
        "Scheduled Event" => Ok(Trigger::All {
            source: "schedule".into(),
        }),
        "AWS API Call via CloudTrail" => {
            let name = field(&["eventName"])?;
            if !RULE_EVENTS.contains(&name) {
                return Err(rejected(format!(
                    "CloudTrail event {name} is not a pull-through cache rule change"
                )));
            }
            let prefix = field(&["requestParameters", "ecrRepositoryPrefix"])?;
            // A call that failed (`errorCode`) changed nothing, but the rule is checked all
            // the same: the report then says which call it was.
            let source = match event.detail["errorCode"].as_str() {
                Some(code) => format!("CloudTrail {name} (the call failed: {code})"),
                None => format!("CloudTrail {name}"),
            };
            // A refused call for a prefix that cannot exist (someone's typo, refused by ECR's
            // own validation) created nothing: nothing to check, and no error of this run.
            if event.detail.get("errorCode").is_some()
                && ptc_core::rules::Prefix::parse(prefix).is_err()
            {
                return Ok(Trigger::Nothing {
                    source: format!("{source}, for prefix {prefix:?}, which cannot exist"),
                });
            }
            Ok(Trigger::Prefixes {
                source,
                prefixes: vec![prefix.to_owned()],
            })
        }
        "ECR Pull Through Cache Action" => {
            let status = field(&["sync-status"])?;
            let prefix = field(&["ecr-repository-prefix"])?;
            if status == "SUCCESS" {
                Ok(Trigger::Nothing {
                    source: format!("pull-through cache sync SUCCESS for {prefix}"),
                })
            } else {
                Ok(Trigger::Prefixes {
                    source: format!("pull-through cache sync {status} for {prefix}"),
                    prefixes: vec![prefix.to_owned()],
                })
            }
        }
        other => Err(rejected(format!(
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
    fn schedules_validate_everything() {
        assert!(matches!(parse(&json!({})).unwrap(), Trigger::All { .. }));
        assert!(matches!(
            parse(&fixture("scheduled-event.json")).unwrap(),
            Trigger::All { .. }
        ));
    }

    #[test]
    fn rule_changes_validate_their_prefix() {
        for (file, event) in [
            ("cloudtrail-create-rule.json", "CreatePullThroughCacheRule"),
            ("cloudtrail-update-rule.json", "UpdatePullThroughCacheRule"),
            ("cloudtrail-delete-rule.json", "DeletePullThroughCacheRule"),
        ] {
            match parse(&fixture(file)).unwrap() {
                Trigger::Prefixes { source, prefixes } => {
                    assert_eq!(prefixes, ["docker-hub"], "{file}");
                    assert!(source.contains(event));
                }
                other => panic!("{file}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_failed_rule_change_is_named_in_the_source() {
        let mut event = fixture("cloudtrail-create-rule.json");
        event["detail"]["errorCode"] = json!("SecretNotFoundException");
        event["detail"]["responseElements"] = Value::Null;
        match parse(&event).unwrap() {
            Trigger::Prefixes { source, prefixes } => {
                assert_eq!(prefixes, ["docker-hub"]);
                assert_eq!(
                    source,
                    "CloudTrail CreatePullThroughCacheRule (the call failed: SecretNotFoundException)"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refused_call_for_a_prefix_that_cannot_exist_needs_nothing() {
        let mut event = fixture("cloudtrail-create-rule.json");
        event["detail"]["errorCode"] = json!("InvalidParameterException");
        event["detail"]["requestParameters"]["ecrRepositoryPrefix"] = json!("Quay_Mirror");
        event["detail"]["responseElements"] = Value::Null;
        assert!(
            matches!(parse(&event).unwrap(), Trigger::Nothing { source } if source.contains("Quay_Mirror")),
        );
        // The same prefix in a call that succeeded cannot be: an error, as before.
        event["detail"].as_object_mut().unwrap().remove("errorCode");
        assert!(matches!(parse(&event).unwrap(), Trigger::Prefixes { .. }));
    }

    #[test]
    fn sync_failures_validate_their_prefix_and_successes_nothing() {
        assert_eq!(
            parse(&fixture("ptc-action-failure.json")).unwrap(),
            Trigger::Prefixes {
                source: "pull-through cache sync FAILURE for docker-hub".into(),
                prefixes: vec!["docker-hub".into()]
            }
        );
        let mut success = fixture("ptc-action-failure.json");
        success["detail"]["sync-status"] = json!("SUCCESS");
        assert!(matches!(parse(&success).unwrap(), Trigger::Nothing { .. }));
    }

    #[test]
    fn manual_prefix_lists() {
        assert_eq!(
            parse(&json!({"prefixes": ["quay", "k8s"]})).unwrap(),
            Trigger::Prefixes {
                source: "invocation".into(),
                prefixes: vec!["quay".into(), "k8s".into()]
            }
        );
        assert!(parse(&json!({"prefixes": [1]})).is_err());
        assert!(parse(&json!({"prefixes": "quay"})).is_err());
    }

    #[test]
    fn other_and_malformed_events_are_errors_that_say_why() {
        let cases = [
            (json!([1, 2]), "an array"),
            (json!("x"), "a string"),
            (
                json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}}),
                "EC2 Instance",
            ),
            (json!({"source": "aws.ecr"}), "missing field detail-type"),
            (json!({"detail-type": 7}), "detail-type is not"),
            (
                json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.ecr", "detail": {"eventName": "PutImage"}}),
                "PutImage",
            ),
            (
                json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.ecr", "detail": {"eventName": "CreatePullThroughCacheRule"}}),
                "missing field detail.requestParameters.ecrRepositoryPrefix",
            ),
            (
                json!({"detail-type": "ECR Pull Through Cache Action", "source": "aws.ecr", "detail": {"sync-status": "FAILURE"}}),
                "missing field detail.ecr-repository-prefix",
            ),
            (
                json!({"detail-type": "ECR Pull Through Cache Action", "source": "aws.ecr", "detail": {"sync-status": 3, "ecr-repository-prefix": "q"}}),
                "field detail.sync-status is not a non-empty string",
            ),
        ];
        for (event, expected) in cases {
            let err = parse(&event).unwrap_err().to_string();
            assert!(err.contains(expected), "{event}: {err}");
            assert!(err.starts_with("unsupported or malformed event: "), "{err}");
        }
        // A schedule's `detail` is not read: without one (or with a malformed `time`) it is
        // still a schedule (issue 16: only what a job reads can make it refuse an event).
        for event in [
            json!({"detail-type": "Scheduled Event", "source": "aws.events"}),
            json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}, "time": "soon"}),
        ] {
            assert_eq!(
                parse(&event).unwrap(),
                Trigger::All {
                    source: "schedule".into()
                },
                "{event}"
            );
        }
    }
}
