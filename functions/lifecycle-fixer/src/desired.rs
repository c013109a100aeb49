//! The settings a repository of the cache should have: a lifecycle policy
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html>), a
//! repository policy granting pull
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policies.html>), tags
//! and scan on push.

use std::collections::BTreeMap;

use ptc_core::rules::Prefix;
use serde::Serialize;
use serde_json::json;

use crate::policy::{LifecyclePolicy, PolicyError};

/// Actions another account needs to pull from a cached repository: the manifest
/// (`BatchGetImage`), the layers' download URLs (`GetDownloadUrlForLayer`) and the layer
/// check (`BatchCheckLayerAvailability`): enough to pull what the cache holds. ECR's
/// documentation adds that the puller needs `ecr:GetAuthorizationToken` through an IAM
/// policy of its own, and that a pull of an image not yet cached also needs
/// `ecr:BatchImportUpstreamImage` (and `ecr:CreateRepository` for a new repository), which
/// this grant does not include:
/// <https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-iam.html>.
pub const PULL_ACTIONS: [&str; 3] = [
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
];

/// The desired settings of one rule prefix's repositories, compared with each repository's
/// [`Current`](crate::plan::Current) by [`plan`](crate::plan::plan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Desired {
    /// Canonical lifecycle policy text; `None` leaves lifecycle policies alone. From the
    /// settings it is always set: `PTC_LIFECYCLE_POLICY` (validated), else
    /// [`default_lifecycle`] of `PTC_LIFECYCLE_DAYS`.
    pub lifecycle_policy: Option<String>,
    /// Repository policy document; `None` leaves repository policies alone. From the
    /// settings: [`pull_policy`] of `PTC_PULL_PRINCIPALS` and `PTC_PULL_ORG_ID`, `None` when
    /// neither is set.
    pub repository_policy: Option<String>,
    /// Tags every repository must carry (`PTC_REPOSITORY_TAGS`, `KEY=VALUE` items); tags
    /// not listed here are never removed. Empty: no tag is written.
    pub tags: BTreeMap<String, String>,
    /// Turn scan on push on (`PTC_SCAN_ON_PUSH`). Never turned off; ignored unless the
    /// registry's scanning type is `BASIC` (and left alone when it cannot be read).
    pub scan_on_push: bool,
}

/// The desired settings of every rule prefix: a default, and the prefixes that differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredSet {
    /// The settings of every prefix that has no entry in `prefixes`.
    pub default: Desired,
    /// The prefixes of `PTC_PREFIX_SETTINGS` (or the file's `[prefixes.<prefix>]`), each
    /// with its overrides already applied on top of the default.
    pub prefixes: BTreeMap<Prefix, Desired>,
    /// Warnings about the desired settings themselves (e.g. a lifecycle rule that may reach
    /// the platform manifests of a live index), shown in every report.
    pub warnings: Vec<String>,
}

impl From<Desired> for DesiredSet {
    fn from(default: Desired) -> Self {
        Self {
            default,
            prefixes: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }
}

impl DesiredSet {
    /// The settings for a rule prefix (`docker-hub` and `docker-hub/` are the same prefix).
    pub fn for_prefix(&self, prefix: &str) -> &Desired {
        Prefix::parse(prefix).map_or(&self.default, |p| self.for_rule_prefix(&p))
    }

    /// The settings for a rule's prefix, already parsed (no text to read again).
    pub fn for_rule_prefix(&self, prefix: &Prefix) -> &Desired {
        self.prefixes.get(prefix).unwrap_or(&self.default)
    }

    /// Does any prefix grant pull to other principals (`PTC_PULL_PRINCIPALS`,
    /// `PTC_PULL_ORG_ID`, or a prefix's own)? Then the registry policy is managed too
    /// ([`crate::registry`]).
    pub fn grants_pull(&self) -> bool {
        self.default.repository_policy.is_some()
            || self
                .prefixes
                .values()
                .any(|d| d.repository_policy.is_some())
    }

    /// Does any prefix want scan on push?
    pub fn wants_scan_on_push(&self) -> bool {
        self.default.scan_on_push || self.prefixes.values().any(|d| d.scan_on_push)
    }
}

/// The default: expire tagged images (single-platform images and multi-platform indexes)
/// pushed more than `days` ago. Expiry is cheap for a cache: the next pull caches the image
/// again. Untagged images are never selected, so the platform manifests an index points to
/// (untagged in ECR) cannot be expired while the index lives, whatever ECR does with them;
/// the price is that they stay after their index expires (health-metrics reports them).
///
/// The rule carries the product's marker and priority
/// ([`RULE_MARKER`](crate::ownership::RULE_MARKER),
/// [`DEFAULT_RULE_PRIORITY`](crate::ownership::DEFAULT_RULE_PRIORITY)), so that a team's own
/// rules in the same policy are kept and evaluated first.
pub fn default_lifecycle(days: u32) -> LifecyclePolicy {
    let text = json!({"rules": [{
        "rulePriority": crate::ownership::DEFAULT_RULE_PRIORITY,
        "description": format!("{}Expire cached tagged images pushed more than {days} days ago; the next pull caches them again", crate::ownership::RULE_MARKER),
        "selection": {"tagStatus": "tagged", "tagPatternList": ["*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": days},
        "action": {"type": "expire"}
    }]})
    .to_string();
    LifecyclePolicy::parse(&text).expect("the default policy is valid")
}

/// A desired lifecycle policy from the config (`PTC_LIFECYCLE_POLICY`, or a prefix's
/// `lifecycle_policy`): validated now, with a clear error ([`LifecyclePolicy::parse`]), as
/// written and again with the product's marker added to each rule's description
/// ([`mark_rules`](crate::ownership::mark_rules)): its rules are the product's, and keep
/// their priorities.
pub fn lifecycle_from_config(text: &str) -> Result<LifecyclePolicy, PolicyError> {
    crate::ownership::mark_rules(&LifecyclePolicy::parse(text)?)
}

/// A repository policy granting pull to accounts or roles, and/or to an AWS Organization.
///
/// `principals` are 12-digit account IDs (granted as `arn:aws:iam::<account>:root`) or IAM
/// ARNs, in statement `PtcPullPrincipals`; `org_id` (`o-...`) is granted to every principal
/// of the organization through `aws:PrincipalOrgID`, in statement `PtcPullOrganization`.
/// Both allow [`PULL_ACTIONS`]. `None` when neither is given: repository policies are then
/// left alone. See
/// <https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policies.html>.
pub fn pull_policy(principals: &[String], org_id: Option<&str>) -> Option<String> {
    let mut statements = Vec::new();
    if !principals.is_empty() {
        let arns: Vec<String> = principals
            .iter()
            .map(|p| {
                if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
                    format!("arn:aws:iam::{p}:root")
                } else {
                    p.clone()
                }
            })
            .collect();
        statements.push(json!({"Sid": "PtcPullPrincipals", "Effect": "Allow", "Principal": {"AWS": arns}, "Action": PULL_ACTIONS}));
    }
    if let Some(org) = org_id {
        statements.push(json!({
            "Sid": "PtcPullOrganization",
            "Effect": "Allow",
            "Principal": "*",
            "Action": PULL_ACTIONS,
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": org}}
        }));
    }
    (!statements.is_empty())
        .then(|| json!({"Version": "2012-10-17", "Statement": statements}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_expires_after_the_given_days() {
        let p = default_lifecycle(30);
        assert_eq!(p.rules[0].selection.count_number, 30);
        assert!(p.canonical().contains(r#""tagStatus":"tagged""#));
        // No rule of the default can reach an untagged platform manifest of a live index.
        assert!(p.child_risks().is_empty());
    }

    #[test]
    fn prefixes_have_their_own_settings() {
        let base = Desired {
            lifecycle_policy: Some(default_lifecycle(30).canonical()),
            repository_policy: None,
            tags: BTreeMap::new(),
            scan_on_push: false,
        };
        let mut set = DesiredSet::from(base.clone());
        let quay = Desired {
            lifecycle_policy: Some(default_lifecycle(7).canonical()),
            scan_on_push: true,
            ..base.clone()
        };
        set.prefixes
            .insert(Prefix::parse("quay/").unwrap(), quay.clone());
        assert_eq!(set.for_prefix("quay"), &quay);
        assert_eq!(set.for_prefix("quay/"), &quay);
        assert_eq!(set.for_prefix("docker-hub"), &base);
        assert!(set.wants_scan_on_push());
    }

    #[test]
    fn config_policies_are_validated_up_front() {
        let bad = r#"{"rules":[{"rulePriority":1,"description":"archive after 90 days without a pull, expire","selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":90},"action":{"type":"expire"}}]}"#;
        assert!(
            lifecycle_from_config(bad)
                .unwrap_err()
                .to_string()
                .contains("sinceImagePulled")
        );
    }

    #[test]
    fn pull_policies_for_accounts_and_organizations() {
        assert_eq!(pull_policy(&[], None), None);
        let p = pull_policy(
            &[
                "111122223333".into(),
                "arn:aws:iam::444455556666:role/nodes".into(),
            ],
            Some("o-abc123"),
        )
        .unwrap();
        assert!(p.contains("arn:aws:iam::111122223333:root") && p.contains("role/nodes"));
        assert!(p.contains("aws:PrincipalOrgID") && p.contains("o-abc123"));
        assert!(crate::iam::canonical(&p).is_some());
    }
}
