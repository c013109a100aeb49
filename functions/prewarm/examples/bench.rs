//! Benchmark through the whole local stack (the Python registry endpoint and upstream, moto
//! behind the ECR front): warm N two-platform images in the default `layers` mode with an
//! injected latency L on every request to the registry endpoint and to the upstream, at
//! concurrency C; then run again over the same list and the same state file (the steady
//! state: every image cached and fresh). For each run: wall time, the latency limit,
//! requests to the registry endpoint, blob bytes, ECR calls and upstream HEADs per image.
//! Then `skopeo inspect --raw` over the same list, its process-start cost measured apart.
//! Prints figures and ratios; asserts nothing about time.
//!
//!     cargo run --profile bench-fast -p prewarm --example bench -- [N=2000] [C=64] [L=20]

#[path = "support/peer.rs"]
mod peer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prewarm::{Deps, Options, PrewarmReport, run};
use ptc_core::aws::SdkEcr;
use ptc_core::aws::SdkMetrics;
use ptc_core::aws::SdkSecrets;
use ptc_core::config::PrewarmMode;
use ptc_core::ecr::EcrApi;
use ptc_core::oci::{RegistryClient, http_client};
use ptc_core::platform::Platform;
use ptc_core::watchlist::WatchListSource;
use ptc_tests::{Stack, peak_rss_kib};
use serde_json::{Value, json};

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// `after - before` of a count map (`{"GET /v2/...": 3, ...}`).
fn delta(after: &Value, before: &Value) -> BTreeMap<String, u64> {
    after
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let was = before.get(k).and_then(Value::as_u64).unwrap_or(0);
            let d = v.as_u64()?.saturating_sub(was);
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

fn sum_where(counts: &BTreeMap<String, u64>, keep: impl Fn(&str) -> bool) -> u64 {
    counts.iter().filter(|(k, _)| keep(k)).map(|(_, v)| v).sum()
}

/// What the stack counted during one run.
struct Counts {
    registry: BTreeMap<String, u64>,
    upstream: BTreeMap<String, u64>,
    ecr: BTreeMap<String, u64>,
}

struct Snapshot {
    registry: Value,
    upstream: Value,
    ecr: Value,
}

async fn snapshot(stack: &Stack) -> Snapshot {
    Snapshot {
        registry: stack.read("registry/counts").await,
        upstream: stack.read("upstreams/quay.io/counts").await,
        ecr: stack.read("ecr").await["calls"].clone(),
    }
}

async fn since(stack: &Stack, before: &Snapshot) -> Counts {
    let now = snapshot(stack).await;
    Counts {
        registry: delta(&now.registry, &before.registry),
        upstream: delta(&now.upstream, &before.upstream),
        ecr: delta(&now.ecr, &before.ecr),
    }
}

struct Figures {
    report: PrewarmReport,
    wall: f64,
    counts: Counts,
}

impl Figures {
    fn registry(&self) -> u64 {
        self.counts.registry.values().sum()
    }
    fn manifests(&self) -> u64 {
        sum_where(&self.counts.registry, |k| k.contains("/manifests/"))
    }
    fn blobs(&self) -> u64 {
        sum_where(&self.counts.registry, |k| k.contains("/blobs/"))
    }
    fn upstream_heads(&self) -> u64 {
        sum_where(&self.counts.upstream, |k| {
            k.starts_with("HEAD ") && k.contains("/manifests/")
        })
    }
    fn upstream_other(&self) -> u64 {
        self.counts.upstream.values().sum::<u64>() - self.upstream_heads()
    }
    fn ecr_calls(&self) -> u64 {
        self.counts.ecr.values().sum()
    }
    /// Requests that carry the injected latency, made by the client: the registry endpoint's
    /// and the upstream HEADs (the AWS API, moto, has none).
    fn limit(&self, c: usize, latency: u64) -> f64 {
        (self.registry() + self.upstream_heads()) as f64 * latency as f64 / 1000.0 / c as f64
    }
}

async fn measure(stack: &Stack, deps: &Deps<'_>, options: &Options, images: &[String]) -> Figures {
    let before = snapshot(stack).await;
    let started = Instant::now();
    let report = run(
        deps,
        options,
        "bench",
        images.to_vec(),
        time::OffsetDateTime::now_utc(),
    )
    .await;
    let wall = started.elapsed().as_secs_f64();
    Figures {
        report,
        wall,
        counts: since(stack, &before).await,
    }
}

fn print_runs(runs: &[(&str, &Figures)], n: usize, c: usize, latency: u64) {
    let per = |x: u64| x as f64 / n as f64;
    let row = |label: &str, cells: Vec<String>| {
        print!("  {label:<44}");
        for cell in cells {
            print!("{cell:>16}");
        }
        println!();
    };
    row(
        "",
        runs.iter().map(|(name, _)| (*name).to_owned()).collect(),
    );
    row(
        "images warmed / already fresh / other",
        runs.iter()
            .map(|(_, f)| {
                let s = &f.report.summary;
                format!(
                    "{}/{}/{}",
                    s.warmed,
                    s.already_fresh,
                    s.failed + s.deferred + s.stale
                )
            })
            .collect(),
    );
    row(
        "wall time (s)",
        runs.iter().map(|(_, f)| format!("{:.2}", f.wall)).collect(),
    );
    row(
        "latency limit (s)",
        runs.iter()
            .map(|(_, f)| format!("{:.2}", f.limit(c, latency)))
            .collect(),
    );
    row(
        "ratio to the limit",
        runs.iter()
            .map(|(_, f)| format!("{:.2}x", f.wall / f.limit(c, latency)))
            .collect(),
    );
    row(
        "registry-endpoint requests / image",
        runs.iter()
            .map(|(_, f)| format!("{:.3}", per(f.registry())))
            .collect(),
    );
    row(
        "  manifest / blob requests (total)",
        runs.iter()
            .map(|(_, f)| format!("{}/{}", f.manifests(), f.blobs()))
            .collect(),
    );
    row(
        "blob bytes (report.traffic)",
        runs.iter()
            .map(|(_, f)| f.report.traffic.cache_blob_bytes.to_string())
            .collect(),
    );
    row(
        "ECR API calls / image",
        runs.iter()
            .map(|(_, f)| format!("{:.3}", per(f.ecr_calls())))
            .collect(),
    );
    let ops: BTreeSet<&String> = runs.iter().flat_map(|(_, f)| f.counts.ecr.keys()).collect();
    for op in ops {
        row(
            &format!("  {op}"),
            runs.iter()
                .map(|(_, f)| {
                    let calls = f.counts.ecr.get(op).copied().unwrap_or(0);
                    format!("{calls} ({:.3})", per(calls))
                })
                .collect(),
        );
    }
    row(
        "upstream HEADs / image",
        runs.iter()
            .map(|(_, f)| format!("{:.3}", per(f.upstream_heads())))
            .collect(),
    );
    row(
        "  the stack's own upstream requests",
        runs.iter()
            .map(|(_, f)| f.upstream_other().to_string())
            .collect(),
    );
    row(
        "report.traffic: manifest GETs / blob GETs",
        runs.iter()
            .map(|(_, f)| {
                let t = &f.report.traffic;
                format!("{}/{}", t.cache_manifest_gets, t.cache_blob_gets)
            })
            .collect(),
    );
    for (name, f) in runs {
        for warning in f.report.warnings.iter().chain(&f.report.errors).take(3) {
            println!("  {name}: {warning}");
        }
        if f.report.warnings.len() + f.report.errors.len() > 3 {
            println!(
                "  {name}: ... {} warnings and errors in all",
                f.report.warnings.len() + f.report.errors.len()
            );
        }
        if let Some(odd) = f.report.images.iter().find(|i| {
            !matches!(
                i.outcome,
                prewarm::Outcome::AlreadyFresh | prewarm::Outcome::Warmed
            )
        }) {
            println!(
                "  {name}: e.g. {} {:?}: {}",
                odd.reference,
                odd.outcome,
                odd.reason.as_deref().unwrap_or_default()
            );
        }
    }
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
    let images: Vec<String> = stack
        .seed_bench(n.div_ceil(50), 50)
        .await
        .into_iter()
        .take(n)
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
    let state = std::env::temp_dir().join(format!("ptc-bench-state-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&state);
    let options = Options {
        namespace: "PtcBench".into(),
        platforms: vec![
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/arm64").unwrap(),
        ],
        mode: PrewarmMode::Layers,
        ratelimit_floor: 0,
        concurrency: c,
        discovery_days: 0,
        settings_watch_list: Vec::new(),
        watch_list_source: None,
        state: Some(WatchListSource::File(state.clone())),
        forget_unused: true,
        dry_run: false,
        publish_metrics: false,
        stop_at: None,
        finish_by: None,
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

    let first = measure(&stack, &deps, &options, &images).await;
    let steady = measure(&stack, &deps, &options, &images).await;
    let _ = std::fs::remove_file(&state);
    println!(
        "prewarm through the local stack, layers mode: {n} two-platform images ({} repositories of 50 tags, one index per repository) at concurrency {c}, {latency} ms per request to the registry endpoint and the upstream (none added on the AWS API)",
        n.div_ceil(50)
    );
    let runs = [("first run", &first), ("steady state", &steady)];
    print_runs(&runs, n, c, latency);
    println!(
        "  latency limit = (registry-endpoint requests + upstream HEADs) x L / C; the stack's own upstream requests of a first pull and the AWS API's time are not in it"
    );
    println!(
        "  peak RSS                  {:.1} MiB",
        peak_rss_kib() as f64 / 1024.0
    );

    let token = ecr.authorization_token().await.unwrap();
    let endpoint = stack
        .info
        .registry_endpoint
        .trim_start_matches("http://")
        .to_owned();
    let uris: Vec<String> = images
        .iter()
        .map(|i| {
            format!(
                "docker://{endpoint}/quay/{}",
                i.trim_start_matches("quay.io/")
            )
        })
        .collect();
    let creds = format!("AWS:{}", token.password.expose());
    let before = stack.read("registry/counts").await;
    let Some(peer) = peer::run(&uris, &creds, c) else {
        return;
    };
    let requests: u64 = delta(&stack.read("registry/counts").await, &before)
        .values()
        .sum();
    let walls: Vec<(&str, f64)> = runs.iter().map(|(name, f)| (*name, f.wall)).collect();
    peer::print(&peer, n, requests, c, latency, &walls);
}
