//! CloudWatch metrics: validated data points, a port, the aws-sdk adapter that splits them
//! into `PutMetricData` calls within the documented limits, and a fake.

use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum as SdkDatum, StandardUnit};
use time::OffsetDateTime;

use crate::aws::AwsError;

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

    fn sdk(self) -> StandardUnit {
        match self {
            Self::Count => StandardUnit::Count,
            Self::Bytes => StandardUnit::Bytes,
            Self::Seconds => StandardUnit::Seconds,
            Self::Percent => StandardUnit::Percent,
            Self::None => StandardUnit::None,
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

#[derive(Clone)]
pub struct SdkMetrics {
    client: Client,
}

impl SdkMetrics {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn to_sdk(datum: &MetricDatum) -> SdkDatum {
    let mut builder = SdkDatum::builder()
        .metric_name(&datum.name)
        .value(datum.value)
        .unit(datum.unit.sdk())
        .timestamp(
            aws_smithy_types::DateTime::from_nanos(datum.timestamp.unix_timestamp_nanos())
                .unwrap_or(aws_smithy_types::DateTime::from_secs(
                    datum.timestamp.unix_timestamp(),
                )),
        );
    for (name, value) in &datum.dimensions {
        builder = builder.dimensions(Dimension::builder().name(name).value(value).build());
    }
    builder.build()
}

#[async_trait]
impl MetricsApi for SdkMetrics {
    #[tracing::instrument(skip(self, data), fields(items = data.len()), err(Display))]
    async fn put(&self, namespace: &str, data: &[MetricDatum]) -> Result<usize, AwsError> {
        // Every batch is tried: one refused batch does not lose the others.
        let parts = batches(data);
        let (mut calls, mut failed, mut first_error) = (0, 0, None);
        for batch in &parts {
            let sent = self
                .client
                .put_metric_data()
                .namespace(namespace)
                .set_metric_data(Some(batch.iter().map(to_sdk).collect()))
                .send()
                .await;
            calls += 1;
            if let Err(e) = sent {
                failed += 1;
                first_error.get_or_insert(AwsError::from_sdk("PutMetricData", e));
            }
        }
        match first_error {
            None => Ok(calls),
            Some(mut err) => {
                err.message = format!(
                    "{failed} of {} calls failed; the first: {}",
                    parts.len(),
                    err.message
                );
                Err(err)
            }
        }
    }
}

/// CloudWatch Embedded Metric Format: each call writes log lines that CloudWatch Logs turns
/// into metrics, with no API call (and no `cloudwatch:PutMetricData` permission). One line
/// per dimension set, at most 100 metrics per line, as the format requires. In Lambda the
/// lines go to stdout, which is the function's log stream.
pub struct EmfMetrics<W: std::io::Write + Send> {
    out: Mutex<W>,
}

/// EMF limit: metrics per log line (per `CloudWatchMetrics` directive).
pub const EMF_MAX_METRICS: usize = 100;

impl<W: std::io::Write + Send> EmfMetrics<W> {
    pub fn new(out: W) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }

    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    /// The log lines for `data`, one JSON document each.
    pub fn lines(namespace: &str, data: &[MetricDatum]) -> Vec<serde_json::Value> {
        use std::collections::BTreeMap;
        // Group by dimension set (names and values): each line carries one set.
        let mut groups: BTreeMap<Vec<(String, String)>, Vec<&MetricDatum>> = BTreeMap::new();
        for datum in data {
            groups
                .entry(datum.dimensions.clone())
                .or_default()
                .push(datum);
        }
        let mut lines = Vec::new();
        for (dimensions, data) in groups {
            let mut chunk: Vec<&MetricDatum> = Vec::new();
            let mut flush = |chunk: &mut Vec<&MetricDatum>| {
                if chunk.is_empty() {
                    return;
                }
                let timestamp = chunk
                    .iter()
                    .map(|d| d.timestamp.unix_timestamp_nanos() / 1_000_000)
                    .max()
                    .unwrap_or_default();
                let mut line = serde_json::Map::new();
                line.insert(
                    "_aws".into(),
                    serde_json::json!({
                        "Timestamp": timestamp as i64,
                        "CloudWatchMetrics": [{
                            "Namespace": namespace,
                            "Dimensions": [dimensions.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>()],
                            "Metrics": chunk.iter().map(|d| serde_json::json!({"Name": d.name, "Unit": d.unit.name()})).collect::<Vec<_>>(),
                        }]
                    }),
                );
                for (name, value) in &dimensions {
                    line.insert(name.clone(), value.clone().into());
                }
                for d in chunk.iter() {
                    line.insert(d.name.clone(), d.value.into());
                }
                lines.push(serde_json::Value::Object(line));
                chunk.clear();
            };
            for datum in data {
                // A name twice in one line would be one value: start a new line instead.
                if chunk.len() == EMF_MAX_METRICS || chunk.iter().any(|d| d.name == datum.name) {
                    flush(&mut chunk);
                }
                chunk.push(datum);
            }
            flush(&mut chunk);
        }
        lines
    }
}

#[async_trait]
impl<W: std::io::Write + Send> MetricsApi for EmfMetrics<W> {
    async fn put(&self, namespace: &str, data: &[MetricDatum]) -> Result<usize, AwsError> {
        let lines = Self::lines(namespace, data);
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        for line in &lines {
            writeln!(out, "{line}")
                .and_then(|()| out.flush())
                .map_err(|e| AwsError {
                    operation: "EmbeddedMetricFormat",
                    kind: crate::aws::AwsErrorKind::Transport,
                    message: format!("writing a metrics log line: {e}"),
                })?;
        }
        Ok(lines.len())
    }
}

/// The metrics port the settings ask for: `PutMetricData`, or EMF lines on stdout (the
/// Lambda log stream) or, for the CLI whose stdout is its output, on stderr.
pub fn for_sink(
    sink: crate::config::MetricsSink,
    client: Client,
    emf_on_stderr: bool,
) -> Box<dyn MetricsApi> {
    match (sink, emf_on_stderr) {
        (crate::config::MetricsSink::Api, _) => Box::new(SdkMetrics::new(client)),
        (crate::config::MetricsSink::Emf, false) => Box::new(EmfMetrics::new(std::io::stdout())),
        (crate::config::MetricsSink::Emf, true) => Box::new(EmfMetrics::new(std::io::stderr())),
    }
}

/// Records what would have been published.
#[derive(Default)]
pub struct FakeMetrics {
    pub published: Mutex<Vec<(String, MetricDatum)>>,
    pub fail: Mutex<Option<AwsError>>,
}

#[async_trait]
impl MetricsApi for FakeMetrics {
    async fn put(&self, namespace: &str, data: &[MetricDatum]) -> Result<usize, AwsError> {
        if let Some(err) = self.fail.lock().unwrap().clone() {
            return Err(err);
        }
        let mut published = self.published.lock().unwrap();
        published.extend(data.iter().map(|d| (namespace.to_owned(), d.clone())));
        Ok(batches(data).len())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

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

    #[tokio::test]
    async fn emf_lines_carry_one_dimension_set_and_at_most_100_metrics() {
        let mut data = Vec::new();
        for i in 0..150 {
            data.push(
                MetricDatum::new(&format!("M{i}"), i as f64, Unit::Count)
                    .unwrap()
                    .dimension("Prefix", "quay")
                    .unwrap(),
            );
        }
        data.push(
            MetricDatum::new("M0", 7.0, Unit::Bytes)
                .unwrap()
                .dimension("Prefix", "k8s")
                .unwrap(),
        );
        data.push(MetricDatum::new("Total", 3.0, Unit::None).unwrap());
        let emf = EmfMetrics::new(Vec::new());
        let lines = emf.put("Ptc", &data).await.unwrap();
        let text = String::from_utf8(emf.into_inner()).unwrap();
        let docs: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines, docs.len());
        assert_eq!(docs.len(), 4, "quay: 100 + 50, k8s: 1, no dimensions: 1");
        let mut values = 0;
        for doc in &docs {
            let directive = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(directive["Namespace"], "Ptc");
            let metrics = directive["Metrics"].as_array().unwrap();
            assert!(metrics.len() <= EMF_MAX_METRICS);
            for m in metrics {
                assert!(doc[m["Name"].as_str().unwrap()].is_number());
            }
            for name in directive["Dimensions"][0].as_array().unwrap() {
                assert!(doc[name.as_str().unwrap()].is_string());
            }
            assert!(doc["_aws"]["Timestamp"].as_i64().unwrap() > 1_600_000_000_000);
            values += metrics.len();
        }
        assert_eq!(values, 152);
        let k8s = docs.iter().find(|d| d["Prefix"] == "k8s").unwrap();
        assert_eq!(k8s["M0"], 7.0);
        assert_eq!(
            k8s["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Bytes"
        );
        let total = docs.iter().find(|d| d.get("Total").is_some()).unwrap();
        assert_eq!(
            total["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            serde_json::json!([])
        );
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

    #[tokio::test]
    async fn adapter_makes_one_call_per_batch() {
        let put = mock!(Client::put_metric_data)
            .match_requests(|r| r.namespace() == Some("Test") && r.metric_data().len() <= 1000)
            .sequence()
            .output(|| PutMetricDataOutput::builder().build())
            .times(3)
            .build();
        let client = mock_client!(aws_sdk_cloudwatch, [&put]);
        let data: Vec<_> = (0..2500).map(datum).collect();
        assert_eq!(SdkMetrics::new(client).put("Test", &data).await.unwrap(), 3);
        assert_eq!(put.num_calls(), 3);
    }

    #[tokio::test]
    async fn a_refused_batch_does_not_lose_the_others() {
        use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataError;
        use aws_sdk_cloudwatch::types::error::InvalidParameterValueException;
        let refused = mock!(Client::put_metric_data)
            .match_requests(|r| {
                r.metric_data()
                    .first()
                    .is_some_and(|d| d.value() == Some(0.0))
            })
            .then_error(|| {
                PutMetricDataError::InvalidParameterValueException(
                    InvalidParameterValueException::builder()
                        .message("refused")
                        .build(),
                )
            });
        let accepted =
            mock!(Client::put_metric_data).then_output(|| PutMetricDataOutput::builder().build());
        let client = mock_client!(
            aws_sdk_cloudwatch,
            RuleMode::MatchAny,
            [&refused, &accepted]
        );
        let data: Vec<_> = (0..2500).map(datum).collect();
        let err = SdkMetrics::new(client)
            .put("Test", &data)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("1 of 3 calls failed"), "{err}");
        assert_eq!((refused.num_calls(), accepted.num_calls()), (1, 2));
    }
}
