//! Adoption end to end on the local stack: `ptc scan` over the example cluster's rendered
//! manifest and Dockerfile, its watch list piped into `ptc prewarm --image -`, which warms
//! exactly the routable set (and nothing the scan classed otherwise).

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use ptc_tests::{Stack, repo_root};

/// The routable images of examples/cluster, as a watch list holds them (normalised, once
/// each). Counted by hand from the files: busybox is written twice (`busybox` and
/// `docker.io/library/busybox:latest`), nats twice (the StatefulSet and the Dockerfile's ARG).
const ROUTABLE: [&str; 9] = [
    "docker.io/library/busybox:latest",
    "quay.io/jetstack/cert-manager-controller:v1.14.4",
    "docker.io/library/nats:2.10.12-alpine",
    "quay.io/prometheus/prometheus:v2.51.0",
    "docker.io/grafana/grafana:10.4.0",
    "ghcr.io/fluxcd/source-controller:v1.2.4",
    "registry.k8s.io/pause:3.9",
    "registry.k8s.io/coredns/coredns:v1.11.1",
    "ghcr.io/external-secrets/external-secrets:v0.9.13",
];

fn ptc(stack: &Stack) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ptc"));
    cmd.env_remove("PTC_CONFIG_FILE")
        .env_remove("PTC_RULES")
        .env_remove("PTC_LOG")
        .env_remove("PTC_WATCH_LIST")
        .env_remove("PTC_WATCH_LIST_URL")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PTC_DISCOVERY_DAYS", "7")
        .envs(stack.env());
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_piped_into_prewarm_warms_exactly_the_routable_set() {
    let stack = Stack::start();
    // The seeds' four rules, the registry's (no --rule: scan reads them from ECR).
    stack.create_rule("quay", "quay.io", None).await;
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    stack.create_docker_hub_rule().await;
    let ghcr = stack
        .upstream_secret("ecr-pullthroughcache/ghcr", "ghcr.io")
        .await;
    stack.create_rule("ghcr", "ghcr.io", Some(&ghcr)).await;
    let examples = repo_root().join("examples/cluster");

    let stack_ref = &stack;
    let (list, report) = tokio::task::block_in_place(|| {
        let list = ptc(stack_ref)
            .args(["scan", "--output", "watch-list"])
            .arg(&examples)
            .output()
            .expect("ptc scan");
        let mut scan = ptc(stack_ref)
            .args(["scan", "--output", "watch-list"])
            .arg(&examples)
            .stdout(Stdio::piped())
            .spawn()
            .expect("ptc scan");
        let prewarm = ptc(stack_ref)
            .args(["prewarm", "--output", "json", "--no-state", "--image", "-"])
            // The settings' list (and discovery) stay out of an --image run: etcd is not warmed.
            .env("PTC_WATCH_LIST", "quay.io/coreos/etcd:v3.5.13")
            .stdin(scan.stdout.take().expect("scan's stdout"))
            .output()
            .expect("ptc prewarm");
        // The scan lists; its exit code is not the pipe's concern here.
        let _ = scan.wait();
        (list, prewarm)
    });
    let text = String::from_utf8_lossy(&list.stdout);
    let listed: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(
        listed,
        ROUTABLE.into_iter().collect(),
        "{text}{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert_eq!(
        text.lines().filter(|l| !l.starts_with('#')).count(),
        9,
        "each once: {text}"
    );

    let body: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap_or_else(|e| {
        panic!(
            "prewarm JSON: {e}: {}{}",
            String::from_utf8_lossy(&report.stdout),
            String::from_utf8_lossy(&report.stderr)
        )
    });
    assert_eq!(report.status.code(), Some(0), "{body:#}");
    let images = body["images"].as_array().expect("images");
    let warmed: BTreeSet<String> = images
        .iter()
        .map(|i| {
            assert_eq!(i["outcome"], "warmed", "{i:#}");
            ptc_core::ImageReference::parse(i["reference"].as_str().unwrap())
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        warmed,
        ROUTABLE.iter().map(|s| s.to_string()).collect(),
        "exactly the routable set, not the settings' list: {body:#}"
    );
    // The cache holds those repositories and no other: nothing of the AWS-owned or
    // unsupported images was tried.
    let repos = stack
        .ecr()
        .await
        .describe_repositories()
        .await
        .expect("repositories");
    let names: BTreeSet<String> = repos.into_iter().map(|r| r.name).collect();
    let expected: BTreeSet<String> = [
        "docker-hub/library/busybox",
        "quay/jetstack/cert-manager-controller",
        "docker-hub/library/nats",
        "quay/prometheus/prometheus",
        "docker-hub/grafana/grafana",
        "ghcr/fluxcd/source-controller",
        "k8s/pause",
        "k8s/coredns/coredns",
        "ghcr/external-secrets/external-secrets",
    ]
    .map(String::from)
    .into_iter()
    .collect();
    assert_eq!(names, expected);
}
