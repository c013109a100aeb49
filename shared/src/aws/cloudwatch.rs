//! The CloudWatch adapters of the metrics port ([`crate::metrics`]): [`SdkMetrics`]
//! (`PutMetricData`, one call per batch within the documented limits) and [`EmfMetrics`]
//! (Embedded Metric Format lines on stdout, no API call); [`for_sink`] picks one.

use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum as SdkDatum, StandardUnit};

use crate::error::AwsError;
use crate::metrics::*;

/// The `PutMetricData` adapter of [`MetricsApi`]: one call per batch of [`batches`] (at most
/// 1,000 data and about 1 MB each). Every batch is tried even after one is refused; the
/// error is then the first failure, its message prefixed `<failed> of <calls> calls failed`
/// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html>).
#[derive(Clone)]
pub struct SdkMetrics {
    client: Client,
}

impl SdkMetrics {
    /// The adapter on a CloudWatch client (see [`crate::aws::AwsClients`]).
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn to_sdk(datum: &MetricDatum) -> SdkDatum {
    let mut builder = SdkDatum::builder()
        .metric_name(&datum.name)
        .value(datum.value)
        .unit(sdk_unit(datum.unit))
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
    /// EMF lines written to `out`: stdout in Lambda, stderr for the CLI, a `Vec<u8>` in tests.
    pub fn new(out: W) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }

    /// The writer back (e.g. the bytes a test wrote), even if a writer panicked holding the lock.
    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    /// The log lines for `data`, one JSON document each.
    ///
    /// Data are grouped by dimension set (names and values); a line carries one set, at most
    /// [`EMF_MAX_METRICS`] metrics and each metric name once. `_aws.Timestamp` is the latest
    /// timestamp of the line's data, in milliseconds since the epoch
    /// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
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
pub fn for_sink(sink: MetricsSink, client: Client, emf_on_stderr: bool) -> Box<dyn MetricsApi> {
    match (sink, emf_on_stderr) {
        (MetricsSink::Api, _) => Box::new(SdkMetrics::new(client)),
        (MetricsSink::Emf, false) => Box::new(EmfMetrics::new(std::io::stdout())),
        (MetricsSink::Emf, true) => Box::new(EmfMetrics::new(std::io::stderr())),
    }
}

/// The SDK's name of a unit.
fn sdk_unit(unit: Unit) -> StandardUnit {
    match unit {
        Unit::Count => StandardUnit::Count,
        Unit::Bytes => StandardUnit::Bytes,
        Unit::Seconds => StandardUnit::Seconds,
        Unit::Percent => StandardUnit::Percent,
        Unit::None => StandardUnit::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use crate::metrics::tests::datum;

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
