//! The template's EventBridge rules, matched against real payloads by an implementation of
//! EventBridge matching that is not ours: moto's event-pattern engine. Each payload must
//! reach exactly the functions that handle it, and near-misses must reach none.
//!
//! `tests/stack/event_routes.py rules` reads the rules from the SAM-transformed template
//! (every `AWS::Events::Rule` with an `EventPattern`, and the function it targets);
//! `event_routes.py match` says which functions each event reaches. Schedules
//! (`ScheduleV2`, EventBridge Scheduler) are not pattern rules and are not part of this.
//!
//! The payloads: every fixture under `functions/*/tests/fixtures/` (a new fixture fails
//! [`every_fixture_is_in_the_table`] until it is added to [`FIXTURES`]), samples from the AWS
//! documentation in `tests/fixtures/events/` (sources in its `SOURCES.md`), and near-misses
//! made by changing one field of those payloads, so they keep the real shape.
//!
//! Matching semantics: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html
//! and https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html.
//! For the operators the template uses (exact strings, `anything-but` with one string, nested
//! `detail` fields) moto and the documentation agree, including on a missing field (see
//! the `sync-status` case below). Where moto is known to differ (it does not look inside
//! arrays of objects, and compares `1` equal to `true`) the template uses neither.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use ptc_tests::repo_root;
use serde_json::{Value, json};

const VALIDATE: &str = "ValidateRulesFunction";
const PREWARM: &str = "PrewarmFunction";
const FIXER: &str = "LifecycleFixerFunction";
const HEALTH: &str = "HealthMetricsFunction";

/// Every fixture file and the functions it reaches.
const FIXTURES: &[(&str, &[&str])] = &[
    // CloudTrail API calls that change a pull-through cache rule: validate-rules only.
    (
        "functions/validate-rules/tests/fixtures/cloudtrail-create-rule.json",
        &[VALIDATE],
    ),
    (
        "functions/validate-rules/tests/fixtures/cloudtrail-update-rule.json",
        &[VALIDATE],
    ),
    (
        "functions/validate-rules/tests/fixtures/cloudtrail-delete-rule.json",
        &[VALIDATE],
    ),
    // A sync that did not succeed: validate-rules (anything-but SUCCESS) and health-metrics
    // (every sync event); not lifecycle-fixer.
    (
        "functions/validate-rules/tests/fixtures/ptc-action-failure.json",
        &[VALIDATE, HEALTH],
    ),
    (
        "functions/health-metrics/tests/fixtures/ptc-action-failure.json",
        &[VALIDATE, HEALTH],
    ),
    // A successful sync: lifecycle-fixer and health-metrics; not validate-rules.
    (
        "functions/health-metrics/tests/fixtures/ptc-action-success.json",
        &[FIXER, HEALTH],
    ),
    (
        "functions/lifecycle-fixer/tests/fixtures/ptc-action-success.json",
        &[FIXER, HEALTH],
    ),
    // A repository created, by the cache (service event) or by an API call: lifecycle-fixer
    // only (a CreateRepository call is not a rule change: not validate-rules).
    (
        "functions/lifecycle-fixer/tests/fixtures/cloudtrail-service-create-repository.json",
        &[FIXER],
    ),
    (
        "functions/lifecycle-fixer/tests/fixtures/cloudtrail-api-create-repository.json",
        &[FIXER],
    ),
    // The scheduled invocation's payload is not matched by any pattern rule (the schedules
    // invoke the functions directly).
    (
        "functions/validate-rules/tests/fixtures/scheduled-event.json",
        &[],
    ),
    (
        "functions/health-metrics/tests/fixtures/scheduled-event.json",
        &[],
    ),
    // From the AWS documentation (tests/fixtures/events/SOURCES.md).
    (
        "tests/fixtures/events/ecr-pull-through-cache-action.json",
        &[FIXER, HEALTH],
    ),
    (
        "tests/fixtures/events/cloudtrail-api-create-repository-docs.json",
        &[FIXER],
    ),
    // aws.ecr events of other detail-types: none (a FAILED replication is not a sync).
    ("tests/fixtures/events/ecr-image-action-push.json", &[]),
    (
        "tests/fixtures/events/ecr-replication-action-failed.json",
        &[],
    ),
];

struct Case {
    name: String,
    event: Value,
    expected: BTreeSet<String>,
}

fn case(name: impl Into<String>, event: Value, expected: &[&str]) -> Case {
    Case {
        name: name.into(),
        event,
        expected: expected.iter().map(|s| s.to_string()).collect(),
    }
}

fn load(rel: &str) -> Value {
    let path = repo_root().join(rel);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `rel`'s payload with the fields at the JSON pointers replaced. Every field must already be
/// there: a near-miss changes a real payload, it does not invent one.
fn with(rel: &str, changes: &[(&str, Value)]) -> Value {
    let mut event = load(rel);
    for (pointer, value) in changes {
        let field = event
            .pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{rel} has no {pointer}"));
        *field = value.clone();
    }
    event
}

const API_CREATE_REPOSITORY: &str =
    "functions/lifecycle-fixer/tests/fixtures/cloudtrail-api-create-repository.json";
const SERVICE_CREATE_REPOSITORY: &str =
    "functions/lifecycle-fixer/tests/fixtures/cloudtrail-service-create-repository.json";
const DOCS_CREATE_REPOSITORY: &str =
    "tests/fixtures/events/cloudtrail-api-create-repository-docs.json";
const CREATE_RULE: &str = "functions/validate-rules/tests/fixtures/cloudtrail-create-rule.json";
const SYNC_FAILURE: &str = "functions/validate-rules/tests/fixtures/ptc-action-failure.json";
const SYNC_SUCCESS: &str = "functions/lifecycle-fixer/tests/fixtures/ptc-action-success.json";

/// Payloads one field away from one a function handles, and where they must go.
fn near_misses() -> Vec<Case> {
    let mut cases = vec![
        // Other ECR API calls on repositories: nobody.
        case(
            "near-miss: DeleteRepository API call",
            with(
                API_CREATE_REPOSITORY,
                &[
                    ("/detail/eventName", json!("DeleteRepository")),
                    (
                        "/detail/requestParameters",
                        json!({"repositoryName": "quay/prometheus/prometheus", "force": false}),
                    ),
                ],
            ),
            &[],
        ),
        // As in the ECR user guide's CloudTrail example of an image push.
        case(
            "near-miss: PutImage API call",
            with(
                DOCS_CREATE_REPOSITORY,
                &[
                    ("/detail/eventName", json!("PutImage")),
                    (
                        "/detail/requestParameters",
                        json!({"repositoryName": "testrepo", "imageTag": "latest", "registryId": "123456789012",
                               "imageManifest": "{\"schemaVersion\": 2}"}),
                    ),
                    (
                        "/detail/responseElements",
                        json!({"image": {"repositoryName": "testrepo", "registryId": "123456789012",
                               "imageId": {"imageTag": "latest", "imageDigest": "sha256:98c9f51ad524d8ae9bf4db69cd3e720ba92373ec265f5c390ffb21bb0c277941"}}}),
                    ),
                ],
            ),
            &[],
        ),
        // The rule call validate-rules itself makes must not invoke it again.
        case(
            "near-miss: ValidatePullThroughCacheRule API call",
            with(
                CREATE_RULE,
                &[
                    ("/detail/eventName", json!("ValidatePullThroughCacheRule")),
                    (
                        "/detail/requestParameters",
                        json!({"ecrRepositoryPrefix": "docker-hub"}),
                    ),
                ],
            ),
            &[],
        ),
        // A sync status other than SUCCESS: validate-rules and health-metrics, never
        // lifecycle-fixer.
        case(
            "near-miss: sync-status FAILED",
            with(SYNC_FAILURE, &[("/detail/sync-status", json!("FAILED"))]),
            &[VALIDATE, HEALTH],
        ),
        // anything-but matches only a field that is there: EventBridge steps through the
        // event's fields, and only `exists: false` matches a missing one
        // (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html,
        // https://github.com/aws/event-ruler#anything-but-matching). moto agrees.
        case(
            "near-miss: sync event without sync-status",
            {
                let mut event = load(SYNC_FAILURE);
                event["detail"]
                    .as_object_mut()
                    .expect("detail is an object")
                    .remove("sync-status")
                    .expect("the fixture has a sync-status");
                event
            },
            &[HEALTH],
        ),
        // ECR Public's API (its own eventSource) with the private registry's event names.
        case(
            "near-miss: CreatePullThroughCacheRule with eventSource ecr-public.amazonaws.com",
            with(
                CREATE_RULE,
                &[("/detail/eventSource", json!("ecr-public.amazonaws.com"))],
            ),
            &[],
        ),
        case(
            "near-miss: CreateRepository API call with eventSource ecr-public.amazonaws.com",
            with(
                API_CREATE_REPOSITORY,
                &[("/detail/eventSource", json!("ecr-public.amazonaws.com"))],
            ),
            &[],
        ),
        case(
            "near-miss: CreateRepository service event with eventSource ecr-public.amazonaws.com",
            with(
                SERVICE_CREATE_REPOSITORY,
                &[("/detail/eventSource", json!("ecr-public.amazonaws.com"))],
            ),
            &[],
        ),
        // EventBridge Scheduler sends the schedule's Input ("{}"), which no pattern matches.
        case("near-miss: the schedules' input {}", json!({}), &[]),
        // CloudTrail records failed calls too; the patterns do not look at errorCode, so a
        // refused CreateRepository still reaches lifecycle-fixer (which then finds nothing
        // new to fix). Asserted so that a change here is a decision.
        case(
            "current behaviour: failed CreateRepository API call (errorCode)",
            {
                let mut event = with(
                    API_CREATE_REPOSITORY,
                    &[("/detail/responseElements", Value::Null)],
                );
                let detail = event["detail"]
                    .as_object_mut()
                    .expect("detail is an object");
                detail.insert(
                    "errorCode".into(),
                    json!("RepositoryAlreadyExistsException"),
                );
                detail.insert(
                    "errorMessage".into(),
                    json!("The repository with name 'quay/prometheus/prometheus' already exists in the registry with id '123456789012'"),
                );
                event
            },
            &[FIXER],
        ),
    ];
    // The calls lifecycle-fixer makes on the repositories it fixes must not invoke it again.
    for call in [
        "PutLifecyclePolicy",
        "SetRepositoryPolicy",
        "TagResource",
        "PutImageScanningConfiguration",
        "CreateRepositoryCreationTemplate",
        "UpdateRepositoryCreationTemplate",
    ] {
        cases.push(case(
            format!("near-miss: {call} API call (lifecycle-fixer's own)"),
            with(API_CREATE_REPOSITORY, &[("/detail/eventName", json!(call))]),
            &[],
        ));
    }
    // Another service's events with the same detail-type and detail: nobody.
    for rel in [
        CREATE_RULE,
        API_CREATE_REPOSITORY,
        SERVICE_CREATE_REPOSITORY,
        SYNC_FAILURE,
        SYNC_SUCCESS,
    ] {
        cases.push(case(
            format!("near-miss: {rel} with source aws.ec2"),
            with(rel, &[("/source", json!("aws.ec2"))]),
            &[],
        ));
    }
    cases
}

fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = FIXTURES
        .iter()
        .map(|(rel, expected)| case(*rel, load(rel), expected))
        .collect();
    cases.extend(near_misses());
    cases
}

fn python(venv: &str) -> PathBuf {
    let path = repo_root().join(venv).join("bin/python");
    assert!(
        path.exists(),
        "{} not found: run scripts/setup.sh (the README's test command does)",
        path.display()
    );
    path
}

fn tool() -> PathBuf {
    repo_root().join("tests/stack/event_routes.py")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run event_routes.py");
    assert!(
        out.status.success(),
        "{cmd:?} (exit {:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The event rules of the SAM-transformed template, as `event_routes.py rules` prints them.
fn rules(template: &Path) -> Value {
    let out = run(Command::new(python(".venv-infra"))
        .arg(tool())
        .arg("rules")
        .arg(template)
        .env("AWS_DEFAULT_REGION", "us-east-1"));
    serde_json::from_str(&out).expect("rules JSON")
}

/// For each case, the functions the template's rules route it to, by moto's matching.
fn routes(template: &Path, cases: &[Case]) -> Vec<BTreeSet<String>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules_path = dir.path().join("rules.json");
    std::fs::write(&rules_path, rules(template).to_string()).expect("write rules");
    let files: Vec<PathBuf> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let path = dir.path().join(format!("event-{i:03}.json"));
            std::fs::write(&path, c.event.to_string()).expect("write event");
            path
        })
        .collect();
    let out = run(Command::new(python(".venv"))
        .arg(tool())
        .arg("match")
        .arg(&rules_path)
        .args(&files));
    let routed: BTreeMap<String, BTreeSet<String>> =
        serde_json::from_str(&out).expect("routes JSON");
    files
        .iter()
        .map(|f| {
            routed
                .get(f.to_str().expect("UTF-8 path"))
                .unwrap_or_else(|| panic!("no route for {}", f.display()))
                .clone()
        })
        .collect()
}

/// One line per case routed otherwise than the table says.
fn mismatches(template: &Path) -> Vec<String> {
    let cases = cases();
    let routed = routes(template, &cases);
    cases
        .iter()
        .zip(routed)
        .filter(|(c, got)| &c.expected != got)
        .map(|(c, got)| format!("{}: expected {:?}, reached {:?}", c.name, c.expected, got))
        .collect()
}

fn template() -> PathBuf {
    repo_root().join("infra/template.yaml")
}

#[test]
fn every_fixture_is_in_the_table() {
    let mut found = BTreeSet::new();
    let root = repo_root();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("functions"))
        .expect("functions/")
        .map(|e| e.expect("dir entry").path().join("tests/fixtures"))
        .collect();
    dirs.push(root.join("tests/fixtures/events"));
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        for entry in std::fs::read_dir(dir).expect("fixtures dir") {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                let rel = path.strip_prefix(&root).expect("under the repo");
                found.insert(rel.to_str().expect("UTF-8 path").to_owned());
            }
        }
    }
    let listed: BTreeSet<String> = FIXTURES.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(
        found, listed,
        "the fixture files on disk and the FIXTURES table differ: add each new fixture with the functions it must reach"
    );
}

#[test]
fn every_payload_reaches_exactly_the_functions_that_handle_it() {
    let wrong = mismatches(&template());
    assert!(
        wrong.is_empty(),
        "infra/template.yaml routes these events wrongly:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_rule_is_enabled_on_the_default_bus_and_may_invoke_its_function() {
    let rules = rules(&template());
    let rules = rules.as_array().expect("a list of rules");
    let mut targeted = BTreeSet::new();
    for rule in rules {
        let name = &rule["rule"];
        // AWS services (and CloudTrail) deliver their events to the default bus only.
        assert_eq!(rule["bus"], "default", "{name} is not on the default bus");
        assert_eq!(rule["state"], "ENABLED", "{name} is not enabled");
        let targets = rule["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{name} targets no function");
        for target in targets {
            assert_eq!(
                target["permitted"], true,
                "{name}: no AWS::Lambda::Permission lets EventBridge invoke {}",
                target["function"]
            );
            targeted.insert(target["function"].as_str().expect("a name").to_owned());
        }
    }
    let expected: BTreeSet<String> = [VALIDATE, FIXER, HEALTH].map(String::from).into();
    assert_eq!(
        targeted, expected,
        "the functions with event rules (prewarm, {PREWARM}, has only its schedule)"
    );
}

/// `text` with the `n`th (0-based) occurrence of `needle` replaced.
fn replace_nth(text: &str, needle: &str, n: usize, with: &str) -> String {
    let (at, _) = text.match_indices(needle).nth(n).unwrap_or_else(|| {
        panic!("infra/template.yaml has no occurrence {n} of {needle:?}: update this mutation")
    });
    format!("{}{with}{}", &text[..at], &text[at + needle.len()..])
}

/// The check can fail: each pattern, broken in a copy of the template, makes the named
/// cases route differently.
#[test]
fn a_broken_pattern_fails_the_check() {
    let original = std::fs::read_to_string(template()).expect("read the template");
    let all = |needle: &str, with: &str| {
        assert!(
            original.contains(needle),
            "infra/template.yaml has no {needle:?}: update this mutation"
        );
        original.replace(needle, with)
    };
    let mutations: Vec<(&str, String, &[&str])> = vec![
        (
            "lifecycle-fixer's CreateRepository misspelt",
            all(
                "eventName: [CreateRepository]",
                "eventName: [CreateRepositoryX]",
            ),
            &[SERVICE_CREATE_REPOSITORY, API_CREATE_REPOSITORY],
        ),
        (
            "validate-rules no longer hears DeletePullThroughCacheRule",
            all(
                "UpdatePullThroughCacheRule, DeletePullThroughCacheRule]",
                "UpdatePullThroughCacheRule]",
            ),
            &["functions/validate-rules/tests/fixtures/cloudtrail-delete-rule.json"],
        ),
        (
            "validate-rules' anything-but excludes FAILURE instead of SUCCESS",
            all(
                "sync-status: [{anything-but: SUCCESS}]",
                "sync-status: [{anything-but: FAILURE}]",
            ),
            &[SYNC_FAILURE, SYNC_SUCCESS],
        ),
        (
            "lifecycle-fixer waits for a status ECR does not send",
            all("sync-status: [SUCCESS]", "sync-status: [SUCCEEDED]"),
            &[SYNC_SUCCESS],
        ),
        (
            "lifecycle-fixer's API-call rule widened to every Create* call",
            replace_nth(
                &original,
                "eventName: [CreateRepository]",
                1,
                "eventName: [{prefix: Create}]",
            ),
            &[CREATE_RULE],
        ),
        (
            "every rule's source widened to aws.*",
            all("source: [aws.ecr]", "source: [{prefix: aws.}]"),
            &[
                "near-miss: functions/validate-rules/tests/fixtures/cloudtrail-create-rule.json with source aws.ec2",
            ],
        ),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    for (what, text, broken) in mutations {
        assert_ne!(text, original, "{what}: the mutation changed nothing");
        let copy = dir.path().join("template.yaml");
        std::fs::write(&copy, &text).expect("write the mutated template");
        let wrong = mismatches(&copy);
        for name in broken {
            assert!(
                wrong.iter().any(|w| w.starts_with(&format!("{name}: "))),
                "{what}: expected {name} to be routed wrongly; the check reported:\n{}",
                wrong.join("\n")
            );
        }
    }
}
