//! `ptc map --format registries-conf` and `--format containerd-hosts` through the real `ptc`:
//! both outputs parse with two TOML parsers (the `toml` crate and Python's `tomllib`) and
//! round-trip, and what they say routes each reference where `ptc map --output json` says
//! it goes: read with the matching rules of containers/image (longest prefix, the rest
//! appended to the mirror's location) and of containerd (the `certs.d/<registry>` host's URL,
//! `override_path`, then `<repository>/manifests/<tag>`). Then the real tool: Debian's
//! skopeo, given the `registries-conf` output, is answered for `docker.io/library/nginx:1.25`
//! by the local stack's ECR endpoint, and sends nothing to the Docker Hub stand-in.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use ptc_tests::{Stack, repo_root};
use serde_json::Value;

mod common;
use common::ptc_offline;

const HOST: &str = "123456789012.dkr.ecr.eu-west-2.amazonaws.com";
/// The ECR upstream of the seeds' `ROOT` example (another account's registry).
const ECR_ROOT_UP: &str = "210987654321.dkr.ecr.us-west-2.amazonaws.com";
/// The ECR upstream of the rule with an upstream repository prefix.
const ECR_TEAM_UP: &str = "111122223333.dkr.ecr.eu-west-1.amazonaws.com";

/// The seeds' four rules and a `ROOT` ECR-to-ECR rule, as `--rule` arguments.
const SEED_RULES: [&str; 5] = [
    "quay=quay.io",
    "k8s=registry.k8s.io",
    "docker-hub=registry-1.docker.io",
    "ghcr=ghcr.io",
    "ROOT=210987654321.dkr.ecr.us-west-2.amazonaws.com",
];

/// Fully qualified references (as containers/image and containerd see them after
/// normalising: `nginx` is `docker.io/library/nginx`), one per rule and then some.
const ROUTABLE: [&str; 7] = [
    "docker.io/library/nginx:1.25",
    "docker.io/bitnami/redis:7.2",
    "quay.io/prometheus/prometheus:v2.51.0",
    "registry.k8s.io/pause:3.9",
    "ghcr.io/fluxcd/source-controller:v1.2.0",
    "210987654321.dkr.ecr.us-west-2.amazonaws.com/team/app:1.0",
    "docker.io/library/busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000",
];

fn ok_stdout(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ptc failed ({:?}): {stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn rule_args() -> Vec<String> {
    SEED_RULES
        .iter()
        .flat_map(|r| ["--rule".to_owned(), (*r).to_owned()])
        .collect()
}

/// `ptc map --output json`: reference → (cached repository, tag or digest, URI).
fn routed(extra: &[String], refs: &[&str], run: impl Fn(&[&str]) -> Output) -> Vec<Value> {
    let mut args: Vec<&str> = vec!["map", "--output", "json"];
    args.extend(extra.iter().map(String::as_str));
    args.extend(refs);
    let text = ok_stdout(&run(&args));
    let all: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    all.as_array().expect("a JSON array").clone()
}

/// Python's tomllib reading `path`, as JSON.
fn python_toml(path: &Path) -> Value {
    python_load(
        path,
        "import tomllib; d = tomllib.load(open(sys.argv[1], 'rb'))",
    )
}

/// PyYAML's safe_load reading `path`, as JSON.
fn python_yaml(path: &Path) -> Value {
    python_load(path, "import yaml; d = yaml.safe_load(open(sys.argv[1]))")
}

fn python_load(path: &Path, load: &str) -> Value {
    let python = repo_root().join(".venv/bin/python");
    let out = Command::new(&python)
        .arg("-c")
        .arg(format!("import json, sys; {load}; print(json.dumps(d))"))
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run scripts/setup.sh (it creates the venv)",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "python could not read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

/// Parse with the `toml` crate and with Python's tomllib (same values), then round-trip
/// (serialise, parse: equal).
fn parse_toml_twice(text: &str, dir: &Path, name: &str) -> toml::Table {
    let table: toml::Table =
        toml::from_str(text).unwrap_or_else(|e| panic!("{name} is not TOML: {e}\n{text}"));
    let again: toml::Table = toml::from_str(&toml::to_string(&table).unwrap()).unwrap();
    assert_eq!(table, again, "{name} does not round-trip");
    let path = dir.join(name.replace('/', "_"));
    std::fs::write(&path, text).unwrap();
    assert_eq!(
        python_toml(&path),
        serde_json::to_value(&table).unwrap(),
        "tomllib reads {name} differently"
    );
    table
}

/// containers/image's choice for a fully qualified reference
/// (pkg/sysregistriesv2/system_registries_v2.go: `refMatchingPrefix` — the prefix, then the
/// end, `/`, `:` or `@`; the longest prefix wins — and `rewriteReference` — the first
/// mirror's location, then what followed the prefix).
fn containers_image_pull(conf: &toml::Table, reference: &str) -> Option<String> {
    let registries = conf.get("registry")?.as_array()?;
    let best = registries
        .iter()
        .filter_map(|r| {
            let prefix = r["prefix"].as_str()?;
            let rest = reference.strip_prefix(prefix)?;
            (rest.is_empty() || rest.starts_with(['/', ':', '@'])).then_some((prefix.len(), r))
        })
        .max_by_key(|(len, _)| *len)?
        .1;
    let prefix = best["prefix"].as_str()?;
    let mirror = best.get("mirror")?.as_array()?.first()?;
    Some(format!(
        "{}{}",
        mirror["location"].as_str()?,
        &reference[prefix.len()..]
    ))
}

/// containerd's first request for a fully qualified reference, as
/// core/remotes/docker/config/hosts.go orders hosts: the `[host]` entries of
/// `certs.d/<registry>/hosts.toml` in order, then the root entry (`server`, the top-level
/// keys); the first one's path kept as is under `override_path` (else `/v2` appended,
/// `parseHostConfig`), then `/<repository>/manifests/<tag or digest>`.
fn containerd_request(out_dir: &Path, reference: &str) -> Option<String> {
    let (registry, rest) = reference.split_once('/')?;
    let (repository, object) = match rest.split_once('@') {
        Some((repo, digest)) => (repo, digest),
        None => rest.rsplit_once(':')?,
    };
    let text =
        std::fs::read_to_string(out_dir.join("certs.d").join(registry).join("hosts.toml")).ok()?;
    let conf: toml::Table = toml::from_str(&text).ok()?;
    let (url, host) = match conf.get("host").and_then(toml::Value::as_table) {
        Some(hosts) if !hosts.is_empty() => {
            let (url, host) = hosts.iter().next()?;
            (url.clone(), host.as_table()?.clone())
        }
        _ => (conf.get("server")?.as_str()?.to_owned(), conf.clone()),
    };
    let mut url = url.trim_end_matches('/').to_owned();
    if host.get("override_path").and_then(toml::Value::as_bool) != Some(true)
        && !url.ends_with("/v2")
    {
        url.push_str("/v2");
    }
    Some(format!("{url}/{repository}/manifests/{object}"))
}

/// The cached image of a `ptc map` JSON entry: `host/repository` then `:tag` or `@digest`.
fn cached(entry: &Value) -> String {
    entry["uri"]
        .as_str()
        .unwrap_or_else(|| panic!("not routable: {entry}"))
        .to_owned()
}

fn manifest_url(entry: &Value, host: &str) -> String {
    let object = entry["digest"]
        .as_str()
        .or(entry["tag"].as_str())
        .expect("tag or digest");
    format!(
        "https://{host}/v2/{}/manifests/{object}",
        entry["repository"].as_str().unwrap()
    )
}

#[test]
fn registries_conf_parses_round_trips_and_routes_the_seeds_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec!["map".into()];
    args.extend(rule_args());
    args.extend(["--registry", HOST, "--format", "registries-conf"].map(String::from));
    args.extend([
        "nginx:1.25".into(),
        "gcr.io/distroless/static:nonroot".into(),
    ]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let text = ok_stdout(&ptc_offline(&argv));
    let conf = parse_toml_twice(&text, dir.path(), "registries.conf");

    // One [[registry]] per rule: prefix = the upstream namespace, one mirror = the cache.
    let by_prefix: Vec<(String, String, String)> = conf["registry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mirrors = r["mirror"].as_array().unwrap();
            assert_eq!(mirrors.len(), 1, "{r}");
            assert!(r.get("insecure").is_none(), "never insecure: {r}");
            (
                r["prefix"].as_str().unwrap().to_owned(),
                r["location"].as_str().unwrap().to_owned(),
                mirrors[0]["location"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut expected = vec![
        ("docker.io", format!("{HOST}/docker-hub")),
        // Docker Hub hosts containers/image does not read as docker.io.
        ("registry-1.docker.io", format!("{HOST}/docker-hub")),
        ("registry.hub.docker.com", format!("{HOST}/docker-hub")),
        ("ghcr.io", format!("{HOST}/ghcr")),
        ("registry.k8s.io", format!("{HOST}/k8s")),
        ("quay.io", format!("{HOST}/quay")),
        (ECR_ROOT_UP, HOST.to_owned()),
    ];
    expected.sort();
    let mut got: Vec<(&str, String)> = by_prefix
        .iter()
        .map(|(p, l, m)| {
            assert_eq!(p, l, "the upstream is the fallback location");
            (p.as_str(), m.clone())
        })
        .collect();
    got.sort();
    assert_eq!(got, expected, "{text}");

    // What containers/image pulls for each reference is the cached URI ptc map gives.
    let entries = routed(&rule_args_with_registry(HOST), &ROUTABLE, ptc_offline);
    for (reference, entry) in ROUTABLE.iter().zip(&entries) {
        assert_eq!(
            containers_image_pull(&conf, reference).as_deref(),
            Some(cached(entry).as_str()),
            "{reference}"
        );
    }
    assert_eq!(
        containers_image_pull(&conf, "docker.io/library/nginx:1.25").unwrap(),
        format!("{HOST}/docker-hub/library/nginx:1.25")
    );
    // No prefix matches a look-alike host or an unsupported registry.
    assert_eq!(
        containers_image_pull(&conf, "quay.io.evil.example/x:1"),
        None
    );
    assert_eq!(
        containers_image_pull(&conf, "gcr.io/distroless/static:nonroot"),
        None
    );
    assert!(
        text.contains("# gcr.io/distroless/static:nonroot stays as written (unsupported)"),
        "{text}"
    );
}

fn rule_args_with_registry(host: &str) -> Vec<String> {
    let mut args = rule_args();
    args.extend(["--registry".to_owned(), host.to_owned()]);
    args
}

#[test]
fn containerd_hosts_parse_round_trip_and_route_the_seeds_rules() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let mut args = vec!["map".to_owned()];
    args.extend(rule_args_with_registry(HOST));
    args.extend(["--format", "containerd-hosts", "--out-dir"].map(String::from));
    args.push(out_dir.display().to_string());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    ok_stdout(&ptc_offline(&argv));

    for registry in [
        "docker.io",
        "quay.io",
        "registry.k8s.io",
        "ghcr.io",
        ECR_ROOT_UP,
    ] {
        let name = format!("certs.d/{registry}/hosts.toml");
        let text =
            std::fs::read_to_string(out_dir.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let conf = parse_toml_twice(&text, dir.path(), &name);
        // The cache is the server and nothing else: containerd appends the root entry after
        // every [host] and fills an empty server with the upstream (hosts.go), so an upstream
        // fallback, which would get the node's ECR token, exists unless the server is the cache.
        let server = conf["server"].as_str().unwrap_or_default();
        assert!(
            server.starts_with(&format!("https://{HOST}/v2")),
            "{name}: server {server}"
        );
        assert!(conf.get("host").is_none(), "{name}: no [host], no fallback");
        assert_eq!(
            conf["capabilities"],
            toml::Value::Array(vec!["pull".into(), "resolve".into()]),
            "{name}"
        );
        assert_eq!(conf["override_path"].as_bool(), Some(true), "{name}");
    }

    // The request containerd makes for each reference is the cached image's manifest.
    let entries = routed(&rule_args_with_registry(HOST), &ROUTABLE, ptc_offline);
    for (reference, entry) in ROUTABLE.iter().zip(&entries) {
        assert_eq!(
            containerd_request(&out_dir, reference),
            Some(manifest_url(entry, HOST)),
            "{reference}"
        );
    }
    assert_eq!(
        containerd_request(&out_dir, "docker.io/library/nginx:1.25").unwrap(),
        format!("https://{HOST}/v2/docker-hub/library/nginx/manifests/1.25")
    );

    // The kubelet credential provider: every mirrored registry and the cache host matched,
    // the cache's Region; read by two YAML parsers alike.
    let provider_path = out_dir.join("kubelet/credential-provider-config.yaml");
    let text = std::fs::read_to_string(&provider_path).unwrap();
    let yaml: Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(python_yaml(&provider_path), yaml);
    assert_eq!(yaml["apiVersion"], "kubelet.config.k8s.io/v1");
    assert_eq!(yaml["kind"], "CredentialProviderConfig");
    let provider = &yaml["providers"][0];
    assert_eq!(provider["name"], "ecr-credential-provider");
    assert_eq!(
        provider["apiVersion"],
        "credentialprovider.kubelet.k8s.io/v1"
    );
    let mut matched: Vec<&str> = provider["matchImages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    matched.sort_unstable();
    let mut want = vec![
        HOST,
        ECR_ROOT_UP,
        "docker.io",
        "registry-1.docker.io",
        "registry.hub.docker.com",
        "ghcr.io",
        "quay.io",
        "registry.k8s.io",
    ];
    want.sort_unstable();
    assert_eq!(matched, want);
    assert_eq!(
        provider["env"],
        serde_json::json!([{"name": "AWS_REGION", "value": "eu-west-2"}])
    );
    let round: Value = serde_norway::from_str(&serde_norway::to_string(&yaml).unwrap()).unwrap();
    assert_eq!(round, yaml);
}

/// Rules read from the registry (DescribePullThroughCacheRules on the stack): an ECR-to-ECR
/// rule with an upstream repository prefix is a registries.conf prefix
/// `<upstream>/<prefix>`, and a comment (not a hosts.toml) for containerd, whose host config
/// is per registry host; a ROOT rule is the cache host itself.
#[tokio::test(flavor = "multi_thread")]
async fn upstream_prefix_and_root_rules_from_the_registry() {
    let stack = Stack::start();
    let role = format!("arn:aws:iam::{}:role/ptc-ecr-upstream", stack.info.account);
    let ecr = aws_sdk_ecr::Client::new(&stack.sdk_config().await);
    for (prefix, url, upstream_prefix) in [
        ("ROOT", ECR_ROOT_UP, None),
        ("team-ecr", ECR_TEAM_UP, Some("team")),
    ] {
        ecr.create_pull_through_cache_rule()
            .ecr_repository_prefix(prefix)
            .upstream_registry_url(url)
            .custom_role_arn(&role)
            .set_upstream_repository_prefix(upstream_prefix.map(str::to_owned))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create rule {prefix}: {e:?}"));
    }
    let run = |args: &[&str]| common::ptc(&stack, args, &[]);
    let refs = [
        "210987654321.dkr.ecr.us-west-2.amazonaws.com/app/web:2",
        "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/api/server:3",
    ];
    let registry = vec!["--registry".to_owned(), HOST.to_owned()];
    let entries = routed(&registry, &refs, run);
    assert_eq!(cached(&entries[0]), format!("{HOST}/app/web:2"));
    assert_eq!(cached(&entries[1]), format!("{HOST}/team-ecr/api/server:3"));

    let dir = tempfile::tempdir().unwrap();
    let text = ok_stdout(&run(&[
        "map",
        "--registry",
        HOST,
        "--format",
        "registries-conf",
    ]));
    let conf = parse_toml_twice(&text, dir.path(), "registries.conf");
    for (reference, entry) in refs.iter().zip(&entries) {
        assert_eq!(
            containers_image_pull(&conf, reference),
            Some(cached(entry)),
            "{reference}\n{text}"
        );
    }
    // Outside the upstream prefix: no rule covers it, and neither does the file.
    assert_eq!(
        containers_image_pull(
            &conf,
            "111122223333.dkr.ecr.eu-west-1.amazonaws.com/other/x:1"
        ),
        None
    );

    let out_dir = dir.path().join("out");
    ok_stdout(&run(&[
        "map",
        "--registry",
        HOST,
        "--format",
        "containerd-hosts",
        "--out-dir",
        out_dir.to_str().unwrap(),
    ]));
    assert_eq!(
        containerd_request(&out_dir, refs[0]),
        Some(manifest_url(&entries[0], HOST))
    );
    assert!(
        !out_dir.join("certs.d").join(ECR_TEAM_UP).exists(),
        "a rule with an upstream repository prefix has no hosts.toml"
    );
    let provider =
        std::fs::read_to_string(out_dir.join("kubelet/credential-provider-config.yaml")).unwrap();
    assert!(
        provider.contains(&format!(
            "# rule team-ecr ({ECR_TEAM_UP}/team -> {HOST}/team-ecr) not written: hosts.toml is per registry host"
        )),
        "{provider}"
    );
}

/// Debian's skopeo, given `ptc map --format registries-conf` for the stack's registry host.
fn skopeo() -> PathBuf {
    let path = PathBuf::from("/usr/bin/skopeo");
    assert!(
        path.exists(),
        "/usr/bin/skopeo not found: run scripts/setup.sh (it installs Debian's skopeo)"
    );
    path
}

fn run_skopeo(conf: &Path, authfile: Option<&Path>, home: &Path, reference: &str) -> Output {
    let mut cmd = Command::new(skopeo());
    cmd.arg("--registries-conf")
        .arg(conf)
        .args(["--command-timeout", "60s", "inspect", "--raw"]);
    match authfile {
        Some(path) => cmd.arg("--authfile").arg(path),
        // An empty auth file: no credentials at all for anyone.
        None => cmd.arg("--authfile").arg(home.join("empty-auth.json")),
    };
    cmd.arg(format!("docker://{reference}"))
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .stdin(Stdio::null())
        .output()
        .expect("run skopeo")
}

/// The Docker Hub stand-in's request counts, and then zero them.
async fn take_upstream_counts(stack: &Stack) -> serde_json::Map<String, Value> {
    let counts = stack.read("upstreams/registry-1.docker.io/counts").await;
    stack
        .control(
            "upstreams/registry-1.docker.io",
            serde_json::json!({"reset_counts": true}),
        )
        .await;
    counts.as_object().cloned().unwrap_or_default()
}

fn count(counts: &Value, key: &str) -> u64 {
    counts[key].as_u64().unwrap_or(0)
}

/// THE REAL-TOOL CHECK. skopeo reads the product's registries.conf, whose docker.io mirror is
/// `<stack registry>/docker-hub`, and answers `inspect --raw docker.io/library/nginx:1.25`
/// from the stack's ECR endpoint at `docker-hub/library/nginx`; the Docker Hub stand-in sees
/// no request from it.
///
/// Edits made here to the parsed TOML, never in the product: the docker.io `location` (the
/// fallback when the mirror fails) points at the Docker Hub stand-in instead of the real
/// docker.io, so a fallback is counted, not sent to the internet; and `insecure = true` on
/// both, because the stack's endpoints are plain HTTP on 127.0.0.1 (containers/image refuses
/// HTTP otherwise); a real ECR host is HTTPS.
///
/// Telling skopeo's requests from the cache's own: on a miss the ECR endpoint pulls through
/// from the stand-in itself. So the image is pulled through once first (warm), the stand-in's
/// counts are zeroed, and only then skopeo runs: a cached tag is not checked upstream again
/// within a day (tests/stack/registry.py), so any later request at the stand-in is skopeo's.
/// A control run without credentials shows that a fallback would be seen: the mirror refuses
/// it (401) and skopeo goes to the stand-in.
#[tokio::test(flavor = "multi_thread")]
async fn skopeo_pulls_docker_hub_through_the_cache_with_the_registries_conf_output() {
    let skopeo_path = skopeo();
    let stack = Stack::start();
    stack.create_docker_hub_rule().await;
    let registry_host = stack
        .info
        .registry_endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let standin = stack
        .upstream("registry-1.docker.io")
        .url
        .trim_start_matches("http://")
        .to_owned();

    // The product's file, rendered from the registry's rules for the stack's registry host.
    let text = ok_stdout(&common::ptc(
        &stack,
        &[
            "map",
            "--registry",
            &registry_host,
            "--format",
            "registries-conf",
        ],
        &[],
    ));
    let dir = tempfile::tempdir().unwrap();
    let mut conf = parse_toml_twice(&text, dir.path(), "registries.conf");
    assert_eq!(
        containers_image_pull(&conf, "docker.io/library/nginx:1.25").as_deref(),
        Some(format!("{registry_host}/docker-hub/library/nginx:1.25").as_str()),
        "{text}"
    );
    assert!(!text.contains("insecure"), "{text}");
    for registry in conf["registry"].as_array_mut().unwrap() {
        let registry = registry.as_table_mut().unwrap();
        if registry["prefix"].as_str() == Some("docker.io") {
            registry.insert("location".into(), standin.clone().into());
        }
        registry.insert("insecure".into(), true.into());
        for mirror in registry["mirror"].as_array_mut().unwrap() {
            mirror
                .as_table_mut()
                .unwrap()
                .insert("insecure".into(), true.into());
        }
    }
    let conf_path = dir.path().join("registries-test.conf");
    std::fs::write(&conf_path, toml::to_string(&conf).unwrap()).unwrap();
    std::fs::write(dir.path().join("empty-auth.json"), r#"{"auths": {}}"#).unwrap();

    // Warm: the cache pulls nginx:1.25 through from the stand-in once.
    let (client, _) = stack.registry().await;
    let warmed = client
        .get_manifest("docker-hub/library/nginx", "1.25")
        .await
        .expect("the cache serves docker-hub/library/nginx:1.25");
    let before = take_upstream_counts(&stack).await;
    assert!(
        before
            .keys()
            .any(|k| k.contains("/library/nginx/manifests/")),
        "the warm pull went through the stand-in: {before:?}"
    );

    // Control: without credentials the mirror answers 401 and skopeo falls back to the
    // `location`, the stand-in, where its requests are counted.
    let out = run_skopeo(&conf_path, None, dir.path(), "docker.io/library/nginx:1.25");
    let fallback = take_upstream_counts(&stack).await;
    assert!(
        !fallback.is_empty(),
        "a fallback reaches the stand-in (skopeo: {:?} {})",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );

    // The check: with the cache's credentials in the auth file (keyed by the mirror's host,
    // as containers/image looks them up for a mirror), the answer comes from the cache.
    let token = stack
        .ecr()
        .await
        .authorization_token()
        .await
        .expect("GetAuthorizationToken on the stack");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        token.username,
        token.password.expose()
    ));
    let authfile = dir.path().join("auth.json");
    std::fs::write(
        &authfile,
        serde_json::json!({"auths": {registry_host.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let registry_before = stack.read("registry/counts").await;
    let out = run_skopeo(
        &conf_path,
        Some(&authfile),
        dir.path(),
        "docker.io/library/nginx:1.25",
    );
    assert!(
        out.status.success(),
        "{} failed: {}",
        skopeo_path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let registry_after = stack.read("registry/counts").await;
    let upstream_after = take_upstream_counts(&stack).await;
    let key = "GET /v2/docker-hub/library/nginx/manifests/1.25";
    assert!(
        count(&registry_after, key) > count(&registry_before, key),
        "the stack's ECR endpoint answered {key}: {registry_after}"
    );
    assert!(
        upstream_after.is_empty(),
        "skopeo sent nothing to the Docker Hub stand-in: {upstream_after:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&warmed.body).trim_end(),
        "skopeo printed the cache's manifest"
    );
}
