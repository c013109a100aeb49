//! Bad input, generated: the image-reference parser, the routing, the settings loader, the
//! lifecycle policy and manifest parsers, and every function's event parsing get arbitrary
//! and mutated input. No panic, no hang; every rejection is an error value with a message.
//!
//! The test command runs each property for proptest's default number of cases; `make fuzz`
//! runs them far longer (`PROPTEST_CASES`). Failing cases proptest finds are kept in
//! `tests/tests/fuzz.proptest-regressions` and replayed first; `tests/fuzz-corpus/` holds
//! hand-picked inputs (and any crash case found) replayed by `the_corpus_is_handled`.

use std::collections::HashMap;

use proptest::prelude::*;
use ptc_core::config::Settings;
use ptc_core::rules::{PtcRule, RuleSet};
use ptc_core::{Digest, ImageReference};
use ptc_tests::repo_root;
use serde_json::{Value, json};

/// Strings that look like what people type: registry hosts, paths, tags, digests.
fn reference_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("docker.io/".to_owned()),
        Just("index.docker.io/".to_owned()),
        Just("registry-1.docker.io/".to_owned()),
        Just("quay.io/".to_owned()),
        Just("ghcr.io/".to_owned()),
        Just("public.ecr.aws/".to_owned()),
        Just("localhost:5000/".to_owned()),
        Just("library/".to_owned()),
        Just("@sha256:".to_owned()),
        Just(":".to_owned()),
        Just("/".to_owned()),
        Just("@".to_owned()),
        "[a-z0-9]{1,12}",
        "[A-Za-z0-9._-]{1,20}",
        "[0-9a-f]{64}",
        ".{0,6}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|p| p.concat())
}

fn rules() -> RuleSet {
    RuleSet::new(vec![
        PtcRule::new("docker-hub", "registry-1.docker.io").unwrap(),
        PtcRule::new("quay", "quay.io").unwrap(),
        PtcRule::new("k8s", "registry.k8s.io").unwrap(),
        PtcRule::new("ghcr", "ghcr.io").unwrap(),
        PtcRule::new("ecr-public", "public.ecr.aws").unwrap(),
    ])
}

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::from),
        prop_oneof![
            Just("ECR Pull Through Cache Action"),
            Just("AWS API Call via CloudTrail"),
            Just("AWS Service Event via CloudTrail"),
            Just("Scheduled Event"),
            Just("SUCCESS"),
            Just("CreateRepository"),
            Just("CreatePullThroughCacheRule"),
            Just("quay"),
            Just("quay/coreos/etcd"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("detail-type".to_owned()),
                    Just("detail".to_owned()),
                    Just("source".to_owned()),
                    Just("images".to_owned()),
                    Just("eventName".to_owned()),
                    Just("requestParameters".to_owned()),
                    Just("serviceEventDetails".to_owned()),
                    Just("repositoryName".to_owned()),
                    Just("ecrRepositoryPrefix".to_owned()),
                    Just("sync-status".to_owned()),
                    Just("repository-name".to_owned()),
                    Just("ecr-repository-prefix".to_owned()),
                    ".{0,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn fixtures() -> Vec<Value> {
    let mut out = Vec::new();
    for dir in [
        "functions/validate-rules/tests/fixtures",
        "functions/lifecycle-fixer/tests/fixtures",
        "functions/health-metrics/tests/fixtures",
    ] {
        for entry in std::fs::read_dir(repo_root().join(dir)).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            out.push(serde_json::from_str(&text).unwrap());
        }
    }
    out
}

/// Replace the value at a random path of a real event.
fn mutate(mut event: Value, path: &[usize], replacement: Value) -> Value {
    fn at(node: &mut Value, path: &[usize], replacement: Value) {
        let Some((step, rest)) = path.split_first() else {
            *node = replacement;
            return;
        };
        match node {
            Value::Object(map) if !map.is_empty() => {
                let key = map.keys().nth(step % map.len()).unwrap().clone();
                at(map.get_mut(&key).unwrap(), rest, replacement);
            }
            Value::Array(items) if !items.is_empty() => {
                let n = items.len();
                at(&mut items[step % n], rest, replacement);
            }
            _ => *node = replacement,
        }
    }
    at(&mut event, path, replacement);
    event
}

/// Every event parser of every function: an answer or an error with a message.
fn every_event_parser(event: &Value) {
    if let Err(e) = validate_rules::event::parse(event) {
        assert!(!e.to_string().is_empty());
    }
    if let Err(e) = lifecycle_fixer::event::parse(event) {
        assert!(!e.is_empty());
    }
    if let Err(e) = prewarm::parse_event(event) {
        assert!(!e.is_empty());
    }
    if let Err(e) = health_metrics::event::parse(event) {
        assert!(!e.is_empty());
    }
}

fn settings_from(vars: &[(&str, String)]) -> Result<Settings, String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    Settings::from_sources(|name| map.get(name).cloned()).map_err(|e| e.to_string())
}

const VARIABLES: [&str; 25] = [
    "PTC_REGION",
    "PTC_AWS_ENDPOINT_URL",
    "PTC_REGISTRY_ENDPOINT",
    "PTC_UPSTREAM_ENDPOINTS",
    "PTC_METRICS_NAMESPACE",
    "PTC_RULES",
    "PTC_WATCH_LIST",
    "PTC_WATCH_LIST_URL",
    "PTC_PLATFORMS",
    "PTC_CONCURRENCY",
    "PTC_AWS_MAX_ATTEMPTS",
    "PTC_AWS_TIMEOUT_SECS",
    "PTC_HTTP_TIMEOUT_SECS",
    "PTC_LOG_FORMAT",
    "PTC_PREWARM_MODE",
    "PTC_RATELIMIT_FLOOR",
    "PTC_FIX_MODE",
    "PTC_LIFECYCLE_DAYS",
    "PTC_LIFECYCLE_POLICY",
    "PTC_PULL_PRINCIPALS",
    "PTC_PULL_ORG_ID",
    "PTC_REPOSITORY_TAGS",
    "PTC_PREFIX_SETTINGS",
    "PTC_STORAGE_PRICE_GB_MONTH",
    "PTC_ARCHIVE_STORAGE_PRICE_GB_MONTH",
];

proptest! {
    #[test]
    fn references_parse_or_say_why(input in prop_oneof![reference_like(), any::<String>()]) {
        match ImageReference::parse(&input) {
            Ok(reference) => {
                // The normal form is a fixed point: parsing it again gives the same reference.
                let again = ImageReference::parse(&reference.to_string());
                prop_assert_eq!(again.as_ref(), Ok(&reference), "{} -> {}", input, reference);
            }
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
        let _ = Digest::parse(&input);
    }

    #[test]
    fn routing_never_panics_and_round_trips(input in reference_like(), prefix in "[a-z0-9/_.-]{0,32}", url in "[a-z0-9.:/-]{0,40}") {
        let table = rules();
        if let Ok(reference) = ImageReference::parse(&input)
            && let Ok(cached) = table.route(&reference)
        {
            let back = table.upstream_of(&cached.repository);
            prop_assert!(back.is_ok(), "{} -> {} has no way back", input, cached.repository);
            // Every routed name is one ECR can create, by ECR's own pattern (not our check,
            // which routing already applies).
            prop_assert!(
                ecr_name_pattern().is_match(&cached.repository),
                "{} -> {}",
                input,
                cached.repository
            );
        }
        let _ = table.upstream_of(&input);
        let _ = table.rule_for_repository(&input);
        // Rules as the config would build them from arbitrary text.
        match PtcRule::new(&prefix, &url) {
            Ok(rule) => {
                let one = RuleSet::new(vec![rule]);
                if let Ok(reference) = ImageReference::parse(&input) {
                    let _ = one.route(&reference);
                }
            }
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }

    #[test]
    fn settings_load_or_name_the_bad_variable(which in 0..VARIABLES.len(), value in prop_oneof![".{0,60}", reference_like(), "[0-9]{0,25}", "-?[0-9.e+]{0,12}"]) {
        let name = VARIABLES[which];
        if let Err(err) = settings_from(&[(name, value.clone())]) {
            prop_assert!(err.contains(name), "{}={:?}: {}", name, value, err);
        }
    }

    #[test]
    fn settings_files_load_or_say_why(text in prop_oneof![
        ".{0,200}",
        "(concurrency|lifecycle_days|fix_mode|watch_list|metrics_namespace|unused_days) = (\"[a-z ]{0,10}\"|[0-9-]{1,12}|\\[\\]|true)\n{0,3}",
        "\\[prefixes\\.[a-z\"-]{1,10}\\]\n(lifecycle_days = [0-9-]{1,6}|scan_on_push = (true|1)|pull_org_id = \"[a-z0-9-]{0,14}\")",
    ]) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ptc.toml");
        std::fs::write(&path, &text).unwrap();
        if let Err(err) = settings_from(&[("PTC_CONFIG_FILE", path.display().to_string())]) {
            prop_assert!(err.contains("ptc.toml") || err.contains("PTC_"), "{:?}: {}", text, err);
        }
    }

    #[test]
    fn arbitrary_events_are_answered_or_refused(event in json_value()) {
        every_event_parser(&event);
    }

    #[test]
    fn mutated_real_events_are_answered_or_refused(which in 0..16usize, path in prop::collection::vec(any::<usize>(), 0..5), replacement in json_value()) {
        let fixtures = fixtures();
        let event = mutate(fixtures[which % fixtures.len()].clone(), &path, replacement);
        every_event_parser(&event);
    }

    #[test]
    fn lifecycle_policies_and_iam_documents_parse_or_say_why(text in prop_oneof![".{0,120}", json_value().prop_map(|v| json!({"rules": [v]}).to_string())]) {
        if let Err(err) = lifecycle_fixer::policy::LifecyclePolicy::parse(&text) {
            prop_assert!(!err.to_string().is_empty());
        }
        let _ = lifecycle_fixer::iam::canonical(&text);
        let _ = lifecycle_fixer::policy::same_meaning(&text, &text);
    }

    #[test]
    fn manifests_parse_or_say_why(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        json_value().prop_map(|v| json!({"schemaVersion": 2, "manifests": v}).to_string().into_bytes()),
        json_value().prop_map(|v| json!({"schemaVersion": 2, "config": v, "layers": [v]}).to_string().into_bytes()),
    ]) {
        if let Err(err) = ptc_core::oci::Manifest::parse("https://example/v2/x/manifests/y", None, body, None) {
            prop_assert!(!err.to_string().is_empty());
        }
    }

    /// A manifest listing one layer many times, up to past the cap: parsed, or refused
    /// naming the cap; never thousands of descriptors handed on.
    #[test]
    fn manifests_with_many_layers_parse_or_are_refused(count in 0usize..3000) {
        let layer = json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": Digest::sha256_of(b"l").to_string(), "size": 1});
        let body = json!({"schemaVersion": 2, "config": {"mediaType": "c", "digest": Digest::sha256_of(b"c").to_string(), "size": 1}, "layers": vec![layer; count]}).to_string().into_bytes();
        match ptc_core::oci::Manifest::parse("https://example/v2/x/manifests/y", None, body, None) {
            Ok(manifest) => prop_assert!(count < ptc_core::oci::MAX_MANIFEST_DESCRIPTORS, "{count} layers accepted: {:?}", manifest.kind.clone()),
            Err(err) => prop_assert!(count >= ptc_core::oci::MAX_MANIFEST_DESCRIPTORS && err.to_string().contains("layers"), "{count}: {err}"),
        }
    }

    /// Response headers from a hostile registry: a `WWW-Authenticate` challenge, the
    /// rate-limit headers and `Retry-After` are read or ignored, never a panic.
    #[test]
    fn response_headers_are_read_or_ignored(challenge in prop_oneof![".{0,200}", "(realm|service|scope|[a-z]{0,8})=(\"[^\"]{0,30}\"?|[^,]{0,30})(,[ ]?(realm|service|scope)=(\"[^\"]{0,30}\"?|[^,]{0,20})){0,4}"], limit in ".{0,40}", remaining in "[0-9;w=a-z -]{0,40}") {
        let fields = ptc_core::oci::parse_challenge(&challenge);
        prop_assert!(fields.keys().all(|k| k == &k.to_ascii_lowercase()));
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&limit) {
            headers.insert("ratelimit-limit", v);
        }
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&remaining) {
            headers.insert("ratelimit-remaining", v);
        }
        let _ = ptc_core::oci::RateLimit::from_headers(&headers);
        let _ = ptc_core::oci::retry_after(&limit, std::time::SystemTime::now());
        let _ = ptc_core::oci::retry_after(&challenge, std::time::SystemTime::now());
    }
}

/// Hand-picked inputs and any crash case found, replayed through every parser.
#[test]
fn the_corpus_is_handled() {
    let dir = repo_root().join("tests/fuzz-corpus");
    let references = std::fs::read_to_string(dir.join("references.txt")).unwrap();
    let mut count = 0;
    for line in references.lines() {
        let input = line.replace("\\n", "\n").replace("\\t", "\t");
        match ImageReference::parse(&input) {
            Ok(r) => {
                let _ = rules().route(&r);
            }
            Err(e) => assert!(!e.to_string().is_empty(), "{input:?}"),
        }
        let _ = rules().upstream_of(&input);
        count += 1;
    }
    for entry in std::fs::read_dir(dir.join("events")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let event: Value = serde_json::from_str(&text).unwrap();
        every_event_parser(&event);
        count += 1;
    }
    assert!(count >= 40, "the corpus is there ({count} inputs)");
}

/// A huge payload (6 MB of nested detail and a 1 MB string) is refused quickly, not choked on.
#[test]
fn huge_events_are_refused_with_a_message() {
    let big = "x".repeat(1 << 20);
    let mut nested = json!({"leaf": big});
    for _ in 0..64 {
        nested = json!({"detail": nested, "padding": "y".repeat(80_000)});
    }
    let events = [
        json!({"detail-type": "ECR Pull Through Cache Action", "source": "aws.ecr", "detail": nested.clone()}),
        json!({"detail-type": big.clone()}),
        json!({"images": vec![big.clone(); 4]}),
        json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.ecr", "detail": {"eventName": "CreateRepository", "requestParameters": {"repositoryName": big}}}),
    ];
    let started = std::time::Instant::now();
    for event in &events {
        every_event_parser(event);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "bounded time"
    );
    // A prewarm payload of 4 one-megabyte "images" is read, and each entry is refused on its
    // own when the job routes it (the parser only checks the shape).
    let (_, images) = prewarm::parse_event(&events[2]).unwrap();
    assert!(images.iter().all(|i| ImageReference::parse(i).is_err()));
}

/// ECR's `repositoryName` pattern as the API reference writes it (CreateRepository), anchored,
/// run by a regex engine we did not write; with the 2-256 length rule beside it.
fn ecr_name_pattern() -> regex_lite::Regex {
    regex_lite::Regex::new(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
        .unwrap()
}

proptest! {
    #[test]
    fn the_name_check_is_ecr_s_pattern(name in "[a-z0-9._/A-]{0,12}|[a-z0-9]{250,260}") {
        let ours = ptc_core::rules::ecr_repository_name_problem(&name);
        let theirs = ecr_name_pattern().is_match(&name) && (2..=256).contains(&name.len());
        prop_assert_eq!(ours.is_none(), theirs, "{:?}: {:?}", name, ours);
    }
}
