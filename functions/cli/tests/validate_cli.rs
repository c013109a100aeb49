//! `ptc validate` as a user runs it against the local stack.

use std::process::{Command, Output};

use ptc_tests::Stack;
use serde_json::json;

fn ptc(stack: &Stack, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ptc"))
        .args(args)
        .env_remove("PTC_CONFIG_FILE")
        .env_remove("PTC_RULES")
        .envs(stack.env())
        .env("PTC_METRICS_NAMESPACE", "PtcCliTest")
        .output()
        .expect("run ptc")
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_invalid_rules_with_a_failing_exit_code() {
    let stack = Stack::shared();
    let up = stack.upstream("registry-1.docker.io");
    let arn = stack
        .create_secret(
            "ecr-pullthroughcache/docker-hub",
            json!({"username": up.username, "accessToken": "expired-token"}),
        )
        .await;
    stack
        .create_rule("docker-hub", "registry-1.docker.io", Some(&arn))
        .await;
    stack.create_rule("quay", "quay.io", None).await;

    let (table, json_out, quay_only, asked_wrong) = tokio::task::spawn_blocking(move || {
        (
            ptc(stack, &["validate"]),
            ptc(stack, &["validate", "--output", "json", "--no-metrics"]),
            ptc(stack, &["validate", "--prefix", "quay"]),
            ptc(
                stack,
                &[
                    "validate",
                    "--no-metrics",
                    "--prefix",
                    "quay",
                    "--prefix",
                    "no-such-rule",
                    "--prefix",
                    "Quay!",
                ],
            ),
        )
    })
    .await
    .unwrap();

    let text = String::from_utf8_lossy(&table.stdout);
    assert_eq!(table.status.code(), Some(1), "{text}");
    let docker_line = text
        .lines()
        .find(|l| l.starts_with("docker-hub"))
        .expect("docker-hub row");
    assert!(
        docker_line.contains("NO") && docker_line.contains("credentials"),
        "{docker_line}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("quay") && l.contains("yes")),
        "{text}"
    );
    assert!(text.contains("2 rules: 1 valid, 1 invalid"), "{text}");
    assert!(!text.contains("expired-token"));

    let report: serde_json::Value = serde_json::from_slice(&json_out.stdout).expect("JSON report");
    assert_eq!(json_out.status.code(), Some(1));
    assert_eq!(report["summary"]["invalid"], 1);
    assert_eq!(report["metrics_published"], 0);

    assert_eq!(
        quay_only.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&quay_only.stdout)
    );
    assert!(String::from_utf8_lossy(&quay_only.stdout).contains("1 rules: 1 valid"));

    // Prefixes that name no rule, or cannot be one, fail the command; the good one still runs.
    let text = String::from_utf8_lossy(&asked_wrong.stdout);
    assert_eq!(asked_wrong.status.code(), Some(1), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("quay") && l.contains("yes")),
        "{text}"
    );
    assert!(text.contains("not found: no rule no-such-rule"), "{text}");
    assert!(
        text.contains("error: invalid rule prefix \"Quay!\""),
        "{text}"
    );
}

/// With consumers configured (`PTC_PULL_PRINCIPALS`), `ptc validate` shows each one's three
/// kinds of pull through each prefix as the cache side allows them, names the action and
/// the reason of each refusal, and fails; the JSON report carries the same verdicts.
#[tokio::test(flavor = "multi_thread")]
async fn shows_what_the_cache_side_refuses_each_consumer() {
    // A stack of its own: the other test counts the shared stack's rules.
    let stack: &'static Stack = Box::leak(Box::new(Stack::start()));
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    let (table, json_out) = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_ptc"))
                .args(args)
                .env_remove("PTC_CONFIG_FILE")
                .env_remove("PTC_RULES")
                .envs(stack.env())
                .env("PTC_PULL_PRINCIPALS", ptc_tests::CONSUMER_OUTSIDE_ORG)
                .output()
                .expect("run ptc")
        };
        (
            run(&["validate", "--prefix", "k8s", "--no-metrics"]),
            run(&[
                "validate",
                "--prefix",
                "k8s",
                "--no-metrics",
                "--output",
                "json",
            ]),
        )
    })
    .await
    .unwrap();

    let text = String::from_utf8_lossy(&table.stdout);
    assert_eq!(table.status.code(), Some(1), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("k8s") && l.contains("333344445555") && l.contains("DENIED")),
        "{text}"
    );
    assert!(
        text.contains("k8s 333344445555 first pull: denied ecr:CreateRepository: no statement of registry policy"),
        "{text}"
    );
    assert!(
        text.contains(
            "1 rules: 1 valid, 0 invalid, 0 missing; 0 of 1 prefixes ready for their consumers"
        ),
        "{text}"
    );

    let report: serde_json::Value = serde_json::from_slice(&json_out.stdout).expect("JSON report");
    assert_eq!(json_out.status.code(), Some(1));
    let k8s = &report["cross_account"][0];
    assert_eq!(k8s["prefix"], "k8s");
    assert_eq!(k8s["ready"], false);
    let first = &k8s["consumers"][0]["first_pull"];
    assert_eq!(first["outcome"], "denied", "{k8s:#}");
    assert_eq!(first["action"], "ecr:CreateRepository");
    assert_eq!(report["summary"]["cross_account_not_ready"], 1);
}
