//! The house's shape, checked: ptc-core's modules import each other in one direction only
//! (no circle), the domain imports neither an SDK nor the settings, the ports no SDK, the
//! fakes only behind their feature, and no function's release build enables them.
//!
//! Read from the source and from `cargo tree` (Cargo's own resolution of features for a
//! release build), not from a list kept by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_owned()
}

/// Every `.rs` file under `dir`, with its code up to its unit tests (`#[cfg(test)] mod`),
/// comments left out (a doc link to an adapter is not an import).
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = match text.find("#[cfg(test)]\nmod tests") {
                    Some(i) => &text[..i],
                    None => &text[..],
                };
                let code: String = code
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                out.push((path, code));
            }
        }
    }
    out.sort();
    out
}

/// The top-level module of a file of `shared/src` (`aws/ecr.rs` is in `aws`); `None` for
/// `lib.rs`, which only declares and re-exports.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    match first.strip_suffix(".rs") {
        Some("lib") => None,
        Some(name) => Some(name.to_owned()),
        None => Some(first),
    }
}

/// Module -> the other top-level modules its code names (`crate::x`).
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = workspace().join("shared/src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, code) in sources(&src) {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let edges = graph.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            // Not a path inside another crate's name (`ptc_core::crate::` cannot occur, but
            // `some_crate::` can).
            if i > 0 {
                let before = code.as_bytes()[i - 1];
                if before.is_ascii_alphanumeric() || before == b'_' {
                    continue;
                }
            }
            let rest = &code[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != module && name.chars().next().unwrap().is_lowercase() {
                edges.insert(name);
            }
        }
    }
    graph
}

/// A circle in the graph, as the modules along it, if there is one.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_core_has_no_import_circle() {
    let graph = import_graph();
    assert!(
        graph.contains_key("config") && graph.contains_key("aws"),
        "{graph:?}"
    );
    assert_eq!(find_circle(&graph), None, "ptc-core imports: {graph:#?}");
    // The finder finds one when there is one.
    let mut with_circle = graph.clone();
    with_circle
        .entry("rules".into())
        .or_default()
        .insert("config".into());
    assert!(find_circle(&with_circle).is_some());
}

#[test]
fn the_domain_and_the_ports_import_no_sdk() {
    let src = workspace().join("shared/src");
    let domain = [
        "reference",
        "rules",
        "platform",
        "secret",
        "deadline",
        "net",
        "access",
    ];
    let ports = ["ecr", "secrets", "objects", "metrics", "error"];
    let sdk = ["aws_sdk_", "aws_config", "aws_smithy", "aws_lambda_events"];
    let adapters_and_settings = ["crate::aws", "crate::config", "crate::fakes", "reqwest"];
    let mut seen = BTreeSet::new();
    for (file, code) in sources(&src) {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let is_domain = domain.contains(&module.as_str());
        if !is_domain && !ports.contains(&module.as_str()) {
            continue;
        }
        seen.insert(module.clone());
        for word in sdk {
            assert!(
                !code.contains(word),
                "{}: the {} names {word}",
                file.display(),
                if is_domain { "domain" } else { "port" }
            );
        }
        for word in adapters_and_settings {
            assert!(
                !code.contains(word),
                "{}: the {} names {word}",
                file.display(),
                if is_domain { "domain" } else { "port" }
            );
        }
    }
    assert_eq!(seen.len(), domain.len() + ports.len(), "{seen:?}");
}

#[test]
fn the_fakes_are_behind_their_feature() {
    let lib = std::fs::read_to_string(workspace().join("shared/src/lib.rs")).unwrap();
    assert!(
        lib.contains("#[cfg(any(test, feature = \"fakes\"))]\npub mod fakes;"),
        "ptc-core's lib.rs must declare `fakes` behind its feature"
    );
    // Nothing but the fakes themselves names them outside tests.
    let src = workspace().join("shared/src");
    for (file, code) in sources(&src) {
        if module_of(&src, &file).as_deref() == Some("fakes") || file.ends_with("lib.rs") {
            continue;
        }
        assert!(
            !code.contains("crate::fakes") && !code.contains("Fake"),
            "{} names a fake outside its tests",
            file.display()
        );
    }
}

/// `cargo tree` of the normal dependencies (what a release build links), each package with
/// its enabled features, for the packages `select` names (none: the default members).
fn normal_tree(select: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .current_dir(workspace())
        .args(["tree", "--offline", "--locked"])
        .args(select)
        .args(["-e", "normal", "-f", "{p} features=[{f}]"])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree {select:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Cargo's resolution of a release build of each function (normal dependencies only, as
/// `cargo build --release -p <function>` and cargo-lambda resolve them): ptc-core without
/// the `fakes` feature.
#[test]
fn no_function_release_build_has_the_fakes() {
    for function in [
        "validate-rules",
        "prewarm",
        "lifecycle-fixer",
        "health-metrics",
        "ptc-cli",
    ] {
        let tree = normal_tree(&["-p", function]);
        let core: Vec<&str> = tree.lines().filter(|l| l.contains("ptc-core v")).collect();
        assert!(!core.is_empty(), "{function} depends on ptc-core: {tree}");
        for line in core {
            assert!(
                !line.contains("fakes"),
                "{function}'s release build enables ptc-core's fakes: {line}"
            );
        }
    }
}

/// `sam build` builds each function with `cargo lambda build --release --bin <function>` at
/// the workspace root (aws-lambda-builders' `RustCargoLambdaBuildAction`): no `-p`, so Cargo
/// selects the workspace's default members and unifies their features. Those must be the
/// functions alone: no fakes (the test crate enables them) and no SSO or credential_process
/// providers (the CLI's) in a deployed binary.
#[test]
fn the_deploy_build_has_no_fakes_and_no_operator_credential_providers() {
    let tree = normal_tree(&[]);
    for function in [
        "validate-rules",
        "prewarm",
        "lifecycle-fixer",
        "health-metrics",
    ] {
        assert!(
            tree.lines()
                .any(|l| l.starts_with(&format!("{function} v"))),
            "{function} is a default member: {tree}"
        );
    }
    assert!(
        !tree
            .lines()
            .any(|l| l.starts_with("ptc-cli v") || l.starts_with("ptc-tests v")),
        "the CLI and the test crate are not default members"
    );
    let core: Vec<&str> = tree.lines().filter(|l| l.contains("ptc-core v")).collect();
    assert!(!core.is_empty(), "{tree}");
    for line in core {
        assert!(
            !line.contains("fakes"),
            "the deploy build enables the fakes: {line}"
        );
    }
    for line in tree.lines().filter(|l| l.contains("aws-config v")) {
        assert!(
            !line.contains("sso") && !line.contains("credentials-process"),
            "the deploy build carries the CLI's credential providers: {line}"
        );
    }
}
