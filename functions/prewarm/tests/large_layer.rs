//! Issue 18, large layers, on the local stack: a ~200 MB layer through a ~5 MB/s link (about
//! 40 s) completes with the default settings. Before, the registry client's whole-request
//! timeout (`PTC_HTTP_TIMEOUT_SECS`, 20 s) cut every blob download at 20 s; now a blob has a
//! budget that grows with its size and only a silent connection is cut (see
//! `ptc_core::oci::http_client` and `RegistryClient::get_blob`).
//!
//! The image is pushed to the quay.io stand-in through the distribution API (one layer of
//! random bytes), and prewarm reaches the stack's registry endpoint through a TCP proxy that
//! sends the endpoint's answers at 5 MB/s (the storage redirect of a blob comes back through
//! it too). The stack is started by the test (`Stack::shared`); without it the test fails, it
//! never skips.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prewarm::{Deps, Options, Outcome, run};
use ptc_core::Digest;
use ptc_core::aws::{SdkEcr, SdkMetrics, SdkObjects, SdkSecrets};
use ptc_core::config::Settings;
use ptc_core::ecr::EcrApi;
use ptc_core::oci::{RegistryClient, http_client};
use ptc_tests::Stack;
use serde_json::json;

/// The layer's size: 200 MB, 40 s at [`RATE`], twice the default 20 s timeout.
const LAYER_BYTES: usize = 200_000_000;
/// The link's rate, from the registry endpoint to prewarm: 5 MB/s.
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

/// `len` pseudo-random bytes (xorshift64*: incompressible, fast, no dependency).
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Push a blob to a distribution registry (`POST` an upload, `PUT` it with its digest).
async fn push_blob(http: &reqwest::Client, base: &str, repository: &str, body: Vec<u8>) -> Digest {
    let digest = Digest::sha256_of(&body);
    let start = http
        .post(format!("{base}/v2/{repository}/blobs/uploads/"))
        .send()
        .await
        .expect("start an upload");
    assert_eq!(start.status().as_u16(), 202, "upload start");
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let mut url = reqwest::Url::parse(base).unwrap().join(&location).unwrap();
    url.query_pairs_mut().append_pair("digest", digest.as_str());
    let put = http
        .put(url)
        .header("Content-Type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(
        put.status().as_u16(),
        201,
        "upload: {}",
        put.text().await.unwrap_or_default()
    );
    digest
}

/// Push to the upstream stand-in `host` a single-platform image with one layer of `layer_bytes`
/// random bytes; returns the layer's digest.
async fn push_big_image(
    stack: &Stack,
    host: &str,
    repository: &str,
    tag: &str,
    layer_bytes: usize,
) -> Digest {
    let base = stack.upstream(host).url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::new();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let layer = push_blob(&http, &base, repository, random_bytes(layer_bytes, seed)).await;
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer.as_str()]},
    }))
    .unwrap();
    let config_len = config.len();
    let config = push_blob(&http, &base, repository, config).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": config_len},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.as_str(), "size": layer_bytes}],
    });
    let put = http
        .put(format!("{base}/v2/{repository}/manifests/{tag}"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(serde_json::to_vec(&manifest).unwrap())
        .send()
        .await
        .expect("push the manifest");
    assert_eq!(
        put.status().as_u16(),
        201,
        "manifest: {}",
        put.text().await.unwrap_or_default()
    );
    layer
}

/// A TCP proxy on 127.0.0.1 to `target` (`http://host:port`) that sends the target's answers
/// at `bytes_per_second` per connection (requests go through at full speed). Its URL.
fn throttling_proxy(target: &str, bytes_per_second: u64) -> String {
    let target = target
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let (mut client_in, mut server_out) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_in, &mut server_out);
                let _ = server_out.shutdown(Shutdown::Write);
            });
            let (mut server_in, mut client_out) = (server, client);
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut sent = 0u64;
                let mut buf = vec![0u8; 50_000];
                loop {
                    let n = match server_in.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if client_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n as u64;
                    let due = Duration::from_secs_f64(sent as f64 / bytes_per_second as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                let _ = client_out.shutdown(Shutdown::Both);
            });
        }
    });
    url
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
    let layer = push_big_image(stack, "quay.io", &repository, "1.0", LAYER_BYTES).await;

    let slow_link = throttling_proxy(&stack.info.registry_endpoint, RATE);
    let ecr_port: Arc<dyn EcrApi> = Arc::new(SdkEcr::new(aws_sdk_ecr::Client::new(&sdk)));
    let http = http_client(settings.http_timeout).unwrap();
    let (cache, host) = RegistryClient::for_ecr(http.clone(), ecr_port, Some(&slow_link))
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
    let floor = Duration::from_secs(LAYER_BYTES as u64 / RATE);
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
