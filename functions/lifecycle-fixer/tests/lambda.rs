//! The built lifecycle-fixer binary answers the real CloudTrail and pull-through cache
//! events through a real Lambda Runtime API; a second delivery of an event changes nothing.

use std::path::Path;

use ptc_tests::Stack;
use ptc_tests::lambda::Lambda;
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    ptc_tests::fixtures::json(env!("CARGO_MANIFEST_DIR"), name)
}

fn changes(report: &Value) -> usize {
    report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["changes"].as_array().unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn events_through_the_runtime_api_are_idempotent() {
    let stack = Stack::shared();
    stack.create_docker_hub_rule().await;
    stack.create_rule("quay", "quay.io", None).await;
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    let (client, _) = stack.registry().await;
    client
        .get_manifest("docker-hub/library/nginx", "1.25")
        .await
        .unwrap();
    client
        .get_manifest("quay/prometheus/prometheus", "v2.51.0")
        .await
        .unwrap();
    client.get_manifest("k8s/pause", "3.9").await.unwrap();

    let mut env = stack.env();
    env.push(("PTC_METRICS_NAMESPACE".into(), "PtcFixLambda".into()));
    env.push(("PTC_REPOSITORY_TAGS".into(), "managed-by=ptc".into()));
    env.push(("PTC_PULL_PRINCIPALS".into(), "111122223333".into()));
    let lambda = Lambda::start(Path::new(env!("CARGO_BIN_EXE_lifecycle-fixer")), &env, 60);

    for (file, repository) in [
        (
            "cloudtrail-service-create-repository.json",
            "docker-hub/library/nginx",
        ),
        (
            "cloudtrail-api-create-repository.json",
            "quay/prometheus/prometheus",
        ),
        ("ptc-action-success.json", "k8s/pause"),
    ] {
        let first = lambda.invoke(&fixture(file)).await;
        assert_eq!(
            first["repositories"][0]["repository"], repository,
            "{file}: {first}"
        );
        assert_eq!(
            changes(&first),
            3,
            "lifecycle policy, repository policy, tags: {first}"
        );
        assert!(first["errors"].as_array().unwrap().is_empty(), "{first}");
        let again = lambda.invoke(&fixture(file)).await;
        assert_eq!(
            changes(&again),
            0,
            "a second delivery changes nothing: {again}"
        );
    }

    let sweep = lambda
        .invoke(&json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}))
        .await;
    assert_eq!(sweep["summary"]["scanned"], 3, "{sweep}");
    assert_eq!(sweep["summary"]["non_compliant"], 0, "{sweep}");

    let bad = lambda.invoke(&json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.ecr", "detail": {"eventName": "DeleteRepository"}})).await;
    assert!(
        ptc_tests::lambda::run_failed(&bad).contains("DeleteRepository"),
        "{bad}"
    );
}
