//! The stack's fault controls, seen through ptc-core's clients: an upstream down, 5xx
//! bursts, 429 with Docker rate-limit headers, an expired registry token, ECR and
//! CloudWatch throttling. These change shared state (an upstream, throttle counters), so
//! this binary has its own stack and its tests run one at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ptc_core::aws::SdkMetrics;

use ptc_core::metrics::{MetricDatum, MetricsApi, Unit};
use ptc_core::oci::{Credentials, RegistryClient, RegistryError, RetryPolicy, http_client};
use ptc_core::secret::Secret;
use ptc_tests::{Stack, unique};
use serde_json::json;
use tokio::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::const_new(());

fn upstream_client(stack: &Stack, host: &str) -> RegistryClient {
    let up = stack.upstream(host);
    let creds = match (&up.username, &up.password) {
        (Some(u), Some(p)) => Credentials::Basic {
            username: u.clone(),
            password: Secret::new(p.clone()),
        },
        _ => Credentials::Anonymous,
    };
    RegistryClient::new(
        http_client(Duration::from_secs(5)).unwrap(),
        &up.url,
        Arc::new(creds),
    )
    .with_retry(RetryPolicy {
        max_retries: 4,
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
    })
}

async fn quay_rule(stack: &Stack) -> String {
    let prefix = format!("q{}", unique());
    aws_sdk_ecr::Client::new(&stack.sdk_config().await)
        .create_pull_through_cache_rule()
        .ecr_repository_prefix(&prefix)
        .upstream_registry_url("quay.io")
        .send()
        .await
        .expect("create rule");
    prefix
}

fn count(counts: &serde_json::Value, key: &str) -> u64 {
    counts.get(key).and_then(|v| v.as_u64()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn cached_images_are_served_while_the_upstream_is_down() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let prefix = quay_rule(stack).await;
    let repository = format!("{prefix}/prometheus/prometheus");
    let (client, _) = stack.registry().await;
    let warm = client
        .get_manifest(&repository, "v2.51.0")
        .await
        .expect("first pull");

    // Force the re-check of the tag on every pull (ECR: about once a day).
    stack.control("ecr", json!({"refresh_seconds": 0})).await;
    stack
        .control("upstreams/quay.io", json!({"down": true}))
        .await;
    let again = client.get_manifest(&repository, "v2.51.0").await;
    let uncached = client
        .get_manifest(&format!("{prefix}/coreos/etcd"), "v3.5.13")
        .await;
    let validation = stack.ecr().await.validate_rule(&prefix).await;
    stack
        .control("upstreams/quay.io", json!({"down": false}))
        .await;
    stack
        .control("ecr", json!({"refresh_seconds": 86400}))
        .await;

    assert_eq!(
        again.expect("cached pull with the upstream down").digest,
        warm.digest
    );
    let err = uncached.expect_err("an uncached image cannot be pulled during an outage");
    assert!(
        matches!(err, RegistryError::Status { status: 500, .. }),
        "{err}"
    );
    let validation = validation.unwrap();
    assert!(!validation.is_valid);
    assert!(validation.failure.unwrap().contains("Unable to reach"));
    // And the upstream is back.
    client
        .get_manifest(&format!("{prefix}/coreos/etcd"), "v3.5.13")
        .await
        .expect("pull after recovery");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_registry_token_is_replaced_after_a_401() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let prefix = quay_rule(stack).await;
    let (client, _) = stack.registry().await;
    let repository = format!("{prefix}/coreos/etcd");
    client
        .get_manifest(&repository, "v3.5.13")
        .await
        .expect("pull with the first token");
    let before = count(&stack.read("ecr").await["calls"], "GetAuthorizationToken");
    stack.control("ecr", json!({"revoke_tokens": true})).await;
    client
        .get_manifest(&repository, "v3.5.13")
        .await
        .expect("pull after the token expired");
    let after = count(&stack.read("ecr").await["calls"], "GetAuthorizationToken");
    assert_eq!(after, before + 1, "exactly one new token");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_5xx_is_retried_and_a_long_429_is_returned_at_once() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let client = upstream_client(stack, "quay.io");
    let path = "GET /v2/coreos/etcd/manifests/v3.5.13";
    stack
        .control(
            "upstreams/quay.io",
            json!({"reset_counts": true, "fail_next": 2, "fail_status": 503}),
        )
        .await;
    client
        .get_manifest("coreos/etcd", "v3.5.13")
        .await
        .expect("succeeds on the third try");
    assert_eq!(
        count(&stack.read("upstreams/quay.io/counts").await, path),
        3
    );

    stack
        .control(
            "upstreams/quay.io",
            json!({"ratelimit_limit": 100, "ratelimit_remaining": 0, "retry_after": 3600}),
        )
        .await;
    let started = Instant::now();
    let err = client
        .get_manifest("coreos/etcd", "v3.5.13")
        .await
        .unwrap_err();
    let head = client.head_manifest("coreos/etcd", "v3.5.13").await;
    stack
        .control(
            "upstreams/quay.io",
            json!({"ratelimit_limit": null, "ratelimit_remaining": null, "retry_after": 60}),
        )
        .await;
    match err {
        RegistryError::RateLimited {
            retry_after,
            rate_limit,
            ..
        } => {
            assert_eq!(retry_after, Some(Duration::from_secs(3600)));
            assert_eq!(
                (rate_limit.limit, rate_limit.remaining),
                (Some(100), Some(0))
            );
        }
        other => panic!("expected RateLimited, got {other}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no sleeping through an hour-long Retry-After"
    );
    // A HEAD is not a pull: still answered while the pull budget is spent.
    assert_eq!(head.expect("HEAD is free").rate_limit.remaining, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_hub_counts_manifest_gets_but_not_heads() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let client = upstream_client(stack, "registry-1.docker.io");
    let first = client
        .head_manifest("library/nats", "2.10.12-alpine")
        .await
        .expect("head");
    let second = client
        .head_manifest("library/nats", "2.10.12-alpine")
        .await
        .expect("head");
    assert_eq!(first.rate_limit.limit, Some(200));
    assert_eq!(first.rate_limit.window_secs, Some(21600));
    assert_eq!(first.rate_limit.remaining, second.rate_limit.remaining);
    let pulled = client
        .get_manifest("library/nats", "2.10.12-alpine")
        .await
        .expect("get");
    assert_eq!(
        pulled.rate_limit.remaining,
        first.rate_limit.remaining.map(|r| r - 1)
    );
    assert_eq!(Some(pulled.digest), first.digest);
    // Docker Hub's Bearer token dance: one token for the repository, reused.
    let counts = stack.read("upstreams/registry-1.docker.io/counts").await;
    assert_eq!(count(&counts, "GET /token"), 1, "{counts}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_upstream_credentials_are_unauthorized() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let up = stack.upstream("registry-1.docker.io");
    let creds = Credentials::Basic {
        username: up.username.clone().unwrap(),
        password: Secret::new("wrong".into()),
    };
    let client = RegistryClient::new(
        http_client(Duration::from_secs(5)).unwrap(),
        &up.url,
        Arc::new(creds),
    );
    let err = client
        .get_manifest("library/nats", "2.10.12-alpine")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(!err.to_string().contains("wrong"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ecr_and_cloudwatch_throttling_are_retried_by_the_sdk() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let ecr = stack.ecr().await;
    let before = count(&stack.read("ecr").await["calls"], "DescribeRepositories");
    stack
        .control("ecr", json!({"throttle": {"DescribeRepositories": 2}}))
        .await;
    ecr.describe_repositories()
        .await
        .expect("throttled twice, then answered");
    let after = count(&stack.read("ecr").await["calls"], "DescribeRepositories");
    assert_eq!(after, before + 3);

    let cw = stack.read("cloudwatch").await["put_calls"]
        .as_u64()
        .unwrap();
    stack
        .control("cloudwatch", json!({"throttle_next": 2}))
        .await;
    let datum = MetricDatum::new("Probe", 1.0, Unit::Count).unwrap();
    let metrics = SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&stack.sdk_config().await));
    assert_eq!(
        metrics.put("PtcFaults", &[datum]).await.expect("retried"),
        1
    );
    assert_eq!(
        stack.read("cloudwatch").await["put_calls"]
            .as_u64()
            .unwrap(),
        cw + 3
    );

    // Throttled beyond the retry budget: a clear error, not a hang.
    stack
        .control("ecr", json!({"throttle": {"DescribeRepositories": 10}}))
        .await;
    let err = ecr.describe_repositories().await.unwrap_err();
    stack
        .control("ecr", json!({"throttle": {"DescribeRepositories": 0}}))
        .await;
    assert_eq!(err.kind, ptc_core::AwsErrorKind::Throttled, "{err}");
    assert!(err.to_string().contains("DescribeRepositories"));
}
