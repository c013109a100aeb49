//! The report of a prewarm run: one [`ImageResult`] per watched image with its
//! [`Outcome`], a [`Summary`], run-level errors; and [`metric_data`], the pure function from
//! a report to the CloudWatch data it publishes.

use std::collections::BTreeMap;

use std::time::Instant;

use ptc_core::config::PrewarmMode;
use ptc_core::metrics::{MetricDatum, MetricError, Unit};
use serde::Serialize;

use crate::sources::Origin;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Pulled into the cache by this run and verified.
    Warmed,
    /// Already cached before this run, verified, same digest as upstream (or upstream unknown).
    AlreadyFresh,
    /// Cached and verified, but the upstream tag now points elsewhere.
    Stale,
    Failed,
    /// Not attempted: deadline or rate-limit budget. The next run picks it up.
    Deferred,
    /// Dry run: what would be pulled.
    Planned,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageResult {
    pub reference: String,
    pub origin: Origin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_digest: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_age_hours: Option<f64>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub images: usize,
    pub warmed: usize,
    pub already_fresh: usize,
    pub stale: usize,
    pub failed: usize,
    pub deferred: usize,
    /// Share of the watch list that is cached and verified, in percent (an entry without a
    /// rule, invalid, failed or deferred is not covered). `None` for a run with no image:
    /// nothing was verified, which is not a perfect score (a watch list that could not be
    /// read is a run error).
    pub coverage_percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrewarmReport {
    pub job: &'static str,
    pub trigger: String,
    pub mode: PrewarmMode,
    pub images: Vec<ImageResult>,
    pub summary: Summary,
    pub duration_ms: u64,
    pub metrics_published: usize,
    pub errors: Vec<String>,
}

impl PrewarmReport {
    pub fn new(trigger: &str, mode: PrewarmMode) -> Self {
        Self {
            job: "prewarm",
            trigger: trigger.to_owned(),
            mode,
            images: Vec::new(),
            summary: Summary::default(),
            duration_ms: 0,
            metrics_published: 0,
            errors: Vec::new(),
        }
    }

    pub fn any_failed(&self) -> bool {
        self.summary.failed > 0 || !self.errors.is_empty()
    }
}

impl ImageResult {
    pub(crate) fn timed(mut self, started: Instant) -> Self {
        self.duration_ms = started.elapsed().as_millis() as u64;
        self
    }

    pub(crate) fn with(mut self, outcome: Outcome, reason: impl Into<Option<String>>) -> Self {
        self.outcome = outcome;
        self.reason = reason.into();
        self
    }
}

pub(crate) fn summarise(images: &[ImageResult]) -> Summary {
    let count = |o: Outcome| images.iter().filter(|i| i.outcome == o).count();
    let cached = count(Outcome::Warmed) + count(Outcome::AlreadyFresh) + count(Outcome::Stale);
    Summary {
        images: images.len(),
        warmed: count(Outcome::Warmed),
        already_fresh: count(Outcome::AlreadyFresh),
        stale: count(Outcome::Stale),
        failed: count(Outcome::Failed),
        deferred: count(Outcome::Deferred),
        coverage_percent: (!images.is_empty())
            .then(|| (cached as f64 * 10_000.0 / images.len() as f64).round() / 100.0),
    }
}

/// The data points of a run: per rule prefix `ImagesWarmed` (warmed or already fresh),
/// `ImagesFailed`, `ImagesStale`, `ImagesDeferred` and `ImagesVerifiedPercent`; the same four
/// counts without dimension when `totals_known` (what the alarms watch); `PrewarmDuration`
/// (seconds) and `ImagesUnroutable`.
pub fn metric_data(report: &PrewarmReport, totals_known: bool) -> Vec<MetricDatum> {
    let mut by_prefix: BTreeMap<&str, Vec<&ImageResult>> = BTreeMap::new();
    for image in &report.images {
        if let Some(prefix) = &image.prefix {
            by_prefix.entry(prefix).or_default().push(image);
        }
    }
    let mut data = Vec::new();
    let mut push = |datum: Result<MetricDatum, MetricError>| match datum {
        Ok(d) => data.push(d),
        Err(e) => tracing::error!(error = %e, "metric value rejected"),
    };
    let counts = |s: &Summary| {
        [
            ("ImagesWarmed", (s.warmed + s.already_fresh) as f64),
            ("ImagesFailed", s.failed as f64),
            ("ImagesStale", s.stale as f64),
            ("ImagesDeferred", s.deferred as f64),
        ]
    };
    for (prefix, images) in by_prefix {
        let owned: Vec<ImageResult> = images.into_iter().cloned().collect();
        let s = summarise(&owned);
        for (name, value) in counts(&s) {
            push(
                MetricDatum::new(name, value, Unit::Count)
                    .and_then(|d| d.dimension("Prefix", prefix)),
            );
        }
        if let Some(percent) = s.coverage_percent {
            push(
                MetricDatum::new("ImagesVerifiedPercent", percent, Unit::Percent)
                    .and_then(|d| d.dimension("Prefix", prefix)),
            );
        }
    }
    // The run's totals, without dimension: what the alarms watch (CloudWatch alarms cannot
    // add up the per-prefix series: SEARCH is refused in alarms). A run that could not list
    // the rules has no totals to give: its RunErrors pages instead of a 0 that would clear
    // the alarms.
    if totals_known {
        for (name, value) in counts(&report.summary) {
            push(MetricDatum::new(name, value, Unit::Count));
        }
    }
    let unrouted = report.images.iter().filter(|i| i.prefix.is_none()).count();
    push(MetricDatum::new(
        "PrewarmDuration",
        report.duration_ms as f64 / 1000.0,
        Unit::Seconds,
    ));
    push(MetricDatum::new(
        "ImagesUnroutable",
        unrouted as f64,
        Unit::Count,
    ));
    data
}
