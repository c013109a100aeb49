//! The built health-metrics binary through a real Lambda Runtime API: the real "ECR Pull
//! Through Cache Action" event shapes become counts read back from CloudWatch; the schedule
//! runs the inventory; EMF mode writes metric log lines instead of calling the API; a
//! malformed event fails the invocation with `RunFailed` (its report is logged), never a crash;
//! an inventory longer than the function's timeout stops before it and publishes what it read.

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

/// Issue 19: more repositories than one invocation can read. A function timeout of 8 s and
/// thousands of cached repositories read one at a time: the invocation answers before its
/// timeout, with one run-level error naming what was not read (RunErrors 1, no FullRuns), and
/// what it read whole is published and read back: the watched prefix (its repositories are
/// read first) with its inventory and coverage, and the coverage totals the alarms watch
/// (every watch-list entry was assessed); nothing of the prefix it could not finish.
#[tokio::test(flavor = "multi_thread")]
async fn an_inventory_longer_than_the_invocation_publishes_what_it_read() {
    const TIMEOUT_SECS: u32 = 8;
    const REPOSITORIES: usize = 4000;
    // Its own stack: the inventory reads every repository of the registry.
    let stack = Stack::start();
    stack.create_rule("quay", "quay.io", None).await;
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    let seeded = stack
        .control(
            "seed/inventory",
            json!({"prefix": "quay", "repositories": REPOSITORIES, "images": 1}),
        )
        .await;
    assert_eq!(seeded["repositories"], REPOSITORIES);
    stack
        .control(
            "seed/inventory",
            json!({"prefix": "k8s", "repositories": 3, "images": 2}),
        )
        .await;
    let namespace = format!("PtcHealthCut{}", unique());
    let mut env = stack.env();
    env.push(("PTC_METRICS_NAMESPACE".into(), namespace.clone()));
    env.push(("PTC_CONCURRENCY".into(), "1".into()));
    env.push((
        "PTC_WATCH_LIST".into(),
        (0..3)
            .map(|i| format!("registry.k8s.io/inventory/app-{i}:v0"))
            .collect::<Vec<_>>()
            .join(","),
    ));
    let binary = Path::new(env!("CARGO_BIN_EXE_health-metrics"));
    let lambda = Lambda::start(binary, &env, TIMEOUT_SECS);

    let started = std::time::Instant::now();
    let answer = lambda.invoke(&fixture("scheduled-event.json")).await;
    let took = started.elapsed();
    let message = ptc_tests::lambda::run_failed(&answer);
    assert!(message.contains("deadline"), "{answer}");
    assert!(
        took < std::time::Duration::from_secs(TIMEOUT_SECS.into()),
        "answered in {took:?}, past the {TIMEOUT_SECS} s timeout"
    );
    let logs = lambda.logs();
    let report: Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["job"] == "health-metrics")
        .unwrap_or_else(|| panic!("no report line in the log:\n{logs}"));
    let unread = &report["unread"];
    let read = unread["repositories_read"].as_u64().unwrap();
    let left = unread["repositories"].as_u64().unwrap();
    println!(
        "read {read} of {} repositories before the cut; answered in {:.2} s of a {TIMEOUT_SECS} s timeout",
        read + left,
        took.as_secs_f64()
    );
    assert_eq!(read + left, REPOSITORIES as u64 + 3, "{unread}");
    assert!(left > 0 && read >= 3, "{unread}");
    assert_eq!(unread["prefixes"], json!(["quay"]), "{unread}");
    assert_eq!(unread["watch_list_entries"], 0, "{unread}");
    assert_eq!(report["errors"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["coverage"]["coverage_percent"], 100.0, "{report}");

    let max = |name: &'static str, dims: &'static [(&'static str, &'static str)]| {
        let (stack, namespace) = (&stack, &namespace);
        async move {
            stack
                .metric(namespace, name, dims, Statistic::Maximum)
                .await
        }
    };
    assert_eq!(
        max("RunErrors", &[("Job", "health-metrics")]).await,
        Some(1.0)
    );
    assert_eq!(
        max("FullRuns", &[("Job", "health-metrics")]).await,
        None,
        "a partial run is not a full run"
    );
    assert_eq!(max("Repositories", &[("Prefix", "k8s")]).await, Some(3.0));
    assert_eq!(max("Images", &[("Prefix", "k8s")]).await, Some(6.0));
    assert_eq!(
        max("WatchListCoverage", &[("Prefix", "k8s")]).await,
        Some(100.0)
    );
    assert_eq!(max("WatchListCoverage", &[]).await, Some(100.0));
    assert_eq!(max("OutageExposedImages", &[]).await, Some(0.0));
    for name in ["Repositories", "Images", "StoredBytes", "ImagesNotPulled"] {
        assert_eq!(
            max(name, &[("Prefix", "quay")]).await,
            None,
            "{name}: quay was not read whole"
        );
    }
}
