//! Typed settings, read once at start-up from the environment and an optional TOML file
//! (`PTC_CONFIG_FILE`). The environment wins over the file. A missing or bad value stops
//! start-up with an error naming the variable (or the file and key).
//!
//! One loader per section, each in its own module, all reading through one [`source`]:
//! - `aws`: region, endpoints, retries and timeouts;
//! - [`rules`]: the expected rules, the managed prefixes, the credential age limit;
//! - [`prewarm`]: the watch list, platforms, concurrency, mode, discovery;
//! - [`fix`]: lifecycle-fixer's desired settings and mode, per prefix;
//! - [`health`]: health-metrics' inventory;
//!
//! and here the few that every job shares (metrics namespace and sink, logs).

use std::path::PathBuf;
use std::time::Duration;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::logging::LogFormat;
use crate::metrics::MetricsSink;
use crate::platform::Platform;
use crate::rules::{Prefix, RuleSet};
use crate::watchlist::WatchListSource;

mod aws;
pub mod fix;
pub mod health;
pub mod prewarm;
pub mod queue;
pub mod rules;
pub mod source;

pub use fix::{FixMode, FixSettings, PrefixFix};
pub use health::HealthSettings;
pub use prewarm::PrewarmMode;
pub use queue::QueueSettings;
pub use rules::ExpectedRule;
pub use source::Endpoint;

use source::{Source, invalid};

/// The CloudWatch namespace of every metric, unless `PTC_METRICS_NAMESPACE` says otherwise.
pub const DEFAULT_NAMESPACE: &str = "ECRPullThroughCache";

/// A setting that cannot be used: the variable (or the file and key), the value and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that cannot be used: `setting NAME: invalid value "...": why`.
    #[error("setting {name}: invalid value {value:?}: {reason}")]
    Invalid {
        /// The variable, e.g. `PTC_CONCURRENCY`; also for a check made once both sources
        /// are read (a range, a prefix listed twice), whichever gave the value.
        name: String,
        /// The value as given; bytes that are not UTF-8 show as U+FFFD.
        value: String,
        /// Why it cannot be used, e.g. `must be between 1 and 256`.
        reason: String,
    },
    /// The config file cannot be read, is not TOML, has an unknown key, or a key has a bad
    /// value: `config file PATH: why`.
    #[error("config file {path}: {reason}")]
    File {
        /// The file, from `PTC_CONFIG_FILE` (or `ptc --config`).
        path: PathBuf,
        /// The reader's or parser's message, or `KEY: why` for a bad value.
        reason: String,
    },
}

/// Everything the jobs are configured with. See the README's configuration reference.
///
/// Each field names its variable; its file key is the field's name unless said (the keys of
/// [`FixSettings`] and [`HealthSettings`] are given there).
/// Ranges are inclusive and checked by [`Settings::from_sources`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// `PTC_REGION`, e.g. `eu-west-1`; `None`: the SDK's chain (`AWS_REGION`, the profile, ...).
    pub region: Option<String>,
    /// `PTC_AWS_ENDPOINT_URL` (file `aws_endpoint`): one endpoint for every AWS API (the local
    /// stack); `None`: AWS's endpoints.
    pub aws_endpoint: Option<Endpoint>,
    /// `PTC_REGISTRY_ENDPOINT`: the ECR registry endpoint to pull through instead of the token's
    /// `proxyEndpoint` (the local stack); `None`: the `proxyEndpoint`.
    pub registry_endpoint: Option<Endpoint>,
    /// `PTC_UPSTREAM_ENDPOINTS` (`HOST=URL` items; file table `upstream_endpoints`, the variable's
    /// items over it): where to reach an upstream registry directly, by lowercase host, e.g.
    /// `quay.io` → `http://127.0.0.1:5001`. Hosts not listed: `https://<host>`.
    pub upstream_endpoints: BTreeMap<String, Endpoint>,
    /// `PTC_METRICS_NAMESPACE` (default [`DEFAULT_NAMESPACE`]): 1 to 255 characters of letters,
    /// digits and `. / - _ # :`, not starting `AWS/` (reserved by CloudWatch).
    pub metrics_namespace: String,
    /// `PTC_RULES` (`PREFIX=URL` or `PREFIX=URL+credential` items; file `[[rules]]` tables): the
    /// rules the registry must have, each prefix once. Empty: no expectation.
    pub expected_rules: Vec<ExpectedRule>,
    /// `PTC_RULE_PREFIXES`: the rule prefixes the deployment may manage (the template's
    /// `RulePrefixes`, which also scope the functions' IAM policies). Empty: no scope check.
    /// validate-rules reports a rule outside them, since the functions cannot manage its
    /// repositories.
    pub rule_prefixes: Vec<Prefix>,
    /// `PTC_WATCH_LIST`: image references to keep cached, separated by commas, whitespace or
    /// newlines, kept as written (parsed later, see [`crate::watchlist::Dedup`]).
    pub watch_list: Vec<String>,
    /// `PTC_PLATFORMS` (`OS/ARCH[/VARIANT]` items; default `linux/amd64` and `linux/arm64`; at
    /// least one): what prewarm pulls from a multi-platform image.
    pub platforms: Vec<Platform>,
    /// `PTC_CONCURRENCY` (1-256, default 16): concurrent registry requests per run.
    pub concurrency: usize,
    /// `PTC_AWS_MAX_ATTEMPTS` (1-20, default 5): attempts per AWS call, the first included.
    pub aws_max_attempts: u32,
    /// `PTC_AWS_TIMEOUT_SECS` (1-900 s, default 30; file `aws_timeout_secs`): one AWS call, retries
    /// included.
    pub aws_timeout: Duration,
    /// `PTC_HTTP_TIMEOUT_SECS` (1-900 s, default 20; file `http_timeout_secs`): one registry
    /// request.
    pub http_timeout: Duration,
    /// `PTC_LOG_FORMAT` (`json` or `text`): `json` by default in Lambda, `text` elsewhere.
    pub log_format: LogFormat,
    /// `PTC_LOG`: a `tracing` filter, checked at start-up; none means each program's default.
    /// From the environment only (no file key).
    pub log_filter: Option<String>,
    /// `PTC_CREDENTIAL_MAX_AGE_DAYS` (1-3650, default 90): warn when a rule's credential secret
    /// has not changed for this many days.
    pub credential_max_age_days: u32,
    /// `PTC_PULL_TIME_EXCLUDED_ROLES` (IAM role or user ARNs, comma-separated; no file key,
    /// the template writes it from the functions' roles): the principals that pull for the
    /// product and must be ECR pull-time update exclusions, so that their pulls do not move
    /// `lastRecordedPullTime`. validate-rules checks each is in
    /// `ListPullTimeUpdateExclusions`. Each must match ECR's pattern
    /// ([`crate::pull_time::PrincipalArn::parse`]). Empty: no check.
    pub pull_time_excluded_roles: Vec<crate::pull_time::PrincipalArn>,
    /// `PTC_PREWARM_MODE` (`layers`, the default, or `manifests`): what a prewarm pull fetches.
    pub prewarm_mode: PrewarmMode,
    /// `PTC_RATELIMIT_FLOOR` (0-100000, default 10): stop pulling from an upstream when its
    /// `ratelimit-remaining` falls below this.
    pub ratelimit_floor: u64,
    /// `PTC_DISCOVERY_DAYS` (0-365, default 7): prewarm also every cached tag pulled within
    /// this many days (0: off).
    pub discovery_days: u32,
    /// `PTC_WATCH_LIST_URL` (file `watch_list_url`; `s3://BUCKET/KEY`, `file:///PATH` or a
    /// path): a long watch list kept outside the settings (S3 object or local file).
    pub watch_list_source: Option<WatchListSource>,
    /// `PTC_PREWARM_STATE_URL` (file `prewarm_state_url`; `s3://BUCKET/KEY`, `file:///PATH`
    /// or a path): where prewarm remembers the structure of the manifests it verified (each
    /// index's platform entries, each image's blobs, by digest), so that a later run can tell
    /// a complete cached image from ECR's API alone, without pulling. `None`: nothing is
    /// remembered (the Lambda then pulls every image's manifests each run; `ptc prewarm`
    /// uses a file in the user's cache directory).
    pub prewarm_state: Option<WatchListSource>,
    /// lifecycle-fixer's desired settings and mode.
    pub fix: FixSettings,
    /// The work queue (issue 19): where a planned run's work goes.
    pub queue: QueueSettings,
    /// `PTC_METRICS_SINK` (`api`, the default, or `emf`): where every job's metrics go:
    /// `PutMetricData` calls, or Embedded Metric Format log lines.
    pub metrics_sink: MetricsSink,
    /// health-metrics' inventory settings.
    pub health: HealthSettings,
}

impl Settings {
    /// From the process environment (and `PTC_CONFIG_FILE` if set).
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_with(None)
    }

    /// Every `PTC_*` variable of the process is UTF-8 text, or an error naming the first
    /// that is not (`ptc` checks it before its argument parser reads `PTC_REGISTRY_HOST`).
    pub fn check_environment() -> Result<(), ConfigError> {
        source::check_text(std::env::vars_os())
    }

    /// From the process environment, with `config_file` (`ptc --config`) in place of
    /// `PTC_CONFIG_FILE` when given. A `PTC_*` value that is not UTF-8 is an error naming it.
    pub fn load_with(config_file: Option<String>) -> Result<Self, ConfigError> {
        Self::check_environment()?;
        Self::from_sources(|name| {
            if name == "PTC_CONFIG_FILE" && config_file.is_some() {
                config_file.clone()
            } else {
                std::env::var(name).ok()
            }
        })
    }

    /// From any variable source; `PTC_CONFIG_FILE` in it names the optional file. Each
    /// section's loader reads its own variables and keys; the first bad value is the error.
    pub fn from_sources(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let (src, mut file) = Source::open(&env)?;
        let aws = aws::load(&src, &mut file)?;
        let metrics_namespace = src
            .var("PTC_METRICS_NAMESPACE")
            .or(file.metrics_namespace.take())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        validate_namespace(&metrics_namespace)
            .map_err(|r| invalid("PTC_METRICS_NAMESPACE", &metrics_namespace, r))?;
        let rules = rules::load(&src, &mut file)?;
        let prewarm = prewarm::load(&src, &mut file)?;
        let (log_format, log_filter) = load_logs(&src, file.log_format)?;
        let fix = fix::load(&src, &mut file)?;
        let metrics_sink = src.choice(
            "PTC_METRICS_SINK",
            file.metrics_sink,
            MetricsSink::Api,
            &[("api", MetricsSink::Api), ("emf", MetricsSink::Emf)],
        )?;
        let health = health::load(&src, &mut file)?;
        let queue = queue::load(&src)?;
        Ok(Self {
            region: aws.region,
            aws_endpoint: aws.aws_endpoint,
            registry_endpoint: aws.registry_endpoint,
            upstream_endpoints: aws.upstream_endpoints,
            metrics_namespace,
            expected_rules: rules.expected_rules,
            rule_prefixes: rules.rule_prefixes,
            watch_list: prewarm.watch_list,
            platforms: prewarm.platforms,
            concurrency: prewarm.concurrency,
            aws_max_attempts: aws.aws_max_attempts,
            aws_timeout: aws.aws_timeout,
            http_timeout: aws.http_timeout,
            log_format,
            log_filter,
            credential_max_age_days: rules.credential_max_age_days,
            pull_time_excluded_roles: rules.pull_time_excluded_roles,
            prewarm_mode: prewarm.prewarm_mode,
            ratelimit_floor: prewarm.ratelimit_floor,
            discovery_days: prewarm.discovery_days,
            watch_list_source: prewarm.watch_list_source,
            prewarm_state: prewarm.prewarm_state,
            fix,
            metrics_sink,
            health,
            queue,
        })
    }

    /// The expected rules as a routing table (for `ptc map` without a registry).
    pub fn expected_rule_set(&self) -> RuleSet {
        RuleSet::new(
            self.expected_rules
                .iter()
                .map(ExpectedRule::to_rule)
                .collect(),
        )
    }
}

/// `PTC_LOG_FORMAT` (`json` or `text`; default json in Lambda, text elsewhere) and `PTC_LOG`
/// (a `tracing` filter, checked here).
fn load_logs(
    src: &Source,
    from_file: Option<LogFormat>,
) -> Result<(LogFormat, Option<String>), ConfigError> {
    let default = if src.var("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
    let format = src.choice(
        "PTC_LOG_FORMAT",
        from_file,
        default,
        &[("json", LogFormat::Json), ("text", LogFormat::Text)],
    )?;
    let filter = match src.var("PTC_LOG") {
        Some(v) => {
            crate::logging::check_filter(&v).map_err(|e| invalid("PTC_LOG", &v, e))?;
            Some(v)
        }
        None => None,
    };
    Ok((format, filter))
}

fn validate_namespace(ns: &str) -> Result<(), &'static str> {
    if ns.is_empty() || ns.len() > 255 {
        return Err("1 to 255 characters");
    }
    if ns.starts_with("AWS/") {
        return Err("the AWS/ namespace is reserved");
    }
    if !ns
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "./-_#:".contains(c))
    {
        return Err("letters, digits and . / - _ # : only");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::source::check_text;
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Settings::from_sources(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_sensible() {
        let s = load(&[]).unwrap();
        assert_eq!(s.metrics_namespace, DEFAULT_NAMESPACE);
        assert_eq!(s.concurrency, 16);
        assert_eq!(
            s.platforms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["linux/amd64", "linux/arm64"]
        );
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.log_filter, None);
        assert_eq!(s.credential_max_age_days, 90);
        assert_eq!(
            (s.prewarm_mode, s.ratelimit_floor, s.discovery_days),
            (PrewarmMode::Layers, 10, 7)
        );
        assert!(s.aws_endpoint.is_none() && s.expected_rules.is_empty());
        assert_eq!(
            load(&[("AWS_LAMBDA_FUNCTION_NAME", "f")])
                .unwrap()
                .log_format,
            LogFormat::Json
        );
    }

    #[test]
    fn reads_every_variable() {
        let s = load(&[
            ("PTC_REGION", "eu-west-1"),
            ("PTC_AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ("PTC_REGISTRY_ENDPOINT", "http://localhost:5000/"),
            (
                "PTC_UPSTREAM_ENDPOINTS",
                "quay.io=http://127.0.0.1:1, ghcr.io=https://ghcr.example",
            ),
            ("PTC_METRICS_NAMESPACE", "Team/PTC"),
            (
                "PTC_RULES",
                "quay=quay.io, docker-hub=registry-1.docker.io+credential",
            ),
            ("PTC_RULE_PREFIXES", "quay,team/ghcr,ROOT"),
            ("PTC_WATCH_LIST", "nginx:1.25\nquay.io/a/b:1"),
            ("PTC_PLATFORMS", "linux/arm64,linux/arm/v7"),
            ("PTC_CONCURRENCY", "4"),
            ("PTC_AWS_MAX_ATTEMPTS", "3"),
            ("PTC_AWS_TIMEOUT_SECS", "10"),
            ("PTC_HTTP_TIMEOUT_SECS", "5"),
            ("PTC_LOG_FORMAT", "json"),
            ("PTC_LOG", "warn,ptc_core=debug"),
            ("PTC_CREDENTIAL_MAX_AGE_DAYS", "30"),
            ("PTC_PREWARM_MODE", "manifests"),
            ("PTC_RATELIMIT_FLOOR", "25"),
            ("PTC_DISCOVERY_DAYS", "0"),
            ("PTC_WATCH_LIST_URL", "s3://team-bucket/ptc/watch-list.txt"),
            ("PTC_FIX_MODE", "enforce"),
            ("PTC_LIFECYCLE_DAYS", "14"),
            (
                "PTC_PULL_PRINCIPALS",
                "111122223333, arn:aws:iam::444455556666:role/nodes",
            ),
            ("PTC_PULL_ORG_ID", "o-a1b2c3d4e5"),
            ("PTC_REPOSITORY_TAGS", "team=platform,cost-center=42"),
            ("PTC_SCAN_ON_PUSH", "true"),
        ])
        .unwrap();
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.aws_endpoint.unwrap().as_str(), "http://127.0.0.1:4566");
        assert_eq!(
            s.registry_endpoint.unwrap().as_str(),
            "http://localhost:5000"
        );
        assert_eq!(
            s.upstream_endpoints["quay.io"].as_str(),
            "http://127.0.0.1:1"
        );
        assert_eq!(s.metrics_namespace, "Team/PTC");
        assert_eq!(s.expected_rules.len(), 2);
        let prefixes: Vec<&str> = s.rule_prefixes.iter().map(Prefix::as_str).collect();
        assert_eq!(prefixes, ["quay", "team/ghcr", "ROOT"]);
        assert!(s.expected_rules[1].credential && !s.expected_rules[0].credential);
        assert_eq!(s.watch_list, ["nginx:1.25", "quay.io/a/b:1"]);
        assert_eq!(s.platforms[1].variant.as_deref(), Some("v7"));
        assert_eq!((s.concurrency, s.aws_max_attempts), (4, 3));
        assert_eq!((s.aws_timeout.as_secs(), s.http_timeout.as_secs()), (10, 5));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.log_filter.as_deref(), Some("warn,ptc_core=debug"));
        assert_eq!(s.credential_max_age_days, 30);
        assert_eq!(
            (s.prewarm_mode, s.ratelimit_floor, s.discovery_days),
            (PrewarmMode::Manifests, 25, 0)
        );
    }

    #[test]
    fn a_value_that_is_not_text_names_its_variable() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt as _;
        let bad = OsString::from_vec(b"nginx:1.25,\xff\xfe".to_vec());
        let err = check_text([
            (OsString::from("HOME"), OsString::from_vec(vec![0xff])),
            (OsString::from("PTC_WATCH_LIST"), bad),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("PTC_WATCH_LIST"), "{err}");
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        assert!(check_text([(OsString::from("PTC_LOG"), OsString::from("info"))]).is_ok());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases = [
            ("PTC_CONCURRENCY", "zero"),
            ("PTC_CONCURRENCY", "0"),
            ("PTC_AWS_MAX_ATTEMPTS", "50"),
            ("PTC_AWS_ENDPOINT_URL", "http://10.0.0.1:4566"),
            ("PTC_REGISTRY_ENDPOINT", "ftp://127.0.0.1"),
            ("PTC_UPSTREAM_ENDPOINTS", "quay.io"),
            ("PTC_METRICS_NAMESPACE", "AWS/ECR"),
            ("PTC_RULES", "quay:quay.io"),
            ("PTC_RULES", "quay=gcr.io"),
            ("PTC_RULES", "quay=quay.io/coreos"),
            ("PTC_RULES", "quay=quay.io,quay=quay.io"),
            ("PTC_RULE_PREFIXES", "Quay"),
            ("PTC_RULE_PREFIXES", "quay/"),
            ("PTC_PLATFORMS", "amd64"),
            ("PTC_LOG_FORMAT", "xml"),
            ("PTC_LOG", "=[bad"),
            ("PTC_CREDENTIAL_MAX_AGE_DAYS", "0"),
            ("PTC_PREWARM_MODE", "all"),
            ("PTC_DISCOVERY_DAYS", "1000"),
            ("PTC_WATCH_LIST_URL", "s3://Bad_Bucket/x"),
            ("PTC_WATCH_LIST_URL", "s3://bucket/"),
            ("PTC_WATCH_LIST_URL", "https://example.com/list"),
            ("PTC_FIX_MODE", "replace"),
            ("PTC_PULL_PRINCIPALS", "123"),
            ("PTC_PULL_ORG_ID", "org-1"),
            ("PTC_REPOSITORY_TAGS", "team"),
            ("PTC_SCAN_ON_PUSH", "yes"),
        ];
        for (name, value) in cases {
            let err = load(&[(name, value)]).expect_err(name);
            assert!(err.to_string().contains(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn watch_list_documents_are_lines_or_json() {
        assert_eq!(
            WatchListSource::entries("# list\nnginx:1.25\n\n  quay.io/a/b:1 \n").unwrap(),
            ["nginx:1.25", "quay.io/a/b:1"]
        );
        assert_eq!(
            WatchListSource::entries(r#"["nginx:1.25"]"#).unwrap(),
            ["nginx:1.25"]
        );
        assert!(
            WatchListSource::entries("[1, 2]")
                .unwrap_err()
                .contains("JSON array")
        );
        assert_eq!(
            WatchListSource::parse("file:///etc/ptc/list.txt").unwrap(),
            WatchListSource::File("/etc/ptc/list.txt".into())
        );
        assert_eq!(
            WatchListSource::parse("list.txt").unwrap(),
            WatchListSource::File("list.txt".into())
        );
    }

    #[test]
    fn file_is_read_and_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ptc.toml");
        std::fs::write(
            &path,
            r#"
metrics_namespace = "FromFile"
concurrency = 7
watch_list = ["nginx:1.25"]
[upstream_endpoints]
"quay.io" = "http://127.0.0.1:9"
[[rules]]
prefix = "docker-hub"
upstream_url = "registry-1.docker.io"
credential = true
"#,
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let s = load(&[("PTC_CONFIG_FILE", p), ("PTC_CONCURRENCY", "3")]).unwrap();
        assert_eq!(s.metrics_namespace, "FromFile");
        assert_eq!(s.concurrency, 3);
        assert_eq!(s.watch_list, ["nginx:1.25"]);
        assert!(s.expected_rules[0].credential);
        assert_eq!(
            s.expected_rule_set().rules()[0].upstream_url,
            "registry-1.docker.io"
        );
        assert_eq!(
            s.upstream_endpoints["quay.io"].as_str(),
            "http://127.0.0.1:9"
        );
    }

    #[test]
    fn a_rule_for_an_upstream_this_version_does_not_know_is_kept() {
        // AWS adds upstreams before this code knows them: such a rule is kept with its URL and
        // a note, not refused at start-up. Chainguard (cgr.dev) is one the user guide lists.
        let s = load(&[(
            "PTC_RULES",
            "chainguard=cgr.dev+credential, future=https://Registry.Future-Upstream.example/",
        )])
        .unwrap();
        let [chainguard, future] = &s.expected_rules[..] else {
            panic!("{:?}", s.expected_rules);
        };
        assert_eq!(
            (chainguard.upstream_url.as_str(), chainguard.credential),
            ("cgr.dev", true)
        );
        assert_eq!(chainguard.unknown_kind_note(), None);
        assert_eq!(future.upstream_url, "registry.future-upstream.example");
        assert!(
            future
                .unknown_kind_note()
                .unwrap()
                .contains("checked as a generic registry"),
            "{future:?}"
        );
        let rules = s.expected_rule_set();
        assert_eq!(
            rules.get("future").unwrap().kind,
            crate::rules::UpstreamKind::Other("registry.future-upstream.example".into())
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ptc.toml");
        std::fs::write(
            &path,
            "[[rules]]\nprefix = \"future\"\nupstream_url = \"registry.future-upstream.example\"\n",
        )
        .unwrap();
        let s = load(&[("PTC_CONFIG_FILE", path.to_str().unwrap())]).unwrap();
        assert_eq!(
            s.expected_rules[0].upstream_url,
            "registry.future-upstream.example"
        );
    }

    #[test]
    fn bad_file_names_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ptc.toml");
        std::fs::write(&path, "concurency = 3\n").unwrap();
        let err = load(&[("PTC_CONFIG_FILE", path.to_str().unwrap())])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ptc.toml") && err.contains("concurency"),
            "{err}"
        );
        std::fs::write(&path, "aws_endpoint = \"http://example.com\"\n").unwrap();
        let err = load(&[("PTC_CONFIG_FILE", path.to_str().unwrap())])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("aws_endpoint") && err.contains("loopback"),
            "{err}"
        );
        let err = load(&[("PTC_CONFIG_FILE", "/nonexistent/ptc.toml")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/ptc.toml"), "{err}");
    }

    #[test]
    fn metrics_sink_and_health_settings() {
        let s = load(&[]).unwrap();
        assert_eq!(s.metrics_sink, MetricsSink::Api);
        assert_eq!(
            (
                s.health.storage_price_per_gb_month,
                s.health.unused_days,
                s.health.per_repository
            ),
            (0.10, 30, false)
        );
        let s = load(&[
            ("PTC_METRICS_SINK", "emf"),
            ("PTC_STORAGE_PRICE_GB_MONTH", "0.12"),
            ("PTC_UNUSED_DAYS", "14"),
            ("PTC_METRICS_PER_REPOSITORY", "true"),
        ])
        .unwrap();
        assert_eq!(s.metrics_sink, MetricsSink::Emf);
        assert_eq!(
            (
                s.health.storage_price_per_gb_month,
                s.health.unused_days,
                s.health.per_repository
            ),
            (0.12, 14, true)
        );
        for (name, value) in [
            ("PTC_METRICS_SINK", "logs"),
            ("PTC_STORAGE_PRICE_GB_MONTH", "NaN"),
            ("PTC_STORAGE_PRICE_GB_MONTH", "-1"),
            ("PTC_STORAGE_PRICE_GB_MONTH", "ten cents"),
            ("PTC_UNUSED_DAYS", "0"),
            ("PTC_METRICS_PER_REPOSITORY", "yes"),
        ] {
            let err = load(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{name}={value} -> {err}");
        }
    }

    #[test]
    fn desired_settings_per_prefix_from_file_or_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ptc.toml");
        std::fs::write(
            &path,
            r#"
lifecycle_days = 30
pull_principals = ["111122223333"]
[repository_tags]
managed-by = "ptc"
[prefixes.quay]
lifecycle_days = 7
scan_on_push = true
[prefixes."docker-hub/"]
pull_org_id = "o-abcdefghij"
repository_tags = { team = "platform" }
"#,
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let s = load(&[("PTC_CONFIG_FILE", p)]).unwrap();
        let quay = s.fix.for_prefix(&Prefix::parse("quay/").unwrap());
        assert_eq!((quay.lifecycle_days, quay.scan_on_push), (7, true));
        assert_eq!(quay.pull_principals, ["111122223333"], "inherited");
        let hub = s.fix.for_prefix(&Prefix::parse("docker-hub").unwrap());
        assert_eq!(hub.lifecycle_days, 30);
        assert_eq!(hub.pull_org_id.as_deref(), Some("o-abcdefghij"));
        assert_eq!(hub.repository_tags["team"], "platform");
        assert!(
            !hub.repository_tags.contains_key("managed-by"),
            "replaced, not merged"
        );
        let other = s.fix.for_prefix(&Prefix::parse("k8s").unwrap());
        assert_eq!((other.lifecycle_days, other.scan_on_push), (30, false));

        // The environment (a SAM parameter) wins, as JSON.
        let s = load(&[
            ("PTC_CONFIG_FILE", p),
            ("PTC_PREFIX_SETTINGS", r#"{"k8s": {"lifecycle_days": 14}}"#),
        ])
        .unwrap();
        assert_eq!(
            s.fix
                .for_prefix(&Prefix::parse("k8s").unwrap())
                .lifecycle_days,
            14
        );
        assert_eq!(
            s.fix
                .for_prefix(&Prefix::parse("quay").unwrap())
                .lifecycle_days,
            30
        );

        for (value, named) in [
            (r#"{"k8s": {"lifecycle_dayz": 14}}"#, "lifecycle_dayz"),
            (r#"{"k8s": {"lifecycle_days": 0}}"#, "lifecycle_days"),
            (r#"{"k8s": {"pull_principals": ["bob"]}}"#, "bob"),
            (r#"{"k8s": {"pull_org_id": "org-1"}}"#, "org-1"),
            (r#"{"Bad Prefix": {}}"#, "Bad Prefix"),
            ("[1, 2]", "JSON object"),
        ] {
            let err = load(&[("PTC_PREFIX_SETTINGS", value)])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("PTC_PREFIX_SETTINGS") && err.contains(named),
                "{value} -> {err}"
            );
        }
    }

    #[test]
    fn a_prefix_given_twice_is_refused() {
        // `quay` and `quay/` are one rule prefix: two settings for it would leave which one
        // applies to chance.
        let err = load(&[(
            "PTC_PREFIX_SETTINGS",
            r#"{"quay": {"lifecycle_days": 7}, "quay/": {"lifecycle_days": 14}}"#,
        )])
        .unwrap_err()
        .to_string();
        assert!(err.contains("PTC_PREFIX_SETTINGS"), "{err}");
        assert!(err.contains("prefix listed twice"), "{err}");
        // Either spelling alone is the same prefix.
        let s = load(&[("PTC_PREFIX_SETTINGS", r#"{"quay/": {"lifecycle_days": 7}}"#)]).unwrap();
        assert_eq!(
            s.fix
                .for_prefix(&Prefix::parse("quay").unwrap())
                .lifecycle_days,
            7
        );
    }

    #[test]
    fn modes_are_named_as_documented() {
        for (name, mode) in FixMode::CHOICES {
            let s = load(&[("PTC_FIX_MODE", name)]).unwrap();
            assert_eq!(s.fix.mode, mode);
            assert_eq!(mode.as_str(), name);
            assert_eq!(name.parse::<FixMode>(), Ok(mode));
        }
        // As before: the fix mode exactly as named, the other choices with blanks around.
        let err = load(&[("PTC_FIX_MODE", " enforce")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("\" enforce\""), "{err}");
        let s = load(&[("PTC_LOG_FORMAT", " json "), ("PTC_METRICS_SINK", "emf ")]).unwrap();
        assert_eq!(
            (s.log_format, s.metrics_sink),
            (LogFormat::Json, MetricsSink::Emf)
        );
        let err = load(&[("PTC_FIX_MODE", "force")]).unwrap_err().to_string();
        assert!(err.contains("expected fill, enforce or dry-run"), "{err}");
        let err = load(&[("PTC_PREWARM_MODE", "blobs")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected layers or manifests"), "{err}");
    }
}
