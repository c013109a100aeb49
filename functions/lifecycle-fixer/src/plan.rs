//! What to change on one repository, by mode. Pure: the caller applies (or prints) it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::desired::Desired;
use crate::{iam, policy};

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
    /// `imageTagMutability` from `DescribeRepositories` (`MUTABLE` when ECR gives none):
    /// a value starting with `IMMUTABLE` (`IMMUTABLE`, `IMMUTABLE_WITH_EXCLUSION`) is a
    /// finding, since ECR cannot refresh cached tags, and is never changed.
    pub tag_mutability: String,
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
        /// The canonical policy text written.
        text: String,
        /// True when it replaces a policy of a different meaning (`enforce` only).
        replaces: bool,
    },
    /// `SetRepositoryPolicy` with the desired pull grant
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policies.html>).
    SetRepositoryPolicy {
        /// The policy document written.
        text: String,
        /// True when it replaces a policy of a different meaning (`enforce` only).
        replaces: bool,
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
/// For each setting `desired` sets (a `None` policy is skipped): missing on the repository,
/// it is added in either mode; of the same meaning (lifecycle policies by
/// [`policy::same_meaning`], repository policies by [`iam::same_meaning`], tags by value),
/// nothing; different, it is replaced in [`Mode::Enforce`] and left alone with a finding in
/// [`Mode::Fill`]. Scan on push is only ever turned on. Tag immutability is a finding in
/// both modes.
pub fn plan(current: &Current, desired: &Desired, mode: Mode) -> Plan {
    let mut out = Plan::default();
    if let Some(want) = &desired.lifecycle_policy {
        match &current.lifecycle_policy {
            None => out.changes.push(Change::PutLifecyclePolicy {
                text: want.clone(),
                replaces: false,
            }),
            Some(have) if policy::same_meaning(have, want) => {}
            Some(_) if mode == Mode::Enforce => out.changes.push(Change::PutLifecyclePolicy {
                text: want.clone(),
                replaces: true,
            }),
            Some(_) => out
                .findings
                .push("lifecycle policy differs from the desired one; kept (fill mode)".into()),
        }
    }
    if let Some(want) = &desired.repository_policy {
        match &current.repository_policy {
            None => out.changes.push(Change::SetRepositoryPolicy {
                text: want.clone(),
                replaces: false,
            }),
            Some(have) if iam::same_meaning(have, want) => {}
            Some(_) if mode == Mode::Enforce => out.changes.push(Change::SetRepositoryPolicy {
                text: want.clone(),
                replaces: true,
            }),
            Some(_) => out
                .findings
                .push("repository policy differs from the desired one; kept (fill mode)".into()),
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
    if current.tag_mutability.starts_with("IMMUTABLE") {
        out.findings.push(format!(
            "tag mutability is {}: ECR cannot refresh cached tags; set it to MUTABLE (never changed automatically)",
            current.tag_mutability
        ));
    }
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
    fn fill_keeps_a_hand_set_policy_and_enforce_replaces_it() {
        let mut current = bare();
        current.lifecycle_policy = Some(r#"{"rules":[{"rulePriority":1,"description":"keep ten images, set by hand by the team","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}]}"#.into());
        let fill = plan(&current, &desired(), Mode::Fill);
        assert!(
            !fill
                .changes
                .iter()
                .any(|c| matches!(c, Change::PutLifecyclePolicy { .. }))
        );
        assert!(fill.findings[0].contains("kept (fill mode)"));
        let enforce = plan(&current, &desired(), Mode::Enforce);
        assert!(
            enforce
                .changes
                .iter()
                .any(|c| matches!(c, Change::PutLifecyclePolicy { replaces: true, .. }))
        );
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
}
