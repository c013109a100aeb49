//! `ptc map` as a user runs it: the real binary, its output and exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const REGISTRY: &str = "111122223333.dkr.ecr.eu-west-1.amazonaws.com";

fn ptc(args: &[&str], stdin: Option<&str>, env: &[(String, String)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ptc"))
        .args(args)
        .env_remove("PTC_CONFIG_FILE")
        .env_remove("PTC_RULES")
        .env_remove("PTC_LOG")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ptc");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("ptc output")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn maps_with_rules_from_the_command_line_and_fails_on_bad_references() {
    let out = ptc(
        &[
            "map",
            "--rule",
            "docker-hub=registry-1.docker.io",
            "--rule",
            "quay=quay.io",
            "--registry",
            REGISTRY,
            "nginx:1.25",
            "quay.io/prometheus/prometheus:v2.51.0",
            "gcr.io/distroless/static",
        ],
        None,
        &[],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("{REGISTRY}/docker-hub/library/nginx:1.25")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{REGISTRY}/quay/prometheus/prometheus:v2.51.0")),
        "{text}"
    );
    assert!(
        text.contains("gcr.io") && text.contains("not supported"),
        "{text}"
    );
}

#[test]
fn json_output_has_one_object_per_reference() {
    let out = ptc(
        &[
            "map",
            "--output",
            "json",
            "--rule",
            "k8s=registry.k8s.io",
            "--registry",
            REGISTRY,
            "registry.k8s.io/pause:3.9",
            "Bad",
        ],
        None,
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["reference"], "registry.k8s.io/pause:3.9");
    assert_eq!(rows[0]["repository"], "k8s/pause");
    assert_eq!(rows[0]["tag"], "3.9");
    assert_eq!(rows[0]["digest"], serde_json::Value::Null);
    assert_eq!(rows[0]["uri"], format!("{REGISTRY}/k8s/pause:3.9"));
    assert_eq!(rows[0]["error"], serde_json::Value::Null);
    assert!(rows[1]["error"].as_str().unwrap().contains("lowercase"));
    assert_eq!(rows[1]["uri"], serde_json::Value::Null);
}

#[test]
fn all_good_exits_zero_and_reads_stdin_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ptc.toml");
    std::fs::write(
        &config,
        "[[rules]]\nprefix = \"ghcr\"\nupstream_url = \"ghcr.io\"\ncredential = true\n",
    )
    .unwrap();
    let out = ptc(
        &[
            "map",
            "--config",
            config.to_str().unwrap(),
            "--registry",
            REGISTRY,
            "-",
        ],
        Some(
            "# watch list\nghcr.io/fluxcd/source-controller:v1.2.4\n\nghcr.io/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
        ),
        &[],
    );
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("{REGISTRY}/ghcr/fluxcd/source-controller:v1.2.4")));
    assert!(text.contains(&format!("{REGISTRY}/ghcr/a/b@sha256:0123")));
    assert_eq!(text.lines().count(), 3, "header and two rows: {text}");
}

#[test]
fn bad_rules_and_settings_stop_with_a_message_naming_them() {
    let out = ptc(
        &[
            "map",
            "--rule",
            "quay:quay.io",
            "--registry",
            REGISTRY,
            "nginx",
        ],
        None,
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rule quay:quay.io"));
    let out = ptc(
        &["map", "--rule", "quay=quay.io", "nginx"],
        None,
        &[("PTC_CONCURRENCY".into(), "lots".into())],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PTC_CONCURRENCY"));
    // A log filter that cannot be read is a bad setting too, not a silent `warn`.
    let out = ptc(
        &[
            "map",
            "--rule",
            "quay=quay.io",
            "--registry",
            REGISTRY,
            "nginx",
        ],
        None,
        &[("PTC_LOG".into(), "=[bad".into())],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("setting PTC_LOG: invalid value \"=[bad\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout(&out), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_rules_it_reads_the_registry() {
    let stack = ptc_tests::Stack::shared();
    stack.create_rule("quay", "quay.io", None).await;
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    let env = stack.env();
    let out = tokio::task::spawn_blocking(move || {
        ptc(
            &[
                "map",
                "--output",
                "json",
                "quay.io/coreos/etcd:v3.5.13",
                "registry.k8s.io/pause",
                "nginx",
            ],
            None,
            &env,
        )
    })
    .await
    .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let host = format!(
        "{}.dkr.ecr.{}.amazonaws.com",
        stack.info.account, stack.info.region
    );
    assert_eq!(rows[0]["uri"], format!("{host}/quay/coreos/etcd:v3.5.13"));
    assert_eq!(rows[1]["uri"], format!("{host}/k8s/pause:latest"));
    assert_eq!(
        rows[2]["error"],
        "no pull-through cache rule for registry docker.io"
    );
    assert_eq!(out.status.code(), Some(1));
    // Two AWS calls were made; without -v the SDK's own logs stay out of the terminal.
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// A setting whose bytes are not UTF-8 stops start-up naming it, where it was read as unset
/// (an empty watch list, no pull grant wanted) and the run went on.
#[test]
fn a_setting_that_is_not_text_stops_start_up_naming_it() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt as _;
    for name in ["PTC_WATCH_LIST", "PTC_PULL_PRINCIPALS", "PTC_REGISTRY_HOST"] {
        let out = Command::new(env!("CARGO_BIN_EXE_ptc"))
            .args(["map", "--rule", "quay=quay.io", "quay.io/a/b:1"])
            .env_remove("PTC_CONFIG_FILE")
            .env_remove("PTC_RULES")
            .env("PTC_REGISTRY_HOST", REGISTRY)
            .env(name, OsStr::from_bytes(b"nginx:1.25,\xff\xfe"))
            .output()
            .expect("run ptc");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains("not UTF-8"),
            "{name}: {stderr}"
        );
    }
}

/// A rule in PTC_RULES for an upstream this version does not know (AWS adds upstreams before
/// the code knows them) starts and routes: it is not refused at start-up.
#[test]
fn a_rule_for_an_upstream_this_version_does_not_know_is_not_refused() {
    let out = ptc(
        &[
            "map",
            "--registry",
            REGISTRY,
            "registry.future-upstream.example/team/app:1",
            "cgr.dev/chainguard/static:latest",
        ],
        None,
        &[(
            "PTC_RULES".into(),
            "future=registry.future-upstream.example+credential,chainguard=cgr.dev+credential"
                .into(),
        )],
    );
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("{REGISTRY}/future/team/app:1")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{REGISTRY}/chainguard/chainguard/static:latest")),
        "{text}"
    );
}
