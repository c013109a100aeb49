//! `ptc health` as a user runs it against the local stack.

use std::process::{Command, Output};

use ptc_tests::Stack;

fn ptc(stack: &Stack, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ptc"))
        .args(args)
        .env_remove("PTC_CONFIG_FILE")
        .envs(stack.env())
        .env("PTC_METRICS_NAMESPACE", "PtcCliHealth")
        .env(
            "PTC_WATCH_LIST",
            "quay.io/coreos/etcd:v3.5.13, quay.io/argoproj/argocd:v2.10.0",
        )
        .output()
        .expect("run ptc")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn report_then_outage_list_with_exit_codes() {
    let stack = Stack::shared();
    stack.create_rule("quay", "quay.io", None).await;
    let (client, _) = stack.registry().await;
    client
        .get_manifest("quay/coreos/etcd", "v3.5.13")
        .await
        .unwrap();
    let (report, outage, json, other) = tokio::task::spawn_blocking(move || {
        (
            ptc(stack, &["health"]),
            ptc(stack, &["health", "--outage", "quay.io", "--no-metrics"]),
            ptc(
                stack,
                &[
                    "health",
                    "--outage",
                    "quay.io",
                    "--output",
                    "json",
                    "--no-metrics",
                ],
            ),
            ptc(stack, &["health", "--outage", "docker.io", "--no-metrics"]),
        )
    })
    .await
    .unwrap();

    let text = stdout(&report);
    assert!(
        report.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(
        text.contains("PREFIX") && text.contains("quay.io"),
        "{text}"
    );
    assert!(
        text.contains("watch list: 2 images, 1 cached (50.0%)"),
        "{text}"
    );
    assert!(
        text.contains("if quay.io went down: 1 of 2 watched images would fail"),
        "{text}"
    );

    let text = stdout(&outage);
    assert_eq!(
        outage.status.code(),
        Some(1),
        "something would fail: {text}"
    );
    assert!(text.contains("quay.io/argoproj/argocd:v2.10.0"), "{text}");
    assert!(text.contains("not-cached"), "{text}");
    assert!(!text.contains("etcd"), "{text}");

    let items: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    assert_eq!(items[0]["state"], "not-cached");
    assert_eq!(items[0]["repository"], "quay/argoproj/argocd");

    assert!(other.status.success());
    assert!(
        stdout(&other).contains("no watch-list image comes from docker.io"),
        "{}",
        stdout(&other)
    );
}
