//! The report of a lifecycle-fixer run: one [`RepositoryResult`] per repository (findings,
//! changes, what was applied), the creation templates, a [`Summary`], run-level errors; and
//! [`metric_data`], the pure function from a report to the CloudWatch data it publishes.

use std::collections::BTreeMap;

use ptc_core::metrics::{MetricDatum, Unit};
use serde::Serialize;

use crate::options::Options;
use crate::plan::{Change, Mode};
use crate::templates::TemplateResult;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepositoryResult {
    pub repository: String,
    pub prefix: String,
    /// Differences left alone and things never changed automatically.
    pub findings: Vec<String>,
    /// Changes made, or planned in a dry run.
    pub changes: Vec<Change>,
    pub applied: bool,
    /// Not started: the run reached its deadline first (the next sweep does it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deferred: bool,
    /// Deleted by someone else during the run (a benign race): not counted anywhere.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub gone: bool,
    pub errors: Vec<String>,
}

impl RepositoryResult {
    /// In the figures: reached before the deadline and not deleted during the run.
    pub(crate) fn counted(&self) -> bool {
        !self.deferred && !self.gone
    }

    /// Differed from the desired settings when the run read it.
    pub(crate) fn non_compliant(&self) -> bool {
        self.counted() && (!self.changes.is_empty() || !self.findings.is_empty())
    }

    /// Every change it needed was written.
    pub(crate) fn fixed(&self) -> bool {
        self.counted() && self.applied && !self.changes.is_empty() && self.errors.is_empty()
    }

    /// Still differs after the run: a difference left alone, a change that failed, or one
    /// only planned.
    pub(crate) fn left_non_compliant(&self) -> bool {
        self.counted()
            && (!self.findings.is_empty()
                || !self.errors.is_empty()
                || (!self.changes.is_empty() && !self.applied))
    }
}

pub(crate) fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub scanned: usize,
    pub non_compliant: usize,
    pub fixed: usize,
    pub ignored_outside_prefixes: usize,
    pub errors: usize,
    pub templates_missing: usize,
    pub deferred: usize,
    /// Repositories matched only by a `ROOT` rule, left alone (see `Options::cache_made`).
    #[serde(skip_serializing_if = "is_zero")]
    pub ignored_root_only: usize,
    /// Repositories that still differ from the desired settings after the run: a difference
    /// left alone (fill mode, immutable tags...), a change that failed, or one only planned.
    pub left_non_compliant: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixReport {
    pub job: &'static str,
    pub trigger: String,
    pub mode: Mode,
    pub dry_run: bool,
    pub repositories: Vec<RepositoryResult>,
    /// Creation templates per rule prefix (full sweeps only).
    pub templates: Vec<TemplateResult>,
    pub summary: Summary,
    pub metrics_published: usize,
    /// About the desired settings and the registry (nothing failed, but someone should know).
    pub warnings: Vec<String>,
    /// The registry's scanning type, read when a prefix wants scan on push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_scan_type: Option<String>,
    pub errors: Vec<String>,
    /// The creation templates were read (a full sweep whose template listing worked).
    #[serde(skip)]
    pub templates_checked: bool,
}

impl FixReport {
    /// The summary's counts from the results: templates missing, repositories deferred,
    /// scanned, non-compliant, fixed, left non-compliant, and every item that failed
    /// (repositories and templates alike).
    pub(crate) fn summarise(&mut self) {
        self.summary.templates_missing = self
            .templates
            .iter()
            .filter(|t| t.missing_after_run())
            .count();
        let count =
            |f: fn(&RepositoryResult) -> bool| self.repositories.iter().filter(|r| f(r)).count();
        self.summary.deferred = self.repositories.iter().filter(|r| r.deferred).count();
        self.summary.scanned = count(RepositoryResult::counted);
        self.summary.non_compliant = count(RepositoryResult::non_compliant);
        self.summary.fixed = count(RepositoryResult::fixed);
        self.summary.left_non_compliant = count(RepositoryResult::left_non_compliant);
        self.summary.errors = self
            .repositories
            .iter()
            .filter(|r| !r.errors.is_empty())
            .count()
            + self.templates.iter().filter(|t| t.error.is_some()).count();
    }

    /// What fails the Lambda invocation (`ptc_core::RunFailed`): the run-level errors, and
    /// the repositories and templates that could not be read or written (so that the
    /// event of a repository whose fix failed is retried and kept in the failure queue).
    pub fn failures(&self) -> Vec<String> {
        let mut failures = self.errors.clone();
        if self.summary.errors > 0 {
            failures.push(format!(
                "{} repositories or templates could not be read or written (see the report)",
                self.summary.errors
            ));
        }
        failures
    }

    pub fn empty(trigger: &str, options: &Options) -> Self {
        Self {
            job: "lifecycle-fixer",
            trigger: trigger.to_owned(),
            mode: options.mode,
            dry_run: options.dry_run,
            repositories: Vec::new(),
            templates: Vec::new(),
            summary: Summary::default(),
            metrics_published: 0,
            warnings: options.desired.warnings.clone(),
            registry_scan_type: None,
            errors: Vec::new(),
            templates_checked: false,
        }
    }
}

/// The compliance figures per prefix, and the totals the alarms watch when known.
pub fn metric_data(report: &FixReport, totals_known: bool) -> Vec<MetricDatum> {
    let mut per_prefix: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for r in report.repositories.iter().filter(|r| r.counted()) {
        let entry = per_prefix.entry(&r.prefix).or_default();
        entry[0] += 1;
        entry[1] += usize::from(r.non_compliant());
        entry[2] += usize::from(r.fixed());
    }
    let mut data = Vec::new();
    let mut push = |datum: Result<MetricDatum, ptc_core::metrics::MetricError>| match datum {
        Ok(d) => data.push(d),
        Err(e) => tracing::error!(error = %e, "metric value rejected"),
    };
    for (prefix, [scanned, non_compliant, fixed]) in per_prefix {
        for (name, value) in [
            ("RepositoriesScanned", scanned),
            ("RepositoriesNonCompliant", non_compliant),
            ("RepositoriesFixed", fixed),
        ] {
            push(
                MetricDatum::new(name, value as f64, Unit::Count)
                    .and_then(|d| d.dimension("Prefix", prefix)),
            );
        }
    }
    for t in &report.templates {
        let missing = f64::from(u8::from(t.missing_after_run()));
        push(
            MetricDatum::new("TemplatesMissing", missing, Unit::Count)
                .and_then(|d| d.dimension("Prefix", &t.prefix)),
        );
    }
    // The totals the alarms watch, without dimension (alarms cannot add up per-prefix
    // series: SEARCH is refused in alarms). Only from a full sweep that listed and reached
    // every repository.
    if totals_known {
        let s = &report.summary;
        push(MetricDatum::new(
            "RepositoriesLeftNonCompliant",
            s.left_non_compliant as f64,
            Unit::Count,
        ));
    }
    // Templates are read by full sweeps only; a failed template listing is a run error.
    if report.templates_checked {
        push(MetricDatum::new(
            "TemplatesMissing",
            report.summary.templates_missing as f64,
            Unit::Count,
        ));
    }
    data
}
