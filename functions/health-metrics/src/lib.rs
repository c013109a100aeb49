//! health-metrics: the pull-through cache's health in CloudWatch.
//!
//! A scheduled run ([`inventory`]) reads every repository under a rule prefix and its images
//! and reports, per prefix, repositories, images, stored bytes and their monthly cost, the
//! oldest image, images not pulled for N days, the watch-list coverage, and per upstream the
//! watch-list images that would fail to pull if that upstream went down now
//! ([`readiness`]). "ECR Pull Through Cache Action" events become sync counts ([`events`]).
//! `main.rs` wires it to Lambda, `ptc health` to the command line.

pub mod events;
pub mod inventory;
pub mod readiness;

use std::collections::BTreeMap;

use futures::StreamExt as _;
use ptc_core::Settings;
use ptc_core::ecr::{EcrApi, ImageDetail};
use ptc_core::metrics::{MetricDatum, MetricsApi, Unit};
use ptc_core::objects::ObjectsApi;
use ptc_core::platform::Platform;
use ptc_core::rules::RuleSet;
use ptc_core::watchlist::WatchListSource;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::events::SyncEvent;
use crate::inventory::{PrefixInventory, RepositoryInventory};
use crate::readiness::{CacheView, UpstreamReadiness, WatchItem};

pub struct Deps<'a> {
    pub ecr: &'a dyn EcrApi,
    pub objects: &'a dyn ObjectsApi,
    pub metrics: &'a dyn MetricsApi,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub namespace: String,
    pub platforms: Vec<Platform>,
    pub concurrency: usize,
    pub price_per_gb_month: f64,
    pub unused_days: u32,
    /// Also publish inventory metrics per repository (billed per repository).
    pub per_repository: bool,
    pub watch_list: Vec<String>,
    pub watch_list_source: Option<WatchListSource>,
    pub publish_metrics: bool,
}

impl Options {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            namespace: settings.metrics_namespace.clone(),
            platforms: settings.platforms.clone(),
            concurrency: settings.concurrency,
            price_per_gb_month: settings.health.storage_price_per_gb_month,
            unused_days: settings.health.unused_days,
            per_repository: settings.health.per_repository,
            watch_list: settings.watch_list.clone(),
            watch_list_source: settings.watch_list_source.clone(),
            publish_metrics: true,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coverage {
    /// Watch-list entries the cache can serve (valid references under a rule).
    pub watched: usize,
    /// Of those, the ones whose tag or digest is cached.
    pub cached: usize,
    /// Of those, the ones with every wanted platform cached too.
    pub ready: usize,
    /// `cached / watched` in percent; `None` when there is nothing to measure (no valid
    /// entry) or the watch list could not be read whole (a run error, never a score).
    pub coverage_percent: Option<f64>,
    pub invalid: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    pub job: &'static str,
    pub trigger: String,
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    pub prefixes: Vec<PrefixInventory>,
    pub repositories_outside_prefixes: usize,
    pub coverage: Coverage,
    pub watch_list: Vec<WatchItem>,
    /// Per upstream: the watch-list images that would fail to pull if it went down now.
    pub outage: Vec<UpstreamReadiness>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sync_events: Vec<SyncEvent>,
    pub metrics_published: usize,
    /// Entries of the watch list that are not references the cache can serve (each named
    /// with its reason): a mistake in the list, not a failure of the run (prewarm counts
    /// them in `ImagesFailed`, which pages).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
    /// Every watch-list source was read: coverage and exposure totals mean something.
    #[serde(skip)]
    pub watch_list_complete: bool,
}

impl HealthReport {
    pub fn empty(trigger: &str, now: OffsetDateTime) -> Self {
        Self {
            job: "health-metrics",
            trigger: trigger.to_owned(),
            generated_at: now,
            prefixes: Vec::new(),
            repositories_outside_prefixes: 0,
            coverage: Coverage::default(),
            watch_list: Vec::new(),
            outage: Vec::new(),
            sync_events: Vec::new(),
            metrics_published: 0,
            warnings: Vec::new(),
            errors: Vec::new(),
            watch_list_complete: false,
        }
    }
}

/// The watch list from the settings and the long list, de-duplicated on the normalised
/// reference (entries that do not parse are kept once, to be reported), and whether every
/// source could be read (a long list that could not be read is an error in `errors`).
async fn watch_list(
    deps: &Deps<'_>,
    options: &Options,
    errors: &mut Vec<String>,
) -> (Vec<String>, bool) {
    let mut inputs = options.watch_list.clone();
    let mut complete = true;
    if let Some(source) = &options.watch_list_source {
        match ptc_core::watchlist::load(deps.objects, source).await {
            Ok(more) => inputs.extend(more),
            Err(err) => {
                tracing::error!(error = %err, "watch list unreadable: no coverage is published");
                errors.push(err);
                complete = false;
            }
        }
    }
    let mut dedup = ptc_core::watchlist::Dedup::default();
    (
        inputs.iter().filter_map(|i| dedup.admit(i)).collect(),
        complete,
    )
}

/// The scheduled run: inventory, coverage, outage readiness, metrics.
pub async fn run(
    deps: &Deps<'_>,
    options: &Options,
    trigger: &str,
    now: OffsetDateTime,
) -> HealthReport {
    let mut report = HealthReport::empty(trigger, now);
    let rules = match deps.ecr.describe_rules().await {
        Ok(rules) => RuleSet::new(rules),
        Err(err) => {
            report.errors.push(format!("cannot list the rules: {err}"));
            publish(deps, options, &mut report, true).await;
            return report;
        }
    };
    let repositories = match deps.ecr.describe_repositories().await {
        Ok(r) => r,
        Err(err) => {
            report
                .errors
                .push(format!("cannot list repositories: {err}"));
            publish(deps, options, &mut report, true).await;
            return report;
        }
    };
    let mut prefixes = inventory::by_prefix(
        rules
            .rules()
            .iter()
            .filter(|r| !r.prefix.is_root())
            .map(|r| (r.prefix.to_string(), r.upstream_url.clone())),
    );
    let mut in_scope = Vec::new();
    for repo in repositories {
        match rules.rule_for_repository(&repo.name) {
            Some(rule) => in_scope.push((rule.prefix.to_string(), repo)),
            None => report.repositories_outside_prefixes += 1,
        }
    }
    // Every repository's images, a bounded number of calls at a time.
    let listed: Vec<_> = futures::stream::iter(in_scope)
        .map(|(prefix, repo)| async move {
            let images = deps.ecr.describe_images(&repo.name).await;
            (prefix, repo, images)
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    let mut images_by_repo: BTreeMap<String, Vec<ImageDetail>> = BTreeMap::new();
    let mut unreadable: BTreeMap<String, String> = BTreeMap::new();
    for (prefix, repo, images) in listed {
        let entry = prefixes
            .entry(prefix.clone())
            .or_insert_with(|| PrefixInventory::new(&prefix, ""));
        match images {
            Ok(images) => {
                let figures = RepositoryInventory::of(&repo, &images, now, options.unused_days);
                entry.add(&figures, now);
                if options.per_repository {
                    entry.per_repository.push(figures);
                }
                images_by_repo.insert(repo.name.clone(), images);
            }
            // Deleted since the listing: it is not in the cache any more, and that is no
            // failure of the run (its images are simply not there).
            Err(err) if err.is_repository_gone() => {}
            Err(err) => {
                entry.unreadable_repositories += 1;
                report.errors.push(format!(
                    "repository {}: cannot list images: {err}",
                    repo.name
                ));
                unreadable.insert(repo.name.clone(), err.to_string());
            }
        }
    }
    for p in prefixes.values_mut() {
        p.price(options.price_per_gb_month);
        p.per_repository
            .sort_by(|a, b| a.repository.cmp(&b.repository));
    }
    report.prefixes = prefixes.into_values().collect();
    for p in report.prefixes.iter().filter(|p| p.implausible_sizes > 0) {
        report.warnings.push(format!(
            "prefix {}: {} images with an implausible imageSizeInBytes (negative, or over 10 TiB) left out of the stored bytes",
            p.prefix, p.implausible_sizes
        ));
    }

    let (entries, complete) = watch_list(deps, options, &mut report.errors).await;
    report.watch_list_complete = complete;
    let view = CacheView {
        images: &images_by_repo,
        unreadable: &unreadable,
    };
    report.watch_list = futures::stream::iter(entries)
        .map(|input| {
            let (rules, view) = (&rules, &view);
            async move { readiness::assess(deps.ecr, rules, view, &options.platforms, &input).await }
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    let valid: Vec<&WatchItem> = report
        .watch_list
        .iter()
        .filter(|i| i.state != readiness::Readiness::Invalid)
        .collect();
    report.coverage = Coverage {
        watched: valid.len(),
        cached: valid.iter().filter(|i| i.cached()).count(),
        ready: valid.iter().filter(|i| !i.exposed()).count(),
        coverage_percent: (complete && !valid.is_empty())
            .then(|| percent(valid.iter().filter(|i| i.cached()).count(), valid.len())),
        invalid: report.watch_list.len() - valid.len(),
    };
    for item in report
        .watch_list
        .iter()
        .filter(|i| i.state == readiness::Readiness::Invalid)
    {
        report.warnings.push(format!(
            "watch list entry {:?}: {}",
            item.image,
            item.reason.as_deref().unwrap_or("invalid")
        ));
    }
    report.outage = readiness::by_upstream(&report.watch_list);
    publish(deps, options, &mut report, true).await;
    report
}

/// `part / whole` in percent, to the hundredth; `whole` is never 0 here.
fn percent(part: usize, whole: usize) -> f64 {
    (part as f64 * 10_000.0 / whole.max(1) as f64).round() / 100.0
}

/// The report's metrics: per prefix by default, per repository only when asked.
pub fn metric_data(report: &HealthReport, options: &Options) -> Vec<MetricDatum> {
    let mut data = Vec::new();
    let mut push = |name: &str, value: f64, unit: Unit, dims: &[(&str, &str)]| {
        let datum = dims
            .iter()
            .fold(MetricDatum::new(name, value, unit), |d, (n, v)| {
                d.and_then(|d| d.dimension(n, v))
            });
        match datum {
            Ok(d) => data.push(d),
            Err(err) => tracing::warn!(error = %err, "metric left out"),
        }
    };
    for p in &report.prefixes {
        let dims = [("Prefix", p.prefix.as_str())];
        push("Repositories", p.repositories as f64, Unit::Count, &dims);
        push("Images", p.images as f64, Unit::Count, &dims);
        push(
            "UntaggedImages",
            p.untagged_images as f64,
            Unit::Count,
            &dims,
        );
        push("StoredBytes", p.stored_bytes as f64, Unit::Bytes, &dims);
        push("UntaggedBytes", p.untagged_bytes as f64, Unit::Bytes, &dims);
        push(
            "EstimatedMonthlyStorageCostUSD",
            p.estimated_monthly_cost_usd,
            Unit::None,
            &dims,
        );
        if let Some(age) = p.oldest_image_age_days {
            push("OldestImageAgeDays", age, Unit::None, &dims);
        }
        push(
            "ImagesNotPulled",
            p.images_not_pulled as f64,
            Unit::Count,
            &dims,
        );
        if options.per_repository {
            for r in &p.per_repository {
                let dims = [
                    ("Prefix", p.prefix.as_str()),
                    ("Repository", r.repository.as_str()),
                ];
                push("Images", r.images as f64, Unit::Count, &dims);
                push("StoredBytes", r.stored_bytes as f64, Unit::Bytes, &dims);
                push(
                    "ImagesNotPulled",
                    r.images_not_pulled as f64,
                    Unit::Count,
                    &dims,
                );
            }
        }
    }
    // Coverage and exposure per prefix, over the valid watch-list entries; none at all when
    // the watch list could not be read whole (RunErrors pages instead of a partial score).
    let mut per_prefix: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let watch_list = if report.watch_list_complete {
        report.watch_list.as_slice()
    } else {
        &[]
    };
    for item in watch_list {
        if let Some(prefix) = item.prefix.as_deref() {
            let e = per_prefix.entry(prefix).or_default();
            e.0 += 1;
            e.1 += usize::from(item.cached());
            e.2 += usize::from(item.exposed());
        }
    }
    for (prefix, (watched, cached, exposed)) in per_prefix {
        let dims = [("Prefix", prefix)];
        push("WatchListImages", watched as f64, Unit::Count, &dims);
        push(
            "WatchListCoverage",
            percent(cached, watched),
            Unit::Percent,
            &dims,
        );
        push("OutageExposedImages", exposed as f64, Unit::Count, &dims);
    }
    // The totals the alarms watch, without dimension (alarms cannot add up the per-prefix
    // series: SEARCH is refused in alarms).
    if let Some(percent) = report.coverage.coverage_percent {
        push("WatchListCoverage", percent, Unit::Percent, &[]);
        let exposed = report.watch_list.iter().filter(|i| i.exposed()).count();
        push("OutageExposedImages", exposed as f64, Unit::Count, &[]);
    }
    for event in &report.sync_events {
        data.extend(events::metrics(event));
    }
    data
}

/// Publish the report's metrics and the run's `RunErrors` point (every path, early returns
/// and rejected events included).
/// `full` for an inventory run (the heartbeat); events are not.
async fn publish(deps: &Deps<'_>, options: &Options, report: &mut HealthReport, full: bool) {
    if !options.publish_metrics {
        return;
    }
    let data = metric_data(report, options);
    report.metrics_published = ptc_core::metrics::publish_run(
        deps.metrics,
        &options.namespace,
        ptc_core::metrics::Run::new(report.job).full(full),
        data,
        &mut report.errors,
    )
    .await;
}

/// One invocation: a schedule (or `{}`) runs the inventory; a pull-through cache sync event
/// becomes its counts; anything else is an error in the report, never a crash.
pub async fn handle(
    deps: &Deps<'_>,
    options: &Options,
    event: &Value,
    now: OffsetDateTime,
) -> HealthReport {
    let object = match ptc_core::events::object(event) {
        Ok(object) => object,
        Err(err) => return rejected(deps, options, now, err).await,
    };
    if object.is_empty() {
        return run(deps, options, "invocation {}", now).await;
    }
    let envelope = match ptc_core::events::envelope(event) {
        Ok(envelope) => envelope,
        Err(err) => return rejected(deps, options, now, err).await,
    };
    match envelope.detail_type.as_str() {
        "Scheduled Event" => run(deps, options, "schedule", now).await,
        events::DETAIL_TYPE => match events::from_envelope(&envelope) {
            Ok(sync) => {
                let mut report = HealthReport::empty("pull-through cache sync event", now);
                if !sync.success {
                    tracing::warn!(prefix = %sync.prefix, repository = %sync.repository, code = ?sync.failure_code, "pull-through cache sync failed");
                }
                report.sync_events.push(sync);
                publish(deps, options, &mut report, false).await;
                report
            }
            Err(err) => rejected(deps, options, now, err).await,
        },
        other => {
            rejected(
                deps,
                options,
                now,
                ptc_core::events::rejected(format!(
                    "detail-type {other:?} is not one this function handles"
                )),
            )
            .await
        }
    }
}

async fn rejected(
    deps: &Deps<'_>,
    options: &Options,
    now: OffsetDateTime,
    error: String,
) -> HealthReport {
    tracing::error!(error = %error, "event rejected");
    let mut report = HealthReport::empty("unsupported event", now);
    report.errors.push(error);
    publish(deps, options, &mut report, false).await;
    report
}

#[cfg(test)]
mod tests {
    use ptc_core::ecr::Repository;
    use ptc_core::fakes::FakeEcr;
    use ptc_core::fakes::FakeMetrics;
    use ptc_core::fakes::FakeObjects;
    use ptc_core::rules::PtcRule;
    use serde_json::json;

    use super::*;

    fn repo(name: &str) -> Repository {
        Repository {
            name: name.into(),
            arn: String::new(),
            uri: String::new(),
            created_at: None,
            tag_mutability: "MUTABLE".into(),
            scan_on_push: false,
        }
    }

    fn options() -> Options {
        Options {
            namespace: "Test".into(),
            platforms: vec![Platform::parse("linux/amd64").unwrap()],
            concurrency: 4,
            price_per_gb_month: 0.10,
            unused_days: 30,
            per_repository: false,
            watch_list: vec![
                "quay.io/a:v1".into(),
                "quay.io/b:v1".into(),
                "nope nope".into(),
            ],
            watch_list_source: None,
            publish_metrics: true,
        }
    }

    fn image(tag: &str, size: i64) -> ImageDetail {
        ImageDetail {
            digest: format!("sha256:{size:064x}"),
            tags: vec![tag.into()],
            size_bytes: Some(size),
            pushed_at: Some(OffsetDateTime::now_utc()),
            last_pulled_at: None,
            media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
        }
    }

    #[tokio::test]
    async fn one_unreadable_repository_does_not_stop_the_rest() {
        let ecr = FakeEcr::with_rules(vec![PtcRule::new("quay", "quay.io").unwrap()]);
        {
            let mut s = ecr.state.lock().unwrap();
            s.repositories = vec![repo("quay/a"), repo("team/app")];
            s.images.insert("quay/a".into(), vec![image("v1", 100)]);
        }
        let (objects, metrics) = (FakeObjects::default(), FakeMetrics::default());
        let deps = Deps {
            ecr: &ecr,
            objects: &objects,
            metrics: &metrics,
        };
        let report = run(&deps, &options(), "test", OffsetDateTime::now_utc()).await;
        assert_eq!(report.prefixes[0].repositories, 1);
        assert_eq!(report.prefixes[0].stored_bytes, 100);
        assert_eq!(report.repositories_outside_prefixes, 1);
        assert_eq!((report.coverage.watched, report.coverage.cached), (2, 1));
        assert_eq!(report.coverage.coverage_percent, Some(50.0));
        assert_eq!(report.coverage.invalid, 1);
        assert!(
            report.warnings.iter().any(|e| e.contains("nope nope")),
            "{:?}",
            report.warnings
        );
        assert!(
            report.errors.is_empty(),
            "a bad entry is not a failure of the run"
        );
        let published = metrics.published.lock().unwrap();
        let value = |name: &str| {
            published
                .iter()
                .find(|(_, d)| d.name == name && d.dimensions.iter().any(|(_, v)| v == "quay"))
                .map(|(_, d)| d.value)
        };
        assert_eq!(value("WatchListCoverage"), Some(50.0));
        assert_eq!(value("OutageExposedImages"), Some(1.0));
        assert_eq!(value("StoredBytes"), Some(100.0));
    }

    #[tokio::test]
    async fn events_and_bad_input_through_handle() {
        let ecr = FakeEcr::with_rules(vec![]);
        let (objects, metrics) = (FakeObjects::default(), FakeMetrics::default());
        let deps = Deps {
            ecr: &ecr,
            objects: &objects,
            metrics: &metrics,
        };
        let now = OffsetDateTime::now_utc();
        let event = json!({"detail-type": "ECR Pull Through Cache Action", "source": "aws.ecr", "detail": {
            "sync-status": "FAILURE", "ecr-repository-prefix": "quay", "repository-name": "quay/a", "failure-code": "UPSTREAM_UNAVAILABLE"}});
        let report = handle(&deps, &options(), &event, now).await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        // The event's count per prefix and code, its total, and the run's RunErrors point.
        assert_eq!(report.metrics_published, 3);
        assert_eq!(
            ecr.calls("DescribeRepositories"),
            0,
            "an event reads nothing"
        );
        for bad in [
            json!([1]),
            json!({"detail-type": "Other"}),
            json!({"x": 1}),
            json!({"detail-type": events::DETAIL_TYPE}),
        ] {
            let report = handle(&deps, &options(), &bad, now).await;
            assert_eq!(report.errors.len(), 1, "{bad}: {:?}", report.errors);
        }
        // Every invocation published its RunErrors point: 0 for the event, 1 per bad input.
        let run_errors: Vec<f64> = metrics
            .published
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, d)| d.name == "RunErrors")
            .map(|(_, d)| d.value)
            .collect();
        assert_eq!(run_errors, [0.0, 1.0, 1.0, 1.0, 1.0]);
    }

    #[tokio::test]
    async fn an_unreadable_watch_list_is_an_error_never_a_score() {
        use ptc_core::watchlist::WatchListSource;
        let ecr = FakeEcr::with_rules(vec![PtcRule::new("quay", "quay.io").unwrap()]);
        let (objects, metrics) = (FakeObjects::default(), FakeMetrics::default());
        let deps = Deps {
            ecr: &ecr,
            objects: &objects,
            metrics: &metrics,
        };
        let mut options = options();
        options.watch_list = vec!["quay.io/a/b:1".into()];
        options.watch_list_source =
            Some(WatchListSource::parse("s3://bucket/missing.txt").unwrap());
        let report = run(&deps, &options, "test", OffsetDateTime::now_utc()).await;
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        assert_eq!(
            report.coverage.coverage_percent, None,
            "no score from a partial list"
        );
        let published = metrics.published.lock().unwrap();
        let names: Vec<&str> = published.iter().map(|(_, d)| d.name.as_str()).collect();
        assert!(!names.contains(&"WatchListCoverage"), "{names:?}");
        assert!(!names.contains(&"OutageExposedImages"), "{names:?}");
        let run_errors = published
            .iter()
            .find(|(_, d)| d.name == "RunErrors")
            .unwrap();
        assert_eq!(run_errors.1.value, 1.0);
        assert_eq!(
            run_errors.1.dimensions,
            [("Job".to_owned(), "health-metrics".to_owned())]
        );
    }
}
