//! The local stack harness for end-to-end tests.
//!
//! [`Stack::shared`] starts one stack per test binary (moto with the project's stand-ins,
//! the ECR registry endpoint, four upstream registries) on 127.0.0.1 and hands out SDK
//! configs and registry clients pointed at it. The stack process watches the test process
//! and exits with it. If the stack cannot start, the test fails with the reason: it never
//! skips.
//!
//! Accounts (issue 17): the stack is the cache account ([`StackInfo::account`]); the consumer
//! accounts [`CONSUMER_IN_ORG`] and [`CONSUMER_OUTSIDE_ORG`] pull through its cache. A test
//! makes a role in a consumer account ([`Stack::create_role`]), assumes it
//! ([`Stack::assume_role`], or both at once with [`Stack::consumer`]) and acts as it:
//! [`Stack::sdk_config_as`], [`Stack::registry_as`], [`Stack::env_as`]. The registry endpoint
//! holds such a caller's pulls to the cross-account rules (`tests/stack/registry.py`).

pub mod fixtures;
pub mod lambda;
pub mod queue;
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

/// The consumer account in the stack's organisation (`aws:PrincipalOrgID` matches it).
pub const CONSUMER_IN_ORG: &str = "222233334444";
/// The consumer account outside the stack's organisation.
pub const CONSUMER_OUTSIDE_ORG: &str = "333344445555";

/// The organisation `aws:PrincipalOrgID` names in the stack (a stand-in value: moto's
/// Organizations API knows nothing of it).
#[derive(Debug, Clone, Deserialize)]
pub struct OrganizationInfo {
    pub id: String,
    /// Member accounts: the cache account and [`CONSUMER_IN_ORG`] unless a test changed it
    /// (`POST accounts/organization {"accounts": [...]}`).
    pub accounts: Vec<String>,
}

/// Temporary credentials of a role assumed through the stack's STS (moto): credentials of
/// the role's account, which every API of the stack answers for.
#[derive(Debug, Clone, Deserialize)]
pub struct AssumedRole {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`
    pub arn: String,
    pub account: String,
}

impl AssumedRole {
    /// The SDK's credentials for this session.
    pub fn credentials(&self) -> Credentials {
        Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            Some(self.session_token.clone()),
            None,
            "ptc-tests-assumed-role",
        )
    }
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
    /// The consumer accounts ([`CONSUMER_IN_ORG`], [`CONSUMER_OUTSIDE_ORG`]).
    #[serde(default)]
    pub consumer_accounts: Vec<String>,
    pub organization: Option<OrganizationInfo>,
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

    /// The seeds' Docker Hub rule: prefix `docker-hub`, upstream `registry-1.docker.io`, with
    /// its credential secret `ecr-pullthroughcache/docker-hub` (the stand-in's own credentials).
    pub async fn create_docker_hub_rule(&self) {
        let secret = self
            .upstream_secret("ecr-pullthroughcache/docker-hub", "registry-1.docker.io")
            .await;
        self.create_rule("docker-hub", "registry-1.docker.io", Some(&secret))
            .await;
    }

    /// Seed the quay.io stand-in with `repositories` repositories of one small two-platform
    /// image under `tags` tags (`POST /_stack/seed/bench`); answers their references,
    /// `quay.io/bench/app-R:tT`, in order.
    pub async fn seed_bench(&self, repositories: usize, tags: usize) -> Vec<String> {
        let seeded = self
            .control(
                "seed/bench",
                serde_json::json!({"repositories": repositories, "tags": tags}),
            )
            .await;
        seeded["images"]
            .as_array()
            .expect("seed/bench answers its images")
            .iter()
            .map(|v| v.as_str().expect("an image reference").to_owned())
            .collect()
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

    /// The identity policy a consumer's cluster role needs to pull through another account's
    /// cache (`accounts.CONSUMER_PULL_POLICY` of the stack): `ecr:GetAuthorizationToken`,
    /// the pull actions, `ecr:BatchImportUpstreamImage` and `ecr:CreateRepository`, on `*`.
    pub fn consumer_pull_policy() -> serde_json::Value {
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Token", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                {"Sid": "PullThroughCache", "Effect": "Allow", "Action": [
                    "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchImportUpstreamImage", "ecr:CreateRepository"
                ], "Resource": "*"}
            ]
        })
    }

    /// Create (or replace) IAM role `name` in `account` (moto's IAM of that account), trusting
    /// the cache account, with `identity_policy` as its one inline policy (none at all when
    /// `None`: the role may then do nothing). Returns the role's ARN. moto validates the
    /// policy; a refusal fails the test with moto's reason.
    pub async fn create_role(
        &self,
        account: &str,
        name: &str,
        identity_policy: Option<&serde_json::Value>,
    ) -> String {
        let answer = self
            .post_checked(
                &format!("accounts/{account}/roles"),
                serde_json::json!({"name": name, "policy": identity_policy}),
            )
            .await;
        answer["arn"]
            .as_str()
            .expect("the stack answers the role's ARN")
            .to_owned()
    }

    /// `sts:AssumeRole` of `role_arn` through the stack's STS, asked with the cache account's
    /// test credentials (moto checks neither the trust policy nor that the role exists).
    pub async fn assume_role(&self, role_arn: &str) -> AssumedRole {
        let answer = self
            .post_checked(
                "accounts/assume-role",
                serde_json::json!({"role_arn": role_arn, "session_name": "ptc-tests"}),
            )
            .await;
        serde_json::from_value(answer).expect("assume-role answer")
    }

    /// A new role in `account` with [`Stack::consumer_pull_policy`], assumed.
    pub async fn consumer(&self, account: &str) -> AssumedRole {
        let arn = self
            .create_role(
                account,
                &format!("ptc-consumer-{}", unique()),
                Some(&Self::consumer_pull_policy()),
            )
            .await;
        self.assume_role(&arn).await
    }

    /// The `SdkConfig` a job would build, pointed at the stack, as `role` (its account's
    /// registry, rules, repositories; `GetAuthorizationToken` issues a token bound to it).
    pub async fn sdk_config_as(&self, role: &AssumedRole) -> SdkConfig {
        sdk_config_with(
            &self.info.aws_endpoint,
            &self.info.region,
            role.credentials(),
        )
        .await
    }

    /// The ECR port as `role` (its own account's registry).
    pub async fn ecr_as(&self, role: &AssumedRole) -> Arc<dyn EcrApi> {
        Arc::new(SdkEcr::new(aws_sdk_ecr::Client::new(
            &self.sdk_config_as(role).await,
        )))
    }

    /// A registry client for the cache account's registry endpoint with `role`'s token: its
    /// pulls are the consumer's pulls through the cache, held to the cross-account rules (a
    /// refusal is [`ptc_core::oci::RegistryError::Status`] 403 naming the missing action).
    pub async fn registry_as(&self, role: &AssumedRole) -> RegistryClient {
        RegistryClient::for_ecr(
            http_client(Duration::from_secs(20)).expect("http client"),
            self.ecr_as(role).await,
            Some(&self.info.registry_endpoint),
        )
        .await
        .expect("registry client for the stack, as the consumer")
        .0
    }

    /// [`Stack::env`] with `role`'s credentials (and its session token): `ptc` or a function
    /// run as the consumer, against the same stack and registry endpoint.
    pub fn env_as(&self, role: &AssumedRole) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .env()
            .into_iter()
            .filter(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY")
            .collect();
        env.push(("AWS_ACCESS_KEY_ID".into(), role.access_key_id.clone()));
        env.push((
            "AWS_SECRET_ACCESS_KEY".into(),
            role.secret_access_key.clone(),
        ));
        env.push(("AWS_SESSION_TOKEN".into(), role.session_token.clone()));
        env
    }

    /// POST a control and return its JSON answer; a refusal fails with the stack's reason.
    async fn post_checked(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let url = format!("{}/_stack/{path}", self.info.aws_endpoint);
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .expect("stack control");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "control {path}: HTTP {status}: {text}");
        serde_json::from_str(&text).expect("control answer is JSON")
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
    sdk_config_with(
        endpoint,
        region,
        Credentials::new("testing", "testing", None, None, "ptc-tests"),
    )
    .await
}

/// [`sdk_config_for`] with other credentials (an assumed role's: [`AssumedRole::credentials`]).
pub async fn sdk_config_with(endpoint: &str, region: &str, credentials: Credentials) -> SdkConfig {
    let options = AwsOptions {
        region: Some(region.to_owned()),
        endpoint_url: Some(endpoint.to_owned()),
        max_attempts: 4,
        operation_timeout: Duration::from_secs(30),
    };
    load_sdk_config(&options)
        .await
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}

/// The prewarm benchmarks' peer: `skopeo ARGS... LINE` for each line of `lines` through
/// `xargs -P concurrency -n 1` (one process per line): the seconds it took and whether every
/// one succeeded. `None` when skopeo is not installed.
pub fn xargs_skopeo(lines: &[String], concurrency: usize, args: &[&str]) -> Option<(f64, bool)> {
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
        .args(["-P", &concurrency.to_string(), "-n", "1", "skopeo"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run xargs skopeo");
    child
        .stdin
        .take()
        .expect("xargs stdin")
        .write_all(lines.join("\n").as_bytes())
        .expect("write the list to xargs");
    let ok = child.wait().is_ok_and(|s| s.success());
    Some((started.elapsed().as_secs_f64(), ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stand-in's own tests (`tests/stack/test_*.py`): the registry policy API, the
    /// accounts, and each cross-account pull rule, in the stack's Python.
    #[test]
    fn stack_python_tests() {
        let python = python();
        assert!(
            python.exists(),
            "{} not found: run scripts/test.sh",
            python.display()
        );
        let out = Command::new(&python)
            .args([
                "-W",
                "ignore::ResourceWarning",
                "-m",
                "unittest",
                "discover",
                "-s",
            ])
            .arg(repo_root().join("tests/stack"))
            .args(["-p", "test_*.py"])
            .output()
            .expect("run the stack's Python tests");
        assert!(
            out.status.success(),
            "tests/stack/test_*.py failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The helpers a Rust test uses to act as a consumer account: its role's credentials, its
    /// own account in the APIs, its pulls through the cache held to the registry policy.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_consumer_pulls_through_the_cache_as_itself() {
        let stack = Stack::start();
        stack.create_rule("k8s", "registry.k8s.io", None).await;
        let role = stack.consumer(CONSUMER_IN_ORG).await;
        assert_eq!(role.account, CONSUMER_IN_ORG);
        let token = stack
            .ecr_as(&role)
            .await
            .authorization_token()
            .await
            .expect("token");
        assert!(
            token.proxy_endpoint.contains(CONSUMER_IN_ORG),
            "{}",
            token.proxy_endpoint
        );
        let registry = stack.registry_as(&role).await;
        let denied = registry
            .get_manifest("k8s/pause", "3.9")
            .await
            .expect_err("no registry policy: the first pull is denied");
        assert!(
            denied.to_string().contains("403")
                && denied.to_string().contains("ecr:CreateRepository"),
            "{denied}"
        );
        let account = &stack.info.account;
        let region = &stack.info.region;
        aws_sdk_ecr::Client::new(&stack.sdk_config().await)
            .put_registry_policy()
            .policy_text(
                serde_json::json!({"Version": "2012-10-17", "Statement": [{
                    "Sid": "Consumers", "Effect": "Allow", "Principal": {"AWS": CONSUMER_IN_ORG},
                    "Action": ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage", "ecr:BatchGetImage"],
                    "Resource": format!("arn:aws:ecr:{region}:{account}:repository/k8s/*")
                }]})
                .to_string(),
            )
            .send()
            .await
            .expect("PutRegistryPolicy");
        registry
            .get_manifest("k8s/pause", "3.9")
            .await
            .expect("granted by the registry policy (scope V2): the first pull succeeds");
    }
}

/// Issue 18 helpers: pull-time update exclusions, per-repository layers, a throttled layer
/// link and big upstream images (`tests/stack/test_issue18_standins.py` tests the stand-ins).
impl Stack {
    /// Put `principal_arn` on the cache account's pull-time update exclusion list (RegisterPullTimeUpdateExclusion through the stack's ECR endpoint); an ARN already on it is fine.
    pub async fn exclude_from_pull_time(&self, principal_arn: &str) {
        let result = aws_sdk_ecr::Client::new(&self.sdk_config().await)
            .register_pull_time_update_exclusion()
            .principal_arn(principal_arn)
            .send()
            .await;
        if let Err(err) = result {
            let already = err
                .as_service_error()
                .is_some_and(|e| e.is_exclusion_already_exists_exception());
            assert!(
                already,
                "RegisterPullTimeUpdateExclusion {principal_arn}: {err:?}"
            );
        }
    }

    /// Remove layer `digest` from repository `repository`'s cache (`POST ecr/layers/remove`): whether the repository held it.
    pub async fn remove_cached_layer(&self, repository: &str, digest: &str) -> bool {
        let answer = self
            .post_checked(
                "ecr/layers/remove",
                serde_json::json!({"repository": repository, "digest": digest}),
            )
            .await;
        answer["removed"]
            .as_bool()
            .expect("the stack answers {\"removed\": bool}")
    }

    /// Throttle the registry endpoint's layer downloads to about `bytes_per_second` (0 = off, the default).
    pub async fn throttle_blobs(&self, bytes_per_second: u64) {
        let answer = self
            .post_checked(
                "ecr",
                serde_json::json!({"blob_bytes_per_second": bytes_per_second}),
            )
            .await;
        assert_eq!(
            answer["blob_bytes_per_second"].as_u64(),
            Some(bytes_per_second),
            "the stack reports the throttle it was given"
        );
    }

    /// Push to upstream `host` a single-platform image with one random layer of `layer_bytes`; answers `{"repository", "tag", "digest", "layer_digest", "layer_bytes"}`.
    pub async fn push_big_image(
        &self,
        host: &str,
        repository: &str,
        tag: &str,
        layer_bytes: u64,
    ) -> serde_json::Value {
        self.post_checked(
            &format!("upstreams/{host}/image"),
            serde_json::json!({"repository": repository, "tag": tag, "layer_bytes": layer_bytes}),
        )
        .await
    }
}

#[cfg(test)]
mod issue18_helper_tests {
    use super::*;

    /// The issue 18 helpers against a stack: an exclusion registered (twice is fine), a big
    /// image pushed and pulled through, its layer removed from the cache, the throttle set.
    #[tokio::test(flavor = "multi_thread")]
    async fn issue18_helpers_drive_the_stand_ins() {
        let stack = Stack::start();
        let arn = format!("arn:aws:iam::{}:role/ptc-prewarm", stack.info.account);
        stack.exclude_from_pull_time(&arn).await;
        stack.exclude_from_pull_time(&arn).await;
        let listed = aws_sdk_ecr::Client::new(&stack.sdk_config().await)
            .list_pull_time_update_exclusions()
            .send()
            .await
            .expect("ListPullTimeUpdateExclusions");
        assert_eq!(
            listed.pull_time_update_exclusions(),
            std::slice::from_ref(&arn)
        );

        let pushed = stack
            .push_big_image("quay.io", "big/helper", "v1", 1_000_000)
            .await;
        assert_eq!(pushed["layer_bytes"], 1_000_000);
        let layer = pushed["layer_digest"].as_str().expect("layer digest");
        stack.create_rule("quay", "quay.io", None).await;
        let (registry, _) = stack.registry().await;
        registry
            .get_manifest("quay/big/helper", "v1")
            .await
            .expect("the big image pulls through the cache");
        assert!(!stack.remove_cached_layer("quay/big/helper", layer).await);
        let http = reqwest::Client::new();
        let token = aws_sdk_ecr::Client::new(&stack.sdk_config().await)
            .get_authorization_token()
            .send()
            .await
            .expect("token")
            .authorization_data()[0]
            .authorization_token()
            .expect("token")
            .to_owned();
        let blob = http
            .get(format!(
                "{}/v2/quay/big/helper/blobs/{layer}",
                stack.info.registry_endpoint
            ))
            .header("Authorization", format!("Basic {token}"))
            .send()
            .await
            .expect("layer GET");
        assert!(blob.status().is_success(), "{}", blob.status());
        assert_eq!(blob.bytes().await.expect("layer bytes").len(), 1_000_000);
        assert!(stack.remove_cached_layer("quay/big/helper", layer).await);

        stack.throttle_blobs(1_000_000).await;
        assert_eq!(stack.read("ecr").await["blob_bytes_per_second"], 1_000_000);
        stack.throttle_blobs(0).await;
    }
}
