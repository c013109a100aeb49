//! Repository creation templates: each rule prefix should have a `PULL_THROUGH_CACHE`
//! template with the desired policies, so that new repositories are born right. A missing
//! template is created and the product's missing parts added in every mode; the product's
//! parts that differ are rewritten in `enforce` mode and reported in `fill`.
//!
//! See <https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-creation-templates.html>
//! and, for the repositories the cache creates,
//! <https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache.html>.

use ptc_core::ecr::{CreationTemplate, EcrTemplatesApi};
use ptc_core::rules::RuleSet;
use serde::Serialize;

use crate::desired::DesiredSet;
use crate::ownership::{self, Merge};
use crate::plan::Mode;
use crate::policy::LifecyclePolicy;

/// The `appliedFor` value of a template that applies to the repositories a pull through
/// cache rule creates (the other is `REPLICATION`).
pub const PULL_THROUGH_CACHE: &str = "PULL_THROUGH_CACHE";

/// How a prefix's template compares with the desired one, before this run's action
/// (serialised in kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TemplateStatus {
    /// Its lifecycle and repository policies hold the product's parts as desired (compared
    /// by meaning); for a prefix without a template of its own, the `ROOT` template's do.
    Ok,
    /// Neither the prefix nor `ROOT` has a template with `appliedFor` `PULL_THROUGH_CACHE`:
    /// the cache's new repositories get ECR's defaults.
    Missing,
    /// The product's part of its lifecycle or repository policy differs or is missing (for
    /// a prefix covered by `ROOT` only: `ROOT`'s policies differ from the prefix's).
    Different,
    /// Its policies cannot take the product's parts (see [`ownership`]): reported, never
    /// written.
    Conflict,
}

/// One rule prefix's creation template, as checked (and perhaps written) by [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateResult {
    /// The rule prefix, which is also the template's prefix (`ROOT` for the root rule).
    pub prefix: String,
    /// How the template compared.
    pub status: TemplateStatus,
    /// What is wrong, for a person: missing, which policy differs, and, on an existing
    /// template, resource tags or a KMS key without a `customRoleArn`, or immutable tags
    /// (ECR cannot refresh cached tags). Those are reported, never changed.
    pub findings: Vec<String>,
    /// `created`, `updated`, `would create`, `would update` (dry run), `created by another
    /// run` (the create raced another sweep's: `TemplateAlreadyExistsException`), or none
    /// (nothing to write, or a conflict).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The lifecycle policy text the write sends (or would send): the template's own rules
    /// kept, the product's added or rewritten.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_policy: Option<String>,
    /// The repository policy text the write sends (or would send), likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_policy: Option<String>,
    /// What of the template's own the write keeps: `appliedFor` entries, rules and
    /// statements that are not the product's. Fields the write does not send (description,
    /// encryption, resource tags, mutability, custom role) are kept as they are.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
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

/// The `ROOT` template's prefix: it applies to every repository no other template's prefix
/// matches (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-creation-templates.html>).
pub const ROOT: &str = "ROOT";

fn serves_the_cache(t: &CreationTemplate) -> bool {
    t.applied_for.iter().any(|a| a == PULL_THROUGH_CACHE)
}

/// The settings of an existing template ECR cannot apply as meant, or that stop the cache
/// from refreshing tags: never changed, reported.
fn template_findings(t: &CreationTemplate) -> Vec<String> {
    let mut out = Vec::new();
    let role = t.custom_role_arn.is_some();
    // Resource tags and a KMS key need a role ECR assumes (customRoleArn); with one, they
    // are applied by that role and are fine.
    if !t.resource_tags.is_empty() && !role {
        out.push(format!(
            "the {} template sets resource tags without a customRoleArn: ECR then tags with the puller's permissions, so every puller needs ecr:TagResource or first pulls fail; add a custom role (or tag with lifecycle-fixer)",
            t.prefix
        ));
    }
    if t.encryption_type
        .as_deref()
        .is_some_and(|e| e.starts_with("KMS"))
        && !role
    {
        out.push(format!(
            "the {} template encrypts with KMS ({}) without a customRoleArn: ECR needs a role allowed kms:CreateGrant and kms:DescribeKey to create repositories with it",
            t.prefix,
            t.kms_key.as_deref().unwrap_or("the AWS managed key")
        ));
    }
    if let Some(problem) = t
        .image_tag_mutability
        .as_deref()
        .and_then(|m| crate::mutability::template_problem(m, &t.tag_mutability_exclusions))
    {
        out.push(format!("the {} template {problem}", t.prefix));
    }
    out
}

/// Check every rule's `PULL_THROUGH_CACHE` template against the prefix's desired lifecycle
/// and repository policies, and in [`Mode::Enforce`] create a missing one or update a
/// different one (only planned when `dry_run`).
///
/// A prefix without a template of its own is covered by the `ROOT` template when there is
/// one: `Ok` when `ROOT`'s policies hold the prefix's desired parts, else a template for the
/// prefix is created (enforce). An update sends the template's `appliedFor` with every entry
/// it had (`REPLICATION` stays) and its policies merged with the product's parts
/// ([`ownership`]): the template's own rules and statements are kept, and the fields the
/// product does not manage are not sent. Where no grant is desired, the template's own
/// statements are no difference; the product's statements left on it are removed.
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
    let root = existing
        .iter()
        .find(|t| t.prefix == ROOT && serves_the_cache(t));
    let mut out = Vec::new();
    for rule in rules.rules() {
        let prefix = rule.prefix.to_string();
        let desired = desired.for_rule_prefix(&rule.prefix);
        // A prefix has one template (CreateRepositoryCreationTemplate refuses a second).
        let own = existing.iter().find(|t| t.prefix == prefix);
        let mut result = TemplateResult {
            prefix: prefix.clone(),
            status: TemplateStatus::Ok,
            findings: Vec::new(),
            action: None,
            lifecycle_policy: None,
            repository_policy: None,
            kept: Vec::new(),
            error: None,
        };
        let fresh = CreationTemplate {
            prefix: prefix.clone(),
            applied_for: vec![PULL_THROUGH_CACHE.into()],
            lifecycle_policy: desired.lifecycle_policy.clone(),
            repository_policy: desired.repository_policy.clone(),
            ..CreationTemplate::default()
        };
        let (want, exists) = match (own, root) {
            (Some(t), _) if !serves_the_cache(t) => {
                // Adding PULL_THROUGH_CACHE would give the cache's repositories this
                // template's settings and the replicated ones the product's: not the
                // product's to decide.
                result.status = TemplateStatus::Conflict;
                result.findings.push(format!(
                    "the {prefix} template serves {} only, and a prefix has one template: the cache cannot get one of its own; add PULL_THROUGH_CACHE to it by hand if its settings suit the cache (the product then keeps its parts in it)",
                    t.applied_for.join(", ")
                ));
                (None, true)
            }
            (Some(t), _) => {
                result.findings.extend(template_findings(t));
                let mut notes = Vec::new();
                let outcome = merged(t, desired, mode == Mode::Enforce, &mut notes);
                if !notes.is_empty() {
                    result.status = TemplateStatus::Different;
                    result.findings.extend(notes);
                }
                match outcome {
                    Ok(None) => (None, true),
                    Ok(Some((want, kept, differs))) => {
                        result.status = TemplateStatus::Different;
                        result.findings.push(differs);
                        result.kept = kept;
                        (Some(want), true)
                    }
                    Err(conflicts) => {
                        result.status = TemplateStatus::Conflict;
                        result.findings.extend(conflicts);
                        (None, true)
                    }
                }
            }
            (None, Some(r)) => {
                result.findings.extend(template_findings(r));
                // Judged as enforce would write it: the copy is the prefix's new template.
                match merged(r, desired, true, &mut Vec::new()) {
                    Ok(None) => {
                        result.kept.push(format!("covered by the {ROOT} template"));
                        (None, false)
                    }
                    Ok(Some((mut want, kept, _))) => {
                        // The prefix's own template starts as a copy of ROOT's, which its
                        // repositories get today: encryption, tags, role, its statements
                        // and rules, with the product's parts merged in.
                        want.prefix = prefix.clone();
                        want.applied_for = vec![PULL_THROUGH_CACHE.into()];
                        result.status = TemplateStatus::Different;
                        result.findings.push(format!(
                            "no template for prefix {prefix}, and the {ROOT} template's policies lack the prefix's desired parts: a template for {prefix} is needed, copied from {ROOT}'s"
                        ));
                        result.kept = kept
                            .into_iter()
                            .filter(|k| !k.starts_with("appliedFor"))
                            .collect();
                        result.kept.push(format!(
                            "copied from the {ROOT} template: its description, encryption, resource tags, tag mutability and custom role"
                        ));
                        (Some(want), false)
                    }
                    Err(conflicts) => {
                        result.status = TemplateStatus::Conflict;
                        result.findings.push(format!(
                            "no template for prefix {prefix}, and the {ROOT} template it would be copied from cannot take the prefix's desired parts"
                        ));
                        result.findings.extend(conflicts);
                        (None, false)
                    }
                }
            }
            (None, None) => {
                result.status = TemplateStatus::Missing;
                result.findings.push(format!("no PULL_THROUGH_CACHE creation template for prefix {prefix} (nor {ROOT}): new repositories are born with ECR's defaults"));
                (Some(fresh), false)
            }
        };
        if let Some(want) = want {
            result.lifecycle_policy = want.lifecycle_policy.clone();
            result.repository_policy = want.repository_policy.clone();
            // Fill adds (a missing template, the product's missing parts); enforce also
            // rewrites the product's parts that differ (merged above by mode).
            write(api, &want, exists, dry_run, &mut result).await;
        }
        out.push(result);
    }
    Ok(out)
}

/// The template to write so that `have` holds the product's parts, what of its own it
/// keeps, and what differs (`Ok(None)`: nothing to write); `Err` with the reasons when its
/// policies cannot take the product's parts.
#[allow(clippy::type_complexity)]
fn merged(
    have: &CreationTemplate,
    desired: &crate::desired::Desired,
    rewrite: bool,
    notes: &mut Vec<String>,
) -> Result<Option<(CreationTemplate, Vec<String>, String)>, Vec<String>> {
    let mut want = have.clone();
    let mut kept: Vec<String> = have
        .applied_for
        .iter()
        .filter(|a| *a != PULL_THROUGH_CACHE)
        .map(|a| format!("appliedFor {a}"))
        .collect();
    let mut differs = Vec::new();
    let mut conflicts = Vec::new();
    let mut merge = |what: &str, merged: Merge, slot: &mut Option<String>| match merged {
        Merge::Same => {}
        Merge::Write {
            text,
            kept: k,
            removed,
            ..
        } => {
            differs.push(format!("its {what}"));
            kept.extend(k);
            kept.extend(removed.into_iter().map(|r| format!("removes {r}")));
            *slot = Some(text);
        }
        // Fill mode: the product's part differs and is kept; the rest may still be added.
        Merge::Differs(why) => notes.push(format!("the template's {what}: {why}")),
        Merge::Conflict(why) => conflicts.push(format!("the template's {what}: {why}")),
    };
    if let Some(w) = &desired.lifecycle_policy {
        let m = match (&have.lifecycle_policy, LifecyclePolicy::parse(w)) {
            (_, Err(err)) => Merge::Conflict(err.to_string()),
            (None, Ok(_)) => Merge::Write {
                text: w.clone(),
                replaces: false,
                kept: Vec::new(),
                removed: Vec::new(),
            },
            (Some(h), Ok(w)) => ownership::merge_lifecycle(h, &w, rewrite),
        };
        merge("lifecycle policy", m, &mut want.lifecycle_policy);
    }
    // As on repositories: with no grant desired, the product's statements left on the
    // template are removed (its other statements kept).
    let m = match (&have.repository_policy, &desired.repository_policy) {
        (None, None) => Merge::Same,
        (None, Some(w)) => Merge::Write {
            text: w.clone(),
            replaces: false,
            kept: Vec::new(),
            removed: Vec::new(),
        },
        (Some(h), w) => ownership::merge_repository_policy(
            h,
            w.as_deref().unwrap_or(ownership::NO_STATEMENTS),
            rewrite,
        ),
    };
    merge("repository policy", m, &mut want.repository_policy);
    if !have.applied_for.iter().any(|a| a == PULL_THROUGH_CACHE) {
        want.applied_for.push(PULL_THROUGH_CACHE.into());
        differs.push(format!(
            "{PULL_THROUGH_CACHE} in appliedFor (it serves {} only)",
            have.applied_for.join(", ")
        ));
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    if differs.is_empty() {
        return Ok(None);
    }
    let differs = format!(
        "the template lacks the product's part as desired: {}",
        differs.join("; ")
    );
    Ok(Some((want, kept, differs)))
}

async fn write(
    api: &dyn EcrTemplatesApi,
    want: &CreationTemplate,
    exists: bool,
    dry_run: bool,
    result: &mut TemplateResult,
) {
    if dry_run {
        result.action = Some(
            if exists {
                "would update"
            } else {
                "would create"
            }
            .into(),
        );
        return;
    }
    match api.put_template(want, exists).await {
        Ok(()) => result.action = Some(if exists { "updated" } else { "created" }.into()),
        // A benign race: another sweep created it between our list and our create (two
        // sweeps at once). Not a failure; the next sweep compares it.
        Err(err) if !exists && is_already_exists(&err) => {
            result.action = Some("created by another run".into());
        }
        Err(err) => result.error = Some(err.to_string()),
    }
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

    /// The template the fake holds for `prefix` (panics when there is none).
    fn stored(api: &FakeTemplates, prefix: &str) -> CreationTemplate {
        api.templates
            .lock()
            .unwrap()
            .iter()
            .find(|t| t.prefix == prefix)
            .cloned()
            .unwrap()
    }

    fn rules() -> RuleSet {
        RuleSet::new(vec![
            PtcRule::new("quay", "quay.io").unwrap(),
            PtcRule::new("k8s", "registry.k8s.io").unwrap(),
        ])
    }

    #[tokio::test]
    async fn missing_templates_are_planned_in_a_dry_run_and_created_in_both_modes() {
        // A missing template is something missing: fill adds it, as it adds a missing
        // policy (issue 16: "Fill adds them when missing").
        let api = FakeTemplates::default();
        let dry = check(&api, &rules(), &desired(), Mode::Enforce, true)
            .await
            .unwrap();
        assert!(
            dry.iter().all(|t| t.status == TemplateStatus::Missing
                && t.action.as_deref() == Some("would create"))
        );
        assert_eq!(*api.writes.lock().unwrap(), 0);
        for mode in [Mode::Fill, Mode::Enforce] {
            let api = FakeTemplates::default();
            let made = check(&api, &rules(), &desired(), mode, false)
                .await
                .unwrap();
            assert!(
                made.iter().all(|t| t.action.as_deref() == Some("created")),
                "{made:?}"
            );
            let again = check(&api, &rules(), &desired(), mode, false)
                .await
                .unwrap();
            assert!(
                again
                    .iter()
                    .all(|t| t.status == TemplateStatus::Ok && t.action.is_none())
            );
            assert_eq!(*api.writes.lock().unwrap(), 2);
        }
    }

    #[tokio::test]
    async fn fill_keeps_a_differing_product_part_and_adds_a_missing_one() {
        let api = FakeTemplates::default();
        api.templates.lock().unwrap().push(CreationTemplate {
            prefix: "quay".into(),
            applied_for: vec![PULL_THROUGH_CACHE.into()],
            lifecycle_policy: Some(default_lifecycle(7).canonical()),
            ..CreationTemplate::default()
        });
        let mut set = desired();
        set.default.repository_policy = crate::desired::pull_policy(&["111122223333".into()], None);
        let out = check(&api, &rules(), &set, Mode::Fill, false)
            .await
            .unwrap();
        let quay = out.iter().find(|t| t.prefix == "quay").unwrap();
        assert_eq!(quay.action.as_deref(), Some("updated"), "{quay:?}");
        assert!(quay.findings.iter().any(|f| f.contains("kept (fill mode)")));
        let written = stored(&api, "quay");
        assert!(
            written
                .repository_policy
                .unwrap()
                .contains("PtcPullPrincipals")
        );
        assert!(
            written
                .lifecycle_policy
                .unwrap()
                .contains(r#""countNumber":7"#)
        );
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

    #[tokio::test]
    async fn enforce_keeps_what_a_shared_template_holds_of_its_own() {
        // The observed case: a template shared with replication. Enforce sends appliedFor
        // with both entries, and keeps the team's statement and lifecycle rule.
        let api = FakeTemplates::default();
        let team_rule = r#"{"rulePriority":1,"description":"team: keep ten release images","selection":{"tagStatus":"tagged","tagPrefixList":["release"],"countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}"#;
        let team_statement = r#"{"Sid":"DenyContractor","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::444455556666:role/contractor"},"Action":"ecr:*"}"#;
        api.templates.lock().unwrap().push(CreationTemplate {
            prefix: "quay".into(),
            applied_for: vec![PULL_THROUGH_CACHE.into(), "REPLICATION".into()],
            lifecycle_policy: Some(format!(r#"{{"rules":[{team_rule}]}}"#)),
            repository_policy: Some(format!(
                r#"{{"Version":"2012-10-17","Statement":[{team_statement}]}}"#
            )),
            description: Some("shared with replication".into()),
            encryption_type: Some("KMS".into()),
            kms_key: Some("arn:aws:kms:eu-west-1:111122223333:key/abc".into()),
            custom_role_arn: Some("arn:aws:iam::111122223333:role/ecr-templates".into()),
            resource_tags: BTreeMap::from([("team".into(), "platform".into())]),
            ..CreationTemplate::default()
        });
        let mut set = desired();
        set.default.repository_policy = crate::desired::pull_policy(&["111122223333".into()], None);
        let dry = check(&api, &rules(), &set, Mode::Enforce, true)
            .await
            .unwrap();
        let quay = dry.iter().find(|t| t.prefix == "quay").unwrap();
        assert_eq!(quay.status, TemplateStatus::Different, "{quay:?}");
        assert_eq!(quay.action.as_deref(), Some("would update"));
        // A role is set: resource tags and the KMS key are no finding.
        assert!(
            !quay.findings.iter().any(|f| f.contains("customRoleArn")),
            "{quay:?}"
        );
        assert!(quay.kept.contains(&"appliedFor REPLICATION".to_owned()));
        assert!(quay.kept.contains(&"statement DenyContractor".to_owned()));
        let shown = quay.lifecycle_policy.as_deref().unwrap();
        assert!(shown.contains("team: keep ten release images"), "{shown}");
        check(&api, &rules(), &set, Mode::Enforce, false)
            .await
            .unwrap();
        let written = stored(&api, "quay");
        assert_eq!(
            written.applied_for,
            [PULL_THROUGH_CACHE.to_owned(), "REPLICATION".to_owned()]
        );
        let policy = written.repository_policy.unwrap();
        assert!(policy.contains("DenyContractor") && policy.contains("PtcPullPrincipals"));
        let lifecycle = LifecyclePolicy::parse(&written.lifecycle_policy.unwrap()).unwrap();
        assert_eq!(lifecycle.rules.len(), 2);
        // Checked again: nothing to write.
        let again = check(&api, &rules(), &set, Mode::Enforce, false)
            .await
            .unwrap();
        assert!(
            again
                .iter()
                .filter(|t| t.prefix == "quay")
                .all(|t| t.status == TemplateStatus::Ok && t.action.is_none()),
            "{again:?}"
        );
    }

    #[tokio::test]
    async fn a_root_template_covers_prefixes_without_their_own() {
        let api = FakeTemplates::default();
        api.templates.lock().unwrap().push(CreationTemplate {
            prefix: ROOT.into(),
            applied_for: vec![PULL_THROUGH_CACHE.into()],
            lifecycle_policy: Some(default_lifecycle(30).canonical()),
            ..CreationTemplate::default()
        });
        let mut set = desired();
        set.prefixes.insert(
            Prefix::parse("k8s").unwrap(),
            Desired {
                lifecycle_policy: Some(default_lifecycle(7).canonical()),
                ..set.default.clone()
            },
        );
        let out = check(&api, &rules(), &set, Mode::Enforce, false)
            .await
            .unwrap();
        let quay = out.iter().find(|t| t.prefix == "quay").unwrap();
        assert_eq!(quay.status, TemplateStatus::Ok, "{quay:?}");
        assert_eq!(quay.kept, ["covered by the ROOT template"]);
        assert!(!quay.missing_after_run());
        // k8s wants 7 days: ROOT does not cover it, so k8s gets its own template.
        let k8s = out.iter().find(|t| t.prefix == "k8s").unwrap();
        assert_eq!(k8s.status, TemplateStatus::Different);
        assert_eq!(k8s.action.as_deref(), Some("created"));
        let templates = api.templates.lock().unwrap().clone();
        assert_eq!(templates.len(), 2, "ROOT is left as it was");
        assert!(templates.iter().any(|t| t.prefix == ROOT));
    }

    #[tokio::test]
    async fn tags_and_kms_need_a_custom_role() {
        let api = FakeTemplates::default();
        api.templates.lock().unwrap().push(CreationTemplate {
            prefix: "quay".into(),
            applied_for: vec![PULL_THROUGH_CACHE.into()],
            lifecycle_policy: Some(default_lifecycle(30).canonical()),
            encryption_type: Some("KMS".into()),
            resource_tags: BTreeMap::from([("team".into(), "x".into())]),
            image_tag_mutability: Some("IMMUTABLE_WITH_EXCLUSION".into()),
            tag_mutability_exclusions: vec!["*".into()],
            ..CreationTemplate::default()
        });
        let out = check(&api, &rules(), &desired(), Mode::Fill, false)
            .await
            .unwrap();
        let quay = out.iter().find(|t| t.prefix == "quay").unwrap();
        assert_eq!(quay.findings.len(), 2, "{quay:?}");
        assert!(
            quay.findings
                .iter()
                .any(|f| f.contains("resource tags without a customRoleArn"))
        );
        assert!(quay.findings.iter().any(|f| f.contains("KMS")));
    }

    #[tokio::test]
    async fn a_template_policy_that_cannot_take_the_products_rule_is_left_alone() {
        let api = FakeTemplates::default();
        api.templates.lock().unwrap().push(CreationTemplate {
            prefix: "quay".into(),
            applied_for: vec![PULL_THROUGH_CACHE.into()],
            lifecycle_policy: Some(r#"{"rules":[{"rulePriority":1,"description":"team: expire untagged images after a day","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}"#.into()),
            ..CreationTemplate::default()
        });
        let out = check(&api, &rules(), &desired(), Mode::Enforce, false)
            .await
            .unwrap();
        let quay = out.iter().find(|t| t.prefix == "quay").unwrap();
        assert_eq!(quay.status, TemplateStatus::Conflict, "{quay:?}");
        assert_eq!(quay.action, None);
        assert!(
            quay.findings
                .iter()
                .any(|f| f.contains("platform manifests"))
        );
    }

    #[tokio::test]
    async fn a_replication_only_template_of_the_prefix_is_reported_not_changed() {
        // A prefix has one template (a second CreateRepositoryCreationTemplate fails with
        // TemplateAlreadyExistsException), and turning a replication template into the
        // cache's would give each side the other's settings: reported, nothing written.
        let api = FakeTemplates::default();
        api.templates.lock().unwrap().push(CreationTemplate {
            prefix: "quay".into(),
            applied_for: vec!["REPLICATION".into()],
            ..CreationTemplate::default()
        });
        let out = check(&api, &rules(), &desired(), Mode::Enforce, false)
            .await
            .unwrap();
        let quay = out.iter().find(|t| t.prefix == "quay").unwrap();
        assert_eq!(quay.status, TemplateStatus::Conflict, "{quay:?}");
        assert_eq!(quay.action, None);
        assert!(quay.findings.iter().any(|f| f.contains("REPLICATION only")));
        let quay_now = stored(&api, "quay");
        assert_eq!(quay_now.applied_for, ["REPLICATION".to_owned()]);
    }

    #[tokio::test]
    async fn a_prefix_template_made_because_root_differs_starts_as_roots_copy() {
        let api = FakeTemplates::default();
        let deny = r#"{"Sid":"DenyContractor","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::444455556666:role/contractor"},"Action":"ecr:*"}"#;
        api.templates.lock().unwrap().push(CreationTemplate {
            prefix: ROOT.into(),
            applied_for: vec![PULL_THROUGH_CACHE.into(), "REPLICATION".into()],
            lifecycle_policy: Some(default_lifecycle(30).canonical()),
            repository_policy: Some(format!(
                r#"{{"Version":"2012-10-17","Statement":[{deny}]}}"#
            )),
            description: Some("the account's defaults".into()),
            encryption_type: Some("KMS".into()),
            kms_key: Some("arn:aws:kms:us-east-1:111122223333:key/abc".into()),
            resource_tags: BTreeMap::from([("cost-center".into(), "42".into())]),
            custom_role_arn: Some("arn:aws:iam::111122223333:role/ecr-templates".into()),
            ..CreationTemplate::default()
        });
        let mut set = desired();
        set.default.lifecycle_policy = Some(default_lifecycle(14).canonical());
        let dry = check(&api, &rules(), &set, Mode::Enforce, true)
            .await
            .unwrap();
        let quay = dry.iter().find(|t| t.prefix == "quay").unwrap();
        assert_eq!(quay.action.as_deref(), Some("would create"), "{quay:?}");
        assert!(quay.kept.iter().any(|k| k.contains("copied from the ROOT")));
        check(&api, &rules(), &set, Mode::Enforce, false)
            .await
            .unwrap();
        let made = stored(&api, "quay");
        assert_eq!(made.applied_for, [PULL_THROUGH_CACHE.to_owned()]);
        assert_eq!(made.encryption_type.as_deref(), Some("KMS"));
        assert_eq!(
            made.custom_role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/ecr-templates")
        );
        assert_eq!(
            made.resource_tags.get("cost-center").map(String::as_str),
            Some("42")
        );
        assert!(made.repository_policy.unwrap().contains("DenyContractor"));
        assert!(
            made.lifecycle_policy
                .unwrap()
                .contains(r#""countNumber":14"#)
        );
    }
}
