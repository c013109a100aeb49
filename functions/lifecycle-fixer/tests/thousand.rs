//! One sweep over 1,000 repositories: one page of DescribeRepositories (maxResults 1000),
//! every repository fixed, and a second sweep with zero write calls.

use std::collections::BTreeMap;

use lifecycle_fixer::desired::{Desired, default_lifecycle};
use lifecycle_fixer::plan::Mode;
use lifecycle_fixer::{Deps, Options, sweep};
use ptc_core::aws::SdkEcr;
use ptc_core::aws::SdkMetrics;
use ptc_tests::Stack;

fn count(stack_calls: &serde_json::Value, op: &str) -> u64 {
    stack_calls["calls"][op].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_repositories_in_one_sweep() {
    let stack = Stack::shared();
    stack.create_rule("quay", "quay.io", None).await;
    let sdk = stack.sdk_config().await;
    let client = aws_sdk_ecr::Client::new(&sdk);
    // Repositories straight into ECR's state (the stack's seed), no image in them.
    stack
        .control(
            "seed/inventory",
            serde_json::json!({"prefix": "quay", "repositories": 1000, "images": 0}),
        )
        .await;
    let ecr = SdkEcr::new(client);
    let metrics = SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let deps = Deps {
        ecr: &ecr,
        settings: &ecr,
        templates: &ecr,
        metrics: &metrics,
    };
    let options = Options {
        desired: Desired {
            lifecycle_policy: Some(default_lifecycle(30).canonical()),
            repository_policy: None,
            tags: BTreeMap::from([("managed-by".into(), "ptc".into())]),
            scan_on_push: false,
        }
        .into(),
        mode: Mode::Fill,
        dry_run: false,
        concurrency: 16,
        namespace: "PtcFleet".into(),
        publish_metrics: true,
        stop_at: None,
        cache_made: false,
    };
    let before = stack.read("ecr").await;
    let first = sweep(&deps, &options, None, "test").await;
    let middle = stack.read("ecr").await;
    assert_eq!(first.summary.scanned, 1000);
    assert_eq!(first.summary.fixed, 1000);
    assert_eq!(
        count(&middle, "DescribeRepositories") - count(&before, "DescribeRepositories"),
        1,
        "ceil(1000/1000) pages"
    );
    let second = sweep(&deps, &options, None, "test").await;
    let after = stack.read("ecr").await;
    assert_eq!(second.summary.non_compliant, 0);
    for op in ["PutLifecyclePolicy", "SetRepositoryPolicy", "TagResource"] {
        assert_eq!(
            count(&after, op),
            count(&middle, op),
            "{op}: no write on the second sweep"
        );
    }
}
