//! `ptc map --format terraform-locals | helm-values | kustomize-images` through the real
//! binary, with the seeds' rules and real references, each output read back by real parsers
//! and evaluated or applied the way its tool would:
//! - Terraform: hcl-rs parses it and its evaluator (`hcl::eval`) computes the locals with the
//!   switch on and off;
//! - Helm values and kustomize entries: serde_norway and PyYAML parse them, round-trip them,
//!   and the values recompose to `ptc map`'s cached URI;
//! - kustomize: its image matcher and updater, ported below from its source, rewrite each
//!   reference to `ptc map`'s cached URI.

mod common;
use common::ptc_offline as ptc;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Output, Stdio};

use hcl::eval::{Context, Evaluate};
use ptc_core::reference::ImageReference;
use serde_json::Value as Json;

const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-2.amazonaws.com";

/// The seeds' rules (seeds/001: registry_quay, registry_k8s, registry_docker_hub,
/// registry_ghcr).
const RULES: [&str; 4] = [
    "docker-hub=registry-1.docker.io",
    "quay=quay.io",
    "k8s=registry.k8s.io",
    "ghcr=ghcr.io",
];

const INGRESS_NGINX: &str = "registry.k8s.io/ingress-nginx/controller:v1.10.0@sha256:42b3f0e5d0846876b1791cd3afeb5f1cbbe4259d6f35651dcc1b5c980925379c";

/// Real references: the seeds' nats HelmRelease (official image and the reloader),
/// cert-manager, Grafana, the Flux controllers, ingress-nginx with a digest, an external-dns
/// without a tag, nginx and alpine with tags YAML would read as numbers.
const ROUTABLE: [&str; 11] = [
    "nats:2.10.12-alpine",
    "natsio/nats-server-config-reloader:0.14.1",
    "quay.io/jetstack/cert-manager-controller:v1.14.4",
    "grafana/grafana:10.4.1",
    "ghcr.io/fluxcd/source-controller:v1.2.4",
    "ghcr.io/fluxcd/kustomize-controller:v1.2.2",
    INGRESS_NGINX,
    "registry.k8s.io/external-dns/external-dns",
    "docker.io/library/nginx:1.25",
    "alpine:3.10",
    "index.docker.io/library/busybox:1.36",
];

/// Tags a YAML reader takes for something else when written plain: `1e3` (a float in YAML
/// 1.2), `on` (a boolean in YAML 1.1, which Helm's go-yaml v2 and PyYAML read), `1_000` (an
/// integer in YAML 1.1). Valid OCI tags, on real repositories.
const TRAP_TAGS: [&str; 3] = [
    "quay.io/prometheus/busybox:1e3",
    "grafana/loki:on",
    "ghcr.io/fluxcd/flux-cli:1_000",
];

/// Not routable: gcr.io (ECR cannot cache it, seeds/001's HNC), an EKS add-on, ECR Public.
const LEFT: [&str; 3] = [
    "gcr.io/k8s-staging-multitenancy/hnc-manager:v1.1.0",
    "602401143452.dkr.ecr.eu-west-2.amazonaws.com/eks/coredns:v1.11.1-eksbuild.4",
    "public.ecr.aws/karpenter/controller:0.35.0",
];

fn all_refs() -> Vec<&'static str> {
    ROUTABLE
        .iter()
        .chain(&TRAP_TAGS)
        .chain(&LEFT)
        .copied()
        .collect()
}

/// `ptc map` with the seeds' rules, `extra` arguments and `refs`.
fn map(extra: &[&str], refs: &[&str]) -> Output {
    let mut args = vec!["map", "--registry", REGISTRY];
    for rule in &RULES {
        args.extend(["--rule", rule]);
    }
    args.extend(extra);
    args.extend(refs);
    ptc(&args)
}

/// The output of `--format format` for `refs` (exit 0: no invalid reference).
fn format(format: &str, refs: &[&str]) -> String {
    let out = map(&["--format", format], refs);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// `ptc map --output json`: reference → cached URI, for the references that map.
fn uris(refs: &[&str]) -> BTreeMap<String, String> {
    let out = map(&["--output", "json"], refs);
    let json: Json = serde_json::from_slice(&out.stdout).expect("ptc map --output json");
    json.as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            Some((
                m["reference"].as_str()?.to_owned(),
                m["uri"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

// ---------------------------------------------------------------- terraform-locals

/// The `locals` block's attributes evaluated by hcl-rs with `var.pull_through_cache_enabled`
/// = `enabled`: the `registry_*` locals first, then `images`, which reads them.
fn evaluate_locals(body: &hcl::Body, enabled: bool) -> BTreeMap<String, hcl::Value> {
    let locals = body
        .blocks()
        .find(|b| b.identifier() == "locals")
        .expect("a locals block");
    let mut ctx = Context::new();
    let mut var = hcl::Map::new();
    var.insert(
        "pull_through_cache_enabled".to_owned(),
        hcl::Value::Bool(enabled),
    );
    ctx.declare_var("var", hcl::Value::Object(var));
    let mut values = BTreeMap::new();
    for attr in locals.body().attributes().filter(|a| a.key() != "images") {
        let value = attr
            .expr()
            .evaluate(&ctx)
            .unwrap_or_else(|e| panic!("{}: {e}", attr.key()));
        values.insert(attr.key().to_owned(), value);
    }
    let local: hcl::Map<String, hcl::Value> = values.clone().into_iter().collect();
    ctx.declare_var("local", hcl::Value::Object(local));
    if let Some(images) = locals.body().attributes().find(|a| a.key() == "images") {
        values.insert(
            "images".to_owned(),
            images.expr().evaluate(&ctx).expect("images"),
        );
    }
    values
}

fn string_map(value: &hcl::Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .expect("an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_owned()))
        .collect()
}

#[test]
fn terraform_locals_switch_between_the_cache_and_the_upstream() {
    let refs = all_refs();
    let text = format("terraform-locals", &refs);
    let body: hcl::Body = hcl::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));

    let variable = body
        .blocks()
        .find(|b| b.identifier() == "variable")
        .expect("a variable block");
    assert_eq!(
        variable.labels()[0].as_str(),
        "pull_through_cache_enabled",
        "{text}"
    );
    let attr = |name: &str| {
        variable
            .body()
            .attributes()
            .find(|a| a.key() == name)
            .map(|a| a.expr().to_string())
    };
    assert_eq!(attr("type").as_deref(), Some("bool"), "{text}");
    assert_eq!(attr("default").as_deref(), Some("false"), "{text}");

    let on = evaluate_locals(&body, true);
    let off = evaluate_locals(&body, false);
    let names: Vec<&str> = on.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "images",
            "registry_docker_hub",
            "registry_ghcr",
            "registry_k8s",
            "registry_quay"
        ],
        "{text}"
    );
    for (local, prefix, upstream) in [
        ("registry_docker_hub", "docker-hub", "docker.io"),
        ("registry_ghcr", "ghcr", "ghcr.io"),
        ("registry_k8s", "k8s", "registry.k8s.io"),
        ("registry_quay", "quay", "quay.io"),
    ] {
        assert_eq!(
            on[local].as_str(),
            Some(format!("{REGISTRY}/{prefix}").as_str())
        );
        assert_eq!(off[local].as_str(), Some(upstream), "a straight reversion");
    }

    // With the switch on, each image is ptc map's cached URI; off, the upstream image.
    let expected = uris(&refs);
    let images_on = string_map(&on["images"]);
    let images_off = string_map(&off["images"]);
    let routable: BTreeSet<&str> = ROUTABLE.iter().chain(&TRAP_TAGS).copied().collect();
    assert_eq!(
        images_on
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        routable,
        "{text}"
    );
    for reference in &routable {
        assert_eq!(images_on[*reference], expected[*reference], "{reference}");
        let upstream = ImageReference::parse(reference).unwrap().to_string();
        assert_eq!(images_off[*reference], upstream, "{reference}");
    }
    // Docker Hub's official images: library/ in the cache and upstream alike.
    assert_eq!(
        images_on["nats:2.10.12-alpine"],
        format!("{REGISTRY}/docker-hub/library/nats:2.10.12-alpine")
    );
    assert_eq!(
        images_off["nats:2.10.12-alpine"],
        "docker.io/library/nats:2.10.12-alpine"
    );
    assert!(
        text.contains("\"${local.registry_docker_hub}/library/nginx:1.25\""),
        "{text}"
    );
    // Left upstream, each commented with its reason.
    for (reference, reason) in LEFT.iter().zip(["unsupported", "aws-owned", "aws-owned"]) {
        let line = text
            .lines()
            .find(|l| l.contains(reference))
            .unwrap_or_else(|| panic!("{reference} missing\n{text}"));
        assert!(
            line.trim_start().starts_with('#') && line.contains(reason),
            "{line}"
        );
    }
}

#[test]
fn terraform_locals_without_references_have_no_images_map() {
    let text = format("terraform-locals", &[]);
    let body: hcl::Body = hcl::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let on = evaluate_locals(&body, true);
    assert_eq!(on.len(), 4, "{text}");
    assert!(!on.contains_key("images"), "{text}");
}

// ---------------------------------------------------------------- YAML formats

/// `text` read by PyYAML (YAML 1.1), dumped and read again: both reads as JSON.
fn pyyaml(text: &str) -> (Json, Json) {
    let script = "import json, sys, yaml\n\
        first = yaml.safe_load(sys.stdin.read())\n\
        second = yaml.safe_load(yaml.safe_dump(first))\n\
        print(json.dumps([first, second]))\n";
    let mut child = Command::new(ptc_tests::repo_root().join(".venv/bin/python"))
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the local stack's Python (.venv, made by scripts/setup.sh) with PyYAML");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "PyYAML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let both: Vec<Json> = serde_json::from_slice(&out.stdout).unwrap();
    (both[0].clone(), both[1].clone())
}

/// `text` read by serde_norway and by PyYAML, each round-tripped (read, write, read: equal),
/// the two reads equal. Returns the value.
fn parse_yaml(text: &str) -> Json {
    let value: Json = serde_norway::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let again: Json = serde_norway::from_str(&serde_norway::to_string(&value).unwrap()).unwrap();
    assert_eq!(value, again, "serde_norway round trip");
    let (py, py_again) = pyyaml(text);
    assert_eq!(py, py_again, "PyYAML round trip");
    assert_eq!(value, py, "serde_norway and PyYAML read the same\n{text}");
    value
}

#[test]
fn helm_values_recompose_into_the_cached_uri() {
    let refs = all_refs();
    let text = format("helm-values", &refs);
    let values = parse_yaml(&text);
    let images = values["images"].as_object().expect("images: a map");
    let expected = uris(&refs);
    let routable: BTreeSet<&str> = ROUTABLE.iter().chain(&TRAP_TAGS).copied().collect();
    assert_eq!(
        images.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        routable,
        "{text}"
    );
    for (reference, v) in images {
        for key in ["registry", "repository", "tag", "digest"] {
            assert!(
                v.get(key).is_none_or(Json::is_string),
                "{reference}: {key} is not a string: {v}"
            );
        }
        // registry/repository[:tag][@digest], as the charts compose it.
        let mut composed = format!(
            "{}/{}",
            v["registry"].as_str().unwrap(),
            v["repository"].as_str().unwrap()
        );
        if let Some(tag) = v.get("tag") {
            composed += &format!(":{}", tag.as_str().unwrap());
        }
        if let Some(digest) = v.get("digest") {
            composed += &format!("@{}", digest.as_str().unwrap());
        }
        assert_eq!(composed, expected[reference], "{reference}");
        // registry is the rule's location, the same for every image of the rule.
        let prefix = v["registry"]
            .as_str()
            .unwrap()
            .strip_prefix(&format!("{REGISTRY}/"))
            .unwrap();
        assert!(
            ["docker-hub", "quay", "k8s", "ghcr"].contains(&prefix),
            "{v}"
        );
    }
    // The seeds' nats HelmRelease: library/ in the repository for the official image.
    assert_eq!(
        images["nats:2.10.12-alpine"]["repository"], "library/nats",
        "{text}"
    );
    assert_eq!(
        images["natsio/nats-server-config-reloader:0.14.1"]["repository"],
        "natsio/nats-server-config-reloader"
    );
    // Tags that look like numbers or booleans stay strings, as written.
    for (reference, tag) in [
        ("docker.io/library/nginx:1.25", "1.25"),
        ("alpine:3.10", "3.10"),
        ("quay.io/prometheus/busybox:1e3", "1e3"),
        ("grafana/loki:on", "on"),
        ("ghcr.io/fluxcd/flux-cli:1_000", "1_000"),
    ] {
        assert_eq!(images[reference]["tag"], tag, "{text}");
    }
    assert_eq!(
        images[INGRESS_NGINX]["digest"],
        INGRESS_NGINX.split_once('@').unwrap().1
    );
    for reference in LEFT {
        assert!(
            text.lines()
                .any(|l| l.starts_with("# ") && l.contains(reference)),
            "{reference} not commented\n{text}"
        );
    }
}

// ---------------------------------------------------------------- kustomize-images

/// kustomize's `IsImageMatched`
/// (<https://github.com/kubernetes-sigs/kustomize/blob/master/api/internal/image/image.go>):
/// `regexp.Compile("^" + t + "(:[a-zA-Z0-9_.{}-]*)?(@[a-zA-Z0-9]+([.+_-][a-zA-Z0-9]+)*:[a-zA-Z0-9_.{}-]*)?$")`.
/// The name `t` is interpolated as a regular expression; image names hold no metacharacter
/// but `.`, which matches any character, so `t` matches exactly `t.len()` characters.
fn kustomize_is_image_matched(s: &str, t: &str) -> bool {
    assert!(
        t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"./:_-".contains(&b)),
        "a name with regular-expression characters: {t}"
    );
    if s.len() < t.len() {
        return false;
    }
    let (head, rest) = s.split_at(t.len());
    let head_ok = head
        .bytes()
        .zip(t.bytes())
        .all(|(h, p)| p == b'.' || h == p);
    if !head_ok {
        return false;
    }
    let tag_char = |c: char| c.is_ascii_alphanumeric() || "_.{}-".contains(c);
    let mut rest = rest;
    if let Some(after) = rest.strip_prefix(':') {
        let end = after.find(|c: char| !tag_char(c)).unwrap_or(after.len());
        rest = &after[end..];
    }
    if let Some(after) = rest.strip_prefix('@') {
        // [a-zA-Z0-9]+([.+_-][a-zA-Z0-9]+)*:[a-zA-Z0-9_.{}-]*
        let Some((algorithm, encoded)) = after.split_once(':') else {
            return false;
        };
        let algorithm_ok = algorithm
            .split(['.', '+', '_', '-'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
        return algorithm_ok && encoded.chars().all(tag_char);
    }
    rest.is_empty()
}

/// kustomize's `Split` (same file): name, tag, digest, the search for `:` and `@` starting at
/// the first `/` when there is one.
fn kustomize_split(image: &str) -> (String, String, String) {
    let slash = image.find('/').filter(|&i| i > 0).unwrap_or(0);
    let search = &image[slash..];
    let id = search.find('@');
    let ic = search.find(':');
    match (ic, id) {
        (None, None) => (image.to_owned(), String::new(), String::new()),
        // Tag and digest: the ':' comes first.
        (Some(ic), Some(id)) if ic < id => (
            image[..slash + ic].to_owned(),
            image[slash + ic + 1..slash + id].to_owned(),
            image[slash + id + 1..].to_owned(),
        ),
        // Digest only: no ':', or the first ':' is the digest's.
        (_, Some(id)) => (
            image[..slash + id].to_owned(),
            String::new(),
            image[slash + id + 1..].to_owned(),
        ),
        (Some(ic), None) => (
            image[..slash + ic].to_owned(),
            image[slash + ic + 1..].to_owned(),
            String::new(),
        ),
    }
}

/// kustomize's images transformer for entries with `name` and `newName` only: one
/// `ImageTagTransformer` per entry, applied in order
/// (<https://github.com/kubernetes-sigs/kustomize/blob/master/api/internal/target/kusttarget_configplugin.go>),
/// each `imageTagUpdater.SetImageValue`
/// (<https://github.com/kubernetes-sigs/kustomize/blob/master/api/filters/imagetag/updater.go>):
/// a matching value gets the new name, its own tag and digest kept. `None` when no entry
/// matched.
fn kustomize_rewrite(value: &str, entries: &[(String, String)]) -> Option<String> {
    let mut value = value.to_owned();
    let mut matched = false;
    for (name, new_name) in entries {
        if !kustomize_is_image_matched(&value, name) {
            continue;
        }
        matched = true;
        let (_, tag, digest) = kustomize_split(&value);
        value = new_name.clone();
        if !tag.is_empty() {
            value += &format!(":{tag}");
        }
        if !digest.is_empty() {
            value += &format!("@{digest}");
        }
    }
    matched.then_some(value)
}

fn kustomize_entries(text: &str) -> Vec<(String, String)> {
    let value = parse_yaml(text);
    value["images"]
        .as_array()
        .expect("images: a list")
        .iter()
        .map(|e| {
            let keys: BTreeSet<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                BTreeSet::from(["name", "newName"]),
                "no newTag, no digest"
            );
            (
                e["name"].as_str().unwrap().to_owned(),
                e["newName"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn kustomize_entries_rewrite_each_reference_to_the_cached_uri() {
    let refs = all_refs();
    let text = format("kustomize-images", &refs);
    let entries = kustomize_entries(&text);
    let expected = uris(&refs);
    for reference in ROUTABLE.iter().chain(&TRAP_TAGS) {
        let rewritten = kustomize_rewrite(reference, &entries)
            .unwrap_or_else(|| panic!("no entry matches {reference}\n{text}"));
        // A reference with neither tag nor digest keeps none: the runtime pulls `latest`,
        // which ptc map's URI spells out.
        let uri = &expected[*reference];
        let expected = if reference.contains('@') || written_tag(reference).is_some() {
            uri.clone()
        } else {
            uri.strip_suffix(":latest").unwrap().to_owned()
        };
        assert_eq!(rewritten, expected, "{reference}");
    }
    for reference in LEFT {
        assert!(
            kustomize_rewrite(reference, &entries).is_none(),
            "{reference}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("# ") && l.contains(reference)),
            "{reference} not commented\n{text}"
        );
    }
}

/// The tag as written, if any (a `:` after the last `/`).
fn written_tag(reference: &str) -> Option<&str> {
    let name = reference.split('@').next().unwrap();
    let (head, tag) = name.rsplit_once(':')?;
    (!tag.contains('/') && !head.is_empty()).then_some(tag)
}

#[test]
fn kustomize_entries_match_every_docker_hub_spelling_of_the_image() {
    let text = format(
        "kustomize-images",
        &["nats:2.10.12-alpine", "grafana/grafana:10.4.1"],
    );
    let entries = kustomize_entries(&text);
    let nats = format!("{REGISTRY}/docker-hub/library/nats:2.10.12-alpine");
    for spelling in [
        "nats:2.10.12-alpine",
        "docker.io/nats:2.10.12-alpine",
        "docker.io/library/nats:2.10.12-alpine",
    ] {
        assert_eq!(
            kustomize_rewrite(spelling, &entries).as_deref(),
            Some(nats.as_str()),
            "{spelling}\n{text}"
        );
    }
    let grafana = format!("{REGISTRY}/docker-hub/grafana/grafana:10.4.1");
    for spelling in ["grafana/grafana:10.4.1", "docker.io/grafana/grafana:10.4.1"] {
        assert_eq!(
            kustomize_rewrite(spelling, &entries).as_deref(),
            Some(grafana.as_str()),
            "{spelling}"
        );
    }
    // kustomize does not normalise: another image is not matched by a name that prefixes it.
    assert_eq!(kustomize_rewrite("natsio/nats-box:0.14.2", &entries), None);
    assert_eq!(
        kustomize_rewrite("grafana/grafana-oss:10.4.1", &entries),
        None
    );
}

#[test]
fn the_kustomize_matcher_port_agrees_with_kustomizes_own_cases() {
    // TestIsImageMatched and TestSplit of kustomize's api/internal/image/image_test.go
    // (commit 12f9e639), but the invalid-regexp case, which image names cannot be.
    for (value, name, matched) in [
        ("nginx", "nginx", true),
        ("nginx:12345", "nginx", true),
        ("nginx@sha256:xyz", "nginx", true),
        ("nginx:12345@sha256:xyz", "nginx", true),
        ("nginx@sha512:xyz", "nginx", true),
        ("nginx:12345@sha512:xyz", "nginx", true),
        (
            "nginx@multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
            "nginx",
            true,
        ),
        ("apache:12345", "nginx", false),
        // and what follows from the pattern: no normalisation, no prefix match.
        ("docker.io/library/nginx", "nginx", false),
        ("nginx-unprivileged:1.25", "nginx", false),
    ] {
        assert_eq!(
            kustomize_is_image_matched(value, name),
            matched,
            "{value} {name}"
        );
    }
    let split = |n: &str, t: &str, d: &str| (n.to_owned(), t.to_owned(), d.to_owned());
    for (value, expected) in [
        ("nginx", split("nginx", "", "")),
        ("nginx:1.2.3", split("nginx", "1.2.3", "")),
        ("nginx@sha256:12345", split("nginx", "", "sha256:12345")),
        (
            "nginx:1.2.3@sha256:12345",
            split("nginx", "1.2.3", "sha256:12345"),
        ),
        (
            "docker.io/nginx:1.2.3",
            split("docker.io/nginx", "1.2.3", ""),
        ),
        (
            "foo.com:443/nginx:1.2.3",
            split("foo.com:443/nginx", "1.2.3", ""),
        ),
        (
            "foo.com:443/nginx:1.2.3@sha256:12345",
            split("foo.com:443/nginx", "1.2.3", "sha256:12345"),
        ),
    ] {
        assert_eq!(kustomize_split(value), expected, "{value}");
    }
}

/// A review's attack: a reference holding a NEL (U+0085), a line break for PyYAML, libyaml and
/// go-yaml, tried to add an entry after the `#` of its comment. The outputs read back with
/// only the routable entry.
#[test]
fn a_hostile_reference_cannot_add_entries_through_its_comment() {
    let helm = format_any(
        "helm-values",
        &[
            "nginx:1.25",
            "x\u{85}images: {pwned: {registry: evil.example, repository: x, tag: \"1\"}} #",
        ],
    );
    let value = parse_yaml(&helm);
    let keys: Vec<&String> = value["images"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["nginx:1.25"], "{helm}");
    let kustomize = format_any(
        "kustomize-images",
        &[
            "nginx:1.25",
            "x\u{85}  - name: nginx\u{85}    newName: evil.example/nginx #",
        ],
    );
    let value = parse_yaml(&kustomize);
    assert!(
        value["images"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e["newName"].as_str().unwrap().starts_with("evil.example")),
        "{kustomize}"
    );
}

/// The output of `--format format` for `refs`, whatever the exit code (invalid references
/// exit 1).
fn format_any(format: &str, refs: &[&str]) -> String {
    String::from_utf8(map(&["--format", format], refs).stdout).unwrap()
}

#[test]
fn yaml_formats_with_nothing_routable_are_valid_and_tell_why() {
    let helm = format("helm-values", &LEFT);
    assert_eq!(parse_yaml(&helm)["images"], serde_json::json!({}), "{helm}");
    let kustomize = format("kustomize-images", &LEFT);
    assert_eq!(
        parse_yaml(&kustomize)["images"],
        serde_json::json!([]),
        "{kustomize}"
    );
    for text in [&helm, &kustomize] {
        for reference in LEFT {
            assert!(
                text.lines()
                    .any(|l| l.starts_with("# ") && l.contains(reference)),
                "{reference} not commented\n{text}"
            );
        }
    }
}
