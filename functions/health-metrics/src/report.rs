//! The report of a health-metrics run: the inventory per prefix, the watch list's
//! readiness and coverage, the outage exposure per upstream, sync events, run-level errors;
//! and [`metric_data`], the pure function from a report to the CloudWatch data it publishes.

use std::collections::BTreeMap;

use ptc_core::metrics::{MetricDatum, Unit};
use serde::Serialize;
use time::OffsetDateTime;

use crate::event::{self, SyncEvent};
use crate::inventory::PrefixInventory;
use crate::options::Options;
use crate::readiness::{UpstreamReadiness, WatchItem};

/// The watch list against the cache, over its valid entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coverage {
    /// Watch-list entries the cache can serve (valid references under a rule).
    pub watched: usize,
    /// Of those, the ones whose tag or digest is cached.
    pub cached: usize,
    /// Of those, the ones with every wanted platform cached too.
    pub ready: usize,
    /// `cached / watched` in percent; `None` when there is nothing to measure (no valid
    /// entry) or the watch list could not be read whole (a run error, never a score).
    /// Published, to the hundredth, as `WatchListCoverage` without dimension (unit
    /// `Percent`), which the alarm watches.
    pub coverage_percent: Option<f64>,
    /// Entries that are not references the cache can serve (listed in the report's
    /// `warnings`), outside every figure above.
    pub invalid: usize,
}

/// At most this many names in [`Unread::repositories_named`]: the response and its log line
/// stay small (a Lambda answer is at most 6 MB) however large the registry.
pub const MAX_UNREAD_NAMED: usize = 1000;

/// What the invocation's deadline left unread (the Lambda's inventory only; `ptc health` runs
/// without a deadline). A run with any of it is not a full run: it publishes no `FullRuns`
/// point, and one run-level error (in `errors`, so `RunErrors` is at least 1) says what was
/// left and what was withheld.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Unread {
    /// Repositories under a rule prefix whose images were listed whole before the deadline
    /// (those that failed or were deleted included).
    pub repositories_read: usize,
    /// Repositories under a rule prefix whose images were not listed: not started before
    /// [`crate::deadline::Deadline::stop_at`], or cut at its `finish_by`.
    pub repositories: usize,
    /// The first [`MAX_UNREAD_NAMED`] of their names, in ascending order.
    pub repositories_named: Vec<String>,
    /// The prefixes with such a repository, in ascending order: none of their own series
    /// (`Repositories`, `Images`, `StoredBytes`, ...) is published; their repositories read
    /// whole keep their per-repository series (`PTC_METRICS_PER_REPOSITORY`), whose inputs
    /// are complete.
    pub prefixes: Vec<String>,
    /// Watch-list entries not assessed: not started before the stop, cut, or their
    /// repository not read. Each is in the report as `unknown`, its reason naming the
    /// deadline; while there is one, neither `WatchListCoverage` nor `OutageExposedImages` is
    /// published without dimension (the alarms' series), and the report's coverage is `null`.
    pub watch_list_entries: usize,
    /// The prefixes with such an entry, in ascending order: their `WatchListImages`,
    /// `WatchListCoverage` and `OutageExposedImages` are not published.
    pub watch_list_prefixes: Vec<String>,
}

impl Unread {
    /// Did the deadline leave anything unread?
    pub fn is_empty(&self) -> bool {
        self.repositories == 0 && self.watch_list_entries == 0
    }

    /// The run-level error that says what was left and withheld (one line, one `RunErrors`).
    pub fn error(&self) -> String {
        let mut parts = Vec::new();
        if self.repositories > 0 {
            parts.push(format!(
                "{} of {} repositories not read (prefixes not read whole, their metrics withheld: {})",
                self.repositories,
                self.repositories + self.repositories_read,
                self.prefixes.join(", ")
            ));
        }
        if self.watch_list_entries > 0 {
            parts.push(format!(
                "{} watch-list entries not assessed (coverage and exposure withheld for: {}; no total)",
                self.watch_list_entries,
                self.watch_list_prefixes.join(", ")
            ));
        }
        format!(
            "the invocation's deadline came first: {}; the next run starts elsewhere in the list",
            parts.join("; ")
        )
    }
}

/// The run's report: returned by the Lambda, logged as one JSON line, printed by `ptc health`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// Always `health-metrics`: the `Job` dimension of `RunErrors` and `FullRuns`.
    pub job: &'static str,
    /// `invocation {}`, `schedule`, `pull-through cache sync event`, `unsupported event`,
    /// or `ptc health`.
    pub trigger: String,
    /// When the run started (RFC 3339): the `now` the ages and the unused limit are measured
    /// from.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// One inventory per rule prefix (the `ROOT` rule's only when a repository falls to it),
    /// ordered by prefix. Empty for an event, or when the rules or repositories could not
    /// be listed.
    pub prefixes: Vec<PrefixInventory>,
    /// Repositories under no rule prefix (the account's own): counted, never read.
    pub repositories_outside_prefixes: usize,
    /// The watch list's coverage.
    pub coverage: Coverage,
    /// Each watch-list entry's assessment, in list order (settings, then the long list).
    pub watch_list: Vec<WatchItem>,
    /// Per upstream: the watch-list images that would fail to pull if it went down now.
    pub outage: Vec<UpstreamReadiness>,
    /// The sync event an event-driven invocation counted (one); empty for an inventory.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sync_events: Vec<SyncEvent>,
    /// CloudWatch data points written, `RunErrors` (and `FullRuns`) included; 0 with
    /// metrics off or when publishing failed (then one of `errors`).
    pub metrics_published: usize,
    /// Entries of the watch list that are not references the cache can serve (each named
    /// with its reason): a mistake in the list, not a failure of the run (prewarm counts
    /// them in `ImagesFailed`, which pages). Also one line per prefix with images whose
    /// `imageSizeInBytes` was not believed. `ptc health` exits 1 when there is any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Run-level errors: the event, listing the rules or the repositories, each repository
    /// whose images could not be listed, the long watch list, what the invocation's deadline
    /// left unread (one line: see [`Unread`]), publishing metrics. Each counts in `RunErrors`
    /// and fails the Lambda invocation.
    pub errors: Vec<String>,
    /// What the invocation's deadline left unread; absent when it left nothing (and always
    /// for `ptc health`, which has no deadline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<Unread>,
    /// Every watch-list source was read: coverage and exposure per prefix mean something
    /// (the totals also need every entry assessed: see [`Unread::watch_list_entries`]).
    #[serde(skip)]
    pub watch_list_complete: bool,
}

impl HealthReport {
    /// A report with no figure yet, generated at `now`.
    pub fn empty(trigger: &str, now: OffsetDateTime) -> Self {
        Self {
            job: "health-metrics",
            trigger: trigger.to_owned(),
            generated_at: now,
            prefixes: Vec::new(),
            repositories_outside_prefixes: 0,
            coverage: Coverage::default(),
            watch_list: Vec::new(),
            outage: Vec::new(),
            sync_events: Vec::new(),
            metrics_published: 0,
            warnings: Vec::new(),
            errors: Vec::new(),
            unread: None,
            watch_list_complete: false,
        }
    }
}

/// `part / whole` in percent, to the hundredth; `whole` is never 0 here.
pub(crate) fn percent(part: usize, whole: usize) -> f64 {
    (part as f64 * 10_000.0 / whole.max(1) as f64).round() / 100.0
}

/// The report's metrics: per prefix by default, per repository only when asked.
///
/// Per `Prefix`: `Repositories`, `Images`, `UntaggedImages`, `ImagesNotPulled` (`Count`),
/// `StoredBytes`, `UntaggedBytes` (`Bytes`), `EstimatedMonthlyStorageCostUSD` and
/// `OldestImageAgeDays` (`None`), all over active images; and the archive storage class
/// apart: `ArchivedImages` (`Count`), `ArchivedBytes` (`Bytes`) and
/// `EstimatedMonthlyArchiveStorageCostUSD` (`None`, USD at the archive price; see
/// [`PrefixInventory::archived_images`]); with `per_repository`, `Images`, `StoredBytes` and
/// `ImagesNotPulled` per `Prefix` and `Repository` too. When the watch list was read whole:
/// per `Prefix`, `WatchListImages` and `OutageExposedImages` (`Count`) and
/// `WatchListCoverage` (`Percent`); and `WatchListCoverage` and `OutageExposedImages` again
/// without dimension (the alarms' series) when there is a valid entry. Each sync event adds
/// its [`event::metrics`]. A datum CloudWatch would refuse (a dimension value too long,
/// say) is left out with a warning in the log. `RunErrors` and `FullRuns` are added when
/// published.
///
/// Nothing is published from partial inputs (see [`Unread`]): a prefix with a repository not
/// read before the deadline has none of its `Prefix` series (its repositories read keep
/// theirs), a prefix with a watch-list entry not assessed none of its watch-list series, and
/// the totals without dimension need every entry assessed.
pub fn metric_data(report: &HealthReport, options: &Options) -> Vec<MetricDatum> {
    let mut data = Vec::new();
    let mut push = |name: &str, value: f64, unit: Unit, dims: &[(&str, &str)]| {
        let datum = dims
            .iter()
            .fold(MetricDatum::new(name, value, unit), |d, (n, v)| {
                d.and_then(|d| d.dimension(n, v))
            });
        match datum {
            Ok(d) => data.push(d),
            Err(err) => tracing::warn!(error = %err, "metric left out"),
        }
    };
    for p in &report.prefixes {
        if options.per_repository {
            for r in &p.per_repository {
                let dims = [
                    ("Prefix", p.prefix.as_str()),
                    ("Repository", r.repository.as_str()),
                ];
                push("Images", r.images as f64, Unit::Count, &dims);
                push("StoredBytes", r.stored_bytes as f64, Unit::Bytes, &dims);
                push(
                    "ImagesNotPulled",
                    r.images_not_pulled as f64,
                    Unit::Count,
                    &dims,
                );
            }
        }
        if !p.read_whole() {
            continue;
        }
        let dims = [("Prefix", p.prefix.as_str())];
        push("Repositories", p.repositories as f64, Unit::Count, &dims);
        push("Images", p.images as f64, Unit::Count, &dims);
        push(
            "UntaggedImages",
            p.untagged_images as f64,
            Unit::Count,
            &dims,
        );
        push("StoredBytes", p.stored_bytes as f64, Unit::Bytes, &dims);
        push("UntaggedBytes", p.untagged_bytes as f64, Unit::Bytes, &dims);
        push(
            "EstimatedMonthlyStorageCostUSD",
            p.estimated_monthly_cost_usd,
            Unit::None,
            &dims,
        );
        if let Some(age) = p.oldest_image_age_days {
            push("OldestImageAgeDays", age, Unit::None, &dims);
        }
        push(
            "ImagesNotPulled",
            p.images_not_pulled as f64,
            Unit::Count,
            &dims,
        );
        push(
            "ArchivedImages",
            p.archived_images as f64,
            Unit::Count,
            &dims,
        );
        push("ArchivedBytes", p.archived_bytes as f64, Unit::Bytes, &dims);
        push(
            "EstimatedMonthlyArchiveStorageCostUSD",
            p.estimated_monthly_archive_cost_usd,
            Unit::None,
            &dims,
        );
    }
    // Coverage and exposure per prefix, over the valid watch-list entries; none at all when
    // the watch list could not be read whole (RunErrors pages instead of a partial score).
    let mut per_prefix: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let watch_list = if report.watch_list_complete {
        report.watch_list.as_slice()
    } else {
        &[]
    };
    let cut: &[String] = report
        .unread
        .as_ref()
        .map_or(&[], |u| u.watch_list_prefixes.as_slice());
    for item in watch_list {
        if let Some(prefix) = item.prefix.as_deref()
            && !cut.iter().any(|c| c == prefix)
        {
            let e = per_prefix.entry(prefix).or_default();
            e.0 += 1;
            e.1 += usize::from(item.cached());
            e.2 += usize::from(item.exposed());
        }
    }
    for (prefix, (watched, cached, exposed)) in per_prefix {
        let dims = [("Prefix", prefix)];
        push("WatchListImages", watched as f64, Unit::Count, &dims);
        push(
            "WatchListCoverage",
            percent(cached, watched),
            Unit::Percent,
            &dims,
        );
        push("OutageExposedImages", exposed as f64, Unit::Count, &dims);
    }
    // The totals the alarms watch, without dimension (alarms cannot add up the per-prefix
    // series: SEARCH is refused in alarms).
    if let Some(percent) = report.coverage.coverage_percent {
        push("WatchListCoverage", percent, Unit::Percent, &[]);
        let exposed = report.watch_list.iter().filter(|i| i.exposed()).count();
        push("OutageExposedImages", exposed as f64, Unit::Count, &[]);
    }
    for event in &report.sync_events {
        data.extend(event::metrics(event));
    }
    data
}
