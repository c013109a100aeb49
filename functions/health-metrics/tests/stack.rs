//! health-metrics end to end on the local stack: inventory figures equal to what ECR holds
//! (bytes, counts, ages), metrics read back through the CloudWatch API, outage readiness
//! checked against real pulls with the upstream taken down, a 2,500-value publish split into
//! three calls, a throttled publish retried.

use aws_sdk_cloudwatch::types::Statistic;
use health_metrics::readiness::Readiness;
use health_metrics::{Deps, Options, run};
use ptc_core::aws::SdkEcr;
use ptc_core::aws::SdkMetrics;
use ptc_core::aws::SdkObjects;
use ptc_core::metrics::{MetricDatum, MetricsApi, Unit};
use ptc_core::platform::Platform;
use ptc_tests::{Stack, unique};
use serde_json::json;
use time::OffsetDateTime;

fn options(namespace: &str, watch_list: &[&str]) -> Options {
    Options {
        namespace: namespace.into(),
        platforms: vec![
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/arm64").unwrap(),
        ],
        concurrency: 8,
        price_per_gb_month: 0.10,
        archive_price_per_gb_month: 0.07,
        unused_days: 30,
        per_repository: true,
        watch_list: watch_list.iter().map(|s| (*s).to_owned()).collect(),
        watch_list_source: None,
        publish_metrics: true,
    }
}

/// Sizes, counts and push times straight from DescribeImages, summed by the test itself.
async fn expected(ecr: &aws_sdk_ecr::Client, repositories: &[&str]) -> (usize, u64, Option<i64>) {
    let (mut images, mut bytes, mut oldest) = (0, 0u64, None::<i64>);
    for repo in repositories {
        let out = ecr
            .describe_images()
            .repository_name(*repo)
            .send()
            .await
            .unwrap();
        for i in out.image_details() {
            images += 1;
            let media = i.image_manifest_media_type().unwrap_or_default();
            if !(media.contains("index") || media.contains("list")) {
                bytes += i.image_size_in_bytes().unwrap_or(0) as u64;
            }
            let pushed = i.image_pushed_at().unwrap().secs();
            oldest = Some(oldest.map_or(pushed, |o: i64| o.min(pushed)));
        }
    }
    (images, bytes, oldest)
}

#[tokio::test(flavor = "multi_thread")]
async fn inventory_coverage_and_outage_readiness_match_the_stack() {
    // Its own stack: the inventory counts every repository of the registry.
    let stack = Stack::start();
    stack.create_rule("quay", "quay.io", None).await;
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    let (client, _) = stack.registry().await;
    // prometheus: the index and its amd64 manifest only; etcd whole; pause and both platforms.
    let prometheus = client
        .get_manifest("quay/prometheus/prometheus", "v2.51.0")
        .await
        .unwrap();
    let amd64 = prometheus
        .platform_entry(&Platform::parse("linux/amd64").unwrap())
        .unwrap()
        .digest
        .clone();
    let arm64 = prometheus
        .platform_entry(&Platform::parse("linux/arm64").unwrap())
        .unwrap()
        .digest
        .clone();
    client
        .get_manifest("quay/prometheus/prometheus", amd64.as_str())
        .await
        .unwrap();
    client
        .get_manifest("quay/coreos/etcd", "v3.5.13")
        .await
        .unwrap();
    let pause = client.get_manifest("k8s/pause", "3.9").await.unwrap();
    for platform in ["linux/amd64", "linux/arm64"] {
        let entry = pause
            .platform_entry(&Platform::parse(platform).unwrap())
            .unwrap();
        client
            .get_manifest("k8s/pause", entry.digest.as_str())
            .await
            .unwrap();
    }
    // etcd was cached 45 days ago and last pulled 40 days ago.
    stack
        .control(
            "ecr/age",
            json!({"repository": "quay/coreos/etcd", "pushed_days_ago": 45, "pulled_days_ago": 40}),
        )
        .await;
    // A repository outside the prefixes is not counted.
    let sdk = stack.sdk_config().await;
    let ecr_client = aws_sdk_ecr::Client::new(&sdk);
    ecr_client
        .create_repository()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();

    let namespace = format!("PtcHealth{}", unique());
    let watch = [
        "quay.io/prometheus/prometheus:v2.51.0",
        "quay.io/coreos/etcd:v3.5.13",
        "quay.io/argoproj/argocd:v2.10.0",
        "registry.k8s.io/pause:3.9",
        "registry.k8s.io/coredns/coredns:v1.11.1",
        "gcr.io/distroless/static:nonroot",
    ];
    let ecr = SdkEcr::new(ecr_client.clone());
    let objects = SdkObjects::new(ptc_core::aws::AwsClients::new(&sdk).s3());
    let metrics = SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let deps = Deps {
        ecr: &ecr,
        objects: &objects,
        metrics: &metrics,
    };
    let now = OffsetDateTime::now_utc();
    let report = run(&deps, &options(&namespace, &watch), "test", now).await;

    // Inventory: equal to what ECR holds.
    let quay = report.prefixes.iter().find(|p| p.prefix == "quay").unwrap();
    let k8s = report.prefixes.iter().find(|p| p.prefix == "k8s").unwrap();
    let (images, bytes, oldest) = expected(
        &ecr_client,
        &["quay/prometheus/prometheus", "quay/coreos/etcd"],
    )
    .await;
    assert_eq!(quay.repositories, 2);
    assert_eq!(quay.images, images);
    assert_eq!(quay.stored_bytes, bytes);
    assert!(bytes > 0);
    let age = (now.unix_timestamp() - oldest.unwrap()) as f64 / 86_400.0;
    assert!(
        (quay.oldest_image_age_days.unwrap() - age).abs() < 0.02,
        "{quay:?}"
    );
    assert!((quay.oldest_image_age_days.unwrap() - 45.0).abs() < 0.02);
    assert_eq!(quay.images_not_pulled, 1, "etcd, last pulled 40 days ago");
    assert_eq!(quay.untagged_images, 1, "prometheus' amd64 manifest");
    let (images, bytes, _) = expected(&ecr_client, &["k8s/pause"]).await;
    assert_eq!(
        (k8s.repositories, k8s.images, k8s.stored_bytes),
        (1, images, bytes)
    );
    assert_eq!(k8s.images, 3, "the list and both platforms");
    assert_eq!(report.repositories_outside_prefixes, 1);
    let cost = quay.stored_bytes as f64 / (1024.0 * 1024.0 * 1024.0) * 0.10;
    assert!((quay.estimated_monthly_cost_usd - cost).abs() < 1e-4);

    // Coverage and readiness.
    let state = |image: &str| {
        report
            .watch_list
            .iter()
            .find(|i| i.image == image)
            .unwrap()
            .state
    };
    assert_eq!(state(watch[0]), Readiness::PlatformMissing);
    assert_eq!(state(watch[1]), Readiness::Ready);
    assert_eq!(state(watch[2]), Readiness::NotCached);
    assert_eq!(state(watch[3]), Readiness::Ready);
    assert_eq!(state(watch[4]), Readiness::NotCached);
    assert_eq!(state(watch[5]), Readiness::Invalid);
    assert_eq!(
        (
            report.coverage.watched,
            report.coverage.cached,
            report.coverage.ready
        ),
        (5, 3, 2)
    );
    assert_eq!(report.coverage.coverage_percent, Some(60.0));
    // The gcr.io entry is a mistake in the list, named, not a failure of the run.
    assert_eq!(
        report.warnings.len(),
        1,
        "the gcr.io entry: {:?}",
        report.warnings
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    // Metrics read back through the CloudWatch API.
    let read = |name: &'static str, prefix: &'static str| {
        let (stack, namespace) = (&stack, &namespace);
        async move {
            stack
                .metric(namespace, name, &[("Prefix", prefix)], Statistic::Maximum)
                .await
        }
    };
    assert_eq!(
        read("StoredBytes", "quay").await,
        Some(quay.stored_bytes as f64)
    );
    assert_eq!(read("Repositories", "quay").await, Some(2.0));
    assert_eq!(read("Images", "k8s").await, Some(3.0));
    assert_eq!(read("ImagesNotPulled", "quay").await, Some(1.0));
    assert_eq!(read("OutageExposedImages", "quay").await, Some(2.0));
    assert_eq!(read("OutageExposedImages", "k8s").await, Some(1.0));
    let coverage = read("WatchListCoverage", "quay").await.unwrap();
    assert!((coverage - 66.67).abs() < 0.01, "{coverage}");
    let per_repo = stack
        .metric(
            &namespace,
            "ImagesNotPulled",
            &[("Prefix", "quay"), ("Repository", "quay/coreos/etcd")],
            Statistic::Maximum,
        )
        .await;
    assert_eq!(per_repo, Some(1.0), "per repository, since it was asked");

    // Outage readiness against reality: quay.io goes down; what was called ready still
    // pulls, what was called exposed fails.
    stack
        .control("upstreams/quay.io", json!({"down": true}))
        .await;
    client
        .get_manifest("quay/coreos/etcd", "v3.5.13")
        .await
        .expect("ready: etcd pulls during the outage");
    client
        .get_manifest("quay/prometheus/prometheus", "v2.51.0")
        .await
        .expect("the index itself is cached");
    client
        .get_manifest("quay/prometheus/prometheus", amd64.as_str())
        .await
        .expect("amd64 is cached");
    assert!(
        client
            .get_manifest("quay/prometheus/prometheus", arm64.as_str())
            .await
            .is_err(),
        "platform-missing: arm64 fails during the outage"
    );
    assert!(
        client
            .get_manifest("quay/argoproj/argocd", "v2.10.0")
            .await
            .is_err(),
        "not-cached: argocd fails during the outage"
    );
    let during = run(&deps, &options(&namespace, &watch), "test", now).await;
    let quay_outage = during
        .outage
        .iter()
        .find(|u| u.upstream == "quay.io")
        .unwrap();
    assert_eq!(
        quay_outage
            .exposed
            .iter()
            .map(|i| i.image.as_str())
            .collect::<Vec<_>>(),
        [watch[0], watch[2]],
        "the inventory reads ECR only: the outage does not change the answer"
    );
    stack
        .control("upstreams/quay.io", json!({"down": false}))
        .await;

    // The archive storage class: etcd archived. It leaves the active figures for the archived
    // ones (priced at the archive price), is no longer ready, and indeed no longer pulls.
    use aws_sdk_ecr::types::{
        DescribeImagesFilter, ImageIdentifier, ImageStatus, ImageStatusFilter, TargetStorageClass,
    };
    let (etcd_images, etcd_bytes, _) = expected(&ecr_client, &["quay/coreos/etcd"]).await;
    let before = quay.clone();
    let archived = ecr_client
        .update_image_storage_class()
        .repository_name("quay/coreos/etcd")
        .image_id(ImageIdentifier::builder().image_tag("v3.5.13").build())
        .target_storage_class(TargetStorageClass::Archive)
        .send()
        .await
        .unwrap();
    assert_eq!(archived.image_status(), Some(&ImageStatus::Archived));
    let listed = |status: Option<ImageStatusFilter>| {
        let ecr_client = &ecr_client;
        async move {
            ecr_client
                .describe_images()
                .repository_name("quay/coreos/etcd")
                .set_filter(status.map(|s| DescribeImagesFilter::builder().image_status(s).build()))
                .send()
                .await
                .unwrap()
                .image_details()
                .iter()
                .map(|i| i.image_status().cloned())
                .collect::<Vec<_>>()
        }
    };
    assert!(
        listed(None).await.is_empty(),
        "DescribeImages lists active images only unless asked"
    );
    assert_eq!(
        listed(Some(ImageStatusFilter::Any)).await,
        [Some(ImageStatus::Archived)]
    );
    let report = run(&deps, &options(&namespace, &watch), "test", now).await;
    let quay = report.prefixes.iter().find(|p| p.prefix == "quay").unwrap();
    assert_eq!(
        (quay.archived_images, quay.archived_bytes),
        (etcd_images, etcd_bytes)
    );
    assert_eq!(quay.images, before.images - etcd_images);
    assert_eq!(quay.stored_bytes, before.stored_bytes - etcd_bytes);
    let archive_cost = etcd_bytes as f64 / (1024.0 * 1024.0 * 1024.0) * 0.07;
    assert!((quay.estimated_monthly_archive_cost_usd - archive_cost).abs() < 1e-4);
    let etcd = report
        .watch_list
        .iter()
        .find(|i| i.image == watch[1])
        .unwrap();
    assert_eq!(etcd.state, Readiness::Archived, "{etcd:?}");
    assert_eq!(report.coverage.cached, 2);
    assert_eq!(read("ArchivedBytes", "quay").await, Some(etcd_bytes as f64));
    assert_eq!(
        read("ArchivedImages", "quay").await,
        Some(etcd_images as f64)
    );
    assert!(
        client
            .get_manifest("quay/coreos/etcd", "v3.5.13")
            .await
            .is_err(),
        "archived: etcd no longer pulls"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publish_of_2500_values_is_three_calls_and_a_throttled_one_is_retried() {
    let stack = Stack::shared();
    let sdk = stack.sdk_config().await;
    let metrics = SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let namespace = format!("PtcBatch{}", unique());
    let data: Vec<MetricDatum> = (0..2500)
        .map(|i| {
            MetricDatum::new("StoredBytes", i as f64, Unit::Bytes)
                .unwrap()
                .dimension("Prefix", &format!("p{}", i % 10))
                .unwrap()
        })
        .collect();
    let before = stack.read("cloudwatch").await["put_calls"]
        .as_u64()
        .unwrap();
    let calls = metrics.put(&namespace, &data).await.unwrap();
    let after = stack.read("cloudwatch").await["put_calls"]
        .as_u64()
        .unwrap();
    assert_eq!(calls, 3);
    assert_eq!(after - before, 3, "1,000 + 1,000 + 500");
    let count = stack
        .metric(
            &namespace,
            "StoredBytes",
            &[("Prefix", "p3")],
            Statistic::SampleCount,
        )
        .await;
    assert_eq!(count, Some(250.0), "every value arrived");

    // Throttled twice, then accepted: the SDK's retry with backoff carries it.
    stack
        .control("cloudwatch", json!({"throttle_next": 2}))
        .await;
    let before = stack.read("cloudwatch").await["put_calls"]
        .as_u64()
        .unwrap();
    let one = [MetricDatum::new("Retried", 1.0, Unit::Count).unwrap()];
    assert_eq!(metrics.put(&namespace, &one).await.unwrap(), 1);
    let after = stack.read("cloudwatch").await["put_calls"]
        .as_u64()
        .unwrap();
    assert_eq!(
        after - before,
        3,
        "two throttled attempts and the one accepted"
    );
    assert_eq!(
        stack
            .metric(&namespace, "Retried", &[], Statistic::Sum)
            .await,
        Some(1.0)
    );
}
