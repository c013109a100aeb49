//! What a prewarm run is configured with ([`Options`]), from the settings.

use std::sync::Arc;
use std::time::Instant;

use ptc_core::Settings;
use ptc_core::config::PrewarmMode;
use ptc_core::platform::Platform;
use ptc_core::watchlist::WatchListSource;

use crate::report::ImageResult;

pub type Progress = Arc<dyn Fn(&ImageResult) + Send + Sync>;

#[derive(Clone)]
pub struct Options {
    pub namespace: String,
    pub platforms: Vec<Platform>,
    pub mode: PrewarmMode,
    pub ratelimit_floor: u64,
    pub concurrency: usize,
    pub discovery_days: u32,
    pub settings_watch_list: Vec<String>,
    pub watch_list_source: Option<WatchListSource>,
    pub dry_run: bool,
    pub publish_metrics: bool,
    /// Stop starting new images after this instant.
    pub stop_at: Option<Instant>,
    pub progress: Option<Progress>,
}

impl Options {
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
            dry_run: false,
            publish_metrics: true,
            stop_at: None,
            progress: None,
        }
    }
}
