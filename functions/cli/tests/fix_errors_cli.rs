//! `ptc fix` when a creation template cannot be written (throttled past every retry): the
//! template's error reaches the summary, the exit code and the `RunErrors` metric, where it
//! used to appear only in that template's entry with exit code 0. On a stack of its own
//! (the throttle is global to a stack).

use std::process::Command;

use aws_sdk_cloudwatch::types::Statistic;
use ptc_tests::Stack;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_template_that_cannot_be_written_fails_the_run_everywhere() {
    let stack = Stack::shared();
    stack.create_rule("quay", "quay.io", None).await;
    stack
        .control(
            "ecr",
            json!({"throttle": {"CreateRepositoryCreationTemplate": 100}}),
        )
        .await;
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_ptc"))
            .args(["fix", "--mode", "enforce", "--output", "json"])
            .env_remove("PTC_CONFIG_FILE")
            .env_remove("PTC_FIX_MODE")
            .envs(stack.env())
            .env("PTC_AWS_MAX_ATTEMPTS", "2")
            .env("PTC_METRICS_NAMESPACE", "PtcCliFixErrors")
            .output()
            .expect("run ptc")
    })
    .await
    .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON report ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let quay = report["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["prefix"] == "quay")
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        quay["error"]
            .as_str()
            .unwrap_or_default()
            .contains("throttled"),
        "{quay}"
    );
    assert!(
        report["summary"]["errors"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert_eq!(out.status.code(), Some(1), "{report}");
    let run_errors = stack
        .metric(
            "PtcCliFixErrors",
            "RunErrors",
            &[("Job", "lifecycle-fixer")],
            Statistic::Maximum,
        )
        .await;
    assert!(run_errors.is_some_and(|v| v >= 1.0), "{run_errors:?}");
}
