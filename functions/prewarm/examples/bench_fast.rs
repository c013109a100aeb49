//! Benchmark of the prewarm client itself, in the default `layers` mode: N two-platform images
//! warmed through an in-process stand-in of the ECR registry endpoint, the upstream and the
//! ECR API calls prewarm makes, each request answered after the injected latency L. Unlike
//! `bench` (the Python stack, which serves a few hundred requests a second), the stand-in here
//! is fast enough that the wall time shows what the client does with its concurrency.
//!
//! The images are real: `bench/app-R` repositories of 50 tags each, every tag an OCI index of
//! linux/amd64 and linux/arm64, each platform a config and two layers (a 4 KiB base layer the
//! repository's tags share, as real images do, and a 2 KiB layer of its own), every blob
//! served with its bytes and checked against its digest by the client. The cache starts
//! empty; what goes through the registry endpoint is recorded per repository, and ECR's API
//! answers from that: `DescribeImages` (by id, `ImageNotFoundException` when one is missing,
//! or the whole listing), `BatchCheckLayerAvailability`, `DescribePullThroughCacheRules`,
//! `GetAuthorizationToken`, each call counted by operation.
//!
//! Two runs over the same list and the same state file (`Options::state`): the first run (an
//! empty cache) and the steady state (every image cached and fresh). For each: wall time, the
//! latency limit, requests to the registry endpoint, blob bytes, ECR calls and upstream HEADs
//! per image. Then `skopeo inspect --raw` over the same list, with its process-start cost
//! measured apart. Prints figures; asserts nothing.
//!
//!     cargo run --profile bench-fast -p prewarm --example bench_fast -- [N=2000] [C=64] [L=20]

#[path = "support/peer.rs"]
mod peer;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response};
use prewarm::{Deps, Options, PrewarmReport, run};
use ptc_core::aws::SdkEcr;
use ptc_core::config::PrewarmMode;
use ptc_core::ecr::EcrApi;
use ptc_core::oci::{RegistryClient, http_client};
use ptc_core::platform::Platform;
use ptc_core::watchlist::WatchListSource;
use ptc_tests::{peak_rss_kib, sdk_config_for};
use serde_json::{Value, json};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const PASSWORD: &str = "bench-registry-password";
const ACCOUNT: &str = "123456789012";
/// Tags per repository; the repository's tags share their base layers.
const TAGS: usize = 50;
const BASE_LAYER_BYTES: usize = 4096;
const OWN_LAYER_BYTES: usize = 2048;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn digest(body: &[u8]) -> String {
    ptc_core::Digest::sha256_of(body).to_string()
}

/// `size` bytes that only `seed` makes (a layer's content does not matter, its digest does).
fn filler(seed: &str, size: usize) -> Bytes {
    let mut out = Vec::with_capacity(size + 64);
    let mut i = 0u64;
    while out.len() < size {
        out.extend_from_slice(format!("{seed}:{i}\n").as_bytes());
        i += 1;
    }
    out.truncate(size);
    Bytes::from(out)
}

struct Doc {
    media_type: &'static str,
    body: Bytes,
    digest: String,
}

impl Doc {
    fn new(media_type: &'static str, body: String) -> Arc<Self> {
        Arc::new(Doc {
            media_type,
            digest: digest(body.as_bytes()),
            body: Bytes::from(body),
        })
    }
}

/// What the upstream serves.
#[derive(Default)]
struct Upstream {
    /// Repository (`bench/app-R`) → tag or digest → manifest.
    manifests: HashMap<String, HashMap<String, Arc<Doc>>>,
    /// Digest → bytes.
    blobs: HashMap<String, Bytes>,
}

/// One image the cache holds.
struct Held {
    media_type: &'static str,
    tags: BTreeSet<String>,
    size: usize,
    pushed_at: f64,
}

/// What one cached repository (`quay/bench/app-R`) holds: what went through the registry
/// endpoint.
#[derive(Default)]
struct CachedRepository {
    images: BTreeMap<String, Held>,
    blobs: HashMap<String, u64>,
}

/// The requests of one run, as the stand-in saw them.
#[derive(Default, Clone)]
struct Tally {
    manifest_requests: u64,
    blob_requests: u64,
    other_registry_requests: u64,
    blob_bytes: u64,
    upstream_heads: u64,
    ecr: BTreeMap<String, u64>,
    /// Set by the run's first upstream HEAD: before it, the run reads the rules and the
    /// survey reads the cache's state; after it, the images are warmed.
    images_started: bool,
    /// Calls before the images that name no repository (the rules).
    setup_calls: u64,
    /// Calls before the images, per repository (the survey's, serial within a repository).
    setup_by_repository: HashMap<String, u64>,
    /// Every request once the images started.
    image_requests: u64,
    /// When the first upstream HEAD arrived, and the last request.
    first_image_at: Option<Instant>,
    last_request_at: Option<Instant>,
}

impl Tally {
    fn registry(&self) -> u64 {
        self.manifest_requests + self.blob_requests + self.other_registry_requests
    }

    fn ecr_calls(&self) -> u64 {
        self.ecr.values().sum()
    }

    /// The least time the run can take: the round trips before the images (the rules, then
    /// the survey: each repository's calls one after the other, `c` repositories at once),
    /// then the images' requests `c` at a time; each round trip `latency`.
    fn limit(&self, c: usize, latency: f64) -> (f64, f64, f64) {
        let longest = self
            .setup_by_repository
            .values()
            .copied()
            .max()
            .unwrap_or(0) as f64;
        let all: u64 = self.setup_by_repository.values().sum();
        let setup = self.setup_calls as f64 + longest.max((all as f64 / c as f64).ceil());
        let images = self.image_requests as f64 / c as f64;
        (setup, images, (setup + images) * latency)
    }
}

struct World {
    upstream: Upstream,
    cache: Mutex<HashMap<String, CachedRepository>>,
    tally: Mutex<Tally>,
    latency: Duration,
    url: String,
}

impl World {
    fn take_tally(&self) -> Tally {
        std::mem::take(&mut *self.tally.lock().unwrap())
    }
}

/// N images: `quay.io/bench/app-R:tT`, R = i / 50, T = i % 50.
fn build(n: usize) -> (Upstream, Vec<String>) {
    let mut upstream = Upstream::default();
    let mut list = Vec::with_capacity(n);
    for i in 0..n {
        let (repo, tag) = (format!("bench/app-{}", i / TAGS), format!("t{}", i % TAGS));
        let docs = upstream.manifests.entry(repo.clone()).or_default();
        let mut children = Vec::new();
        for arch in ["amd64", "arm64"] {
            let base = filler(&format!("{repo}/{arch}/base"), BASE_LAYER_BYTES);
            let own = filler(&format!("{repo}:{tag}/{arch}/layer"), OWN_LAYER_BYTES);
            let config = Bytes::from(
                json!({"architecture": arch, "os": "linux", "config": {"Labels": {"bench": format!("{repo}:{tag}")}},
                    "rootfs": {"type": "layers", "diff_ids": [digest(&base), digest(&own)]}})
                .to_string(),
            );
            let descriptor = |media_type: &str, blob: &Bytes| json!({"mediaType": media_type, "digest": digest(blob), "size": blob.len()});
            let child = Doc::new(
                MANIFEST,
                json!({"schemaVersion": 2, "mediaType": MANIFEST,
                    "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
                    "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", &base),
                               descriptor("application/vnd.oci.image.layer.v1.tar+gzip", &own)]})
                .to_string(),
            );
            for blob in [base, own, config] {
                upstream.blobs.insert(digest(&blob), blob);
            }
            docs.insert(child.digest.clone(), child.clone());
            children.push((arch, child));
        }
        let index = Doc::new(
            INDEX,
            json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": children.iter().map(|(arch, d)| json!({
                "mediaType": MANIFEST, "digest": d.digest, "size": d.body.len(), "platform": {"os": "linux", "architecture": arch}})).collect::<Vec<_>>()})
            .to_string(),
        );
        docs.insert(index.digest.clone(), index.clone());
        docs.insert(tag.clone(), index);
        list.push(format!("quay.io/{repo}:{tag}"));
    }
    (upstream, list)
}

fn respond(status: u16, headers: &[(&str, String)], body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(status);
    for (k, v) in headers {
        response = response.header(*k, v);
    }
    response.body(Full::new(body)).unwrap()
}

fn aws_json(status: u16, body: Value) -> Response<Full<Bytes>> {
    respond(
        status,
        &[("content-type", "application/x-amz-json-1.1".into())],
        Bytes::from(body.to_string()),
    )
}

fn aws_error(code: &str, message: String) -> Response<Full<Bytes>> {
    aws_json(400, json!({"__type": code, "message": message}))
}

fn now_seconds() -> f64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9
}

fn aws(world: &World, op: &str, request: &Value) -> Response<Full<Bytes>> {
    let repository = request["repositoryName"].as_str().unwrap_or_default();
    match op {
        "GetAuthorizationToken" => aws_json(
            200,
            json!({"authorizationData": [{
            "authorizationToken": base64::engine::general_purpose::STANDARD.encode(format!("AWS:{PASSWORD}")),
            "expiresAt": (time::OffsetDateTime::now_utc().unix_timestamp() + 43_200) as f64,
            "proxyEndpoint": world.url}]}),
        ),
        "DescribePullThroughCacheRules" => aws_json(
            200,
            json!({"pullThroughCacheRules": [{
            "ecrRepositoryPrefix": "quay", "upstreamRegistryUrl": "quay.io", "upstreamRegistry": "quay", "registryId": ACCOUNT}]}),
        ),
        "DescribeImages" => {
            let cache = world.cache.lock().unwrap();
            let Some(held) = cache.get(repository) else {
                return aws_error(
                    "RepositoryNotFoundException",
                    format!("The repository with name '{repository}' does not exist"),
                );
            };
            let detail = |digest: &str, image: &Held| {
                json!({"registryId": ACCOUNT, "repositoryName": repository, "imageDigest": digest,
                    "imageTags": image.tags, "imageSizeInBytes": image.size, "imagePushedAt": image.pushed_at,
                    "imageManifestMediaType": image.media_type, "imageStatus": "ACTIVE"})
            };
            let Some(ids) = request["imageIds"].as_array() else {
                let all: Vec<Value> = held.images.iter().map(|(d, i)| detail(d, i)).collect();
                return aws_json(200, json!({"imageDetails": all}));
            };
            let mut found = BTreeMap::new();
            for id in ids {
                let hit = match (id["imageTag"].as_str(), id["imageDigest"].as_str()) {
                    (Some(tag), _) => held.images.iter().find(|(_, i)| i.tags.contains(tag)),
                    (None, Some(d)) => held.images.get_key_value(d),
                    _ => None,
                };
                let Some((digest, image)) = hit else {
                    return aws_error(
                        "ImageNotFoundException",
                        format!(
                            "The image with imageId {id} does not exist within the repository with name '{repository}'"
                        ),
                    );
                };
                found.insert(digest.clone(), detail(digest, image));
            }
            aws_json(
                200,
                json!({"imageDetails": found.into_values().collect::<Vec<_>>()}),
            )
        }
        "BatchCheckLayerAvailability" => {
            let cache = world.cache.lock().unwrap();
            let Some(held) = cache.get(repository) else {
                return aws_error(
                    "RepositoryNotFoundException",
                    format!("The repository with name '{repository}' does not exist"),
                );
            };
            let (mut layers, mut failures) = (Vec::new(), Vec::new());
            for d in request["layerDigests"].as_array().into_iter().flatten() {
                let d = d.as_str().unwrap_or_default();
                match held.blobs.get(d) {
                    Some(size) => layers.push(json!({"layerDigest": d, "layerAvailability": "AVAILABLE", "layerSize": size})),
                    None => failures.push(json!({"layerDigest": d, "failureCode": "MissingLayerDigest", "failureReason": "Layer digest not found"})),
                }
            }
            aws_json(200, json!({"layers": layers, "failures": failures}))
        }
        other => aws_error("UnknownOperationException", other.to_owned()),
    }
}

/// The registry endpoint: `/v2/quay/<repository>/{manifests,blobs}/<reference>`, from the
/// upstream, recording what it serves in the cached repository (created on first pull).
fn registry(
    world: &World,
    method: &Method,
    name: &str,
    kind: &str,
    reference: &str,
) -> Response<Full<Bytes>> {
    let unknown = |code: &str| {
        respond(
            404,
            &[("content-type", "application/json".into())],
            Bytes::from(format!(r#"{{"errors":[{{"code":"{code}"}}]}}"#)),
        )
    };
    let upstream_name = name.strip_prefix("quay/").unwrap_or(name);
    let head = *method == Method::HEAD;
    if kind == "blobs" {
        let Some(blob) = world.upstream.blobs.get(reference) else {
            return unknown("BLOB_UNKNOWN");
        };
        world
            .cache
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_default()
            .blobs
            .insert(reference.to_owned(), blob.len() as u64);
        if !head {
            world.tally.lock().unwrap().blob_bytes += blob.len() as u64;
        }
        let headers = [
            ("content-type", "application/octet-stream".to_owned()),
            ("docker-content-digest", reference.to_owned()),
            ("content-length", blob.len().to_string()),
        ];
        return respond(
            200,
            &headers,
            if head { Bytes::new() } else { blob.clone() },
        );
    }
    let Some(doc) = world
        .upstream
        .manifests
        .get(upstream_name)
        .and_then(|docs| docs.get(reference))
    else {
        return unknown("MANIFEST_UNKNOWN");
    };
    {
        let mut cache = world.cache.lock().unwrap();
        let repository = cache.entry(name.to_owned()).or_default();
        let held = repository
            .images
            .entry(doc.digest.clone())
            .or_insert_with(|| Held {
                media_type: doc.media_type,
                tags: BTreeSet::new(),
                size: doc.body.len(),
                pushed_at: now_seconds(),
            });
        if !reference.starts_with("sha256:") {
            held.tags.insert(reference.to_owned());
        }
    }
    let headers = [
        ("content-type", doc.media_type.to_owned()),
        ("docker-content-digest", doc.digest.clone()),
        ("content-length", doc.body.len().to_string()),
    ];
    respond(
        200,
        &headers,
        if head { Bytes::new() } else { doc.body.clone() },
    )
}

/// The upstream: manifest HEADs and GETs of `/v2/<repository>/manifests/<reference>`.
fn upstream(world: &World, method: &Method, name: &str, reference: &str) -> Response<Full<Bytes>> {
    match world
        .upstream
        .manifests
        .get(name)
        .and_then(|d| d.get(reference))
    {
        Some(doc) => {
            let headers = [
                ("content-type", doc.media_type.to_owned()),
                ("docker-content-digest", doc.digest.clone()),
                ("content-length", doc.body.len().to_string()),
            ];
            let body = if *method == Method::HEAD {
                Bytes::new()
            } else {
                doc.body.clone()
            };
            respond(200, &headers, body)
        }
        None => respond(404, &[], Bytes::new()),
    }
}

/// `/v2/<name>/<kind>/<reference>` → (name, kind, reference).
fn split(path: &str) -> Option<(&str, &str, &str)> {
    let rest = path.strip_prefix("/v2/")?;
    for kind in ["manifests", "blobs"] {
        if let Some((name, reference)) = rest.rsplit_once(&format!("/{kind}/")) {
            return Some((name, kind, reference));
        }
    }
    None
}

async fn serve(
    world: Arc<World>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(|t| t.rsplit('.').next().unwrap_or_default().to_owned());
    let path = parts.uri.path().to_owned();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let parsed = split(&path);
    // Counted as it arrives, then answered after the latency.
    {
        let mut tally = world.tally.lock().unwrap();
        let tally = &mut *tally;
        tally.last_request_at = Some(Instant::now());
        match (&target, parsed) {
            (Some(op), _) => {
                *tally.ecr.entry(op.clone()).or_default() += 1;
                if tally.images_started {
                    tally.image_requests += 1;
                } else if let Some(repo) = request["repositoryName"].as_str() {
                    *tally
                        .setup_by_repository
                        .entry(repo.to_owned())
                        .or_default() += 1;
                } else {
                    tally.setup_calls += 1;
                }
            }
            (None, Some((name, kind, _))) if name.starts_with("quay/") => {
                match kind {
                    "blobs" => tally.blob_requests += 1,
                    _ => tally.manifest_requests += 1,
                }
                if tally.images_started {
                    tally.image_requests += 1;
                } else {
                    tally.setup_calls += 1;
                }
            }
            (None, Some(_)) => {
                tally.upstream_heads += 1;
                if !tally.images_started {
                    tally.first_image_at = tally.last_request_at;
                }
                tally.images_started = true;
                tally.image_requests += 1;
            }
            (None, None) => {
                tally.other_registry_requests += 1;
                if tally.images_started {
                    tally.image_requests += 1;
                } else {
                    tally.setup_calls += 1;
                }
            }
        }
    }
    tokio::time::sleep(world.latency).await;
    Ok(match (target, parsed) {
        (Some(op), _) => aws(&world, &op, &request),
        (None, Some((name, kind, reference))) if name.starts_with("quay/") => {
            registry(&world, &parts.method, name, kind, reference)
        }
        (None, Some((name, _, reference))) => upstream(&world, &parts.method, name, reference),
        (None, None) => respond(200, &[], Bytes::new()),
    })
}

/// One run's figures.
struct Figures {
    report: PrewarmReport,
    wall: f64,
    tally: Tally,
    /// Seconds from the start to the first upstream HEAD (rules, state, survey), from there
    /// to the last request's answer (the images), and from there to the report (the tail:
    /// saving the state).
    phases: (f64, f64, f64),
}

async fn measure(world: &World, deps: &Deps<'_>, options: &Options, list: &[String]) -> Figures {
    world.take_tally();
    let started = Instant::now();
    let report = run(
        deps,
        options,
        "bench",
        list.to_vec(),
        time::OffsetDateTime::now_utc(),
    )
    .await;
    let ended = Instant::now();
    let wall = (ended - started).as_secs_f64();
    let tally = world.take_tally();
    let first = tally.first_image_at.unwrap_or(started);
    let last = tally
        .last_request_at
        .map_or(ended, |t| (t + world.latency).min(ended));
    let phases = (
        (first - started).as_secs_f64(),
        last.saturating_duration_since(first).as_secs_f64(),
        ended.saturating_duration_since(last).as_secs_f64(),
    );
    Figures {
        report,
        wall,
        tally,
        phases,
    }
}

fn print_runs(runs: &[(&str, &Figures)], n: usize, c: usize, latency: u64) {
    let per = |x: u64| x as f64 / n as f64;
    let l = latency as f64 / 1000.0;
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
        "images warmed / already fresh / failed",
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
        "  before the images / images / tail (s)",
        runs.iter()
            .map(|(_, f)| format!("{:.2}/{:.2}/{:.2}", f.phases.0, f.phases.1, f.phases.2))
            .collect(),
    );
    row(
        "latency limit (s)",
        runs.iter()
            .map(|(_, f)| format!("{:.2}", f.tally.limit(c, l).2))
            .collect(),
    );
    row(
        "  round trips before the images",
        runs.iter()
            .map(|(_, f)| format!("{:.0}", f.tally.limit(c, l).0))
            .collect(),
    );
    row(
        "  round trips of the images (requests / C)",
        runs.iter()
            .map(|(_, f)| format!("{:.1}", f.tally.limit(c, l).1))
            .collect(),
    );
    row(
        "ratio to the limit",
        runs.iter()
            .map(|(_, f)| format!("{:.2}x", f.wall / f.tally.limit(c, l).2))
            .collect(),
    );
    row(
        "registry-endpoint requests / image",
        runs.iter()
            .map(|(_, f)| format!("{:.3}", per(f.tally.registry())))
            .collect(),
    );
    row(
        "  manifest / blob requests (total)",
        runs.iter()
            .map(|(_, f)| format!("{}/{}", f.tally.manifest_requests, f.tally.blob_requests))
            .collect(),
    );
    row(
        "blob bytes (total)",
        runs.iter()
            .map(|(_, f)| f.tally.blob_bytes.to_string())
            .collect(),
    );
    row(
        "ECR API calls / image",
        runs.iter()
            .map(|(_, f)| format!("{:.3}", per(f.tally.ecr_calls())))
            .collect(),
    );
    let ops: BTreeSet<&String> = runs.iter().flat_map(|(_, f)| f.tally.ecr.keys()).collect();
    for op in ops {
        row(
            &format!("  {op}"),
            runs.iter()
                .map(|(_, f)| {
                    let calls = f.tally.ecr.get(op).copied().unwrap_or(0);
                    format!("{calls} ({:.3})", per(calls))
                })
                .collect(),
        );
    }
    row(
        "upstream HEADs / image",
        runs.iter()
            .map(|(_, f)| format!("{:.3}", per(f.tally.upstream_heads)))
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
    row(
        "report.traffic: blob bytes / upstream HEADs",
        runs.iter()
            .map(|(_, f)| {
                let t = &f.report.traffic;
                format!("{}/{}", t.cache_blob_bytes, t.upstream_heads)
            })
            .collect(),
    );
    for (name, f) in runs {
        for warning in f.report.warnings.iter().chain(&f.report.errors).take(3) {
            println!("  {name}: {warning}");
        }
        if let Some(failed) = f.report.images.iter().find(|i| {
            i.reason.is_some()
                && i.outcome != prewarm::Outcome::AlreadyFresh
                && i.outcome != prewarm::Outcome::Warmed
        }) {
            println!(
                "  {name}: e.g. {} {:?}: {}",
                failed.reference,
                failed.outcome,
                failed.reason.as_deref().unwrap_or_default()
            );
        }
    }
}

/// The skopeo peer over the same list, through the same stand-in.
fn skopeo(
    world: &World,
    url: &str,
    list: &[String],
    c: usize,
    latency: u64,
    runs: &[(&str, &Figures)],
) {
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
    world.take_tally();
    let Some(peer) = peer::run(&uris, &format!("AWS:{PASSWORD}"), c) else {
        return;
    };
    let requests = world.take_tally().registry();
    let walls: Vec<(&str, f64)> = runs.iter().map(|(name, f)| (*name, f.wall)).collect();
    peer::print(&peer, list.len(), requests, c, latency, &walls);
}

#[tokio::main]
async fn main() {
    let (n, c, latency) = (arg(1, 2000) as usize, arg(2, 64) as usize, arg(3, 20));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (upstream, list) = build(n);
    let world = Arc::new(World {
        upstream,
        cache: Mutex::new(HashMap::new()),
        tally: Mutex::new(Tally::default()),
        latency: Duration::from_millis(latency),
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
    let state =
        std::env::temp_dir().join(format!("ptc-bench-fast-state-{}.json", std::process::id()));
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
    // What the process holds before the run: the runtime, the clients, and the stand-in's
    // documents and blobs, which a deployed prewarm does not carry.
    let baseline = ptc_tests::rss_kib();
    let first = measure(&world, &deps, &options, &list).await;
    let state_bytes = std::fs::metadata(&state).map(|m| m.len()).unwrap_or(0);
    let steady = measure(&world, &deps, &options, &list).await;
    let _ = std::fs::remove_file(&state);

    println!(
        "prewarm, layers mode: {n} two-platform images ({} repositories of {TAGS} tags; per platform a config and 2 layers, the {} KiB base layer shared by a repository's tags) at concurrency {c}, {latency} ms per request",
        n.div_ceil(TAGS),
        BASE_LAYER_BYTES / 1024
    );
    let runs = [("first run", &first), ("steady state", &steady)];
    print_runs(&runs, n, c, latency);
    println!(
        "  latency limit = L x (round trips before the images: the rules, then the survey, each repository's calls in a row, C repositories at once; plus the images' requests / C: C images in flight, one request at a time each)"
    );
    println!(
        "  state file                {state_bytes} bytes after the first run ({:.0} bytes / image)",
        state_bytes as f64 / n as f64
    );
    println!(
        "  peak RSS                  {:.1} MiB for the process; {:.1} MiB before the runs (runtime, clients, the stand-in's {n} images), so the job adds {:.1} MiB",
        peak_rss_kib() as f64 / 1024.0,
        baseline as f64 / 1024.0,
        peak_rss_kib().saturating_sub(baseline) as f64 / 1024.0
    );
    skopeo(&world, &url, &list, c, latency, &runs);
}
