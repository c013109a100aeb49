//! The metrics port: validated CloudWatch data points ([`MetricDatum`]), their batching
//! within `PutMetricData`'s documented limits, the run-level series every job publishes
//! ([`RUN_ERRORS`], [`FULL_RUNS`]) and the [`MetricsApi`] trait. Adapters (`PutMetricData`,
//! Embedded Metric Format): [`crate::aws::cloudwatch`]; fake: `crate::fakes::metrics`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::AwsError;

/// `PutMetricData` limits: 1,000 data items and 1 MB per request, 30 dimensions per item
/// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html>).
/// This one: data items per request, the most [`batches`] puts in one batch.
pub const MAX_ITEMS_PER_CALL: usize = 1000;

/// Bytes per `PutMetricData` request (1 MB, taken as 1,000,000 bytes): [`batches`] keeps each
/// batch's estimated size within it.
pub const MAX_BYTES_PER_CALL: usize = 1_000_000;

/// Dimensions per datum (CloudWatch allows 30): [`MetricDatum::dimension`] refuses a 31st.
pub const MAX_DIMENSIONS: usize = 30;

/// The unit of a datum: the subset of CloudWatch's `StandardUnit` the jobs use
/// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDatum.html>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Unit {
    /// `Count`: a number of things (rules, images, repositories, errors, runs).
    Count,
    /// `Bytes`: a size in bytes (e.g. stored image bytes).
    Bytes,
    /// `Seconds`: a duration or an age in seconds.
    Seconds,
    /// `Percent`: a percentage, e.g. `12.5` for 12.5 % (not range-checked).
    Percent,
    /// `None`: a value without a unit (e.g. an amount of money).
    None,
}

impl Unit {
    /// The CloudWatch unit name, e.g. `Count` or `Bytes` (also the EMF `Unit`).
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

/// Why a data point was refused before any call: CloudWatch's limits, checked by
/// [`MetricDatum::new`] and [`MetricDatum::dimension`] (lengths in bytes of UTF-8, which is at
/// least as strict as CloudWatch's characters).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    /// The value is NaN or infinite, which CloudWatch does not accept.
    #[error("metric {name}: value {value} is not finite")]
    NotFinite {
        /// The metric's name.
        name: String,
        /// The value refused.
        value: f64,
    },
    /// A dimension past [`MAX_DIMENSIONS`] (30).
    #[error("metric {name}: {count} dimensions, at most 30")]
    TooManyDimensions {
        /// The metric's name.
        name: String,
        /// How many dimensions the datum would have had: always 31.
        count: usize,
    },
    /// The metric name is empty or longer than 255 bytes.
    #[error("metric name must be 1 to 255 characters")]
    BadName,
    /// A dimension's name is empty or longer than 255 bytes, or its value is empty or longer
    /// than 1,024 bytes.
    #[error(
        "metric {metric}: dimension {name:?} needs a name of 1 to 255 and a value of 1 to 1,024 characters"
    )]
    BadDimension {
        /// The metric's name.
        metric: String,
        /// The dimension's name as given.
        name: String,
    },
}

/// One data point. Built through [`MetricDatum::new`], so NaN and infinity cannot exist.
///
/// Serialised (for reports and tests) with `timestamp` as RFC 3339 text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricDatum {
    /// `MetricName`, 1 to 255 bytes, e.g. `RuleValid` or [`RUN_ERRORS`].
    pub name: String,
    /// `(name, value)` pairs in the order added, at most [`MAX_DIMENSIONS`]; names 1 to 255 bytes,
    /// values 1 to 1,024 bytes. Data with the same set form one EMF line.
    pub dimensions: Vec<(String, String)>,
    /// The value, in [`unit`](Self::unit); always finite. (CloudWatch also rejects magnitudes
    /// beyond 2^360, which is not checked here.)
    pub value: f64,
    /// The CloudWatch unit of [`value`](Self::value).
    pub unit: Unit,
    /// When the datum was built (UTC), sent as its `Timestamp`.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
}

impl MetricDatum {
    /// A datum of `value` in `unit`, no dimension, timestamped now (UTC).
    ///
    /// [`MetricError::BadName`] when `name` is empty or longer than 255 bytes;
    /// [`MetricError::NotFinite`] for NaN or an infinity.
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

    /// The datum with one more dimension `name` = `value`.
    ///
    /// [`MetricError::BadDimension`] when `name` is empty or over 255 bytes or `value` is empty or
    /// over 1,024 bytes; [`MetricError::TooManyDimensions`] when it has [`MAX_DIMENSIONS`] already.
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
///
/// Consecutive slices, in order: each has at most [`MAX_ITEMS_PER_CALL`] data and at most
/// [`MAX_BYTES_PER_CALL`] estimated bytes (per datum 128 bytes plus its name, plus 32 bytes
/// plus name and value per dimension: more than the encoded request takes). No data, no
/// batch.
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

    /// Whether this run covered everything the job covers: a full run also publishes the
    /// [`FULL_RUNS`] heartbeat.
    pub fn full(mut self, full: bool) -> Self {
        self.full = full;
        self
    }

    /// The number of items the run could not do; they are counted in [`RUN_ERRORS`].
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

/// Where metrics are published. Adapters: [`crate::aws::SdkMetrics`] (`PutMetricData`) and
/// [`crate::aws::EmfMetrics`] (Embedded Metric Format lines); fake:
/// `crate::fakes::FakeMetrics` (feature `fakes`). Jobs publish through [`publish_run`].
#[async_trait]
pub trait MetricsApi: Send + Sync {
    /// Publish every datum under `namespace` (e.g. `ECRPullThroughCache`, see
    /// [`crate::config::DEFAULT_NAMESPACE`]); returns the number of calls made (requests, or
    /// EMF log lines).
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
    /// `api`: `PutMetricData` calls through [`crate::aws::SdkMetrics`].
    Api,
    /// `emf`: Embedded Metric Format log lines through [`crate::aws::EmfMetrics`]
    /// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
    Emf,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid `RuleValid` datum with a `Prefix` dimension; `i` is its value.
    pub(crate) fn datum(i: usize) -> MetricDatum {
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
