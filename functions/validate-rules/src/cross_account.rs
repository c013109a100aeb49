//! Cross-account readiness: may the consumers of each rule prefix (the pull grants of the
//! settings: `PTC_PULL_PRINCIPALS`, `PTC_PULL_ORG_ID`, or the prefix's own in
//! `PTC_PREFIX_SETTINGS`) make a first pull, a new-tag pull and a cached pull through the
//! cache, as far as the cache account decides?
//!
//! **Why here, in validate-rules, and not in health-metrics.** The question is whether a
//! rule is usable by the accounts it is meant for, which is this job's question for the
//! cache account itself (ECR's validation, the credential): a rule that works for the cache
//! account and refuses every cluster account is as broken for them as one with an expired
//! token. It is answered from the registry's settings (the registry policy and the creation
//! templates: three reads per run, whatever the cache holds), not from its contents, which
//! health-metrics inventories; and validate-rules runs when those settings change (a rule
//! created or updated) and on every failed sync, besides its hourly schedule. `ptc health
//! --outage` asks the other half of the question, for the images that are cached: whether
//! the consumers may read them, from each cached repository's own policy (see the `ptc`
//! command).
//!
//! **What is read** (only when some prefix has a consumer, so a deployment that grants no
//! other account makes none of these calls and needs none of their permissions):
//! `DescribeRegistry` (the account and region, for the repositories' ARNs),
//! `GetRegistryPolicy`, and `DescribeRepositoryCreationTemplates`. The cached-pull verdict is
//! the one for the repositories the cache **will create**: the `repositoryPolicy` of the
//! `PULL_THROUGH_CACHE` creation template they get (the prefix's own, else `ROOT`'s). The
//! policies of repositories that already exist are not read (a sweep's worth of
//! `GetRepositoryPolicy` calls every hour); lifecycle-fixer compares and fixes those
//! (`RepositoriesLeftNonCompliant`), and `ptc health --outage` reads those of the watched
//! images.
//!
//! Each verdict names the statement that decided it ([`ptc_core::access`]); one the
//! evaluator cannot decide is `unknown`, never `allowed`, and makes the prefix not ready.

use std::collections::BTreeMap;

use ptc_core::access::{CacheSide, Consumer, Outcome, Policy, PullKind, PullVerdict, Resource};
use ptc_core::config::FixSettings;
use ptc_core::ecr::{CreationTemplate, EcrTemplatesApi, Registry};
use ptc_core::rules::{Prefix, PtcRule};
use serde::Serialize;

/// The `appliedFor` value of a creation template that shapes the repositories the cache
/// creates.
const PULL_THROUGH_CACHE: &str = "PULL_THROUGH_CACHE";

/// The consumers of every rule prefix, from the settings' pull grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consumers {
    /// Of every prefix without grants of its own: `PTC_PULL_PRINCIPALS`, then
    /// `PTC_PULL_ORG_ID`.
    pub default: Vec<Consumer>,
    /// Of the prefixes `PTC_PREFIX_SETTINGS` lists (their `pull_principals` replace the
    /// default ones, their `pull_org_id` overrides it), as lifecycle-fixer grants them.
    pub prefixes: BTreeMap<Prefix, Vec<Consumer>>,
}

impl Consumers {
    /// The consumers the settings grant pull (the same grants lifecycle-fixer writes).
    pub fn from_settings(fix: &FixSettings) -> Self {
        let of =
            |f: &FixSettings| Consumer::from_grants(&f.pull_principals, f.pull_org_id.as_deref());
        Self {
            default: of(fix),
            prefixes: fix
                .prefixes
                .keys()
                .map(|p| (p.clone(), of(&fix.for_prefix(p))))
                .collect(),
        }
    }

    /// The consumers of one rule prefix.
    pub fn for_prefix(&self, prefix: &Prefix) -> &[Consumer] {
        self.prefixes.get(prefix).unwrap_or(&self.default)
    }

    /// No prefix has a consumer: nothing to check, and nothing is read.
    pub fn is_empty(&self) -> bool {
        self.default.is_empty() && self.prefixes.values().all(Vec::is_empty)
    }
}

/// One consumer's three verdicts on one prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerReadiness {
    /// The consumer, as configured (an account ID, an ARN, or `any account of o-...`).
    pub consumer: String,
    /// A first pull of an image, into a repository the cache creates: `ecr:CreateRepository`
    /// and `ecr:BatchImportUpstreamImage` in the registry policy.
    pub first_pull: PullVerdict,
    /// A new tag in an existing repository: `ecr:BatchImportUpstreamImage` in the registry
    /// policy or the repository's (the template's).
    pub new_tag: PullVerdict,
    /// What the cache holds: `ecr:BatchGetImage` and `ecr:GetDownloadUrlForLayer` in the
    /// repository policy new repositories get from their creation template.
    pub cached_pull: PullVerdict,
}

impl ConsumerReadiness {
    /// The three verdicts, with their kind.
    pub fn verdicts(&self) -> [(PullKind, &PullVerdict); 3] {
        [
            (PullKind::FirstPull, &self.first_pull),
            (PullKind::NewTag, &self.new_tag),
            (PullKind::CachedPull, &self.cached_pull),
        ]
    }

    /// May the consumer make all three?
    pub fn ready(&self) -> bool {
        self.verdicts()
            .iter()
            .all(|(_, v)| v.outcome == Outcome::Allowed)
    }
}

/// One rule prefix's readiness for its consumers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrefixReadiness {
    /// The rule prefix; the `Prefix` dimension of its `CrossAccountReady`.
    pub prefix: String,
    /// The repositories judged, `arn:<partition>:ecr:<region>:<account>:repository/<prefix>/*`
    /// (`repository/*` for `ROOT`).
    pub repositories: String,
    /// The creation template whose `repositoryPolicy` new repositories of the prefix get
    /// (the prefix's own `PULL_THROUGH_CACHE` template, else `ROOT`'s); absent when none
    /// applies (they are then created with no repository policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Each consumer's verdicts, in the settings' order (principals, then the organization).
    pub consumers: Vec<ConsumerReadiness>,
    /// Every consumer may make all three kinds of pull (published as `CrossAccountReady` 1,
    /// else 0): a denied or unknown verdict makes the prefix not ready.
    pub ready: bool,
    /// What was not judged: templates of longer prefixes that shape part of the prefix's
    /// repositories.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The template new repositories under `prefix` get: the `PULL_THROUGH_CACHE` template with
/// the longest prefix that the prefix's repository names start with (`k8s` for `k8s/...`,
/// `team` for `team/quay/...`), else `ROOT`'s.
fn template_for<'a>(
    templates: &'a [CreationTemplate],
    prefix: &Prefix,
) -> Option<&'a CreationTemplate> {
    let serves = |t: &&CreationTemplate| t.applied_for.iter().any(|a| a == PULL_THROUGH_CACHE);
    let own = templates
        .iter()
        .filter(serves)
        .filter(|t| {
            !prefix.is_root()
                && t.prefix != "ROOT"
                && (t.prefix == prefix.as_str()
                    || prefix
                        .as_str()
                        .strip_prefix(t.prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/')))
        })
        .max_by_key(|t| t.prefix.len());
    own.or_else(|| templates.iter().filter(serves).find(|t| t.prefix == "ROOT"))
}

/// Templates below the prefix (`k8s/special` under `k8s`): they shape part of its
/// repositories, which the prefix's verdict does not speak for.
fn deeper_templates(templates: &[CreationTemplate], prefix: &Prefix) -> Vec<String> {
    templates
        .iter()
        .filter(|t| t.applied_for.iter().any(|a| a == PULL_THROUGH_CACHE))
        .filter(|t| {
            t.prefix != "ROOT"
                && (prefix.is_root()
                    || t.prefix
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/')))
        })
        .map(|t| {
            format!(
                "the {} creation template shapes the repositories under {}/: their cached pulls are not judged here",
                t.prefix, t.prefix
            )
        })
        .collect()
}

/// The readiness of each rule (that has a consumer), from the registry's settings. Reads
/// nothing when no rule has a consumer. Errors: the reads that failed, each named; then no
/// prefix is judged (a partial answer would be a verdict on what was not read).
pub async fn assess(
    api: &dyn EcrTemplatesApi,
    rules: &[&PtcRule],
    consumers: &Consumers,
) -> Result<Vec<PrefixReadiness>, Vec<String>> {
    let wanted: Vec<&PtcRule> = rules
        .iter()
        .copied()
        .filter(|r| !consumers.for_prefix(&r.prefix).is_empty())
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let (registry, policy, templates) = tokio::join!(
        api.registry(),
        api.registry_policy(),
        api.describe_templates()
    );
    let mut errors = Vec::new();
    let registry = registry
        .map_err(|e| {
            errors.push(format!(
                "cross-account readiness: cannot describe the registry: {e}"
            ))
        })
        .ok();
    let policy = policy
        .map_err(|e| {
            errors.push(format!(
                "cross-account readiness: cannot read the registry policy: {e}"
            ))
        })
        .ok();
    let templates = templates
        .map_err(|e| {
            errors.push(format!(
                "cross-account readiness: cannot list the creation templates: {e}"
            ))
        })
        .ok();
    let (Some(registry), Some(policy), Some(templates)) = (registry, policy, templates) else {
        return Err(errors);
    };
    let registry_policy = Policy::parse("registry policy", policy.as_deref());
    Ok(wanted
        .into_iter()
        .map(|rule| {
            judge_prefix(
                &registry,
                &registry_policy,
                &templates,
                &rule.prefix,
                consumers.for_prefix(&rule.prefix),
            )
        })
        .collect())
}

/// One prefix, every consumer, three kinds of pull.
fn judge_prefix(
    registry: &Registry,
    registry_policy: &Policy,
    templates: &[CreationTemplate],
    prefix: &Prefix,
    consumers: &[Consumer],
) -> PrefixReadiness {
    let arn = registry.repositories_arn(prefix);
    let resource = Resource::Under(arn.trim_end_matches('*').to_owned());
    let template = template_for(templates, prefix);
    let repository_policy = match template {
        Some(t) => Policy::parse(
            format!("the {} creation template's repository policy", t.prefix),
            t.repository_policy.as_deref(),
        ),
        None => Policy::parse(
            format!(
                "a repository policy for new {prefix} repositories (no PULL_THROUGH_CACHE creation template applies)"
            ),
            None,
        ),
    };
    let side = CacheSide {
        account: &registry.id,
        registry_policy,
        repository_policy: &repository_policy,
        resource: &resource,
    };
    let consumers: Vec<ConsumerReadiness> = consumers
        .iter()
        .map(|c| ConsumerReadiness {
            consumer: c.name.clone(),
            first_pull: ptc_core::access::pull(PullKind::FirstPull, c, &side),
            new_tag: ptc_core::access::pull(PullKind::NewTag, c, &side),
            cached_pull: ptc_core::access::pull(PullKind::CachedPull, c, &side),
        })
        .collect();
    let ready = consumers.iter().all(ConsumerReadiness::ready);
    for c in &consumers {
        for (kind, v) in c.verdicts() {
            tracing::info!(
                prefix = %prefix,
                consumer = %c.consumer,
                pull = kind.label(),
                outcome = ?v.outcome,
                statement = v.statement.as_deref().unwrap_or(""),
                "cross-account verdict"
            );
        }
    }
    PrefixReadiness {
        prefix: prefix.to_string(),
        repositories: arn,
        template: template.map(|t| t.prefix.clone()),
        consumers,
        ready,
        notes: deeper_templates(templates, prefix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(prefix: &str, applied_for: &[&str]) -> CreationTemplate {
        CreationTemplate {
            prefix: prefix.into(),
            applied_for: applied_for.iter().map(|a| (*a).to_owned()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_template_new_repositories_get() {
        let templates = [
            template("ROOT", &["PULL_THROUGH_CACHE"]),
            template("team", &["PULL_THROUGH_CACHE"]),
            template("k8s", &["REPLICATION"]),
            template("quay", &["PULL_THROUGH_CACHE", "REPLICATION"]),
            template("team/quay/special", &["PULL_THROUGH_CACHE"]),
        ];
        let of = |p: &str| {
            template_for(&templates, &Prefix::parse(p).unwrap()).map(|t| t.prefix.as_str())
        };
        assert_eq!(of("quay"), Some("quay"));
        assert_eq!(of("team/quay"), Some("team"), "the longest prefix above it");
        assert_eq!(
            of("k8s"),
            Some("ROOT"),
            "a REPLICATION template does not serve the cache"
        );
        assert_eq!(of("teams"), Some("ROOT"), "team is not a prefix of teams/");
        assert_eq!(of("ROOT"), Some("ROOT"));
        assert_eq!(
            deeper_templates(&templates, &Prefix::parse("team/quay").unwrap()).len(),
            1
        );
        assert!(template_for(&templates[2..3], &Prefix::parse("k8s").unwrap()).is_none());
    }

    #[test]
    fn consumers_per_prefix_follow_the_settings_overrides() {
        let fix = FixSettings {
            mode: ptc_core::config::FixMode::Fill,
            lifecycle_days: 30,
            lifecycle_policy: None,
            pull_principals: vec!["222233334444".into()],
            pull_org_id: None,
            repository_tags: BTreeMap::new(),
            scan_on_push: false,
            prefixes: BTreeMap::from([
                (
                    Prefix::parse("quay").unwrap(),
                    ptc_core::config::PrefixFix {
                        pull_principals: Some(vec![]),
                        pull_org_id: Some("o-a1b2c3d4e5".into()),
                        ..Default::default()
                    },
                ),
                (
                    Prefix::parse("ghcr").unwrap(),
                    ptc_core::config::PrefixFix {
                        lifecycle_days: Some(7),
                        ..Default::default()
                    },
                ),
            ]),
        };
        let consumers = Consumers::from_settings(&fix);
        let names = |p: &str| -> Vec<String> {
            consumers
                .for_prefix(&Prefix::parse(p).unwrap())
                .iter()
                .map(|c| c.name.clone())
                .collect()
        };
        assert_eq!(names("k8s"), ["222233334444"]);
        assert_eq!(names("quay"), ["any account of o-a1b2c3d4e5"]);
        assert_eq!(names("ghcr"), ["222233334444"], "inherits the grants");
        assert!(!consumers.is_empty());
        assert!(Consumers::default().is_empty());
    }
}
