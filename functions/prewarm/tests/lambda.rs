//! The built prewarm binary answers a schedule event and an on-demand payload through a
//! real Lambda Runtime API, against the local stack.

use std::path::Path;

use ptc_tests::Stack;
use ptc_tests::lambda::Lambda;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn schedule_and_on_demand_through_the_runtime_api() {
    let stack = Stack::shared();
    stack.create_rule("quay", "quay.io", None).await;
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    let mut env = stack.env();
    env.push((
        "PTC_WATCH_LIST".into(),
        "quay.io/coreos/etcd:v3.5.13, registry.k8s.io/pause:3.9".into(),
    ));
    env.push(("PTC_METRICS_NAMESPACE".into(), "PtcPrewarmLambda".into()));
    let lambda = Lambda::start(Path::new(env!("CARGO_BIN_EXE_prewarm")), &env, 60);

    let scheduled = lambda
        .invoke(&json!({"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012", "time": "2026-11-22T06:00:00Z", "region": "us-east-1", "resources": [], "detail": {}}))
        .await;
    assert_eq!(scheduled["trigger"], "schedule", "{scheduled}");
    assert_eq!(scheduled["summary"]["images"], 2, "{scheduled}");
    assert_eq!(scheduled["summary"]["failed"], 0, "{scheduled}");
    assert_eq!(scheduled["summary"]["coverage_percent"], 100.0);

    let on_demand = lambda
        .invoke(&json!({"images": ["quay.io/prometheus/prometheus:v2.51.0", "gcr.io/x/y:1"]}))
        .await;
    assert_eq!(on_demand["trigger"], "on-demand list");
    let images = on_demand["images"].as_array().unwrap();
    assert_eq!(
        images.len(),
        4,
        "payload first, then the settings' list: {on_demand}"
    );
    assert_eq!(
        images[0]["reference"],
        "quay.io/prometheus/prometheus:v2.51.0"
    );
    assert_eq!(images[0]["outcome"], "warmed");
    assert_eq!(
        images[0]["platforms"],
        json!(["linux/amd64", "linux/arm64"])
    );
    assert_eq!(images[1]["outcome"], "failed");

    let bad = lambda.invoke(&json!({"images": "nginx"})).await;
    assert!(ptc_tests::lambda::run_failed(&bad).contains("array of strings"));
    assert!(
        lambda
            .logs()
            .lines()
            .filter(|l| l.starts_with("{\"job\":\"prewarm\""))
            .count()
            == 3,
        "{}",
        lambda.logs()
    );
}
