//! Smoke tests of the local stack through the real Rust SDK and ptc-core's registry client.
//! Tests here share one stack and run in parallel: each uses its own prefixes and secrets.

use aws_sdk_ecr::types::{RctAppliedFor, Tag, UpstreamRegistry};
use ptc_core::ImageReference;
use ptc_core::aws::SdkMetrics;
use ptc_core::metrics::{MetricDatum, MetricsApi, Unit};
use ptc_core::oci::{ManifestKind, RegistryError};
use ptc_core::platform::Platform;
use ptc_core::rules::{RuleSet, UpstreamKind};
use ptc_tests::{Stack, unique};

const DOCKER: &str = "registry-1.docker.io";

async fn only_rule(stack: &Stack, prefix: &str) -> RuleSet {
    let rules = stack
        .ecr()
        .await
        .describe_rules()
        .await
        .expect("describe rules");
    RuleSet::new(
        rules
            .into_iter()
            .filter(|r| r.prefix.as_str() == prefix)
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_and_their_secrets_validate_through_the_sdk() {
    let stack = Stack::shared();
    let id = unique();
    let good = stack
        .upstream_secret(&format!("ecr-pullthroughcache/docker-{id}"), DOCKER)
        .await;
    let wrong_password = stack.create_secret(
        &format!("ecr-pullthroughcache/wrongpw-{id}"),
        serde_json::json!({"username": stack.upstream(DOCKER).username, "accessToken": "not-the-token"}),
    )
    .await;
    let wrong_keys = stack
        .create_secret(
            &format!("ecr-pullthroughcache/wrongkeys-{id}"),
            serde_json::json!({"user": "a", "token": "b"}),
        )
        .await;
    let doomed = stack
        .upstream_secret(&format!("ecr-pullthroughcache/docker-doomed-{id}"), DOCKER)
        .await;
    stack.create_rule(&format!("q{id}"), "quay.io", None).await;
    stack
        .create_rule(&format!("dg{id}"), DOCKER, Some(&good))
        .await;
    stack
        .create_rule(&format!("dw{id}"), DOCKER, Some(&wrong_password))
        .await;
    stack
        .create_rule(&format!("dk{id}"), DOCKER, Some(&wrong_keys))
        .await;
    stack
        .create_rule(&format!("dm{id}"), DOCKER, Some(&doomed))
        .await;
    let sm = aws_sdk_secretsmanager::Client::new(&stack.sdk_config().await);
    sm.delete_secret()
        .secret_id(&doomed)
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("delete secret");

    let ecr = stack.ecr().await;
    let rules = ecr.describe_rules().await.expect("describe rules");
    let mine: Vec<_> = rules
        .iter()
        .filter(|r| r.prefix.as_str().ends_with(&id))
        .collect();
    assert_eq!(mine.len(), 5, "{mine:?}");
    let quay = mine
        .iter()
        .find(|r| r.prefix.as_str() == format!("q{id}"))
        .unwrap();
    assert_eq!(quay.kind, UpstreamKind::Quay);
    assert!(quay.credential_arn.is_none());
    let dg = mine
        .iter()
        .find(|r| r.prefix.as_str() == format!("dg{id}"))
        .unwrap();
    assert_eq!(dg.kind, UpstreamKind::DockerHub);
    assert_eq!(dg.credential_arn.as_deref(), Some(good.as_str()));

    let v = ecr.validate_rule(&format!("q{id}")).await.unwrap();
    assert!(v.is_valid, "{v:?}");
    let v = ecr.validate_rule(&format!("dg{id}")).await.unwrap();
    assert!(v.is_valid, "{v:?}");
    let v = ecr.validate_rule(&format!("dw{id}")).await.unwrap();
    assert!(!v.is_valid);
    assert!(v.failure.unwrap().contains("credentials"));
    let v = ecr.validate_rule(&format!("dk{id}")).await.unwrap();
    assert!(!v.is_valid);
    assert!(v.failure.unwrap().contains("username"));
    let v = ecr.validate_rule(&format!("dm{id}")).await.unwrap();
    assert!(!v.is_valid);
    assert!(v.failure.unwrap().contains("SecretNotFoundException"));
    let err = ecr.validate_rule(&format!("none{id}")).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stand_in_refuses_what_ecr_refuses() {
    let stack = Stack::shared();
    let id = unique();
    let ecr = aws_sdk_ecr::Client::new(&stack.sdk_config().await);
    let code = |e: aws_sdk_ecr::error::SdkError<_, _>| {
        use aws_sdk_ecr::error::ProvideErrorMetadata;
        let e: aws_sdk_ecr::Error = e.into();
        e.code().unwrap_or_default().to_owned()
    };
    let err = ecr
        .create_pull_through_cache_rule()
        .ecr_repository_prefix(format!("g{id}"))
        .upstream_registry_url("gcr.io")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "UnsupportedUpstreamRegistryException");
    let err = ecr
        .create_pull_through_cache_rule()
        .ecr_repository_prefix(format!("d{id}"))
        .upstream_registry_url(DOCKER)
        .upstream_registry(UpstreamRegistry::DockerHub)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "InvalidParameterException");
    let err = ecr
        .create_pull_through_cache_rule()
        .ecr_repository_prefix(format!("s{id}"))
        .upstream_registry_url(DOCKER)
        .credential_arn(format!(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/none-{id}"
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "SecretNotFoundException");
    stack.create_rule(&format!("x{id}"), "quay.io", None).await;
    let err = ecr
        .create_pull_through_cache_rule()
        .ecr_repository_prefix(format!("x{id}"))
        .upstream_registry_url("quay.io")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "PullThroughCacheRuleAlreadyExistsException");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_creates_the_repository_and_describe_images_shows_every_platform() {
    let stack = Stack::shared();
    let id = unique();
    let prefix = format!("hub{id}");
    stack
        .create_rule(
            &prefix,
            DOCKER,
            Some(
                &stack
                    .upstream_secret(&format!("ecr-pullthroughcache/docker-{id}"), DOCKER)
                    .await,
            ),
        )
        .await;
    let rules = only_rule(stack, &prefix).await;
    let (client, host) = stack.registry().await;
    assert_eq!(
        host,
        format!(
            "{}.dkr.ecr.{}.amazonaws.com",
            stack.info.account, stack.info.region
        )
    );

    let cached = rules
        .route(&ImageReference::parse("nginx:1.25").unwrap())
        .unwrap();
    assert_eq!(cached.repository, format!("{prefix}/library/nginx"));
    let index = client
        .get_manifest(&cached.repository, "1.25")
        .await
        .expect("pull index");
    assert!(index.is_index());
    let head = client
        .head_manifest(&cached.repository, "1.25")
        .await
        .expect("head");
    assert_eq!(head.digest.as_ref(), Some(&index.digest));

    let mut children = Vec::new();
    for platform in ["linux/amd64", "linux/arm64"] {
        let entry = index
            .platform_entry(&Platform::parse(platform).unwrap())
            .expect("platform in index")
            .clone();
        let child = client
            .get_manifest(&cached.repository, entry.digest.as_str())
            .await
            .expect("pull child");
        let ManifestKind::Image { layers, .. } = &child.kind else {
            panic!("child is an image")
        };
        let read = client
            .get_blob(&cached.repository, &layers[0])
            .await
            .expect("blob");
        assert_eq!(read, layers[0].size);
        children.push(entry.digest.to_string());
    }

    let ecr = stack.ecr().await;
    let repos = ecr.describe_repositories().await.unwrap();
    let repo = repos
        .iter()
        .find(|r| r.name == cached.repository)
        .expect("repository created by the pull");
    assert_eq!(repo.tag_mutability, "MUTABLE");
    let images = ecr.describe_images(&cached.repository).await.unwrap();
    let tagged = images
        .iter()
        .find(|i| i.digest == index.digest.as_str())
        .expect("index recorded");
    assert_eq!(tagged.tags, ["1.25"]);
    assert!(tagged.last_pulled_at.is_some());
    for child in &children {
        assert!(
            images.iter().any(|i| &i.digest == child),
            "child {child} recorded"
        );
    }

    // Official images need `library/`: ECR does not add it, and neither does the stand-in.
    let err = client
        .get_manifest(&format!("{prefix}/nginx"), "1.25")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_creation_template_shapes_the_repository_the_cache_creates() {
    let stack = Stack::shared();
    let id = unique();
    let prefix = format!("tq{id}");
    stack.create_rule(&prefix, "quay.io", None).await;
    let ecr = aws_sdk_ecr::Client::new(&stack.sdk_config().await);
    let lifecycle = r#"{"rules":[{"rulePriority":1,"description":"expire","selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}"#;
    ecr.create_repository_creation_template()
        .prefix(&prefix)
        .applied_for(RctAppliedFor::PullThroughCache)
        .lifecycle_policy(lifecycle)
        .resource_tags(
            Tag::builder()
                .key("team")
                .value("platform")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create template");
    let (client, _) = stack.registry().await;
    let repository = format!("{prefix}/coreos/etcd");
    client
        .get_manifest(&repository, "v3.5.13")
        .await
        .expect("pull");
    let policy = ecr
        .get_lifecycle_policy()
        .repository_name(&repository)
        .send()
        .await
        .expect("lifecycle policy set");
    assert_eq!(policy.lifecycle_policy_text(), Some(lifecycle));
    let arn = format!(
        "arn:aws:ecr:{}:{}:repository/{repository}",
        stack.info.region, stack.info.account
    );
    let tags = ecr
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "team" && t.value() == "platform")
    );
    let templates = ecr
        .describe_repository_creation_templates()
        .prefixes(&prefix)
        .send()
        .await
        .unwrap();
    assert_eq!(templates.repository_creation_templates().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_put_in_batches_and_read_back_over_cbor() {
    let stack = Stack::shared();
    let id = unique();
    let namespace = format!("PtcSmoke{id}");
    let sdk = stack.sdk_config().await;
    let data: Vec<_> = (0..2500)
        .map(|_| {
            MetricDatum::new("Pulled", 1.0, Unit::Count)
                .unwrap()
                .dimension("Prefix", "quay")
                .unwrap()
        })
        .collect();
    let calls = SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk))
        .put(&namespace, &data)
        .await
        .expect("put");
    assert_eq!(calls, 3);

    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let now = std::time::SystemTime::now();
    let stats = cw
        .get_metric_statistics()
        .namespace(&namespace)
        .metric_name("Pulled")
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("Prefix")
                .value("quay")
                .build(),
        )
        .start_time((now - std::time::Duration::from_secs(3600)).into())
        .end_time((now + std::time::Duration::from_secs(60)).into())
        .period(86400)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
        .send()
        .await
        .expect("get statistics");
    let total: f64 = stats.datapoints().iter().filter_map(|d| d.sum()).sum();
    assert_eq!(total, 2500.0);
    let listed = cw
        .list_metrics()
        .namespace(&namespace)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.metrics().len(), 1);

    // The stand-in enforces PutMetricData's limits like CloudWatch.
    let too_many: Vec<_> = (0..1001)
        .map(|i| {
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("X")
                .value(i as f64)
                .build()
        })
        .collect();
    let err = cw
        .put_metric_data()
        .namespace(&namespace)
        .set_metric_data(Some(too_many))
        .send()
        .await
        .unwrap_err();
    let err: aws_sdk_cloudwatch::Error = err.into();
    assert!(
        err.to_string().contains("1000") || format!("{err:?}").contains("InvalidParameterValue"),
        "{err:?}"
    );
}
