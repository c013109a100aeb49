//! `ptc scan` and `ptc rewrite` as a user runs them: the real binary over the fixtures of
//! `tests/fixtures/scan/` (see its README), checked with real parsers and tools: PyYAML
//! (`/work/main/.venv/bin/python`) counts the images independently and reads the rewritten
//! YAML back; `git apply` and `patch` apply the patch.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const REGISTRY: &str = "111122223333.dkr.ecr.eu-west-2.amazonaws.com";
const RULES: [&str; 8] = [
    "--rule",
    "docker-hub=registry-1.docker.io",
    "--rule",
    "quay=quay.io",
    "--rule",
    "k8s=registry.k8s.io",
    "--rule",
    "ghcr=ghcr.io",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/scan")
}

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is needed (PyYAML): the local stack's venv",
        python.display()
    );
    python
}

/// `ptc <command> --rule .. --registry REGISTRY <args>` in `dir`.
fn ptc(command: &str, args: &[&str], dir: &Path, stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ptc"))
        .arg(command)
        .args(RULES)
        .args(["--registry", REGISTRY])
        .args(args)
        .current_dir(dir)
        .env_remove("PTC_CONFIG_FILE")
        .env_remove("PTC_RULES")
        .env_remove("PTC_LOG")
        .env_remove("PTC_REGISTRY_HOST")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ptc");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("ptc output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `ptc scan --output json PATHS` in `dir`: the exit code and the rows.
fn scan_json(dir: &Path, paths: &[&str]) -> (Option<i32>, Vec<Value>) {
    let mut args = vec!["--output", "json"];
    args.extend(paths);
    let out = ptc("scan", &args, dir, None);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (
        out.status.code(),
        report["rows"].as_array().expect("rows").clone(),
    )
}

fn field<'a>(row: &'a Value, key: &str) -> &'a str {
    row[key].as_str().unwrap_or_default()
}

/// Each row's `(location, image)`, in order.
fn located(rows: &[Value]) -> Vec<(&str, &str)> {
    rows.iter()
        .map(|r| (field(r, "location"), field(r, "image")))
        .collect()
}

/// Every `image` of every container list (`containers`, `initContainers`,
/// `ephemeralContainers`) anywhere in the YAML documents of `file`, as PyYAML reads them:
/// an independent count that knows nothing of workload kinds.
fn pyyaml_container_images(file: &Path) -> Vec<String> {
    let script = r#"
import sys, yaml
found = []
def walk(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers", "ephemeralContainers") and isinstance(value, list):
                for c in value:
                    if isinstance(c, dict) and "image" in c:
                        found.append(str(c["image"]))
            walk(value)
    elif isinstance(node, list):
        for item in node:
            walk(item)
for doc in yaml.safe_load_all(open(sys.argv[1], encoding="utf-8")):
    walk(doc)
print("\n".join(found))
"#;
    let out = Command::new(python())
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut images: Vec<String> = text(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    images.sort();
    images
}

fn images_of(rows: &[Value], file_suffix: &str) -> Vec<String> {
    let mut images: Vec<String> = rows
        .iter()
        .filter(|r| field(r, "file").ends_with(file_suffix) && r.get("image").is_some())
        .map(|r| field(r, "image").to_owned())
        .collect();
    images.sort();
    images
}

#[test]
fn scan_finds_every_image_of_a_helm_template_output_init_containers_included() {
    let file = "helm-template/ingress-nginx-4.12.0.yaml";
    let (code, rows) = scan_json(&fixtures(), &[file]);
    assert_eq!(code, Some(0), "{rows:#?}");
    let expected = pyyaml_container_images(&fixtures().join(file));
    assert_eq!(expected.len(), 5, "the fixture's pod specs: {expected:?}");
    assert_eq!(images_of(&rows, file), expected);
    let init = rows
        .iter()
        .find(|r| field(r, "location").contains("initContainers"))
        .expect("the init container");
    assert_eq!(
        field(init, "location"),
        "Deployment/edge-ingress-nginx-controller initContainers[0] init-myservice"
    );
    assert_eq!(field(init, "image"), "busybox");
    assert_eq!(field(init, "class"), "routable");
    let controller = rows
        .iter()
        .find(|r| field(r, "location").ends_with("containers[0] controller"))
        .unwrap();
    assert_eq!(
        field(controller, "uri"),
        format!(
            "{REGISTRY}/k8s/ingress-nginx/controller:v1.12.0@sha256:e6b8de175acda6ca913891f0f727bca4527e797d52688cbe9fec9040d6f6b6fa"
        )
    );
}

#[test]
fn scan_reads_each_workload_kind_and_classifies_each_image() {
    let (code, rows) = scan_json(&fixtures(), &["workloads.yaml"]);
    assert_eq!(code, Some(0), "{rows:#?}");
    assert_eq!(
        images_of(&rows, "workloads.yaml"),
        pyyaml_container_images(&fixtures().join("workloads.yaml"))
    );
    let got: BTreeMap<&str, (&str, &str)> = rows
        .iter()
        .map(|r| (field(r, "location"), (field(r, "image"), field(r, "class"))))
        .collect();
    let want: BTreeMap<&str, (&str, &str)> = [
        ("Pod/debug-target containers[0] app", ("ghcr.io/example-org/app:1.4.2", "routable")),
        ("Pod/debug-target ephemeralContainers[0] debugger", ("busybox:1.36", "routable")),
        ("StatefulSet/store initContainers[0] fix-perms", ("docker.io/library/alpine:3.20", "routable")),
        ("StatefulSet/store containers[0] db", ("quay.io/example/store@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "routable")),
        ("DaemonSet/node-agent containers[0] cni", ("602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.18.3", "aws-owned")),
        ("DaemonSet/node-agent containers[1] exporter", ("gcr.io/example-project/exporter:v2", "unsupported")),
        ("CronJob/nightly initContainers[0] wait", ("registry.gitlab.com/example/tools/wait:1.0", "no-rule")),
        ("CronJob/nightly containers[0] report", ("111122223333.dkr.ecr.eu-west-2.amazonaws.com/docker-hub/library/python:3.12", "already-cached")),
        ("ReplicaSet/legacy-web containers[0] web", ("nginx", "routable")),
        ("ReplicationController/very-legacy containers[0] redis", ("redis:7.2-alpine", "routable")),
        ("PodTemplate/runner-template containers[0] runner", ("public.ecr.aws/docker/library/node:20", "aws-owned")),
        ("Deployment/web initContainers[0] migrate", ("ghcr.io/example-org/migrate:2024.06", "routable")),
        ("Deployment/web containers[0] web", ("registry.k8s.io/pause:3.9", "routable")),
        ("Job/seed containers[0] seed", ("Not/A:Valid@Ref", "invalid")),
    ]
    .into();
    assert_eq!(got, want);
    let out = ptc("scan", &["workloads.yaml"], &fixtures(), None);
    let table = text(&out.stdout);
    assert!(
        table.lines().next().unwrap().starts_with("FILE") && table.contains("CLASS"),
        "{table}"
    );
    assert!(
        table.trim_end().ends_with(
            "14 images in 1 file: 8 routable, 1 already-cached, 2 aws-owned, 1 no-rule, 1 unsupported, 1 invalid"
        ),
        "{table}"
    );
}

#[test]
fn scan_reads_helm_release_values_dockerfiles_and_lists() {
    let (code, rows) = scan_json(
        &fixtures(),
        &[
            "helmrelease-nats.yaml",
            "Dockerfile",
            "api.Containerfile",
            "images.list",
        ],
    );
    assert_eq!(code, Some(0), "{rows:#?}");
    let got: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                field(r, "file"),
                field(r, "location"),
                field(r, "image"),
                field(r, "class"),
            )
        })
        .collect();
    let nats = "helmrelease-nats.yaml";
    let want = vec![
        (
            nats,
            "HelmRelease/nats values.container.image",
            "111122223333.dkr.ecr.eu-west-2.amazonaws.com/docker-hub/library/nats:2.10.12-alpine",
            "already-cached",
        ),
        (
            nats,
            "HelmRelease/nats values.reloader.image",
            "111122223333.dkr.ecr.eu-west-2.amazonaws.com/docker-hub/natsio/nats-server-config-reloader",
            "already-cached",
        ),
        (
            nats,
            "HelmRelease/observability values.operator.image",
            "quay.io/prometheus-operator/prometheus-operator:v0.75.0",
            "routable",
        ),
        (
            nats,
            "HelmRelease/observability values.sidecars[0].image",
            "ghcr.io/example-org/reloader:0.9",
            "routable",
        ),
        (
            nats,
            "HelmRelease/observability values.exporter.image",
            "quay.io/prometheus/node-exporter:v1.8.1",
            "routable",
        ),
        (
            nats,
            "HelmRelease/observability values.dashboards.initImage",
            "docker.io/library/busybox:1.36",
            "routable",
        ),
        (
            nats,
            "HelmRelease/observability values.dashboards.image",
            "docker.io/grafana/grafana@sha256:89abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567",
            "routable",
        ),
        (
            "Dockerfile",
            "FROM line 7",
            "golang:1.22-alpine",
            "routable",
        ),
        (
            "Dockerfile",
            "FROM line 14",
            "gcr.io/distroless/static-debian12:nonroot",
            "unsupported",
        ),
        (
            "Dockerfile",
            "FROM line 22",
            "docker.io/library/alpine:3.20",
            "routable",
        ),
        (
            "Dockerfile",
            "FROM line 23",
            "$REGISTRY/internal/base:1",
            "invalid",
        ),
        (
            "Dockerfile",
            "FROM line 25",
            "quay.io/example/final-base:2.0",
            "routable",
        ),
        (
            "api.Containerfile",
            "FROM line 1",
            "ghcr.io/example-org/builder:1.0",
            "routable",
        ),
        (
            "api.Containerfile",
            "FROM line 3",
            "registry.k8s.io/build-image/debian-base:bookworm-v1.0.3",
            "routable",
        ),
        ("images.list", "line 2", "nginx:1.25", "routable"),
        (
            "images.list",
            "line 3",
            "quay.io/prometheus/prometheus:v2.51.0",
            "routable",
        ),
        (
            "images.list",
            "line 5",
            "mcr.microsoft.com/dotnet/runtime:8.0",
            "unsupported",
        ),
    ];
    assert_eq!(got, want);
    let unresolved = rows
        .iter()
        .find(|r| field(r, "location") == "FROM line 23")
        .unwrap();
    assert!(
        field(unresolved, "reason").contains("$REGISTRY has no default"),
        "{unresolved}"
    );
    let reloader = &rows[1];
    assert!(field(reloader, "note").contains("no tag"), "{reloader}");
    // A Dockerfile on stdin: told by its content.
    let out = ptc(
        "scan",
        &["--output", "json", "-"],
        &fixtures(),
        Some(b"ARG V=3.20\nFROM alpine:$V AS a\nFROM a\n"),
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{report}");
    assert_eq!(field(&rows[0], "file"), "-");
    assert_eq!(field(&rows[0], "image"), "alpine:3.20");
}

#[test]
fn watch_list_holds_the_routable_set_once_each() {
    let paths = [
        "helm-template",
        "workloads.yaml",
        "helmrelease-nats.yaml",
        "Dockerfile",
        "images.list",
    ];
    let (_, rows) = scan_json(&fixtures(), &paths);
    let routable: BTreeSet<String> = rows
        .iter()
        .filter(|r| field(r, "class") == "routable")
        .map(|r| field(r, "upstream").to_owned())
        .collect();
    let mut args = vec!["--output", "watch-list"];
    args.extend(paths);
    let out = ptc("scan", &args, &fixtures(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed: Vec<String> = text(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len(), "each image once: {listed:?}");
    assert_eq!(unique, routable);
    // The list is what `ptc map -` (and so `ptc prewarm --image -`) reads: each line routes.
    let out = ptc(
        "map",
        &["--output", "json", "-"],
        &fixtures(),
        Some(text(&out.stdout).as_bytes()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let mapped: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(mapped.len(), listed.len());
    assert!(mapped.iter().all(|m| field(m, "class") == "routable"));
}

#[test]
fn problems_are_reported_per_file_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::copy(fixtures().join("bad/broken.yaml"), root.join("broken.yaml")).unwrap();
    std::fs::copy(
        fixtures().join("bad/alias-bomb.yaml"),
        root.join("alias-bomb.yaml"),
    )
    .unwrap();
    std::fs::write(root.join("binary.yaml"), b"apiVersion: v1\0\x01\x02").unwrap();
    std::fs::write(root.join("latin1.yaml"), b"kind: Pod # caf\xe9\n").unwrap();
    let big = std::fs::File::create(root.join("huge.yaml")).unwrap();
    big.set_len(17 * 1024 * 1024).unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    std::os::unix::fs::symlink("..", root.join("sub/loop")).unwrap();
    std::os::unix::fs::symlink("self", root.join("self")).unwrap();
    std::fs::copy(fixtures().join("images.list"), root.join("sub/images.list")).unwrap();

    let (code, rows) = scan_json(root, &["."]);
    assert_eq!(code, Some(1), "{rows:#?}");
    let problems: BTreeMap<String, String> = rows
        .iter()
        .filter(|r| r.get("problem").is_some())
        .map(|r| {
            let name = Path::new(field(r, "file"))
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (
                format!("{name} {}", field(r, "location")),
                field(r, "problem").to_owned(),
            )
        })
        .collect();
    let keys: Vec<&str> = problems.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "alias-bomb.yaml document 1 (line 1)",
            "binary.yaml ",
            "broken.yaml document 2 (line 9)",
            "huge.yaml ",
            "latin1.yaml ",
            "loop ",
            "self ",
        ],
        "{problems:#?}"
    );
    assert_eq!(
        problems["alias-bomb.yaml document 1 (line 1)"],
        "repetition limit exceeded"
    );
    assert!(problems["binary.yaml "].contains("binary"));
    assert!(problems["broken.yaml document 2 (line 9)"].contains("line 13"));
    assert!(problems["huge.yaml "].contains("larger than 16 MiB"));
    assert!(problems["latin1.yaml "].contains("not UTF-8"));
    // Symbolic links met in a walk are not followed, each said (the loop and the link to
    // itself alike).
    for link in ["self ", "loop "] {
        assert!(
            problems[link].contains("a symbolic link: not followed"),
            "{problems:#?}"
        );
    }
    // The documents around the broken one, and the list below the looping directory (once).
    let images: Vec<&str> = rows.iter().filter_map(|r| r["image"].as_str()).collect();
    assert_eq!(
        images,
        [
            "nginx:1.25",
            "quay.io/example/after:1",
            "nginx:1.25",
            "quay.io/prometheus/prometheus:v2.51.0",
            "mcr.microsoft.com/dotnet/runtime:8.0",
        ]
    );
    let out = ptc("scan", &["."], root, None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).trim_end().ends_with("; 7 problems"),
        "{}",
        text(&out.stdout)
    );
}

/// The fixtures a rewrite is tried on, copied under `dir`.
const REWRITTEN: [&str; 5] = [
    "helm-template/ingress-nginx-4.12.0.yaml",
    "workloads.yaml",
    "helmrelease-nats.yaml",
    "Dockerfile",
    "images.list",
];

fn copy_fixtures(dir: &Path) {
    for file in REWRITTEN {
        let to = dir.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(fixtures().join(file), to).unwrap();
    }
}

fn run_tool(dir: &Path, program: &str, args: &[&str], stdin: &[u8]) {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The images of `file`'s container lists, as PyYAML reads them.
fn pyyaml_images(file: &Path) -> Vec<String> {
    pyyaml_container_images(file)
}

/// The HelmReleases' image values of `file` as PyYAML reads them, as `key=value` lines.
fn pyyaml_helm_values(file: &Path) -> Vec<String> {
    let script = r#"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1], encoding="utf-8")) if d]
nats, obs = docs[0]["spec"]["values"], docs[1]["spec"]["values"]
print("nats.container=" + repr(nats["container"]["image"]))
print("operator=" + obs["operator"]["image"])
print("sidecar=" + obs["sidecars"][0]["image"])
print("initImage=" + obs["dashboards"]["initImage"])
print("exporter=" + repr(obs["exporter"]["image"]))
"#;
    let out = Command::new(python())
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_owned).collect()
}

/// What a rewrite writes for a scanned row: its cached URI, without the `:latest` the URI
/// gives a reference written with no tag nor digest (the rewrite keeps it tagless).
fn kept_tag(row: &Value) -> String {
    let image = field(row, "image");
    let uri = field(row, "uri");
    let name = image.rsplit('/').next().unwrap_or(image);
    if name.contains(':') || name.contains('@') {
        uri.to_owned()
    } else {
        uri.strip_suffix(":latest")
            .expect("a tagless URI")
            .to_owned()
    }
}

#[test]
fn rewrite_patch_applies_with_git_apply_and_patch_and_changes_only_routable_references() {
    let original = tempfile::tempdir().unwrap();
    copy_fixtures(original.path());
    let (_, rows) = scan_json(original.path(), &REWRITTEN);
    // Whole strings that are routable: (as written, cached URI); split values are not.
    let replacements: Vec<(String, String)> = rows
        .iter()
        .filter(|r| field(r, "class") == "routable")
        .filter(|r| {
            !field(r, "location").ends_with("exporter.image")
                && !field(r, "location").ends_with("dashboards.image")
        })
        .filter(|r| !field(r, "note").contains("ARG"))
        .map(|r| (field(r, "image").to_owned(), kept_tag(r)))
        .collect();
    assert!(replacements.len() >= 15, "{replacements:?}");

    let out = ptc("rewrite", &REWRITTEN, original.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let patch = out.stdout;
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("values.exporter.image") && stderr.contains("ptc map --format helm-values"),
        "{stderr}"
    );
    assert!(
        stderr.contains("FROM line 7") && stderr.contains("change the ARG's default"),
        "{stderr}"
    );

    // Three ways to the rewritten files: git apply, patch -p1, ptc rewrite --write.
    let by_git = tempfile::tempdir().unwrap();
    copy_fixtures(by_git.path());
    run_tool(by_git.path(), "git", &["apply", "-"], &patch);
    let by_patch = tempfile::tempdir().unwrap();
    copy_fixtures(by_patch.path());
    run_tool(
        by_patch.path(),
        "patch",
        &["-p1", "--batch", "--no-backup-if-mismatch"],
        &patch,
    );
    let by_write = tempfile::tempdir().unwrap();
    copy_fixtures(by_write.path());
    let out = ptc(
        "rewrite",
        &[&["--write"][..], &REWRITTEN[..]].concat(),
        by_write.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "--write prints no patch");

    for file in REWRITTEN {
        let old = std::fs::read_to_string(original.path().join(file)).unwrap();
        let new = std::fs::read_to_string(by_write.path().join(file)).unwrap();
        assert_eq!(
            new,
            std::fs::read_to_string(by_git.path().join(file)).unwrap(),
            "{file}"
        );
        assert_eq!(
            new,
            std::fs::read_to_string(by_patch.path().join(file)).unwrap(),
            "{file}"
        );
        // Every other byte equal: each changed line is the old one with one routable
        // reference replaced by its cached URI.
        let (a, b): (Vec<&str>, Vec<&str>) = (
            old.split_inclusive('\n').collect(),
            new.split_inclusive('\n').collect(),
        );
        assert_eq!(a.len(), b.len(), "{file}");
        for (x, y) in a.iter().zip(&b) {
            if x != y {
                assert!(
                    replacements
                        .iter()
                        .any(|(from, to)| x.replacen(from.as_str(), to, 1) == *y),
                    "{file}: {x:?} -> {y:?}"
                );
            }
        }
        if file.ends_with(".yaml") {
            // PyYAML reads the rewritten file; every routable container image is now the
            // cached URI, every other one as it was.
            let before = pyyaml_images(&original.path().join(file));
            let mut expected: Vec<String> = before
                .iter()
                .map(|i| {
                    replacements
                        .iter()
                        .find(|(from, _)| from == i)
                        .map(|(_, to)| to.clone())
                        .unwrap_or_else(|| i.clone())
                })
                .collect();
            expected.sort();
            assert_eq!(
                pyyaml_images(&by_write.path().join(file)),
                expected,
                "{file}"
            );
        }
    }
    let helm_before = pyyaml_helm_values(&original.path().join("helmrelease-nats.yaml"));
    let helm_after = pyyaml_helm_values(&by_write.path().join("helmrelease-nats.yaml"));
    assert_eq!(
        helm_after,
        [
            helm_before[0].clone(), // already cached, split: as it was
            format!("operator={REGISTRY}/quay/prometheus-operator/prometheus-operator:v0.75.0"),
            format!("sidecar={REGISTRY}/ghcr/example-org/reloader:0.9"),
            format!("initImage={REGISTRY}/docker-hub/library/busybox:1.36"),
            helm_before[4].clone(), // split values: not rewritten
        ]
    );
    let workloads = std::fs::read_to_string(by_write.path().join("workloads.yaml")).unwrap();
    for untouched in [
        "image: gcr.io/example-project/exporter:v2",
        "image: 602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.18.3",
        "image: registry.gitlab.com/example/tools/wait:1.0",
        "image: Not/A:Valid@Ref",
        "    image: nginx\n", // the ConfigMap's text
        "image: '111122223333.dkr.ecr.eu-west-2.amazonaws.com/docker-hub/library/busybox:1.36'",
    ] {
        assert!(workloads.contains(untouched), "{untouched}");
    }
}

#[test]
fn rewrite_is_idempotent_and_keeps_crlf_line_endings() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    let crlf = std::fs::read_to_string(fixtures().join("workloads.yaml"))
        .unwrap()
        .replace('\n', "\r\n");
    std::fs::write(dir.path().join("crlf.yaml"), &crlf).unwrap();
    let mut paths = REWRITTEN.to_vec();
    paths.push("crlf.yaml");
    let write: Vec<&str> = [&["--write"][..], &paths[..]].concat();
    let first = ptc("rewrite", &write, dir.path(), None);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let after_first: Vec<String> = paths
        .iter()
        .map(|p| std::fs::read_to_string(dir.path().join(p)).unwrap())
        .collect();
    let again = ptc("rewrite", &paths, dir.path(), None);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        again.stdout.is_empty(),
        "a second rewrite changes nothing: {}",
        text(&again.stdout)
    );
    assert!(
        text(&again.stderr).contains("0 references rewritten in 0 files"),
        "{}",
        text(&again.stderr)
    );
    let second = ptc("rewrite", &write, dir.path(), None);
    assert_eq!(second.status.code(), Some(0));
    for (p, before) in paths.iter().zip(&after_first) {
        assert_eq!(
            &std::fs::read_to_string(dir.path().join(p)).unwrap(),
            before,
            "{p}"
        );
    }
    let rewritten = &after_first[paths.len() - 1];
    assert_ne!(rewritten, &crlf);
    assert_eq!(
        rewritten.matches("\r\n").count(),
        crlf.matches("\r\n").count()
    );
    assert_eq!(rewritten.matches('\n').count(), crlf.matches('\n').count());
    assert!(rewritten.contains(&format!("image: {REGISTRY}/k8s/pause:3.9\r\n")));
    assert_eq!(
        pyyaml_images(&dir.path().join("crlf.yaml")),
        pyyaml_images(&dir.path().join("workloads.yaml"))
    );
}

/// `ptc <command> ..` in `dir` killed after `secs` seconds: `None` when it had to be.
fn ptc_within(command: &str, args: &[&str], dir: &Path, secs: u64) -> Option<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ptc"))
        .arg(command)
        .args(RULES)
        .args(["--registry", REGISTRY])
        .args(args)
        .current_dir(dir)
        .env_remove("PTC_CONFIG_FILE")
        .env_remove("PTC_RULES")
        .env_remove("PTC_LOG")
        .env_remove("PTC_REGISTRY_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ptc");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    let _ = child.wait();
    None
}

/// Python (PyYAML) evaluating `expr` over the documents `docs` of `file`.
fn pyyaml_eval(file: &Path, expr: &str) -> String {
    let script = format!(
        "import sys, yaml\ndocs = [d for d in yaml.safe_load_all(open(sys.argv[1], encoding='utf-8-sig')) if d]\nprint({expr})\n"
    );
    let out = Command::new(python())
        .args(["-c", &script])
        .arg(file)
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim_end().to_owned()
}

const EXPORTER: &str = "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: exporter
spec:
  values:
    image: quay.io/prometheus/node-exporter
    imageTag: v1.8.0
    sidecarImage: docker.io/library/busybox
    controller:
      image:
        registry: registry.k8s.io
        image: ingress-nginx/controller
        tag: v1.10.1
        digest: sha256:e24f39d3eed6bcc239a56f20098878845f62baa34b9f2be2fd2c38ce9fb0f29e
";

#[test]
fn rewrite_keeps_the_written_tag_or_none_and_leaves_split_image_values() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: quay.io/prometheus/node-exporter\n  - name: b\n    image: ghcr.io/o/r:1@sha256:e24f39d3eed6bcc239a56f20098878845f62baa34b9f2be2fd2c38ce9fb0f29e\n",
    )
    .unwrap();
    std::fs::write(root.join("Dockerfile"), "FROM nginx\nFROM quay.io/a/b:2\n").unwrap();
    std::fs::write(root.join("exporter.yaml"), EXPORTER).unwrap();
    let (code, rows) = scan_json(root, &["."]);
    assert_eq!(code, Some(0), "{rows:#?}");
    let image_at = |suffix: &str| {
        rows.iter()
            .find(|r| field(r, "location").ends_with(suffix))
            .unwrap_or_else(|| panic!("{suffix}: {rows:#?}"))
    };
    // The tagless `image:` composed with its sibling `imageTag`, as the chart renders it.
    let exporter = image_at("values.image");
    assert_eq!(
        field(exporter, "image"),
        "quay.io/prometheus/node-exporter:v1.8.0"
    );
    assert_eq!(field(exporter, "class"), "routable");
    // ingress-nginx's split `image:` beside `registry`: composed, not read as Docker Hub's.
    let controller = image_at("values.controller.image");
    assert_eq!(
        field(controller, "image"),
        "registry.k8s.io/ingress-nginx/controller@sha256:e24f39d3eed6bcc239a56f20098878845f62baa34b9f2be2fd2c38ce9fb0f29e"
    );
    assert_eq!(field(controller, "class"), "routable");
    let out = ptc("scan", &["--output", "watch-list", "."], root, None);
    let list = text(&out.stdout);
    assert!(
        list.lines()
            .any(|l| l == "quay.io/prometheus/node-exporter:v1.8.0"),
        "{list}"
    );

    let out = ptc("rewrite", &["--write", "."], root, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("values.controller.image: registry.k8s.io/ingress-nginx/controller")
            && stderr.contains("split Helm values (registry/image/tag)"),
        "{stderr}"
    );
    let pod = root.join("pod.yaml");
    assert_eq!(
        pyyaml_eval(
            &pod,
            "'\\n'.join(c['image'] for c in docs[0]['spec']['containers'])"
        ),
        format!(
            "{REGISTRY}/quay/prometheus/node-exporter\n{REGISTRY}/ghcr/o/r:1@sha256:e24f39d3eed6bcc239a56f20098878845f62baa34b9f2be2fd2c38ce9fb0f29e"
        )
    );
    assert_eq!(
        std::fs::read_to_string(root.join("Dockerfile")).unwrap(),
        format!("FROM {REGISTRY}/docker-hub/library/nginx\nFROM {REGISTRY}/quay/a/b:2\n")
    );
    // The chart's `{{ .image }}:{{ .imageTag }}` gives one tag; the split values are as they
    // were.
    let values = root.join("exporter.yaml");
    assert_eq!(
        pyyaml_eval(
            &values,
            "docs[0]['spec']['values']['image'] + ':' + docs[0]['spec']['values']['imageTag']"
        ),
        format!("{REGISTRY}/quay/prometheus/node-exporter:v1.8.0")
    );
    assert_eq!(
        pyyaml_eval(&values, "docs[0]['spec']['values']['sidecarImage']"),
        format!("{REGISTRY}/docker-hub/library/busybox")
    );
    let split = "docs[0]['spec']['values']['controller']";
    assert_eq!(
        pyyaml_eval(&values, split),
        pyyaml_eval_text(EXPORTER, split)
    );
    // What was rewritten names the cache now.
    let (_, rows) = scan_json(root, &["."]);
    for r in rows
        .iter()
        .filter(|r| !field(r, "location").contains("controller"))
    {
        assert_eq!(field(r, "class"), "already-cached", "{r}");
    }
}

/// [`pyyaml_eval`] over a text.
fn pyyaml_eval_text(yaml: &str, expr: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.yaml");
    std::fs::write(&file, yaml).unwrap();
    pyyaml_eval(&file, expr)
}

#[test]
fn bitnami_global_image_registry_wins_and_values_from_is_a_note() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("redis.yaml"),
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: redis\nspec:\n  valuesFrom:\n  - kind: ConfigMap\n    name: redis-values\n  values:\n    global:\n      imageRegistry: quay.io\n    image:\n      registry: docker.io\n      repository: bitnami/redis\n      tag: 7.2.4\n",
    )
    .unwrap();
    let (code, rows) = scan_json(dir.path(), &["redis.yaml"]);
    assert_eq!(code, Some(0), "a note is not a problem: {rows:#?}");
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(
        field(&rows[0], "location"),
        "HelmRelease/redis spec.valuesFrom"
    );
    assert!(field(&rows[0], "note").contains("not read"), "{rows:#?}");
    assert!(rows[0].get("image").is_none() && rows[0].get("problem").is_none());
    assert_eq!(field(&rows[1], "image"), "quay.io/bitnami/redis:7.2.4");
    let out = ptc("scan", &["redis.yaml"], dir.path(), None);
    assert!(
        text(&out.stdout).trim_end().ends_with("; 1 note"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn walks_do_not_follow_symlinks_and_never_open_special_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("outside")).unwrap();
    std::fs::create_dir_all(root.join("tree")).unwrap();
    std::fs::write(
        root.join("outside/victim.yaml"),
        "kind: Pod\nspec:\n  containers:\n  - image: quay.io/secret/outside:1\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("../outside", root.join("tree/dir")).unwrap();
    std::os::unix::fs::symlink("../outside/victim.yaml", root.join("tree/link.yaml")).unwrap();
    std::fs::write(root.join("tree/images.txt"), "nginx:1.25\n").unwrap();
    let fifo = root.join("tree/a.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let out = ptc_within("scan", &["--output", "json", "tree"], root, 20)
        .expect("ptc scan of a directory holding a FIFO must not hang");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let images: Vec<&str> = rows.iter().filter_map(|r| r["image"].as_str()).collect();
    assert_eq!(
        images,
        ["nginx:1.25"],
        "nothing outside the tree: {rows:#?}"
    );
    let problems: BTreeMap<&str, &str> = rows
        .iter()
        .filter(|r| r.get("problem").is_some())
        .map(|r| (field(r, "file"), field(r, "problem")))
        .collect();
    assert!(problems["tree/a.yaml"].contains("FIFO"), "{problems:#?}");
    assert!(problems["tree/dir"].contains("symbolic link: not followed"));
    assert!(problems["tree/link.yaml"].contains("symbolic link: not followed"));
    // A FIFO named on the command line is refused too; a symbolic link named there is read.
    let out = ptc_within("scan", &["--output", "json", "tree/a.yaml"], root, 20)
        .expect("a FIFO on the command line must not hang");
    assert_eq!(out.status.code(), Some(1));
    let (code, rows) = scan_json(root, &["tree/link.yaml"]);
    assert_eq!(code, Some(0));
    assert_eq!(field(&rows[0], "image"), "quay.io/secret/outside:1");
}

#[test]
fn write_keeps_mode_owner_and_group() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pod.yaml");
    std::fs::write(
        &file,
        "kind: Pod\nspec:\n  containers:\n  - image: quay.io/a/b:1\n",
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = std::fs::metadata(&file).unwrap();
    // As root (the test machine), give the file to another owner and group: kept.
    let root = before.uid() == 0;
    if root {
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
    }
    let before = std::fs::metadata(&file).unwrap();
    let out = ptc("rewrite", &["--write", "pod.yaml"], dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after = std::fs::metadata(&file).unwrap();
    assert_ne!(after.ino(), before.ino(), "replaced by a rename");
    assert_eq!(after.mode() & 0o7777, 0o640);
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains(&format!("{REGISTRY}/quay/a/b:1"))
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file left");
}

#[test]
fn rewrite_of_thousands_of_images_in_one_pod_is_linear() {
    let dir = tempfile::tempdir().unwrap();
    let n = 6000;
    let mut yaml =
        String::from("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n");
    for i in 0..n {
        yaml.push_str(&format!("  - name: c{i}\n    image: quay.io/a/b{i}:1\n"));
    }
    std::fs::write(dir.path().join("wide.yaml"), &yaml).unwrap();
    let started = std::time::Instant::now();
    let out = ptc_within("rewrite", &["--write", "wide.yaml"], dir.path(), 60)
        .expect("rewrite of 6,000 images finishes");
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A generous bound for a debug build on a shared machine; quadratic work took minutes.
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    assert!(
        text(&out.stderr).contains(&format!("{n} references rewritten in 1 file")),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn merge_keys_are_applied_and_a_merged_value_is_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("merge.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: m\nx-base: &base\n  image: quay.io/foo/bar:1\nspec:\n  containers:\n  - <<: *base\n    name: a\n  - name: b\n    image: nginx:1.25\n",
    )
    .unwrap();
    let (code, rows) = scan_json(dir.path(), &["merge.yaml"]);
    assert_eq!(code, Some(0));
    let images = located(&rows);
    assert_eq!(
        images,
        [
            ("Pod/m containers[0] a", "quay.io/foo/bar:1"),
            ("Pod/m containers[1] b", "nginx:1.25"),
        ]
    );
    let out = ptc("rewrite", &["--write", "merge.yaml"], dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("YAML merge key"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        pyyaml_eval(
            &file,
            "docs[0]['x-base']['image'] + ' ' + docs[0]['spec']['containers'][1]['image']"
        ),
        format!("quay.io/foo/bar:1 {REGISTRY}/docker-hub/library/nginx:1.25")
    );
}

#[test]
fn a_byte_order_mark_does_not_fail_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bom.yaml");
    std::fs::write(
        &file,
        "\u{feff}apiVersion: v1\nkind: Pod\nmetadata:\n  name: c\nspec:\n  containers:\n  - name: a\n    image: quay.io/a/b:1\n",
    )
    .unwrap();
    let (code, rows) = scan_json(dir.path(), &["bom.yaml"]);
    assert_eq!(code, Some(0), "{rows:#?}");
    assert_eq!(field(&rows[0], "image"), "quay.io/a/b:1");
    let out = ptc("rewrite", &["--write", "bom.yaml"], dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with("\u{feff}".as_bytes()), "the BOM is kept");
    assert_eq!(
        pyyaml_eval(&file, "docs[0]['spec']['containers'][0]['image']"),
        format!("{REGISTRY}/quay/a/b:1")
    );
}

#[test]
fn rewrite_tells_every_image_it_leaves_and_escapes_what_files_hold() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("workloads.yaml"),
        dir.path().join("workloads.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("esc.yaml"),
        "kind: Pod\nmetadata: {name: e}\nspec:\n  containers:\n  - name: a\n    image: \"quay.io/a/b:1\\e]0;pwned\\a\\e[2J\"\n",
    )
    .unwrap();
    let out = ptc("rewrite", &["workloads.yaml", "esc.yaml"], dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    for (image, class) in [
        ("gcr.io/example-project/exporter:v2", "unsupported"),
        ("registry.gitlab.com/example/tools/wait:1.0", "no-rule"),
        (
            "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.18.3",
            "aws-owned",
        ),
        ("Not/A:Valid@Ref", "invalid"),
    ] {
        assert!(
            stderr.contains(&format!("{image} left as written: {class}: ")),
            "{image}: {stderr}"
        );
    }
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
        "{stderr:?}"
    );
    assert!(stderr.contains("\\u{1b}]0;pwned\\u{7}"), "{stderr}");
}

#[test]
fn patch_names_with_whitespace_or_control_characters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["my file.Dockerfile", "n\tl.Dockerfile", "ok.Dockerfile"] {
        std::fs::write(dir.path().join(name), "FROM quay.io/a/b:1\n").unwrap();
    }
    let out = ptc(
        "rewrite",
        &["my file.Dockerfile", "n\tl.Dockerfile", "ok.Dockerfile"],
        dir.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("my file.Dockerfile: a file name with whitespace"),
        "{stderr}"
    );
    assert!(
        stderr.contains("n\\tl.Dockerfile: a file name with whitespace"),
        "{stderr}"
    );
    let patch = text(&out.stdout);
    assert!(
        patch.starts_with("--- a/ok.Dockerfile\n+++ b/ok.Dockerfile\n"),
        "{patch}"
    );
    assert_eq!(
        patch.matches("\n+++ ").count() + usize::from(patch.starts_with("+++")),
        1
    );
    run_tool(dir.path(), "git", &["apply", "-"], patch.as_bytes());
}

#[test]
fn one_value_that_cannot_be_replaced_does_not_block_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tagged.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: t\nspec:\n  containers:\n  - name: a\n    image: !!str nginx:1.25\n  - name: b\n    image: 'quay.io/x/y:1' # c\n  - {name: c, image: \"ghcr.io/o/r:2\"}\n  - name: d\n    image: ghcr.io/o/r:3\n",
    )
    .unwrap();
    let out = ptc("rewrite", &["--write", "tagged.yaml"], dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`nginx:1.25` is not written as a plain or quoted string"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`ghcr.io/o/r:2` is not written"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 references rewritten in 1 file"),
        "{stderr}"
    );
    assert_eq!(
        pyyaml_eval(
            &file,
            "'\\n'.join(c['image'] for c in docs[0]['spec']['containers'])"
        ),
        format!("nginx:1.25\n{REGISTRY}/quay/x/y:1\nghcr.io/o/r:2\n{REGISTRY}/ghcr/o/r:3")
    ); // A text also written in a block scalar: that one is refused, naming it; the other
    // image of the document is still rewritten, and the block scalar is as it was.
    let file = dir.path().join("cm.yaml");
    let note = "image: nginx:1.25\n";
    std::fs::write(
        &file,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  annotations:\n    note: |\n      image: nginx:1.25\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        image: nginx:1.25\n      - name: b\n        image: quay.io/x/y:1\n",
    )
    .unwrap();
    let out = ptc("rewrite", &["--write", "cm.yaml"], dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("`nginx:1.25` is also written under that key"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        pyyaml_eval(
            &file,
            "docs[0]['metadata']['annotations']['note'] + '|'.join(c['image'] for c in docs[0]['spec']['template']['spec']['containers'])"
        ),
        format!("{note}nginx:1.25|{REGISTRY}/quay/x/y:1")
    );
}

#[test]
fn directory_scans_read_only_files_named_as_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("sources.list"),
        "deb http://deb.debian.org/debian bookworm main\n",
    )
    .unwrap();
    std::fs::write(
        root.join("Dockerfile.dockerignore"),
        "FROM quay.io/not/read:1\n",
    )
    .unwrap();
    std::fs::write(root.join("prod.images"), "quay.io/a/list:1\n").unwrap();
    std::fs::write(root.join("Dockerfile.prod"), "FROM quay.io/a/docker:1\n").unwrap();
    std::fs::write(root.join("web.dockerfile"), "FROM quay.io/a/web:1\n").unwrap();
    let (code, rows) = scan_json(root, &["."]);
    assert_eq!(code, Some(0), "{rows:#?}");
    let files: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (field(r, "file"), field(r, "image")))
        .collect();
    assert_eq!(
        files,
        [
            ("./Dockerfile.prod", "quay.io/a/docker:1"),
            ("./prod.images", "quay.io/a/list:1"),
            ("./web.dockerfile", "quay.io/a/web:1"),
        ]
    );
}

#[test]
fn copy_from_and_run_mount_from_images_are_scanned_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    std::fs::write(
        &file,
        "FROM golang:1.22 AS build\nCOPY --from=build /app /app\nCOPY --from=ghcr.io/o/r:1 /x /y\nRUN --mount=type=bind,from=quay.io/m/n:1,target=/m true\n",
    )
    .unwrap();
    let (code, rows) = scan_json(dir.path(), &["Dockerfile"]);
    assert_eq!(code, Some(0));
    let got = located(&rows);
    assert_eq!(
        got,
        [
            ("FROM line 1", "golang:1.22"),
            ("COPY --from line 3", "ghcr.io/o/r:1"),
            ("RUN --mount line 4", "quay.io/m/n:1"),
        ]
    );
    let out = ptc("rewrite", &["--write", "Dockerfile"], dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!(
            "FROM {REGISTRY}/docker-hub/library/golang:1.22 AS build\nCOPY --from=build /app /app\nCOPY --from={REGISTRY}/ghcr/o/r:1 /x /y\nRUN --mount=type=bind,from={REGISTRY}/quay/m/n:1,target=/m true\n"
        )
    );
}

#[test]
fn stdin_is_read_once_and_absolute_paths_below_the_directory_patch_relatively() {
    let out = ptc("scan", &["-", "-"], &fixtures(), Some(b"quay.io/a/b:1\n"));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("1 image in 1 file:"),
        "{}",
        text(&out.stdout)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("images.txt");
    std::fs::write(&file, "quay.io/a/b:1\n").unwrap();
    let abs = file.to_str().unwrap();
    let out = ptc("rewrite", &[abs], dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let patch = text(&out.stdout);
    assert!(
        patch.starts_with("--- a/images.txt\n+++ b/images.txt\n"),
        "{patch}"
    );
    run_tool(dir.path(), "git", &["apply", "-"], patch.as_bytes());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{REGISTRY}/quay/a/b:1\n")
    );
}

/// `ptc scan --output watch-list PATHS` in `dir`: the listed references.
fn watch_list(dir: &Path, paths: &[&str]) -> Vec<String> {
    let mut args = vec!["--output", "watch-list"];
    args.extend(paths);
    let out = ptc("scan", &args, dir, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_quoted_heredoc_marker_in_a_run_hides_no_later_instruction() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    std::fs::write(
        &file,
        "FROM nginx:1 AS build\nRUN echo \"use <<EOF to start a heredoc\"\nCOPY --from=quay.io/a/copied:1 /a /b\nFROM quay.io/a/final:1\n",
    )
    .unwrap();
    let (code, rows) = scan_json(dir.path(), &["Dockerfile"]);
    assert_eq!(code, Some(0));
    let got = located(&rows);
    assert_eq!(
        got,
        [
            ("FROM line 1", "nginx:1"),
            ("COPY --from line 3", "quay.io/a/copied:1"),
            ("FROM line 4", "quay.io/a/final:1"),
        ]
    );
    assert_eq!(
        watch_list(dir.path(), &["Dockerfile"]),
        [
            "docker.io/library/nginx:1",
            "quay.io/a/copied:1",
            "quay.io/a/final:1"
        ]
    );
    let out = ptc("rewrite", &["--write", "Dockerfile"], dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!(
            "FROM {REGISTRY}/docker-hub/library/nginx:1 AS build\nRUN echo \"use <<EOF to start a heredoc\"\nCOPY --from={REGISTRY}/quay/a/copied:1 /a /b\nFROM {REGISTRY}/quay/a/final:1\n"
        )
    );
}

#[test]
fn a_file_named_twice_or_through_a_link_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.txt");
    std::fs::write(&file, "quay.io/a/b:1\n").unwrap();
    std::os::unix::fs::symlink("a.txt", dir.path().join("link.txt")).unwrap();
    let abs = file.to_str().unwrap();
    let out = ptc(
        "rewrite",
        &["a.txt", "./a.txt", abs, "link.txt"],
        dir.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let patch = text(&out.stdout);
    assert_eq!(patch.matches("+++ ").count(), 1, "one section: {patch}");
    assert!(
        patch.starts_with("--- a/a.txt\n"),
        "first spelling: {patch}"
    );
    // git apply refuses a patch with two sections for one file.
    run_tool(dir.path(), "git", &["apply", "-"], patch.as_bytes());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{REGISTRY}/quay/a/b:1\n")
    );
    // A directory and a file inside it: the file counted once.
    let sub = dir.path().join("t1");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(
        sub.join("pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: quay.io/p/p:1\n",
    )
    .unwrap();
    std::fs::write(sub.join("images.txt"), "ghcr.io/o/r:1\n").unwrap();
    let out = ptc("scan", &["t1", "t1/pod.yaml"], dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("2 images in 2 files:"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn bitnami_global_registry_applies_to_bitnami_splits_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hr.yaml"),
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: app\nspec:\n  valuesFrom: []\n  values:\n    global:\n      imageRegistry: quay.io\n    image:\n      registry: docker.io\n      repository: bitnami/redis\n      tag: 7.2.4\n    controller:\n      image:\n        registry: registry.k8s.io\n        image: ingress-nginx/controller\n        tag: v1.10.0\n    app:\n      image:\n        repository: ghcr.io/o/app\n        tag: \"2.0\"\n",
    )
    .unwrap();
    let (code, rows) = scan_json(dir.path(), &["hr.yaml"]);
    assert_eq!(code, Some(0), "{rows:#?}");
    let got = located(&rows);
    assert_eq!(
        got,
        [
            (
                "HelmRelease/app values.image",
                "quay.io/bitnami/redis:7.2.4"
            ),
            (
                "HelmRelease/app values.controller.image",
                "registry.k8s.io/ingress-nginx/controller:v1.10.0"
            ),
            // A repository naming its own host is not Bitnami's (whose never do): a
            // `helm create`-style chart composes repository:tag and reads no global.
            ("HelmRelease/app values.app.image", "ghcr.io/o/app:2.0"),
        ],
        "valuesFrom: [] gives no note either"
    );
}

#[test]
fn quoted_dockerfile_references_are_scanned_unquoted_and_refused_for_the_true_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    let written = "FROM \"quay.io/q/from:1\"\nCOPY --from=\"quay.io/q/quoted:1\" /a /b\n";
    std::fs::write(&file, written).unwrap();
    let (code, rows) = scan_json(dir.path(), &["Dockerfile"]);
    assert_eq!(code, Some(0));
    let images: Vec<&str> = rows.iter().map(|r| field(r, "image")).collect();
    assert_eq!(images, ["quay.io/q/from:1", "quay.io/q/quoted:1"]);
    let out = ptc("rewrite", &["--write", "Dockerfile"], dir.path(), None);
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.matches("written with quotes or escapes").count(),
        2,
        "{stderr}"
    );
    assert!(!stderr.contains("ARG"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);
}

#[test]
fn onbuild_copy_from_and_tagless_image_maps_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    std::fs::write(
        &file,
        "FROM alpine:3.20\nONBUILD COPY --from=ghcr.io/o/onb:2 /x /y\n",
    )
    .unwrap();
    let (code, rows) = scan_json(dir.path(), &["Dockerfile"]);
    assert_eq!(code, Some(0));
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (field(r, "location"), field(r, "image"), field(r, "class")))
        .collect();
    assert_eq!(
        got,
        [
            ("FROM line 1", "alpine:3.20", "routable"),
            ("ONBUILD COPY --from line 2", "ghcr.io/o/onb:2", "routable"),
        ]
    );
    let out = ptc("rewrite", &["--write", "Dockerfile"], dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!(
            "FROM {REGISTRY}/docker-hub/library/alpine:3.20\nONBUILD COPY --from={REGISTRY}/ghcr/o/onb:2 /x /y\n"
        )
    );
    std::fs::write(
        dir.path().join("hr.yaml"),
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\nspec:\n  values:\n    image:\n      repository: nginx\n      pullPolicy: IfNotPresent\n    sidecar:\n      image: quay.io/s/s:1\n",
    )
    .unwrap();
    let (code, rows) = scan_json(dir.path(), &["hr.yaml"]);
    assert_eq!(code, Some(0));
    let tagless = rows
        .iter()
        .find(|r| field(r, "location") == "HelmRelease/web values.image")
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(field(tagless, "image"), "nginx");
    assert!(
        field(tagless, "note").contains("the chart's default tag applies"),
        "{tagless:#?}"
    );
    assert_eq!(watch_list(dir.path(), &["hr.yaml"]), ["quay.io/s/s:1"]);
}

#[test]
fn an_onbuild_run_heredoc_body_is_not_read_as_instructions() {
    // BuildKit `parser.go` `canContainHeredoc`: ONBUILD is unwrapped before the heredoc check.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    let written = "FROM alpine\nONBUILD RUN <<EOF\nRUN cat <<NEVER\nFROM quay.io/phantom/x:1\nEOF\nFROM quay.io/real/image:1\n";
    std::fs::write(&file, written).unwrap();
    let (code, rows) = scan_json(dir.path(), &["Dockerfile"]);
    assert_eq!(code, Some(0));
    let got = located(&rows);
    assert_eq!(
        got,
        [
            ("FROM line 1", "alpine"),
            ("FROM line 6", "quay.io/real/image:1")
        ]
    );
    let out = ptc("rewrite", &["--write", "Dockerfile"], dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!(
            "FROM {REGISTRY}/docker-hub/library/alpine\nONBUILD RUN <<EOF\nRUN cat <<NEVER\nFROM quay.io/phantom/x:1\nEOF\nFROM {REGISTRY}/quay/real/image:1\n"
        )
    );
}

#[test]
fn run_mount_from_is_read_as_csv_with_any_key_case_and_quotes_removed() {
    // BuildKit `extractBuilderFlags` removes the flag's quotes; `parseMount` splits it as
    // CSV (`csvvalue.Fields`) and lowercases keys.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    let written = "FROM alpine:3.20\nRUN --mount=type=bind,\"from=quay.io/m/csv:1\",target=/x true\nRUN --mount=type=bind,FROM=quay.io/m/upper:1 true\nRUN --mount=\"type=bind,from=quay.io/m/q:1\" true\nRUN --mount='type=bind,\"from=quay.io/m/c2:1\",target=/y' true\n";
    std::fs::write(&file, written).unwrap();
    let (code, rows) = scan_json(dir.path(), &["Dockerfile"]);
    assert_eq!(code, Some(0));
    let got = located(&rows);
    assert_eq!(
        got,
        [
            ("FROM line 1", "alpine:3.20"),
            ("RUN --mount line 2", "quay.io/m/csv:1"),
            ("RUN --mount line 3", "quay.io/m/upper:1"),
            ("RUN --mount line 4", "quay.io/m/q:1"),
            ("RUN --mount line 5", "quay.io/m/c2:1"),
        ]
    );
    let q = &rows[3];
    assert_eq!(
        field(q, "note"),
        "written --mount=\"type=bind,from=quay.io/m/q:1\": quotes and escapes removed as BuildKit does",
        "{q:#?}"
    );
    let out = ptc("rewrite", &["--write", "Dockerfile"], dir.path(), None);
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.matches("written with quotes or escapes").count(),
        3,
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        written
            .replace(
                "FROM alpine:3.20",
                &format!("FROM {REGISTRY}/docker-hub/library/alpine:3.20")
            )
            .replace(
                "FROM=quay.io/m/upper:1",
                &format!("FROM={REGISTRY}/quay/m/upper:1")
            )
    );
}

#[test]
fn bitnami_global_registry_applies_without_a_registry_key_and_is_noted() {
    // bitnami common `_images.tpl`: `default .imageRoot.registry ((.global).imageRegistry)`.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hr.yaml"),
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: db\nspec:\n  values:\n    global:\n      imageRegistry: quay.io\n    image:\n      repository: bitnamilegacy/postgresql\n      tag: 16.4.0\n    controller:\n      image:\n        registry: registry.k8s.io\n        image: ingress-nginx/controller\n        tag: v1.10.0\n",
    )
    .unwrap();
    let (code, rows) = scan_json(dir.path(), &["hr.yaml"]);
    assert_eq!(code, Some(0), "{rows:#?}");
    let got = located(&rows);
    assert_eq!(
        got,
        [
            (
                "HelmRelease/db values.image",
                "quay.io/bitnamilegacy/postgresql:16.4.0"
            ),
            (
                "HelmRelease/db values.controller.image",
                "registry.k8s.io/ingress-nginx/controller:v1.10.0"
            ),
        ]
    );
    assert!(
        field(&rows[0], "note").contains("global.imageRegistry"),
        "{:#?}",
        rows[0]
    );
    assert_eq!(field(&rows[1], "note"), "", "{:#?}", rows[1]);
}

#[test]
fn a_tagless_image_map_shows_its_cached_uri_without_a_tag() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hr.yaml"),
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\nspec:\n  values:\n    image:\n      repository: quay.io/o/web\n      pullPolicy: IfNotPresent\n",
    )
    .unwrap();
    let (code, rows) = scan_json(dir.path(), &["hr.yaml"]);
    assert_eq!(code, Some(0));
    assert_eq!(field(&rows[0], "uri"), format!("{REGISTRY}/quay/o/web"));
    assert_eq!(field(&rows[0], "upstream"), "quay.io/o/web");
    let out = ptc("scan", &["hr.yaml"], dir.path(), None);
    let table = text(&out.stdout);
    assert!(!table.contains(":latest"), "{table}");
    assert!(
        table.contains(&format!("{REGISTRY}/quay/o/web (")),
        "{table}"
    );
}

#[test]
fn a_hard_link_beside_its_target_is_read_once_and_a_named_walked_link_is_no_problem() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("t");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("a-images.txt"), "quay.io/a/b:1\n").unwrap();
    std::fs::hard_link(sub.join("a-images.txt"), sub.join("b-images.txt")).unwrap();
    let out = ptc("rewrite", &["t"], dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let patch = text(&out.stdout);
    assert_eq!(patch.matches("+++ ").count(), 1, "one section: {patch}");
    assert!(patch.starts_with("--- a/t/a-images.txt\n"), "{patch}");
    run_tool(dir.path(), "git", &["apply", "-"], patch.as_bytes());
    // A symbolic link the walk does not follow (a problem), named on the command line too:
    // read there, and no problem row.
    let other = dir.path().join("o");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("real-images.txt"), "ghcr.io/o/r:1\n").unwrap();
    std::os::unix::fs::symlink("real-images.txt", other.join("link-images.txt")).unwrap();
    let (code, rows) = scan_json(dir.path(), &["o", "o/link-images.txt"]);
    assert_eq!(code, Some(0), "{rows:#?}");
    assert!(
        rows.iter().all(|r| field(r, "problem").is_empty()),
        "{rows:#?}"
    );
    let files: Vec<&str> = rows.iter().map(|r| field(r, "file")).collect();
    assert_eq!(files, ["o/real-images.txt"], "{rows:#?}");
}

#[test]
fn patch_names_with_bidi_overrides_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["rtl\u{202e}txt.Dockerfile", "ok.Dockerfile"] {
        std::fs::write(dir.path().join(name), "FROM quay.io/a/b:1\n").unwrap();
    }
    let out = ptc(
        "rewrite",
        &["rtl\u{202e}txt.Dockerfile", "ok.Dockerfile"],
        dir.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "rtl\\u{202e}txt.Dockerfile: a file name with whitespace, control or formatting"
        ),
        "{stderr}"
    );
    let patch = text(&out.stdout);
    assert!(!patch.contains('\u{202e}'), "{patch}");
    assert!(
        patch.starts_with("--- a/ok.Dockerfile\n+++ b/ok.Dockerfile\n"),
        "{patch}"
    );
}
