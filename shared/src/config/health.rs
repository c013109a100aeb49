//! The `health` section: health-metrics' inventory (storage price, what counts as unused,
//! per-repository metrics).

use serde::Serialize;

use super::ConfigError;
use super::source::{FileSettings, Source, invalid};

/// health-metrics' inventory settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthSettings {
    /// `PTC_STORAGE_PRICE_GB_MONTH` (0-1000, default 0.10): USD per GB-month of stored images
    /// (the published ECR price is 0.10).
    pub storage_price_per_gb_month: f64,
    /// `PTC_UNUSED_DAYS` (1-3650, default 30): an image not pulled for this many days counts as
    /// unused.
    pub unused_days: u32,
    /// `PTC_METRICS_PER_REPOSITORY` (file `metrics_per_repository`; `true` or `false`):
    /// also publish inventory metrics per repository (each repository is then a billed
    /// custom metric per metric name); default per prefix only.
    pub per_repository: bool,
}

/// `PTC_STORAGE_PRICE_GB_MONTH` (USD, 0-1000, default 0.10), `PTC_UNUSED_DAYS` (1-3650,
/// default 30), `PTC_METRICS_PER_REPOSITORY` (`true`/`false`).
pub(super) fn load(src: &Source, file: &mut FileSettings) -> Result<HealthSettings, ConfigError> {
    let price = match src.var("PTC_STORAGE_PRICE_GB_MONTH") {
        Some(v) => v
            .trim()
            .parse::<f64>()
            .map_err(|_| invalid("PTC_STORAGE_PRICE_GB_MONTH", &v, "expected a number of USD"))?,
        None => file.storage_price_per_gb_month.unwrap_or(0.10),
    };
    if !(price.is_finite() && (0.0..=1000.0).contains(&price)) {
        return Err(invalid(
            "PTC_STORAGE_PRICE_GB_MONTH",
            &price.to_string(),
            "must be between 0 and 1000",
        ));
    }
    let unused_days = src.number(
        "PTC_UNUSED_DAYS",
        file.unused_days.map(u64::from),
        30,
        1..=3650,
    )? as u32;
    let per_repository = src.flag("PTC_METRICS_PER_REPOSITORY", file.metrics_per_repository)?;
    Ok(HealthSettings {
        storage_price_per_gb_month: price,
        unused_days,
        per_repository,
    })
}
