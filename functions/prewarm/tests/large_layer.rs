//! Issue 18, large layers, on the local stack: a ~200 MB layer through a ~5 MB/s link (about
//! 40 s) completes with the default settings. Before, the registry client's whole-request
//! timeout (`PTC_HTTP_TIMEOUT_SECS`, 20 s) cut every blob download at 20 s; now a blob has a
//! budget that grows with its size and only a silent connection is cut (see
//! `ptc_core::oci::http_client` and `RegistryClient::get_blob`).
//!
//! The image is pushed to the quay.io stand-in with one layer of random bytes
//! (`Stack::push_big_image`), and the stack's registry endpoint sends layers at 5 MB/s
//! (`Stack::throttle_blobs`, reset when the test ends, however it ends). The stack is started
//! by the test (`Stack::shared`); without it the test fails, it never skips.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prewarm::{Deps, Options, Outcome, run};
use ptc_core::aws::{SdkEcr, SdkMetrics, SdkObjects, SdkSecrets};
use ptc_core::config::Settings;
use ptc_core::ecr::EcrApi;
use ptc_core::oci::{RegistryClient, http_client};
use ptc_tests::Stack;

/// The layer's size: 200 MB, 40 s at [`RATE`], twice the default 20 s timeout.
const LAYER_BYTES: u64 = 200_000_000;
/// The registry endpoint's throttle of layer downloads: 5 MB/s.
const RATE: u64 = 5_000_000;

/// The settings a deployment gets with nothing set but the region and the `layers` mode:
/// every timeout at its default.
fn default_settings(region: &str) -> Settings {
    let vars = BTreeMap::from([
        ("AWS_REGION", region.to_owned()),
        ("PTC_PREWARM_MODE", "layers".to_owned()),
    ]);
    Settings::from_sources(|name| vars.get(name).cloned()).expect("default settings")
}

/// Turns the stack's throttle off when the test ends, however it ends.
struct Throttle(&'static Stack);

impl Drop for Throttle {
    fn drop(&mut self) {
        let stack = self.0;
        // Drop cannot await: a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(stack.throttle_blobs(0));
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_200_mb_layer_through_a_5_mb_per_s_link_completes_with_the_default_settings() {
    let stack = Stack::shared();
    let settings = default_settings(&stack.info.region);
    assert_eq!(
        settings.http_timeout.as_secs(),
        20,
        "the default PTC_HTTP_TIMEOUT_SECS, shorter than the download"
    );
    let sdk = stack.sdk_config().await;
    stack.create_rule("quay", "quay.io", None).await;

    let repository = format!("big/layer-{}", ptc_tests::unique());
    let pushed = stack
        .push_big_image("quay.io", &repository, "1.0", LAYER_BYTES)
        .await;
    let layer = pushed["layer_digest"]
        .as_str()
        .expect("layer_digest")
        .to_owned();
    assert_eq!(
        pushed["layer_bytes"].as_u64(),
        Some(LAYER_BYTES),
        "{pushed}"
    );
    let ecr_port: Arc<dyn EcrApi> = Arc::new(SdkEcr::new(aws_sdk_ecr::Client::new(&sdk)));
    let http = http_client(settings.http_timeout).unwrap();
    let (cache, host) =
        RegistryClient::for_ecr(http.clone(), ecr_port, Some(&stack.info.registry_endpoint))
            .await
            .unwrap();
    let ecr = SdkEcr::new(aws_sdk_ecr::Client::new(&sdk));
    let secrets = SdkSecrets::new(aws_sdk_secretsmanager::Client::new(&sdk));
    let objects = SdkObjects::new(ptc_core::aws::AwsClients::new(&sdk).s3());
    let metrics = SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let upstreams: BTreeMap<String, String> = stack
        .info
        .upstreams
        .iter()
        .map(|(h, u)| (h.clone(), u.url.clone()))
        .collect();
    let deps = Deps {
        ecr: &ecr,
        secrets: &secrets,
        objects: &objects,
        metrics: &metrics,
        cache: &cache,
        registry_host: &host,
        http: &http,
        upstream_endpoints: &upstreams,
    };
    let options = Options {
        publish_metrics: false,
        ..Options::from_settings(&settings)
    };
    let reference = format!("quay.io/{repository}:1.0");

    stack.throttle_blobs(RATE).await;
    let _reset = Throttle(stack);
    let before = stack.read("registry/counts").await;
    let started = Instant::now();
    let report = run(
        &deps,
        &options,
        "test",
        vec![reference.clone()],
        time::OffsetDateTime::now_utc(),
    )
    .await;
    let took = started.elapsed();
    let after = stack.read("registry/counts").await;

    let image = report
        .images
        .iter()
        .find(|i| i.reference == reference)
        .unwrap_or_else(|| panic!("{reference} in {report:#?}"));
    assert_eq!(image.outcome, Outcome::Warmed, "{image:#?}");
    let floor = Duration::from_secs(LAYER_BYTES / RATE);
    assert!(
        took >= floor.mul_f64(0.9),
        "the link was throttled: {took:?}"
    );
    // The layer's bytes went over the link once: one GET of the blob, one of its storage URL.
    let since = |key: &str| {
        after.get(key).and_then(|v| v.as_i64()).unwrap_or(0)
            - before.get(key).and_then(|v| v.as_i64()).unwrap_or(0)
    };
    let downloads: BTreeMap<&String, i64> = after
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("GET ") && k.contains(layer.as_str()))
        .map(|k| (k, since(k)))
        .collect();
    assert_eq!(
        since(&format!("GET /v2/quay/{repository}/blobs/{layer}")),
        1,
        "{downloads:?}"
    );
    assert_eq!(since(&format!("GET /_s3/{layer}")), 1, "{downloads:?}");
    println!(
        "{LAYER_BYTES} bytes at {RATE} B/s: warmed in {:.1} s, {downloads:?}",
        took.as_secs_f64()
    );
}
