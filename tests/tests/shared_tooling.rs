//! SharedTooling (issue 17): one cache account, clusters in other accounts pulling through
//! it. On the local stack, whose registry endpoint enforces for another account's token the
//! documented cross-account rules (a first pull needs `ecr:CreateRepository` and
//! `ecr:BatchImportUpstreamImage` in the cache account's registry policy, a new tag the
//! import, a cached pull the repository policy's pull actions; ECR user guide,
//! pull-through-cache-iam.html): consumer account B is refused, `ptc fix`'s sweep (dry run,
//! then fill) plans and adds exactly the product's statements, B's three kinds of pull then
//! succeed, and a foreign statement and a foreign Deny survive.

use lifecycle_fixer::options::Options;
use lifecycle_fixer::{Deps, sweep};
use ptc_core::aws::{SdkEcr, SdkMetrics};
use ptc_tests::{CONSUMER_IN_ORG, Stack};
use serde_json::{Value, json};

async fn calls(stack: &Stack, op: &str) -> u64 {
    stack.read("ecr").await["calls"][op].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_account_pulls_through_the_cache_after_ptc_fix() {
    let stack = Stack::start();
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    stack.create_rule("quay", "quay.io", None).await;
    let sdk = stack.sdk_config().await;
    let ecr_client = aws_sdk_ecr::Client::new(&sdk);
    let cache = &stack.info.account;
    // The cache account's own registry policy: a replication grant of another team, and a
    // Deny of imports into quay/ (another prefix than the one B pulls from).
    let foreign = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "ReplicationFromProd", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
         "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
         "Resource": format!("arn:aws:ecr:{}:{cache}:repository/*", stack.info.region)},
        {"Sid": "NoImportsIntoQuay", "Effect": "Deny", "Principal": "*",
         "Action": "ecr:BatchImportUpstreamImage",
         "Resource": format!("arn:aws:ecr:{}:{cache}:repository/quay/*", stack.info.region)}
    ]});
    ecr_client
        .put_registry_policy()
        .policy_text(foreign.to_string())
        .send()
        .await
        .unwrap();

    // B, a cluster account, with the identity policy `ptc iam consumer-policy` describes.
    let b = stack.consumer(CONSUMER_IN_ORG).await;
    let refused = stack
        .registry_as(&b)
        .await
        .get_manifest("k8s/pause", "3.9")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("403") && refused.contains("ecr:CreateRepository"),
        "{refused}"
    );

    let mut env: std::collections::BTreeMap<String, String> = stack.env().into_iter().collect();
    env.insert("PTC_PULL_PRINCIPALS".into(), CONSUMER_IN_ORG.into());
    let settings = ptc_core::Settings::from_sources(|k| env.get(k).cloned()).unwrap();
    let ecr = SdkEcr::new(ecr_client.clone());
    let metrics = SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let deps = Deps {
        ecr: &ecr,
        settings: &ecr,
        templates: &ecr,
        metrics: &metrics,
    };
    let options = |mode: &str| {
        let mut env = env.clone();
        env.insert("PTC_FIX_MODE".into(), mode.into());
        let settings = ptc_core::Settings::from_sources(|k| env.get(k).cloned()).unwrap();
        let mut options = Options::from_settings(&settings).unwrap();
        options.publish_metrics = false;
        options
    };
    drop(settings);

    // The dry run plans exactly the product's statement and writes nothing.
    let dry = sweep(&deps, &options("dry-run"), None, "test").await;
    let planned = dry
        .registry_policy
        .clone()
        .expect("the registry policy is checked");
    assert_eq!(
        planned.action.as_deref(),
        Some("would write"),
        "{planned:?}"
    );
    assert_eq!(
        calls(&stack, "PutRegistryPolicy").await,
        1,
        "only the test's own"
    );
    let text: Value = serde_json::from_str(planned.text.as_deref().unwrap()).unwrap();
    let ours: Vec<&Value> = text["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Sid"].as_str().unwrap_or_default().starts_with("Ptc"))
        .collect();
    // One statement per rule prefix: exactly the import actions, to B, on that prefix.
    assert_eq!(ours.len(), 2, "{text}");
    for statement in &ours {
        assert_eq!(
            statement["Principal"]["AWS"],
            json!([format!("arn:aws:iam::{CONSUMER_IN_ORG}:root")])
        );
        assert_eq!(
            statement["Action"],
            json!(["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"])
        );
    }
    let mut resources: Vec<&str> = ours
        .iter()
        .map(|s| s["Resource"].as_str().unwrap())
        .collect();
    resources.sort();
    assert_eq!(
        resources,
        [
            format!("arn:aws:ecr:{}:{cache}:repository/k8s/*", stack.info.region),
            format!(
                "arn:aws:ecr:{}:{cache}:repository/quay/*",
                stack.info.region
            )
        ]
    );
    assert!(
        planned
            .findings
            .iter()
            .any(|f| f.contains("NoImportsIntoQuay")),
        "the foreign Deny is reported: {planned:?}"
    );

    // Fill: the statement added, the templates created with the pull grant.
    let filled = sweep(&deps, &options("fill"), None, "test").await;
    assert!(filled.errors.is_empty(), "{:?}", filled.errors);
    assert_eq!(
        filled.registry_policy.as_ref().unwrap().action.as_deref(),
        Some("written")
    );
    let policy: Value = serde_json::from_str(
        ecr_client
            .get_registry_policy()
            .send()
            .await
            .unwrap()
            .policy_text()
            .unwrap(),
    )
    .unwrap();
    let kept: Vec<&Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["Sid"].as_str().unwrap_or_default().starts_with("Ptc"))
        .collect();
    assert_eq!(
        kept,
        foreign["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>()
    );

    // B's first pull (a new repository), a new tag, and a pull of what is cached.
    let client = stack.registry_as(&b).await;
    client.get_manifest("k8s/pause", "3.9").await.unwrap();
    stack
        .control(
            "upstreams/registry.k8s.io/tag",
            json!({"repository": "pause", "from": "3.9", "to": "3.9-shared"}),
        )
        .await;
    client
        .get_manifest("k8s/pause", "3.9-shared")
        .await
        .unwrap();
    client.get_manifest("k8s/pause", "3.9").await.unwrap();

    // A second run writes nothing.
    let before = calls(&stack, "PutRegistryPolicy").await;
    let again = sweep(&deps, &options("fill"), None, "test").await;
    assert_eq!(again.registry_policy.as_ref().unwrap().action, None);
    assert_eq!(calls(&stack, "PutRegistryPolicy").await, before);
}
