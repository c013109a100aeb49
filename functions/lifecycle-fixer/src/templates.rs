//! Repository creation templates: each rule prefix should have a `PULL_THROUGH_CACHE`
//! template with the desired policies, so that new repositories are born right. Missing or
//! different templates are reported; they are created or updated in `enforce` mode only.
//!
//! See <https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-creation-templates.html>
//! and, for the repositories the cache creates,
//! <https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache.html>.

use ptc_core::ecr::{CreationTemplate, EcrTemplatesApi};
use ptc_core::rules::RuleSet;
use serde::Serialize;

use crate::desired::DesiredSet;
use crate::plan::Mode;
use crate::{iam, policy};

/// The `appliedFor` value of a template that applies to the repositories a pull through
/// cache rule creates (the other is `REPLICATION`).
pub const PULL_THROUGH_CACHE: &str = "PULL_THROUGH_CACHE";

/// How a prefix's template compares with the desired one, before this run's action
/// (serialised in kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TemplateStatus {
    /// It has the desired lifecycle and repository policies (compared by meaning).
    Ok,
    /// The prefix has no template with `appliedFor` `PULL_THROUGH_CACHE`: the cache's new
    /// repositories get ECR's defaults.
    Missing,
    /// Its lifecycle or repository policy differs from the desired one.
    Different,
}

/// One rule prefix's creation template, as checked (and perhaps written) by [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateResult {
    /// The rule prefix, which is also the template's prefix (`ROOT` for the root rule).
    pub prefix: String,
    /// How the template compared.
    pub status: TemplateStatus,
    /// What is wrong, for a person: missing, which policy differs, and, on an existing
    /// template, resource tags (every puller would need `ecr:TagResource`) or immutable
    /// tags (ECR cannot refresh cached tags). Those two are reported, never changed.
    pub findings: Vec<String>,
    /// `created`, `updated`, `would create`, `would update` (dry run), `created by another
    /// run` (the create raced another sweep's: `TemplateAlreadyExistsException`), or none
    /// (fill mode, or nothing to do).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The `CreateRepositoryCreationTemplate` or `UpdateRepositoryCreationTemplate` error;
    /// counts as a failed item (`RunErrors`, the invocation fails).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `CreateRepositoryCreationTemplate`'s answer when the prefix already has a template
/// (API reference: TemplateAlreadyExistsException).
fn is_already_exists(err: &ptc_core::AwsError) -> bool {
    matches!(&err.kind, ptc_core::AwsErrorKind::Service(code) if code.contains("TemplateAlreadyExists"))
}

impl TemplateResult {
    /// The prefix still has no template after the run (one created by this run, or by
    /// another run at the same time, is not missing any more).
    pub fn missing_after_run(&self) -> bool {
        self.status == TemplateStatus::Missing
            && !matches!(
                self.action.as_deref(),
                Some("created") | Some("created by another run")
            )
    }
}

/// Check every rule's `PULL_THROUGH_CACHE` template against the prefix's desired lifecycle
/// and repository policies, and in [`Mode::Enforce`] create a missing one or update a
/// different one (only planned when `dry_run`). The template written carries the prefix,
/// `appliedFor` `[PULL_THROUGH_CACHE]` (an update replaces a list that also named
/// `REPLICATION`), the desired lifecycle policy and the desired repository policy if any;
/// nothing else. A repository policy the template has where none is desired is not a
/// difference. The `ROOT` rule's template is checked like any other.
///
/// Errors: `cannot list creation templates: <AWS error>` when
/// `DescribeRepositoryCreationTemplates` fails; a failed write is the template's `error`.
pub async fn check(
    api: &dyn EcrTemplatesApi,
    rules: &RuleSet,
    desired: &DesiredSet,
    mode: Mode,
    dry_run: bool,
) -> Result<Vec<TemplateResult>, String> {
    let existing = api
        .describe_templates()
        .await
        .map_err(|e| format!("cannot list creation templates: {e}"))?;
    let mut out = Vec::new();
    for rule in rules.rules() {
        let prefix = rule.prefix.to_string();
        let desired = desired.for_rule_prefix(&rule.prefix);
        let want = CreationTemplate {
            prefix: prefix.clone(),
            applied_for: vec![PULL_THROUGH_CACHE.into()],
            lifecycle_policy: desired.lifecycle_policy.clone(),
            repository_policy: desired.repository_policy.clone(),
            ..CreationTemplate::default()
        };
        let have = existing
            .iter()
            .find(|t| t.prefix == prefix && t.applied_for.iter().any(|a| a == PULL_THROUGH_CACHE));
        let mut result = TemplateResult {
            prefix: prefix.clone(),
            status: TemplateStatus::Ok,
            findings: Vec::new(),
            action: None,
            error: None,
        };
        match have {
            None => {
                result.status = TemplateStatus::Missing;
                result.findings.push(format!("no PULL_THROUGH_CACHE creation template for prefix {prefix}: new repositories are born with ECR's defaults"));
            }
            Some(t) => {
                if !t.resource_tags.is_empty() {
                    result.findings.push(
                        "the template sets resource tags: every puller then needs ecr:TagResource, or first pulls fail; tag with lifecycle-fixer instead".into(),
                    );
                }
                if t.image_tag_mutability
                    .as_deref()
                    .is_some_and(|m| m.starts_with("IMMUTABLE"))
                {
                    result.findings.push(
                        "the template makes tags immutable: ECR cannot refresh cached tags".into(),
                    );
                }
                let same_lifecycle = match (&t.lifecycle_policy, &want.lifecycle_policy) {
                    (Some(a), Some(b)) => policy::same_meaning(a, b),
                    (None, None) => true,
                    _ => false,
                };
                let same_policy = match (&t.repository_policy, &want.repository_policy) {
                    (Some(a), Some(b)) => iam::same_meaning(a, b),
                    (_, None) => true,
                    _ => false,
                };
                if !same_lifecycle || !same_policy {
                    result.status = TemplateStatus::Different;
                    result.findings.push(format!(
                        "the template's {} differs from the desired one",
                        match (same_lifecycle, same_policy) {
                            (false, false) => "lifecycle and repository policies",
                            (false, true) => "lifecycle policy",
                            _ => "repository policy",
                        }
                    ));
                }
            }
        }
        if result.status != TemplateStatus::Ok && mode == Mode::Enforce {
            let exists = result.status == TemplateStatus::Different;
            if dry_run {
                result.action = Some(
                    if exists {
                        "would update"
                    } else {
                        "would create"
                    }
                    .into(),
                );
            } else {
                match api.put_template(&want, exists).await {
                    Ok(()) => {
                        result.action = Some(if exists { "updated" } else { "created" }.into())
                    }
                    // A benign race: another sweep created it between our list and our
                    // create (two sweeps at once). Not a failure; the next sweep compares it.
                    Err(err) if !exists && is_already_exists(&err) => {
                        result.action = Some("created by another run".into());
                    }
                    Err(err) => result.error = Some(err.to_string()),
                }
            }
        }
        out.push(result);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ptc_core::fakes::FakeTemplates;
    use ptc_core::rules::{Prefix, PtcRule};

    use super::*;
    use crate::desired::{Desired, default_lifecycle};

    fn desired() -> DesiredSet {
        Desired {
            lifecycle_policy: Some(default_lifecycle(30).canonical()),
            repository_policy: None,
            tags: BTreeMap::new(),
            scan_on_push: false,
        }
        .into()
    }

    fn rules() -> RuleSet {
        RuleSet::new(vec![
            PtcRule::new("quay", "quay.io").unwrap(),
            PtcRule::new("k8s", "registry.k8s.io").unwrap(),
        ])
    }

    #[tokio::test]
    async fn missing_templates_are_reported_in_fill_and_created_in_enforce() {
        let api = FakeTemplates::default();
        let fill = check(&api, &rules(), &desired(), Mode::Fill, false)
            .await
            .unwrap();
        assert!(
            fill.iter()
                .all(|t| t.status == TemplateStatus::Missing && t.action.is_none())
        );
        assert_eq!(*api.writes.lock().unwrap(), 0);
        let dry = check(&api, &rules(), &desired(), Mode::Enforce, true)
            .await
            .unwrap();
        assert!(
            dry.iter()
                .all(|t| t.action.as_deref() == Some("would create"))
        );
        assert_eq!(*api.writes.lock().unwrap(), 0);
        let enforce = check(&api, &rules(), &desired(), Mode::Enforce, false)
            .await
            .unwrap();
        assert!(
            enforce
                .iter()
                .all(|t| t.action.as_deref() == Some("created"))
        );
        let again = check(&api, &rules(), &desired(), Mode::Enforce, false)
            .await
            .unwrap();
        assert!(
            again
                .iter()
                .all(|t| t.status == TemplateStatus::Ok && t.action.is_none())
        );
        assert_eq!(*api.writes.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn tags_and_immutability_in_a_template_are_reported() {
        let api = FakeTemplates::default();
        api.templates.lock().unwrap().push(CreationTemplate {
            prefix: "quay".into(),
            applied_for: vec![PULL_THROUGH_CACHE.into()],
            lifecycle_policy: Some(default_lifecycle(30).canonical()),
            resource_tags: BTreeMap::from([("team".into(), "x".into())]),
            image_tag_mutability: Some("IMMUTABLE".into()),
            ..CreationTemplate::default()
        });
        let out = check(&api, &rules(), &desired(), Mode::Fill, false)
            .await
            .unwrap();
        let quay = out.iter().find(|t| t.prefix == "quay").unwrap();
        assert_eq!(quay.status, TemplateStatus::Ok);
        assert!(quay.findings.iter().any(|f| f.contains("ecr:TagResource")));
        assert!(quay.findings.iter().any(|f| f.contains("immutable")));
    }

    #[tokio::test]
    async fn each_prefix_gets_a_template_with_its_own_settings() {
        let api = FakeTemplates::default();
        let mut set = desired();
        let short = default_lifecycle(7).canonical();
        set.prefixes.insert(
            Prefix::parse("k8s").unwrap(),
            Desired {
                lifecycle_policy: Some(short.clone()),
                ..set.default.clone()
            },
        );
        check(&api, &rules(), &set, Mode::Enforce, false)
            .await
            .unwrap();
        let templates = api.templates.lock().unwrap().clone();
        let policy_of = |p: &str| {
            templates
                .iter()
                .find(|t| t.prefix == p)
                .and_then(|t| t.lifecycle_policy.clone())
        };
        assert_eq!(policy_of("k8s"), Some(short));
        assert_eq!(policy_of("quay"), Some(default_lifecycle(30).canonical()));
        // Checked again with the same settings: both match, nothing written.
        let again = check(&api, &rules(), &set, Mode::Enforce, false)
            .await
            .unwrap();
        assert!(
            again.iter().all(|t| t.status == TemplateStatus::Ok),
            "{again:?}"
        );
    }
}
