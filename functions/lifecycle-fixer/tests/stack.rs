//! The sweep on the local stack: repositories created by pulls through the cache (with and
//! without a creation template), a hand-set policy, a policy equal in meaning but formatted
//! differently, a repository outside the prefixes, and the write calls counted.

use std::collections::BTreeMap;

use lifecycle_fixer::desired::{Desired, default_lifecycle, pull_policy};
use lifecycle_fixer::plan::Mode;
use lifecycle_fixer::{Deps, Options, sweep};
use ptc_core::aws::SdkEcr;
use ptc_core::aws::SdkMetrics;
use ptc_tests::Stack;

const WRITES: [&str; 4] = [
    "PutLifecyclePolicy",
    "SetRepositoryPolicy",
    "TagResource",
    "PutImageScanningConfiguration",
];

async fn writes(stack: &Stack) -> u64 {
    let calls = stack.read("ecr").await["calls"].clone();
    WRITES
        .iter()
        .map(|op| calls[op].as_u64().unwrap_or(0))
        .sum()
}

fn options(mode: Mode, dry_run: bool) -> Options {
    Options {
        desired: Desired {
            lifecycle_policy: Some(default_lifecycle(30).canonical()),
            repository_policy: pull_policy(&["111122223333".into()], Some("o-exampleorg1")),
            tags: BTreeMap::from([("managed-by".into(), "ptc".into())]),
            scan_on_push: false,
        }
        .into(),
        mode,
        dry_run,
        concurrency: 8,
        namespace: "PtcFixTest".into(),
        publish_metrics: true,
        stop_at: None,
        cache_made: false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sweeps_fix_once_respect_fill_and_write_nothing_the_second_time() {
    let stack = Stack::shared();
    stack.create_rule("quay", "quay.io", None).await;
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    let sdk = stack.sdk_config().await;
    let ecr_client = aws_sdk_ecr::Client::new(&sdk);
    // k8s repositories are born with the template's lifecycle policy, written differently.
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(&default_lifecycle(30).canonical()).unwrap(),
    )
    .unwrap();
    ecr_client
        .create_repository_creation_template()
        .prefix("k8s")
        .applied_for(aws_sdk_ecr::types::RctAppliedFor::PullThroughCache)
        .lifecycle_policy(&pretty)
        .send()
        .await
        .unwrap();
    let (client, _) = stack.registry().await;
    client
        .get_manifest("quay/coreos/etcd", "v3.5.13")
        .await
        .unwrap();
    client
        .get_manifest("quay/argoproj/argocd", "v2.10.0")
        .await
        .unwrap();
    client.get_manifest("k8s/pause", "3.9").await.unwrap();
    ecr_client
        .create_repository()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    // A policy the team set by hand on one repository, next to the product's rule as an
    // older setting wrote it (7 days).
    let hand = format!(
        r#"{{"rules":[{{"rulePriority":1,"description":"set by the team: keep the last ten release images","selection":{{"tagStatus":"tagged","tagPrefixList":["release"],"countType":"imageCountMoreThan","countNumber":10}},"action":{{"type":"expire"}}}},{}]}}"#,
        serde_json::to_string(&default_lifecycle(7).rules[0]).unwrap()
    );
    let hand = hand.as_str();
    ecr_client
        .put_lifecycle_policy()
        .repository_name("quay/argoproj/argocd")
        .lifecycle_policy_text(hand)
        .send()
        .await
        .unwrap();

    // The observed case: a repository policy with a Deny for a contractor role and a push
    // grant for CI, and no grant of the product's yet.
    let team_policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"DenyContractor","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::444455556666:role/contractor"},"Action":"ecr:*"},{"Sid":"CiPush","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/ci"},"Action":["ecr:PutImage","ecr:InitiateLayerUpload","ecr:UploadLayerPart","ecr:CompleteLayerUpload"]}]}"#;
    ecr_client
        .set_repository_policy()
        .repository_name("quay/coreos/etcd")
        .policy_text(team_policy)
        .send()
        .await
        .unwrap();

    let ecr = SdkEcr::new(ecr_client.clone());
    let metrics = SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let deps = Deps {
        ecr: &ecr,
        settings: &ecr,
        templates: &ecr,
        metrics: &metrics,
    };

    let before = writes(stack).await;
    let dry = sweep(&deps, &options(Mode::Enforce, true), None, "test").await;
    assert_eq!(writes(stack).await, before, "a dry run writes nothing");
    assert_eq!(dry.summary.scanned, 3);
    assert_eq!(dry.summary.ignored_outside_prefixes, 1);

    let fill = sweep(&deps, &options(Mode::Fill, false), None, "test").await;
    assert!(fill.errors.is_empty(), "{:?}", fill.errors);
    let by = |name: &str| {
        fill.repositories
            .iter()
            .find(|r| r.repository == name)
            .unwrap()
            .clone()
    };
    let pause = by("k8s/pause");
    assert!(
        !pause
            .changes
            .iter()
            .any(|c| matches!(c, lifecycle_fixer::plan::Change::PutLifecyclePolicy { .. })),
        "the template's policy means the same: no write ({pause:?})"
    );
    assert!(
        by("quay/argoproj/argocd")
            .findings
            .iter()
            .any(|f| f.contains("kept (fill mode)"))
    );
    let kept = ecr_client
        .get_lifecycle_policy()
        .repository_name("quay/argoproj/argocd")
        .send()
        .await
        .unwrap();
    assert_eq!(
        kept.lifecycle_policy_text(),
        Some(hand),
        "fill leaves a hand-set policy"
    );
    assert!(
        ecr_client
            .get_lifecycle_policy()
            .repository_name("team/app")
            .send()
            .await
            .is_err(),
        "outside the prefixes: untouched"
    );
    let tags = ecr_client
        .list_tags_for_resource()
        .resource_arn(format!(
            "arn:aws:ecr:{}:{}:repository/quay/coreos/etcd",
            stack.info.region, stack.info.account
        ))
        .send()
        .await
        .unwrap();
    assert!(tags.tags().iter().any(|t| t.key() == "managed-by"));

    let template = |prefix: &str| {
        fill.templates
            .iter()
            .find(|t| t.prefix == prefix)
            .unwrap()
            .clone()
    };
    // The k8s template's lifecycle policy means the same; it lacks the repository policy.
    assert_eq!(
        template("k8s").status,
        lifecycle_fixer::templates::TemplateStatus::Different
    );
    assert_eq!(
        template("k8s").findings,
        ["the template lacks the product's part as desired: its repository policy"]
    );
    assert_eq!(
        template("quay").status,
        lifecycle_fixer::templates::TemplateStatus::Missing
    );
    assert_eq!(
        template("quay").action.as_deref(),
        Some("created"),
        "fill adds a missing template"
    );
    assert_eq!(template("k8s").action.as_deref(), Some("updated"));

    let after_fill = writes(stack).await;
    let again = sweep(&deps, &options(Mode::Fill, false), None, "test").await;
    assert_eq!(
        writes(stack).await,
        after_fill,
        "a second sweep makes no write call"
    );
    assert_eq!(again.summary.fixed, 0);

    let enforced = sweep(&deps, &options(Mode::Enforce, false), None, "test").await;
    assert!(
        enforced
            .templates
            .iter()
            .all(|t| t.status == lifecycle_fixer::templates::TemplateStatus::Ok),
        "{:?}",
        enforced.templates
    );
    let templates = ecr_client
        .describe_repository_creation_templates()
        .prefixes("quay")
        .send()
        .await
        .unwrap();
    assert_eq!(
        templates.repository_creation_templates().len(),
        1,
        "fill created the missing template"
    );
    let replaced = ecr_client
        .get_lifecycle_policy()
        .repository_name("quay/argoproj/argocd")
        .send()
        .await
        .unwrap();
    // The product's rule now says 30 days; the team's rule is still there, as it was.
    let replaced =
        lifecycle_fixer::policy::LifecyclePolicy::parse(replaced.lifecycle_policy_text().unwrap())
            .unwrap();
    assert_eq!(replaced.rules.len(), 2);
    assert_eq!(
        replaced.rules[0],
        lifecycle_fixer::policy::LifecyclePolicy::parse(hand)
            .unwrap()
            .rules[0]
    );
    assert!(lifecycle_fixer::policy::same_meaning(
        &lifecycle_fixer::policy::LifecyclePolicy {
            rules: replaced.rules[1..].to_vec()
        }
        .canonical(),
        &default_lifecycle(30).canonical()
    ));
    // Fill added the product's grant next to the team's statements; enforce kept them.
    let policy = ecr_client
        .get_repository_policy()
        .repository_name("quay/coreos/etcd")
        .send()
        .await
        .unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy_text().unwrap()).unwrap();
    let sids: Vec<&str> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["Sid"].as_str())
        .collect();
    assert_eq!(
        sids,
        [
            "DenyContractor",
            "CiPush",
            "PtcPullPrincipals",
            "PtcPullOrganization"
        ]
    );
    let after_enforce = writes(stack).await;
    sweep(&deps, &options(Mode::Enforce, false), None, "test").await;
    assert_eq!(
        writes(stack).await,
        after_enforce,
        "enforce is idempotent too"
    );
}

/// Settings per rule prefix, read from the environment as the Lambda reads them, and scan on
/// push only where the registry uses basic scanning. Its own stack: it changes the registry's
/// scanning configuration, which the other test must not see.
#[tokio::test(flavor = "multi_thread")]
async fn prefixes_get_their_own_settings_and_scan_on_push_follows_the_registry() {
    let stack = Stack::start();
    stack.create_rule("quay", "quay.io", None).await;
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    let (client, _) = stack.registry().await;
    client
        .get_manifest("quay/coreos/etcd", "v3.5.13")
        .await
        .unwrap();
    client.get_manifest("k8s/pause", "3.9").await.unwrap();

    let mut env: BTreeMap<String, String> = stack.env().into_iter().collect();
    env.insert("PTC_FIX_MODE".into(), "enforce".into());
    env.insert(
        "PTC_PREFIX_SETTINGS".into(),
        r#"{"k8s": {"lifecycle_days": 7, "scan_on_push": true}}"#.into(),
    );
    let settings = ptc_core::Settings::from_sources(|k| env.get(k).cloned()).unwrap();
    let mut options = Options::from_settings(&settings).unwrap();
    options.publish_metrics = false;

    let sdk = stack.sdk_config().await;
    let ecr_client = aws_sdk_ecr::Client::new(&sdk);
    let ecr = SdkEcr::new(ecr_client.clone());
    let metrics = SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let deps = Deps {
        ecr: &ecr,
        settings: &ecr,
        templates: &ecr,
        metrics: &metrics,
    };

    ecr_client
        .put_registry_scanning_configuration()
        .scan_type(aws_sdk_ecr::types::ScanType::Enhanced)
        .send()
        .await
        .unwrap();
    let enhanced = sweep(&deps, &options, None, "test").await;
    assert!(enhanced.errors.is_empty(), "{:?}", enhanced.errors);
    assert_eq!(enhanced.registry_scan_type.as_deref(), Some("ENHANCED"));
    assert!(enhanced.warnings.iter().any(|w| w.contains("ENHANCED")));
    let calls = stack.read("ecr").await["calls"].clone();
    assert_eq!(
        calls["PutImageScanningConfiguration"].as_u64().unwrap_or(0),
        0,
        "no scan on push under enhanced scanning"
    );
    let lifecycle = |name: &'static str| {
        let client = ecr_client.clone();
        async move {
            let out = client
                .get_lifecycle_policy()
                .repository_name(name)
                .send()
                .await
                .unwrap();
            out.lifecycle_policy_text().unwrap().to_owned()
        }
    };
    assert!(lifecycle_fixer::policy::same_meaning(
        &lifecycle("k8s/pause").await,
        &default_lifecycle(7).canonical()
    ));
    assert!(lifecycle_fixer::policy::same_meaning(
        &lifecycle("quay/coreos/etcd").await,
        &default_lifecycle(30).canonical()
    ));
    let template = ecr_client
        .describe_repository_creation_templates()
        .prefixes("k8s")
        .send()
        .await
        .unwrap();
    assert!(lifecycle_fixer::policy::same_meaning(
        template.repository_creation_templates()[0]
            .lifecycle_policy()
            .unwrap(),
        &default_lifecycle(7).canonical()
    ));

    ecr_client
        .put_registry_scanning_configuration()
        .scan_type(aws_sdk_ecr::types::ScanType::Basic)
        .send()
        .await
        .unwrap();
    let basic = sweep(&deps, &options, None, "test").await;
    assert!(basic.errors.is_empty(), "{:?}", basic.errors);
    let repos = ecr_client
        .describe_repositories()
        .repository_names("k8s/pause")
        .repository_names("quay/coreos/etcd")
        .send()
        .await
        .unwrap();
    let scan = |name: &str| {
        repos
            .repositories()
            .iter()
            .find(|r| r.repository_name() == Some(name))
            .and_then(|r| r.image_scanning_configuration())
            .is_some_and(|c| c.scan_on_push())
    };
    assert!(scan("k8s/pause"), "the k8s prefix wants scan on push");
    assert!(!scan("quay/coreos/etcd"), "the default does not");
}

/// A prefix without a template of its own, under a `ROOT` template whose lifecycle policy
/// differs from the prefix's: enforce creates the prefix's template as a copy of ROOT's
/// (description, encryption, tags, custom role kept), through the SDK and the stand-in's
/// CreateRepositoryCreationTemplate. Its own stack: the templates are the registry's.
#[tokio::test(flavor = "multi_thread")]
async fn a_prefix_template_is_copied_from_root() {
    let stack = Stack::start();
    stack.create_rule("quay", "quay.io", None).await;
    let sdk = stack.sdk_config().await;
    let ecr_client = aws_sdk_ecr::Client::new(&sdk);
    ecr_client
        .create_repository_creation_template()
        .prefix("ROOT")
        .applied_for(aws_sdk_ecr::types::RctAppliedFor::PullThroughCache)
        .description("the account's defaults")
        .resource_tags(
            aws_sdk_ecr::types::Tag::builder()
                .key("cost-center")
                .value("42")
                .build()
                .unwrap(),
        )
        .custom_role_arn(format!(
            "arn:aws:iam::{}:role/ecr-templates",
            stack.info.account
        ))
        .lifecycle_policy(default_lifecycle(30).canonical())
        .send()
        .await
        .unwrap();
    let mut options = options(Mode::Enforce, false);
    options.desired.default.lifecycle_policy = Some(default_lifecycle(14).canonical());
    options.desired.default.repository_policy = None;
    options.publish_metrics = false;
    let ecr = SdkEcr::new(ecr_client.clone());
    let metrics = SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let deps = Deps {
        ecr: &ecr,
        settings: &ecr,
        templates: &ecr,
        metrics: &metrics,
    };
    let report = sweep(&deps, &options, None, "test").await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let quay = report
        .templates
        .iter()
        .find(|t| t.prefix == "quay")
        .unwrap();
    assert_eq!(quay.action.as_deref(), Some("created"), "{quay:?}");
    let made = ecr_client
        .describe_repository_creation_templates()
        .prefixes("quay")
        .send()
        .await
        .unwrap();
    let made = &made.repository_creation_templates()[0];
    assert_eq!(made.description(), Some("the account's defaults"));
    assert!(
        made.custom_role_arn()
            .unwrap()
            .ends_with(":role/ecr-templates")
    );
    assert_eq!(made.resource_tags()[0].key(), "cost-center");
    assert!(
        made.lifecycle_policy()
            .unwrap()
            .contains(r#""countNumber":14"#)
    );
    let again = sweep(&deps, &options, None, "test").await;
    let quay = again.templates.iter().find(|t| t.prefix == "quay").unwrap();
    assert_eq!(
        quay.status,
        lifecycle_fixer::templates::TemplateStatus::Ok,
        "{quay:?}"
    );
}
