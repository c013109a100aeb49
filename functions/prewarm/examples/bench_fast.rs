//! Benchmark of the prewarm client itself: N two-platform images warmed through an
//! in-process stand-in of the ECR registry endpoint, the upstream and the three ECR API calls
//! prewarm makes (GetAuthorizationToken, DescribePullThroughCacheRules, DescribeImages), each
//! request answered after the injected latency. Unlike `bench` (the Python stack, which
//! serves a few hundred requests a second), the stand-in here is fast enough that the wall
//! time shows what the client does with its concurrency. Then the same list with
//! `skopeo inspect --raw` at the same concurrency. Prints figures; asserts nothing.
//!
//!     cargo run --profile bench-fast -p prewarm --example bench_fast -- [N=2000] [C=64] [L=20]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use prewarm::{Deps, Options, run};
use ptc_core::aws::SdkEcr;
use ptc_core::config::PrewarmMode;
use ptc_core::ecr::EcrApi;
use ptc_core::oci::{RegistryClient, http_client};
use ptc_core::platform::Platform;
use ptc_tests::{peak_rss_kib, sdk_config_for};
use serde_json::{Value, json};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const PASSWORD: &str = "bench-registry-password";

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn digest(body: &[u8]) -> String {
    ptc_core::Digest::sha256_of(body).to_string()
}

#[derive(Default)]
struct Counts {
    registry: AtomicU64,
    upstream: AtomicU64,
    aws: AtomicU64,
}

struct Doc {
    media_type: &'static str,
    body: Bytes,
    digest: String,
}

/// URL path (`/v2/...`) → manifest.
type Manifests = HashMap<String, Arc<Doc>>;
/// Repository → (tag → digest), and every digest it holds (the index first).
type Images = HashMap<String, (HashMap<String, String>, Vec<String>)>;

struct World {
    manifests: Manifests,
    images: Images,
    latency: Duration,
    counts: Counts,
    url: String,
}

fn build(n: usize) -> (Manifests, Images) {
    let mut manifests = HashMap::new();
    let mut images = HashMap::new();
    for i in 0..n {
        let repo = format!("bench/app-{i}");
        let mut children = Vec::new();
        for arch in ["amd64", "arm64"] {
            let layer = digest(format!("{repo}/{arch}/layer").as_bytes());
            let config = digest(format!("{repo}/{arch}/config").as_bytes());
            let body = json!({"schemaVersion": 2, "mediaType": MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": 1000}]})
            .to_string();
            let doc = Arc::new(Doc {
                media_type: MANIFEST,
                digest: digest(body.as_bytes()),
                body: Bytes::from(body),
            });
            children.push((arch, doc));
        }
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": children.iter().map(|(arch, d)| json!({
            "mediaType": MANIFEST, "digest": d.digest, "size": d.body.len(), "platform": {"os": "linux", "architecture": arch}})).collect::<Vec<_>>()})
        .to_string();
        let index = Arc::new(Doc {
            media_type: INDEX,
            digest: digest(index.as_bytes()),
            body: Bytes::from(index),
        });
        let cached = format!("quay/{repo}");
        manifests.insert(format!("/v2/{cached}/manifests/t0"), index.clone());
        manifests.insert(format!("/v2/{repo}/manifests/t0"), index.clone());
        manifests.insert(
            format!("/v2/{cached}/manifests/{}", index.digest),
            index.clone(),
        );
        let mut digests = vec![index.digest.clone()];
        for (_, child) in &children {
            manifests.insert(
                format!("/v2/{cached}/manifests/{}", child.digest),
                child.clone(),
            );
            digests.push(child.digest.clone());
        }
        images.insert(
            cached,
            (
                HashMap::from([("t0".to_owned(), index.digest.clone())]),
                digests,
            ),
        );
    }
    (manifests, images)
}

fn respond(status: u16, headers: &[(&str, String)], body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(status);
    for (k, v) in headers {
        response = response.header(*k, v);
    }
    response.body(Full::new(body)).unwrap()
}

async fn aws(world: &World, target: &str, body: &[u8]) -> Response<Full<Bytes>> {
    world.counts.aws.fetch_add(1, Ordering::Relaxed);
    let op = target.rsplit('.').next().unwrap_or_default();
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let answer = match op {
        "GetAuthorizationToken" => json!({"authorizationData": [{
            "authorizationToken": base64::engine::general_purpose::STANDARD.encode(format!("AWS:{PASSWORD}")),
            "expiresAt": (time::OffsetDateTime::now_utc().unix_timestamp() + 43_200) as f64,
            "proxyEndpoint": world.url}]}),
        "DescribePullThroughCacheRules" => json!({"pullThroughCacheRules": [{
            "ecrRepositoryPrefix": "quay", "upstreamRegistryUrl": "quay.io", "upstreamRegistry": "quay", "registryId": "123456789012"}]}),
        "DescribeImages" => {
            let repo = request["repositoryName"].as_str().unwrap_or_default();
            let Some((tags, digests)) = world.images.get(repo) else {
                let error = json!({"__type": "RepositoryNotFoundException", "message": repo});
                return respond(
                    400,
                    &[("content-type", "application/x-amz-json-1.1".into())],
                    Bytes::from(error.to_string()),
                );
            };
            let mut details = Vec::new();
            for id in request["imageIds"].as_array().into_iter().flatten() {
                let found = match (id["imageTag"].as_str(), id["imageDigest"].as_str()) {
                    (Some(tag), _) => tags.get(tag).cloned(),
                    (_, Some(d)) => digests.iter().find(|x| *x == d).cloned(),
                    _ => None,
                };
                if let Some(d) = found {
                    let tagged: Vec<&String> = tags
                        .iter()
                        .filter(|(_, v)| **v == d)
                        .map(|(k, _)| k)
                        .collect();
                    details.push(json!({"registryId": "123456789012", "repositoryName": repo, "imageDigest": d,
                        "imageTags": tagged, "imageSizeInBytes": 1000, "imagePushedAt": 1.7e9,
                        "imageManifestMediaType": if d == digests[0] { INDEX } else { MANIFEST }}));
                }
            }
            json!({"imageDetails": details})
        }
        other => json!({"__type": "UnknownOperationException", "message": other}),
    };
    respond(
        200,
        &[("content-type", "application/x-amz-json-1.1".into())],
        Bytes::from(answer.to_string()),
    )
}

async fn serve(
    world: Arc<World>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    tokio::time::sleep(world.latency).await;
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if let Some(target) = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        return Ok(aws(&world, target, &body).await);
    }
    let path = parts.uri.path();
    if path == "/v2/" {
        world.counts.registry.fetch_add(1, Ordering::Relaxed);
        return Ok(respond(200, &[], Bytes::new()));
    }
    if path.starts_with("/v2/quay/") {
        world.counts.registry.fetch_add(1, Ordering::Relaxed);
    } else {
        world.counts.upstream.fetch_add(1, Ordering::Relaxed);
    }
    Ok(match world.manifests.get(path) {
        Some(doc) => {
            let headers = [
                ("content-type", doc.media_type.to_owned()),
                ("docker-content-digest", doc.digest.clone()),
                ("content-length", doc.body.len().to_string()),
            ];
            let body = if parts.method == hyper::Method::HEAD {
                Bytes::new()
            } else {
                doc.body.clone()
            };
            respond(200, &headers, body)
        }
        None => respond(
            404,
            &[("content-type", "application/json".into())],
            Bytes::from(r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#),
        ),
    })
}

#[tokio::main]
async fn main() {
    let (n, c, latency) = (arg(1, 2000) as usize, arg(2, 64) as usize, arg(3, 20));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (manifests, images) = build(n);
    let world = Arc::new(World {
        manifests,
        images,
        latency: Duration::from_millis(latency),
        counts: Counts::default(),
        url: url.clone(),
    });
    let server_world = world.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let world = server_world.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |r| serve(world.clone(), r));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let sdk = sdk_config_for(&url, "us-east-1").await;
    let ecr: Arc<dyn EcrApi> = Arc::new(SdkEcr::new(aws_sdk_ecr::Client::new(&sdk)));
    let http = http_client(Duration::from_secs(60)).unwrap();
    let (cache, host) = RegistryClient::for_ecr(http.clone(), ecr.clone(), Some(&url))
        .await
        .unwrap();
    let secrets = ptc_core::fakes::FakeSecrets::default();
    let metrics = ptc_core::fakes::FakeMetrics::default();
    let objects = ptc_core::fakes::FakeObjects::default();
    let upstreams = BTreeMap::from([("quay.io".to_owned(), url.clone())]);
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
    let list: Vec<String> = (0..n)
        .map(|i| format!("quay.io/bench/app-{i}:t0"))
        .collect();
    // What the process holds before the run: the runtime, the clients, and the stand-in's
    // documents, which a deployed prewarm does not carry.
    let baseline = ptc_tests::rss_kib();
    let before = [
        &world.counts.registry,
        &world.counts.upstream,
        &world.counts.aws,
    ]
    .map(|a| a.load(Ordering::Relaxed));
    let started = Instant::now();
    let report = run(
        &deps,
        &options,
        "bench",
        list.clone(),
        time::OffsetDateTime::now_utc(),
    )
    .await;
    let wall = started.elapsed().as_secs_f64();
    let [registry, upstream, aws] = [
        &world.counts.registry,
        &world.counts.upstream,
        &world.counts.aws,
    ]
    .map(|a| a.load(Ordering::Relaxed))
    .into_iter()
    .zip(before)
    .map(|(a, b)| a - b)
    .collect::<Vec<_>>()
    .try_into()
    .unwrap();
    let requests = registry + upstream + aws;
    let limit = requests as f64 * latency as f64 / 1000.0 / c as f64;
    println!(
        "prewarm: {} images ({} warmed, {} already fresh, {} failed) at concurrency {c}, {latency} ms per request",
        report.summary.images,
        report.summary.warmed,
        report.summary.already_fresh,
        report.summary.failed
    );
    println!("  wall time            {wall:.2} s");
    println!(
        "  requests             {requests} (registry endpoint {registry}, upstream HEAD {upstream}, AWS API {aws})"
    );
    println!("  latency limit        {limit:.2} s (requests x latency / concurrency)");
    println!("  ratio to the limit   {:.2}x", wall / limit);
    println!(
        "  peak RSS             {:.1} MiB for the process; {:.1} MiB before the run (runtime, clients, the stand-in's {n} images), so the job adds {:.1} MiB",
        peak_rss_kib() as f64 / 1024.0,
        baseline as f64 / 1024.0,
        peak_rss_kib().saturating_sub(baseline) as f64 / 1024.0
    );

    let endpoint = url.trim_start_matches("http://");
    let uris: Vec<String> = list
        .iter()
        .map(|i| {
            format!(
                "docker://{endpoint}/quay/{}",
                i.trim_start_matches("quay.io/")
            )
        })
        .collect();
    let Some((skopeo, ok)) = ptc_tests::skopeo_inspect(&uris, c, &format!("AWS:{PASSWORD}")) else {
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
