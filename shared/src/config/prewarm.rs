//! The `prewarm` section: what prewarm pulls through the cache (the watch list, inline and
//! long), for which platforms, how hard (concurrency, the upstream rate-limit floor) and how
//! far (manifests or layers, discovery of recently pulled tags).

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::source::{FileSettings, Source, invalid, split_list};
use crate::platform::Platform;
use crate::watchlist::WatchListSource;

/// `layers` (default) makes every request a real pull makes, so the cache holds the layers
/// even if a manifest pull alone does not import them (unconfirmed by AWS); `manifests`
/// refreshes tags at a fraction of the transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrewarmMode {
    /// `manifests`: the manifests only, no blob: refreshes tags at a fraction of the transfer.
    Manifests,
    /// `layers` (default): every request a real pull makes, blobs included.
    Layers,
}

impl PrewarmMode {
    /// The setting's names (`PTC_PREWARM_MODE`, `ptc prewarm --mode`).
    pub const CHOICES: [(&'static str, Self); 2] =
        [("layers", Self::Layers), ("manifests", Self::Manifests)];
}

/// What [`load`] reads.
pub(super) struct PrewarmSection {
    pub watch_list: Vec<String>,
    pub platforms: Vec<Platform>,
    pub concurrency: usize,
    pub prewarm_mode: PrewarmMode,
    pub ratelimit_floor: u64,
    pub discovery_days: u32,
    pub watch_list_source: Option<WatchListSource>,
    pub prewarm_state: Option<WatchListSource>,
}

/// `PTC_WATCH_LIST` (references), `PTC_PLATFORMS` (`OS/ARCH[/VARIANT]` items, default
/// `linux/amd64 linux/arm64`, at least one), `PTC_CONCURRENCY` (1-256, default 16),
/// `PTC_PREWARM_MODE` (`layers` or `manifests`), `PTC_RATELIMIT_FLOOR` (0-100000, default 10),
/// `PTC_DISCOVERY_DAYS` (0-365, default 7; 0 is off), `PTC_WATCH_LIST_URL` (`s3://BUCKET/KEY`,
/// `file:///PATH` or a path).
pub(super) fn load(src: &Source, file: &mut FileSettings) -> Result<PrewarmSection, ConfigError> {
    let watch_list = match src.var("PTC_WATCH_LIST") {
        Some(value) => split_list(&value).map(str::to_owned).collect(),
        None => std::mem::take(&mut file.watch_list),
    };

    let platforms = match src.var("PTC_PLATFORMS") {
        Some(value) => split_list(&value)
            .map(|p| Platform::parse(p).map_err(|r| invalid("PTC_PLATFORMS", p, r)))
            .collect::<Result<Vec<_>, _>>()?,
        None => file
            .platforms
            .take()
            .unwrap_or_else(|| vec!["linux/amd64".into(), "linux/arm64".into()])
            .iter()
            .map(|p| Platform::parse(p).map_err(|r| src.file_err("platforms", r)))
            .collect::<Result<Vec<_>, _>>()?,
    };
    if platforms.is_empty() {
        return Err(invalid(
            "PTC_PLATFORMS",
            "",
            "at least one platform is needed",
        ));
    }
    let concurrency = src.number(
        "PTC_CONCURRENCY",
        file.concurrency.map(|v| v as u64),
        16,
        1..=256,
    )? as usize;
    let prewarm_mode = src.choice(
        "PTC_PREWARM_MODE",
        file.prewarm_mode,
        PrewarmMode::Layers,
        &PrewarmMode::CHOICES,
    )?;
    let ratelimit_floor =
        src.number("PTC_RATELIMIT_FLOOR", file.ratelimit_floor, 10, 0..=100_000)?;
    let discovery_days = src.number(
        "PTC_DISCOVERY_DAYS",
        file.discovery_days.map(u64::from),
        7,
        0..=365,
    )? as u32;
    let watch_list_source = match (src.var("PTC_WATCH_LIST_URL"), file.watch_list_url.take()) {
        (Some(v), _) => {
            Some(WatchListSource::parse(&v).map_err(|r| invalid("PTC_WATCH_LIST_URL", &v, r))?)
        }
        (None, Some(v)) => {
            Some(WatchListSource::parse(&v).map_err(|r| src.file_err("watch_list_url", r))?)
        }
        (None, None) => None,
    };
    let prewarm_state = match (
        src.var("PTC_PREWARM_STATE_URL"),
        file.prewarm_state_url.take(),
    ) {
        (Some(v), _) => {
            Some(WatchListSource::parse(&v).map_err(|r| invalid("PTC_PREWARM_STATE_URL", &v, r))?)
        }
        (None, Some(v)) => {
            Some(WatchListSource::parse(&v).map_err(|r| src.file_err("prewarm_state_url", r))?)
        }
        (None, None) => None,
    };
    Ok(PrewarmSection {
        prewarm_state,
        watch_list,
        platforms,
        concurrency,
        prewarm_mode,
        ratelimit_floor,
        discovery_days,
        watch_list_source,
    })
}
