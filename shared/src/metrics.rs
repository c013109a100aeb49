//! The metrics port: validated CloudWatch data points ([`MetricDatum`]), their batching
//! within `PutMetricData`'s documented limits, the run-level series every job publishes
//! ([`RUN_ERRORS`], [`FULL_RUNS`]) and the [`MetricsApi`] trait. Adapters (`PutMetricData`,
//! Embedded Metric Format): [`crate::aws::cloudwatch`]; fake: `crate::fakes::metrics`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::AwsError;

/// `PutMetricData` limits: 1,000 data items and 1 MB per request, 30 dimensions per item.
pub const MAX_ITEMS_PER_CALL: usize = 1000;

pub const MAX_BYTES_PER_CALL: usize = 1_000_000;

pub const MAX_DIMENSIONS: usize = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Unit {
    Count,
    Bytes,
    Seconds,
    Percent,
    None,
}

impl Unit {
    /// The CloudWatch unit name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Bytes => "Bytes",
            Self::Seconds => "Seconds",
            Self::Percent => "Percent",
            Self::None => "None",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    #[error("metric {name}: value {value} is not finite")]
    NotFinite { name: String, value: f64 },
    #[error("metric {name}: {count} dimensions, at most 30")]
    TooManyDimensions { name: String, count: usize },
    #[error("metric name must be 1 to 255 characters")]
    BadName,
    #[error(
        "metric {metric}: dimension {name:?} needs a name of 1 to 255 and a value of 1 to 1,024 characters"
    )]
    BadDimension { metric: String, name: String },
}

/// One data point. Built through [`MetricDatum::new`], so NaN and infinity cannot exist.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricDatum {
    pub name: String,
    pub dimensions: Vec<(String, String)>,
    pub value: f64,
    pub unit: Unit,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
}

impl MetricDatum {
    pub fn new(name: &str, value: f64, unit: Unit) -> Result<Self, MetricError> {
        if name.is_empty() || name.len() > 255 {
            return Err(MetricError::BadName);
        }
        if !value.is_finite() {
            return Err(MetricError::NotFinite {
                name: name.to_owned(),
                value,
            });
        }
        Ok(Self {
            name: name.to_owned(),
            dimensions: Vec::new(),
            value,
            unit,
            timestamp: OffsetDateTime::now_utc(),
        })
    }

    pub fn dimension(mut self, name: &str, value: &str) -> Result<Self, MetricError> {
        if name.is_empty() || name.len() > 255 || value.is_empty() || value.len() > 1024 {
            return Err(MetricError::BadDimension {
                metric: self.name,
                name: name.to_owned(),
            });
        }
        if self.dimensions.len() == MAX_DIMENSIONS {
            return Err(MetricError::TooManyDimensions {
                name: self.name,
                count: MAX_DIMENSIONS + 1,
            });
        }
        self.dimensions.push((name.to_owned(), value.to_owned()));
        Ok(self)
    }

    /// A generous estimate of the item's encoded size, for the 1 MB request limit.
    fn encoded_size(&self) -> usize {
        128 + self.name.len()
            + self
                .dimensions
                .iter()
                .map(|(n, v)| 32 + n.len() + v.len())
                .sum::<usize>()
    }
}

/// Split data into request-sized batches (item count and estimated bytes).
pub fn batches(data: &[MetricDatum]) -> Vec<&[MetricDatum]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, datum) in data.iter().enumerate() {
        let size = datum.encoded_size();
        if i > start && (i - start == MAX_ITEMS_PER_CALL || bytes + size > MAX_BYTES_PER_CALL) {
            out.push(&data[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < data.len() {
        out.push(&data[start..]);
    }
    out
}

/// The metric every job publishes on every run, whatever happened: the number of run-level
/// errors (an event that could not be read, a list call that failed, a watch list that
/// could not be read) and of items it could not do (see [`Run::item_errors`]), with the
/// dimension `Job` = the job's name (`validate-rules`, `prewarm`, `lifecycle-fixer`,
/// `health-metrics`). Its alarm pages on a value above 0. (A publishing failure cannot count
/// itself: it fails the invocation instead, and leaves a gap in [`FULL_RUNS`].)
pub const RUN_ERRORS: &str = "RunErrors";

/// The heartbeat: 1 per run over everything the job covers (a schedule, `{}`, a full sweep),
/// whatever its outcome, with the dimension `Job`. Event-driven runs (a sync event, a new
/// repository, a rule change) do not publish it, so that a job whose schedule is gone is
/// seen even while events keep coming. The heartbeat alarms treat a period without it as
/// breaching (`FILL(runs, 0)`).
pub const FULL_RUNS: &str = "FullRuns";

/// How a run went, for [`publish_run`].
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// The job's name, the `Job` dimension.
    pub job: &'a str,
    /// A run over everything the job covers: it publishes the heartbeat ([`FULL_RUNS`]).
    pub full: bool,
    /// Items the run could not do (an AWS call that failed for a repository or template,
    /// a repository deferred past the deadline), counted in `RunErrors` with the run-level
    /// errors.
    pub item_errors: usize,
}

impl<'a> Run<'a> {
    /// An event-driven run with no item error.
    pub fn new(job: &'a str) -> Self {
        Self {
            job,
            full: false,
            item_errors: 0,
        }
    }

    pub fn full(mut self, full: bool) -> Self {
        self.full = full;
        self
    }

    pub fn item_errors(mut self, item_errors: usize) -> Self {
        self.item_errors = item_errors;
        self
    }
}

/// The `RunErrors` data point of one run of `job`.
fn run_errors(job: &str, errors: usize) -> MetricDatum {
    MetricDatum::new(RUN_ERRORS, errors as f64, Unit::Count)
        .and_then(|d| d.dimension("Job", job))
        .expect("a job name and a count are a valid metric")
}

/// Publish a job's data with its `RunErrors` point (the run-level `errors` plus the run's
/// item errors) and, for a full run, its [`FULL_RUNS`] heartbeat. A publishing failure is
/// added to `errors` and logged, never hiding the results. Returns the number of values
/// published (0 when publishing failed).
pub async fn publish_run(
    metrics: &dyn MetricsApi,
    namespace: &str,
    run: Run<'_>,
    mut data: Vec<MetricDatum>,
    errors: &mut Vec<String>,
) -> usize {
    data.push(run_errors(run.job, errors.len() + run.item_errors));
    if run.full {
        data.extend(
            MetricDatum::new(FULL_RUNS, 1.0, Unit::Count).and_then(|d| d.dimension("Job", run.job)),
        );
    }
    match publish_or_report(metrics, namespace, &data).await {
        Ok(published) => published,
        Err(error) => {
            errors.push(error);
            0
        }
    }
}

#[async_trait]
pub trait MetricsApi: Send + Sync {
    /// Publish every datum; returns the number of calls made.
    async fn put(&self, namespace: &str, data: &[MetricDatum]) -> Result<usize, AwsError>;
}

/// Publish a job's metrics; a failure is logged and returned as the report line, never as
/// an error that would hide the job's results. Returns the values published.
pub async fn publish_or_report(
    metrics: &dyn MetricsApi,
    namespace: &str,
    data: &[MetricDatum],
) -> Result<usize, String> {
    if data.is_empty() {
        return Ok(0);
    }
    match metrics.put(namespace, data).await {
        Ok(_) => Ok(data.len()),
        Err(err) => {
            tracing::error!(error = %err, "publishing metrics failed; the run's results stand");
            Err(format!(
                "publishing {} metric values failed: {err}",
                data.len()
            ))
        }
    }
}

/// `api` (default): `PutMetricData`; `emf`: CloudWatch Embedded Metric Format log lines on
/// stdout (no API call, no `cloudwatch:PutMetricData` permission; needs the Lambda log
/// group, metrics appear once CloudWatch Logs has processed the lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsSink {
    Api,
    Emf,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datum(i: usize) -> MetricDatum {
        MetricDatum::new("RuleValid", i as f64, Unit::Count)
            .unwrap()
            .dimension("Prefix", "quay")
            .unwrap()
    }

    #[test]
    fn rejects_nan_infinity_and_too_many_dimensions() {
        assert!(matches!(
            MetricDatum::new("x", f64::NAN, Unit::Count),
            Err(MetricError::NotFinite { .. })
        ));
        assert!(matches!(
            MetricDatum::new("x", f64::INFINITY, Unit::Count),
            Err(MetricError::NotFinite { .. })
        ));
        assert!(matches!(
            MetricDatum::new("", 1.0, Unit::Count),
            Err(MetricError::BadName)
        ));
        let mut d = MetricDatum::new("x", 1.0, Unit::Count).unwrap();
        for i in 0..30 {
            d = d.dimension(&format!("d{i}"), "v").unwrap();
        }
        assert!(matches!(
            d.dimension("d30", "v"),
            Err(MetricError::TooManyDimensions { .. })
        ));
    }

    #[test]
    fn batches_respect_item_and_byte_limits() {
        let data: Vec<_> = (0..2500).map(datum).collect();
        let sizes: Vec<usize> = batches(&data).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        let big: Vec<_> = (0..1000)
            .map(|i| {
                let mut d = datum(i);
                for j in 0..29 {
                    d = d
                        .dimension(&format!("dimension-{j}"), &"v".repeat(200))
                        .unwrap();
                }
                d
            })
            .collect();
        let parts = batches(&big);
        assert!(parts.len() > 1);
        assert!(
            parts
                .iter()
                .all(|b| b.iter().map(MetricDatum::encoded_size).sum::<usize>()
                    <= MAX_BYTES_PER_CALL)
        );
        assert_eq!(parts.iter().map(|b| b.len()).sum::<usize>(), 1000);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn bad_dimensions_are_refused() {
        let d = MetricDatum::new("x", 1.0, Unit::Count).unwrap();
        assert!(matches!(
            d.clone().dimension("Prefix", ""),
            Err(MetricError::BadDimension { .. })
        ));
        assert!(d.dimension(&"n".repeat(256), "v").is_err());
    }
}
