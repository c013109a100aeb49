//! The sweep: every repository under a rule prefix (or the ones an event names) is read,
//! planned against the desired settings, and fixed (or, in a dry run, only planned).
//! Repositories outside rule prefixes are ignored. Nothing is ever deleted.

use std::collections::BTreeMap;

use futures::StreamExt as _;
use ptc_core::ecr::{EcrApi, EcrSettingsApi, EcrTemplatesApi, Repository};
use ptc_core::metrics::{MetricDatum, MetricsApi, Unit};
use ptc_core::rules::RuleSet;
use serde::Serialize;

use crate::desired::Desired;
use crate::plan::{Change, Current, Mode, plan};
use crate::templates::{self, TemplateResult, TemplateStatus};

pub struct Deps<'a> {
    pub ecr: &'a dyn EcrApi,
    pub settings: &'a dyn EcrSettingsApi,
    pub templates: &'a dyn EcrTemplatesApi,
    pub metrics: &'a dyn MetricsApi,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub desired: Desired,
    pub mode: Mode,
    pub dry_run: bool,
    pub concurrency: usize,
    pub namespace: String,
    pub publish_metrics: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepositoryResult {
    pub repository: String,
    pub prefix: String,
    /// Differences left alone and things never changed automatically.
    pub findings: Vec<String>,
    /// Changes made, or planned in a dry run.
    pub changes: Vec<Change>,
    pub applied: bool,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub scanned: usize,
    pub non_compliant: usize,
    pub fixed: usize,
    pub ignored_outside_prefixes: usize,
    pub errors: usize,
    pub templates_missing: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixReport {
    pub job: &'static str,
    pub trigger: String,
    pub mode: Mode,
    pub dry_run: bool,
    pub repositories: Vec<RepositoryResult>,
    /// Creation templates per rule prefix (full sweeps only).
    pub templates: Vec<TemplateResult>,
    pub summary: Summary,
    pub metrics_published: usize,
    pub errors: Vec<String>,
}

impl FixReport {
    pub fn empty(trigger: &str, options: &Options) -> Self {
        Self {
            job: "lifecycle-fixer",
            trigger: trigger.to_owned(),
            mode: options.mode,
            dry_run: options.dry_run,
            repositories: Vec::new(),
            templates: Vec::new(),
            summary: Summary::default(),
            metrics_published: 0,
            errors: Vec::new(),
        }
    }
}

/// Sweep every repository under a rule prefix, or only `only` (names from events).
pub async fn sweep(
    deps: &Deps<'_>,
    options: &Options,
    only: Option<&[String]>,
    trigger: &str,
) -> FixReport {
    let mut report = FixReport::empty(trigger, options);
    let rules = match deps.ecr.describe_rules().await {
        Ok(rules) => RuleSet::new(rules),
        Err(err) => {
            report.errors.push(format!("cannot list the rules: {err}"));
            return report;
        }
    };
    // A sweep lists every repository (one call per 1,000); an event names its repositories,
    // which are read one by one instead of listing the whole registry.
    let repositories = match only {
        None => deps
            .ecr
            .describe_repositories()
            .await
            .map_err(|e| format!("cannot list repositories: {e}")),
        Some(names) => {
            let mut found = Vec::new();
            for name in names
                .iter()
                .filter(|n| rules.rule_for_repository(n).is_some())
            {
                match deps.ecr.describe_repository(name).await {
                    Ok(Some(repo)) => found.push(repo),
                    Ok(None) => report.errors.push(format!(
                        "repository {name} not found (deleted, or not created yet)"
                    )),
                    Err(err) => report.errors.push(format!("repository {name}: {err}")),
                }
            }
            report.summary.ignored_outside_prefixes = names
                .iter()
                .filter(|n| rules.rule_for_repository(n).is_none())
                .count();
            Ok(found)
        }
    };
    let repositories = match repositories {
        Ok(r) => r,
        Err(err) => {
            report.errors.push(err);
            return report;
        }
    };
    let mut in_scope = Vec::new();
    for repo in repositories {
        match rules.rule_for_repository(&repo.name) {
            Some(rule) => in_scope.push((rule.prefix.to_string(), repo)),
            None => report.summary.ignored_outside_prefixes += 1,
        }
    }
    report.repositories = futures::stream::iter(in_scope)
        .map(|(prefix, repo)| fix_one(deps, options, prefix, repo))
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    if only.is_none() {
        match templates::check(
            deps.templates,
            &rules,
            &options.desired,
            options.mode,
            options.dry_run,
        )
        .await
        {
            Ok(t) => report.templates = t,
            Err(err) => report.errors.push(err),
        }
    }
    report.summary.templates_missing = report
        .templates
        .iter()
        .filter(|t| t.status == TemplateStatus::Missing)
        .count();
    report.summary.scanned = report.repositories.len();
    report.summary.non_compliant = report
        .repositories
        .iter()
        .filter(|r| !r.changes.is_empty() || !r.findings.is_empty())
        .count();
    report.summary.fixed = report
        .repositories
        .iter()
        .filter(|r| r.applied && !r.changes.is_empty() && r.errors.is_empty())
        .count();
    report.summary.errors = report
        .repositories
        .iter()
        .filter(|r| !r.errors.is_empty())
        .count();
    if options.publish_metrics && !options.dry_run {
        publish(deps, options, &mut report).await;
    }
    report
}

async fn fix_one(
    deps: &Deps<'_>,
    options: &Options,
    prefix: String,
    repo: Repository,
) -> RepositoryResult {
    let mut result = RepositoryResult {
        repository: repo.name.clone(),
        prefix,
        findings: Vec::new(),
        changes: Vec::new(),
        applied: false,
        errors: Vec::new(),
    };
    let settings = match deps.settings.repository_settings(&repo).await {
        Ok(s) => s,
        Err(err) => {
            result.errors.push(format!("cannot read settings: {err}"));
            return result;
        }
    };
    let current = Current {
        lifecycle_policy: settings.lifecycle_policy,
        repository_policy: settings.repository_policy,
        tags: settings.tags,
        scan_on_push: repo.scan_on_push,
        tag_mutability: repo.tag_mutability.clone(),
    };
    let planned = plan(&current, &options.desired, options.mode);
    result.findings = planned.findings;
    result.changes = planned.changes;
    if options.dry_run || result.changes.is_empty() {
        return result;
    }
    for change in &result.changes {
        let done = match change {
            Change::PutLifecyclePolicy { text, .. } => {
                deps.settings.put_lifecycle_policy(&repo.name, text).await
            }
            Change::SetRepositoryPolicy { text, .. } => {
                deps.settings.set_repository_policy(&repo.name, text).await
            }
            Change::TagResource { tags } => deps.settings.tag_repository(&repo.arn, tags).await,
            Change::EnableScanOnPush => deps.settings.enable_scan_on_push(&repo.name).await,
        };
        if let Err(err) = done {
            result.errors.push(err.to_string());
        }
    }
    result.applied = true;
    tracing::info!(repository = %repo.name, changes = result.changes.len(), errors = result.errors.len(), "repository fixed");
    result
}

async fn publish(deps: &Deps<'_>, options: &Options, report: &mut FixReport) {
    let mut per_prefix: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for r in &report.repositories {
        let entry = per_prefix.entry(&r.prefix).or_default();
        entry[0] += 1;
        entry[1] += usize::from(!r.changes.is_empty() || !r.findings.is_empty());
        entry[2] += usize::from(r.applied && !r.changes.is_empty() && r.errors.is_empty());
    }
    let mut data = Vec::new();
    for (prefix, [scanned, non_compliant, fixed]) in per_prefix {
        for (name, value) in [
            ("RepositoriesScanned", scanned),
            ("RepositoriesNonCompliant", non_compliant),
            ("RepositoriesFixed", fixed),
        ] {
            if let Ok(d) = MetricDatum::new(name, value as f64, Unit::Count)
                .and_then(|d| d.dimension("Prefix", prefix))
            {
                data.push(d);
            }
        }
    }
    for t in &report.templates {
        let missing = if t.status == TemplateStatus::Missing {
            1.0
        } else {
            0.0
        };
        if let Ok(d) = MetricDatum::new("TemplatesMissing", missing, Unit::Count)
            .and_then(|d| d.dimension("Prefix", &t.prefix))
        {
            data.push(d);
        }
    }
    match ptc_core::metrics::publish_or_report(deps.metrics, &options.namespace, &data).await {
        Ok(published) => report.metrics_published = published,
        Err(error) => report.errors.push(error),
    }
}

#[cfg(test)]
mod tests {
    use ptc_core::ecr::{FakeEcr, FakeEcrSettings, FakeTemplates, RepositorySettings};
    use ptc_core::metrics::FakeMetrics;
    use ptc_core::rules::PtcRule;

    use super::*;
    use crate::desired::{default_lifecycle, pull_policy};

    fn repo(name: &str) -> Repository {
        Repository {
            name: name.into(),
            arn: format!("arn:aws:ecr:us-east-1:123456789012:repository/{name}"),
            uri: String::new(),
            created_at: None,
            tag_mutability: "MUTABLE".into(),
            scan_on_push: false,
        }
    }

    fn world() -> (FakeEcr, FakeEcrSettings, FakeMetrics) {
        let ecr = FakeEcr::with_rules(vec![PtcRule::new("quay", "quay.io").unwrap()]);
        ecr.state.lock().unwrap().repositories =
            vec![repo("quay/a"), repo("quay/b"), repo("team/app")];
        (ecr, FakeEcrSettings::default(), FakeMetrics::default())
    }

    fn options(mode: Mode, dry_run: bool) -> Options {
        Options {
            desired: Desired {
                lifecycle_policy: Some(default_lifecycle(30).canonical()),
                repository_policy: pull_policy(&["111122223333".into()], None),
                tags: BTreeMap::from([("managed-by".into(), "ptc".into())]),
                scan_on_push: false,
            },
            mode,
            dry_run,
            concurrency: 4,
            namespace: "Test".into(),
            publish_metrics: true,
        }
    }

    #[tokio::test]
    async fn fixes_repositories_under_prefixes_then_writes_nothing() {
        let (ecr, settings, metrics) = world();
        let templates = FakeTemplates::default();
        let deps = Deps {
            ecr: &ecr,
            settings: &settings,
            templates: &templates,
            metrics: &metrics,
        };
        let first = sweep(&deps, &options(Mode::Fill, false), None, "test").await;
        assert_eq!(first.summary.scanned, 2);
        assert_eq!(
            first.summary.ignored_outside_prefixes, 1,
            "team/app is outside every prefix"
        );
        assert_eq!(first.summary.fixed, 2);
        assert_eq!(
            settings.writes.lock().unwrap().len(),
            6,
            "lifecycle, policy and tags for two repositories"
        );
        assert!(
            !settings
                .writes
                .lock()
                .unwrap()
                .iter()
                .any(|(_, r)| r == "team/app")
        );
        let second = sweep(&deps, &options(Mode::Fill, false), None, "test").await;
        assert_eq!(
            settings.writes.lock().unwrap().len(),
            6,
            "a compliant fleet gets no write"
        );
        assert_eq!(second.summary.non_compliant, 0);
    }

    #[tokio::test]
    async fn dry_run_plans_and_writes_nothing() {
        let (ecr, settings, metrics) = world();
        let templates = FakeTemplates::default();
        let deps = Deps {
            ecr: &ecr,
            settings: &settings,
            templates: &templates,
            metrics: &metrics,
        };
        let report = sweep(&deps, &options(Mode::Enforce, true), None, "test").await;
        assert_eq!(report.repositories[0].changes.len(), 3);
        assert!(!report.repositories[0].applied);
        assert!(settings.writes.lock().unwrap().is_empty());
        assert!(metrics.published.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn fill_keeps_and_enforce_replaces_a_hand_set_policy() {
        let (ecr, settings, metrics) = world();
        let hand = r#"{"rules":[{"rulePriority":1,"description":"set by the team, keep the last ten images","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}]}"#;
        settings.settings.lock().unwrap().insert(
            "quay/a".into(),
            RepositorySettings {
                lifecycle_policy: Some(hand.into()),
                ..Default::default()
            },
        );
        let templates = FakeTemplates::default();
        let deps = Deps {
            ecr: &ecr,
            settings: &settings,
            templates: &templates,
            metrics: &metrics,
        };
        sweep(
            &deps,
            &options(Mode::Fill, false),
            Some(&["quay/a".into()]),
            "event",
        )
        .await;
        assert_eq!(
            settings.settings.lock().unwrap()["quay/a"]
                .lifecycle_policy
                .as_deref(),
            Some(hand)
        );
        sweep(
            &deps,
            &options(Mode::Enforce, false),
            Some(&["quay/a".into()]),
            "event",
        )
        .await;
        assert_ne!(
            settings.settings.lock().unwrap()["quay/a"]
                .lifecycle_policy
                .as_deref(),
            Some(hand)
        );
    }

    #[tokio::test]
    async fn an_event_for_a_missing_repository_is_reported() {
        let (ecr, settings, metrics) = world();
        let templates = FakeTemplates::default();
        let deps = Deps {
            ecr: &ecr,
            settings: &settings,
            templates: &templates,
            metrics: &metrics,
        };
        let report = sweep(
            &deps,
            &options(Mode::Fill, false),
            Some(&["quay/gone".into(), "other/x".into()]),
            "event",
        )
        .await;
        assert!(report.repositories.is_empty());
        assert_eq!(
            ecr.calls("DescribeRepositories"),
            1,
            "one lookup for the repository under a prefix, no listing"
        );
        assert_eq!(report.summary.ignored_outside_prefixes, 1);
        assert_eq!(
            report.errors,
            ["repository quay/gone not found (deleted, or not created yet)"]
        );
    }
}
