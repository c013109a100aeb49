//! validate-rules end to end on the local stack: real rules, real secrets, an upstream that
//! really refuses a wrong password, an upstream taken down, drift, metrics read back.

use ptc_core::aws::SdkEcr;
use ptc_core::aws::SdkMetrics;
use ptc_core::aws::SdkSecrets;
use ptc_core::config::ExpectedRule;
use ptc_tests::{Stack, unique};
use serde_json::json;
use validate_rules::event::Trigger;
use validate_rules::{Deps, Options, run};

const DOCKER: &str = "registry-1.docker.io";

async fn metric_sum(
    stack: &Stack,
    namespace: &str,
    name: &str,
    prefix: Option<&str>,
) -> Option<f64> {
    let dims: Vec<(&str, &str)> = prefix.map(|p| ("Prefix", p)).into_iter().collect();
    stack
        .metric(
            namespace,
            name,
            &dims,
            aws_sdk_cloudwatch::types::Statistic::Maximum,
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_finding_on_the_stack_with_metrics_read_back() {
    let stack = Stack::shared();
    let id = unique();
    let up = stack.upstream(DOCKER);
    let good = stack
        .create_secret(
            &format!("ecr-pullthroughcache/good-{id}"),
            json!({"username": up.username, "accessToken": up.password}),
        )
        .await;
    let wrong_password = stack
        .create_secret(
            &format!("ecr-pullthroughcache/pw-{id}"),
            json!({"username": up.username, "accessToken": "revoked-token"}),
        )
        .await;
    let wrong_keys = stack
        .create_secret(
            &format!("ecr-pullthroughcache/keys-{id}"),
            json!({"user": up.username, "password": up.password}),
        )
        .await;
    let doomed = stack
        .create_secret(
            &format!("ecr-pullthroughcache/gone-{id}"),
            json!({"username": "u", "accessToken": "t"}),
        )
        .await;
    // A working token stored 120 days ago: the secret itself was created (and last
    // changed) just now, so only the value's version date shows its age.
    let old_token = stack
        .create_secret(
            &format!("ecr-pullthroughcache/old-{id}"),
            json!({"username": up.username, "accessToken": up.password}),
        )
        .await;
    let aged = stack
        .control(
            "secrets/age",
            json!({"name": old_token, "value_days_ago": 120}),
        )
        .await;
    assert_eq!(aged["changed"], 1, "{aged}");
    stack.create_rule("hub-good", DOCKER, Some(&good)).await;
    stack.create_rule("hub-old", DOCKER, Some(&old_token)).await;
    stack
        .create_rule("hub-password", DOCKER, Some(&wrong_password))
        .await;
    stack
        .create_rule("hub-keys", DOCKER, Some(&wrong_keys))
        .await;
    stack.create_rule("hub-gone", DOCKER, Some(&doomed)).await;
    stack.create_rule("quay", "quay.io", None).await;
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    aws_sdk_secretsmanager::Client::new(&stack.sdk_config().await)
        .delete_secret()
        .secret_id(&doomed)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();

    let sdk = stack.sdk_config().await;
    let ecr = SdkEcr::new(aws_sdk_ecr::Client::new(&sdk));
    let secrets = SdkSecrets::new(aws_sdk_secretsmanager::Client::new(&sdk));
    let metrics = SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let deps = Deps {
        ecr: &ecr,
        secrets: &secrets,
        metrics: &metrics,
        templates: &ecr,
    };
    let namespace = format!("PtcValidate{id}");
    let options = Options {
        namespace: namespace.clone(),
        expected: vec![
            ExpectedRule::parse("hub-good=registry-1.docker.io+credential").unwrap(),
            ExpectedRule::parse("quay=quay.io").unwrap(),
            ExpectedRule::parse("k8s=registry.k8s.io+credential").unwrap(),
            ExpectedRule::parse("ghcr=ghcr.io+credential").unwrap(),
        ],
        credential_max_age_days: 90,
        rule_prefixes: Vec::new(),
        concurrency: 8,
        publish_metrics: true,
        consumers: Default::default(),
        pull_time_exclusions: Vec::new(),
        caller_exclusion: None,
    };

    stack
        .control("upstreams/quay.io", json!({"down": true}))
        .await;
    let report = run(
        &deps,
        &options,
        &Trigger::All {
            source: "test".into(),
        },
        time::OffsetDateTime::now_utc(),
    )
    .await;
    stack
        .control("upstreams/quay.io", json!({"down": false}))
        .await;

    let by = |p: &str| {
        report
            .rules
            .iter()
            .find(|r| r.prefix == p)
            .unwrap_or_else(|| panic!("rule {p} in {report:#?}"))
    };
    let codes = |p: &str| by(p).findings.iter().map(|f| f.code).collect::<Vec<_>>();
    assert!(by("hub-good").valid, "{:?}", by("hub-good"));
    assert!(by("hub-good").credential_age_days.unwrap() < 1.0);
    assert!(by("hub-good").findings.is_empty());
    assert!(by("hub-old").valid, "an old token is a warning only");
    assert_eq!(codes("hub-old"), ["credential-age"]);
    assert_eq!(
        by("hub-old").credential_age_days.map(f64::round),
        Some(120.0)
    );
    assert!(!by("hub-password").valid);
    assert!(
        by("hub-password")
            .failure
            .as_deref()
            .unwrap()
            .contains("credentials"),
        "the upstream really refused it"
    );
    assert_eq!(codes("hub-keys"), ["ecr-validation-failed", "secret-keys"]);
    assert!(
        codes("hub-gone").contains(&"secret-not-found"),
        "{:?}",
        codes("hub-gone")
    );
    assert!(!by("quay").valid, "quay is down");
    assert!(
        by("quay")
            .failure
            .as_deref()
            .unwrap()
            .contains("Unable to reach")
    );
    assert_eq!(codes("k8s"), ["drift-credential"]);
    assert_eq!(
        report
            .missing
            .iter()
            .map(|m| m.prefix.as_str())
            .collect::<Vec<_>>(),
        ["ghcr"]
    );
    assert_eq!(
        report.unexpected,
        ["hub-gone", "hub-keys", "hub-old", "hub-password"]
    );
    assert_eq!(report.summary.invalid, 5);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(
        !serde_json::to_string(&report)
            .unwrap()
            .contains(up.password.as_deref().unwrap())
    );

    assert_eq!(
        metric_sum(stack, &namespace, "RuleValid", Some("hub-good")).await,
        Some(1.0)
    );
    assert_eq!(
        metric_sum(stack, &namespace, "RuleValid", Some("quay")).await,
        Some(0.0)
    );
    assert_eq!(
        metric_sum(stack, &namespace, "RuleValid", Some("ghcr")).await,
        Some(0.0)
    );
    assert_eq!(
        metric_sum(stack, &namespace, "RulesInvalid", None).await,
        Some(5.0)
    );
    assert_eq!(
        metric_sum(stack, &namespace, "RulesMissing", None).await,
        Some(1.0)
    );
    assert!(
        metric_sum(stack, &namespace, "CredentialAgeDays", Some("hub-good"))
            .await
            .is_some_and(|days| days < 1.0)
    );
    assert_eq!(
        metric_sum(stack, &namespace, "CredentialAgeDays", Some("hub-old"))
            .await
            .map(f64::round),
        Some(120.0)
    );

    // CloudWatch refusing the metrics does not hide the results.
    stack.control("cloudwatch", json!({"fail_next": 10})).await;
    let again = run(
        &deps,
        &options,
        &Trigger::Prefixes {
            source: "test".into(),
            prefixes: vec!["hub-good".into()],
        },
        time::OffsetDateTime::now_utc(),
    )
    .await;
    stack.control("cloudwatch", json!({"fail_next": 0})).await;
    assert!(again.rules[0].valid);
    assert_eq!(again.metrics_published, 0);
    assert!(
        again.errors[0].contains("PutMetricData"),
        "{:?}",
        again.errors
    );
}
