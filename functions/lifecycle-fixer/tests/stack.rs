//! The sweep on the local stack: repositories created by pulls through the cache (with and
//! without a creation template), a hand-set policy, a policy equal in meaning but formatted
//! differently, a repository outside the prefixes, and the write calls counted.

use std::collections::BTreeMap;

use lifecycle_fixer::desired::{Desired, default_lifecycle, pull_policy};
use lifecycle_fixer::plan::Mode;
use lifecycle_fixer::sweep::{Deps, Options, sweep};
use ptc_core::ecr::SdkEcr;
use ptc_core::metrics::SdkMetrics;
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
        },
        mode,
        dry_run,
        concurrency: 8,
        namespace: "PtcFixTest".into(),
        publish_metrics: true,
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
    // A policy the team set by hand on one repository.
    let hand = r#"{"rules":[{"rulePriority":1,"description":"set by the team: keep the last ten images","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}]}"#;
    ecr_client
        .put_lifecycle_policy()
        .repository_name("quay/argoproj/argocd")
        .lifecycle_policy_text(hand)
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
        ["the template's repository policy differs from the desired one"]
    );
    assert_eq!(
        template("quay").status,
        lifecycle_fixer::templates::TemplateStatus::Missing
    );
    assert_eq!(
        template("quay").action,
        None,
        "fill mode never writes templates"
    );

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
            .any(|t| t.prefix == "quay" && t.action.as_deref() == Some("created")),
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
        "enforce created the missing template"
    );
    let replaced = ecr_client
        .get_lifecycle_policy()
        .repository_name("quay/argoproj/argocd")
        .send()
        .await
        .unwrap();
    assert!(lifecycle_fixer::policy::same_meaning(
        replaced.lifecycle_policy_text().unwrap(),
        &default_lifecycle(30).canonical()
    ));
    let after_enforce = writes(stack).await;
    sweep(&deps, &options(Mode::Enforce, false), None, "test").await;
    assert_eq!(
        writes(stack).await,
        after_enforce,
        "enforce is idempotent too"
    );
}
