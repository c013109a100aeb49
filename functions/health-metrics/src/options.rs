//! What a health-metrics run is configured with ([`Options`]), from the settings.

use ptc_core::Settings;
use ptc_core::platform::Platform;
use ptc_core::watchlist::WatchListSource;

/// How a health-metrics run goes. Built by [`Options::from_settings`]; `ptc health` then
/// sets `publish_metrics` from `--no-metrics` and turns `per_repository` on with
/// `--per-repository`.
#[derive(Debug, Clone)]
pub struct Options {
    /// CloudWatch namespace of every data point of the run (`PTC_METRICS_NAMESPACE`,
    /// default `ECRPullThroughCache`).
    pub namespace: String,
    /// The platforms a cached multi-platform image must hold to be ready (`PTC_PLATFORMS`,
    /// `OS/ARCH[/VARIANT]` items, default `linux/amd64` and `linux/arm64`), the same list
    /// prewarm pulls. A platform the image is not published for is a note, not a miss.
    pub platforms: Vec<Platform>,
    /// How many `DescribeImages` listings (inventory) and watch-list assessments run at
    /// once (`PTC_CONCURRENCY`, 1-256, default 16; 0 is taken as 1).
    pub concurrency: usize,
    /// USD per GB-month (GiB, 2^30 bytes) used for `EstimatedMonthlyStorageCostUSD`
    /// (`PTC_STORAGE_PRICE_GB_MONTH`, 0-1000, default 0.10, the published ECR price).
    pub price_per_gb_month: f64,
    /// USD per GB-month (GiB) of images in the archive storage class, used for
    /// `EstimatedMonthlyArchiveStorageCostUSD` (`PTC_ARCHIVE_STORAGE_PRICE_GB_MONTH`, 0-1000,
    /// default 0.10: ECR's archive price for the first 150 TB a month, $0.07 above,
    /// <https://aws.amazon.com/ecr/pricing/>; see
    /// [`ptc_core::config::health::DEFAULT_ARCHIVE_PRICE_GB_MONTH`]).
    pub archive_price_per_gb_month: f64,
    /// An image whose last recorded pull (or push, if never pulled) is more than this many
    /// days old counts in `ImagesNotPulled` (`PTC_UNUSED_DAYS`, 1-3650, default 30).
    pub unused_days: u32,
    /// Also publish inventory metrics per repository (billed per repository):
    /// `PTC_METRICS_PER_REPOSITORY` (`true`/`false`, default false) or `ptc health
    /// --per-repository`. Each repository then adds `Images`, `StoredBytes` and
    /// `ImagesNotPulled` series with `Prefix` and `Repository` dimensions, and the report
    /// lists the repositories.
    pub per_repository: bool,
    /// The settings' watch list (`PTC_WATCH_LIST`, or the file's `watch_list`), assessed
    /// against the cache.
    pub watch_list: Vec<String>,
    /// The long watch list (`PTC_WATCH_LIST_URL`: `s3://BUCKET/KEY`, `file:///PATH` or a
    /// path), read each run after the settings' list. Unreadable: a run-level error, and no
    /// coverage or exposure is published.
    pub watch_list_source: Option<WatchListSource>,
    /// Publish the run's CloudWatch data (always true from the settings; `ptc health
    /// --no-metrics` turns it off). Off, not even `RunErrors` is published.
    pub publish_metrics: bool,
}

impl Options {
    /// The options from the loaded settings, with metrics on.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            namespace: settings.metrics_namespace.clone(),
            platforms: settings.platforms.clone(),
            concurrency: settings.concurrency,
            price_per_gb_month: settings.health.storage_price_per_gb_month,
            archive_price_per_gb_month: settings.health.archive_storage_price_per_gb_month,
            unused_days: settings.health.unused_days,
            per_repository: settings.health.per_repository,
            watch_list: settings.watch_list.clone(),
            watch_list_source: settings.watch_list_source.clone(),
            publish_metrics: true,
        }
    }
}
