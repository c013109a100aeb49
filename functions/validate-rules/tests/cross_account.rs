//! Cross-account readiness against the stand-in's own refusals: validate-rules' verdicts for a
//! consumer account (ptc-core's evaluator) and what the stack's registry endpoint does when
//! that account really pulls through the cache (the stand-in's independent evaluator,
//! `tests/stack/iam_eval.py`), step by step as the cache side grants more: nothing, the
//! registry policy's import grant, then the creation template's pull grant.

use aws_sdk_ecr::types::RctAppliedFor;
use ptc_core::access::{Consumer, Outcome, PullVerdict};
use ptc_core::aws::{SdkEcr, SdkMetrics, SdkSecrets};
use ptc_core::oci::RegistryClient;
use ptc_tests::{CONSUMER_OUTSIDE_ORG, Stack, unique};
use serde_json::json;
use validate_rules::cross_account::{Consumers, PrefixReadiness};
use validate_rules::event::Trigger;
use validate_rules::{Deps, Options, ValidationReport, run};

const PULL_ACTIONS: [&str; 3] = [
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
];

/// The action the registry endpoint refused, from IAM's message ("... is not authorized to
/// perform: ecr:CreateRepository on resource: ..."), or `None` when the pull went through.
async fn refused_action(registry: &RegistryClient, repository: &str, tag: &str) -> Option<String> {
    let err = registry.get_manifest(repository, tag).await.err()?;
    let text = err.to_string();
    assert!(text.contains("403"), "not a refusal: {text}");
    let action = text
        .split("perform: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no action in the refusal: {text}"));
    Some(action.to_owned())
}

fn k8s(report: &ValidationReport) -> &PrefixReadiness {
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report
        .cross_account
        .iter()
        .find(|p| p.prefix == "k8s")
        .unwrap_or_else(|| panic!("no verdict for k8s: {report:#?}"))
}

/// The evaluator's verdict and the registry's answer agree: allowed and served, or denied
/// and refused for the very action the verdict names.
fn agree(verdict: &PullVerdict, refused: Option<&str>, what: &str) {
    match verdict.outcome {
        Outcome::Allowed => assert_eq!(refused, None, "{what}: allowed by {verdict:?}"),
        Outcome::Denied => assert_eq!(
            refused,
            verdict.action.as_deref(),
            "{what}: the registry refused another action than {verdict:?}"
        ),
        Outcome::Unknown => panic!("{what}: no unknown expected here: {verdict:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verdicts_agree_with_the_registrys_refusals_for_a_consumer_account() {
    let stack = Stack::shared();
    stack.create_rule("k8s", "registry.k8s.io", None).await;
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
    let namespace = format!("PtcCrossAccount{}", unique());
    let options = Options {
        namespace: namespace.clone(),
        expected: Vec::new(),
        credential_max_age_days: 90,
        rule_prefixes: Vec::new(),
        concurrency: 4,
        publish_metrics: true,
        consumers: Consumers {
            default: vec![Consumer::principal(CONSUMER_OUTSIDE_ORG)],
            prefixes: Default::default(),
        },
        pull_time_exclusions: Vec::new(),
        caller_exclusion: None,
    };
    let validate = || async {
        run(
            &deps,
            &options,
            &Trigger::All {
                source: "test".into(),
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
    };
    // The largest CrossAccountReady{k8s} of the last hour: 0 until a run finds it ready.
    let ready = || async {
        stack
            .metric(
                &namespace,
                "CrossAccountReady",
                &[("Prefix", "k8s")],
                aws_sdk_cloudwatch::types::Statistic::Maximum,
            )
            .await
    };
    let role = stack.consumer(CONSUMER_OUTSIDE_ORG).await;
    let registry = stack.registry_as(&role).await;

    // Nothing granted: the first pull is denied, for ecr:CreateRepository, on both sides.
    let report = validate().await;
    let verdicts = &k8s(&report).consumers[0];
    assert_eq!(verdicts.first_pull.outcome, Outcome::Denied);
    let refused = refused_action(&registry, "k8s/pause", "3.9").await;
    assert_eq!(refused.as_deref(), Some("ecr:CreateRepository"));
    agree(
        &verdicts.first_pull,
        refused.as_deref(),
        "first pull, nothing granted",
    );
    assert_eq!(ready().await, Some(0.0));

    // The registry policy's import grant (the product's statement): the first pull imports
    // the image, then the read is refused, for ecr:BatchGetImage: no template gives the new
    // repository a policy.
    let account = &stack.info.account;
    let region = &stack.info.region;
    let client = aws_sdk_ecr::Client::new(&sdk);
    client
        .put_registry_policy()
        .policy_text(
            json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "PtcImportPrincipals", "Effect": "Allow",
                "Principal": {"AWS": [format!("arn:aws:iam::{CONSUMER_OUTSIDE_ORG}:root")]},
                "Action": ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"],
                "Resource": [format!("arn:aws:ecr:{region}:{account}:repository/k8s/*")]
            }]})
            .to_string(),
        )
        .send()
        .await
        .expect("PutRegistryPolicy");
    let report = validate().await;
    let verdicts = &k8s(&report).consumers[0];
    assert_eq!(
        (verdicts.first_pull.outcome, verdicts.new_tag.outcome),
        (Outcome::Allowed, Outcome::Allowed),
        "{verdicts:#?}"
    );
    assert_eq!(verdicts.cached_pull.outcome, Outcome::Denied);
    let refused = refused_action(&registry, "k8s/pause", "3.9").await;
    assert_eq!(
        refused.as_deref(),
        Some("ecr:BatchGetImage"),
        "imported, not readable"
    );
    agree(
        &verdicts.cached_pull,
        refused.as_deref(),
        "cached pull, no template",
    );
    assert_eq!(ready().await, Some(0.0));

    // The template's pull grant: every kind allowed, and every kind served, on a repository
    // the cache creates now (k8s/pause was created without a policy, before the template).
    client
        .create_repository_creation_template()
        .prefix("k8s")
        .applied_for(RctAppliedFor::PullThroughCache)
        .repository_policy(
            json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "PtcPullPrincipals", "Effect": "Allow",
                "Principal": {"AWS": [format!("arn:aws:iam::{CONSUMER_OUTSIDE_ORG}:root")]},
                "Action": PULL_ACTIONS
            }]})
            .to_string(),
        )
        .send()
        .await
        .expect("CreateRepositoryCreationTemplate");
    let report = validate().await;
    let prefix = k8s(&report);
    assert!(prefix.ready, "{prefix:#?}");
    assert_eq!(prefix.template.as_deref(), Some("k8s"));
    let verdicts = &prefix.consumers[0];
    agree(
        &verdicts.first_pull,
        refused_action(&registry, "k8s/coredns/coredns", "v1.11.1")
            .await
            .as_deref(),
        "first pull",
    );
    // A new tag upstream: the same manifest under another tag.
    let upstream = stack.upstream("registry.k8s.io").url.clone();
    let http = reqwest::Client::new();
    let oci = "application/vnd.oci.image.manifest.v1+json";
    let manifest = http
        .get(format!("{upstream}/v2/coredns/coredns/manifests/v1.11.1"))
        .header("Accept", oci)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let tag = format!("v1.11.1-{}", unique());
    let put = http
        .put(format!("{upstream}/v2/coredns/coredns/manifests/{tag}"))
        .header("Content-Type", oci)
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    agree(
        &verdicts.new_tag,
        refused_action(&registry, "k8s/coredns/coredns", &tag)
            .await
            .as_deref(),
        "new tag",
    );
    agree(
        &verdicts.cached_pull,
        refused_action(&registry, "k8s/coredns/coredns", "v1.11.1")
            .await
            .as_deref(),
        "cached pull",
    );
    assert_eq!(ready().await, Some(1.0));
}
