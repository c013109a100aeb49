//! The sweep: every repository under a rule prefix (or the ones an event names) is read,
//! planned against the desired settings, and fixed (or, in a dry run, only planned).
//! Repositories outside rule prefixes are ignored. Nothing is ever deleted.

use futures::StreamExt as _;
use ptc_core::ecr::{EcrApi, EcrSettingsApi, EcrTemplatesApi, Repository};
use ptc_core::metrics::MetricsApi;
use ptc_core::rules::{Prefix, RuleSet};

use crate::desired::Desired;
use crate::options::Options;
use crate::plan::{Change, Current, plan};
use crate::report::{FixReport, RepositoryResult, metric_data};
use crate::templates;

/// The ports a run uses; the Lambda and `ptc fix` pass one SDK ECR client for the three
/// ECR ports. Nothing here deletes a repository, an image, a policy or a template.
pub struct Deps<'a> {
    /// ECR reads: `DescribePullThroughCacheRules`, `DescribeRepositories` (a sweep, every
    /// page), `DescribeRepositories` by name (one call per repository an event names).
    pub ecr: &'a dyn EcrApi,
    /// Repository settings: `GetLifecyclePolicy`, `GetRepositoryPolicy` and
    /// `ListTagsForResource` per repository; the writes `PutLifecyclePolicy`,
    /// `SetRepositoryPolicy`, `TagResource` and `PutImageScanningConfiguration`; and
    /// `GetRegistryScanningConfiguration` when a prefix wants scan on push.
    pub settings: &'a dyn EcrSettingsApi,
    /// Creation templates (full sweeps only): `DescribeRepositoryCreationTemplates`, and in
    /// `enforce` mode `CreateRepositoryCreationTemplate` or
    /// `UpdateRepositoryCreationTemplate`.
    pub templates: &'a dyn EcrTemplatesApi,
    /// Where the run's data points go: `PutMetricData`, or Embedded Metric Format log
    /// lines (`PTC_METRICS_SINK`).
    pub metrics: &'a dyn MetricsApi,
}

/// Sweep every repository under a rule prefix, or only `only` (names from events).
pub async fn sweep(
    deps: &Deps<'_>,
    options: &Options,
    only: Option<&[String]>,
    trigger: &str,
) -> FixReport {
    let (mut report, listed) = fix_all(deps, options, only, trigger).await;
    // Every path publishes, early returns included: RunErrors pages for a run that could
    // not do its work, and counts every item that failed or was deferred.
    if options.publish_metrics {
        let full = only.is_none();
        let totals_known = full && listed && report.summary.deferred == 0;
        publish(deps, options, &mut report, full, totals_known).await;
    }
    report
}

/// An invocation that had nothing to sweep (an event it does not act on, or one it could
/// not read): its `RunErrors` point only.
pub async fn without_work(deps: &Deps<'_>, options: &Options, mut report: FixReport) -> FixReport {
    if options.publish_metrics {
        publish(deps, options, &mut report, false, false).await;
    }
    report
}

/// The sweep without publishing; and whether its totals mean something (the rules and the
/// repositories could be listed). Steps: the rules, the repositories, those in scope, whether
/// scan on push applies, each repository fixed, the templates, the summary.
async fn fix_all(
    deps: &Deps<'_>,
    options: &Options,
    only: Option<&[String]>,
    trigger: &str,
) -> (FixReport, bool) {
    let mut report = FixReport::empty(trigger, options);
    let rules = match deps.ecr.describe_rules().await {
        Ok(rules) => RuleSet::new(rules),
        Err(err) => {
            report.errors.push(format!("cannot list the rules: {err}"));
            return (report, false);
        }
    };
    let repositories = match list_repositories(deps, &rules, only, &mut report).await {
        Ok(r) => r,
        Err(err) => {
            report.errors.push(err);
            return (report, false);
        }
    };
    let in_scope = sweep_order(
        in_scope(options, &rules, repositories, &mut report),
        options.stop_at.is_some() && only.is_none(),
        time::OffsetDateTime::now_utc(),
    );
    let scan_on_push_applies = scan_on_push_applies(deps, options, &in_scope, &mut report).await;
    let desired_for = |prefix: &Prefix| {
        let mut desired = options.desired.for_rule_prefix(prefix).clone();
        desired.scan_on_push &= scan_on_push_applies;
        desired
    };
    report.repositories = futures::stream::iter(in_scope)
        .map(|(prefix, repo)| {
            let desired = desired_for(&prefix);
            async move { fix_one(deps, options, &desired, prefix.to_string(), repo).await }
        })
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
            Ok(t) => {
                report.templates = t;
                report.templates_checked = true;
            }
            Err(err) => report.errors.push(err),
        }
        // The registry policy, where some prefix grants other accounts pull (only then does
        // the deployment hold ecr:GetRegistryPolicy and ecr:PutRegistryPolicy).
        if options.desired.grants_pull() {
            report.registry_policy = Some(
                crate::registry::check(
                    deps.templates,
                    &rules,
                    &options.desired,
                    options.mode,
                    options.dry_run,
                )
                .await,
            );
        }
    }
    report.summarise();
    (report, true)
}

/// A sweep lists every repository (one call per 1,000); an event names its repositories,
/// which are read one by one instead of listing the whole registry (those outside every
/// rule prefix are counted, not read; one deleted since the event is a warning).
async fn list_repositories(
    deps: &Deps<'_>,
    rules: &RuleSet,
    only: Option<&[String]>,
    report: &mut FixReport,
) -> Result<Vec<Repository>, String> {
    let Some(names) = only else {
        return deps
            .ecr
            .describe_repositories()
            .await
            .map_err(|e| format!("cannot list repositories: {e}"));
    };
    let mut found = Vec::new();
    for name in names
        .iter()
        .filter(|n| rules.rule_for_repository(n).is_some())
    {
        match deps.ecr.describe_repository(name).await {
            Ok(Some(repo)) => found.push(repo),
            // A benign race (deleted since the event was sent): nothing to fix.
            Ok(None) => report.warnings.push(format!(
                "repository {name} not found (deleted since the event, or not created yet): nothing to fix"
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

/// The repositories to fix, with their rule prefix: those under a rule prefix, except those
/// under the ROOT rule only, unless the cache made them (counted and warned about).
fn in_scope(
    options: &Options,
    rules: &RuleSet,
    repositories: Vec<Repository>,
    report: &mut FixReport,
) -> Vec<(Prefix, Repository)> {
    let mut in_scope = Vec::new();
    for repo in repositories {
        match rules.rule_for_repository(&repo.name) {
            Some(rule) if rule.prefix.is_root() && !options.cache_made => {
                report.summary.ignored_root_only += 1;
            }
            Some(rule) => in_scope.push((rule.prefix.clone(), repo)),
            None => report.summary.ignored_outside_prefixes += 1,
        }
    }
    if report.summary.ignored_root_only > 0 {
        report.warnings.push(format!(
            "{} repositories match only the ROOT rule and were left alone: nothing tells a cached repository from the account's own there, so they are fixed only from the cache's own events (its CreateRepository service event, a sync event)",
            report.summary.ignored_root_only
        ));
    }
    in_scope
}

/// The order a sweep takes the repositories in: as listed, but a full sweep with a deadline
/// (the Lambda's) starts at an offset drawn from its start time
/// ([`ptc_core::deadline::rotation`]), so that a registry too large for one invocation is not
/// cut at the same repository every sweep (the repositories a sweep defers are the next
/// ones' first, by chance). Events (`only`) and `ptc fix` keep the listing's order.
fn sweep_order<T>(in_scope: Vec<T>, rotate: bool, now: time::OffsetDateTime) -> Vec<T> {
    if rotate {
        ptc_core::deadline::rotated(in_scope, now)
    } else {
        in_scope
    }
}

/// Scan on push is a repository setting of basic scanning only; under enhanced scanning
/// (Amazon Inspector) the registry's rules decide, and the repository flag does nothing.
/// Asked only when some prefix wants it and there is work; unknown means left alone.
async fn scan_on_push_applies(
    deps: &Deps<'_>,
    options: &Options,
    in_scope: &[(Prefix, Repository)],
    report: &mut FixReport,
) -> bool {
    if !options.desired.wants_scan_on_push() || in_scope.is_empty() {
        return true;
    }
    match deps.settings.registry_scan_type().await {
        Ok(scan_type) => {
            let applies = scan_type == "BASIC";
            if !applies {
                report.warnings.push(format!(
                    "the registry uses {scan_type} scanning: scan on push is not set on repositories (the registry's scanning rules apply)"
                ));
            }
            report.registry_scan_type = Some(scan_type);
            applies
        }
        Err(err) => {
            report.errors.push(format!(
                "cannot read the registry scanning configuration, scan on push left alone: {err}"
            ));
            false
        }
    }
}

async fn fix_one(
    deps: &Deps<'_>,
    options: &Options,
    desired: &Desired,
    prefix: String,
    repo: Repository,
) -> RepositoryResult {
    let mut result = RepositoryResult {
        repository: repo.name.clone(),
        prefix,
        findings: Vec::new(),
        changes: Vec::new(),
        applied: false,
        deferred: false,
        gone: false,
        errors: Vec::new(),
    };
    if options
        .stop_at
        .is_some_and(|stop| std::time::Instant::now() >= stop)
    {
        result.deferred = true;
        return result;
    }
    let settings = match deps.settings.repository_settings(&repo).await {
        Ok(s) => s,
        // A benign race: deleted between the listing and this read. Nothing to fix.
        Err(err) if err.is_repository_gone() => {
            result.gone = true;
            return result;
        }
        Err(err) => {
            result.errors.push(format!("cannot read settings: {err}"));
            return result;
        }
    };
    // Which cached tags the mutability setting freezes: read only where it may freeze some
    // but not all (one DescribeImages for such a repository, none for the usual MUTABLE).
    let cached_tags = if repo.tag_mutability != "IMMUTABLE"
        && crate::mutability::may_freeze_tags(&repo.tag_mutability, &repo.tag_mutability_exclusions)
    {
        match deps.ecr.describe_images(&repo.name).await {
            Ok(images) => Some(images.into_iter().flat_map(|i| i.tags).collect()),
            Err(err) => {
                result.errors.push(format!(
                    "cannot list the cached tags to check tag mutability {}: {err}",
                    repo.tag_mutability
                ));
                None
            }
        }
    } else {
        None
    };
    let current = Current {
        lifecycle_policy: settings.lifecycle_policy,
        repository_policy: settings.repository_policy,
        tags: settings.tags,
        scan_on_push: repo.scan_on_push,
        tag_mutability: repo.tag_mutability.clone(),
        tag_mutability_exclusions: repo.tag_mutability_exclusions.clone(),
        cached_tags,
    };
    let planned = plan(&current, desired, options.mode);
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
        match done {
            Ok(()) => {}
            // Deleted while we were fixing it: nothing left to fix, not a failure.
            Err(err) if err.is_repository_gone() => {
                result.gone = true;
                result.errors.clear();
                break;
            }
            Err(err) => result.errors.push(err.to_string()),
        }
    }
    result.applied = true;
    tracing::info!(repository = %repo.name, changes = result.changes.len(), errors = result.errors.len(), "repository fixed");
    result
}

/// The sweep's metrics. A dry run publishes only `RunErrors` and the heartbeat (a
/// deployment in dry-run mode must still page when it cannot run); `full` for a sweep of
/// every repository (the heartbeat), `totals_known` when it also listed and reached every
/// one (the totals).
async fn publish(
    deps: &Deps<'_>,
    options: &Options,
    report: &mut FixReport,
    full: bool,
    totals_known: bool,
) {
    let data = if options.dry_run {
        Vec::new()
    } else {
        metric_data(report, totals_known)
    };
    // Repositories deferred past the deadline were not done either.
    let item_errors = report.summary.errors + report.summary.deferred;
    report.metrics_published = ptc_core::metrics::publish_run(
        deps.metrics,
        &options.namespace,
        ptc_core::metrics::Run::new(report.job)
            .full(full)
            .item_errors(item_errors),
        data,
        &mut report.errors,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ptc_core::ecr::RepositorySettings;
    use ptc_core::fakes::FakeMetrics;
    use ptc_core::fakes::{FakeEcr, FakeEcrSettings, FakeTemplates};
    use ptc_core::rules::{Prefix, PtcRule};

    use super::*;

    /// A Lambda's full sweep starts at a place that moves from run to run (issue 19: the same
    /// tail must not be deferred forever); events and `ptc fix` keep the listing's order.
    #[test]
    fn a_full_sweep_with_a_deadline_starts_somewhere_else_each_run() {
        let listed: Vec<u32> = (0..20).collect();
        let start = time::OffsetDateTime::from_unix_timestamp(1_796_000_000).unwrap();
        let firsts: std::collections::BTreeSet<u32> = (0..24)
            .map(|day| sweep_order(listed.clone(), true, start + time::Duration::days(day))[0])
            .collect();
        assert!(firsts.len() >= 8, "the start moves: {firsts:?}");
        let turned = sweep_order(listed.clone(), true, start);
        let at = turned[0] as usize;
        assert_eq!(
            turned,
            [&listed[at..], &listed[..at]].concat(),
            "a rotation, the order kept"
        );
        assert_eq!(sweep_order(listed.clone(), false, start), listed);
    }
    use crate::desired::{default_lifecycle, pull_policy};
    use crate::plan::Mode;

    use ptc_tests::fixtures::repository as repo;

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
            }
            .into(),
            mode,
            dry_run,
            concurrency: 4,
            namespace: "Test".into(),
            publish_metrics: true,
            stop_at: None,
            cache_made: false,
        }
    }

    #[tokio::test]
    async fn fixes_repositories_under_prefixes_then_writes_nothing() {
        let (ecr, settings, metrics) = world();
        let templates = FakeTemplates::default();
        let deps = deps(&ecr, &settings, &templates, &metrics);
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
        let deps = deps(&ecr, &settings, &templates, &metrics);
        let report = sweep(&deps, &options(Mode::Enforce, true), None, "test").await;
        assert_eq!(report.repositories[0].changes.len(), 3);
        assert!(!report.repositories[0].applied);
        assert!(settings.writes.lock().unwrap().is_empty());
        // A dry run publishes no figure, only the run's RunErrors and its heartbeat: a
        // deployment in dry-run mode still pages when it cannot run.
        let names: Vec<String> = metrics
            .published
            .lock()
            .unwrap()
            .iter()
            .map(|(_, d)| d.name.clone())
            .collect();
        assert_eq!(names, ["RunErrors", "FullRuns"]);
    }

    #[tokio::test]
    async fn fill_keeps_and_enforce_rewrites_the_products_rule_only() {
        let (ecr, settings, metrics) = world();
        // The team's own rule, and the product's rule as an older setting wrote it (7 days).
        let hand = format!(
            r#"{{"rules":[{{"rulePriority":1,"description":"set by the team, keep the last ten release images","selection":{{"tagStatus":"tagged","tagPatternList":["release-*"],"countType":"imageCountMoreThan","countNumber":10}},"action":{{"type":"expire"}}}},{}]}}"#,
            serde_json::to_string(&default_lifecycle(7).rules[0]).unwrap()
        );
        let hand = hand.as_str();
        settings.settings.lock().unwrap().insert(
            "quay/a".into(),
            RepositorySettings {
                lifecycle_policy: Some(hand.into()),
                ..Default::default()
            },
        );
        let templates = FakeTemplates::default();
        let deps = deps(&ecr, &settings, &templates, &metrics);
        let filled = sweep(
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
        // The rest was fixed, the team's policy kept: the repository is left non-compliant.
        assert_eq!(
            (filled.summary.fixed, filled.summary.left_non_compliant),
            (1, 1)
        );
        // An event run covers one repository: it publishes no fleet total.
        assert_eq!(total(&metrics, "RepositoriesLeftNonCompliant"), None);
        sweep(&deps, &options(Mode::Fill, false), None, "sweep").await;
        assert_eq!(total(&metrics, "RepositoriesLeftNonCompliant"), Some(1.0));
        let enforced = sweep(&deps, &options(Mode::Enforce, false), None, "sweep").await;
        assert_eq!(enforced.summary.left_non_compliant, 0);
        assert_eq!(total(&metrics, "RepositoriesLeftNonCompliant"), Some(0.0));
        let written = settings.settings.lock().unwrap()["quay/a"]
            .lifecycle_policy
            .clone()
            .unwrap();
        assert_ne!(written, hand);
        // The team's rule is still there, the product's now says 30 days.
        let rules = crate::policy::LifecyclePolicy::parse(&written)
            .unwrap()
            .rules;
        assert_eq!(rules.len(), 2, "{written}");
        assert!(written.contains("set by the team") && written.contains(r#""countNumber":30"#));
    }

    #[tokio::test]
    async fn immutable_tags_not_covered_by_exclusions_are_named() {
        let (ecr, settings, metrics) = world();
        {
            let mut state = ecr.state.lock().unwrap();
            let a = state
                .repositories
                .iter_mut()
                .find(|r| r.name == "quay/a")
                .unwrap();
            a.tag_mutability = "IMMUTABLE_WITH_EXCLUSION".into();
            a.tag_mutability_exclusions = vec!["latest".into()];
            let image = |tag: &str| ptc_core::ecr::ImageDetail {
                digest: format!("sha256:{}", "a".repeat(64)),
                tags: vec![tag.into()],
                size_bytes: Some(1),
                pushed_at: None,
                last_pulled_at: None,
                media_type: None,
                status: ptc_core::ecr::ImageStatus::Active,
                last_archived_at: None,
                last_activated_at: None,
            };
            state
                .images
                .insert("quay/a".into(), vec![image("latest"), image("1.27.3")]);
        }
        let templates = FakeTemplates::default();
        let deps = deps(&ecr, &settings, &templates, &metrics);
        let report = sweep(&deps, &options(Mode::Enforce, true), None, "sweep").await;
        let a = report
            .repositories
            .iter()
            .find(|r| r.repository == "quay/a")
            .unwrap();
        assert!(
            a.findings
                .iter()
                .any(|f| f.contains("cannot refresh the cached tags 1.27.3 ")),
            "{a:?}"
        );
        let b = report
            .repositories
            .iter()
            .find(|r| r.repository == "quay/b")
            .unwrap();
        assert!(
            !b.findings.iter().any(|f| f.contains("mutability")),
            "{b:?}"
        );
    }

    #[tokio::test]
    async fn an_event_for_a_missing_repository_is_reported() {
        let (ecr, settings, metrics) = world();
        let templates = FakeTemplates::default();
        let deps = deps(&ecr, &settings, &templates, &metrics);
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
        // A benign race (deleted since the event): a warning, not a failure of the run.
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("repository quay/gone not found")),
            "{:?}",
            report.warnings
        );
        assert_eq!(run_errors(&metrics), [0.0]);
    }

    fn deps<'a>(
        ecr: &'a FakeEcr,
        settings: &'a FakeEcrSettings,
        templates: &'a FakeTemplates,
        metrics: &'a FakeMetrics,
    ) -> Deps<'a> {
        Deps {
            ecr,
            settings,
            templates,
            metrics,
        }
    }

    fn run_errors(metrics: &FakeMetrics) -> Vec<f64> {
        metrics
            .published
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, d)| d.name == "RunErrors")
            .map(|(_, d)| d.value)
            .collect()
    }

    fn total(metrics: &FakeMetrics, name: &str) -> Option<f64> {
        metrics
            .published
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(_, d)| d.name == name && d.dimensions.is_empty())
            .map(|(_, d)| d.value)
    }

    #[tokio::test]
    async fn repositories_matched_only_by_root_are_fixed_only_from_the_cache_s_events() {
        let ecr = FakeEcr::with_rules(vec![
            PtcRule::new("quay", "quay.io").unwrap(),
            PtcRule::new("ROOT", "registry-1.docker.io").unwrap(),
        ]);
        ecr.state.lock().unwrap().repositories = vec![repo("quay/a"), repo("payments/api")];
        let (settings, metrics, templates) = (
            FakeEcrSettings::default(),
            FakeMetrics::default(),
            FakeTemplates::default(),
        );
        let deps = deps(&ecr, &settings, &templates, &metrics);
        let swept = sweep(&deps, &options(Mode::Fill, false), None, "sweep").await;
        let names: Vec<&str> = swept
            .repositories
            .iter()
            .map(|r| r.repository.as_str())
            .collect();
        assert_eq!(
            names,
            ["quay/a"],
            "the account's own repository is not touched"
        );
        assert_eq!(swept.summary.ignored_root_only, 1);
        assert!(
            swept.warnings.iter().any(|w| w.contains("ROOT")),
            "{:?}",
            swept.warnings
        );
        assert!(
            settings
                .writes
                .lock()
                .unwrap()
                .iter()
                .all(|(_, r)| r != "payments/api"),
            "{:?}",
            settings.writes.lock().unwrap()
        );
        // A person's CreateRepository (an API call) does not make it the cache's either.
        let named = sweep(
            &deps,
            &options(Mode::Fill, false),
            Some(&["payments/api".into()]),
            "CloudTrail API call CreateRepository",
        )
        .await;
        assert!(named.repositories.is_empty());
        // The cache's own event for it does.
        let cache_made = Options {
            cache_made: true,
            ..options(Mode::Fill, false)
        };
        let fixed = sweep(&deps, &cache_made, Some(&["payments/api".into()]), "sync").await;
        assert_eq!(fixed.summary.fixed, 1, "{fixed:#?}");
    }

    #[tokio::test]
    async fn a_repository_deleted_during_the_sweep_is_not_a_failure() {
        let (ecr, settings, metrics) = world();
        settings.gone.lock().unwrap().insert("quay/b".into());
        let templates = FakeTemplates::default();
        let deps = deps(&ecr, &settings, &templates, &metrics);
        let report = sweep(&deps, &options(Mode::Fill, false), None, "sweep").await;
        let gone = report
            .repositories
            .iter()
            .find(|r| r.repository == "quay/b")
            .unwrap();
        assert!(gone.gone && gone.errors.is_empty(), "{gone:?}");
        assert_eq!(report.summary.errors, 0);
        assert_eq!(report.summary.scanned, 1, "quay/a only");
        assert_eq!(report.summary.fixed, 1);
        assert_eq!(run_errors(&metrics), [0.0]);
        assert_eq!(total(&metrics, "RepositoriesLeftNonCompliant"), Some(0.0));
    }

    #[tokio::test]
    async fn a_template_that_cannot_be_written_is_counted_everywhere() {
        let (ecr, settings, metrics) = world();
        let templates = FakeTemplates::default();
        *templates.fail_next_put.lock().unwrap() = Some(ptc_core::AwsError {
            operation: "CreateRepositoryCreationTemplate",
            kind: ptc_core::AwsErrorKind::Throttled,
            message: "Rate exceeded".into(),
        });
        let deps = deps(&ecr, &settings, &templates, &metrics);
        let report = sweep(&deps, &options(Mode::Enforce, false), None, "sweep").await;
        assert!(
            report.templates[0].error.is_some(),
            "{:?}",
            report.templates
        );
        assert_eq!(
            report.summary.errors, 1,
            "the template's error reaches the summary"
        );
        assert_eq!(run_errors(&metrics), [1.0], "and the RunErrors metric");
        assert_eq!(total(&metrics, "TemplatesMissing"), Some(1.0));
    }

    #[tokio::test]
    async fn a_template_another_sweep_just_created_is_a_benign_race() {
        let (ecr, settings, metrics) = world();
        let templates = FakeTemplates::default();
        *templates.fail_next_put.lock().unwrap() = Some(ptc_core::AwsError {
            operation: "CreateRepositoryCreationTemplate",
            kind: ptc_core::AwsErrorKind::Service("TemplateAlreadyExistsException".into()),
            message: "The repository creation template already exists".into(),
        });
        let deps = deps(&ecr, &settings, &templates, &metrics);
        let report = sweep(&deps, &options(Mode::Enforce, false), None, "sweep").await;
        assert_eq!(report.templates[0].error, None);
        assert_eq!(
            report.templates[0].action.as_deref(),
            Some("created by another run")
        );
        assert_eq!(report.summary.errors, 0);
        assert_eq!(run_errors(&metrics), [0.0]);
        assert_eq!(
            total(&metrics, "TemplatesMissing"),
            Some(0.0),
            "it exists now"
        );
    }

    #[tokio::test]
    async fn scan_on_push_only_under_basic_scanning_and_per_prefix() {
        let ecr = FakeEcr::with_rules(vec![
            PtcRule::new("quay", "quay.io").unwrap(),
            PtcRule::new("k8s", "registry.k8s.io").unwrap(),
        ]);
        ecr.state.lock().unwrap().repositories = vec![repo("quay/a"), repo("k8s/pause")];
        let settings = FakeEcrSettings::default();
        let (metrics, templates) = (FakeMetrics::default(), FakeTemplates::default());
        let deps = deps(&ecr, &settings, &templates, &metrics);
        // Only k8s wants scan on push, and a shorter lifecycle.
        let mut opts = options(Mode::Fill, false);
        let k8s = Desired {
            lifecycle_policy: Some(default_lifecycle(7).canonical()),
            scan_on_push: true,
            ..opts.desired.default.clone()
        };
        opts.desired
            .prefixes
            .insert(Prefix::parse("k8s").unwrap(), k8s.clone());

        *settings.scan_type.lock().unwrap() = Some("ENHANCED".into());
        let enhanced = sweep(&deps, &opts, None, "test").await;
        assert_eq!(enhanced.registry_scan_type.as_deref(), Some("ENHANCED"));
        assert!(
            enhanced.warnings.iter().any(|w| w.contains("ENHANCED")),
            "{:?}",
            enhanced.warnings
        );
        assert!(settings.scan_on_push.lock().unwrap().is_empty());
        let lifecycle = |name: &str| {
            settings.settings.lock().unwrap()[name]
                .lifecycle_policy
                .clone()
        };
        assert_eq!(lifecycle("k8s/pause"), k8s.lifecycle_policy);
        assert_eq!(lifecycle("quay/a"), opts.desired.default.lifecycle_policy);

        *settings.scan_type.lock().unwrap() = None; // BASIC
        let basic = sweep(&deps, &opts, None, "test").await;
        assert!(basic.warnings.is_empty(), "{:?}", basic.warnings);
        let scanned = settings.scan_on_push.lock().unwrap().clone();
        assert_eq!(
            scanned.keys().collect::<Vec<_>>(),
            ["k8s/pause"],
            "scan on push for the prefix that wants it only"
        );
    }
}
