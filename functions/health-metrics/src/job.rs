//! The health-metrics job: the inventory of every repository under a rule prefix, the
//! watch list's readiness against it, the metrics published.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt as _;
use ptc_core::ecr::{EcrApi, ImageDetail, Repository};
use ptc_core::error::AwsError;
use ptc_core::metrics::MetricsApi;
use ptc_core::objects::ObjectsApi;
use ptc_core::rules::RuleSet;
use ptc_core::watchlist::WatchEntry;
use time::OffsetDateTime;

use crate::deadline::{Deadline, rotated};
use crate::event::SyncEvent;
use crate::inventory::{self, PrefixInventory, RepositoryInventory};
use crate::options::Options;
use crate::readiness::{self, CacheView, WatchItem};
use crate::report::{Coverage, HealthReport, MAX_UNREAD_NAMED, Unread, metric_data, percent};

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
/// source could be read (a long list that could not be read, or not before the deadline, is
/// an error in `errors`).
async fn watch_list(
    deps: &Deps<'_>,
    options: &Options,
    deadline: Option<Deadline>,
    errors: &mut Vec<String>,
) -> (Vec<WatchEntry>, bool) {
    let mut inputs = options.watch_list.clone();
    let mut complete = true;
    if let Some(source) = &options.watch_list_source {
        let loaded = bounded(deadline, ptc_core::watchlist::load(deps.objects, source))
            .await
            .unwrap_or_else(|| {
                Err("the long watch list was not read before the invocation's deadline".into())
            });
        match loaded {
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

/// `work`, cut at the deadline's `finish_by` (`None` when it was cut); whole without one.
async fn bounded<T>(deadline: Option<Deadline>, work: impl Future<Output = T>) -> Option<T> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d.finish_by.into(), work).await.ok(),
        None => Some(work.await),
    }
}

/// The scheduled run without a deadline (`ptc health`): [`run_until`] with none.
pub async fn run(
    deps: &Deps<'_>,
    options: &Options,
    trigger: &str,
    now: OffsetDateTime,
) -> HealthReport {
    run_until(deps, options, trigger, now, None).await
}

/// The scheduled run: inventory, coverage, outage readiness, metrics.
///
/// Order: the rules, the repositories, the watch list; then the images of the repositories
/// the watch list routes to (what coverage and exposure need), the watch list's assessment,
/// and the images of every other repository under a rule prefix. Each group is read by
/// prefix then name, from the offset [`rotation`](crate::deadline::rotation) draws from
/// `now`. With a `deadline` (the Lambda's), no listing or assessment starts after its
/// `stop_at` and none runs past its `finish_by`; what was left is in the report's
/// [`Unread`] and one run-level error, the metrics whose inputs were not all read are
/// withheld (see [`metric_data`]), and the run is not a full run (no `FullRuns`). A deadline
/// that comes before the rules or the repositories are listed leaves only that error.
pub async fn run_until(
    deps: &Deps<'_>,
    options: &Options,
    trigger: &str,
    now: OffsetDateTime,
    deadline: Option<Deadline>,
) -> HealthReport {
    let mut report = HealthReport::empty(trigger, now);
    let rules = match bounded(deadline, deps.ecr.describe_rules()).await {
        Some(Ok(rules)) => RuleSet::new(rules),
        Some(Err(err)) => {
            report.errors.push(format!("cannot list the rules: {err}"));
            publish(deps, options, &mut report, true).await;
            return report;
        }
        None => return out_of_time(deps, options, report, "the rules were listed").await,
    };
    let repositories = match bounded(deadline, deps.ecr.describe_repositories()).await {
        Some(Ok(r)) => r,
        Some(Err(err)) => {
            report
                .errors
                .push(format!("cannot list repositories: {err}"));
            publish(deps, options, &mut report, true).await;
            return report;
        }
        None => return out_of_time(deps, options, report, "the repositories were listed").await,
    };
    let (entries, complete) = watch_list(deps, options, deadline, &mut report.errors).await;
    report.watch_list_complete = complete;
    let mut tally = Tally::new(&rules);
    let mut in_scope = Vec::new();
    for repo in repositories {
        match rules.rule_for_repository(&repo.name) {
            Some(rule) => in_scope.push((rule.prefix.to_string(), repo)),
            None => report.repositories_outside_prefixes += 1,
        }
    }
    in_scope.sort_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
    let watched: BTreeSet<String> = entries
        .iter()
        .filter_map(|e| e.reference.as_ref().ok())
        .filter_map(|r| rules.route(r).ok())
        .map(|c| c.repository)
        .collect();
    let (first, rest): (Vec<_>, Vec<_>) = in_scope
        .into_iter()
        .partition(|(_, repo)| watched.contains(&repo.name));
    let listed = list_images(deps, options, rotated(first, now), deadline).await;
    tally.add_all(listed, options, now, &mut report.errors);
    assess_watch_list(
        deps,
        options,
        &rules,
        &tally,
        entries,
        deadline,
        &mut report,
    )
    .await;
    let listed = list_images(deps, options, rotated(rest, now), deadline).await;
    tally.add_all(listed, options, now, &mut report.errors);
    tally.finish(options, &mut report);
    let full = report.unread.is_none();
    publish(deps, options, &mut report, full).await;
    report
}

/// A run whose deadline came before it could read anything: that error, `RunErrors`, no
/// heartbeat.
async fn out_of_time(
    deps: &Deps<'_>,
    options: &Options,
    mut report: HealthReport,
    before: &str,
) -> HealthReport {
    report.errors.push(format!(
        "the invocation's deadline came before {before}: nothing was read"
    ));
    publish(deps, options, &mut report, false).await;
    report
}

/// One repository's `DescribeImages` answer; `None` when the deadline left it unread.
type Listing = Option<Result<Vec<ImageDetail>, AwsError>>;

/// These repositories' images (every status), a bounded number of calls at a time, in the
/// given order; none started after the deadline's stop, none running past its `finish_by`.
async fn list_images(
    deps: &Deps<'_>,
    options: &Options,
    repositories: Vec<(String, Repository)>,
    deadline: Option<Deadline>,
) -> Vec<(String, Repository, Listing)> {
    futures::stream::iter(repositories)
        .map(|(prefix, repo)| async move {
            let images = if deadline.is_some_and(|d| d.stopped()) {
                None
            } else {
                bounded(deadline, deps.ecr.describe_images_any_status(&repo.name)).await
            };
            (prefix, repo, images)
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await
}

/// The inventory as it is read: figures per prefix, each repository's images (archived ones
/// included, each with its status), the repositories whose images could not be listed (with
/// why) and those the deadline left unread.
struct Tally {
    prefixes: BTreeMap<String, PrefixInventory>,
    images: BTreeMap<String, Vec<ImageDetail>>,
    unreadable: BTreeMap<String, String>,
    not_read: BTreeSet<String>,
    read: usize,
}

/// The reason of a watch-list entry whose repository the deadline left unread.
const NOT_READ: &str = "not read before the invocation's deadline";

impl Tally {
    fn new(rules: &RuleSet) -> Self {
        Self {
            prefixes: inventory::by_prefix(
                rules
                    .rules()
                    .iter()
                    .filter(|r| !r.prefix.is_root())
                    .map(|r| (r.prefix.to_string(), r.upstream_url.clone())),
            ),
            images: BTreeMap::new(),
            unreadable: BTreeMap::new(),
            not_read: BTreeSet::new(),
            read: 0,
        }
    }

    fn add_all(
        &mut self,
        listed: Vec<(String, Repository, Listing)>,
        options: &Options,
        now: OffsetDateTime,
        errors: &mut Vec<String>,
    ) {
        for (prefix, repo, images) in listed {
            let entry = self
                .prefixes
                .entry(prefix.clone())
                .or_insert_with(|| PrefixInventory::new(&prefix, ""));
            let Some(images) = images else {
                entry.not_read_repositories += 1;
                self.not_read.insert(repo.name.clone());
                continue;
            };
            self.read += 1;
            match images {
                Ok(images) => {
                    let figures = RepositoryInventory::of(&repo, &images, now, options.unused_days);
                    entry.add(&figures, now);
                    if options.per_repository {
                        entry.per_repository.push(figures);
                    }
                    self.images.insert(repo.name.clone(), images);
                }
                // Deleted since the listing: it is not in the cache any more, and that is no
                // failure of the run (its images are simply not there).
                Err(err) if err.is_repository_gone() => {}
                Err(err) => {
                    entry.unreadable_repositories += 1;
                    errors.push(format!(
                        "repository {}: cannot list images: {err}",
                        repo.name
                    ));
                    self.unreadable.insert(repo.name.clone(), err.to_string());
                }
            }
        }
    }

    /// What the watch list is assessed against: a repository left unread is unknown, as one
    /// that could not be read.
    fn unreadable_or_unread(&self) -> BTreeMap<String, String> {
        let mut out = self.unreadable.clone();
        out.extend(
            self.not_read
                .iter()
                .map(|r| (r.clone(), NOT_READ.to_owned())),
        );
        out
    }

    /// Price the prefixes, put them in the report with their warnings, and what the deadline
    /// left unread (with its run-level error).
    fn finish(self, options: &Options, report: &mut HealthReport) {
        let mut prefixes = self.prefixes;
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
        let unread = report.unread.get_or_insert_with(Unread::default);
        unread.repositories_read = self.read;
        unread.repositories = self.not_read.len();
        unread.repositories_named = self.not_read.into_iter().take(MAX_UNREAD_NAMED).collect();
        unread.prefixes = report
            .prefixes
            .iter()
            .filter(|p| !p.read_whole())
            .map(|p| p.prefix.clone())
            .collect();
        if unread.is_empty() {
            report.unread = None;
        } else {
            let error = unread.error();
            tracing::error!(error = %error, "partial run");
            report.errors.push(error);
        }
    }
}

/// The watch list against the cache: each entry's readiness, the coverage (known only when
/// the whole list could be read and every entry assessed), invalid entries as warnings, the
/// outage exposure per upstream. With a deadline, no assessment (its `BatchGetImage`) starts
/// after the stop or runs past `finish_by`; such an entry, and one whose repository was not
/// read, is `unknown` and counted in the report's [`Unread`].
async fn assess_watch_list(
    deps: &Deps<'_>,
    options: &Options,
    rules: &RuleSet,
    tally: &Tally,
    entries: Vec<WatchEntry>,
    deadline: Option<Deadline>,
    report: &mut HealthReport,
) {
    let unreadable = tally.unreadable_or_unread();
    let view = CacheView {
        images: &tally.images,
        unreadable: &unreadable,
    };
    let view = &view;
    let assessed: Vec<(WatchItem, bool)> = futures::stream::iter(entries)
        .map(|input| async move {
            let routable = input
                .reference
                .as_ref()
                .is_ok_and(|r| rules.route(r).is_ok());
            let item = if routable && deadline.is_some_and(|d| d.stopped()) {
                None
            } else {
                bounded(
                    deadline,
                    readiness::assess(deps.ecr, rules, view, &options.platforms, &input),
                )
                .await
            };
            match item {
                Some(item) => {
                    let whole = item
                        .repository
                        .as_ref()
                        .is_none_or(|r| !tally.not_read.contains(r));
                    (item, whole)
                }
                None => (not_assessed(rules, &input), false),
            }
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    let mut cut_prefixes = BTreeSet::new();
    let mut cut = 0;
    for (item, whole) in &assessed {
        if !whole {
            cut += 1;
            cut_prefixes.extend(item.prefix.clone());
        }
    }
    if cut > 0 {
        let unread = report.unread.get_or_insert_with(Unread::default);
        unread.watch_list_entries = cut;
        unread.watch_list_prefixes = cut_prefixes.into_iter().collect();
    }
    report.watch_list = assessed.into_iter().map(|(item, _)| item).collect();
    let valid: Vec<&WatchItem> = report
        .watch_list
        .iter()
        .filter(|i| i.state != readiness::Readiness::Invalid)
        .collect();
    let complete = report.watch_list_complete && cut == 0;
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

/// A routable watch-list entry the deadline left unassessed: `unknown`, with its repository,
/// prefix and upstream (so that its prefix's series are withheld).
fn not_assessed(rules: &RuleSet, entry: &WatchEntry) -> WatchItem {
    let cached = entry
        .reference
        .as_ref()
        .ok()
        .and_then(|r| rules.route(r).ok());
    let repository = cached.as_ref().map(|c| c.repository.clone());
    WatchItem {
        image: entry.input.clone(),
        upstream: repository
            .as_deref()
            .and_then(|r| rules.rule_for_repository(r))
            .map(|r| r.upstream_url.clone()),
        prefix: cached.as_ref().map(|c| c.prefix.to_string()),
        repository,
        state: readiness::Readiness::Unknown,
        reason: Some("not assessed before the invocation's deadline".into()),
        notes: Vec::new(),
    }
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

    /// FakeEcr with a latency on the image listings of some repositories: what makes a run
    /// meet its deadline. (`EcrApi` is an `async_trait`; its methods are written out here.)
    struct SlowEcr {
        inner: FakeEcr,
        slow: Vec<&'static str>,
        delay: std::time::Duration,
    }

    type Answer<'a, T> =
        std::pin::Pin<Box<dyn Future<Output = Result<T, ptc_core::AwsError>> + Send + 'a>>;

    impl EcrApi for SlowEcr {
        fn describe_rules<'l0, 'at>(&'l0 self) -> Answer<'at, Vec<PtcRule>>
        where
            'l0: 'at,
            Self: 'at,
        {
            self.inner.describe_rules()
        }
        fn validate_rule<'l0, 'l1, 'at>(
            &'l0 self,
            prefix: &'l1 str,
        ) -> Answer<'at, ptc_core::ecr::RuleValidation>
        where
            'l0: 'at,
            'l1: 'at,
            Self: 'at,
        {
            self.inner.validate_rule(prefix)
        }
        fn authorization_token<'l0, 'at>(&'l0 self) -> Answer<'at, ptc_core::ecr::RegistryToken>
        where
            'l0: 'at,
            Self: 'at,
        {
            self.inner.authorization_token()
        }
        fn describe_repositories<'l0, 'at>(&'l0 self) -> Answer<'at, Vec<Repository>>
        where
            'l0: 'at,
            Self: 'at,
        {
            self.inner.describe_repositories()
        }
        fn describe_repository<'l0, 'l1, 'at>(
            &'l0 self,
            name: &'l1 str,
        ) -> Answer<'at, Option<Repository>>
        where
            'l0: 'at,
            'l1: 'at,
            Self: 'at,
        {
            self.inner.describe_repository(name)
        }
        fn describe_images<'l0, 'l1, 'at>(
            &'l0 self,
            repository: &'l1 str,
        ) -> Answer<'at, Vec<ImageDetail>>
        where
            'l0: 'at,
            'l1: 'at,
            Self: 'at,
        {
            self.inner.describe_images(repository)
        }
        fn describe_images_any_status<'l0, 'l1, 'at>(
            &'l0 self,
            repository: &'l1 str,
        ) -> Answer<'at, Vec<ImageDetail>>
        where
            'l0: 'at,
            'l1: 'at,
            Self: 'at,
        {
            Box::pin(async move {
                if self.slow.contains(&repository) {
                    tokio::time::sleep(self.delay).await;
                }
                self.inner.describe_images_any_status(repository).await
            })
        }
        fn describe_image_ids<'l0, 'l1, 'l2, 'l3, 'at>(
            &'l0 self,
            repository: &'l1 str,
            tags: &'l2 [String],
            digests: &'l3 [String],
        ) -> Answer<'at, Vec<ImageDetail>>
        where
            'l0: 'at,
            'l1: 'at,
            'l2: 'at,
            'l3: 'at,
            Self: 'at,
        {
            self.inner.describe_image_ids(repository, tags, digests)
        }
        fn image_manifest<'l0, 'l1, 'l2, 'at>(
            &'l0 self,
            repository: &'l1 str,
            reference: &'l2 str,
        ) -> Answer<'at, Option<(String, String)>>
        where
            'l0: 'at,
            'l1: 'at,
            'l2: 'at,
            Self: 'at,
        {
            self.inner.image_manifest(repository, reference)
        }
        fn layer_availability<'l0, 'l1, 'l2, 'at>(
            &'l0 self,
            repository: &'l1 str,
            digests: &'l2 [String],
        ) -> Answer<'at, ptc_core::ecr::LayerAvailability>
        where
            'l0: 'at,
            'l1: 'at,
            'l2: 'at,
            Self: 'at,
        {
            self.inner.layer_availability(repository, digests)
        }
        fn pull_time_update_exclusions<'l0, 'at>(&'l0 self) -> Answer<'at, Vec<String>>
        where
            'l0: 'at,
            Self: 'at,
        {
            self.inner.pull_time_update_exclusions()
        }
    }

    /// Two prefixes: quay (`quay/a`, `quay/b`, each with one image) and k8s (`k8s/x`,
    /// `k8s/y`, slow to list); the watch list names quay's two images.
    fn two_prefixes(delay: std::time::Duration) -> SlowEcr {
        let inner = FakeEcr::with_rules(vec![
            PtcRule::new("quay", "quay.io").unwrap(),
            PtcRule::new("k8s", "registry.k8s.io").unwrap(),
        ]);
        {
            let mut s = inner.state.lock().unwrap();
            s.repositories = vec![repo("quay/a"), repo("quay/b"), repo("k8s/x"), repo("k8s/y")];
            s.images.insert("quay/a".into(), vec![image("v1", 100)]);
            s.images.insert("quay/b".into(), vec![image("v1", 200)]);
            s.images.insert("k8s/x".into(), vec![image("1", 300)]);
            s.images.insert("k8s/y".into(), vec![image("1", 400)]);
        }
        SlowEcr {
            inner,
            slow: vec!["k8s/x", "k8s/y"],
            delay,
        }
    }

    /// A published data point: name, dimensions (name, value), value.
    type Point = (String, Vec<(String, String)>, f64);

    fn names(metrics: &FakeMetrics) -> Vec<Point> {
        metrics
            .published
            .lock()
            .unwrap()
            .iter()
            .map(|(_, d)| (d.name.clone(), d.dimensions.clone(), d.value))
            .collect()
    }

    /// A listing still running at `finish_by` is cut, none starts after `stop_at`; the run
    /// answers by `finish_by`, publishes the prefix it read whole (inventory, coverage, the
    /// totals: every watch-list entry was assessed) and nothing of the other, with one
    /// run-level error and no heartbeat.
    #[tokio::test]
    async fn a_listing_past_the_deadline_is_cut_and_only_what_was_read_whole_is_published() {
        let ecr = two_prefixes(std::time::Duration::from_secs(30));
        let (objects, metrics) = (FakeObjects::default(), FakeMetrics::default());
        let deps = Deps {
            ecr: &ecr,
            objects: &objects,
            metrics: &metrics,
        };
        let mut options = options();
        options.concurrency = 1;
        options.watch_list = vec!["quay.io/a:v1".into(), "quay.io/b:v2".into()];
        let start = std::time::Instant::now();
        let deadline = Deadline {
            stop_at: start + std::time::Duration::from_millis(300),
            finish_by: start + std::time::Duration::from_millis(600),
        };
        let report = run_until(
            &deps,
            &options,
            "test",
            OffsetDateTime::now_utc(),
            Some(deadline),
        )
        .await;
        let took = start.elapsed();
        assert!(
            took < std::time::Duration::from_secs(2),
            "cut at finish_by, not after the 30 s listing: {took:?}"
        );
        let unread = report.unread.clone().expect("a partial run says so");
        assert_eq!(
            (unread.repositories_read, unread.repositories),
            (2, 2),
            "{unread:?}"
        );
        assert_eq!(unread.repositories_named, ["k8s/x", "k8s/y"]);
        assert_eq!(unread.prefixes, ["k8s"]);
        assert_eq!(unread.watch_list_entries, 0, "quay's entries were assessed");
        assert_eq!(
            ecr.inner.calls("DescribeImages"),
            2,
            "one slow listing started (and was cut), the other never: only quay's reached the fake"
        );
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        assert!(report.errors[0].contains("2 of 4 repositories not read"));
        assert_eq!(report.coverage.coverage_percent, Some(50.0));
        let published = names(&metrics);
        let has = |name: &str, prefix: Option<&str>| {
            published.iter().any(|(n, d, _)| {
                n == name
                    && match prefix {
                        Some(p) => d == &[("Prefix".to_owned(), p.to_owned())],
                        None => d.is_empty(),
                    }
            })
        };
        for name in ["Repositories", "Images", "StoredBytes", "WatchListCoverage"] {
            assert!(has(name, Some("quay")), "{name} for quay: {published:?}");
        }
        for name in ["Repositories", "Images", "StoredBytes", "ImagesNotPulled"] {
            assert!(!has(name, Some("k8s")), "{name} for k8s: {published:?}");
        }
        assert!(has("WatchListCoverage", None), "{published:?}");
        assert!(has("OutageExposedImages", None), "{published:?}");
        let value = |name: &str| {
            published
                .iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, _, v)| *v)
        };
        assert_eq!(value("RunErrors"), Some(1.0));
        assert_eq!(value("FullRuns"), None, "a partial run is not a full run");
    }

    /// A deadline whose stop has passed when the run starts: the two listings it begins with
    /// still run (bounded by `finish_by`), no image listing starts, every watch-list entry is
    /// `unknown`, and nothing is published from missing data: no figure per prefix, no
    /// coverage, no totals; RunErrors 1 and no FullRuns.
    #[tokio::test]
    async fn a_run_past_its_stop_publishes_no_score_from_missing_data() {
        let ecr = two_prefixes(std::time::Duration::ZERO);
        let (objects, metrics) = (FakeObjects::default(), FakeMetrics::default());
        let deps = Deps {
            ecr: &ecr,
            objects: &objects,
            metrics: &metrics,
        };
        let now = std::time::Instant::now();
        let deadline = Deadline {
            stop_at: now,
            finish_by: now + std::time::Duration::from_secs(5),
        };
        let report = run_until(
            &deps,
            &options(),
            "test",
            OffsetDateTime::now_utc(),
            Some(deadline),
        )
        .await;
        assert_eq!(ecr.inner.calls("DescribeImages"), 0);
        assert_eq!(ecr.inner.calls("DescribeRepositories"), 1);
        let unread = report.unread.clone().unwrap();
        assert_eq!((unread.repositories_read, unread.repositories), (0, 4));
        assert_eq!(unread.prefixes, ["k8s", "quay"]);
        assert_eq!(unread.watch_list_entries, 2, "the two valid entries");
        assert_eq!(unread.watch_list_prefixes, ["quay"]);
        assert_eq!(report.coverage.coverage_percent, None);
        assert!(
            report
                .watch_list
                .iter()
                .filter(|i| i.state != readiness::Readiness::Invalid)
                .all(|i| i.state == readiness::Readiness::Unknown
                    && i.reason.as_deref().unwrap().contains("deadline")),
            "{:?}",
            report.watch_list
        );
        assert_eq!(report.coverage.invalid, 1, "an invalid entry needs no read");
        let published: Vec<String> = names(&metrics).into_iter().map(|(n, _, _)| n).collect();
        assert_eq!(published, ["RunErrors"], "nothing from missing data");
        assert_eq!(metrics.published.lock().unwrap()[0].1.value, 1.0);
    }

    /// Without a deadline (`ptc health`, [`run`]) the same registry is read whole: a full run.
    #[tokio::test]
    async fn without_a_deadline_the_run_reads_everything() {
        let ecr = two_prefixes(std::time::Duration::from_millis(50));
        let (objects, metrics) = (FakeObjects::default(), FakeMetrics::default());
        let deps = Deps {
            ecr: &ecr,
            objects: &objects,
            metrics: &metrics,
        };
        let report = run(&deps, &options(), "test", OffsetDateTime::now_utc()).await;
        assert_eq!(report.unread, None);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(ecr.inner.calls("DescribeImages"), 4);
        let published = names(&metrics);
        assert!(
            published
                .iter()
                .any(|(n, _, v)| n == "FullRuns" && *v == 1.0)
        );
    }
}
