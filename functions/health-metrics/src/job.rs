//! The health-metrics job: the inventory of every repository under a rule prefix, the
//! watch list's readiness against it, the metrics published.

use std::collections::BTreeMap;

use futures::StreamExt as _;
use ptc_core::ecr::{EcrApi, ImageDetail, Repository};
use ptc_core::metrics::MetricsApi;
use ptc_core::objects::ObjectsApi;
use ptc_core::rules::RuleSet;
use ptc_core::watchlist::WatchEntry;
use time::OffsetDateTime;

use crate::event::SyncEvent;
use crate::inventory::{self, PrefixInventory, RepositoryInventory};
use crate::options::Options;
use crate::readiness::{self, CacheView, WatchItem};
use crate::report::{Coverage, HealthReport, metric_data, percent};

/// The ports a run uses. Nothing here writes to ECR or S3.
pub struct Deps<'a> {
    /// ECR reads: `DescribePullThroughCacheRules`, `DescribeRepositories` and
    /// `DescribeImages` (every page, every image status: archived images are counted and
    /// priced apart) for the inventory, and `BatchGetImage` for each cached index on the
    /// watch list (its platforms).
    pub ecr: &'a dyn EcrApi,
    /// Reads the long watch list from S3 (`GetObject`) when `PTC_WATCH_LIST_URL` is an
    /// `s3://` URL.
    pub objects: &'a dyn ObjectsApi,
    /// Where the run's data points go: `PutMetricData`, or Embedded Metric Format log
    /// lines (`PTC_METRICS_SINK`).
    pub metrics: &'a dyn MetricsApi,
}

/// The watch list from the settings and the long list, de-duplicated on the normalised
/// reference (entries that do not parse are kept once, to be reported), and whether every
/// source could be read (a long list that could not be read is an error in `errors`).
async fn watch_list(
    deps: &Deps<'_>,
    options: &Options,
    errors: &mut Vec<String>,
) -> (Vec<WatchEntry>, bool) {
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
    let (images_by_repo, unreadable) =
        take_inventory(deps, options, &rules, repositories, now, &mut report).await;
    let view = CacheView {
        images: &images_by_repo,
        unreadable: &unreadable,
    };
    assess_watch_list(deps, options, &rules, &view, &mut report).await;
    publish(deps, options, &mut report, true).await;
    report
}

/// The inventory: every repository under a rule prefix and its images of every status (a
/// bounded number of calls at a time), figures per prefix (active and archived images priced
/// apart), and what could not be read. Returns each repository's images, archived ones
/// included (each with its status), and the repositories whose images could not be listed
/// (with why).
async fn take_inventory(
    deps: &Deps<'_>,
    options: &Options,
    rules: &RuleSet,
    repositories: Vec<Repository>,
    now: OffsetDateTime,
    report: &mut HealthReport,
) -> (BTreeMap<String, Vec<ImageDetail>>, BTreeMap<String, String>) {
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
            let images = deps.ecr.describe_images_any_status(&repo.name).await;
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
        p.price(
            options.price_per_gb_month,
            options.archive_price_per_gb_month,
        );
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
    (images_by_repo, unreadable)
}

/// The watch list against the cache: each entry's readiness, the coverage (known only when
/// the whole list could be read), invalid entries as warnings, the outage exposure per
/// upstream.
async fn assess_watch_list(
    deps: &Deps<'_>,
    options: &Options,
    rules: &RuleSet,
    view: &CacheView<'_>,
    report: &mut HealthReport,
) {
    let (entries, complete) = watch_list(deps, options, &mut report.errors).await;
    report.watch_list_complete = complete;
    report.watch_list = futures::stream::iter(entries)
        .map(|input| async move {
            readiness::assess(deps.ecr, rules, view, &options.platforms, &input).await
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
}

/// Publish the report's metrics and the run's `RunErrors` point (every path, early returns
/// and rejected events included).
/// `full` for an inventory run (the heartbeat); events are not.
pub(crate) async fn publish(
    deps: &Deps<'_>,
    options: &Options,
    report: &mut HealthReport,
    full: bool,
) {
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

/// A pull-through cache sync event: its counts, published (a failed sync is logged).
pub(crate) async fn sync_event(
    deps: &Deps<'_>,
    options: &Options,
    sync: SyncEvent,
    now: OffsetDateTime,
) -> HealthReport {
    let mut report = HealthReport::empty("pull-through cache sync event", now);
    if !sync.success {
        tracing::warn!(prefix = %sync.prefix, repository = %sync.repository, code = ?sync.failure_code, "pull-through cache sync failed");
    }
    report.sync_events.push(sync);
    publish(deps, options, &mut report, false).await;
    report
}

pub(crate) async fn rejected(
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
    use ptc_core::fakes::FakeEcr;
    use ptc_core::fakes::FakeMetrics;
    use ptc_core::fakes::FakeObjects;
    use ptc_core::rules::PtcRule;
    use serde_json::json;

    use super::*;
    use ptc_core::ecr::ImageStatus;
    use ptc_core::metrics::Unit;
    use ptc_core::platform::Platform;

    use crate::event;
    use crate::handle;

    use ptc_tests::fixtures::repository as repo;

    fn options() -> Options {
        Options {
            namespace: "Test".into(),
            platforms: vec![Platform::parse("linux/amd64").unwrap()],
            concurrency: 4,
            price_per_gb_month: 0.10,
            archive_price_per_gb_month: 0.07,
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
            status: ImageStatus::Active,
            last_archived_at: None,
            last_activated_at: None,
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

    /// An archived image: listed (every status is asked for), counted, sized and priced apart
    /// from the active ones, published as its own metrics, and never cached nor ready.
    #[tokio::test]
    async fn an_archived_image_is_counted_and_priced_apart_and_never_ready() {
        let ecr = FakeEcr::with_rules(vec![PtcRule::new("quay", "quay.io").unwrap()]);
        let gib = 1024 * 1024 * 1024;
        {
            let mut s = ecr.state.lock().unwrap();
            s.repositories = vec![repo("quay/a"), repo("quay/b")];
            s.images.insert("quay/a".into(), vec![image("v1", 2 * gib)]);
            let mut archived = image("v1", 10 * gib);
            archived.status = ImageStatus::Archived;
            s.images.insert("quay/b".into(), vec![archived]);
        }
        let (objects, metrics) = (FakeObjects::default(), FakeMetrics::default());
        let deps = Deps {
            ecr: &ecr,
            objects: &objects,
            metrics: &metrics,
        };
        let report = run(&deps, &options(), "test", OffsetDateTime::now_utc()).await;
        let quay = &report.prefixes[0];
        assert_eq!((quay.images, quay.stored_bytes), (1, 2 * gib as u64));
        assert_eq!(
            (quay.archived_images, quay.archived_bytes),
            (1, 10 * gib as u64)
        );
        assert_eq!(quay.estimated_monthly_cost_usd, 0.2, "2 GiB at $0.10");
        assert_eq!(
            quay.estimated_monthly_archive_cost_usd, 0.7,
            "10 GiB at the archive price, $0.07"
        );
        let b = report
            .watch_list
            .iter()
            .find(|i| i.image == "quay.io/b:v1")
            .unwrap();
        assert_eq!(b.state, readiness::Readiness::Archived, "{b:?}");
        assert_eq!(
            (report.coverage.cached, report.coverage.ready),
            (1, 1),
            "only quay.io/a:v1"
        );
        let published = metrics.published.lock().unwrap();
        let value = |name: &str| {
            published
                .iter()
                .find(|(_, d)| d.name == name && d.dimensions.iter().any(|(_, v)| v == "quay"))
                .map(|(_, d)| (d.value, d.unit))
        };
        assert_eq!(value("ArchivedImages"), Some((1.0, Unit::Count)));
        assert_eq!(
            value("ArchivedBytes"),
            Some(((10 * gib) as f64, Unit::Bytes))
        );
        assert_eq!(
            value("EstimatedMonthlyArchiveStorageCostUSD"),
            Some((0.7, Unit::None))
        );
        assert_eq!(value("StoredBytes"), Some(((2 * gib) as f64, Unit::Bytes)));
        assert_eq!(value("OutageExposedImages"), Some((1.0, Unit::Count)));
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
            json!({"detail-type": event::DETAIL_TYPE}),
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
