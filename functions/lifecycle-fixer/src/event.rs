//! What an invocation asks for: a sweep of every cached repository (schedule, `{}`), or the
//! repositories events name. Events arrive at least once and in any order: the sweep of a
//! named repository is idempotent, so a second delivery changes nothing.

use ptc_core::events;
use serde_json::Value;

/// What one invocation does, read by [`parse`]. Every variant carries `source`: a short text
/// naming where the run came from, which becomes the report's `trigger`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A full sweep: every repository under a rule prefix, and the creation templates. The
    /// only trigger that publishes the `FullRuns` heartbeat and the totals.
    Sweep {
        /// `invocation {}` or `schedule`.
        source: String,
    },
    /// Named repositories; `cache_made` when the event says the cache created them.
    Repositories {
        /// `invocation`, `CloudTrail service event CreateRepository`, `CloudTrail API call
        /// CreateRepository` or `pull-through cache sync`.
        source: String,
        /// Repository names as given (one for an event; the payload's list for
        /// `{"repositories": [...]}`). Names outside every rule prefix are counted, not read.
        names: Vec<String>,
        /// True only for the CloudTrail service event whose
        /// `serviceEventDetails.upstreamRegistryUrl` is a non-empty string, and for a sync
        /// `SUCCESS`; see [`Options::cache_made`](crate::Options::cache_made).
        cache_made: bool,
    },
    /// Nothing to fix: a refused `CreateRepository` call, or a sync that did not succeed.
    /// The invocation still publishes its `RunErrors` point (0).
    Nothing {
        /// Why, with the error code or sync status.
        source: String,
    },
}

impl Trigger {
    /// The variant's `source` text.
    pub fn source(&self) -> &str {
        match self {
            Self::Sweep { source }
            | Self::Repositories { source, .. }
            | Self::Nothing { source } => source,
        }
    }
}

/// Read the trigger from an invocation payload:
///
/// - `{}` or a "Scheduled Event" (EventBridge rule or Scheduler): [`Trigger::Sweep`];
/// - `{"repositories": ["quay/a", ...]}`: those repositories (not `cache_made`);
/// - "AWS Service Event via CloudTrail" `CreateRepository`: the repository in
///   `serviceEventDetails.repositoryName`, `cache_made` when `upstreamRegistryUrl` is not
///   empty;
/// - "AWS API Call via CloudTrail" `CreateRepository`: the repository in
///   `requestParameters.repositoryName`, or [`Trigger::Nothing`] when the call failed
///   (`errorCode`);
/// - "ECR Pull Through Cache Action" (see
///   <https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html>): the
///   `repository-name` when `sync-status` is `SUCCESS` (`cache_made`), else
///   [`Trigger::Nothing`].
///
/// Errors start with `unsupported or malformed event` and say what is wrong: not a JSON
/// object, `repositories` not an array of strings, another detail-type or `eventName`, or a
/// missing or non-string field (named as `detail.<path>`).
pub fn parse(event: &Value) -> Result<Trigger, String> {
    let object = events::object(event)?;
    if object.is_empty() {
        return Ok(Trigger::Sweep {
            source: "invocation {}".into(),
        });
    }
    if let Some(list) = object.get("repositories") {
        return Ok(Trigger::Repositories {
            source: "invocation".into(),
            names: events::string_list(list, "repositories")?,
            cache_made: false,
        });
    }
    let one = |source: &str, name: &str, cache_made: bool| Trigger::Repositories {
        source: source.to_owned(),
        names: vec![name.to_owned()],
        cache_made,
    };
    let event = events::envelope(event)?;
    let field = |path: &[&str]| events::detail_text(&event, path);
    match event.detail_type.as_str() {
        "Scheduled Event" => Ok(Trigger::Sweep {
            source: "schedule".into(),
        }),
        "AWS Service Event via CloudTrail" => {
            let name = field(&["eventName"])?;
            if name != "CreateRepository" {
                return Err(events::rejected(format!(
                    "service event {name} is not CreateRepository"
                )));
            }
            // ECR also creates repositories for replication and create-on-push; only the
            // cache's own creation names the upstream it pulls from. Under a ROOT rule
            // nothing else tells the cache's repositories from the account's own.
            let from_the_cache = event.detail["serviceEventDetails"]["upstreamRegistryUrl"]
                .as_str()
                .is_some_and(|url| !url.is_empty());
            Ok(one(
                "CloudTrail service event CreateRepository",
                field(&["serviceEventDetails", "repositoryName"])?,
                from_the_cache,
            ))
        }
        "AWS API Call via CloudTrail" => {
            let name = field(&["eventName"])?;
            if name != "CreateRepository" {
                return Err(events::rejected(format!(
                    "API call {name} is not CreateRepository"
                )));
            }
            // A refused call (someone's typo) created nothing: nothing to fix, no error.
            if let Some(code) = event.detail["errorCode"].as_str() {
                return Ok(Trigger::Nothing {
                    source: format!(
                        "CloudTrail API call CreateRepository refused ({code}): nothing to fix"
                    ),
                });
            }
            Ok(one(
                "CloudTrail API call CreateRepository",
                field(&["requestParameters", "repositoryName"])?,
                false,
            ))
        }
        "ECR Pull Through Cache Action" => {
            let status = field(&["sync-status"])?;
            if status == "SUCCESS" {
                Ok(one(
                    "pull-through cache sync",
                    field(&["repository-name"])?,
                    true,
                ))
            } else {
                // Nothing to fix: the repository name, read only for the log, cannot make
                // the event refused.
                let repository = event.detail["repository-name"]
                    .as_str()
                    .unwrap_or("an unnamed repository");
                Ok(Trigger::Nothing {
                    source: format!(
                        "pull-through cache sync {status} for {repository}: nothing to fix"
                    ),
                })
            }
        }
        other => Err(events::rejected(format!(
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
    fn the_three_event_shapes_name_the_repository() {
        for (file, name) in [
            (
                "cloudtrail-service-create-repository.json",
                "docker-hub/library/nginx",
            ),
            (
                "cloudtrail-api-create-repository.json",
                "quay/prometheus/prometheus",
            ),
            ("ptc-action-success.json", "k8s/pause"),
        ] {
            match parse(&fixture(file)).unwrap() {
                Trigger::Repositories { names, .. } => assert_eq!(names, [name], "{file}"),
                other => panic!("{file}: {other:?}"),
            }
        }
    }

    #[test]
    fn only_the_cache_s_own_creation_is_cache_made() {
        let mut event = fixture("cloudtrail-service-create-repository.json");
        assert!(matches!(
            parse(&event).unwrap(),
            Trigger::Repositories {
                cache_made: true,
                ..
            }
        ));
        // A creation without the upstream (replication, create-on-push) is not the cache's.
        event["detail"]["serviceEventDetails"]
            .as_object_mut()
            .unwrap()
            .remove("upstreamRegistryUrl");
        assert!(matches!(
            parse(&event).unwrap(),
            Trigger::Repositories {
                cache_made: false,
                ..
            }
        ));
        assert!(matches!(
            parse(&fixture("cloudtrail-api-create-repository.json")).unwrap(),
            Trigger::Repositories {
                cache_made: false,
                ..
            }
        ));
    }

    #[test]
    fn a_refused_create_repository_call_needs_nothing() {
        let mut event = fixture("cloudtrail-api-create-repository.json");
        event["detail"]["errorCode"] = json!("InvalidParameterException");
        assert!(matches!(parse(&event).unwrap(), Trigger::Nothing { .. }));
    }

    #[test]
    fn schedules_sweep_and_failures_do_nothing() {
        assert!(matches!(parse(&json!({})).unwrap(), Trigger::Sweep { .. }));
        assert!(matches!(
            parse(&json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}))
                .unwrap(),
            Trigger::Sweep { .. }
        ));
        let mut failure = fixture("ptc-action-success.json");
        failure["detail"]["sync-status"] = json!("FAILURE");
        assert!(matches!(parse(&failure).unwrap(), Trigger::Nothing { .. }));
        // A failure without a repository name is still nothing to fix, not a refusal.
        failure["detail"]
            .as_object_mut()
            .unwrap()
            .remove("repository-name");
        assert!(matches!(parse(&failure).unwrap(), Trigger::Nothing { .. }));
    }

    #[test]
    fn malformed_events_say_why() {
        for (event, expected) in [
            (json!(3), "JSON object"),
            (json!({"repositories": [1]}), "array of strings"),
            (
                json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.ecr", "detail": {"eventName": "DeleteRepository"}}),
                "DeleteRepository",
            ),
            (
                json!({"detail-type": "AWS Service Event via CloudTrail", "source": "aws.ecr", "detail": {"eventName": "CreateRepository"}}),
                "missing field detail.serviceEventDetails.repositoryName",
            ),
            (
                json!({"detail-type": "Something Else", "source": "x", "detail": {}}),
                "Something Else",
            ),
        ] {
            let err = parse(&event).unwrap_err();
            assert!(err.contains(expected), "{event}: {err}");
        }
        // Only what the job reads can refuse an event: a schedule needs no `source` and no
        // `detail` (issue 16).
        assert!(matches!(
            parse(&json!({"detail-type": "Scheduled Event"})).unwrap(),
            Trigger::Sweep { .. }
        ));
    }
}
