//! `ptc prewarm` as a user runs it against the local stack.

use std::process::{Command, Output};

use ptc_tests::Stack;

fn ptc(stack: &Stack, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ptc"))
        .args(args)
        .env_remove("PTC_CONFIG_FILE")
        .env_remove("PTC_WATCH_LIST")
        .envs(stack.env())
        .env("PTC_METRICS_NAMESPACE", "PtcCliPrewarm")
        .output()
        .expect("run ptc")
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_then_warm_then_json() {
    let stack = Stack::shared();
    stack.create_rule("quay", "quay.io", None).await;
    let (dry, warm, json, failing) = tokio::task::spawn_blocking(move || {
        (
            ptc(
                stack,
                &[
                    "prewarm",
                    "--dry-run",
                    "--image",
                    "quay.io/coreos/etcd:v3.5.13",
                ],
            ),
            ptc(
                stack,
                &[
                    "prewarm",
                    "--image",
                    "quay.io/coreos/etcd:v3.5.13",
                    "--mode",
                    "manifests",
                ],
            ),
            {
                // "already fresh" means cached before the run started (whole seconds here).
                std::thread::sleep(std::time::Duration::from_secs(3));
                ptc(
                    stack,
                    &[
                        "prewarm",
                        "--output",
                        "json",
                        "--no-metrics",
                        "--image",
                        "quay.io/coreos/etcd:v3.5.13",
                    ],
                )
            },
            ptc(
                stack,
                &[
                    "prewarm",
                    "--image",
                    "quay.io/coreos/etcd:v3.5.13",
                    "--image",
                    "quay.io/nothing/here:1",
                ],
            ),
        )
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(dry.status.code(), Some(0), "{text}");
    assert!(
        text.contains("planned") && text.contains("/quay/coreos/etcd:v3.5.13"),
        "{text}"
    );

    let text = String::from_utf8_lossy(&warm.stdout);
    assert_eq!(
        warm.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&warm.stderr)
    );
    assert!(text.contains("warmed"), "{text}");
    assert!(text.contains("1 images: 1 warmed"), "{text}");

    // The default mode after a manifests-mode run: the tag is cached, its blobs are not; they
    // are fetched (and nothing else: no manifest through the cache).
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON report");
    assert_eq!(report["mode"], "layers");
    assert_eq!(report["images"][0]["outcome"], "warmed", "{report:#}");
    assert!(
        report["images"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("blobs the cache did not hold were fetched")),
        "{report:#}"
    );
    assert_eq!(report["traffic"]["cache_manifest_gets"], 0, "{report:#}");

    assert_eq!(failing.status.code(), Some(1));
    let text = String::from_utf8_lossy(&failing.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("quay.io/nothing/here:1") && l.contains("failed")),
        "{text}"
    );
}
