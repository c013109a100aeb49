//! The report of a lifecycle-fixer run: one [`RepositoryResult`] per repository (findings,
//! changes, what was applied), the creation templates, a [`Summary`], run-level errors; and
//! [`metric_data`], the pure function from a report to the CloudWatch data it publishes.

use std::collections::BTreeMap;

use ptc_core::metrics::{MetricDatum, Unit};
use serde::Serialize;

use crate::options::Options;
use crate::plan::{Change, Mode};
use crate::templates::TemplateResult;

/// One repository's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepositoryResult {
    /// The repository name, e.g. `docker-hub/library/nginx`.
    pub repository: String,
    /// The rule prefix it is under (`ROOT` for the root rule): the `Prefix` dimension of
    /// its figures, and the prefix whose desired settings it was planned against.
    pub prefix: String,
    /// Differences left alone and things never changed automatically.
    pub findings: Vec<String>,
    /// Changes made, or planned in a dry run.
    pub changes: Vec<Change>,
    /// The changes were sent to ECR (false in a dry run, with nothing to change, or when
    /// the settings could not be read). True even when some failed: see `errors`.
    pub applied: bool,
    /// Not started: the run reached its deadline first (the next sweep does it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deferred: bool,
    /// Deleted by someone else during the run (a benign race): not counted anywhere.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub gone: bool,
    /// The settings that could not be read, or each change that could not be written,
    /// with the AWS error. Non-empty: the repository counts in `errors` of the summary and
    /// in `RunErrors`, and fails the Lambda invocation.
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

/// The run's counts. A repository deferred past the deadline counts only in `deferred`; one
/// deleted during the run, nowhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Repositories read and planned (per prefix: `RepositoriesScanned`).
    pub scanned: usize,
    /// Repositories that differed from the desired settings when read: a change to make or
    /// a finding (per prefix: `RepositoriesNonCompliant`).
    pub non_compliant: usize,
    /// Repositories whose every change was written without error (per prefix:
    /// `RepositoriesFixed`); none in a dry run.
    pub fixed: usize,
    /// Repositories not under any rule prefix (the account's own), left alone; for an
    /// event, the names given that are under no prefix.
    pub ignored_outside_prefixes: usize,
    /// Items that failed: repositories with `errors` plus templates with an `error`. Counted
    /// in `RunErrors`; any fails the Lambda invocation.
    pub errors: usize,
    /// Rule prefixes still without a `PULL_THROUGH_CACHE` creation template after the run
    /// (`TemplatesMissing`, full sweeps only).
    pub templates_missing: usize,
    /// Repositories not started before the deadline ([`Options::stop_at`]); counted in
    /// `RunErrors`, and the run publishes no `RepositoriesLeftNonCompliant` total.
    pub deferred: usize,
    /// Repositories matched only by a `ROOT` rule, left alone (see `Options::cache_made`).
    #[serde(skip_serializing_if = "is_zero")]
    pub ignored_root_only: usize,
    /// Repositories that still differ from the desired settings after the run: a difference
    /// left alone (fill mode, immutable tags...), a change that failed, or one only planned.
    /// Published, without dimension, as `RepositoriesLeftNonCompliant` after a full sweep
    /// that listed and reached every repository (never in a dry run).
    pub left_non_compliant: usize,
}

/// The run's report: returned by the Lambda, logged as one JSON line, printed by `ptc fix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixReport {
    /// Always `lifecycle-fixer`: the `Job` dimension of `RunErrors` and `FullRuns`.
    pub job: &'static str,
    /// Where the run came from ([`Trigger::source`](crate::Trigger::source)), `ptc fix`, or
    /// `unsupported event`.
    pub trigger: String,
    /// `fill` or `enforce` (a dry run plans as `enforce`).
    pub mode: Mode,
    /// Nothing was written: changes and template actions are only planned.
    pub dry_run: bool,
    /// One result per repository in scope, in listing (or event) order. Empty when the rules
    /// or the repositories could not be listed.
    pub repositories: Vec<RepositoryResult>,
    /// Creation templates per rule prefix (full sweeps only).
    pub templates: Vec<TemplateResult>,
    /// The counts.
    pub summary: Summary,
    /// CloudWatch data points written, `RunErrors` (and `FullRuns`) included; 0 with
    /// metrics off or when publishing failed (then one of `errors`).
    pub metrics_published: usize,
    /// About the desired settings and the registry (nothing failed, but someone should know).
    pub warnings: Vec<String>,
    /// The registry's scanning type, read when a prefix wants scan on push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_scan_type: Option<String>,
    /// Run-level errors: the event, listing the rules, the repositories or the templates,
    /// an event's repository that could not be described, reading the registry's scanning
    /// configuration, publishing metrics. Each counts in `RunErrors` and fails the Lambda
    /// invocation.
    pub errors: Vec<String>,
    /// The registry permissions policy (full sweeps where some prefix grants other
    /// accounts pull): the statements their first pulls need ([`crate::registry`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_policy: Option<crate::registry::RegistryPolicyResult>,
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
            + self.templates.iter().filter(|t| t.error.is_some()).count()
            + self
                .registry_policy
                .iter()
                .filter(|r| r.error.is_some())
                .count();
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

    /// A report with no result yet, carrying the options' mode, dry run and
    /// [`DesiredSet::warnings`](crate::desired::DesiredSet::warnings).
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
            registry_policy: None,
        }
    }
}

/// The compliance figures per prefix, and the totals the alarms watch when known.
///
/// Per `Prefix`: `RepositoriesScanned`, `RepositoriesNonCompliant` and `RepositoriesFixed`
/// (over the repositories reached), and `TemplatesMissing` (0 or 1) per template checked.
/// Without dimension: `RepositoriesLeftNonCompliant` when `totals_known`, and
/// `TemplatesMissing` when the templates were read. All `Count`. A dry run publishes none
/// of these; `RunErrors` and `FullRuns` are added when published.
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
