//! The template's alarms, and CloudWatch's rules for alarms, through the stack's CloudWatch
//! stand-in (`tests/stack/cloudwatch.py`), which accepts or refuses `PutMetricAlarm` as
//! CloudWatch documents it and evaluates alarms from the metric data the tests publish.
//!
//! Each rule test has a refused alarm and a valid counterpart, so that no test can pass by
//! the stand-in refusing everything.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use ptc_tests::template::{alarm_state, alarms, put_alarm, resolved_from};
use ptc_tests::{Stack, unique};
use serde_json::{Value, json};

async fn client() -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::new(&Stack::shared().sdk_config().await)
}

/// A namespace of its own for one test.
fn namespace() -> String {
    format!("PtcAlarmRules/{}", unique())
}

/// A valid single-metric alarm (CloudFormation properties) with a name of its own.
fn single(ns: &str) -> Value {
    json!({
        "AlarmName": format!("rule-{}", unique()),
        "Namespace": ns,
        "MetricName": "Failures",
        "Statistic": "Maximum",
        "Period": 300,
        "EvaluationPeriods": 1,
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    })
}

/// A valid alarm on a Metrics array.
fn math(queries: Vec<Value>) -> Value {
    json!({
        "AlarmName": format!("rule-{}", unique()),
        "Metrics": queries,
        "EvaluationPeriods": 1,
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    })
}

/// A `MetricStat` entry that does not return data.
fn metric(id: &str, ns: &str, name: &str, period: u32) -> Value {
    json!({
        "Id": id,
        "MetricStat": {"Metric": {"Namespace": ns, "MetricName": name}, "Period": period, "Stat": "Maximum"},
        "ReturnData": false,
    })
}

/// `base` with `changes` merged in (a null value removes the property).
fn with(mut base: Value, changes: Value) -> Value {
    let props = base.as_object_mut().unwrap();
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            props.remove(key);
        } else {
            props.insert(key.clone(), value.clone());
        }
    }
    base
}

fn name_of(props: &Value) -> String {
    props["AlarmName"].as_str().unwrap().to_owned()
}

async fn accepted(cw: &aws_sdk_cloudwatch::Client, props: Value) {
    let name = name_of(&props);
    if let Err(e) = put_alarm(cw, &name, &props).await {
        panic!("a valid alarm was refused: {e}\n{props:#}");
    }
}

/// The alarm is refused with `code`, and a message containing `needle`.
async fn refused(cw: &aws_sdk_cloudwatch::Client, props: Value, code: &str, needle: &str) {
    let name = name_of(&props);
    match put_alarm(cw, &name, &props).await {
        Ok(()) => panic!(
            "CloudWatch would refuse this alarm ({code}, {needle}), the stack accepted it:\n{props:#}"
        ),
        Err(e) => assert!(
            e.starts_with(&format!("{code}: "))
                && e.to_lowercase().contains(&needle.to_lowercase()),
            "expected {code} mentioning {needle:?}, got {e}"
        ),
    }
}

// -- the template ----------------------------------------------------------------------

/// Every `AWS::CloudWatch::Alarm` of `infra/template.yaml`, resolved with the default
/// parameters and with the optional ones set (AlarmEmail, WatchListBucket: both conditions),
/// is accepted by PutMetricAlarm and then listed by DescribeAlarms. CloudWatch refuses an
/// alarm on a SEARCH expression at deployment, which no other test could see.
#[tokio::test(flavor = "multi_thread")]
async fn every_alarm_of_the_template_is_accepted() {
    let template = ptc_tests::repo_root().join("infra/template.yaml");
    let (count, refusals) = template_refusals(
        &template,
        &[
            ("default parameters", &[]),
            (
                "AlarmEmail and WatchListBucket set",
                &[
                    ("AlarmEmail", "ops@example.com"),
                    ("WatchListBucket", "ptc-watch-list"),
                ],
            ),
        ],
    )
    .await;
    assert!(count >= 10, "only {count} alarms in infra/template.yaml");
    assert!(
        refusals.is_empty(),
        "CloudWatch refuses {} alarm(s) of infra/template.yaml (PutMetricAlarm, as the stack's CloudWatch enforces the documented rules):\n{}",
        refusals.len(),
        refusals.join("\n")
    );
}

/// The check above sees what it is for: a template with a SEARCH alarm (behind a condition,
/// its expression built with Fn::Sub) and a valid one; only the SEARCH alarm is refused, and
/// only where its condition holds.
#[tokio::test(flavor = "multi_thread")]
async fn the_template_check_finds_a_search_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template.yaml");
    let name = format!("fixture-{}", unique());
    std::fs::write(
        &path,
        format!(
            r#"
Parameters:
  Namespace: {{Type: String, Default: PtcFixture}}
  WithSearch: {{Type: String, Default: "no", AllowedValues: ["yes", "no"]}}
Conditions:
  HasSearch: !Equals [!Ref WithSearch, "yes"]
Resources:
  Topic:
    Type: AWS::SNS::Topic
  Valid:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: {name}-valid
      Namespace: !Ref Namespace
      MetricName: Failures
      Statistic: Maximum
      Period: 3600
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      AlarmActions: [!Ref Topic]
  Search:
    Type: AWS::CloudWatch::Alarm
    Condition: HasSearch
    Properties:
      AlarmName: {name}-search
      Metrics:
        - Id: failed
          Expression: !Sub "SUM(SEARCH('{{${{Namespace}},Prefix}} MetricName=\"Failures\"', 'Maximum', 3600))"
          Period: 3600
          ReturnData: true
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      OKActions: [!GetAtt Topic.TopicArn]
"#
        ),
    )
    .unwrap();
    let (count, refusals) = template_refusals(
        &path,
        &[("without", &[]), ("with SEARCH", &[("WithSearch", "yes")])],
    )
    .await;
    assert_eq!(count, 3, "{refusals:?}");
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(
        refusals[0]
            .starts_with("  Search: ValidationError: SEARCH is not supported on Metric Alarms")
            && refusals[0].ends_with("[with SEARCH]"),
        "{}",
        refusals[0]
    );
}

/// Put every alarm of the template, resolved with each parameter set, through
/// PutMetricAlarm; each accepted one must be listed by DescribeAlarms. The number of alarms
/// put, and the refusals: one line per alarm and refusal, with the parameter sets it
/// happened with.
async fn template_refusals(
    template: &Path,
    parameter_sets: &[(&str, &[(&str, &str)])],
) -> (usize, Vec<String>) {
    let cw = client().await;
    let mut count = 0;
    // (logical id, refusal) -> the parameter sets it happened with
    let mut refusals: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for (label, params) in parameter_sets {
        let resources = resolved_from(template, params);
        for (id, props) in alarms(&resources) {
            count += 1;
            match put_alarm(&cw, &id, &props).await {
                Err(e) => refusals.entry((id, e)).or_default().push(label),
                Ok(()) => {
                    let name = props["AlarmName"].as_str().unwrap_or(&id);
                    let (state, _) = alarm_state(&cw, name).await;
                    assert!(
                        ["OK", "ALARM", "INSUFFICIENT_DATA"].contains(&state.as_str()),
                        "{id}: DescribeAlarms state {state:?}"
                    );
                }
            }
        }
    }
    let lines = refusals
        .iter()
        .map(|((id, e), sets)| format!("  {id}: {e}  [{}]", sets.join("; ")))
        .collect();
    (count, lines)
}

// -- one rule each ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_search_expression_is_refused() {
    let cw = client().await;
    let ns = namespace();
    for search in [
        format!("SUM(SEARCH('{{{ns},Prefix}} MetricName=\"Failures\"', 'Maximum', 300))"),
        format!("search('{{{ns}}} MetricName=\"Failures\"', 'Maximum', 300)"),
    ] {
        let alarm = math(vec![
            json!({"Id": "failed", "Expression": search, "Period": 300}),
        ]);
        refused(&cw, alarm, "ValidationError", "SEARCH").await;
    }
    accepted(
        &cw,
        math(vec![
            metric("m1", &ns, "Failures", 300),
            json!({"Id": "failed", "Expression": "m1 * 2", "ReturnData": true}),
        ]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn more_than_ten_metrics_are_refused() {
    let cw = client().await;
    let ns = namespace();
    let queries = |n: usize| {
        let mut q: Vec<Value> = (0..n)
            .map(|i| metric(&format!("m{i}"), &ns, &format!("M{i}"), 300))
            .collect();
        q.push(json!({"Id": "total", "Expression": "m0 + m1", "ReturnData": true}));
        q
    };
    refused(&cw, math(queries(11)), "ValidationError", "10").await;
    accepted(&cw, math(queries(10))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_results_returning_data_are_refused() {
    let cw = client().await;
    let ns = namespace();
    let m1 = metric("m1", &ns, "Failures", 300);
    refused(
        &cw,
        math(vec![
            m1.clone(),
            json!({"Id": "a", "Expression": "m1 * 2", "ReturnData": true}),
            json!({"Id": "b", "Expression": "m1 * 3", "ReturnData": true}),
        ]),
        "ValidationError",
        "Exactly one element of the metrics list should return data",
    )
    .await;
    // ReturnData omitted is true (API_MetricDataQuery): a metric without it returns data too.
    refused(
        &cw,
        math(vec![
            with(m1.clone(), json!({"ReturnData": null})),
            json!({"Id": "a", "Expression": "m1 * 2", "ReturnData": true}),
        ]),
        "ValidationError",
        "Exactly one element",
    )
    .await;
    accepted(
        &cw,
        math(vec![
            m1,
            json!({"Id": "a", "Expression": "m1 * 2", "ReturnData": true}),
            json!({"Id": "b", "Expression": "m1 * 3", "ReturnData": false}),
        ]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_result_returning_data_is_refused() {
    let cw = client().await;
    let ns = namespace();
    refused(
        &cw,
        math(vec![
            metric("m1", &ns, "Failures", 300),
            json!({"Id": "a", "Expression": "m1 * 2", "ReturnData": false}),
        ]),
        "ValidationError",
        "Exactly one element of the metrics list should return data",
    )
    .await;
    accepted(
        &cw,
        math(vec![
            metric("m1", &ns, "Failures", 300),
            json!({"Id": "a", "Expression": "m1 * 2"}),
        ]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_period_of_45_seconds_is_refused() {
    let cw = client().await;
    let ns = namespace();
    refused(
        &cw,
        with(single(&ns), json!({"Period": 45})),
        "ValidationError",
        "Period must be 10, 20, 30 or a multiple of 60",
    )
    .await;
    refused(
        &cw,
        math(vec![
            metric("m1", &ns, "Failures", 45),
            json!({"Id": "a", "Expression": "m1 * 2"}),
        ]),
        "ValidationError",
        "must be 10, 20, 30 or a multiple of 60",
    )
    .await;
    for period in [10, 20, 30, 60, 120] {
        accepted(&cw, with(single(&ns), json!({"Period": period}))).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn more_than_a_day_of_periods_under_an_hour_is_refused() {
    let cw = client().await;
    let ns = namespace();
    refused(
        &cw,
        with(
            single(&ns),
            json!({"Period": 300, "EvaluationPeriods": 300}),
        ),
        "ValidationError",
        "86400",
    )
    .await;
    accepted(
        &cw,
        with(
            single(&ns),
            json!({"Period": 300, "EvaluationPeriods": 288}),
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn more_than_seven_days_of_periods_is_refused() {
    let cw = client().await;
    let ns = namespace();
    refused(
        &cw,
        with(
            single(&ns),
            json!({"Period": 3600, "EvaluationPeriods": 200}),
        ),
        "ValidationError",
        "604800",
    )
    .await;
    accepted(
        &cw,
        with(
            single(&ns),
            json!({"Period": 3600, "EvaluationPeriods": 168}),
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_statistic_that_is_not_one_of_the_five_is_refused() {
    let cw = client().await;
    let ns = namespace();
    refused(
        &cw,
        with(single(&ns), json!({"Statistic": "Median"})),
        "ValidationError",
        "Median",
    )
    .await;
    refused(
        &cw,
        with(single(&ns), json!({"ExtendedStatistic": "p99"})),
        "InvalidParameterCombination",
        "ExtendedStatistic",
    )
    .await;
    refused(
        &cw,
        with(
            single(&ns),
            json!({"Statistic": null, "ExtendedStatistic": "p101"}),
        ),
        "ValidationError",
        "p101",
    )
    .await;
    for statistic in ["SampleCount", "Average", "Sum", "Minimum", "Maximum"] {
        accepted(&cw, with(single(&ns), json!({"Statistic": statistic}))).await;
    }
    accepted(
        &cw,
        with(
            single(&ns),
            json!({"Statistic": null, "ExtendedStatistic": "p99.9"}),
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn more_datapoints_to_alarm_than_evaluation_periods_is_refused() {
    let cw = client().await;
    let ns = namespace();
    refused(
        &cw,
        with(
            single(&ns),
            json!({"EvaluationPeriods": 2, "DatapointsToAlarm": 3}),
        ),
        "ValidationError",
        "DatapointsToAlarm must be less than or equal to EvaluationPeriods",
    )
    .await;
    accepted(
        &cw,
        with(
            single(&ns),
            json!({"EvaluationPeriods": 3, "DatapointsToAlarm": 2}),
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_metric_name_and_a_metrics_array_together_are_refused() {
    let cw = client().await;
    let ns = namespace();
    let queries = vec![
        metric("m1", &ns, "Failures", 300),
        json!({"Id": "a", "Expression": "m1 * 2"}),
    ];
    refused(
        &cw,
        with(
            math(queries.clone()),
            json!({"MetricName": "Failures", "Namespace": ns}),
        ),
        "ValidationError",
        "MetricName should not be set if list of Metrics is set",
    )
    .await;
    refused(
        &cw,
        with(math(queries.clone()), json!({"Statistic": "Maximum"})),
        "ValidationError",
        "Statistic should not be set if list of Metrics is set",
    )
    .await;
    // Neither: no metric at all.
    refused(
        &cw,
        with(math(queries.clone()), json!({"Metrics": null})),
        "ValidationError",
        "MetricName must not be null",
    )
    .await;
    accepted(&cw, math(queries)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_treat_missing_data_is_refused() {
    let cw = client().await;
    let ns = namespace();
    refused(
        &cw,
        with(single(&ns), json!({"TreatMissingData": "sometimes"})),
        "ValidationError",
        "treatMissingData",
    )
    .await;
    for treat in ["breaching", "notBreaching", "ignore", "missing"] {
        accepted(&cw, with(single(&ns), json!({"TreatMissingData": treat}))).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_property_is_not_ignored() {
    let cw = client().await;
    let alarm = with(single(&namespace()), json!({"EvaluationWindowSeconds": 60}));
    let err = put_alarm(&cw, "unused", &alarm).await.unwrap_err();
    assert!(err.contains("EvaluationWindowSeconds"), "{err}");
}

/// "Any expression used in a PutMetricAlarm operation must return a single time series"
/// (API_MetricDataQuery): METRICS(), SORT, SLICE and arrays return several, AVG of one time
/// series a number (using-metric-math.html); an aggregate over METRICS() is one time series.
#[tokio::test(flavor = "multi_thread")]
async fn an_expression_that_does_not_return_a_single_time_series_is_refused() {
    let cw = client().await;
    let ns = namespace();
    let alarm = |expression: &str| {
        math(vec![
            metric("m1", &ns, "Failures", 300),
            metric("m2", &ns, "Errors", 300),
            json!({"Id": "e", "Expression": expression}),
        ])
    };
    for (expression, why) in [
        ("METRICS()", "array of time series (METRICS)"),
        ("FILL(METRICS(), 0)", "array of time series (METRICS)"),
        ("METRICS()/100", "array of time series (METRICS)"),
        ("SORT(METRICS(), MAX, DESC)", "array of time series (SORT)"),
        (
            "SLICE(SORT(METRICS(), SUM, DESC), 0, 2)",
            "array of time series (SLICE)",
        ),
        ("[m1, m2]", "array of time series"),
        ("AVG(m1)", "scalar (AVG)"),
    ] {
        refused(&cw, alarm(expression), "ValidationError", why).await;
    }
    for expression in [
        "SUM(METRICS())",
        "MAX(METRICS(\"m\"))",
        "FIRST(SORT(METRICS(), AVG, DESC))",
        "SUM([m1, m2])",
        "m1 - AVG(m1)",
        "FILL(m1, 0)",
    ] {
        accepted(&cw, alarm(expression)).await;
    }
}

/// AlarmActions, OKActions and InsufficientDataActions take the documented action types
/// (API_PutMetricAlarm "Valid values": EC2, Auto Scaling, Lambda, SNS, Systems Manager); an
/// SQS queue is none of them.
#[tokio::test(flavor = "multi_thread")]
async fn an_action_that_is_not_a_documented_action_type_is_refused() {
    let cw = client().await;
    let ns = namespace();
    let queue = "arn:aws:sqs:us-east-1:123456789012:alarms";
    for key in ["AlarmActions", "OKActions", "InsufficientDataActions"] {
        refused(
            &cw,
            with(single(&ns), json!({ key: [queue] })),
            "ValidationError",
            "not a valid alarm action",
        )
        .await;
    }
    let topic = "arn:aws:sns:us-east-1:123456789012:alarms";
    accepted(
        &cw,
        with(
            single(&ns),
            json!({"AlarmActions": [topic], "OKActions": [topic], "InsufficientDataActions": [topic]}),
        ),
    )
    .await;
    accepted(
        &cw,
        with(
            single(&ns),
            json!({"AlarmActions": [
                "arn:aws:lambda:us-east-1:123456789012:function:page:live",
                "arn:aws:ssm:us-east-1:123456789012:opsitem:2#CATEGORY=Availability",
            ]}),
        ),
    )
    .await;
}

// -- evaluation -------------------------------------------------------------------------

/// Publish values (each `seconds_ago`) to `ns`/`name` with `dimensions`, through the SDK.
async fn publish(
    cw: &aws_sdk_cloudwatch::Client,
    ns: &str,
    name: &str,
    dimensions: &[(&str, &str)],
    points: &[(f64, u64)],
) {
    let data = points
        .iter()
        .map(|(value, seconds_ago)| {
            MetricDatum::builder()
                .metric_name(name)
                .value(*value)
                .timestamp(DateTime::from(
                    SystemTime::now() - Duration::from_secs(*seconds_ago),
                ))
                .set_dimensions(Some(
                    dimensions
                        .iter()
                        .map(|(n, v)| Dimension::builder().name(*n).value(*v).build())
                        .collect(),
                ))
                .build()
        })
        .collect();
    cw.put_metric_data()
        .namespace(ns)
        .set_metric_data(Some(data))
        .send()
        .await
        .expect("PutMetricData on the stack");
}

async fn state_of(cw: &aws_sdk_cloudwatch::Client, props: &Value) -> String {
    let name = name_of(props);
    alarm_state(cw, &name).await.0
}

#[tokio::test(flavor = "multi_thread")]
async fn a_threshold_alarm_is_alarm_ok_or_insufficient_data() {
    let cw = client().await;
    let ns = namespace();
    publish(&cw, &ns, "Failures", &[("Prefix", "quay")], &[(3.0, 5)]).await;
    publish(&cw, &ns, "Failures", &[("Prefix", "k8s")], &[(0.0, 5)]).await;
    let on = |prefix: &str, treat: &str| {
        with(
            single(&ns),
            json!({"Period": 60, "Dimensions": [{"Name": "Prefix", "Value": prefix}], "TreatMissingData": treat}),
        )
    };
    let cases = [
        (on("quay", "notBreaching"), "ALARM"),
        (on("k8s", "notBreaching"), "OK"),
        // No data with these dimensions: missing.
        (on("ghcr", "notBreaching"), "OK"),
        (on("ghcr", "breaching"), "ALARM"),
        (on("ghcr", "missing"), "INSUFFICIENT_DATA"),
        (on("ghcr", "ignore"), "INSUFFICIENT_DATA"),
        // Exactly the alarm's dimensions: the metric without dimensions has no data.
        (
            with(
                single(&ns),
                json!({"Period": 60, "TreatMissingData": "missing"}),
            ),
            "INSUFFICIENT_DATA",
        ),
    ];
    for (alarm, want) in cases {
        accepted(&cw, alarm.clone()).await;
        let (state, reason) = alarm_state(&cw, &name_of(&alarm)).await;
        assert_eq!(state, want, "{reason}\n{alarm:#}");
    }
}

/// SampleCount < 1, missing data breaching: the alarm fires while nothing is published.
#[tokio::test(flavor = "multi_thread")]
async fn a_heartbeat_alarm_fires_without_data_and_clears_with_one_point() {
    let cw = client().await;
    let ns = namespace();
    let alarm = with(
        single(&ns),
        json!({
            "MetricName": "Heartbeat", "Statistic": "SampleCount", "Period": 60,
            "Threshold": 1, "ComparisonOperator": "LessThanThreshold", "TreatMissingData": "breaching",
        }),
    );
    accepted(&cw, alarm.clone()).await;
    assert_eq!(state_of(&cw, &alarm).await, "ALARM");
    publish(&cw, &ns, "Heartbeat", &[], &[(1.0, 1)]).await;
    let (state, reason) = alarm_state(&cw, &name_of(&alarm)).await;
    assert_eq!(state, "OK", "{reason}");
}

/// 2 out of 3: one breaching period is not enough, two are.
#[tokio::test(flavor = "multi_thread")]
async fn an_m_out_of_n_alarm_needs_m_breaching_periods() {
    let cw = client().await;
    let ns = namespace();
    let m_of_n = |treat: &str| {
        with(
            single(&ns),
            json!({
                "Period": 60, "EvaluationPeriods": 3, "DatapointsToAlarm": 2,
                "Threshold": 5, "TreatMissingData": treat,
            }),
        )
    };
    let missing = m_of_n("missing");
    let breaching = m_of_n("breaching");
    accepted(&cw, missing.clone()).await;
    accepted(&cw, breaching.clone()).await;
    assert_eq!(state_of(&cw, &missing).await, "INSUFFICIENT_DATA");
    assert_eq!(state_of(&cw, &breaching).await, "ALARM");
    // The period before the latest: one breaching data point of three periods.
    publish(&cw, &ns, "Failures", &[], &[(10.0, 90)]).await;
    let (state, reason) = alarm_state(&cw, &name_of(&missing)).await;
    assert_eq!(state, "OK", "{reason}");
    // Two missing periods counted as breaching: 3 of 3.
    assert_eq!(state_of(&cw, &breaching).await, "ALARM");
    // A second breaching period (the oldest): 2 of 3.
    publish(&cw, &ns, "Failures", &[], &[(7.0, 150)]).await;
    let (state, reason) = alarm_state(&cw, &name_of(&missing)).await;
    assert_eq!(state, "ALARM", "{reason}");
    // The latest period fine: breaching still has 2 of 3 (the two published ones).
    publish(&cw, &ns, "Failures", &[], &[(1.0, 10)]).await;
    let (state, reason) = alarm_state(&cw, &name_of(&breaching)).await;
    assert_eq!(state, "ALARM", "{reason}");
}

/// noncompliant - fixed > 0, the shape of NonCompliantRepositoriesAlarm on plain metrics.
#[tokio::test(flavor = "multi_thread")]
async fn a_metric_math_alarm_is_evaluated() {
    let cw = client().await;
    let ns = namespace();
    let alarm = |prefix: &str| {
        let dims = json!([{"Name": "Prefix", "Value": prefix}]);
        let stat = |id: &str, name: &str| {
            json!({
                "Id": id,
                "MetricStat": {"Metric": {"Namespace": ns, "MetricName": name, "Dimensions": dims}, "Period": 60, "Stat": "Maximum"},
                "ReturnData": false,
            })
        };
        math(vec![
            stat("noncompliant", "RepositoriesNonCompliant"),
            stat("fixed", "RepositoriesFixed"),
            json!({"Id": "left", "Expression": "noncompliant - fixed", "ReturnData": true}),
        ])
    };
    for (prefix, noncompliant, fixed) in [("quay", 3.0, 1.0), ("k8s", 2.0, 2.0)] {
        publish(
            &cw,
            &ns,
            "RepositoriesNonCompliant",
            &[("Prefix", prefix)],
            &[(noncompliant, 5)],
        )
        .await;
        publish(
            &cw,
            &ns,
            "RepositoriesFixed",
            &[("Prefix", prefix)],
            &[(fixed, 5)],
        )
        .await;
    }
    let (quay, k8s, ghcr) = (alarm("quay"), alarm("k8s"), alarm("ghcr"));
    for a in [&quay, &k8s, &ghcr] {
        accepted(&cw, a.clone()).await;
    }
    assert_eq!(state_of(&cw, &quay).await, "ALARM");
    assert_eq!(state_of(&cw, &k8s).await, "OK");
    // No data: the expression is missing, TreatMissingData notBreaching.
    assert_eq!(state_of(&cw, &ghcr).await, "OK");
}

/// FILL with REPEAT (not evaluated by the stand-in), RATE: INSUFFICIENT_DATA with a reason.
#[tokio::test(flavor = "multi_thread")]
async fn an_expression_the_stand_in_cannot_evaluate_is_insufficient_data() {
    let cw = client().await;
    let ns = namespace();
    publish(&cw, &ns, "Failures", &[], &[(3.0, 5)]).await;
    for expression in ["FILL(m1, REPEAT)", "RATE(m1)"] {
        let alarm = math(vec![
            metric("m1", &ns, "Failures", 60),
            json!({"Id": "e", "Expression": expression}),
        ]);
        accepted(&cw, alarm.clone()).await;
        let (state, reason) = alarm_state(&cw, &name_of(&alarm)).await;
        assert_eq!(state, "INSUFFICIENT_DATA", "{expression}: {reason}");
        assert!(reason.contains("cannot evaluate"), "{expression}: {reason}");
    }
}

/// A heartbeat on metric math: SampleCount of the runs' metric, FILL(runs, 0), below 1.
/// `job` is the dimension that keeps this alarm's data apart.
fn fill_heartbeat(ns: &str, job: &str) -> Value {
    json!({
        "AlarmName": format!("rule-{}", unique()),
        "Metrics": [
            {
                "Id": "runs",
                "MetricStat": {
                    "Metric": {"Namespace": ns, "MetricName": "RunErrors", "Dimensions": [{"Name": "Job", "Value": job}]},
                    "Period": 60,
                    "Stat": "SampleCount",
                },
                "ReturnData": false,
            },
            {"Id": "heartbeat", "Expression": "FILL(runs, 0)", "Period": 60, "ReturnData": true},
        ],
        "EvaluationPeriods": 1,
        "Threshold": 1,
        "ComparisonOperator": "LessThanThreshold",
        "TreatMissingData": "breaching",
    })
}

/// The same heartbeat on the plain metric (no FILL).
fn plain_heartbeat(ns: &str, job: &str) -> Value {
    json!({
        "AlarmName": format!("rule-{}", unique()),
        "Namespace": ns,
        "MetricName": "RunErrors",
        "Dimensions": [{"Name": "Job", "Value": job}],
        "Statistic": "SampleCount",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 1,
        "ComparisonOperator": "LessThanThreshold",
        "TreatMissingData": "breaching",
    })
}

/// FILL(runs, 0): a period without a run is 0, below 1: ALARM without data, ALARM while
/// the only run is in an older period, OK once the latest period has one.
#[tokio::test(flavor = "multi_thread")]
async fn a_fill_heartbeat_fires_unless_the_latest_period_has_a_run() {
    let cw = client().await;
    let ns = namespace();
    let alarm = fill_heartbeat(&ns, "sweep");
    accepted(&cw, alarm.clone()).await;
    let (state, reason) = alarm_state(&cw, &name_of(&alarm)).await;
    assert_eq!(state, "ALARM", "no data: {reason}");
    // One period (60 s) older than the latest: outside the one evaluated period.
    publish(&cw, &ns, "RunErrors", &[("Job", "sweep")], &[(0.0, 90)]).await;
    let (state, reason) = alarm_state(&cw, &name_of(&alarm)).await;
    assert_eq!(state, "ALARM", "a run 90 s ago only: {reason}");
    publish(&cw, &ns, "RunErrors", &[("Job", "sweep")], &[(0.0, 1)]).await;
    let (state, reason) = alarm_state(&cw, &name_of(&alarm)).await;
    assert_eq!(state, "OK", "a run in the latest period: {reason}");
}

/// CloudWatch evaluates an alarm over an evaluation range longer than EvaluationPeriods and
/// uses the real data points it finds there (AlarmThatSendsEmail.html, "How alarm state is
/// evaluated when data is missing"): the plain SampleCount heartbeat stays OK while its only
/// run is a period older than the evaluated one, where the FILL(runs, 0) form fires. Past the
/// range (EvaluationPeriods + 2 periods in the stand-in) the plain one fires too.
#[tokio::test(flavor = "multi_thread")]
async fn the_evaluation_range_keeps_a_plain_heartbeat_ok_where_fill_fires() {
    let cw = client().await;
    let ns = namespace();
    publish(&cw, &ns, "RunErrors", &[("Job", "late")], &[(0.0, 90)]).await;
    publish(&cw, &ns, "RunErrors", &[("Job", "gone")], &[(0.0, 240)]).await;
    let cases = [
        (plain_heartbeat(&ns, "late"), "OK"),
        (fill_heartbeat(&ns, "late"), "ALARM"),
        (plain_heartbeat(&ns, "gone"), "ALARM"),
        (fill_heartbeat(&ns, "gone"), "ALARM"),
    ];
    for (alarm, want) in cases {
        accepted(&cw, alarm.clone()).await;
        let (state, reason) = alarm_state(&cw, &name_of(&alarm)).await;
        assert_eq!(state, want, "{reason}\n{alarm:#}");
    }
}
