//! The local stack harness for end-to-end tests.
//!
//! [`Stack::shared`] starts one stack per test binary (moto with the project's stand-ins,
//! the ECR registry endpoint, four upstream registries) on 127.0.0.1 and hands out SDK
//! configs and registry clients pointed at it. The stack process watches the test process
//! and exits with it. If the stack cannot start, the test fails with the reason: it never
//! skips.

pub mod fixtures;
pub mod lambda;
pub mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_ecr::config::Credentials;
use aws_sdk_ecr::config::SharedCredentialsProvider;
use ptc_core::aws::SdkEcr;
use ptc_core::aws::{AwsOptions, load_sdk_config};
use ptc_core::ecr::EcrApi;
use ptc_core::oci::{RegistryClient, http_client};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct UpstreamInfo {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StackInfo {
    pub pid: u32,
    pub account: String,
    pub region: String,
    pub aws_endpoint: String,
    pub registry_endpoint: String,
    pub state_dir: PathBuf,
    /// Keyed by the registry each upstream stands in for (`quay.io`, `registry-1.docker.io`...).
    pub upstreams: BTreeMap<String, UpstreamInfo>,
}

pub struct Stack {
    pub info: StackInfo,
    child: std::sync::Mutex<Child>,
    http: reqwest::Client,
}

/// The repository root (the workspace).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PTC_STACK_PYTHON") {
        return p.into();
    }
    repo_root().join(".venv/bin/python")
}

impl Stack {
    /// Start a stack; panics with the reason when it cannot (a test must fail, not skip).
    pub fn start() -> Self {
        let python = python();
        assert!(
            python.exists(),
            "local stack: {} not found. Run the README's test command (scripts/test.sh), which creates the venv with moto.",
            python.display()
        );
        let dir =
            std::env::temp_dir().join(format!("ptc-stack-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).expect("create stack state dir");
        let ready = dir.join("ready.json");
        let log = std::fs::File::create(dir.join("stack.log")).expect("create stack log");
        let child = Command::new(&python)
            .arg(repo_root().join("tests/stack/stack.py"))
            .args(["up", "--state-dir"])
            .arg(&dir)
            .arg("--ready-file")
            .arg(&ready)
            .arg("--parent-pid")
            .arg(std::process::id().to_string())
            .arg("--remove-state-on-exit")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("local stack: cannot run {}: {e}", python.display()));
        let mut child = child;
        let deadline = Instant::now() + Duration::from_secs(120);
        let info: StackInfo = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                break serde_json::from_str(&text).expect("stack ready file is JSON");
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("stack.log")).unwrap_or_default();
                panic!("local stack exited with {status} before it was ready:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "local stack not ready after 120 s; log in {}",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        Self {
            info,
            child: std::sync::Mutex::new(child),
            http: reqwest::Client::new(),
        }
    }

    /// One stack for the whole test binary.
    pub fn shared() -> &'static Stack {
        static STACK: OnceLock<Stack> = OnceLock::new();
        STACK.get_or_init(Stack::start)
    }

    /// The `SdkConfig` a job would build, pointed at the stack (static test credentials).
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.info.aws_endpoint, &self.info.region).await
    }

    pub async fn ecr(&self) -> Arc<dyn EcrApi> {
        Arc::new(SdkEcr::new(aws_sdk_ecr::Client::new(
            &self.sdk_config().await,
        )))
    }

    /// A registry client for the stack's ECR endpoint, with the token from GetAuthorizationToken.
    pub async fn registry(&self) -> (RegistryClient, String) {
        RegistryClient::for_ecr(
            http_client(Duration::from_secs(20)).expect("http client"),
            self.ecr().await,
            Some(&self.info.registry_endpoint),
        )
        .await
        .expect("registry client for the stack")
    }

    /// Create a Secrets Manager secret with a JSON value; returns its ARN.
    pub async fn create_secret(&self, name: &str, value: serde_json::Value) -> String {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config().await)
            .create_secret()
            .name(name)
            .secret_string(value.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("create secret {name}: {e:?}"))
            .arn()
            .expect("secret ARN")
            .to_owned()
    }

    /// A PTC credential secret holding an upstream's real username and access token.
    pub async fn upstream_secret(&self, name: &str, host: &str) -> String {
        let up = self.upstream(host);
        self.create_secret(
            name,
            serde_json::json!({"username": up.username, "accessToken": up.password}),
        )
        .await
    }

    /// Create a pull-through cache rule through the SDK.
    pub async fn create_rule(
        &self,
        prefix: &str,
        upstream_url: &str,
        credential_arn: Option<&str>,
    ) {
        aws_sdk_ecr::Client::new(&self.sdk_config().await)
            .create_pull_through_cache_rule()
            .ecr_repository_prefix(prefix)
            .upstream_registry_url(upstream_url)
            .set_credential_arn(credential_arn.map(str::to_owned))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create rule {prefix}: {e:?}"));
    }

    pub fn upstream(&self, host: &str) -> &UpstreamInfo {
        self.info
            .upstreams
            .get(host)
            .unwrap_or_else(|| panic!("no upstream {host} in the stack"))
    }

    /// POST a control (`upstreams/quay.io`, `ecr`, `cloudwatch`) and return its JSON answer.
    pub async fn control(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let url = format!("{}/_stack/{path}", self.info.aws_endpoint);
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .expect("stack control");
        assert!(
            response.status().is_success(),
            "control {path}: HTTP {}",
            response.status()
        );
        response.json().await.expect("control answer is JSON")
    }

    /// GET a control (`registry/counts`, `upstreams/quay.io/counts`, `ecr`).
    pub async fn read(&self, path: &str) -> serde_json::Value {
        let url = format!("{}/_stack/{path}", self.info.aws_endpoint);
        let response = self.http.get(&url).send().await.expect("stack control");
        assert!(
            response.status().is_success(),
            "control {path}: HTTP {}",
            response.status()
        );
        response.json().await.expect("control answer is JSON")
    }

    /// A metric read back through the CloudWatch API (`GetMetricStatistics`, the last hour):
    /// the statistic (`Maximum`, `Sum`, ...) of the data points with exactly these dimensions.
    pub async fn metric(
        &self,
        namespace: &str,
        name: &str,
        dimensions: &[(&str, &str)],
        statistic: aws_sdk_cloudwatch::types::Statistic,
    ) -> Option<f64> {
        use aws_sdk_cloudwatch::types::{Dimension, Statistic};
        let cw = aws_sdk_cloudwatch::Client::new(&self.sdk_config().await);
        let now = std::time::SystemTime::now();
        let out = cw
            .get_metric_statistics()
            .namespace(namespace)
            .metric_name(name)
            .start_time((now - Duration::from_secs(3600)).into())
            .end_time((now + Duration::from_secs(60)).into())
            .period(86400)
            .statistics(statistic.clone())
            .set_dimensions(Some(
                dimensions
                    .iter()
                    .map(|(n, v)| Dimension::builder().name(*n).value(*v).build())
                    .collect(),
            ))
            .send()
            .await
            .expect("GetMetricStatistics on the stack");
        let point = out.datapoints().first()?;
        match statistic {
            Statistic::Sum => point.sum(),
            Statistic::Minimum => point.minimum(),
            Statistic::Average => point.average(),
            Statistic::SampleCount => point.sample_count(),
            _ => point.maximum(),
        }
    }

    /// Environment variables that point `ptc` and the functions at this stack.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_REGION".into(), self.info.region.clone()),
            ("PTC_REGION".into(), self.info.region.clone()),
            (
                "PTC_AWS_ENDPOINT_URL".into(),
                self.info.aws_endpoint.clone(),
            ),
            (
                "PTC_REGISTRY_ENDPOINT".into(),
                self.info.registry_endpoint.clone(),
            ),
            (
                "PTC_UPSTREAM_ENDPOINTS".into(),
                self.info
                    .upstreams
                    .iter()
                    .map(|(host, u)| format!("{host}={}", u.url))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ]
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Registry data and logs: kept when a test failed, to read; removed otherwise.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.info.state_dir);
        }
    }
}

/// A short unique suffix for names (prefixes, secrets) so tests sharing a stack never collide.
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{:x}{n}", nanos % 0xfffff)
}

fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Peak resident memory of this process so far (KiB), for the benchmarks.
pub fn peak_rss_kib() -> u64 {
    proc_status_kib("VmHWM:")
}

/// Resident memory of this process now (KiB).
pub fn rss_kib() -> u64 {
    proc_status_kib("VmRSS:")
}

/// The `SdkConfig` a job would build (the production loader: retries, timeouts, endpoint),
/// pointed at a local endpoint, with static test credentials.
pub async fn sdk_config_for(endpoint: &str, region: &str) -> SdkConfig {
    let options = AwsOptions {
        region: Some(region.to_owned()),
        endpoint_url: Some(endpoint.to_owned()),
        max_attempts: 4,
        operation_timeout: Duration::from_secs(30),
    };
    load_sdk_config(&options)
        .await
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "ptc-tests",
        )))
        .build()
}

/// The prewarm benchmarks' comparison: `skopeo inspect --raw` over `uris` (`docker://...`),
/// `concurrency` at a time through `xargs -P`, against a plain-http registry with `creds`
/// (`USER:PASSWORD`). The wall time and whether every inspect succeeded; `None` when skopeo
/// is not installed.
pub fn skopeo_inspect(uris: &[String], concurrency: usize, creds: &str) -> Option<(f64, bool)> {
    use std::io::Write as _;
    let installed = Command::new("skopeo")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        return None;
    }
    let started = Instant::now();
    let mut child = Command::new("xargs")
        .args([
            "-P",
            &concurrency.to_string(),
            "-n",
            "1",
            "skopeo",
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
        ])
        .arg(creds)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run xargs skopeo");
    child
        .stdin
        .take()
        .expect("xargs stdin")
        .write_all(uris.join("\n").as_bytes())
        .expect("write the list to xargs");
    let ok = child.wait().is_ok_and(|s| s.success());
    Some((started.elapsed().as_secs_f64(), ok))
}
