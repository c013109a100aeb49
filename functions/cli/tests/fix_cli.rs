//! `ptc fix` as a user runs it against the local stack: a dry run, a fix, then nothing to do.

use std::process::{Command, Output};

use ptc_tests::Stack;

fn ptc(stack: &Stack, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ptc"))
        .args(args)
        .env_remove("PTC_CONFIG_FILE")
        .env_remove("PTC_FIX_MODE")
        .envs(stack.env())
        .env("PTC_REPOSITORY_TAGS", "managed-by=ptc")
        .env("PTC_METRICS_NAMESPACE", "PtcCliFix")
        .output()
        .expect("run ptc")
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_then_fix_then_compliant() {
    let stack = Stack::shared();
    stack.create_rule("quay", "quay.io", None).await;
    let (client, _) = stack.registry().await;
    client
        .get_manifest("quay/coreos/etcd", "v3.5.13")
        .await
        .unwrap();
    let (dry, fix, again) = tokio::task::spawn_blocking(move || {
        (
            ptc(stack, &["fix", "--mode", "dry-run"]),
            ptc(stack, &["fix"]),
            ptc(stack, &["fix", "--output", "json"]),
        )
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        text.contains("would set the lifecycle policy")
            && text.contains("would tag managed-by=ptc"),
        "{text}"
    );
    assert!(text.contains("dry run, nothing written"), "{text}");
    let text = String::from_utf8_lossy(&fix.stdout);
    assert_eq!(fix.status.code(), Some(0), "{text}");
    assert!(
        text.contains("did set the lifecycle policy") && text.contains("1 fixed"),
        "{text}"
    );
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).expect("JSON report");
    assert_eq!(report["summary"]["non_compliant"], 0, "{report}");
    assert_eq!(report["mode"], "fill");
}
