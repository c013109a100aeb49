//! prewarm end to end on the local stack. The tests steer shared upstreams, so they run one
//! at a time; each uses its own images.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prewarm::{Deps, ImageResult, Options, Outcome, PrewarmReport, run};
use ptc_core::aws::SdkEcr;
use ptc_core::aws::SdkMetrics;
use ptc_core::aws::SdkObjects;
use ptc_core::aws::SdkSecrets;
use ptc_core::config::PrewarmMode;
use ptc_core::ecr::EcrApi;
use ptc_core::oci::{RegistryClient, http_client};
use ptc_core::platform::Platform;
use ptc_tests::Stack;
use serde_json::json;
use tokio::sync::{Mutex, OnceCell};

static SERIAL: Mutex<()> = Mutex::const_new(());
static RULES: OnceCell<()> = OnceCell::const_new();

struct World {
    ecr: SdkEcr,
    secrets: SdkSecrets,
    objects: SdkObjects,
    metrics: SdkMetrics,
    cache: RegistryClient,
    host: String,
    http: reqwest::Client,
    upstreams: BTreeMap<String, String>,
}

async fn world() -> World {
    let stack = Stack::shared();
    let sdk = stack.sdk_config().await;
    world_with(&sdk).await
}

/// The ports on `sdk` (the test's credentials, or a role's), and a registry client with the
/// token `sdk`'s credentials get.
async fn world_with(sdk: &aws_config::SdkConfig) -> World {
    let stack = Stack::shared();
    let sdk = sdk.clone();
    RULES
        .get_or_init(|| async {
            let docker = stack
                .upstream_secret("ecr-pullthroughcache/docker-hub", "registry-1.docker.io")
                .await;
            let ghcr = stack
                .upstream_secret("ecr-pullthroughcache/ghcr", "ghcr.io")
                .await;
            stack
                .create_rule("docker-hub", "registry-1.docker.io", Some(&docker))
                .await;
            stack.create_rule("ghcr", "ghcr.io", Some(&ghcr)).await;
            stack.create_rule("quay", "quay.io", None).await;
            stack.create_rule("k8s", "registry.k8s.io", None).await;
        })
        .await;
    let ecr_port: Arc<dyn EcrApi> = Arc::new(SdkEcr::new(aws_sdk_ecr::Client::new(&sdk)));
    let http = http_client(Duration::from_secs(10)).unwrap();
    let (cache, host) =
        RegistryClient::for_ecr(http.clone(), ecr_port, Some(&stack.info.registry_endpoint))
            .await
            .unwrap();
    World {
        ecr: SdkEcr::new(aws_sdk_ecr::Client::new(&sdk)),
        secrets: SdkSecrets::new(aws_sdk_secretsmanager::Client::new(&sdk)),
        objects: SdkObjects::new(ptc_core::aws::AwsClients::new(&sdk).s3()),
        metrics: SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk)),
        cache,
        host,
        http,
        upstreams: stack
            .info
            .upstreams
            .iter()
            .map(|(h, u)| (h.clone(), u.url.clone()))
            .collect(),
    }
}

fn options() -> Options {
    Options {
        namespace: "PtcPrewarmTest".into(),
        platforms: vec![
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/arm64").unwrap(),
        ],
        mode: PrewarmMode::Layers,
        ratelimit_floor: 10,
        concurrency: 8,
        discovery_days: 0,
        settings_watch_list: Vec::new(),
        watch_list_source: None,
        state: None,
        forget_unused: true,
        dry_run: false,
        publish_metrics: true,
        stop_at: None,
        finish_by: None,
        progress: None,
    }
}

async fn prewarm(world: &World, options: &Options, images: &[&str]) -> PrewarmReport {
    let deps = Deps {
        ecr: &world.ecr,
        secrets: &world.secrets,
        objects: &world.objects,
        metrics: &world.metrics,
        cache: &world.cache,
        registry_host: &world.host,
        http: &world.http,
        upstream_endpoints: &world.upstreams,
    };
    run(
        &deps,
        options,
        "test",
        images.iter().map(|s| (*s).to_owned()).collect(),
        time::OffsetDateTime::now_utc(),
    )
    .await
}

fn find<'a>(report: &'a PrewarmReport, reference: &str) -> &'a ImageResult {
    report
        .images
        .iter()
        .find(|i| i.reference == reference)
        .unwrap_or_else(|| panic!("{reference} in {report:#?}"))
}

async fn upstream_digest(stack: &Stack, host: &str, repo: &str, tag: &str) -> String {
    let url = format!("{}/v2/{repo}/manifests/{tag}", stack.upstream(host).url);
    let response = reqwest::Client::new()
        .head(url)
        .header("Accept", ptc_core::oci::MANIFEST_ACCEPT)
        .send()
        .await
        .unwrap();
    response.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn warms_verifies_and_reports_every_kind_of_entry() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    let etcd = upstream_digest(stack, "quay.io", "coreos/etcd", "v3.5.13").await;
    let pinned = format!("quay.io/coreos/etcd:v3.5.13@{etcd}");
    let list = [
        "nginx:1.25",
        "nats:2.10.12-alpine",
        "docker.io/grafana/grafana:10.4.0",
        "quay.io/prometheus/prometheus:v2.51.0",
        "registry.k8s.io/pause:3.9",
        "ghcr.io/fluxcd/source-controller:v1.2.4",
        pinned.as_str(),
        "registry.gitlab.com/group/app:1",
        "mcr.microsoft.com/dotnet/runtime:8.0",
        "Not/Valid",
    ];
    let blobs_before = stack
        .read("registry/counts")
        .await
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.contains("/_s3/"))
        .count();
    let report = prewarm(&world, &options(), &list).await;
    for reference in &list[..7] {
        let image = find(&report, reference);
        // nats, pause, etcd, prometheus and the flux image are also used by other tests of
        // this file (their own tags share these digests), which may have cached them first.
        let shared = [
            "quay.io/prometheus/prometheus:v2.51.0",
            "nats:2.10.12-alpine",
            "registry.k8s.io/pause:3.9",
            "ghcr.io/fluxcd/source-controller:v1.2.4",
            pinned.as_str(),
        ];
        if shared.contains(reference) {
            assert!(
                matches!(image.outcome, Outcome::Warmed | Outcome::AlreadyFresh),
                "{image:#?}"
            );
        } else {
            assert_eq!(image.outcome, Outcome::Warmed, "{image:#?}");
        }
        assert!(image.uri.as_deref().unwrap().starts_with(&world.host));
    }
    assert_eq!(
        find(&report, "nginx:1.25").platforms,
        ["linux/amd64", "linux/arm64"]
    );
    assert_eq!(
        find(&report, "registry.k8s.io/pause:3.9").platforms,
        ["linux/amd64", "linux/arm64"]
    );
    assert_eq!(
        find(&report, "nats:2.10.12-alpine").platforms,
        ["single-platform"]
    );
    assert_eq!(
        find(&report, pinned.as_str()).digest.as_deref(),
        Some(etcd.as_str())
    );
    assert!(
        find(&report, "registry.gitlab.com/group/app:1")
            .reason
            .as_deref()
            .unwrap()
            .contains("no pull-through cache rule")
    );
    assert!(
        find(&report, "mcr.microsoft.com/dotnet/runtime:8.0")
            .reason
            .as_deref()
            .unwrap()
            .contains("not supported")
    );
    assert!(
        find(&report, "Not/Valid")
            .reason
            .as_deref()
            .unwrap()
            .contains("lowercase")
    );
    assert_eq!(report.summary.failed, 3);
    assert_eq!(
        report.summary.coverage_percent,
        Some(70.0),
        "7 of the 10 entries"
    );
    assert!(report.metrics_published > 0);

    // The cache holds what a runtime needs: each platform's manifest, and the layers.
    let images = world
        .ecr
        .describe_images("docker-hub/library/nginx")
        .await
        .unwrap();
    assert_eq!(images.len(), 3, "index and two platform manifests");
    let blobs_after = stack
        .read("registry/counts")
        .await
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.contains("/_s3/"))
        .count();
    assert!(
        blobs_after > blobs_before + 10,
        "layers mode fetched the blobs ({blobs_before} -> {blobs_after})"
    );

    // Idempotent: a second run finds everything cached and fresh.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = prewarm(&world, &options(), &list[..7]).await;
    assert!(
        again
            .images
            .iter()
            .all(|i| i.outcome == Outcome::AlreadyFresh),
        "{again:#?}"
    );
    assert_eq!(again.summary.coverage_percent, Some(100.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_outage_leaves_cached_images_verified_and_fails_the_rest() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    let warm = prewarm(&world, &options(), &["registry.k8s.io/pause:3.9"]).await;
    assert_ne!(warm.images[0].outcome, Outcome::Failed, "{warm:#?}");
    stack
        .control("upstreams/registry.k8s.io", json!({"down": true}))
        .await;
    stack.control("ecr", json!({"refresh_seconds": 0})).await;
    let report = prewarm(
        &world,
        &options(),
        &[
            "registry.k8s.io/pause:3.9",
            "registry.k8s.io/coredns/coredns:v1.11.1",
        ],
    )
    .await;
    stack
        .control("ecr", json!({"refresh_seconds": 86400}))
        .await;
    stack
        .control("upstreams/registry.k8s.io", json!({"down": false}))
        .await;
    let pause = find(&report, "registry.k8s.io/pause:3.9");
    assert!(
        matches!(pause.outcome, Outcome::AlreadyFresh | Outcome::Warmed),
        "verified from the cache: {pause:#?}"
    );
    assert!(
        pause
            .reason
            .as_deref()
            .unwrap()
            .contains("freshness unknown")
    );
    let coredns = find(&report, "registry.k8s.io/coredns/coredns:v1.11.1");
    assert_eq!(coredns.outcome, Outcome::Failed);
    assert!(
        coredns
            .reason
            .as_deref()
            .unwrap()
            .contains("pull through the cache"),
        "{coredns:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_rate_limit_defers_the_upstream_instead_of_failing() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    stack
        .control(
            "upstreams/quay.io",
            json!({"ratelimit_limit": 100, "ratelimit_remaining": 4, "retry_after": 3600}),
        )
        .await;
    let report = prewarm(
        &world,
        &options(),
        &[
            "quay.io/argoproj/argocd:v2.10.0",
            "quay.io/jetstack/cert-manager-controller:v1.14.4",
            "nats:2.10.12-alpine",
        ],
    )
    .await;
    stack
        .control(
            "upstreams/quay.io",
            json!({"ratelimit_limit": null, "ratelimit_remaining": null}),
        )
        .await;
    for reference in [
        "quay.io/argoproj/argocd:v2.10.0",
        "quay.io/jetstack/cert-manager-controller:v1.14.4",
    ] {
        let image = find(&report, reference);
        assert_eq!(image.outcome, Outcome::Deferred, "{image:#?}");
        assert!(
            image
                .reason
                .as_deref()
                .unwrap()
                .contains("below the floor of 10")
        );
    }
    assert_ne!(
        find(&report, "nats:2.10.12-alpine").outcome,
        Outcome::Deferred,
        "other upstreams go on"
    );
    assert_eq!(report.summary.failed, 0);
    let counts = stack.read("upstreams/quay.io/counts").await;
    assert!(
        counts
            .get("GET /v2/argoproj/argocd/manifests/v2.10.0")
            .is_none(),
        "no pull spent: {counts}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_moved_upstream_tag_is_reported_stale() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    let reference = "quay.io/jetstack/cert-manager-controller:v1.14.4";
    let first = prewarm(&world, &options(), &[reference]).await;
    assert!(
        matches!(
            first.images[0].outcome,
            Outcome::Warmed | Outcome::AlreadyFresh
        ),
        "{first:#?}"
    );
    // The upstream moves the tag: same layers, one more annotation, a new digest.
    let base = &stack.upstream("quay.io").url;
    let client = reqwest::Client::new();
    let url = format!("{base}/v2/jetstack/cert-manager-controller/manifests/v1.14.4");
    let mut manifest: serde_json::Value = client
        .get(&url)
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    manifest["annotations"] = json!({"org.opencontainers.image.revision": "moved"});
    let put = client
        .put(&url)
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(serde_json::to_vec(&manifest).unwrap())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let report = prewarm(&world, &options(), &[reference]).await;
    let image = &report.images[0];
    assert_eq!(image.outcome, Outcome::Stale, "{image:#?}");
    assert_ne!(image.upstream_digest, image.digest);
    assert!(image.stale_age_hours.is_some());
    assert_eq!(report.summary.stale, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn work_stops_before_the_deadline_and_the_rest_is_deferred() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    stack
        .control("upstreams/ghcr.io", json!({"latency_ms": 300}))
        .await;
    let mut opts = options();
    opts.concurrency = 1;
    opts.stop_at = Some(Instant::now() + Duration::from_millis(200));
    let report = prewarm(
        &world,
        &opts,
        &[
            "ghcr.io/fluxcd/source-controller:v1.2.4",
            "ghcr.io/external-secrets/external-secrets:v0.9.13",
        ],
    )
    .await;
    stack
        .control("upstreams/ghcr.io", json!({"latency_ms": 0}))
        .await;
    assert_ne!(report.images[0].outcome, Outcome::Deferred, "{report:#?}");
    assert_eq!(report.images[1].outcome, Outcome::Deferred);
    assert!(
        report.images[1]
            .reason
            .as_deref()
            .unwrap()
            .contains("deadline")
    );
    assert_eq!(report.summary.deferred, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_pulls_nothing() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    let before = stack.read("registry/counts").await;
    let mut opts = options();
    opts.dry_run = true;
    let report = prewarm(
        &world,
        &opts,
        &["quay.io/argoproj/argocd:v2.10.0", "gcr.io/x/y:1"],
    )
    .await;
    assert_eq!(report.images[0].outcome, Outcome::Planned);
    assert_eq!(
        report.images[0].uri.as_deref(),
        Some(format!("{}/quay/argoproj/argocd:v2.10.0", world.host).as_str())
    );
    assert_eq!(report.images[1].outcome, Outcome::Failed);
    assert_eq!(
        stack.read("registry/counts").await,
        before,
        "no request to the registry endpoint"
    );
    assert_eq!(report.metrics_published, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_watch_list_comes_from_s3_and_a_missing_one_is_reported() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    let s3 = ptc_core::aws::AwsClients::new(&stack.sdk_config().await).s3();
    s3.create_bucket()
        .bucket("ptc-watch-lists")
        .send()
        .await
        .expect("create bucket");
    s3.put_object()
        .bucket("ptc-watch-lists")
        .key("prod/watch-list.txt")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"# prod clusters\nregistry.k8s.io/pause:3.9\nquay.io/coreos/etcd:v3.5.13\n",
        ))
        .send()
        .await
        .expect("put object");
    let mut opts = options();
    opts.watch_list_source = Some(
        ptc_core::watchlist::WatchListSource::parse("s3://ptc-watch-lists/prod/watch-list.txt")
            .unwrap(),
    );
    let report = prewarm(&world, &opts, &["nats:2.10.12-alpine"]).await;
    let refs: Vec<_> = report
        .images
        .iter()
        .map(|i| (i.reference.as_str(), i.origin))
        .collect();
    assert_eq!(
        refs,
        [
            ("nats:2.10.12-alpine", prewarm::sources::Origin::Payload),
            (
                "registry.k8s.io/pause:3.9",
                prewarm::sources::Origin::Source
            ),
            (
                "quay.io/coreos/etcd:v3.5.13",
                prewarm::sources::Origin::Source
            )
        ]
    );
    assert_eq!(report.summary.failed, 0, "{report:#?}");

    opts.watch_list_source = Some(
        ptc_core::watchlist::WatchListSource::parse("s3://ptc-watch-lists/missing.txt").unwrap(),
    );
    let report = prewarm(&world, &opts, &["nats:2.10.12-alpine"]).await;
    assert_eq!(report.images.len(), 1, "the payload still runs");
    assert!(
        report.errors[0].contains("s3://ptc-watch-lists/missing.txt"),
        "{:?}",
        report.errors
    );
}

/// Platforms are matched as a container runtime matches them (containerd/platforms'
/// normalisation): `linux/arm64/v8` takes the index's `arm64` entry, which has no variant;
/// a platform the index does not publish is a note (as health-metrics says it), not a
/// failure of the image.
#[tokio::test(flavor = "multi_thread")]
async fn platforms_match_as_a_runtime_matches_them() {
    let _serial = SERIAL.lock().await;
    let world = world().await;
    let mut opts = options();
    opts.platforms = vec![
        Platform::parse("linux/amd64").unwrap(),
        Platform::parse("linux/arm64/v8").unwrap(),
        Platform::parse("linux/s390x").unwrap(),
    ];
    // pause is shared with other tests of this file (listed as such in the first one).
    let report = prewarm(&world, &opts, &["registry.k8s.io/pause:3.9"]).await;
    let image = &report.images[0];
    assert!(
        matches!(image.outcome, Outcome::Warmed | Outcome::AlreadyFresh),
        "{image:#?}"
    );
    assert_eq!(image.platforms, ["linux/amd64", "linux/arm64/v8"]);
    assert_eq!(
        image.reason.as_deref(),
        Some("the image is not published for linux/s390x"),
        "{image:#?}"
    );
}

/// A unique tag of an upstream image (the same manifest under a new tag), so a test owns it.
async fn own_tag(stack: &Stack, host: &str, repository: &str, from: &str) -> String {
    let tag = format!("own-{}", ptc_tests::unique());
    stack
        .control(
            &format!("upstreams/{host}/tag"),
            json!({"repository": repository, "from": from, "to": tag}),
        )
        .await;
    tag
}

/// Requests through the registry endpoint since `before`, keyed "METHOD /path".
async fn registry_requests_since(
    stack: &Stack,
    before: &serde_json::Value,
) -> BTreeMap<String, i64> {
    let now = stack.read("registry/counts").await;
    now.as_object()
        .unwrap()
        .iter()
        .filter_map(|(k, v)| {
            let n = v.as_i64().unwrap() - before.get(k).and_then(|b| b.as_i64()).unwrap_or(0);
            (n > 0).then(|| (k.clone(), n))
        })
        .collect()
}

/// Move an upstream tag: the same single-platform manifest with one more annotation, so a new
/// digest.
async fn move_upstream_tag(stack: &Stack, host: &str, repository: &str, tag: &str) {
    let base = &stack.upstream(host).url;
    let client = reqwest::Client::new();
    let url = format!("{base}/v2/{repository}/manifests/{tag}");
    let accept = "application/vnd.oci.image.manifest.v1+json";
    let mut manifest: serde_json::Value = client
        .get(&url)
        .header("Accept", accept)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    manifest["annotations"] = json!({"org.opencontainers.image.revision": ptc_tests::unique()});
    let put = client
        .put(&url)
        .header("Content-Type", accept)
        .body(serde_json::to_vec(&manifest).unwrap())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
}

fn state_file() -> ptc_core::watchlist::WatchListSource {
    ptc_core::watchlist::WatchListSource::File(
        std::env::temp_dir()
            .join(format!("ptc-prewarm-state-{}", ptc_tests::unique()))
            .join("state.json"),
    )
}

/// Issue 18: a second run over a cached, unchanged list makes no request to the registry
/// endpoint (no manifest, no blob: measured before, 18 manifest GETs and 39 blob GETs for the
/// demo's 15 images, on every run) and moves no image's `lastRecordedPullTime`; a layer the
/// cache lost is fetched again, and only it; a tag moved upstream is pulled, and only it.
#[tokio::test(flavor = "multi_thread")]
async fn the_steady_state_costs_no_pull() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    let index = own_tag(stack, "quay.io", "prometheus/prometheus", "v2.51.0").await;
    let single = own_tag(
        stack,
        "quay.io",
        "jetstack/cert-manager-controller",
        "v1.14.4",
    )
    .await;
    let list_index = own_tag(stack, "registry.k8s.io", "pause", "3.9").await;
    let docker = own_tag(
        stack,
        "registry-1.docker.io",
        "library/nats",
        "2.10.12-alpine",
    )
    .await;
    let refs = [
        format!("quay.io/prometheus/prometheus:{index}"),
        format!("quay.io/jetstack/cert-manager-controller:{single}"),
        format!("registry.k8s.io/pause:{list_index}"),
        format!("nats:{docker}"),
    ];
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let options = Options {
        state: Some(state_file()),
        ..options()
    };
    let first = prewarm(&world, &options, &refs).await;
    assert!(
        first
            .images
            .iter()
            .all(|i| matches!(i.outcome, Outcome::Warmed | Outcome::AlreadyFresh)),
        "{first:#?}"
    );
    assert!(
        first.traffic.cache_manifest_gets >= 4,
        "{:?}",
        first.traffic
    );
    let pulled_at = |repo: &'static str| {
        let ecr = &world.ecr;
        async move {
            ecr.describe_images(repo)
                .await
                .unwrap()
                .into_iter()
                .map(|i| (i.digest, i.last_pulled_at))
                .collect::<BTreeMap<_, _>>()
        }
    };
    let times_before = pulled_at("quay/prometheus/prometheus").await;

    // The steady state: nothing through the registry endpoint.
    let before = stack.read("registry/counts").await;
    let ecr_before = stack.read("ecr").await["calls"].clone();
    let steady = prewarm(&world, &options, &refs).await;
    assert!(
        steady
            .images
            .iter()
            .all(|i| i.outcome == Outcome::AlreadyFresh),
        "{steady:#?}"
    );
    assert_eq!(
        registry_requests_since(stack, &before).await,
        BTreeMap::new(),
        "no manifest, no blob, no token through the registry endpoint"
    );
    assert_eq!(
        (
            steady.traffic.cache_manifest_gets,
            steady.traffic.cache_blob_gets,
            steady.traffic.cache_blob_bytes,
            steady.traffic.upstream_heads
        ),
        (0, 0, 0, 4)
    );
    assert_eq!(
        find(&steady, refs[0]).platforms,
        ["linux/amd64", "linux/arm64"]
    );
    assert_eq!(find(&steady, refs[1]).platforms, ["single-platform"]);
    assert_eq!(pulled_at("quay/prometheus/prometheus").await, times_before);
    // ECR's API: batched by repository (4 repositories: by tag, by platform manifest, and
    // the blobs), never a pull.
    let ecr_now = stack.read("ecr").await["calls"].clone();
    let calls = |op: &str| {
        ecr_now.get(op).and_then(|v| v.as_i64()).unwrap_or(0)
            - ecr_before.get(op).and_then(|v| v.as_i64()).unwrap_or(0)
    };
    assert_eq!(calls("BatchGetImage"), 0);
    assert!(calls("DescribeImages") <= 8, "{}", calls("DescribeImages"));
    assert!(
        calls("BatchCheckLayerAvailability") <= 4,
        "{}",
        calls("BatchCheckLayerAvailability")
    );

    // A layer the cache no longer holds is fetched again, and only it.
    let layers = world
        .ecr
        .describe_images("quay/jetstack/cert-manager-controller")
        .await
        .unwrap();
    assert!(!layers.is_empty());
    let manifest: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/v2/jetstack/cert-manager-controller/manifests/{single}",
            stack.upstream("quay.io").url
        ))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lost = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    assert!(
        stack
            .remove_cached_layer("quay/jetstack/cert-manager-controller", &lost)
            .await
    );
    let before = stack.read("registry/counts").await;
    let repaired = prewarm(&world, &options, &refs).await;
    let requests = registry_requests_since(stack, &before).await;
    let blob_gets: Vec<&String> = requests.keys().filter(|k| k.contains("/blobs/")).collect();
    assert_eq!(
        blob_gets,
        [&format!(
            "GET /v2/quay/jetstack/cert-manager-controller/blobs/{lost}"
        )],
        "{requests:?}"
    );
    assert!(
        !requests.keys().any(|k| k.contains("/manifests/")),
        "{requests:?}"
    );
    let image = find(&repaired, refs[1]);
    assert_eq!(image.outcome, Outcome::Warmed, "{image:#?}");
    assert!(
        image.reason.as_deref().unwrap().contains("1 blob"),
        "{image:#?}"
    );
    assert_eq!(repaired.traffic.cache_blob_gets, 1);

    // A tag moved upstream is pulled, and only it (ECR serves the cached digest until it
    // refreshes the tag: stale).
    move_upstream_tag(
        stack,
        "quay.io",
        "jetstack/cert-manager-controller",
        &single,
    )
    .await;
    let before = stack.read("registry/counts").await;
    let moved = prewarm(&world, &options, &refs).await;
    let requests = registry_requests_since(stack, &before).await;
    let manifests: Vec<&String> = requests
        .keys()
        .filter(|k| k.contains("/manifests/"))
        .collect();
    assert_eq!(
        manifests,
        [&format!(
            "GET /v2/quay/jetstack/cert-manager-controller/manifests/{single}"
        )],
        "{requests:?}"
    );
    assert_eq!(find(&moved, refs[1]).outcome, Outcome::Stale);
    assert!(
        refs.iter()
            .filter(|r| **r != refs[1])
            .all(|r| find(&moved, r).outcome == Outcome::AlreadyFresh),
        "{moved:#?}"
    );
    assert!(
        !requests.keys().any(|k| k.contains("/blobs/")),
        "the stale tag's blobs are all held: {requests:?}"
    );
}

/// Issue 18: with prewarm's role in ECR's pull-time update exclusions, its pulls leave
/// `lastRecordedPullTime` as it was, so a tag nobody else pulled within the discovery window
/// leaves the watch list; without the exclusion the same pulls move it.
#[tokio::test(flavor = "multi_thread")]
async fn prewarm_pulls_are_not_use_when_its_role_is_excluded() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    let role_arn = stack
        .create_role(
            &stack.info.account,
            &format!("ptc-prewarm-{}", ptc_tests::unique()),
            Some(&Stack::consumer_pull_policy()),
        )
        .await;
    let role = stack.assume_role(&role_arn).await;
    let as_role = World {
        cache: stack.registry_as(&role).await,
        ..world_with(&stack.sdk_config_as(&role).await).await
    };
    stack.exclude_from_pull_time(&role_arn).await;

    let tag = own_tag(stack, "quay.io", "coreos/etcd", "v3.5.13").await;
    let reference = format!("quay.io/coreos/etcd:{tag}");
    let repository = "quay/coreos/etcd";
    // A cluster (not excluded) pulled the tag, 8 days ago.
    world.cache.get_manifest(repository, &tag).await.unwrap();
    let digest = world
        .ecr
        .describe_image_ids(repository, std::slice::from_ref(&tag), &[])
        .await
        .unwrap()[0]
        .digest
        .clone();
    stack
        .control(
            "ecr/age",
            json!({"repository": repository, "digest": digest, "pulled_days_ago": 8}),
        )
        .await;
    let last_pulled = || async {
        world
            .ecr
            .describe_image_ids(repository, std::slice::from_ref(&tag), &[])
            .await
            .unwrap()[0]
            .last_pulled_at
            .unwrap()
    };
    let aged = last_pulled().await;
    // Prewarm as the excluded role, every run a full pull (no state): the time stays.
    let options = Options {
        discovery_days: 7,
        ..options()
    };
    let report = prewarm(&as_role, &options, &[reference.as_str()]).await;
    assert!(
        matches!(
            find(&report, &reference).outcome,
            Outcome::AlreadyFresh | Outcome::Warmed
        ),
        "{report:#?}"
    );
    assert!(report.traffic.cache_manifest_gets > 0, "it did pull");
    assert_eq!(last_pulled().await, aged);
    // Discovery (7 days) no longer lists it: prewarm's own pulls are not use.
    let discovered = prewarm(&as_role, &options, &[]).await;
    assert!(
        discovered
            .images
            .iter()
            .all(|i| !i.reference.ends_with(&format!(":{tag}"))),
        "{discovered:#?}"
    );
    // The same pull by a role that is not excluded moves the time: the exclusion is what
    // keeps it.
    prewarm(&world, &options, &[reference.as_str()]).await;
    assert!(last_pulled().await > aged);
}

/// Issue 18, measured: 2,000 tags of one repository made 8,000 blob downloads for 160
/// distinct blobs. A blob of a repository is fetched at most once a run, whatever the
/// number of tags that list it (here 20 tags of one two-platform index: 4 blobs).
#[tokio::test(flavor = "multi_thread")]
async fn a_blob_is_fetched_once_a_run_whatever_the_tags() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    let refs = stack.seed_bench(1, 20).await;
    assert_eq!(refs.len(), 20);
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let before = stack.read("registry/counts").await;
    let report = prewarm(&world, &options(), &refs).await;
    assert!(
        report.images.iter().all(|i| i.outcome == Outcome::Warmed),
        "{report:#?}"
    );
    let requests = registry_requests_since(stack, &before).await;
    let blob_gets: i64 = requests
        .iter()
        .filter(|(k, _)| k.starts_with("GET /v2/quay/bench/app-0/blobs/"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(blob_gets, 4, "two configs and two layers: {requests:?}");
    assert_eq!(report.traffic.cache_blob_gets, 4);
}

/// Issue 18: a digest-only entry (as Helm charts pin) is warmed by the upstream tag that
/// points at it and verified; then, held complete, it costs nothing (a digest never goes
/// stale: no upstream HEAD, no registry request). A digest no tag points at fails with why.
#[tokio::test(flavor = "multi_thread")]
async fn a_digest_only_entry_is_warmed_by_its_tag() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    let tag = own_tag(stack, "quay.io", "prometheus/prometheus", "v2.51.0").await;
    let digest = upstream_digest(stack, "quay.io", "prometheus/prometheus", &tag).await;
    let reference = format!("quay.io/prometheus/prometheus@{digest}");
    let options = Options {
        state: Some(state_file()),
        ..options()
    };
    let first = prewarm(&world, &options, &[reference.as_str()]).await;
    let image = find(&first, &reference);
    assert!(
        matches!(image.outcome, Outcome::Warmed | Outcome::AlreadyFresh),
        "{image:#?}"
    );
    assert_eq!(image.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(image.platforms, ["linux/amd64", "linux/arm64"]);
    // The tag search is counted: the tags list, and a HEAD per candidate plus the check.
    assert!(first.traffic.upstream_tag_pages >= 1, "{:?}", first.traffic);
    assert!(first.traffic.upstream_heads >= 2, "{:?}", first.traffic);
    assert!(
        image
            .reason
            .as_deref()
            .unwrap()
            .contains("which points at the entry's digest upstream"),
        "{image:#?}"
    );
    let before = stack.read("registry/counts").await;
    let upstream_before = stack.read("upstreams/quay.io/counts").await;
    let steady = prewarm(&world, &options, &[reference.as_str()]).await;
    assert_eq!(find(&steady, &reference).outcome, Outcome::AlreadyFresh);
    assert_eq!(
        registry_requests_since(stack, &before).await,
        BTreeMap::new()
    );
    assert_eq!(
        stack.read("upstreams/quay.io/counts").await,
        upstream_before,
        "not even a HEAD"
    );
    assert_eq!(steady.traffic.upstream_heads, 0);

    let nowhere = format!("quay.io/prometheus/prometheus@sha256:{}", "0".repeat(64));
    let report = prewarm(&world, &options, &[nowhere.as_str()]).await;
    let image = find(&report, &nowhere);
    assert_eq!(image.outcome, Outcome::Failed);
    assert!(
        image.reason.as_deref().unwrap().contains("tag"),
        "{image:#?}"
    );
}

/// Review of issue 18: the state object does not exist before the first run. S3 answers
/// `NoSuchKey` (through moto, the real adapter): that is "nothing remembered", not
/// "unreadable", so the first run writes the object and the second is a steady state.
#[tokio::test(flavor = "multi_thread")]
async fn the_state_object_is_created_in_s3_by_the_first_run() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    let s3 = ptc_core::aws::AwsClients::new(&stack.sdk_config().await).s3();
    let bucket = format!("ptc-state-{}", ptc_tests::unique().to_lowercase());
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let tag = own_tag(stack, "quay.io", "coreos/etcd", "v3.5.13").await;
    let reference = format!("quay.io/coreos/etcd:{tag}");
    let options = Options {
        state: Some(
            ptc_core::watchlist::WatchListSource::parse(&format!(
                "s3://{bucket}/prewarm/state.json"
            ))
            .unwrap(),
        ),
        ..options()
    };
    let first = prewarm(&world, &options, &[reference.as_str()]).await;
    assert_eq!(first.warnings, Vec::<String>::new(), "{first:#?}");
    let object = s3
        .get_object()
        .bucket(&bucket)
        .key("prewarm/state.json")
        .send()
        .await
        .expect("the first run wrote the state");
    assert!(object.content_length().unwrap_or(0) > 0);
    let second = prewarm(&world, &options, &[reference.as_str()]).await;
    assert_eq!(find(&second, &reference).outcome, Outcome::AlreadyFresh);
    assert_eq!(
        second.traffic.cache_manifest_gets, 0,
        "{:?}",
        second.traffic
    );
}

/// Review of issue 18: a blob's budget scales with its size (up to an hour), longer than a
/// Lambda lives. Work in flight ends by `finish_by`: the image still downloading is deferred
/// and the run reports, instead of the invocation being killed with nothing reported.
#[tokio::test(flavor = "multi_thread")]
async fn a_download_past_the_invocation_deadline_is_deferred_and_the_run_reports() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    let repository = format!("slow/{}", ptc_tests::unique().to_lowercase());
    stack
        .push_big_image("quay.io", &repository, "v1", 8_000_000)
        .await;
    stack.throttle_blobs(1_000_000).await;
    let reference = format!("quay.io/{repository}:v1");
    let started = Instant::now();
    let options = Options {
        finish_by: Some(Instant::now() + Duration::from_secs(3)),
        ..options()
    };
    let report = prewarm(&world, &options, &[reference.as_str()]).await;
    stack.throttle_blobs(0).await;
    let elapsed = started.elapsed();
    let image = find(&report, &reference);
    assert_eq!(image.outcome, Outcome::Deferred, "{image:#?}");
    assert!(
        image.reason.as_deref().unwrap().contains("deadline"),
        "{image:#?}"
    );
    assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
    assert!(report.metrics_published > 0, "the run still published");
}

/// Review of issue 18: an entry `name:tag@PIN` whose tag moved upstream. A node pulls PIN: its
/// layers must be in the cache (before, only PIN's top manifest was fetched, and an outage
/// showed the layer missing); then PIN is remembered, so the next run costs no pull.
#[tokio::test(flavor = "multi_thread")]
async fn a_pin_the_tag_left_is_warmed_as_a_node_pulls_it() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    let repository = format!("pins/app-{}", ptc_tests::unique().to_lowercase());
    let old = stack
        .push_big_image("quay.io", &repository, "1.0", 4096)
        .await;
    let pin = old["digest"].as_str().unwrap().to_owned();
    let pin_layer = old["layer_digest"].as_str().unwrap().to_owned();
    let options = Options {
        state: Some(state_file()),
        ..options()
    };
    // The cache holds the tag at PIN's successor only.
    stack
        .push_big_image("quay.io", &repository, "1.0", 4096)
        .await;
    let plain = format!("quay.io/{repository}:1.0");
    prewarm(&world, &options, &[plain.as_str()]).await;
    let pinned = format!("quay.io/{repository}:1.0@{pin}");
    let first = prewarm(&world, &options, &[pinned.as_str()]).await;
    let image = find(&first, &pinned);
    assert!(
        matches!(image.outcome, Outcome::Warmed | Outcome::AlreadyFresh),
        "{image:#?}"
    );
    assert!(
        image.reason.as_deref().unwrap().contains("is cached too"),
        "{image:#?}"
    );
    let second = prewarm(&world, &options, &[pinned.as_str()]).await;
    assert_eq!(find(&second, &pinned).outcome, Outcome::AlreadyFresh);
    assert_eq!(
        (
            second.traffic.cache_manifest_gets,
            second.traffic.cache_blob_gets
        ),
        (0, 0)
    );
    // During an outage a node pulling PIN gets its layer from the cache.
    stack
        .control("upstreams/quay.io", json!({"down": true}))
        .await;
    let layer = world
        .cache
        .get_blob(
            &format!("quay/{repository}"),
            &ptc_core::oci::Descriptor {
                media_type: String::new(),
                digest: ptc_core::reference::Digest::parse(&pin_layer).unwrap(),
                size: 4096,
                platform: None,
            },
        )
        .await;
    stack
        .control("upstreams/quay.io", json!({"down": false}))
        .await;
    assert!(layer.is_ok(), "{layer:?}");
}

/// Review of issue 18: a repository deleted between runs (by hand, `--force`) is not held
/// any more: the next run pulls the image again, remembered or not, and ECR shows it.
#[tokio::test(flavor = "multi_thread")]
async fn a_repository_deleted_between_runs_is_warmed_again() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    let repository = format!("gone/app-{}", ptc_tests::unique().to_lowercase());
    stack
        .push_big_image("quay.io", &repository, "1.0", 4096)
        .await;
    let reference = format!("quay.io/{repository}:1.0");
    let options = Options {
        state: Some(state_file()),
        ..options()
    };
    let first = prewarm(&world, &options, &[reference.as_str()]).await;
    assert_eq!(find(&first, &reference).outcome, Outcome::Warmed);
    aws_sdk_ecr::Client::new(&stack.sdk_config().await)
        .delete_repository()
        .repository_name(format!("quay/{repository}"))
        .force(true)
        .send()
        .await
        .expect("DeleteRepository");
    let again = prewarm(&world, &options, &[reference.as_str()]).await;
    let image = find(&again, &reference);
    assert_eq!(image.outcome, Outcome::Warmed, "{image:#?}");
    assert!(again.traffic.cache_manifest_gets > 0 && again.traffic.cache_blob_gets > 0);
    let third = prewarm(&world, &options, &[reference.as_str()]).await;
    assert_eq!(find(&third, &reference).outcome, Outcome::AlreadyFresh);
}

/// Review of issue 18: an upstream's budget below the floor stops pulls from it, not the
/// images the cache already holds complete at the upstream's digest (they need no pull: the
/// `ImagesDeferred` alarm must not fire for them). What needs a pull is deferred.
#[tokio::test(flavor = "multi_thread")]
async fn a_spent_budget_defers_only_what_needs_a_pull() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::shared();
    let world = world().await;
    let held = format!(
        "quay.io/coreos/etcd:{}",
        own_tag(stack, "quay.io", "coreos/etcd", "v3.5.13").await
    );
    let options = Options {
        state: Some(state_file()),
        ..options()
    };
    let first = prewarm(&world, &options, &[held.as_str()]).await;
    assert!(
        matches!(
            find(&first, &held).outcome,
            Outcome::Warmed | Outcome::AlreadyFresh
        ),
        "{first:#?}"
    );
    let new = format!(
        "quay.io/argoproj/argocd:{}",
        own_tag(stack, "quay.io", "argoproj/argocd", "v2.10.0").await
    );
    stack
        .control(
            "upstreams/quay.io",
            json!({"ratelimit_limit": 100, "ratelimit_remaining": 4}),
        )
        .await;
    let options = Options {
        concurrency: 1,
        ..options
    };
    let report = prewarm(&world, &options, &[held.as_str(), new.as_str()]).await;
    stack
        .control(
            "upstreams/quay.io",
            json!({"ratelimit_limit": null, "ratelimit_remaining": null}),
        )
        .await;
    assert_eq!(
        find(&report, &held).outcome,
        Outcome::AlreadyFresh,
        "{report:#?}"
    );
    let image = find(&report, &new);
    assert_eq!(image.outcome, Outcome::Deferred, "{image:#?}");
    assert!(image.reason.as_deref().unwrap().contains("below the floor"));
    assert_eq!(report.traffic.cache_manifest_gets, 0);
}
