//! Benchmark: a sweep over R repositories under one rule prefix on the local stack, with
//! the API calls it makes. Prints figures; asserts nothing about time.
//!
//!     cargo run --release -p lifecycle-fixer --example bench_sweep -- [R=1000]

use std::collections::BTreeMap;
use std::time::Instant;

use lifecycle_fixer::desired::{Desired, default_lifecycle, pull_policy};
use lifecycle_fixer::plan::Mode;
use lifecycle_fixer::{Deps, Options, sweep};
use ptc_core::aws::SdkEcr;
use ptc_core::aws::SdkMetrics;
use ptc_tests::{Stack, peak_rss_kib};
use serde_json::Value;

fn calls(v: &Value) -> BTreeMap<String, u64> {
    v["calls"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect()
}

fn diff(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

#[tokio::main]
async fn main() {
    let r: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let stack = Stack::start();
    stack.create_rule("quay", "quay.io", None).await;
    let sdk = stack.sdk_config().await;
    let client = aws_sdk_ecr::Client::new(&sdk);
    let t = Instant::now();
    // Repositories straight into ECR's state (the stack's seed), no image in them.
    stack
        .control(
            "seed/inventory",
            serde_json::json!({"prefix": "quay", "repositories": r, "images": 0}),
        )
        .await;
    println!(
        "seeded {r} repositories in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let ecr = SdkEcr::new(client);
    let metrics = SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let deps = Deps {
        ecr: &ecr,
        settings: &ecr,
        templates: &ecr,
        metrics: &metrics,
    };
    let options = Options {
        desired: Desired {
            lifecycle_policy: Some(default_lifecycle(30).canonical()),
            repository_policy: pull_policy(&["111122223333".into()], None),
            tags: BTreeMap::from([("managed-by".into(), "ptc".into())]),
            scan_on_push: false,
        }
        .into(),
        mode: Mode::Fill,
        dry_run: false,
        concurrency: 16,
        namespace: "PtcBench".into(),
        publish_metrics: true,
        stop_at: None,
        cache_made: false,
    };
    for run in ["first sweep (fixes)", "second sweep (compliant)"] {
        let before = calls(&stack.read("ecr").await);
        let t = Instant::now();
        let report = sweep(&deps, &options, None, "bench").await;
        let elapsed = t.elapsed().as_secs_f64();
        let made = diff(&calls(&stack.read("ecr").await), &before);
        println!(
            "{run}: {} repositories in {elapsed:.2} s, {} fixed; calls: {}",
            report.summary.scanned,
            report.summary.fixed,
            made.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "  DescribeRepositories calls: {} (ceil(R/1000) = {})",
            made.get("DescribeRepositories").copied().unwrap_or(0),
            r.div_ceil(1000)
        );
    }
    println!(
        "peak RSS of the process (job and harness): {:.1} MiB",
        peak_rss_kib() as f64 / 1024.0
    );
}
