//! The built validate-rules binary answers real event payloads through a real Lambda
//! Runtime API (the emulator), against the local stack.

use std::path::Path;

use ptc_tests::Stack;
use ptc_tests::lambda::Lambda;
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    ptc_tests::fixtures::json(env!("CARGO_MANIFEST_DIR"), name)
}

fn prefixes(report: &Value) -> Vec<&str> {
    report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["prefix"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn real_events_through_the_runtime_api() {
    let stack = Stack::shared();
    let up = stack.upstream("registry-1.docker.io");
    stack.create_docker_hub_rule().await;
    stack.create_rule("quay", "quay.io", None).await;

    let mut env = stack.env();
    env.push(("PTC_METRICS_NAMESPACE".into(), "PtcLambdaTest".into()));
    // The default filter (info), as deployed.
    let lambda = Lambda::start(Path::new(env!("CARGO_BIN_EXE_validate-rules")), &env, 30);

    let scheduled = lambda.invoke(&fixture("scheduled-event.json")).await;
    assert_eq!(scheduled["trigger"], "schedule", "{scheduled}");
    assert_eq!(prefixes(&scheduled), ["docker-hub", "quay"]);
    assert_eq!(scheduled["summary"]["valid"], 2, "{scheduled}");
    assert!(scheduled["metrics_published"].as_u64().unwrap() >= 5);

    let empty = lambda.invoke(&json!({})).await;
    assert_eq!(prefixes(&empty), ["docker-hub", "quay"]);

    for file in [
        "cloudtrail-create-rule.json",
        "cloudtrail-update-rule.json",
        "cloudtrail-delete-rule.json",
        "ptc-action-failure.json",
    ] {
        let report = lambda.invoke(&fixture(file)).await;
        assert_eq!(prefixes(&report), ["docker-hub"], "{file}: {report}");
        assert_eq!(report["rules"][0]["valid"], true, "{file}: {report}");
    }

    let bad = lambda.invoke(&json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}})).await;
    assert!(
        ptc_tests::lambda::run_failed(&bad).contains("EC2 Instance State-change Notification"),
        "{bad}"
    );
    let huge = json!({"detail-type": "x".repeat(1_000_000)});
    let rejected = lambda.invoke(&huge).await;
    assert!(!ptc_tests::lambda::run_failed(&rejected).is_empty());
    // The function is still alive after bad input.
    let after = lambda.invoke(&json!({"prefixes": ["quay"]})).await;
    assert_eq!(prefixes(&after), ["quay"]);

    let logs = lambda.logs();
    let report_lines = logs
        .lines()
        .filter(|l| l.starts_with("{\"job\":\"validate-rules\""))
        .count();
    assert_eq!(
        report_lines, 9,
        "one JSON report line per invocation:\n{logs}"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("\"level\":\"INFO\"") && l.contains("rule checked")),
        "structured JSON logs:\n{logs}"
    );
    assert!(
        !logs.lines().any(|l| l.contains("\"level\":\"DEBUG\"")),
        "at the default level no library logs its debug output:\n{logs}"
    );
    assert!(
        !logs.contains(up.password.as_deref().unwrap()),
        "the access token never reaches the log"
    );
}

/// The scheduled check through the Runtime API (issue 17): with a consumer account granted
/// pull and nothing granted yet on the cache side, the run reports the prefix not ready for
/// it and publishes `CrossAccountReady` 0; once the registry policy and the template grant
/// it, the next scheduled run publishes 1. Its own stack: the registry policy is the
/// account's.
#[tokio::test(flavor = "multi_thread")]
async fn the_scheduled_check_judges_cross_account_pulls() {
    let stack = Stack::start();
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    let mut env = stack.env();
    env.push(("PTC_METRICS_NAMESPACE".into(), "PtcLambdaCross".into()));
    env.push((
        "PTC_PULL_PRINCIPALS".into(),
        ptc_tests::CONSUMER_OUTSIDE_ORG.into(),
    ));
    let lambda = Lambda::start(Path::new(env!("CARGO_BIN_EXE_validate-rules")), &env, 30);
    let ready = |report: &Value| report["cross_account"][0]["ready"].as_bool();
    let metric = || async {
        stack
            .metric(
                "PtcLambdaCross",
                "CrossAccountReady",
                &[("Prefix", "k8s")],
                aws_sdk_cloudwatch::types::Statistic::Minimum,
            )
            .await
    };

    let before = lambda.invoke(&fixture("scheduled-event.json")).await;
    assert_eq!(ready(&before), Some(false), "{before}");
    assert_eq!(metric().await, Some(0.0));

    // The cache side grants what a first pull, a new tag and a cached pull need.
    let sdk = stack.sdk_config().await;
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    let consumer = format!("arn:aws:iam::{}:root", ptc_tests::CONSUMER_OUTSIDE_ORG);
    let repositories = format!(
        "arn:aws:ecr:{}:{}:repository/k8s/*",
        stack.info.region, stack.info.account
    );
    ecr.put_registry_policy()
        .policy_text(
            json!({"Version": "2012-10-17", "Statement": [{"Sid": "Import", "Effect": "Allow",
                "Principal": {"AWS": consumer}, "Action": ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"],
                "Resource": repositories}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    ecr.create_repository_creation_template()
        .prefix("k8s")
        .applied_for(aws_sdk_ecr::types::RctAppliedFor::PullThroughCache)
        .repository_policy(
            json!({"Version": "2012-10-17", "Statement": [{"Sid": "Pull", "Effect": "Allow",
                "Principal": {"AWS": consumer},
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let after = lambda.invoke(&fixture("scheduled-event.json")).await;
    assert_eq!(ready(&after), Some(true), "{after}");
    assert_eq!(
        stack
            .metric(
                "PtcLambdaCross",
                "CrossAccountReady",
                &[("Prefix", "k8s")],
                aws_sdk_cloudwatch::types::Statistic::Maximum,
            )
            .await,
        Some(1.0)
    );
}
