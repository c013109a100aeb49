//! The `health` section: health-metrics' inventory (storage prices, what counts as unused,
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
    /// `PTC_ARCHIVE_STORAGE_PRICE_GB_MONTH` (file `archive_storage_price_per_gb_month`,
    /// 0-1000, default [`DEFAULT_ARCHIVE_PRICE_GB_MONTH`]): USD per GB-month of images in the
    /// archive storage class.
    pub archive_storage_price_per_gb_month: f64,
    /// `PTC_UNUSED_DAYS` (1-3650, default 30): an image not pulled for this many days counts as
    /// unused.
    pub unused_days: u32,
    /// `PTC_METRICS_PER_REPOSITORY` (file `metrics_per_repository`; `true` or `false`):
    /// also publish inventory metrics per repository (each repository is then a billed
    /// custom metric per metric name); default per prefix only.
    pub per_repository: bool,
}

/// The default archive storage price, USD per GB-month: ECR's archive storage class costs
/// $0.10 per GB-month for the first 150 TB a month and $0.07 above, the same as standard
/// storage below 150 TB (Amazon ECR pricing, <https://aws.amazon.com/ecr/pricing/>, as quoted
/// for us-east-1 in March 2026 by
/// <https://hub.pointfive.co/inefficiencies/ecr-archive-storage-class-used-below-150-tb-threshold>;
/// the pricing page itself could not be read here). The 150 TB tier is the account's, not a prefix's, so one
/// flat price is used; set `PTC_ARCHIVE_STORAGE_PRICE_GB_MONTH` for another region or tier.
pub const DEFAULT_ARCHIVE_PRICE_GB_MONTH: f64 = 0.10;

/// `PTC_STORAGE_PRICE_GB_MONTH` (USD, 0-1000, default 0.10),
/// `PTC_ARCHIVE_STORAGE_PRICE_GB_MONTH` (USD, 0-1000, default
/// [`DEFAULT_ARCHIVE_PRICE_GB_MONTH`]), `PTC_UNUSED_DAYS` (1-3650, default 30),
/// `PTC_METRICS_PER_REPOSITORY` (`true`/`false`).
pub(super) fn load(src: &Source, file: &mut FileSettings) -> Result<HealthSettings, ConfigError> {
    let price = usd_per_gb_month(
        src,
        "PTC_STORAGE_PRICE_GB_MONTH",
        file.storage_price_per_gb_month.unwrap_or(0.10),
    )?;
    let archive_price = usd_per_gb_month(
        src,
        "PTC_ARCHIVE_STORAGE_PRICE_GB_MONTH",
        file.archive_storage_price_per_gb_month
            .unwrap_or(DEFAULT_ARCHIVE_PRICE_GB_MONTH),
    )?;
    let unused_days = src.number(
        "PTC_UNUSED_DAYS",
        file.unused_days.map(u64::from),
        30,
        1..=3650,
    )? as u32;
    let per_repository = src.flag("PTC_METRICS_PER_REPOSITORY", file.metrics_per_repository)?;
    Ok(HealthSettings {
        storage_price_per_gb_month: price,
        archive_storage_price_per_gb_month: archive_price,
        unused_days,
        per_repository,
    })
}

/// A price in USD per GB-month from the variable `name`, else `default` (the file's value or
/// the built-in one): a finite number from 0 to 1000.
fn usd_per_gb_month(src: &Source, name: &str, default: f64) -> Result<f64, ConfigError> {
    let price = match src.var(name) {
        Some(v) => v
            .trim()
            .parse::<f64>()
            .map_err(|_| invalid(name, &v, "expected a number of USD"))?,
        None => default,
    };
    if !(price.is_finite() && (0.0..=1000.0).contains(&price)) {
        return Err(invalid(
            name,
            &price.to_string(),
            "must be between 0 and 1000",
        ));
    }
    Ok(price)
}

#[cfg(test)]
mod tests {
    use super::super::Settings;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, super::ConfigError> {
        Settings::from_sources(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_archive_price_is_its_own_setting() {
        let s = load(&[]).unwrap();
        assert_eq!(s.health.archive_storage_price_per_gb_month, 0.10);
        let s = load(&[
            ("PTC_STORAGE_PRICE_GB_MONTH", "0.12"),
            ("PTC_ARCHIVE_STORAGE_PRICE_GB_MONTH", "0.07"),
        ])
        .unwrap();
        assert_eq!(
            (
                s.health.storage_price_per_gb_month,
                s.health.archive_storage_price_per_gb_month
            ),
            (0.12, 0.07)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ptc.toml");
        std::fs::write(&path, "archive_storage_price_per_gb_month = 0.05\n").unwrap();
        let s = load(&[("PTC_CONFIG_FILE", path.to_str().unwrap())]).unwrap();
        assert_eq!(s.health.archive_storage_price_per_gb_month, 0.05);
        for value in ["NaN", "-1", "1001", "seven cents"] {
            let err = load(&[("PTC_ARCHIVE_STORAGE_PRICE_GB_MONTH", value)])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("PTC_ARCHIVE_STORAGE_PRICE_GB_MONTH"),
                "{value} -> {err}"
            );
        }
    }
}
