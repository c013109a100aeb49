//! What a health-metrics run is configured with ([`Options`]), from the settings.

use ptc_core::Settings;
use ptc_core::platform::Platform;
use ptc_core::watchlist::WatchListSource;

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
