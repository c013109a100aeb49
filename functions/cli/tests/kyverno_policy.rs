//! `ptc map --format kyverno` checked with tools we did not write:
//! - the policy validates against the v1 `openAPIV3Schema` of Kyverno's ClusterPolicy CRD
//!   (tests/fixtures/kyverno, Kyverno v1.19.0) with Python's `jsonschema`, made strict as the
//!   API server's strict field validation is; a broken policy is refused by the same check;
//! - its rewrite, run the way Kyverno's engine runs a mutate rule's `foreach` entries
//!   ([`Kyverno`] below, each step citing Kyverno's source), with a real JMESPath engine (the
//!   `jmespath` crate) and Kyverno's `regex_match` / `regex_replace_all` written as
//!   `pkg/engine/jmespath/functions.go` does on the `regex` crate (RE2 syntax and leftmost-first
//!   semantics, `$name` / `${name}` expansion as Go's `Regexp.Expand`), gives for every mapping
//!   case what `ptc map --output json` says: the cached URI for a routable reference, the
//!   reference unchanged for every other class.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output};

use jmespath::{Context, ErrorReason, JmespathError, Rcvar, Runtime, Variable};
use ptc_tests::{Stack, repo_root};
use serde_json::{Value, json};

mod common;
use common::ptc_offline as ptc;

const HOST: &str = "123456789012.dkr.ecr.eu-west-2.amazonaws.com";
const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// The seeds' rules, GitLab, a ROOT rule, an ECR-to-ECR rule and a registry this version does
/// not know (with a port).
const RULES: [&str; 8] = [
    "docker-hub=registry-1.docker.io",
    "quay=quay.io",
    "k8s=registry.k8s.io",
    "ghcr=ghcr.io",
    "gitlab=registry.gitlab.com",
    "ROOT=public.ecr.aws",
    "ecr=210987654321.dkr.ecr.us-west-2.amazonaws.com",
    "local=registry.example.com:5000",
];

fn rule_args() -> Vec<String> {
    let mut args = Vec::new();
    for rule in RULES {
        args.push("--rule".to_owned());
        args.push(rule.to_owned());
    }
    args.push("--registry".to_owned());
    args.push(HOST.to_owned());
    args
}

fn with(args: &[String], more: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = more.iter().map(|s| s.to_string()).collect();
    all.splice(1..1, args.iter().cloned());
    all
}

fn run(args: &[String]) -> Output {
    ptc(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The policy for `refs` (exit 0 unless a reference is invalid).
fn policy_text(routing: &[String], refs: &[String]) -> String {
    let mut args = with(routing, &["map", "--format", "kyverno"]);
    args.extend(refs.iter().cloned());
    let out = run(&args);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("apiVersion: kyverno.io/v1"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// `ptc map --output json` for `refs`: what the rewrite must give for each reference.
fn expected(routing: &[String], refs: &[String]) -> Vec<String> {
    let mut args = with(routing, &["map", "--output", "json"]);
    args.extend(refs.iter().cloned());
    expected_from(&run(&args), refs)
}

/// From `ptc map --output json`'s answer: the cached URI of each routable reference (without
/// the implicit `:latest` when the reference gives neither tag nor digest: the policy keeps
/// the reference's spelling), every other reference as it is.
fn expected_from(out: &Output, refs: &[String]) -> Vec<String> {
    let mappings: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(mappings.len(), refs.len());
    refs.iter()
        .zip(&mappings)
        .map(|(reference, m)| {
            assert_eq!(m["reference"], json!(reference));
            if m["class"] != "routable" {
                return reference.clone();
            }
            let uri = m["uri"].as_str().unwrap();
            let implicit_latest =
                m["tag"] == "latest" && m["digest"].is_null() && !reference.ends_with(":latest");
            match implicit_latest {
                true => uri.strip_suffix(":latest").unwrap().to_owned(),
                false => uri.to_owned(),
            }
        })
        .collect()
}

/// The mapping cases: shared/src/reference.rs and shared/src/rules.rs tests' references, Docker
/// Hub's spellings, digests, ports, the ROOT and ECR-to-ECR rules, names ECR cannot hold,
/// lengths at ECR's limits, and what no rule routes.
fn cases() -> Vec<String> {
    let s512 = format!("sha512:{}", "ab".repeat(64));
    let mut cases: Vec<String> = [
        "nginx",
        "nginx:1.25",
        "nats:2.10.12-alpine",
        "library/nginx:1.25",
        "docker.io/nginx",
        "docker.io/library/nginx:1.25",
        "index.docker.io/library/nginx:1.25",
        "registry-1.docker.io/grafana/grafana:10.4.1",
        "registry.hub.docker.com/grafana/grafana",
        "grafana/grafana:10.4.1",
        "docker.io:443/nginx:1.25",
        "DOCKER.IO/nginx:1.25",
        "a/b/c:1",
        "a_b.c/d-e:_tag",
        "docker.io/foo.bar/baz:1",
        "localhost:5000",
        "localhost/app:1",
        "localhost:5000/team/app",
        "a__b/c-----d/e.f:_tag",
        "Nginx",
        "nginx:",
        "quay.io/prometheus/prometheus:v2.51.0",
        "Quay.io/prometheus/prometheus",
        "quay.io:443/jetstack/cert-manager-controller:v1.14.4",
        "quay.io:8443/x/y",
        "quay.io/x",
        "quay.io/eclipse/che--centos--mysql-57-centos7",
        "registry.k8s.io/pause:3.9",
        "registry.gitlab.com/gitlab-org/gitlab-runner:alpine",
        "public.ecr.aws/eks-distro/kubernetes/pause:3.9",
        "public.ecr.aws/x",
        "210987654321.dkr.ecr.us-west-2.amazonaws.com/app/web:2",
        "registry.example.com:5000/team/app:1",
        "registry.example.com/team/app:1",
        "gcr.io/distroless/static",
        "us-docker.pkg.dev/project/repo/image:1",
        "mcr.microsoft.com/dotnet/runtime:8.0",
        "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.18.0",
        "example.com/team/app:1",
    ]
    .map(str::to_owned)
    .to_vec();
    cases.extend([
        format!("nginx@{D}"),
        format!("nginx:1.25@{D}"),
        format!("bitnami/redis-cluster:7.2@{D}"),
        format!("ghcr.io/fluxcd/source-controller:v1.2.4@{D}"),
        format!("registry.k8s.io/ingress-nginx/controller:v1.10.0@{s512}"),
        format!("{HOST}/docker-hub/library/nginx:1.25"),
        format!("{HOST}/other/app:1"),
        // docker-hub/library/<name> at 256 characters, then one more.
        "n".repeat(237),
        "n".repeat(238),
        // quay/<path> at 256 characters, then one more.
        format!("quay.io/{}/x", "q".repeat(249)),
        format!("quay.io/{}/x", "q".repeat(250)),
        format!("nginx:{}", "t".repeat(128)),
        format!("nginx:{}", "t".repeat(129)),
    ]);
    cases
}

// --- Kyverno's engine, the parts the policy uses -------------------------------------------

/// Kyverno's custom JMESPath functions the policy uses, as `pkg/engine/jmespath/functions.go`
/// (v1.19.0) declares and writes them: `regex_match(string, string|number) bool` is
/// `regexp.Match(regex, []byte(src))` (unanchored); `regex_replace_all(string, string|number,
/// string|number) string` is `regexp.Compile(regex)` then `ReplaceAll(src, repl)`, which
/// expands `$name` / `${name}` in `repl` (the regex crate's `replace_all` with a `&str`
/// replacement expands the same syntax). Numbers are read as text (`ifaceToString`).
fn runtime() -> Runtime {
    use jmespath::functions::{ArgumentType as T, CustomFunction, Signature};
    let text = || T::Union(vec![T::String, T::Number]);
    let mut rt = Runtime::new();
    rt.register_builtin_functions();
    rt.register_function(
        "regex_match",
        Box::new(CustomFunction::new(
            Signature::new(vec![T::String, text()], None),
            Box::new(|args: &[Rcvar], ctx: &mut Context<'_>| {
                let re = compile(ctx, &as_text(&args[0]))?;
                Ok(Rcvar::new(Variable::Bool(re.is_match(&as_text(&args[1])))))
            }),
        )),
    );
    rt.register_function(
        "regex_replace_all",
        Box::new(CustomFunction::new(
            Signature::new(vec![T::String, text(), text()], None),
            Box::new(|args: &[Rcvar], ctx: &mut Context<'_>| {
                let re = compile(ctx, &as_text(&args[0]))?;
                let (src, repl) = (as_text(&args[1]), as_text(&args[2]));
                Ok(Rcvar::new(Variable::String(
                    re.replace_all(&src, repl.as_str()).into_owned(),
                )))
            }),
        )),
    );
    rt
}

/// A string or number argument (the signature checked the type) as text.
fn as_text(value: &Rcvar) -> String {
    match &**value {
        Variable::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn compile(ctx: &Context<'_>, pattern: &str) -> Result<regex::Regex, JmespathError> {
    regex::Regex::new(pattern).map_err(|e| {
        JmespathError::from_ctx(ctx, ErrorReason::Parse(format!("regex {pattern}: {e}")))
    })
}

/// A mutate rule's `foreach` entries applied as Kyverno v1.19.0 applies them.
struct Kyverno {
    rt: Runtime,
    /// `RegexVariables` of `pkg/engine/variables/regex/vars.go`: a `{{...}}` may hold single
    /// `{...}` pairs.
    variables: regex::Regex,
}

impl Kyverno {
    fn new() -> Self {
        Self {
            rt: runtime(),
            variables: regex::Regex::new(r"(^|[^\\])(\{\{(?:\{[^{}]*\}|[^{}])*\}\})").unwrap(),
        }
    }

    fn query(&self, expression: &str, data: &Value) -> Value {
        let expr = self
            .rt
            .compile(expression.trim())
            .unwrap_or_else(|e| panic!("JMESPath {expression}: {e}"));
        let result = expr
            .search(Variable::from_json(&data.to_string()).unwrap())
            .unwrap_or_else(|e| panic!("JMESPath {expression}: {e}"));
        serde_json::to_value(&*result).unwrap()
    }

    /// `variables.SubstituteAll` on one string: a string that is one `{{ expr }}` becomes the
    /// expression's value (any type); otherwise each `{{ expr }}` is replaced by its text.
    fn substitute_string(&self, text: &str, ctx: &Value) -> Value {
        let found: Vec<_> = self
            .variables
            .captures_iter(text)
            .map(|c| c.get(2).unwrap())
            .collect();
        if found.len() == 1 && found[0].as_str() == text {
            let inner = &text[2..text.len() - 2];
            return self.query(inner, ctx);
        }
        let mut out = text.to_owned();
        for m in found.iter().rev() {
            let inner = &m.as_str()[2..m.as_str().len() - 2];
            let value = match self.query(inner, ctx) {
                Value::String(s) => s,
                other => other.to_string(),
            };
            out.replace_range(m.range(), &value);
        }
        Value::String(out)
    }

    fn substitute(&self, value: &Value, ctx: &Value) -> Value {
        match value {
            Value::String(s) => self.substitute_string(s, ctx),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.substitute(v, ctx)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.substitute(v, ctx)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Conditions of `pkg/engine/variables/operator`: the operators the policy uses.
    fn condition(&self, condition: &Value, ctx: &Value) -> bool {
        let key = self.substitute(&condition["key"], ctx);
        let value = self.substitute(&condition["value"], ctx);
        let number = |v: &Value| {
            v.as_f64()
                .unwrap_or_else(|| panic!("not a number: {v} in {condition}"))
        };
        match condition["operator"].as_str().unwrap() {
            "Equals" => key == value,
            "NotEquals" => key != value,
            "LessThanOrEquals" => number(&key) <= number(&value),
            "GreaterThanOrEquals" => number(&key) >= number(&value),
            other => panic!("operator {other} is not one this check knows"),
        }
    }

    /// `AnyAllConditions`: every `all` and, when there are any, one of `any`.
    fn preconditions(&self, block: &Value, ctx: &Value) -> bool {
        if block.is_null() {
            return true;
        }
        let all = block["all"].as_array().cloned().unwrap_or_default();
        let any = block["any"].as_array().cloned().unwrap_or_default();
        all.iter().all(|c| self.condition(c, ctx))
            && (any.is_empty() || any.iter().any(|c| self.condition(c, ctx)))
    }

    /// Whether `rule` matches `kind` (`Pod`, `Pod/ephemeralcontainers`) and `operation`: its
    /// `match.any[].resources` (`pkg/engine/utils/match.go`: operations first, then kinds; a
    /// `Pod` kind also matches the ephemeralcontainers subresource).
    fn matches(rule: &Value, kind: &str, operation: &str) -> bool {
        rule["match"]["any"].as_array().unwrap().iter().any(|any| {
            let resources = &any["resources"];
            let operation_ok = resources["operations"]
                .as_array()
                .is_none_or(|ops| ops.iter().any(|o| o == operation));
            let kind_ok = resources["kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == kind || (k == "Pod" && kind == "Pod/ephemeralcontainers"));
            operation_ok && kind_ok
        })
    }

    /// Apply every rule of `policy` that matches, in order, to `object` (with `old_object`
    /// for an UPDATE). `mutateForEach` of `pkg/engine/handlers/mutation/common.go`: each
    /// foreach entry's list is evaluated on the resource as patched so far; a nil element is
    /// skipped; per element the entry's `context` is loaded, then its `preconditions`, then its
    /// patch applied.
    fn mutate(
        &self,
        policy: &Value,
        kind: &str,
        operation: &str,
        object: &Value,
        old_object: &Value,
    ) -> Value {
        let mut resource = object.clone();
        for rule in policy["spec"]["rules"].as_array().unwrap() {
            if !Self::matches(rule, kind, operation) {
                continue;
            }
            assert!(
                rule["context"].is_null(),
                "rule-level context is not emulated"
            );
            for foreach in rule["mutate"]["foreach"].as_array().unwrap() {
                let request =
                    json!({"operation": operation, "object": resource, "oldObject": old_object});
                let list = self.query(
                    foreach["list"].as_str().unwrap(),
                    &json!({"request": request}),
                );
                let elements = match list {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                for (index, element) in elements.iter().enumerate() {
                    if element.is_null() {
                        continue;
                    }
                    let mut ctx = json!({
                        "request": {"operation": operation, "object": resource, "oldObject": old_object},
                        "element": element,
                        "elementIndex": index,
                    });
                    for entry in foreach["context"].as_array().cloned().unwrap_or_default() {
                        let variable = &entry["variable"];
                        assert!(
                            variable["jmesPath"].is_null(),
                            "jmesPath variables are not emulated"
                        );
                        let value = self.substitute(&variable["value"], &ctx);
                        ctx[entry["name"].as_str().unwrap()] = value;
                    }
                    if !self.preconditions(&foreach["preconditions"], &ctx) {
                        continue;
                    }
                    let patch = self.substitute(&foreach["patchStrategicMerge"], &ctx);
                    strategic_merge(&mut resource, &patch);
                }
            }
        }
        resource
    }
}

/// A strategic merge patch as Kubernetes applies one to a Pod for the fields the policy sets:
/// maps merge, and the container lists merge by `name` (`patchMergeKey: name` on
/// `containers`, `initContainers`, `ephemeralContainers` in k8s.io/api core/v1 types.go). A
/// patch naming a container the Pod does not have would add one: that is a failure here.
fn strategic_merge(target: &mut Value, patch: &Value) {
    let (Value::Object(target), Value::Object(patch)) = (target, patch) else {
        panic!("patch and target must be objects");
    };
    for (key, value) in patch {
        match value {
            Value::Object(_) => {
                strategic_merge(target.entry(key.clone()).or_insert(json!({})), value);
            }
            Value::Array(items)
                if ["containers", "initContainers", "ephemeralContainers"]
                    .contains(&key.as_str()) =>
            {
                let list = target
                    .get_mut(key)
                    .and_then(Value::as_array_mut)
                    .unwrap_or_else(|| panic!("the patch sets {key}, which the Pod does not have"));
                for item in items {
                    let existing = list
                        .iter_mut()
                        .find(|c| c["name"] == item["name"])
                        .unwrap_or_else(|| {
                            panic!("the patch would add container {}", item["name"])
                        });
                    strategic_merge(existing, item);
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

fn parse_policy(text: &str) -> Value {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn containers(prefix: &str, images: &[String]) -> Value {
    Value::Array(
        images
            .iter()
            .enumerate()
            .map(|(i, image)| json!({"name": format!("{prefix}{i}"), "image": image}))
            .collect(),
    )
}

fn images(pod: &Value, list: &str) -> Vec<String> {
    pod["spec"][list]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["image"].as_str().unwrap().to_owned())
        .collect()
}

fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/kyverno").join(name)
}

/// `validate_policy.py` (Python jsonschema against the CRD fixture) on `text`.
fn validate(text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let python = repo_root().join(".venv-infra/bin/python");
    Command::new(&python)
        .arg(fixture("validate_policy.py"))
        .arg(fixture("kyverno.io_clusterpolicies.v1.yaml"))
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/setup.sh creates it)", python.display()))
}

fn assert_rewrites(kyverno: &Kyverno, policy: &Value, refs: &[String], want: &[String]) {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "team"},
        "spec": {"containers": containers("c", refs), "initContainers": containers("i", refs)},
    });
    let out = kyverno.mutate(policy, "Pod", "CREATE", &pod, &Value::Null);
    for list in ["containers", "initContainers"] {
        let got = images(&out, list);
        let wrong: Vec<String> = refs
            .iter()
            .zip(got.iter().zip(want))
            .filter(|(_, (got, want))| got != want)
            .map(|(r, (got, want))| format!("{list}: {r}: policy {got}, ptc map {want}"))
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
    // Idempotent: the policy on its own output changes nothing.
    let again = kyverno.mutate(policy, "Pod", "CREATE", &out, &Value::Null);
    assert_eq!(again, out);
    // Pod updates are not rewritten (a new image would restart the container).
    assert_eq!(kyverno.mutate(policy, "Pod", "UPDATE", &pod, &pod), pod);
}

#[test]
fn the_policy_validates_against_the_kyverno_crd_and_a_broken_one_does_not() {
    let text = policy_text(
        &rule_args(),
        &["nginx:1.25".to_owned(), "gcr.io/x/y".to_owned()],
    );
    let out = validate(&text);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A misspelled field (strict field validation) and a wrong type are refused.
    for (broken, error) in [
        (
            text.replacen("        preconditions:\n", "        preconditons:\n", 1),
            "'preconditons' was unexpected",
        ),
        (
            text.replacen("\n  background: false\n", "\n  background: \"no\"\n", 1),
            "'no' is not of type 'boolean'",
        ),
        (
            text.replacen(
                "    failurePolicy: Ignore\n",
                "    failurePolicy: Sometimes\n",
                1,
            ),
            "'Sometimes' is not one of",
        ),
    ] {
        assert_ne!(broken, text, "the break must change the policy");
        let out = validate(&broken);
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(said.contains(error), "{said}");
    }
}

#[test]
fn the_rewrite_gives_what_ptc_map_says_for_every_case() {
    let routing = rule_args();
    let refs = cases();
    let want = expected(&routing, &refs);
    // Not vacuous: most cases route, and every kind of class is left alone somewhere.
    let routed = refs.iter().zip(&want).filter(|(r, w)| r != w).count();
    assert!(
        routed >= 30 && refs.len() - routed >= 20,
        "{routed} of {}",
        refs.len()
    );
    assert_eq!(want[1], format!("{HOST}/docker-hub/library/nginx:1.25"));
    let policy = parse_policy(&policy_text(&routing, &refs));
    assert_rewrites(&Kyverno::new(), &policy, &refs, &want);
}

#[test]
fn ephemeral_containers_are_rewritten_when_added_and_never_changed_after() {
    let routing = rule_args();
    let refs = cases();
    let want = expected(&routing, &refs);
    let policy = parse_policy(&policy_text(&routing, &[]));
    let kyverno = Kyverno::new();
    // One ephemeral container from before the policy (left as it is: the API server refuses
    // changes to it), then every case added by `kubectl debug`.
    let old = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app"},
        "spec": {
            "containers": [{"name": "app", "image": "nginx:1.25"}],
            "ephemeralContainers": [{"name": "debugger-old", "image": "busybox:1.36"}],
        },
    });
    let mut new = old.clone();
    let added = containers("debugger-", &refs);
    new["spec"]["ephemeralContainers"]
        .as_array_mut()
        .unwrap()
        .extend(added.as_array().unwrap().iter().cloned());
    let out = kyverno.mutate(&policy, "Pod/ephemeralcontainers", "UPDATE", &new, &old);
    let got = images(&out, "ephemeralContainers");
    assert_eq!(got[0], "busybox:1.36");
    assert_eq!(&got[1..], &want[..]);
    // The Pod's own containers are not touched by this request.
    assert_eq!(out["spec"]["containers"], old["spec"]["containers"]);
}

/// Rules read from the registry (DescribePullThroughCacheRules on the stack): ECR-to-ECR
/// rules with upstream repository prefixes, nested (`team/sub` before `team`), route only
/// under their prefix, the first that covers a path winning.
#[tokio::test(flavor = "multi_thread")]
async fn upstream_prefix_rules_from_the_registry_match_only_under_their_prefix() {
    let stack = Stack::start();
    let upstream = "111122223333.dkr.ecr.eu-west-1.amazonaws.com";
    let role = format!("arn:aws:iam::{}:role/ptc-ecr-upstream", stack.info.account);
    let ecr = aws_sdk_ecr::Client::new(&stack.sdk_config().await);
    for (prefix, upstream_prefix) in [("a-sub", "team/sub"), ("b-team", "team")] {
        ecr.create_pull_through_cache_rule()
            .ecr_repository_prefix(prefix)
            .upstream_registry_url(upstream)
            .custom_role_arn(&role)
            .upstream_repository_prefix(upstream_prefix)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create rule {prefix}: {e:?}"));
    }
    let routing = vec!["--registry".to_owned(), HOST.to_owned()];
    let refs: Vec<String> = [
        "team/api/server:3",
        "team/sub/tool:1",
        "team/sub",
        "team",
        "teamx/y:1",
        "other/x:1",
        "team/a__b:1",
        "Team/api:1",
    ]
    .iter()
    .map(|path| format!("{upstream}/{path}"))
    .chain([
        format!("{upstream}:443/team/api@{D}"),
        "nginx:1.25".to_owned(),
    ])
    .collect();
    let run_stack = |args: &[String]| {
        common::ptc(
            &stack,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            &[],
        )
    };
    let mut args = with(&routing, &["map", "--output", "json"]);
    args.extend(refs.iter().cloned());
    let want = expected_from(&run_stack(&args), &refs);
    assert_eq!(want[0], format!("{HOST}/b-team/api/server:3"));
    assert_eq!(want[1], format!("{HOST}/a-sub/tool:1"));
    assert_eq!(&want[3..6], &refs[3..6]);
    let mut args = with(&routing, &["map", "--format", "kyverno"]);
    args.extend(refs.iter().cloned());
    let out = run_stack(&args);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("apiVersion: kyverno.io/v1"), "{text}");
    let out = validate(&text);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_rewrites(&Kyverno::new(), &parse_policy(&text), &refs, &want);
}
