//! Benchmark: one validation run over 50 rules (the registry's maximum) on the local stack,
//! at concurrency 1, 8 and 16. Prints figures; asserts nothing about time.
//!
//!     cargo run -p validate-rules --example bench_50_rules -- [UPSTREAM_LATENCY_MS=0]
//!
//! ECR's validation authenticates to the upstream; the optional latency is added to every
//! upstream request (the stand-in's Docker Hub makes three per validation: the challenge,
//! the token service, the authenticated check), as a real upstream's round trips would be.

use std::time::Instant;

use ptc_core::aws::SdkEcr;
use ptc_core::aws::SdkMetrics;
use ptc_core::aws::SdkSecrets;
use ptc_tests::Stack;
use serde_json::json;
use validate_rules::event::Trigger;
use validate_rules::{Deps, Options, run};

#[tokio::main]
async fn main() {
    let latency_ms: u64 = match std::env::args().nth(1) {
        None => 0,
        Some(arg) => arg
            .parse()
            .unwrap_or_else(|_| panic!("UPSTREAM_LATENCY_MS must be a number, got {arg:?}")),
    };
    let started = Instant::now();
    let stack = Stack::start();
    println!("stack started in {:.1} s", started.elapsed().as_secs_f64());
    for host in ["registry-1.docker.io", "quay.io", "registry.k8s.io"] {
        stack
            .control(
                &format!("upstreams/{host}"),
                json!({"latency_ms": latency_ms}),
            )
            .await;
    }
    println!("upstream latency: {latency_ms} ms per request");
    let sdk = stack.sdk_config().await;
    let ecr_client = aws_sdk_ecr::Client::new(&sdk);
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let up = stack.upstream("registry-1.docker.io");
    let arn = sm
        .create_secret()
        .name("ecr-pullthroughcache/bench")
        .secret_string(json!({"username": up.username, "accessToken": up.password}).to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    for i in 0..50 {
        let (url, credential) = match i % 3 {
            0 => ("registry-1.docker.io", Some(arn.clone())),
            1 => ("quay.io", None),
            _ => ("registry.k8s.io", None),
        };
        ecr_client
            .create_pull_through_cache_rule()
            .ecr_repository_prefix(format!("bench-{i:02}"))
            .upstream_registry_url(url)
            .set_credential_arn(credential)
            .send()
            .await
            .expect("create rule");
    }
    let ecr = SdkEcr::new(ecr_client);
    let secrets = SdkSecrets::new(sm);
    let metrics = SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let deps = Deps {
        ecr: &ecr,
        secrets: &secrets,
        metrics: &metrics,
        templates: &ecr,
    };
    for concurrency in [1, 8, 16] {
        let options = Options {
            namespace: "PtcBench".into(),
            expected: Vec::new(),
            credential_max_age_days: 90,
            rule_prefixes: Vec::new(),
            concurrency,
            publish_metrics: true,
            consumers: Default::default(),
            pull_time_exclusions: Vec::new(),
            caller_exclusion: None,
        };
        let calls_before = stack.read("ecr").await["calls"].clone();
        let t = Instant::now();
        let report = run(
            &deps,
            &options,
            &Trigger::All {
                source: "bench".into(),
            },
            time::OffsetDateTime::now_utc(),
        )
        .await;
        let elapsed = t.elapsed();
        let calls_after = stack.read("ecr").await["calls"].clone();
        let validate_calls = calls_after["ValidatePullThroughCacheRule"]
            .as_u64()
            .unwrap_or(0)
            - calls_before["ValidatePullThroughCacheRule"]
                .as_u64()
                .unwrap_or(0);
        println!(
            "concurrency {concurrency:>2}: {} rules ({} valid) in {:.3} s, {} ValidatePullThroughCacheRule calls, {} metric values",
            report.summary.rules,
            report.summary.valid,
            elapsed.as_secs_f64(),
            validate_calls,
            report.metrics_published
        );
    }
}
