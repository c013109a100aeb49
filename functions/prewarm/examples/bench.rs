//! Benchmark: warm N two-platform images through the local stack with injected per-request
//! latency at concurrency C, and compare with `skopeo inspect --raw` over the same list.
//! Prints figures and ratios; asserts nothing about time.
//!
//!     cargo run --release -p prewarm --example bench -- [N=2000] [C=64] [LATENCY_MS=20]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prewarm::{Deps, Options, run};
use ptc_core::aws::SdkEcr;
use ptc_core::aws::SdkMetrics;
use ptc_core::aws::SdkSecrets;
use ptc_core::config::PrewarmMode;
use ptc_core::ecr::EcrApi;
use ptc_core::oci::{RegistryClient, http_client};
use ptc_core::platform::Platform;
use ptc_tests::{Stack, peak_rss_kib};
use serde_json::{Value, json};

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn total(counts: &Value) -> u64 {
    counts
        .as_object()
        .map(|o| o.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let (n, c, latency) = (arg(1, 2000) as usize, arg(2, 64) as usize, arg(3, 20));
    let stack = Stack::start();
    let sdk = stack.sdk_config().await;
    aws_sdk_ecr::Client::new(&sdk)
        .create_pull_through_cache_rule()
        .ecr_repository_prefix("quay")
        .upstream_registry_url("quay.io")
        .send()
        .await
        .unwrap();
    let seeded = Instant::now();
    let seed = stack
        .control(
            "seed/bench",
            json!({"repositories": n.div_ceil(50), "tags": 50}),
        )
        .await;
    let images: Vec<String> = seed["images"]
        .as_array()
        .unwrap()
        .iter()
        .take(n)
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    println!(
        "seeded {} images in {:.1} s",
        images.len(),
        seeded.elapsed().as_secs_f64()
    );

    let ecr: Arc<dyn EcrApi> = Arc::new(SdkEcr::new(aws_sdk_ecr::Client::new(&sdk)));
    let http = http_client(Duration::from_secs(60)).unwrap();
    let (cache, host) = RegistryClient::for_ecr(
        http.clone(),
        ecr.clone(),
        Some(&stack.info.registry_endpoint),
    )
    .await
    .unwrap();
    let secrets = SdkSecrets::new(aws_sdk_secretsmanager::Client::new(&sdk));
    let metrics = SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let objects = ptc_core::fakes::FakeObjects::default();
    let upstreams: BTreeMap<String, String> = stack
        .info
        .upstreams
        .iter()
        .map(|(h, u)| (h.clone(), u.url.clone()))
        .collect();
    let deps = Deps {
        ecr: ecr.as_ref(),
        secrets: &secrets,
        objects: &objects,
        metrics: &metrics,
        cache: &cache,
        registry_host: &host,
        http: &http,
        upstream_endpoints: &upstreams,
    };
    let options = Options {
        namespace: "PtcBench".into(),
        platforms: vec![
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/arm64").unwrap(),
        ],
        mode: PrewarmMode::Manifests,
        ratelimit_floor: 0,
        concurrency: c,
        discovery_days: 0,
        settings_watch_list: Vec::new(),
        watch_list_source: None,
        state: None,
        dry_run: false,
        publish_metrics: false,
        stop_at: None,
        progress: None,
    };
    stack
        .control(
            "upstreams/quay.io",
            json!({"latency_ms": latency, "reset_counts": true}),
        )
        .await;
    stack
        .control("ecr", json!({"registry_latency_ms": latency}))
        .await;
    let before = (
        total(&stack.read("registry/counts").await),
        total(&stack.read("ecr").await["calls"]),
    );

    let started = Instant::now();
    let report = run(
        &deps,
        &options,
        "bench",
        images.clone(),
        time::OffsetDateTime::now_utc(),
    )
    .await;
    let wall = started.elapsed().as_secs_f64();

    let registry = total(&stack.read("registry/counts").await) - before.0;
    let aws = total(&stack.read("ecr").await["calls"]) - before.1;
    let upstream = total(&stack.read("upstreams/quay.io/counts").await);
    // Requests the client made itself: registry endpoint, upstream HEADs, AWS calls. The
    // stand-in's own upstream fetches (first pulls) are counted in `upstream` too.
    let heads = report.images.len() as u64;
    let client_requests = registry + heads + aws;
    let limit = client_requests as f64 * latency as f64 / 1000.0 / c as f64;
    println!(
        "prewarm: {} images ({} warmed, {} failed) at concurrency {c}, {latency} ms per request",
        report.summary.images, report.summary.warmed, report.summary.failed
    );
    println!("  wall time            {wall:.2} s");
    println!(
        "  requests             {client_requests} (registry endpoint {registry}, upstream HEAD {heads}, AWS API {aws}; upstream saw {upstream})"
    );
    println!("  latency limit        {limit:.2} s (requests x latency / concurrency)");
    println!("  ratio to the limit   {:.2}x", wall / limit);
    println!(
        "  peak RSS             {:.1} MiB",
        peak_rss_kib() as f64 / 1024.0
    );

    let token = ecr.authorization_token().await.unwrap();
    let endpoint = stack
        .info
        .registry_endpoint
        .trim_start_matches("http://")
        .to_owned();
    let list = images
        .iter()
        .map(|i| {
            format!(
                "docker://{endpoint}/quay/{}",
                i.trim_start_matches("quay.io/")
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let uris: Vec<String> = list.lines().map(str::to_owned).collect();
    let creds = format!("AWS:{}", token.password.expose());
    let Some((skopeo, ok)) = ptc_tests::skopeo_inspect(&uris, c, &creds) else {
        println!("skopeo: not installed (apt-get install skopeo) - comparison skipped");
        return;
    };
    println!(
        "skopeo inspect --raw, same list, -P {c}: {skopeo:.2} s ({}; one manifest per image, no platforms, no verification)",
        if ok { "all succeeded" } else { "some failed" }
    );
    println!(
        "  prewarm is {:.2}x faster while doing more per image",
        skopeo / wall
    );
}
