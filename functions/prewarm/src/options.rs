//! What a prewarm run is configured with ([`Options`]), from the settings.

use std::sync::Arc;
use std::time::Instant;

use ptc_core::Settings;
use ptc_core::config::PrewarmMode;
use ptc_core::platform::Platform;
use ptc_core::watchlist::WatchListSource;

use crate::report::ImageResult;

/// A callback run with each image's result as soon as that image is done (in the order the
/// images finish, on the run's own task); `ptc prewarm` ticks its spinner with it. It
/// should return quickly: the run waits for it.
pub type Progress = Arc<dyn Fn(&ImageResult) + Send + Sync>;

/// How a prewarm run goes. Built by [`Options::from_settings`]; `ptc prewarm` then sets
/// `dry_run`, `publish_metrics`, `mode` and `progress` from its flags, and the Lambda sets
/// `stop_at` from each invocation's deadline.
#[derive(Clone)]
pub struct Options {
    /// CloudWatch namespace of every data point of the run (`PTC_METRICS_NAMESPACE`,
    /// default `ECRPullThroughCache`).
    pub namespace: String,
    /// The platforms pulled from a multi-platform image (`PTC_PLATFORMS`, `OS/ARCH[/VARIANT]`
    /// items, default `linux/amd64` and `linux/arm64`, at least one). A platform the index
    /// does not list fails the image; a single-platform image is pulled as it is.
    pub platforms: Vec<Platform>,
    /// What a pull fetches (`PTC_PREWARM_MODE` or `ptc prewarm --mode`): `layers` (default)
    /// fetches the config and every layer blob of each platform, `manifests` the manifests
    /// only.
    pub mode: PrewarmMode,
    /// The smallest upstream `ratelimit-remaining` this run pulls at (`PTC_RATELIMIT_FLOOR`,
    /// 0-100000, default 10). Below it, or on a rate-limited answer, the image and every
    /// later image of the same upstream are deferred. An upstream that sends no rate-limit
    /// header is never deferred by this.
    pub ratelimit_floor: u64,
    /// How many images are warmed at once, and how many repositories discovery reads at
    /// once (`PTC_CONCURRENCY`, 1-256, default 16; 0 is taken as 1).
    pub concurrency: usize,
    /// Also warm every tag of the images pulled within this many days from the repositories
    /// under a rule prefix (not those matched only by a `ROOT` rule) (`PTC_DISCOVERY_DAYS`,
    /// 0-365, default 7; 0 turns discovery off).
    pub discovery_days: u32,
    /// The settings' watch list (`PTC_WATCH_LIST`, references separated by commas,
    /// whitespace or newlines, or the file's `watch_list`), merged after the payload's images.
    pub settings_watch_list: Vec<String>,
    /// The long watch list (`PTC_WATCH_LIST_URL`: `s3://BUCKET/KEY`, `file:///PATH` or a
    /// path), read at the start of every run, merged after the settings' list. Unreadable:
    /// a run-level error, and the other sources still run.
    pub watch_list_source: Option<WatchListSource>,
    /// Where the run remembers the manifests it verified (`PTC_PREWARM_STATE_URL`; see
    /// [`crate::memory`]): `None`, nothing is remembered and every image's manifests are
    /// pulled each run. `ptc prewarm` defaults it to a file in the user's cache directory.
    pub state: Option<WatchListSource>,
    /// Whether saving the state forgets the manifests no entry of the run used (true from
    /// the settings: the Lambda's list is the whole list; `ptc prewarm` sets it false, as an
    /// operator's list may be another, and the state may be the Lambda's).
    pub forget_unused: bool,
    /// Read the sources and route every entry, report each routable one as `planned`, call
    /// no upstream, pull nothing and publish no metric (`ptc prewarm --dry-run`; always
    /// false from the settings).
    pub dry_run: bool,
    /// Publish the run's CloudWatch data (always true from the settings; `ptc prewarm
    /// --no-metrics` turns it off). Off, not even `RunErrors` is published.
    pub publish_metrics: bool,
    /// Stop starting new images after this instant: later images are `deferred`, the ones
    /// in flight finish. The Lambda sets it 10% of the invocation's time left before the
    /// deadline (at least 5 s, at most 60 s); `None` (the CLI): no deadline.
    pub stop_at: Option<Instant>,
    /// Work in flight must end by this instant: an image still pulling then (a large layer on
    /// a slow link) is cut and `deferred`, so that the report, the state and the metrics are
    /// written before the Lambda is killed. The Lambda sets it half of the `stop_at` margin
    /// before its deadline; `None` (the CLI): no limit.
    pub finish_by: Option<Instant>,
    /// Called with each image's result when it is done; `None` from the settings.
    pub progress: Option<Progress>,
}

impl Options {
    /// The options from the loaded settings: metrics on, no dry run, no deadline, no
    /// progress callback.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            namespace: settings.metrics_namespace.clone(),
            platforms: settings.platforms.clone(),
            mode: settings.prewarm_mode,
            ratelimit_floor: settings.ratelimit_floor,
            concurrency: settings.concurrency,
            discovery_days: settings.discovery_days,
            settings_watch_list: settings.watch_list.clone(),
            watch_list_source: settings.watch_list_source.clone(),
            state: settings.prewarm_state.clone(),
            forget_unused: true,
            dry_run: false,
            publish_metrics: true,
            stop_at: None,
            finish_by: None,
            progress: None,
        }
    }
}
