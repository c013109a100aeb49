//! Benchmark: the inventory of R cached repositories (K images each) on the local stack, with
//! the API calls it makes. Prints figures; asserts nothing about time.
//!
//!     cargo run --release -p health-metrics --example bench_inventory -- [R=1000] [K=3]

use std::collections::BTreeMap;
use std::time::Instant;

use health_metrics::{Deps, Options, run};
use ptc_core::aws::SdkEcr;
use ptc_core::aws::SdkMetrics;
use ptc_core::aws::SdkObjects;
use ptc_core::platform::Platform;
use ptc_tests::{Stack, peak_rss_kib};
use serde_json::{Value, json};

fn calls(v: &Value) -> BTreeMap<String, u64> {
    v["calls"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().ok());
    let r = args.next().flatten().unwrap_or(1000);
    let k = args.next().flatten().unwrap_or(3);
    let stack = Stack::start();
    stack.create_rule("quay", "quay.io", None).await;
    let t = Instant::now();
    let seeded = stack
        .control(
            "seed/inventory",
            json!({"prefix": "quay", "repositories": r, "images": k}),
        )
        .await;
    println!(
        "seeded {} repositories, {} images in {:.1} s",
        seeded["repositories"],
        seeded["images"],
        t.elapsed().as_secs_f64()
    );
    let sdk = stack.sdk_config().await;
    let ecr = SdkEcr::new(aws_sdk_ecr::Client::new(&sdk));
    let objects = SdkObjects::new(ptc_core::aws::AwsClients::new(&sdk).s3());
    let metrics = SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let deps = Deps {
        ecr: &ecr,
        objects: &objects,
        metrics: &metrics,
    };
    let options = Options {
        namespace: "PtcBench".into(),
        platforms: vec![Platform::parse("linux/amd64").unwrap()],
        concurrency: 16,
        price_per_gb_month: 0.10,
        archive_price_per_gb_month: 0.07,
        unused_days: 30,
        per_repository: false,
        watch_list: (0..20)
            .map(|i| format!("quay.io/inventory/app-{i}:v0"))
            .collect(),
        watch_list_source: None,
        publish_metrics: true,
    };
    let before = calls(&stack.read("ecr").await);
    let cw_before = stack.read("cloudwatch").await["put_calls"]
        .as_u64()
        .unwrap();
    let t = Instant::now();
    let report = run(&deps, &options, "bench", time::OffsetDateTime::now_utc()).await;
    let elapsed = t.elapsed().as_secs_f64();
    let after = calls(&stack.read("ecr").await);
    let cw_after = stack.read("cloudwatch").await["put_calls"]
        .as_u64()
        .unwrap();
    let quay = &report.prefixes[0];
    println!(
        "inventory of {} repositories / {} images / {} bytes: {elapsed:.2} s, errors {}",
        quay.repositories,
        quay.images,
        quay.stored_bytes,
        report.errors.len()
    );
    assert_eq!(quay.stored_bytes, seeded["bytes"].as_u64().unwrap());
    for (op, n) in &after {
        let d = n - before.get(op).copied().unwrap_or(0);
        if d > 0 {
            println!("  {op}: {d}");
        }
    }
    println!(
        "  PutMetricData: {} ({} values)",
        cw_after - cw_before,
        report.metrics_published
    );
    println!(
        "peak RSS of the process (job and harness): {:.1} MiB",
        peak_rss_kib() as f64 / 1024.0
    );
}
