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

/// A laptop with no AWS at all: no credentials, no config, no IMDS worth asking. The
/// environment `ptc` sees is emptied but for PATH, a HOME with nothing in it and `extra_env`.
fn laptop(args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    laptop_with_stdin(args, extra_env, None)
}

/// [`laptop`] with `input` on stdin (closed when `None`).
fn laptop_with_stdin(args: &[&str], extra_env: &[(&str, &str)], input: Option<&[u8]>) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ptc"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .envs(extra_env.iter().copied())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ptc");
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("ptc output")
}

/// The report: `ptc map --rule quay=quay.io nginx` on a laptop without AWS printed four
/// `aws_config::imds` WARN lines and failed finding the registry host. Now: one line that says
/// what was needed and which flags do without; the SDK's lines only with -v.
#[test]
fn without_aws_a_command_that_needs_it_says_so_in_one_line() {
    let out = laptop(&["map", "--rule", "quay=quay.io", "nginx"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("ptc: no AWS credentials for the registry host (GetAuthorizationToken)")
            && stderr.contains("--registry HOST, or --account ID with --region"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("aws_config") && !stderr.contains("WARN"),
        "{stderr}"
    );
    assert_eq!(stdout(&out), "");

    // No rule anywhere either: the rules are what is missing first, named with their flag.
    let out = laptop(
        &[
            "map",
            "--account",
            "123456789012",
            "--region",
            "eu-west-2",
            "nginx",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("the registry's rules (DescribePullThroughCacheRules)")
            && stderr.contains("--rule PREFIX=UPSTREAM_URL"),
        "{stderr}"
    );

    // -v shows what the SDK did.
    let out = laptop(&["map", "-v", "--rule", "quay=quay.io", "nginx"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.lines().count() > 1,
        "-v logs more than the error: {stderr}"
    );
}

/// Every routing input from the flags: no AWS call, no SDK output, the same URIs.
#[test]
fn rules_and_account_with_region_need_no_aws() {
    for (args, env) in [
        (
            vec![
                "map",
                "--rule",
                "docker-hub=registry-1.docker.io",
                "--account",
                "123456789012",
                "--region",
                "eu-west-2",
                "nginx:1.25",
            ],
            vec![],
        ),
        (
            vec![
                "map",
                "--rule",
                "docker-hub=registry-1.docker.io",
                "--account",
                "123456789012",
                "nginx:1.25",
            ],
            vec![("AWS_REGION", "eu-west-2")],
        ),
        (
            vec![
                "map",
                "--rule",
                "docker-hub=registry-1.docker.io",
                "nginx:1.25",
            ],
            vec![
                ("PTC_ACCOUNT_ID", "123456789012"),
                ("PTC_REGION", "eu-west-2"),
            ],
        ),
        (
            vec![
                "map",
                "--rule",
                "docker-hub=registry-1.docker.io",
                "--registry",
                "123456789012.dkr.ecr.eu-west-2.amazonaws.com",
                "nginx:1.25",
            ],
            vec![],
        ),
    ] {
        let out = laptop(&args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
        assert!(
            stdout(&out).contains(
                "123456789012.dkr.ecr.eu-west-2.amazonaws.com/docker-hub/library/nginx:1.25"
            ),
            "{args:?}: {}",
            stdout(&out)
        );
    }
    // China Regions are on amazonaws.com.cn.
    let out = laptop(
        &[
            "map",
            "--rule",
            "quay=quay.io",
            "--account",
            "123456789012",
            "--region",
            "cn-north-1",
            "quay.io/a/b:1",
        ],
        &[],
    );
    assert!(
        stdout(&out).contains("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/quay/a/b:1"),
        "{}",
        stdout(&out)
    );
    // What cannot give a host is named in one line.
    for (args, says) in [
        (
            vec![
                "map",
                "--rule",
                "quay=quay.io",
                "--account",
                "1234",
                "--region",
                "eu-west-2",
                "x",
            ],
            "--account: account \"1234\" is not a 12-digit account ID",
        ),
        (
            vec![
                "map",
                "--rule",
                "quay=quay.io",
                "--account",
                "123456789012",
                "x",
            ],
            "no Region for the registry host",
        ),
        (
            vec![
                "map",
                "--rule",
                "quay=quay.io",
                "--registry",
                "https://x.example/a b",
                "x",
            ],
            "--registry",
        ),
    ] {
        let out = laptop(&args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// `--output watch-list`: the routable references, normalised, each once; what is not routable
/// is left out (and fails the command, as in the table).
#[test]
fn watch_list_output_is_the_routable_set() {
    let out = laptop(
        &[
            "map",
            "--output",
            "watch-list",
            "--rule",
            "docker-hub=registry-1.docker.io",
            "--rule",
            "quay=quay.io",
            "--registry",
            REGISTRY,
            "nginx:1.25",
            "docker.io/library/nginx:1.25",
            "quay.io/a/b",
            "gcr.io/x/y:1",
            "111122223333.dkr.ecr.eu-west-1.amazonaws.com/quay/a/b:2",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<String> = stdout(&out)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        ["docker.io/library/nginx:1.25", "quay.io/a/b:latest"]
    );
}

/// A `--rule` prefix given twice is refused, as in PTC_RULES: the second would route
/// ghcr.io's images into quay's repositories (a new user's report).
#[test]
fn a_prefix_given_twice_is_refused() {
    let out = laptop(
        &[
            "map",
            "--rule",
            "quay=quay.io",
            "--rule",
            "quay=ghcr.io",
            "--registry",
            REGISTRY,
            "ghcr.io/a/b",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--rule quay=ghcr.io: prefix quay listed twice"),
        "{stderr}"
    );
    assert_eq!(stdout(&out), "");
}

/// `--out-dir` never replaces a file someone else wrote: a differing file stops the run
/// before anything is written; the same content is left as it is; `--force` replaces.
#[test]
fn out_dir_never_replaces_what_someone_else_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "map",
        "--rule",
        "docker-hub=registry-1.docker.io",
        "--rule",
        "quay=quay.io",
        "--registry",
        REGISTRY,
    ];
    let run = |format: &str, extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend([
            "--format",
            format,
            "--out-dir",
            dir.path().to_str().unwrap(),
        ]);
        args.extend(extra);
        laptop(&args, &[])
    };
    // The system's own registries.conf is beside the drop-in, never replaced.
    std::fs::write(
        dir.path().join("registries.conf"),
        "unqualified-search-registries = [\"docker.io\"]\n",
    )
    .unwrap();
    let first = run("registries-conf", &[]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let drop_in = dir
        .path()
        .join("registries.conf.d/50-ecr-pull-through-cache.conf");
    assert!(
        std::fs::read_to_string(&drop_in)
            .unwrap()
            .contains("docker-hub")
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("registries.conf")).unwrap(),
        "unqualified-search-registries = [\"docker.io\"]\n"
    );
    let again = run("registries-conf", &[]);
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stderr).contains("unchanged"));

    // A hosts.toml someone wrote for another mirror: refused, and nothing at all written.
    let theirs = dir.path().join("certs.d/docker.io/hosts.toml");
    std::fs::create_dir_all(theirs.parent().unwrap()).unwrap();
    std::fs::write(&theirs, "server = \"https://mirror.example\"\n").unwrap();
    let refused = run("containerd-hosts", &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("certs.d/docker.io/hosts.toml: exists with other content, not replaced"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&theirs).unwrap(),
        "server = \"https://mirror.example\"\n"
    );
    assert!(
        !dir.path().join("certs.d/quay.io/hosts.toml").exists(),
        "nothing written"
    );
    let forced = run("containerd-hosts", &["--force"]);
    assert_eq!(
        forced.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert!(
        std::fs::read_to_string(&theirs)
            .unwrap()
            .contains(&format!("https://{REGISTRY}/v2/docker-hub"))
    );
}

/// What a new user met: prewarm needs AWS and says so in one line; `-` with an empty stdin;
/// `--format` with `--output json`; a `:443` registry host; the profile's Region.
#[test]
fn small_things_a_new_user_met() {
    let out = laptop_with_stdin(
        &["prewarm", "--image", "-"],
        &[("AWS_REGION", "eu-west-2")],
        Some(b"nginx:1.25\n"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("ptc: no AWS credentials for prewarm"),
        "{stderr}"
    );

    let out = ptc(
        &["map", "--rule", "quay=quay.io", "--registry", REGISTRY, "-"],
        Some(""),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-: stdin held no reference"));

    let out = laptop(
        &[
            "map",
            "--rule",
            "quay=quay.io",
            "--registry",
            REGISTRY,
            "--output",
            "json",
            "--format",
            "kyverno",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--output json or watch-list cannot go with it")
    );

    // `host:443` is `host`: the cache's own URI is already cached, as references read it.
    let out = laptop(
        &[
            "map",
            "--output",
            "json",
            "--rule",
            "quay=quay.io",
            "--registry",
            &format!("{REGISTRY}:443"),
            &format!("{REGISTRY}/quay/a/b:1"),
        ],
        &[],
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["class"], "already-cached", "{rows}");

    // The Region of the profile (~/.aws/config) gives the host with --account, no credentials.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[default]\nregion = eu-west-2\n\n[profile dev]\nregion = us-east-2\n",
    )
    .unwrap();
    for (profile, region) in [(None, "eu-west-2"), (Some("dev"), "us-east-2")] {
        let mut args = vec![
            "map",
            "--rule",
            "quay=quay.io",
            "--account",
            "123456789012",
            "quay.io/a/b:1",
        ];
        if let Some(p) = profile {
            args.extend(["--profile", p]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_ptc"))
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{profile:?}: {stderr}");
        assert!(
            stdout(&out).contains(&format!(
                "123456789012.dkr.ecr.{region}.amazonaws.com/quay/a/b:1"
            )),
            "{profile:?}: {}",
            stdout(&out)
        );
    }
}

/// `ptc map --format containerd-hosts --out-dir` for Docker Hub and quay.io: the directory
/// follows.
const HOSTS_TO_DIR: [&str; 10] = [
    "map",
    "--rule",
    "docker-hub=registry-1.docker.io",
    "--rule",
    "quay=quay.io",
    "--registry",
    REGISTRY,
    "--format",
    "containerd-hosts",
    "--out-dir",
];

/// `--out-dir` checks every path without following links before it writes anything (a
/// review): a link (dangling or to a file, `--force` or not), a FIFO or a directory at an
/// output path is refused, nothing is written, the link's target is untouched, and a FIFO
/// does not block the run.
#[test]
fn out_dir_follows_no_link_and_opens_no_special_file() {
    let base = HOSTS_TO_DIR;
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim.txt");
    std::fs::write(&victim, "keep\n").unwrap();
    let created = outside.path().join("created-by-ptc");
    type Plant = Box<dyn Fn(&std::path::Path)>;
    let cases: Vec<(&str, Plant, bool)> = vec![
        (
            "dangling link",
            Box::new({
                let created = created.clone();
                move |p| std::os::unix::fs::symlink(&created, p).unwrap()
            }),
            false,
        ),
        (
            "link to a file",
            Box::new({
                let victim = victim.clone();
                move |p| std::os::unix::fs::symlink(&victim, p).unwrap()
            }),
            true,
        ),
        (
            "FIFO",
            Box::new(|p| {
                let status = Command::new("mkfifo").arg(p).status().unwrap();
                assert!(status.success());
            }),
            true,
        ),
        (
            "directory",
            Box::new(|p| std::fs::create_dir(p).unwrap()),
            true,
        ),
    ];
    for (what, plant, force) in cases {
        let dir = tempfile::tempdir().unwrap();
        let kubelet = dir.path().join("kubelet");
        std::fs::create_dir_all(&kubelet).unwrap();
        plant(&kubelet.join("credential-provider-config.yaml"));
        let mut args: Vec<&str> = base.to_vec();
        let d = dir.path().to_str().unwrap().to_owned();
        args.push(&d);
        if force {
            args.push("--force");
        }
        let started = std::time::Instant::now();
        let out = laptop(&args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{what}: blocked"
        );
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains("not a regular file") && stderr.contains("nothing was written"),
            "{what}: {stderr}"
        );
        assert!(
            !dir.path().join("certs.d").exists(),
            "{what}: something was written"
        );
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
    assert!(!created.exists());
    // A directory on the way that is a link is refused too.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("certs.d")).unwrap();
    let mut args: Vec<&str> = base.to_vec();
    let d = dir.path().to_str().unwrap().to_owned();
    args.push(&d);
    let out = laptop(&args, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"));
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        1,
        "only the victim"
    );
}

/// Credentials but no network: the adapters' ERROR lines stay out of the terminal without
/// -v; the one `ptc:` line tells it (a review).
#[test]
fn prewarm_without_a_network_fails_in_one_line() {
    let out = laptop_with_stdin(
        &["prewarm", "--image", "-"],
        &[
            ("AWS_REGION", "eu-west-2"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "example"),
            ("PTC_AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("PTC_AWS_MAX_ATTEMPTS", "1"),
        ],
        Some(b"nginx:1.25\n"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("ptc: "), "{stderr}");
}

/// `--force` keeps the replaced file's mode; a stderr that cannot be written (full) does not
/// stop the run half-way (a review: it panicked between two renames).
#[test]
fn out_dir_keeps_the_mode_and_finishes_whatever_stderr_does() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("certs.d/quay.io/hosts.toml");
    std::fs::create_dir_all(theirs.parent().unwrap()).unwrap();
    std::fs::write(&theirs, "server = \"https://mirror.example\"\n").unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o600)).unwrap();
    let d = dir.path().to_str().unwrap().to_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_ptc"))
        .args(HOSTS_TO_DIR)
        .args([&d, "--force"])
        .env_remove("PTC_CONFIG_FILE")
        .env_remove("PTC_RULES")
        .stdin(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let mode = std::fs::metadata(&theirs).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        std::fs::read_to_string(&theirs)
            .unwrap()
            .contains("/v2/quay")
    );
    for f in [
        "certs.d/docker.io/hosts.toml",
        "kubelet/credential-provider-config.yaml",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".ptc-map."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
