//! The built health-metrics binary through a real Lambda Runtime API: the real "ECR Pull
//! Through Cache Action" event shapes become counts read back from CloudWatch; the schedule
//! runs the inventory; EMF mode writes metric log lines instead of calling the API; a
//! malformed event fails the invocation with `RunFailed` (its report is logged), never a crash.

use std::path::Path;

use aws_sdk_cloudwatch::types::Statistic;
use ptc_tests::lambda::Lambda;
use ptc_tests::{Stack, unique};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    ptc_tests::fixtures::json(env!("CARGO_MANIFEST_DIR"), name)
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_events_become_counts_and_the_schedule_runs_the_inventory() {
    let stack = Stack::shared();
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    let (client, _) = stack.registry().await;
    client.get_manifest("k8s/pause", "3.9").await.unwrap();
    let namespace = format!("PtcHealthLambda{}", unique());
    let mut env = stack.env();
    env.push(("PTC_METRICS_NAMESPACE".into(), namespace.clone()));
    env.push(("PTC_WATCH_LIST".into(), "registry.k8s.io/pause:3.9".into()));
    let binary = Path::new(env!("CARGO_BIN_EXE_health-metrics"));
    let lambda = Lambda::start(binary, &env, 60);

    let failure = fixture("ptc-action-failure.json");
    for _ in 0..2 {
        let report = lambda.invoke(&failure).await;
        assert!(report["errors"].as_array().unwrap().is_empty(), "{report}");
        assert_eq!(report["sync_events"][0]["failure_code"], "UNAUTHORIZED");
        // The event's count, its total, and the run's RunErrors point.
        assert_eq!(report["metrics_published"], 3);
    }
    let success = lambda.invoke(&fixture("ptc-action-success.json")).await;
    assert_eq!(success["sync_events"][0]["success"], true, "{success}");
    let failures = stack
        .metric(
            &namespace,
            "CacheSyncFailure",
            &[("Prefix", "docker-hub"), ("FailureCode", "UNAUTHORIZED")],
            Statistic::Sum,
        )
        .await;
    assert_eq!(
        failures,
        Some(2.0),
        "each delivered failure event is one count"
    );
    let successes = stack
        .metric(
            &namespace,
            "CacheSyncSuccess",
            &[("Prefix", "k8s")],
            Statistic::Sum,
        )
        .await;
    assert_eq!(successes, Some(1.0));

    let scheduled = lambda.invoke(&fixture("scheduled-event.json")).await;
    assert_eq!(scheduled["trigger"], "schedule", "{scheduled}");
    let k8s = scheduled["prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["prefix"] == "k8s")
        .unwrap_or_else(|| panic!("{scheduled}"));
    assert!(k8s["images"].as_u64().unwrap() >= 1, "{k8s}");
    assert_eq!(
        scheduled["coverage"]["coverage_percent"], 100.0,
        "{scheduled}"
    );

    let bad = lambda
        .invoke(
            &json!({"detail-type": "ECR Pull Through Cache Action", "source": "aws.ecr", "detail": {"sync-status": 7}}),
        )
        .await;
    assert!(
        ptc_tests::lambda::run_failed(&bad).contains("sync-status"),
        "{bad}"
    );
    // The rejected event still published the run's RunErrors point.
    let run_errors = stack
        .metric(
            &namespace,
            "RunErrors",
            &[("Job", "health-metrics")],
            Statistic::Maximum,
        )
        .await;
    assert_eq!(run_errors, Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn emf_mode_writes_metric_lines_and_calls_no_api() {
    let stack = Stack::shared();
    let namespace = format!("PtcHealthEmf{}", unique());
    let mut env = stack.env();
    env.push(("PTC_METRICS_NAMESPACE".into(), namespace.clone()));
    env.push(("PTC_METRICS_SINK".into(), "emf".into()));
    let binary = Path::new(env!("CARGO_BIN_EXE_health-metrics"));
    let lambda = Lambda::start(binary, &env, 60);
    let report = lambda.invoke(&fixture("ptc-action-failure.json")).await;
    // The count per prefix and code, its total, and the run's RunErrors point.
    assert_eq!(report["metrics_published"], 3, "{report}");
    let emf: Vec<Value> = lambda
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    let line = emf
        .iter()
        .find(|v| v.get("Prefix").is_some())
        .unwrap_or_else(|| panic!("no EMF line per prefix in the log:\n{}", lambda.logs()));
    assert!(
        emf.iter()
            .any(|v| v["CacheSyncFailure"] == 1.0 && v.get("Prefix").is_none()),
        "the total without dimension: {emf:?}"
    );
    assert!(
        emf.iter()
            .any(|v| v["RunErrors"] == 0.0 && v["Job"] == "health-metrics"),
        "the run's RunErrors: {emf:?}"
    );
    let directive = &line["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], namespace.as_str());
    assert_eq!(directive["Metrics"][0]["Name"], "CacheSyncFailure");
    assert_eq!(line["CacheSyncFailure"], 1.0);
    assert_eq!(line["Prefix"], "docker-hub");
    assert_eq!(line["FailureCode"], "UNAUTHORIZED");
    assert_eq!(
        stack
            .metric(
                &namespace,
                "CacheSyncFailure",
                &[("Prefix", "docker-hub"), ("FailureCode", "UNAUTHORIZED")],
                Statistic::Sum
            )
            .await,
        None,
        "EMF makes no PutMetricData call"
    );
}
