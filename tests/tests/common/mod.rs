//! What several end-to-end test binaries share: a [`World`] that runs the four jobs on a
//! local stack with the SDK adapters, as the Lambdas do (the fault matrix and the alarm
//! tests). Each binary uses part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatch::types::Statistic;
use lifecycle_fixer::desired::{Desired, default_lifecycle};
use lifecycle_fixer::plan::Mode;
use prewarm::PrewarmReport;
use ptc_core::aws::SdkEcr;
use ptc_core::aws::SdkMetrics;
use ptc_core::aws::SdkObjects;
use ptc_core::aws::SdkSecrets;
use ptc_core::config::PrewarmMode;
use ptc_core::ecr::EcrApi;
use ptc_core::oci::{RegistryClient, http_client};
use ptc_core::platform::Platform;
use ptc_tests::{Stack, unique};
use serde_json::Value;

pub const DOCKER: &str = "registry-1.docker.io";

/// A stack of the test's own, or the binary's shared one.
pub enum StackHandle {
    Owned(Box<Stack>),
    Shared(&'static Stack),
}

impl std::ops::Deref for StackHandle {
    type Target = Stack;

    fn deref(&self) -> &Stack {
        match self {
            Self::Owned(stack) => stack,
            Self::Shared(stack) => stack,
        }
    }
}

pub struct World {
    pub stack: StackHandle,
    pub sdk: aws_config::SdkConfig,
    pub ecr: SdkEcr,
    pub secrets: SdkSecrets,
    pub objects: SdkObjects,
    pub metrics: SdkMetrics,
    pub upstreams: BTreeMap<String, String>,
    pub namespace: String,
}

/// The docker-hub (with its credential secret), quay and k8s rules.
pub async fn seed_rules(stack: &Stack) {
    let docker = stack
        .upstream_secret("ecr-pullthroughcache/docker-hub", DOCKER)
        .await;
    stack.create_rule("docker-hub", DOCKER, Some(&docker)).await;
    stack.create_rule("quay", "quay.io", None).await;
    stack.create_rule("k8s", "registry.k8s.io", None).await;
}

impl World {
    /// A world on a stack of its own, with the docker-hub (credential), quay and k8s rules.
    pub async fn new() -> Self {
        let stack = Stack::start();
        seed_rules(&stack).await;
        Self::on(StackHandle::Owned(Box::new(stack)), "PtcFaults").await
    }

    /// A world on `stack`, publishing to a namespace of its own (`<namespace><unique>`).
    pub async fn on(stack: StackHandle, namespace: &str) -> Self {
        let sdk = stack.sdk_config().await;
        Self {
            ecr: SdkEcr::new(aws_sdk_ecr::Client::new(&sdk)),
            secrets: SdkSecrets::new(aws_sdk_secretsmanager::Client::new(&sdk)),
            objects: SdkObjects::new(ptc_core::aws::AwsClients::new(&sdk).s3()),
            metrics: SdkMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk)),
            upstreams: stack
                .info
                .upstreams
                .iter()
                .map(|(h, u)| (h.clone(), u.url.clone()))
                .collect(),
            namespace: format!("{namespace}{}", unique()),
            stack,
            sdk,
        }
    }

    pub async fn registry(&self, timeout: Duration) -> (RegistryClient, String) {
        let port: Arc<dyn EcrApi> = Arc::new(SdkEcr::new(aws_sdk_ecr::Client::new(&self.sdk)));
        RegistryClient::for_ecr(
            http_client(timeout).unwrap(),
            port,
            Some(&self.stack.info.registry_endpoint),
        )
        .await
        .unwrap()
    }

    pub fn prewarm_options(&self) -> prewarm::Options {
        prewarm::Options {
            namespace: self.namespace.clone(),
            platforms: vec![
                Platform::parse("linux/amd64").unwrap(),
                Platform::parse("linux/arm64").unwrap(),
            ],
            mode: PrewarmMode::Manifests,
            ratelimit_floor: 10,
            concurrency: 4,
            discovery_days: 0,
            settings_watch_list: Vec::new(),
            watch_list_source: None,
            state: None,
            forget_unused: true,
            dry_run: false,
            publish_metrics: true,
            stop_at: None,
            finish_by: None,
            progress: None,
        }
    }

    pub async fn prewarm_with(
        &self,
        options: &prewarm::Options,
        client: &(RegistryClient, String),
        images: &[&str],
    ) -> PrewarmReport {
        let http = http_client(Duration::from_secs(5)).unwrap();
        let deps = prewarm::Deps {
            ecr: &self.ecr,
            secrets: &self.secrets,
            objects: &self.objects,
            metrics: &self.metrics,
            cache: &client.0,
            registry_host: &client.1,
            http: &http,
            upstream_endpoints: &self.upstreams,
        };
        prewarm::run(
            &deps,
            options,
            "fault",
            images.iter().map(|s| (*s).to_owned()).collect(),
            time::OffsetDateTime::now_utc(),
        )
        .await
    }

    pub async fn prewarm(&self, images: &[&str]) -> PrewarmReport {
        let client = self.registry(Duration::from_secs(10)).await;
        self.prewarm_with(&self.prewarm_options(), &client, images)
            .await
    }

    pub fn validate_options(&self) -> validate_rules::Options {
        validate_rules::Options {
            namespace: self.namespace.clone(),
            expected: Vec::new(),
            credential_max_age_days: 90,
            rule_prefixes: Vec::new(),
            concurrency: 4,
            publish_metrics: true,
            consumers: Default::default(),
            pull_time_exclusions: Vec::new(),
            caller_exclusion: None,
        }
    }

    pub async fn validate(&self) -> validate_rules::report::ValidationReport {
        self.validate_with(&self.validate_options()).await
    }

    /// A full validation run (every rule), as the schedule makes.
    pub async fn validate_with(
        &self,
        options: &validate_rules::Options,
    ) -> validate_rules::report::ValidationReport {
        validate_rules::run(
            &self.validate_deps(),
            options,
            &validate_rules::event::Trigger::All {
                source: "test".into(),
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
    }

    pub fn fix_options(&self) -> lifecycle_fixer::Options {
        lifecycle_fixer::Options {
            desired: Desired {
                lifecycle_policy: Some(default_lifecycle(30).canonical()),
                repository_policy: None,
                tags: BTreeMap::from([("managed-by".into(), "ptc".into())]),
                scan_on_push: false,
            }
            .into(),
            mode: Mode::Enforce,
            dry_run: false,
            concurrency: 4,
            namespace: self.namespace.clone(),
            publish_metrics: true,
            stop_at: None,
            cache_made: false,
        }
    }

    pub async fn sweep_with(
        &self,
        options: &lifecycle_fixer::Options,
        only: Option<&[String]>,
    ) -> lifecycle_fixer::FixReport {
        lifecycle_fixer::sweep(&self.fix_deps(), options, only, "fault").await
    }

    pub fn health_options(&self, watch: &[&str]) -> health_metrics::Options {
        health_metrics::Options {
            namespace: self.namespace.clone(),
            platforms: vec![Platform::parse("linux/amd64").unwrap()],
            concurrency: 4,
            price_per_gb_month: 0.10,
            archive_price_per_gb_month: 0.07,
            unused_days: 30,
            per_repository: false,
            watch_list: watch.iter().map(|s| (*s).to_owned()).collect(),
            watch_list_source: None,
            publish_metrics: true,
        }
    }

    pub async fn health(&self, watch: &[&str]) -> health_metrics::HealthReport {
        self.health_with(&self.health_options(watch)).await
    }

    pub async fn health_with(
        &self,
        options: &health_metrics::Options,
    ) -> health_metrics::HealthReport {
        health_metrics::run(
            &self.health_deps(),
            options,
            "test",
            time::OffsetDateTime::now_utc(),
        )
        .await
    }

    pub fn health_deps(&self) -> health_metrics::Deps<'_> {
        health_metrics::Deps {
            ecr: &self.ecr,
            objects: &self.objects,
            metrics: &self.metrics,
        }
    }

    pub fn fix_deps(&self) -> lifecycle_fixer::Deps<'_> {
        lifecycle_fixer::Deps {
            ecr: &self.ecr,
            settings: &self.ecr,
            templates: &self.ecr,
            metrics: &self.metrics,
        }
    }

    pub fn validate_deps(&self) -> validate_rules::Deps<'_> {
        validate_rules::Deps {
            ecr: &self.ecr,
            secrets: &self.secrets,
            metrics: &self.metrics,
            templates: &self.ecr,
        }
    }

    /// Every repository and its image digests: "nothing deleted" is "nothing missing later".
    pub async fn snapshot(&self) -> BTreeSet<String> {
        let client = aws_sdk_ecr::Client::new(&self.sdk);
        let repos = client.describe_repositories().send().await.unwrap();
        let mut out = BTreeSet::new();
        for repo in repos.repositories() {
            let name = repo.repository_name().unwrap().to_owned();
            out.insert(name.clone());
            let images = client
                .describe_images()
                .repository_name(&name)
                .send()
                .await
                .unwrap();
            for image in images.image_details() {
                out.insert(format!(
                    "{name}@{}",
                    image.image_digest().unwrap_or_default()
                ));
            }
        }
        out
    }

    pub async fn nothing_deleted(&self, before: &BTreeSet<String>) {
        let after = self.snapshot().await;
        let gone: Vec<_> = before.difference(&after).collect();
        assert!(gone.is_empty(), "deleted: {gone:?}");
    }

    pub async fn metric(&self, name: &str, dims: &[(&str, &str)]) -> Option<f64> {
        self.stack
            .metric(&self.namespace, name, dims, Statistic::Maximum)
            .await
    }

    pub async fn control(&self, path: &str, body: Value) {
        self.stack.control(path, body).await;
    }
}
