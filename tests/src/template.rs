//! The SAM template as CloudFormation would create it, and its alarms put through the
//! stack's CloudWatch.
//!
//! [`resolved`] runs `tests/stack/template.py` (the SAM transform, then the intrinsic
//! functions resolved) with the infra venv's Python; [`alarms`] picks the
//! `AWS::CloudWatch::Alarm` resources; [`put_alarm`] maps one alarm's CloudFormation
//! properties onto `PutMetricAlarm`, so CloudWatch's own rules (as the stack's stand-in
//! enforces them) decide whether the template's alarms can be created.

use std::path::Path;
use std::process::Command;

use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricStat, StandardUnit, Statistic,
    Tag,
};
use serde_json::{Map, Value};

use crate::repo_root;

/// A tool of one of the setup's venvs (`.venv`, `.venv-infra`, `.venv-checkov`); panics,
/// naming the setup script, when it is not installed.
pub fn tool(venv: &str, name: &str) -> std::path::PathBuf {
    let path = repo_root().join(venv).join("bin").join(name);
    assert!(
        path.exists(),
        "{} not found: run scripts/setup.sh (the README's test command does), which installs it",
        path.display()
    );
    path
}

/// One deployment of `template` (a transformed or packaged template) by
/// `tests/stack/cfn_deploy.py` with `parameters` (`KEY=VALUE`): its JSON result, after checking
/// that moto's CloudFormation created the stack.
pub fn cfn_deploy(template: &Path, parameters: &[&str]) -> Value {
    let out = Command::new(tool(".venv", "python"))
        .arg(repo_root().join("tests/stack/cfn_deploy.py"))
        .arg(template)
        .args(parameters)
        .output()
        .expect("run cfn_deploy.py");
    assert!(
        out.status.success(),
        "cfn_deploy.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("cfn_deploy.py's JSON");
    assert_eq!(
        result["status"], "CREATE_COMPLETE",
        "moto's CloudFormation did not create the stack with {parameters:?}: {}",
        result["reason"]
    );
    result
}

/// Every resource of a [`cfn_deploy`] result was really made (none ignored by moto), the
/// services hold as many of each type as the stack made, and all wiring resolved. Returns the
/// stack's count per type.
pub fn check_resources(
    result: &Value,
    parameters: &[&str],
) -> std::collections::BTreeMap<String, u64> {
    let mut per_type = std::collections::BTreeMap::<String, u64>::new();
    let mut ignored = Vec::new();
    for (logical_id, resource) in result["resources"].as_object().expect("resources") {
        let kind = resource["type"].as_str().unwrap().to_owned();
        if resource["by"] == "ignored" {
            ignored.push(format!("{logical_id} ({kind})"));
        }
        *per_type.entry(kind).or_default() += 1;
    }
    assert!(
        ignored.is_empty(),
        "moto's CloudFormation has no model for these, reported them created and made nothing \
         (with {parameters:?}); add their type to API_TYPES in tests/stack/cfn_deploy.py:\n{}",
        ignored.join("\n")
    );
    for (kind, count) in result["found"].as_object().expect("found") {
        assert_eq!(
            count.as_u64(),
            Some(per_type.get(kind).copied().unwrap_or(0)),
            "{kind}: the services hold {count}, the stack made {:?} (with {parameters:?})",
            per_type.get(kind)
        );
    }
    let problems = result["problems"].as_array().expect("problems");
    assert!(
        problems.is_empty(),
        "wiring that did not resolve (with {parameters:?}): {problems:#?}"
    );
    per_type
}

/// `{"Resources": {...}}` of `infra/template.yaml` after the SAM transform, with parameters
/// (defaults, overridden by `params`), pseudo parameters, conditions and intrinsics resolved.
/// Panics with the script's error output when the template cannot be resolved.
pub fn resolved(params: &[(&str, &str)]) -> Value {
    resolved_from(&repo_root().join("infra/template.yaml"), params)
}

/// [`resolved`], or the resolver's error (a parameter value or a `Rules` assertion that
/// CloudFormation would refuse before creating anything, an intrinsic it cannot resolve).
pub fn try_resolved(params: &[(&str, &str)]) -> Result<Value, String> {
    try_resolved_from(&repo_root().join("infra/template.yaml"), params)
}

/// [`resolved`] for another template file (an older revision, a fixture).
pub fn resolved_from(template: &Path, params: &[(&str, &str)]) -> Value {
    try_resolved_from(template, params).unwrap_or_else(|e| panic!("{e}"))
}

/// [`try_resolved`] for another template file.
pub fn try_resolved_from(template: &Path, params: &[(&str, &str)]) -> Result<Value, String> {
    let python = repo_root().join(".venv-infra/bin/python");
    assert!(
        python.exists(),
        "{} not found: run scripts/setup.sh (the README's test command does), which installs aws-sam-cli",
        python.display()
    );
    let mut command = Command::new(&python);
    command
        .arg(repo_root().join("tests/stack/template.py"))
        .arg(template)
        .env("SAM_CLI_TELEMETRY", "0");
    for (name, value) in params {
        command.arg("--param").arg(format!("{name}={value}"));
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
    if !out.status.success() {
        return Err(format!(
            "tests/stack/template.py failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(serde_json::from_slice(&out.stdout).expect("template.py prints JSON"))
}

/// The `AWS::CloudWatch::Alarm` resources of a [`resolved`] template: (logical id, Properties).
pub fn alarms(resources: &Value) -> Vec<(String, Value)> {
    resources["Resources"]
        .as_object()
        .expect("a resolved template has Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .map(|(id, r)| (id.clone(), r["Properties"].clone()))
        .collect()
}

/// Put one alarm through `PutMetricAlarm`, from its CloudFormation properties (`AlarmName`
/// defaults to the logical id). `Err("Code: message")` when CloudWatch refuses it, or naming
/// a property this mapping does not know (a new property cannot be silently ignored).
pub async fn put_alarm(
    cw: &aws_sdk_cloudwatch::Client,
    logical_id: &str,
    props: &Value,
) -> Result<(), String> {
    let props = object(props, "Properties")?;
    let mut call = cw.put_metric_alarm().alarm_name(logical_id);
    for (key, value) in props {
        call = match key.as_str() {
            "AlarmName" => call.alarm_name(string(value, key)?),
            "AlarmDescription" => call.alarm_description(string(value, key)?),
            "ActionsEnabled" => call.actions_enabled(boolean(value, key)?),
            "AlarmActions" => call.set_alarm_actions(Some(strings(value, key)?)),
            "OKActions" => call.set_ok_actions(Some(strings(value, key)?)),
            "InsufficientDataActions" => {
                call.set_insufficient_data_actions(Some(strings(value, key)?))
            }
            "Namespace" => call.namespace(string(value, key)?),
            "MetricName" => call.metric_name(string(value, key)?),
            "Dimensions" => call.set_dimensions(Some(dimensions(value, key)?)),
            "Statistic" => call.statistic(Statistic::from(string(value, key)?.as_str())),
            "ExtendedStatistic" => call.extended_statistic(string(value, key)?),
            "Period" => call.period(integer(value, key)?),
            "EvaluationPeriods" => call.evaluation_periods(integer(value, key)?),
            "DatapointsToAlarm" => call.datapoints_to_alarm(integer(value, key)?),
            "Threshold" => call.threshold(number(value, key)?),
            "ThresholdMetricId" => call.threshold_metric_id(string(value, key)?),
            "ComparisonOperator" => {
                call.comparison_operator(ComparisonOperator::from(string(value, key)?.as_str()))
            }
            "TreatMissingData" => call.treat_missing_data(string(value, key)?),
            "EvaluateLowSampleCountPercentile" => {
                call.evaluate_low_sample_count_percentile(string(value, key)?)
            }
            "Unit" => call.unit(StandardUnit::from(string(value, key)?.as_str())),
            "Metrics" => call.set_metrics(Some(metrics(value)?)),
            "Tags" => call.set_tags(Some(tags(value)?)),
            other => {
                return Err(format!(
                    "{logical_id}: property {other} is not mapped onto PutMetricAlarm by ptc_tests::template::put_alarm"
                ));
            }
        };
    }
    call.send().await.map(|_| ()).map_err(|e| match e.code() {
        Some(code) => format!("{code}: {}", e.message().unwrap_or_default()),
        None => format!(
            "PutMetricAlarm failed: {}",
            aws_sdk_cloudwatch::error::DisplayErrorContext(&e)
        ),
    })
}

/// An alarm's (StateValue, StateReason), through `DescribeAlarms`. Panics when the alarm
/// does not exist.
pub async fn alarm_state(cw: &aws_sdk_cloudwatch::Client, name: &str) -> (String, String) {
    let out = cw
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "DescribeAlarms {name}: {}",
                aws_sdk_cloudwatch::error::DisplayErrorContext(&e)
            )
        });
    let alarm = out
        .metric_alarms()
        .iter()
        .find(|a| a.alarm_name() == Some(name))
        .unwrap_or_else(|| panic!("DescribeAlarms: no alarm {name}"));
    (
        alarm
            .state_value()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        alarm.state_reason().unwrap_or_default().to_owned(),
    )
}

// -- CloudFormation values -------------------------------------------------------------
// After resolution a property can be a string where CloudFormation expects a number or a
// boolean (a Ref to a Number parameter gives a string); CloudFormation converts them, so
// do these.

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("{what}: expected an object, got {value}"))
}

fn string(value: &Value, what: &str) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!("{what}: expected a string, got {value}")),
    }
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{what}: expected a list, got {value}"))?
        .iter()
        .map(|v| string(v, what))
        .collect()
}

fn number(value: &Value, what: &str) -> Result<f64, String> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("{what}: expected a number, got {value}"))
}

fn integer(value: &Value, what: &str) -> Result<i32, String> {
    match value {
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("{what}: expected an integer, got {value}"))
}

fn boolean(value: &Value, what: &str) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
    .ok_or_else(|| format!("{what}: expected a boolean, got {value}"))
}

fn dimensions(value: &Value, what: &str) -> Result<Vec<Dimension>, String> {
    let items = value
        .as_array()
        .ok_or_else(|| format!("{what}: expected a list, got {value}"))?;
    items
        .iter()
        .map(|d| {
            let d = object(d, what)?;
            let mut dimension = Dimension::builder();
            for (key, v) in d {
                dimension = match key.as_str() {
                    "Name" => dimension.name(string(v, "Dimensions.Name")?),
                    "Value" => dimension.value(string(v, "Dimensions.Value")?),
                    other => return Err(format!("{what}: unknown property {other}")),
                };
            }
            Ok(dimension.build())
        })
        .collect()
}

fn tags(value: &Value) -> Result<Vec<Tag>, String> {
    let items = value
        .as_array()
        .ok_or_else(|| format!("Tags: expected a list, got {value}"))?;
    items
        .iter()
        .map(|t| {
            let t = object(t, "Tags")?;
            let mut tag = Tag::builder();
            for (key, v) in t {
                tag = match key.as_str() {
                    "Key" => tag.key(string(v, "Tags.Key")?),
                    "Value" => tag.value(string(v, "Tags.Value")?),
                    other => return Err(format!("Tags: unknown property {other}")),
                };
            }
            Ok(tag.build())
        })
        .collect()
}

/// `Metrics`: a list of CloudFormation `MetricDataQuery` objects.
fn metrics(value: &Value) -> Result<Vec<MetricDataQuery>, String> {
    let items = value
        .as_array()
        .ok_or_else(|| format!("Metrics: expected a list, got {value}"))?;
    items
        .iter()
        .map(|q| {
            let mut query = MetricDataQuery::builder();
            for (key, v) in object(q, "Metrics")? {
                let what = format!("Metrics.{key}");
                query = match key.as_str() {
                    "Id" => query.id(string(v, &what)?),
                    "Expression" => query.expression(string(v, &what)?),
                    "Label" => query.label(string(v, &what)?),
                    "ReturnData" => query.return_data(boolean(v, &what)?),
                    "Period" => query.period(integer(v, &what)?),
                    "AccountId" => query.account_id(string(v, &what)?),
                    "MetricStat" => query.metric_stat(metric_stat(v)?),
                    other => return Err(format!("Metrics: unknown property {other}")),
                };
            }
            Ok(query.build())
        })
        .collect()
}

fn metric_stat(value: &Value) -> Result<MetricStat, String> {
    let mut stat = MetricStat::builder();
    for (key, v) in object(value, "Metrics.MetricStat")? {
        let what = format!("Metrics.MetricStat.{key}");
        stat = match key.as_str() {
            "Metric" => {
                let mut metric = Metric::builder();
                for (mkey, mv) in object(v, &what)? {
                    let what = format!("{what}.{mkey}");
                    metric = match mkey.as_str() {
                        "Namespace" => metric.namespace(string(mv, &what)?),
                        "MetricName" => metric.metric_name(string(mv, &what)?),
                        "Dimensions" => metric.set_dimensions(Some(dimensions(mv, &what)?)),
                        other => {
                            return Err(format!(
                                "Metrics.MetricStat.Metric: unknown property {other}"
                            ));
                        }
                    };
                }
                stat.metric(metric.build())
            }
            "Period" => stat.period(integer(v, &what)?),
            "Stat" => stat.stat(string(v, &what)?),
            "Unit" => stat.unit(StandardUnit::from(string(v, &what)?.as_str())),
            other => return Err(format!("Metrics.MetricStat: unknown property {other}")),
        };
    }
    Ok(stat.build())
}
