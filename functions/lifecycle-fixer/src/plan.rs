//! What to change on one repository, by mode. Pure: the caller applies (or prints) it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::desired::Desired;
use crate::ownership::{self, Merge};
use crate::policy::LifecyclePolicy;

/// What a repository has now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    /// The lifecycle policy text (`GetLifecyclePolicy`); `None` when the repository has none.
    pub lifecycle_policy: Option<String>,
    /// The repository policy text (`GetRepositoryPolicy`); `None` when it has none.
    pub repository_policy: Option<String>,
    /// The repository's tags (`ListTagsForResource`), key to value.
    pub tags: BTreeMap<String, String>,
    /// `imageScanningConfiguration.scanOnPush` from `DescribeRepositories`.
    pub scan_on_push: bool,
    /// `imageTagMutability` from `DescribeRepositories` (`MUTABLE` when ECR gives none).
    /// Tags it makes immutable cannot be refreshed by the cache: a finding, never changed
    /// ([`mutability`](crate::mutability)).
    pub tag_mutability: String,
    /// `imageTagMutabilityExclusionFilters`' wildcard values.
    pub tag_mutability_exclusions: Vec<String>,
    /// The repository's cached tags, read (`DescribeImages`) only when its mutability may
    /// freeze some of them; `None` when not read.
    pub cached_tags: Option<Vec<String>>,
}

/// How differences are handled ([`FixMode`](ptc_core::config::FixMode) `fill` and `enforce`;
/// `dry-run` plans as `enforce`). Serialised in kebab-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Replace what differs.
    Enforce,
    /// Only add what is missing; never touch a policy someone set (the default).
    Fill,
}

/// One write to a repository, named after the ECR call that makes it. Serialised with a
/// `change` tag in kebab-case (`put-lifecycle-policy`, ...). Nothing here deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// `PutLifecyclePolicy` with the desired policy
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html>).
    PutLifecyclePolicy {
        /// The whole policy text written: the repository's own rules, kept, and the
        /// product's ([`ownership`]).
        text: String,
        /// True when it rewrites product rules of a different meaning (`enforce` only).
        replaces: bool,
        /// The repository's own rules kept in `text`, for a person.
        kept: Vec<String>,
        /// The product's rules `text` replaces.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        removed: Vec<String>,
    },
    /// `SetRepositoryPolicy` with the desired pull grant
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policies.html>).
    SetRepositoryPolicy {
        /// The whole policy document written: the repository's own statements, kept, and
        /// the product's ([`ownership`]).
        text: String,
        /// True when it rewrites or removes product statements (`enforce` only).
        replaces: bool,
        /// The repository's own statements kept in `text`, for a person.
        kept: Vec<String>,
        /// The product's statements `text` no longer holds (no longer desired).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        removed: Vec<String>,
    },
    /// `TagResource` on the repository's ARN: adds or overwrites these tags, removes none.
    TagResource {
        /// The missing tags, and in `enforce` mode the ones with another value.
        tags: BTreeMap<String, String>,
    },
    /// `PutImageScanningConfiguration` with `scanOnPush` true.
    EnableScanOnPush,
}

/// What to do with one repository, from [`plan`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The writes, in order: lifecycle policy, repository policy, tags, scan on push.
    pub changes: Vec<Change>,
    /// What differs and is left alone, and what must never be changed automatically.
    pub findings: Vec<String>,
}

impl Plan {
    /// Nothing to change and nothing to report: the repository has the desired settings.
    pub fn compliant(&self) -> bool {
        self.changes.is_empty() && self.findings.is_empty()
    }
}

/// The plan for one repository. A second plan over the result of the first has no changes
/// (its findings stay), so a sweep over a compliant fleet writes nothing.
///
/// Policies (a `None` desired policy is skipped): the product changes only its own parts
/// and keeps the rest ([`ownership`]): its missing parts are added in either mode, its parts
/// of another meaning (lifecycle rules by [`policy::same_meaning`](crate::policy::same_meaning),
/// statements by [`iam::same_meaning`](crate::iam::same_meaning)) are rewritten in
/// [`Mode::Enforce`] and reported in [`Mode::Fill`]; a policy its parts cannot join is
/// reported and left alone. Tags: missing ones added, different ones replaced in enforce
/// (by value). Scan on push is only ever turned on. Tag immutability is a finding in both
/// modes.
pub fn plan(current: &Current, desired: &Desired, mode: Mode) -> Plan {
    let mut out = Plan::default();
    let rewrite = mode == Mode::Enforce;
    if let Some(want) = &desired.lifecycle_policy {
        let merged = match (&current.lifecycle_policy, LifecyclePolicy::parse(want)) {
            (_, Err(err)) => Merge::Conflict(format!("the desired lifecycle policy: {err}")),
            (None, Ok(_)) => Merge::Write {
                text: want.clone(),
                replaces: false,
                kept: Vec::new(),
                removed: Vec::new(),
            },
            (Some(have), Ok(want)) => ownership::merge_lifecycle(have, &want, rewrite),
        };
        match merged {
            Merge::Same => {}
            Merge::Write {
                text,
                replaces,
                kept,
                removed,
            } => out.changes.push(Change::PutLifecyclePolicy {
                text,
                replaces,
                kept,
                removed,
            }),
            Merge::Differs(why) | Merge::Conflict(why) => out.findings.push(why),
        }
    }
    // With no grant desired, the product's statements still on a policy are no longer
    // desired: enforce removes them (a grant must not outlive its setting), fill reports them.
    let merged = match (&current.repository_policy, &desired.repository_policy) {
        (None, None) => Merge::Same,
        (None, Some(want)) => Merge::Write {
            text: want.clone(),
            replaces: false,
            kept: Vec::new(),
            removed: Vec::new(),
        },
        (Some(have), want) => ownership::merge_repository_policy(
            have,
            want.as_deref().unwrap_or(ownership::NO_STATEMENTS),
            rewrite,
        ),
    };
    {
        match merged {
            Merge::Same => {}
            Merge::Write {
                text,
                replaces,
                kept,
                removed,
            } => out.changes.push(Change::SetRepositoryPolicy {
                text,
                replaces,
                kept,
                removed,
            }),
            Merge::Differs(why) => out.findings.push(format!("repository policy: {why}")),
            Merge::Conflict(why) => out.findings.push(why),
        }
    }
    let mut tags = BTreeMap::new();
    for (key, value) in &desired.tags {
        match current.tags.get(key) {
            None => {
                tags.insert(key.clone(), value.clone());
            }
            Some(have) if have == value => {}
            Some(_) if mode == Mode::Enforce => {
                tags.insert(key.clone(), value.clone());
            }
            Some(have) => out.findings.push(format!(
                "tag {key} is {have:?}, desired {value:?}; kept (fill mode)"
            )),
        }
    }
    if !tags.is_empty() {
        out.changes.push(Change::TagResource { tags });
    }
    if desired.scan_on_push && !current.scan_on_push {
        out.changes.push(Change::EnableScanOnPush);
    }
    let problem = match &current.cached_tags {
        Some(tags) => crate::mutability::repository_problem(
            &current.tag_mutability,
            &current.tag_mutability_exclusions,
            tags,
        ),
        // Tags not read: only a setting that freezes every tag is certain.
        None => (current.tag_mutability == "IMMUTABLE").then(|| {
            "tag mutability is IMMUTABLE: ECR cannot refresh cached tags; set it to MUTABLE (never changed automatically)".to_owned()
        }),
    };
    out.findings.extend(problem);
    out
}

/// What the repository looks like after the plan is applied (for idempotency checks).
pub fn apply(current: &Current, plan: &Plan) -> Current {
    let mut next = current.clone();
    for change in &plan.changes {
        match change {
            Change::PutLifecyclePolicy { text, .. } => next.lifecycle_policy = Some(text.clone()),
            Change::SetRepositoryPolicy { text, .. } => next.repository_policy = Some(text.clone()),
            Change::TagResource { tags } => next.tags.extend(tags.clone()),
            Change::EnableScanOnPush => next.scan_on_push = true,
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{default_lifecycle, pull_policy};

    fn desired() -> Desired {
        Desired {
            lifecycle_policy: Some(default_lifecycle(30).canonical()),
            repository_policy: pull_policy(&["111122223333".into()], None),
            tags: BTreeMap::from([
                ("team".into(), "platform".into()),
                ("managed-by".into(), "ptc".into()),
            ]),
            scan_on_push: true,
        }
    }

    fn bare() -> Current {
        Current {
            tag_mutability: "MUTABLE".into(),
            ..Current::default()
        }
    }

    #[test]
    fn a_new_repository_gets_everything_and_a_second_plan_is_empty() {
        for mode in [Mode::Fill, Mode::Enforce] {
            let first = plan(&bare(), &desired(), mode);
            assert_eq!(first.changes.len(), 4, "{first:?}");
            assert!(
                first
                    .changes
                    .iter()
                    .all(|c| !matches!(c, Change::PutLifecyclePolicy { replaces: true, .. }))
            );
            let second = plan(&apply(&bare(), &first), &desired(), mode);
            assert!(second.compliant(), "{second:?}");
        }
    }

    #[test]
    fn a_teams_rule_is_kept_and_the_products_joins_it_in_both_modes() {
        let mut current = bare();
        current.lifecycle_policy = Some(r#"{"rules":[{"rulePriority":1,"description":"keep ten release images, set by hand by the team","selection":{"tagStatus":"tagged","tagPrefixList":["release"],"countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}]}"#.into());
        for mode in [Mode::Fill, Mode::Enforce] {
            let planned = plan(&current, &desired(), mode);
            let written = planned.changes.iter().find_map(|c| match c {
                Change::PutLifecyclePolicy { text, kept, .. } => Some((text, kept)),
                _ => None,
            });
            let (text, kept) = written.expect("the product's rule is added");
            assert!(text.contains("set by hand by the team"), "{text}");
            assert_eq!(kept.len(), 1);
            let again = plan(&apply(&current, &planned), &desired(), mode);
            assert!(again.compliant(), "{again:?}");
        }
    }

    #[test]
    fn a_teams_rule_on_untagged_images_is_reported_and_nothing_written() {
        // "Keep the last ten images" over every image reaches the platform manifests of
        // cached indexes: the product's rule cannot join it.
        let mut current = bare();
        let hand = r#"{"rules":[{"rulePriority":1,"description":"keep ten images, set by hand by the team","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}]}"#;
        current.lifecycle_policy = Some(hand.into());
        for mode in [Mode::Fill, Mode::Enforce] {
            let planned = plan(&current, &desired(), mode);
            assert!(
                !planned
                    .changes
                    .iter()
                    .any(|c| matches!(c, Change::PutLifecyclePolicy { .. }))
            );
            assert!(
                planned
                    .findings
                    .iter()
                    .any(|f| f.contains("lifecycle rule 1") && f.contains("platform manifests")),
                "{planned:?}"
            );
        }
    }

    #[test]
    fn the_same_policy_formatted_differently_is_not_drift() {
        let mut current = bare();
        let pretty: serde_json::Value =
            serde_json::from_str(&default_lifecycle(30).canonical()).unwrap();
        current.lifecycle_policy = Some(serde_json::to_string_pretty(&pretty).unwrap());
        let plan = plan(&current, &desired(), Mode::Enforce);
        assert!(
            !plan
                .changes
                .iter()
                .any(|c| matches!(c, Change::PutLifecyclePolicy { .. })),
            "{plan:?}"
        );
    }

    #[test]
    fn tags_fill_and_enforce() {
        let mut current = bare();
        current.tags.insert("team".into(), "other".into());
        let fill = plan(&current, &desired(), Mode::Fill);
        assert!(fill.changes.contains(&Change::TagResource {
            tags: BTreeMap::from([("managed-by".into(), "ptc".into())])
        }));
        assert!(fill.findings.iter().any(|f| f.contains("tag team")));
        let enforce = plan(&current, &desired(), Mode::Enforce);
        assert!(enforce.changes.iter().any(|c| matches!(c, Change::TagResource { tags } if tags.get("team").map(String::as_str) == Some("platform"))));
    }

    #[test]
    fn immutable_repositories_are_reported_never_changed() {
        let mut current = apply(&bare(), &plan(&bare(), &desired(), Mode::Enforce));
        current.tag_mutability = "IMMUTABLE".into();
        let plan = plan(&current, &desired(), Mode::Enforce);
        assert!(plan.changes.is_empty());
        assert!(
            plan.findings[0].contains("IMMUTABLE")
                && plan.findings[0].contains("never changed automatically")
        );
    }

    #[test]
    fn exclusions_decide_which_cached_tags_ecr_cannot_refresh() {
        let mut current = apply(&bare(), &plan(&bare(), &desired(), Mode::Enforce));
        current.tag_mutability = "IMMUTABLE_WITH_EXCLUSION".into();
        current.tag_mutability_exclusions = vec!["latest".into(), "*-nightly".into()];
        current.cached_tags = Some(vec!["latest".into(), "3.1-nightly".into()]);
        assert!(plan(&current, &desired(), Mode::Enforce).compliant());
        current.cached_tags = Some(vec!["latest".into(), "v1.2".into()]);
        let planned = plan(&current, &desired(), Mode::Enforce);
        assert!(planned.changes.is_empty());
        assert!(
            planned.findings.len() == 1 && planned.findings[0].contains("cached tags v1.2 when"),
            "{planned:?}"
        );
    }

    #[test]
    fn the_products_grant_goes_when_its_settings_are_unset() {
        let mut want = desired();
        let mut current = apply(&bare(), &plan(&bare(), &want, Mode::Enforce));
        let mut doc: serde_json::Value =
            serde_json::from_str(current.repository_policy.as_ref().unwrap()).unwrap();
        doc["Statement"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "Sid": "CiPush", "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:role/ci"}, "Action": "ecr:PutImage"
            }));
        current.repository_policy = Some(doc.to_string());
        want.repository_policy = None;
        let enforce = plan(&current, &want, Mode::Enforce);
        let Some(Change::SetRepositoryPolicy { text, removed, .. }) = enforce
            .changes
            .iter()
            .find(|c| matches!(c, Change::SetRepositoryPolicy { .. }))
        else {
            panic!("{enforce:?}")
        };
        assert!(removed[0].contains("PtcPullPrincipals"), "{removed:?}");
        assert!(text.contains("CiPush") && !text.contains("PtcPull"));
        let fill = plan(&current, &want, Mode::Fill);
        assert!(
            fill.findings
                .iter()
                .any(|f| f.contains("no longer desired")),
            "{fill:?}"
        );
    }
}
