//! The report of a prewarm run: one [`ImageResult`] per watched image with its
//! [`Outcome`], a [`Summary`], run-level errors; and [`metric_data`], the pure function from
//! a report to the CloudWatch data it publishes.

use std::collections::BTreeMap;

use std::time::Instant;

use ptc_core::config::PrewarmMode;
use ptc_core::metrics::{MetricDatum, MetricError, Unit};
use serde::Serialize;

use crate::sources::Origin;

/// How one watch-list entry ended; serialised in kebab-case (`warmed`, `already-fresh`,
/// ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Pulled into the cache by this run and verified.
    Warmed,
    /// Already cached before this run, verified, same digest as upstream (or upstream unknown).
    AlreadyFresh,
    /// Cached and verified, but the upstream tag now points elsewhere.
    Stale,
    /// Not cached and verified: the entry does not parse or has no rule, is digest-only, a
    /// pull or ECR's confirmation failed, a wanted platform is missing from the index, or a
    /// pinned digest is gone. [`ImageResult::reason`] says which. Counted in `ImagesFailed`.
    Failed,
    /// Not done: the run's deadline was near, or the upstream's rate-limit budget was below
    /// the floor or it answered "rate limited" (to the HEAD or to the pull through the
    /// cache). The next run picks it up.
    Deferred,
    /// Dry run: what would be pulled.
    Planned,
}

/// One watch-list entry's result. Optional fields are left out of the JSON when absent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageResult {
    /// The entry as written (trimmed), e.g. `nginx:1.25` or `quay.io/prometheus/prometheus:v2`.
    pub reference: String,
    /// Which source listed it first.
    pub origin: Origin,
    /// The rule prefix that serves it; absent when the entry does not parse or no rule
    /// serves its registry (such an entry counts in `ImagesUnroutable`, in no prefix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Where the cache serves it: `<registry host>/<ECR repository>[:tag][@digest]`, e.g.
    /// `123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/library/nginx:1.25`; absent
    /// with `prefix`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The digest the cache returned for the tag (`sha256:...`); absent when the pull did
    /// not get that far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The digest the upstream's manifest HEAD gave for the tag; absent when the upstream
    /// was not asked (dry run, failed or deferred before it), gave no digest, or the HEAD
    /// failed (freshness is then unknown, which `reason` notes unless a pinned-digest note
    /// takes its place).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_digest: Option<String>,
    /// The platforms pulled (`linux/amd64`, ...), or `single-platform` for an image that
    /// is not an index; empty when the pull did not get that far.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// For a `stale` image: hours since ECR's `imagePushedAt` of the cached tag, to the
    /// hundredth; absent otherwise, or when ECR gives no push date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_age_hours: Option<f64>,
    /// Time spent on this image, in milliseconds.
    pub duration_ms: u64,
    /// For an image deferred because of its upstream (a rate limit, a budget below the
    /// floor, a 503 asking to wait): the wait before trying again, in seconds (the
    /// `Retry-After`, else the time the budget takes to come back, else 900). Absent for an
    /// image deferred by the deadline. The work queue delays its message by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// A `deferred` image whose work was cut at the invocation's deadline (started, not
    /// done: a large layer on a slow link), unlike one not started. The work queue counts a
    /// cut as an attempt, so that an image no invocation can finish ends instead of coming
    /// back forever.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cut: bool,
    /// Why it failed or was deferred, or a note on a success (freshness unknown, the tag
    /// moved away from a pinned digest, the upstream tag moved); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The run's counts, over every entry of the merged watch list.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Entries, whatever their outcome.
    pub images: usize,
    /// [`Outcome::Warmed`] entries.
    pub warmed: usize,
    /// [`Outcome::AlreadyFresh`] entries (`ImagesWarmed` counts them with `warmed`).
    pub already_fresh: usize,
    /// [`Outcome::Stale`] entries; `ImagesStale`.
    pub stale: usize,
    /// [`Outcome::Failed`] entries; `ImagesFailed`.
    pub failed: usize,
    /// [`Outcome::Deferred`] entries; `ImagesDeferred`.
    pub deferred: usize,
    /// Share of the watch list that is cached and verified, in percent (an entry without a
    /// rule, invalid, failed or deferred is not covered). `None` for a run with no image:
    /// nothing was verified, which is not a perfect score (a watch list that could not be
    /// read is a run error).
    pub coverage_percent: Option<f64>,
}

/// The requests a run made for its images, counted as they were made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Manifest HEADs on the upstreams (free on Docker Hub: not a pull), a digest-only
    /// entry's tag search included.
    pub upstream_heads: u64,
    /// Tags-list pages asked of the upstreams (a digest-only entry's tag search).
    pub upstream_tag_pages: u64,
    /// Manifest GETs through the cache (the registry endpoint): each one a pull.
    pub cache_manifest_gets: u64,
    /// Blob GETs through the cache, each blob of a repository at most once a run.
    pub cache_blob_gets: u64,
    /// Bytes of those blobs.
    pub cache_blob_bytes: u64,
}

/// The largest report the Lambda logs and answers whole, in bytes: 200 KiB, under a
/// CloudWatch Logs event's 256 KiB.
pub const MAX_REPORT_BYTES: usize = 200 * 1024;
/// The most images a cut report lists (those not cached and verified).
pub const MAX_REPORTED_IMAGES: usize = 500;

/// The run's report: returned by the Lambda, logged as one JSON line, printed by
/// `ptc prewarm`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrewarmReport {
    /// Always `prewarm`: the `Job` dimension of `RunErrors` and `FullRuns`.
    pub job: &'static str,
    /// Where the run came from: `invocation {}`, `on-demand list`, `schedule`, `ptc prewarm`,
    /// or `unsupported event` / `registry unavailable` for a run that did not start.
    pub trigger: String,
    /// `layers` or `manifests`: what the pulls fetched.
    pub mode: PrewarmMode,
    /// One result per merged watch-list entry, in list order (payload, settings, long list,
    /// discovery). Empty when the rules could not be listed.
    pub images: Vec<ImageResult>,
    /// The counts.
    pub summary: Summary,
    /// The whole run, in milliseconds; published as `PrewarmDuration` in seconds.
    pub duration_ms: u64,
    /// CloudWatch data points written, `RunErrors` and `FullRuns` included; 0 in a dry
    /// run, with metrics off, or when publishing failed (then one of `errors`).
    pub metrics_published: usize,
    /// What the run asked of the upstreams and the registry endpoint (its cost): in a steady
    /// state, HEADs only.
    pub traffic: Traffic,
    /// Problems that did not stop the run nor leave its totals unknown: the state of an
    /// earlier run could not be read or saved, ECR's state of a repository could not be read
    /// (its images were pulled). Logged; not `RunErrors`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Run-level errors: the event, the registry endpoint, listing the rules, discovery
    /// (listing or reading a repository), the long watch list, publishing metrics. Any one
    /// fails the Lambda invocation and counts in `RunErrors`; all but a publishing failure
    /// also withhold the undimensioned totals (the list was not read whole).
    pub errors: Vec<String>,
}

impl PrewarmReport {
    /// An empty report for `trigger`, to be filled by the run.
    pub fn new(trigger: &str, mode: PrewarmMode) -> Self {
        Self {
            job: "prewarm",
            trigger: trigger.to_owned(),
            mode,
            images: Vec::new(),
            summary: Summary::default(),
            duration_ms: 0,
            metrics_published: 0,
            traffic: Traffic::default(),
            warnings: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The report as the Lambda logs and answers it: whole when its JSON fits in
    /// [`MAX_REPORT_BYTES`] (a CloudWatch Logs event holds 256 KiB, an invocation's answer
    /// 6 MB:
    /// <https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html>,
    /// <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>); else without
    /// the images that are cached and verified (`warmed`, `already-fresh`), and at most
    /// [`MAX_REPORTED_IMAGES`] of the others, with `images_omitted` counting what was left out.
    /// A 20,000-image report is about 7 MB: whole, its answer failed the invocation.
    pub fn bounded(&self) -> serde_json::Value {
        let whole = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if serde_json::to_string(&whole).map_or(0, |s| s.len()) <= MAX_REPORT_BYTES {
            return whole;
        }
        let kept: Vec<&ImageResult> = self
            .images
            .iter()
            .filter(|i| !matches!(i.outcome, Outcome::Warmed | Outcome::AlreadyFresh))
            .take(MAX_REPORTED_IMAGES)
            .collect();
        let mut out = whole;
        out["images_omitted"] = serde_json::json!(self.images.len() - kept.len());
        out["images"] = serde_json::to_value(&kept).unwrap_or_default();
        out
    }

    /// An image failed or the run has a run-level error (`ptc prewarm` then exits non-zero).
    /// Deferred and stale images are not failures.
    pub fn any_failed(&self) -> bool {
        self.summary.failed > 0 || !self.errors.is_empty()
    }
}

impl Outcome {
    /// The outcome's name as serialised: `warmed`, `already-fresh`, `stale`, `failed`,
    /// `deferred`, `planned`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Warmed => "warmed",
            Outcome::AlreadyFresh => "already-fresh",
            Outcome::Stale => "stale",
            Outcome::Failed => "failed",
            Outcome::Deferred => "deferred",
            Outcome::Planned => "planned",
        }
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
/// (seconds) and `ImagesUnroutable`. Units: `Count`, except `ImagesVerifiedPercent`
/// (`Percent`, per prefix only, [`Summary::coverage_percent`] of the prefix's entries) and
/// `PrewarmDuration` (`Seconds`); `PrewarmCacheRequests` (manifest and blob GETs through the
/// registry endpoint) and `PrewarmWarnings` ([`PrewarmReport::warnings`]), both `Count`. `RunErrors` and `FullRuns` are added when published.
pub fn metric_data(report: &PrewarmReport, totals_known: bool) -> Vec<MetricDatum> {
    let mut by_prefix: BTreeMap<&str, Vec<ImageResult>> = BTreeMap::new();
    for image in &report.images {
        if let Some(prefix) = &image.prefix {
            by_prefix.entry(prefix).or_default().push(image.clone());
        }
    }
    let by_prefix: BTreeMap<String, Summary> = by_prefix
        .into_iter()
        .map(|(prefix, images)| (prefix.to_owned(), summarise(&images)))
        .collect();
    let unrouted = report.images.iter().filter(|i| i.prefix.is_none()).count();
    let mut data = outcome_data(
        &by_prefix,
        totals_known.then_some(&report.summary),
        unrouted,
        report.duration_ms as f64 / 1000.0,
    );
    data.extend(cost_data(&report.traffic, report.warnings.len()));
    data
}

/// The outcome points of a run (what [`metric_data`] publishes, the cost aside), from its
/// summaries: per rule prefix `ImagesWarmed` (warmed or already fresh), `ImagesFailed`,
/// `ImagesStale`, `ImagesDeferred` and `ImagesVerifiedPercent`; the four counts without
/// dimension when `totals` is given (what the alarms watch); `PrewarmDuration` (seconds) and
/// `ImagesUnroutable`. A queued run publishes these once, when its last item is done
/// (`crate::queued`).
pub fn outcome_data(
    by_prefix: &BTreeMap<String, Summary>,
    totals: Option<&Summary>,
    unrouted: usize,
    duration_secs: f64,
) -> Vec<MetricDatum> {
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
    for (prefix, s) in by_prefix {
        for (name, value) in counts(s) {
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
    if let Some(totals) = totals {
        for (name, value) in counts(totals) {
            push(MetricDatum::new(name, value, Unit::Count));
        }
    }
    push(MetricDatum::new(
        "PrewarmDuration",
        duration_secs,
        Unit::Seconds,
    ));
    push(MetricDatum::new(
        "ImagesUnroutable",
        unrouted as f64,
        Unit::Count,
    ));
    data
}

/// The cost points of a run or of a worker's invocation: `PrewarmCacheRequests` (manifest and
/// blob GETs through the registry endpoint: 0 in a steady state; a rise with an unchanged
/// list means the survey or the state stopped working) and `PrewarmWarnings`, both `Count`.
pub fn cost_data(traffic: &Traffic, warnings: usize) -> Vec<MetricDatum> {
    [
        (
            "PrewarmCacheRequests",
            (traffic.cache_manifest_gets + traffic.cache_blob_gets) as f64,
        ),
        ("PrewarmWarnings", warnings as f64),
    ]
    .into_iter()
    .filter_map(|(name, value)| MetricDatum::new(name, value, Unit::Count).ok())
    .collect()
}

/// A summary from counts of outcomes (their kebab-case names, e.g. `already-fresh`): what a
/// queued run's store holds per rule prefix.
pub fn summary_of<'a>(counts: impl IntoIterator<Item = (&'a str, u64)>) -> Summary {
    let mut s = Summary::default();
    for (outcome, n) in counts {
        let n = n as usize;
        s.images += n;
        match outcome {
            "warmed" => s.warmed += n,
            "already-fresh" => s.already_fresh += n,
            "stale" => s.stale += n,
            "failed" => s.failed += n,
            "deferred" => s.deferred += n,
            _ => {}
        }
    }
    let cached = s.warmed + s.already_fresh + s.stale;
    s.coverage_percent =
        (s.images > 0).then(|| (cached as f64 * 10_000.0 / s.images as f64).round() / 100.0);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report too large for a log event keeps its summary and the images that need reading
    /// (issue 19: a 20,000-image answer exceeded Lambda's 6 MB and failed the invocation).
    #[test]
    fn a_large_report_keeps_what_needs_reading() {
        let image = |n: usize, outcome: Outcome| ImageResult {
            reference: format!("quay.io/bench/app-{n}:t0"),
            origin: crate::sources::Origin::Settings,
            prefix: Some("quay".into()),
            uri: Some(format!(
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/quay/bench/app-{n}:t0"
            )),
            outcome,
            digest: Some(format!("sha256:{:064x}", n)),
            upstream_digest: None,
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            stale_age_hours: None,
            duration_ms: 12,
            retry_after_secs: None,
            cut: false,
            reason: None,
        };
        let mut report = PrewarmReport::new("schedule", PrewarmMode::Layers);
        report.images = (0..3000)
            .map(|n| {
                image(
                    n,
                    if n % 1000 == 7 {
                        Outcome::Failed
                    } else {
                        Outcome::Warmed
                    },
                )
            })
            .collect();
        report.summary = summarise(&report.images);
        let small = PrewarmReport::new("schedule", PrewarmMode::Layers);
        assert_eq!(
            small.bounded(),
            serde_json::to_value(&small).unwrap(),
            "whole when small"
        );
        let cut = report.bounded();
        assert!(serde_json::to_string(&cut).unwrap().len() <= MAX_REPORT_BYTES);
        assert_eq!(cut["images"].as_array().unwrap().len(), 3);
        assert_eq!(cut["images_omitted"], 2997);
        assert_eq!(cut["summary"]["images"], 3000);
        assert_eq!(cut["images"][0]["outcome"], "failed");
    }

    /// The run's cost and warnings are published (issue 18): 0 requests through the
    /// registry endpoint is the steady state; a rise is visible without reading reports.
    #[test]
    fn the_runs_cost_and_warnings_are_data_points() {
        let mut report = PrewarmReport::new("test", PrewarmMode::Layers);
        report.traffic = Traffic {
            upstream_heads: 7,
            upstream_tag_pages: 0,
            cache_manifest_gets: 15,
            cache_blob_gets: 33,
            cache_blob_bytes: 6717,
        };
        report.warnings.push("prewarm state unreadable".into());
        let data = metric_data(&report, true);
        let value = |name: &str| {
            data.iter()
                .find(|d| d.name == name && d.dimensions.is_empty())
                .map(|d| d.value)
        };
        assert_eq!(value("PrewarmCacheRequests"), Some(48.0));
        assert_eq!(value("PrewarmWarnings"), Some(1.0));
    }
}
