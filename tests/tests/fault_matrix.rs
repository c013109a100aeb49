//! The fault matrix: one test per fault, each on its own local stack (the faults are global
//! to a stack). For each: no panic, a report comes back, every unaffected item is still
//! processed, the affected items carry a reason, the matching failure metric is published
//! (or its publishing failure reported), and nothing was deleted. Each test writes its row of
//! the matrix to stderr (uncaptured), so the test output shows the whole matrix.

mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use common::{DOCKER, World};
use lifecycle_fixer::desired::default_lifecycle;
use prewarm::{Outcome, PrewarmReport};
use serde_json::{Value, json};

/// The end of a reason (where the cause is), for the matrix.
fn tail(reason: &str) -> String {
    let chars: Vec<char> = reason.chars().collect();
    chars[chars.len().saturating_sub(70)..].iter().collect()
}

/// One row of the matrix, straight to stderr so that it shows in the test output.
fn row(n: u32, fault: &str, jobs: &str, outcome: &str) {
    let line = format!("FAULT MATRIX | {n:>2} | {fault:<58} | {jobs:<32} | {outcome}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

fn outcome<'a>(report: &'a PrewarmReport, reference: &str) -> &'a prewarm::ImageResult {
    report
        .images
        .iter()
        .find(|i| i.reference == reference)
        .unwrap_or_else(|| panic!("{reference} not in the report"))
}

const QUAY: &str = "quay.io/coreos/etcd:v3.5.13";
const QUAY_2: &str = "quay.io/argoproj/argocd:v2.10.0";
const K8S: &str = "registry.k8s.io/pause:3.9";
const HUB: &str = "nginx:1.25";
const HUB_2: &str = "nats:2.10.12-alpine";

#[tokio::test(flavor = "multi_thread")]
async fn fault_01_an_upstream_down_for_the_whole_run() {
    let w = World::new().await;
    // etcd is cached before the outage; argocd is not.
    assert_eq!(w.prewarm(&[QUAY]).await.summary.failed, 0);
    let before = w.snapshot().await;
    w.control("upstreams/quay.io", json!({"down": true})).await;
    let report = w.prewarm(&[QUAY, QUAY_2, K8S]).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_ne!(
        outcome(&report, QUAY).outcome,
        Outcome::Failed,
        "cached: still served"
    );
    let failed = outcome(&report, QUAY_2);
    assert_eq!(failed.outcome, Outcome::Failed);
    assert!(failed.reason.is_some());
    assert_eq!(
        outcome(&report, K8S).outcome,
        Outcome::Warmed,
        "other upstreams unaffected"
    );
    assert_eq!(
        w.metric("ImagesFailed", &[("Prefix", "quay")]).await,
        Some(1.0)
    );
    let validation = w.validate().await;
    let quay = validation
        .rules
        .iter()
        .find(|r| r.prefix == "quay")
        .unwrap();
    assert!(!quay.valid && quay.failure.is_some(), "{quay:?}");
    assert!(
        validation
            .rules
            .iter()
            .filter(|r| r.prefix != "quay")
            .all(|r| r.valid)
    );
    assert_eq!(
        w.metric("RuleValid", &[("Prefix", "quay")]).await,
        Some(0.0)
    );
    let health = w.health(&[QUAY, QUAY_2]).await;
    assert!(health.errors.is_empty(), "{:?}", health.errors);
    w.nothing_deleted(&before).await;
    row(
        1,
        "upstream down for the whole run",
        "prewarm, validate-rules, health",
        "cached image served, uncached failed with reason, quay rule invalid, others ok",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_02_a_429_with_retry_after_and_no_budget_left() {
    let w = World::new().await;
    let before = w.snapshot().await;
    w.control(
        &format!("upstreams/{DOCKER}"),
        json!({"ratelimit_limit": 100, "ratelimit_remaining": 0, "retry_after": 3600}),
    )
    .await;
    let report = w.prewarm(&[HUB, HUB_2, QUAY]).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    for hub in [HUB, HUB_2] {
        let r = outcome(&report, hub);
        assert_eq!(r.outcome, Outcome::Deferred, "{r:?}");
        assert!(r.reason.is_some());
    }
    assert_eq!(outcome(&report, QUAY).outcome, Outcome::Warmed);
    assert_eq!(
        w.metric("ImagesDeferred", &[("Prefix", "docker-hub")])
            .await,
        Some(2.0)
    );
    w.nothing_deleted(&before).await;
    row(
        2,
        "429 with Retry-After and ratelimit-remaining: 0",
        "prewarm",
        "Docker Hub images deferred (not failed), quay warmed, ImagesDeferred=2",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_03_a_burst_of_5xx_that_clears() {
    let w = World::new().await;
    let before = w.snapshot().await;
    w.control(
        "upstreams/quay.io",
        json!({"fail_next": 2, "fail_status": 503}),
    )
    .await;
    let report = w.prewarm(&[QUAY, K8S]).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.summary.failed, 0, "{:#?}", report.images);
    assert_eq!(report.summary.warmed, 2);
    assert_eq!(
        w.metric("ImagesFailed", &[("Prefix", "quay")]).await,
        Some(0.0)
    );
    w.nothing_deleted(&before).await;
    row(
        3,
        "a burst of 5xx that clears",
        "prewarm",
        "retried; both images warmed, ImagesFailed=0",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_04_an_upstream_slower_than_the_request_timeout() {
    let w = World::new().await;
    let before = w.snapshot().await;
    // Slower than ECR's own wait for the upstream (3 s here) and than the client's (2 s).
    w.control("upstreams/quay.io", json!({"latency_ms": 4000}))
        .await;
    w.control("ecr", json!({"upstream_timeout": 3})).await;
    let client = w.registry(Duration::from_secs(2)).await;
    let started = Instant::now();
    let report = w
        .prewarm_with(&w.prewarm_options(), &client, &[QUAY, K8S])
        .await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let slow = outcome(&report, QUAY);
    assert_eq!(slow.outcome, Outcome::Failed, "{slow:?}");
    assert!(slow.reason.is_some());
    assert_eq!(outcome(&report, K8S).outcome, Outcome::Warmed);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bounded by the timeouts"
    );
    assert_eq!(
        w.metric("ImagesFailed", &[("Prefix", "quay")]).await,
        Some(1.0)
    );
    w.control("upstreams/quay.io", json!({"latency_ms": 0}))
        .await;
    w.nothing_deleted(&before).await;
    row(
        4,
        "upstream slower than the per-request timeout",
        "prewarm",
        &format!(
            "slow image failed (…{}), the other warmed, {:.0} s",
            tail(slow.reason.as_deref().unwrap_or("")),
            started.elapsed().as_secs_f64()
        ),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_05_a_truncated_manifest_and_one_that_is_not_json() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let mut reasons = Vec::new();
    for (mode, image) in [("truncate", QUAY), ("not-json", QUAY_2)] {
        w.control("upstreams/quay.io", json!({"corrupt_manifests": mode}))
            .await;
        let report = w.prewarm(&[image, K8S]).await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let broken = outcome(&report, image);
        assert_eq!(broken.outcome, Outcome::Failed, "{mode}: {broken:?}");
        let reason = broken.reason.clone().unwrap();
        assert!(
            reason.contains("not JSON")
                || reason.contains("hashing to")
                || reason.contains("not an image manifest"),
            "{mode}: the reason names the cause: {reason}"
        );
        reasons.push(reason);
        assert_ne!(outcome(&report, K8S).outcome, Outcome::Failed);
    }
    w.control("upstreams/quay.io", json!({"corrupt_manifests": null}))
        .await;
    assert_eq!(
        w.metric("ImagesFailed", &[("Prefix", "quay")]).await,
        Some(1.0)
    );
    let health = w.health(&[QUAY, QUAY_2]).await;
    assert!(health.errors.is_empty(), "{:?}", health.errors);
    w.nothing_deleted(&before).await;
    row(
        5,
        "a truncated manifest, and one that is not JSON",
        "prewarm, health",
        &format!(
            "both failed: …{} / …{}; k8s warmed",
            tail(&reasons[0]),
            tail(&reasons[1])
        ),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_06_the_registry_token_expiring_mid_run() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let client = w.registry(Duration::from_secs(10)).await;
    let first = w.prewarm_with(&w.prewarm_options(), &client, &[QUAY]).await;
    assert_eq!(first.summary.failed, 0);
    let tokens_before = w.stack.read("ecr").await["calls"]["GetAuthorizationToken"]
        .as_u64()
        .unwrap_or(0);
    // Every token the stack issued so far stops working: the next request gets a 401.
    w.control("ecr", json!({"revoke_tokens": true})).await;
    let report = w
        .prewarm_with(&w.prewarm_options(), &client, &[QUAY_2, K8S])
        .await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.summary.failed, 0, "{:#?}", report.images);
    let tokens_after = w.stack.read("ecr").await["calls"]["GetAuthorizationToken"]
        .as_u64()
        .unwrap_or(0);
    assert!(tokens_after > tokens_before, "a new token was fetched");
    w.nothing_deleted(&before).await;
    row(
        6,
        "registry token expiring mid-run (401, then a new token)",
        "prewarm",
        &format!(
            "new token fetched ({} more GetAuthorizationToken), all warmed",
            tokens_after - tokens_before
        ),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_07_ecr_throttling_on_list_and_describe() {
    let w = World::new().await;
    assert_eq!(w.prewarm(&[QUAY, K8S]).await.summary.failed, 0);
    let before = w.snapshot().await;
    w.control(
        "ecr",
        json!({"throttle": {"DescribeRepositories": 2, "DescribeImages": 2, "DescribePullThroughCacheRules": 1}}),
    )
    .await;
    let health = w.health(&[QUAY, K8S]).await;
    assert!(health.errors.is_empty(), "{:?}", health.errors);
    assert_eq!(health.coverage.cached, 2);
    let throttle = w.stack.read("ecr").await["throttle"].clone();
    for op in [
        "DescribeRepositories",
        "DescribeImages",
        "DescribePullThroughCacheRules",
    ] {
        assert_eq!(
            throttle[op], 0,
            "{op} was throttled and retried: {throttle}"
        );
    }
    w.control(
        "ecr",
        json!({"throttle": {"DescribeRepositories": 2, "GetLifecyclePolicy": 2}}),
    )
    .await;
    let fix = w.sweep_with(&w.fix_options(), None).await;
    assert!(fix.errors.is_empty(), "{:?}", fix.errors);
    assert_eq!(fix.summary.errors, 0, "{:#?}", fix.repositories);
    assert_eq!(fix.summary.scanned, 2);
    let throttle = w.stack.read("ecr").await["throttle"].clone();
    assert_eq!(throttle["GetLifecyclePolicy"], 0, "{throttle}");
    w.nothing_deleted(&before).await;
    row(
        7,
        "ECR ThrottlingException on list and describe calls",
        "health, lifecycle-fixer",
        "retried with backoff by the SDK; both runs complete without errors",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_08_secrets_manager_denying_one_secret() {
    let w = World::new().await;
    let ghcr = w
        .stack
        .upstream_secret("ecr-pullthroughcache/ghcr", "ghcr.io")
        .await;
    w.stack.create_rule("ghcr", "ghcr.io", Some(&ghcr)).await;
    let before = w.snapshot().await;
    w.control("secrets", json!({"deny": ["ecr-pullthroughcache/ghcr"]}))
        .await;
    let report = w.validate().await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let denied = report.rules.iter().find(|r| r.prefix == "ghcr").unwrap();
    assert!(!denied.valid, "{denied:?}");
    assert!(
        denied
            .findings
            .iter()
            .any(|f| f.message.contains("AccessDenied")
                || f.message.to_lowercase().contains("denied")),
        "{denied:?}"
    );
    let hub = report
        .rules
        .iter()
        .find(|r| r.prefix == "docker-hub")
        .unwrap();
    assert!(hub.valid, "the other secret is still checked: {hub:?}");
    assert!(hub.credential_age_days.is_some());
    assert_eq!(
        w.metric("RuleValid", &[("Prefix", "ghcr")]).await,
        Some(0.0)
    );
    w.control("secrets", json!({"deny": []})).await;
    w.nothing_deleted(&before).await;
    row(
        8,
        "Secrets Manager denying access to one secret",
        "validate-rules",
        "ghcr rule reported with AccessDenied, docker-hub secret still checked",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_09_put_metric_data_failing() {
    let w = World::new().await;
    let before = w.snapshot().await;
    w.control("cloudwatch", json!({"fail_next": 1000})).await;
    let prewarm = w.prewarm(&[QUAY, K8S]).await;
    assert_eq!(prewarm.summary.warmed, 2, "the results stand");
    assert!(
        prewarm.errors.iter().any(|e| e.contains("metric")),
        "{:?}",
        prewarm.errors
    );
    let validation = w.validate().await;
    assert_eq!(validation.rules.len(), 3);
    assert!(validation.errors.iter().any(|e| e.contains("metric")));
    let health = w.health(&[QUAY]).await;
    assert_eq!(health.coverage.cached, 1);
    assert!(health.errors.iter().any(|e| e.contains("metric")));
    let fix = w.sweep_with(&w.fix_options(), None).await;
    assert_eq!(fix.summary.fixed, 2);
    assert!(fix.errors.iter().any(|e| e.contains("metric")));
    w.control("cloudwatch", json!({"fail_next": 0})).await;
    w.nothing_deleted(&before).await;
    row(
        9,
        "CloudWatch PutMetricData failing",
        "prewarm, validate-rules, health, fixer",
        "every job returns its results; the publishing failure is in each report",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_10_the_same_event_delivered_twice() {
    let w = World::new().await;
    assert_eq!(w.prewarm(&[K8S]).await.summary.failed, 0);
    let before = w.snapshot().await;
    let event = json!({
        "version": "0", "id": "1", "detail-type": "AWS Service Event via CloudTrail", "source": "aws.ecr",
        "account": w.stack.info.account, "time": "2026-11-22T10:00:00Z", "region": w.stack.info.region, "resources": [],
        "detail": {"eventSource": "ecr.amazonaws.com", "eventName": "CreateRepository", "userIdentity": {"invokedBy": "ecr.amazonaws.com"},
                   "serviceEventDetails": {"repositoryName": "k8s/pause"}}
    });
    let deps = lifecycle_fixer::Deps {
        ecr: &w.ecr,
        settings: &w.ecr,
        templates: &w.ecr,
        metrics: &w.metrics,
    };
    let options = w.fix_options();
    let first = lifecycle_fixer::handle(&deps, &options, &event).await;
    let writes = |calls: &Value| -> u64 {
        ["PutLifecyclePolicy", "SetRepositoryPolicy", "TagResource"]
            .iter()
            .map(|op| calls[op].as_u64().unwrap_or(0))
            .sum()
    };
    let after_first = writes(&w.stack.read("ecr").await["calls"]);
    let second = lifecycle_fixer::handle(&deps, &options, &event).await;
    let after_second = writes(&w.stack.read("ecr").await["calls"]);
    assert!(first.repositories[0].applied && !first.repositories[0].changes.is_empty());
    assert!(second.repositories[0].changes.is_empty(), "{second:?}");
    assert_eq!(
        after_second, after_first,
        "the second delivery writes nothing"
    );
    w.nothing_deleted(&before).await;
    row(
        10,
        "the same EventBridge event delivered twice",
        "lifecycle-fixer",
        &format!("first delivery {} writes, second delivery 0", after_first),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_11_two_sweeps_at_the_same_time() {
    let w = World::new().await;
    assert_eq!(w.prewarm(&[QUAY, QUAY_2, K8S, HUB]).await.summary.failed, 0);
    let before = w.snapshot().await;
    let options = w.fix_options();
    let (a, b) = tokio::join!(w.sweep_with(&options, None), w.sweep_with(&options, None));
    assert!(a.errors.is_empty() && b.errors.is_empty());
    assert_eq!(a.summary.errors + b.summary.errors, 0);
    // The final state is the desired one: a third sweep finds nothing to change.
    let third = w.sweep_with(&options, None).await;
    assert_eq!(third.summary.non_compliant, 0, "{:#?}", third.repositories);
    let client = aws_sdk_ecr::Client::new(&w.sdk);
    for repo in ["quay/coreos/etcd", "k8s/pause"] {
        let text = client
            .get_lifecycle_policy()
            .repository_name(repo)
            .send()
            .await
            .unwrap();
        assert!(lifecycle_fixer::policy::same_meaning(
            text.lifecycle_policy_text().unwrap(),
            &default_lifecycle(30).canonical()
        ));
    }
    w.nothing_deleted(&before).await;
    row(
        11,
        "two lifecycle sweeps at the same time",
        "lifecycle-fixer",
        &format!(
            "{} + {} repositories fixed concurrently; a third sweep finds all compliant",
            a.summary.fixed, b.summary.fixed
        ),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_12_the_lambda_deadline_reached_mid_run() {
    let w = World::new().await;
    assert_eq!(w.prewarm(&[K8S, QUAY]).await.summary.failed, 0);
    let before = w.snapshot().await;
    // prewarm: every pull is slow, the deadline comes after the first few.
    w.control("upstreams/registry.k8s.io", json!({"latency_ms": 700}))
        .await;
    let mut options = w.prewarm_options();
    options.concurrency = 1;
    options.stop_at = Some(Instant::now() + Duration::from_secs(2));
    let client = w.registry(Duration::from_secs(10)).await;
    let images = [
        "registry.k8s.io/coredns/coredns:v1.11.1",
        K8S,
        QUAY,
        QUAY_2,
        HUB,
        HUB_2,
    ];
    let report = w.prewarm_with(&options, &client, &images).await;
    w.control("upstreams/registry.k8s.io", json!({"latency_ms": 0}))
        .await;
    assert!(report.summary.deferred > 0, "{:#?}", report.images);
    assert_eq!(report.summary.failed, 0, "{:#?}", report.images);
    assert!(
        report.metrics_published > 0,
        "the report and metrics are still written"
    );
    // lifecycle-fixer: the deadline has passed; nothing is started, so nothing is half-written.
    let mut fix = w.fix_options();
    fix.stop_at = Some(Instant::now());
    let writes_before = w.stack.read("ecr").await["calls"]["PutLifecyclePolicy"]
        .as_u64()
        .unwrap_or(0);
    let swept = w.sweep_with(&fix, None).await;
    assert!(
        swept
            .repositories
            .iter()
            .all(|r| r.deferred && r.changes.is_empty())
    );
    assert_eq!(swept.summary.deferred, swept.repositories.len());
    assert_eq!(
        w.stack.read("ecr").await["calls"]["PutLifecyclePolicy"]
            .as_u64()
            .unwrap_or(0),
        writes_before
    );
    // The next run does the rest.
    let next = w.sweep_with(&w.fix_options(), None).await;
    assert_eq!(next.summary.deferred, 0);
    assert!(next.summary.fixed > 0);
    w.nothing_deleted(&before).await;
    row(
        12,
        "the Lambda deadline reached mid-run",
        "prewarm, lifecycle-fixer",
        &format!(
            "prewarm: {} done, {} deferred; fixer: {} deferred, 0 writes; next run fixes them",
            report.summary.images - report.summary.deferred,
            report.summary.deferred,
            swept.summary.deferred
        ),
    );
}
