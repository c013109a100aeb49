//! Typed settings, read once at start-up from the environment and an optional TOML file
//! (`PTC_CONFIG_FILE`). The environment wins over the file. A missing or bad value stops
//! start-up with an error naming the variable (or the file and key).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::rules::{Prefix, PtcRule, RuleError, RuleSet};

pub const DEFAULT_NAMESPACE: &str = "ECRPullThroughCache";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("setting {name}: invalid value {value:?}: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

fn invalid(name: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name: name.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// An endpoint override: `https://` anywhere, plain `http://` only on a loopback address
/// (the local stack). TLS verification is never turned off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Endpoint(Url);

/// Is `url` on this machine: a loopback address, or `localhost`? (Where plain http is
/// allowed: the local stack.)
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl Endpoint {
    pub fn parse(value: &str) -> Result<Self, String> {
        let url = Url::parse(value.trim()).map_err(|e| format!("not a URL: {e}"))?;
        match url.scheme() {
            "https" => {}
            "http" => {
                if !is_loopback(&url) {
                    return Err(
                        "plain http is allowed only on a loopback address; use https".into(),
                    );
                }
            }
            other => return Err(format!("scheme {other} is not http or https")),
        }
        if url.host().is_none() {
            return Err("no host".into());
        }
        Ok(Self(url))
    }

    /// The URL without a trailing slash.
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }
}

impl TryFrom<String> for Endpoint {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Endpoint> for String {
    fn from(value: Endpoint) -> Self {
        value.as_str().to_owned()
    }
}

/// A rule the operator expects the registry to have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedRule {
    pub prefix: Prefix,
    pub upstream_url: String,
    /// Whether the rule must carry a credential secret.
    #[serde(default)]
    pub credential: bool,
}

impl ExpectedRule {
    /// `PREFIX=UPSTREAM_URL` or `PREFIX=UPSTREAM_URL+credential`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (prefix, url) = spec
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("{spec:?} is not PREFIX=UPSTREAM_URL"))?;
        let (url, credential) = match url.strip_suffix("+credential") {
            Some(url) => (url, true),
            None => (url, false),
        };
        let rule = PtcRule::new(prefix.trim(), url).map_err(|e: RuleError| e.to_string())?;
        Ok(Self {
            prefix: rule.prefix,
            upstream_url: rule.upstream_url,
            credential,
        })
    }

    pub fn to_rule(&self) -> PtcRule {
        // Validated when parsed: the URL's kind is known.
        PtcRule::new(self.prefix.as_str(), &self.upstream_url)
            .expect("expected rules are validated when read")
    }
}

/// Platform wanted from multi-platform images, e.g. `linux/arm64` or `linux/arm/v7`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn parse(value: &str) -> Result<Self, String> {
        let parts: Vec<&str> = value.trim().split('/').collect();
        let ok =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Self {
                os: (*os).to_owned(),
                architecture: (*arch).to_owned(),
                variant: None,
            }),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => Ok(Self {
                os: (*os).to_owned(),
                architecture: (*arch).to_owned(),
                variant: Some((*variant).to_owned()),
            }),
            _ => Err(format!("{value:?} is not OS/ARCH[/VARIANT]")),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for Platform {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Platform> for String {
    fn from(value: Platform) -> Self {
        value.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

/// Everything the jobs are configured with. See the README's configuration reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub region: Option<String>,
    pub aws_endpoint: Option<Endpoint>,
    pub registry_endpoint: Option<Endpoint>,
    pub upstream_endpoints: BTreeMap<String, Endpoint>,
    pub metrics_namespace: String,
    pub expected_rules: Vec<ExpectedRule>,
    /// `PTC_RULE_PREFIXES`: the rule prefixes the deployment may manage (the template's
    /// `RulePrefixes`, which also scope the functions' IAM policies). Empty: no scope check.
    /// validate-rules reports a rule outside them, since the functions cannot manage its
    /// repositories.
    pub rule_prefixes: Vec<Prefix>,
    pub watch_list: Vec<String>,
    pub platforms: Vec<Platform>,
    pub concurrency: usize,
    pub aws_max_attempts: u32,
    pub aws_timeout: Duration,
    pub http_timeout: Duration,
    pub log_format: LogFormat,
    /// `PTC_LOG`: a `tracing` filter, checked at start-up; none means each program's default.
    pub log_filter: Option<String>,
    /// Warn when a rule's credential secret has not changed for this many days.
    pub credential_max_age_days: u32,
    /// What a prewarm pull fetches.
    pub prewarm_mode: PrewarmMode,
    /// Stop pulling from an upstream when its `ratelimit-remaining` falls below this.
    pub ratelimit_floor: u64,
    /// Prewarm also every cached tag pulled within this many days (0: off).
    pub discovery_days: u32,
    /// A long watch list kept outside the settings (S3 object or local file).
    pub watch_list_source: Option<WatchListSource>,
    /// lifecycle-fixer's desired settings and mode.
    pub fix: FixSettings,
    /// Where every job's metrics go: `PutMetricData` calls, or Embedded Metric Format log lines.
    pub metrics_sink: MetricsSink,
    /// health-metrics' inventory settings.
    pub health: HealthSettings,
}

/// `api` (default): `PutMetricData`; `emf`: CloudWatch Embedded Metric Format log lines on
/// stdout (no API call, no `cloudwatch:PutMetricData` permission; needs the Lambda log
/// group, metrics appear once CloudWatch Logs has processed the lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsSink {
    Api,
    Emf,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthSettings {
    /// USD per GB-month of stored images (the published ECR price is 0.10).
    pub storage_price_per_gb_month: f64,
    /// An image not pulled for this many days counts as unused.
    pub unused_days: u32,
    /// Also publish inventory metrics per repository (each repository is then a billed
    /// custom metric per metric name); default per prefix only.
    pub per_repository: bool,
}

/// What lifecycle-fixer brings every cached repository to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixSettings {
    /// `fill` (default), `enforce` or `dry-run`.
    pub mode: String,
    pub lifecycle_days: u32,
    /// A lifecycle policy document replacing the default (validated by lifecycle-fixer).
    pub lifecycle_policy: Option<String>,
    /// Accounts (12 digits) or IAM ARNs granted pull on every cached repository.
    pub pull_principals: Vec<String>,
    /// An AWS Organization granted pull (`aws:PrincipalOrgID`).
    pub pull_org_id: Option<String>,
    pub repository_tags: BTreeMap<String, String>,
    pub scan_on_push: bool,
    /// Overrides per rule prefix (`[prefixes.<prefix>]` in the file, or `PTC_PREFIX_SETTINGS`
    /// as a JSON object); what a prefix does not set comes from the settings above.
    pub prefixes: BTreeMap<String, PrefixFix>,
}

/// The desired settings of one rule prefix, where they differ from the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixFix {
    pub lifecycle_days: Option<u32>,
    pub lifecycle_policy: Option<String>,
    pub pull_principals: Option<Vec<String>>,
    pub pull_org_id: Option<String>,
    pub repository_tags: Option<BTreeMap<String, String>>,
    pub scan_on_push: Option<bool>,
}

impl FixSettings {
    /// The settings of `prefix`: its overrides on top of the defaults.
    pub fn for_prefix(&self, prefix: &str) -> FixSettings {
        let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
        let found = self.prefixes.iter().find(|(k, _)| {
            k.as_str() == prefix || k.strip_suffix('/').unwrap_or(k.as_str()) == trimmed
        });
        let Some((_, o)) = found else {
            return FixSettings {
                prefixes: BTreeMap::new(),
                ..self.clone()
            };
        };
        // A prefix that sets its own lifecycle days does not inherit a global policy text.
        let lifecycle_policy = match (&o.lifecycle_policy, o.lifecycle_days) {
            (Some(text), _) => Some(text.clone()),
            (None, Some(_)) => None,
            (None, None) => self.lifecycle_policy.clone(),
        };
        FixSettings {
            mode: self.mode.clone(),
            lifecycle_days: o.lifecycle_days.unwrap_or(self.lifecycle_days),
            lifecycle_policy,
            pull_principals: o
                .pull_principals
                .clone()
                .unwrap_or_else(|| self.pull_principals.clone()),
            pull_org_id: o.pull_org_id.clone().or_else(|| self.pull_org_id.clone()),
            repository_tags: o
                .repository_tags
                .clone()
                .unwrap_or_else(|| self.repository_tags.clone()),
            scan_on_push: o.scan_on_push.unwrap_or(self.scan_on_push),
            prefixes: BTreeMap::new(),
        }
    }
}

fn check_lifecycle_days(days: u32) -> Result<(), String> {
    (1..=3650)
        .contains(&days)
        .then_some(())
        .ok_or_else(|| format!("{days} is outside 1..=3650"))
}

fn check_principal(p: &str) -> Result<(), String> {
    let account = p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit());
    if account || p.starts_with("arn:aws") {
        Ok(())
    } else {
        Err(format!(
            "{p:?}: expected a 12-digit account ID or an IAM ARN"
        ))
    }
}

fn check_org_id(org: &str) -> Result<(), String> {
    let ok = org.strip_prefix("o-").is_some_and(|rest| {
        (10..=32).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{org:?}: expected an organization ID like o-a1b2c3d4e5"
        ))
    }
}

impl PrefixFix {
    fn check(&self) -> Result<(), String> {
        if let Some(days) = self.lifecycle_days {
            check_lifecycle_days(days).map_err(|e| format!("lifecycle_days: {e}"))?;
        }
        for p in self.pull_principals.iter().flatten() {
            check_principal(p).map_err(|e| format!("pull_principals: {e}"))?;
        }
        if let Some(org) = &self.pull_org_id {
            check_org_id(org).map_err(|e| format!("pull_org_id: {e}"))?;
        }
        Ok(())
    }
}

/// Where a long watch list lives: one reference per line (`#` comments), or a JSON array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum WatchListSource {
    S3 { bucket: String, key: String },
    File(PathBuf),
}

impl WatchListSource {
    /// `s3://bucket/key`, `file:///path` or a path.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if let Some(rest) = value.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').ok_or("expected s3://BUCKET/KEY")?;
            let bucket_ok = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                });
            if !bucket_ok {
                return Err(format!("{bucket:?} is not an S3 bucket name"));
            }
            if key.is_empty() {
                return Err("the S3 key is empty".into());
            }
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            });
        }
        if value.contains("://") && !value.starts_with("file://") {
            return Err("expected s3://BUCKET/KEY, file:///PATH or a path".into());
        }
        let path = value.strip_prefix("file://").unwrap_or(value);
        if path.is_empty() {
            return Err("empty path".into());
        }
        Ok(Self::File(PathBuf::from(path)))
    }

    /// The entries of a watch list document.
    pub fn entries(text: &str) -> Result<Vec<String>, String> {
        if text.trim_start().starts_with('[') {
            return serde_json::from_str::<Vec<String>>(text)
                .map_err(|e| format!("not a JSON array of strings: {e}"));
        }
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect())
    }
}

impl std::fmt::Display for WatchListSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// `layers` (default) makes every request a real pull makes, so the cache holds the layers
/// even if a manifest pull alone does not import them (unconfirmed by AWS); `manifests`
/// refreshes tags at a fraction of the transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrewarmMode {
    Manifests,
    Layers,
}

/// The TOML file: the same settings in snake_case; unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    region: Option<String>,
    aws_endpoint: Option<String>,
    registry_endpoint: Option<String>,
    #[serde(default)]
    upstream_endpoints: BTreeMap<String, String>,
    metrics_namespace: Option<String>,
    #[serde(default)]
    rules: Vec<ExpectedRule>,
    #[serde(default)]
    rule_prefixes: Vec<String>,
    #[serde(default)]
    watch_list: Vec<String>,
    platforms: Option<Vec<String>>,
    concurrency: Option<usize>,
    aws_max_attempts: Option<u32>,
    aws_timeout_secs: Option<u64>,
    http_timeout_secs: Option<u64>,
    log_format: Option<LogFormat>,
    credential_max_age_days: Option<u32>,
    prewarm_mode: Option<PrewarmMode>,
    ratelimit_floor: Option<u64>,
    discovery_days: Option<u32>,
    watch_list_url: Option<String>,
    fix_mode: Option<String>,
    lifecycle_days: Option<u32>,
    lifecycle_policy: Option<String>,
    #[serde(default)]
    pull_principals: Vec<String>,
    pull_org_id: Option<String>,
    #[serde(default)]
    repository_tags: BTreeMap<String, String>,
    scan_on_push: Option<bool>,
    #[serde(default)]
    prefixes: BTreeMap<String, PrefixFix>,
    metrics_sink: Option<MetricsSink>,
    storage_price_per_gb_month: Option<f64>,
    unused_days: Option<u32>,
    metrics_per_repository: Option<bool>,
}

impl Settings {
    /// From the process environment (and `PTC_CONFIG_FILE` if set).
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_with(None)
    }

    /// Every `PTC_*` variable of the process is UTF-8 text, or an error naming the first
    /// that is not (`ptc` checks it before its argument parser reads `PTC_REGISTRY_HOST`).
    pub fn check_environment() -> Result<(), ConfigError> {
        check_text(std::env::vars_os())
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

    /// From any variable source; `PTC_CONFIG_FILE` in it names the optional file.
    pub fn from_sources(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let file = match env("PTC_CONFIG_FILE") {
            Some(path) => read_file(Path::new(&path))?,
            None => FileSettings::default(),
        };
        let file_err = |key: &str, reason: String| ConfigError::File {
            path: env("PTC_CONFIG_FILE").unwrap_or_default().into(),
            reason: format!("{key}: {reason}"),
        };

        let endpoint = |var: &str,
                        from_file: Option<String>,
                        key: &str|
         -> Result<Option<Endpoint>, ConfigError> {
            match (env(var), from_file) {
                (Some(v), _) => Endpoint::parse(&v)
                    .map(Some)
                    .map_err(|r| invalid(var, &v, r)),
                (None, Some(v)) => Endpoint::parse(&v).map(Some).map_err(|r| file_err(key, r)),
                (None, None) => Ok(None),
            }
        };
        let aws_endpoint = endpoint("PTC_AWS_ENDPOINT_URL", file.aws_endpoint, "aws_endpoint")?;
        let registry_endpoint = endpoint(
            "PTC_REGISTRY_ENDPOINT",
            file.registry_endpoint,
            "registry_endpoint",
        )?;

        let mut upstream_endpoints = BTreeMap::new();
        for (host, url) in file.upstream_endpoints {
            let ep = Endpoint::parse(&url)
                .map_err(|r| file_err(&format!("upstream_endpoints.{host}"), r))?;
            upstream_endpoints.insert(host.to_ascii_lowercase(), ep);
        }
        if let Some(value) = env("PTC_UPSTREAM_ENDPOINTS") {
            for item in split_list(&value) {
                let (host, url) = item
                    .split_once('=')
                    .ok_or_else(|| invalid("PTC_UPSTREAM_ENDPOINTS", item, "expected HOST=URL"))?;
                let ep =
                    Endpoint::parse(url).map_err(|r| invalid("PTC_UPSTREAM_ENDPOINTS", item, r))?;
                upstream_endpoints.insert(host.trim().to_ascii_lowercase(), ep);
            }
        }

        let metrics_namespace = env("PTC_METRICS_NAMESPACE")
            .or(file.metrics_namespace)
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        validate_namespace(&metrics_namespace)
            .map_err(|r| invalid("PTC_METRICS_NAMESPACE", &metrics_namespace, r))?;

        let expected_rules = match env("PTC_RULES") {
            Some(value) => split_list(&value)
                .map(|spec| ExpectedRule::parse(spec).map_err(|r| invalid("PTC_RULES", spec, r)))
                .collect::<Result<Vec<_>, _>>()?,
            None => {
                for rule in &file.rules {
                    PtcRule::new(rule.prefix.as_str(), &rule.upstream_url)
                        .map_err(|e| file_err("rules", e.to_string()))?;
                }
                file.rules
            }
        };
        let mut seen = std::collections::HashSet::new();
        for rule in &expected_rules {
            if !seen.insert(rule.prefix.clone()) {
                return Err(invalid(
                    "PTC_RULES",
                    rule.prefix.as_str(),
                    "prefix listed twice",
                ));
            }
        }

        // A trailing "/" is a valid rule prefix for ECR, but the template writes the IAM
        // scope `repository/<prefix>/*` from the same list: `quay/` would scope it to
        // `repository/quay//*`, which matches no repository.
        let rule_prefix = |p: &str| {
            if p.ends_with('/') {
                return Err(format!(
                    "no trailing \"/\" (the IAM scope built from RulePrefixes, repository/{p}*, would match no repository)"
                ));
            }
            Prefix::parse(p).map_err(|e| e.to_string())
        };
        let rule_prefixes = match env("PTC_RULE_PREFIXES") {
            Some(value) => split_list(&value)
                .map(|p| rule_prefix(p).map_err(|e| invalid("PTC_RULE_PREFIXES", p, e)))
                .collect::<Result<Vec<_>, _>>()?,
            None => file
                .rule_prefixes
                .iter()
                .map(|p| rule_prefix(p).map_err(|e| file_err("rule_prefixes", e)))
                .collect::<Result<Vec<_>, _>>()?,
        };

        let watch_list = match env("PTC_WATCH_LIST") {
            Some(value) => split_list(&value).map(str::to_owned).collect(),
            None => file.watch_list,
        };

        let platforms = match env("PTC_PLATFORMS") {
            Some(value) => split_list(&value)
                .map(|p| Platform::parse(p).map_err(|r| invalid("PTC_PLATFORMS", p, r)))
                .collect::<Result<Vec<_>, _>>()?,
            None => file
                .platforms
                .unwrap_or_else(|| vec!["linux/amd64".into(), "linux/arm64".into()])
                .iter()
                .map(|p| Platform::parse(p).map_err(|r| file_err("platforms", r)))
                .collect::<Result<Vec<_>, _>>()?,
        };
        if platforms.is_empty() {
            return Err(invalid(
                "PTC_PLATFORMS",
                "",
                "at least one platform is needed",
            ));
        }

        let number = |var: &str,
                      from_file: Option<u64>,
                      default: u64,
                      range: std::ops::RangeInclusive<u64>|
         -> Result<u64, ConfigError> {
            let value = match env(var) {
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| invalid(var, &v, "not a whole number"))?,
                None => from_file.unwrap_or(default),
            };
            if !range.contains(&value) {
                return Err(invalid(
                    var,
                    &value.to_string(),
                    format!("must be between {} and {}", range.start(), range.end()),
                ));
            }
            Ok(value)
        };
        // `true` or `false`; from the file, else false.
        let flag = |var: &str, from_file: Option<bool>| -> Result<bool, ConfigError> {
            match env(var) {
                Some(v) => match v.trim() {
                    "true" => Ok(true),
                    "false" => Ok(false),
                    _ => Err(invalid(var, &v, "expected true or false")),
                },
                None => Ok(from_file.unwrap_or(false)),
            }
        };
        let concurrency = number(
            "PTC_CONCURRENCY",
            file.concurrency.map(|v| v as u64),
            16,
            1..=256,
        )? as usize;
        let aws_max_attempts = number(
            "PTC_AWS_MAX_ATTEMPTS",
            file.aws_max_attempts.map(u64::from),
            5,
            1..=20,
        )? as u32;
        let aws_timeout = Duration::from_secs(number(
            "PTC_AWS_TIMEOUT_SECS",
            file.aws_timeout_secs,
            30,
            1..=900,
        )?);
        let http_timeout = Duration::from_secs(number(
            "PTC_HTTP_TIMEOUT_SECS",
            file.http_timeout_secs,
            20,
            1..=900,
        )?);

        let log_format = match env("PTC_LOG_FORMAT") {
            Some(v) => match v.trim() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                _ => return Err(invalid("PTC_LOG_FORMAT", &v, "expected json or text")),
            },
            None => file
                .log_format
                .unwrap_or(if env("AWS_LAMBDA_FUNCTION_NAME").is_some() {
                    LogFormat::Json
                } else {
                    LogFormat::Text
                }),
        };

        let log_filter = match env("PTC_LOG") {
            Some(v) => {
                crate::logging::check_filter(&v).map_err(|e| invalid("PTC_LOG", &v, e))?;
                Some(v)
            }
            None => None,
        };

        let credential_max_age_days = number(
            "PTC_CREDENTIAL_MAX_AGE_DAYS",
            file.credential_max_age_days.map(u64::from),
            90,
            1..=3650,
        )? as u32;
        let prewarm_mode = match env("PTC_PREWARM_MODE") {
            Some(v) => match v.trim() {
                "layers" => PrewarmMode::Layers,
                "manifests" => PrewarmMode::Manifests,
                _ => {
                    return Err(invalid(
                        "PTC_PREWARM_MODE",
                        &v,
                        "expected layers or manifests",
                    ));
                }
            },
            None => file.prewarm_mode.unwrap_or(PrewarmMode::Layers),
        };
        let ratelimit_floor = number("PTC_RATELIMIT_FLOOR", file.ratelimit_floor, 10, 0..=100_000)?;
        let discovery_days = number(
            "PTC_DISCOVERY_DAYS",
            file.discovery_days.map(u64::from),
            7,
            0..=365,
        )? as u32;
        let watch_list_source = match (env("PTC_WATCH_LIST_URL"), file.watch_list_url) {
            (Some(v), _) => {
                Some(WatchListSource::parse(&v).map_err(|r| invalid("PTC_WATCH_LIST_URL", &v, r))?)
            }
            (None, Some(v)) => {
                Some(WatchListSource::parse(&v).map_err(|r| file_err("watch_list_url", r))?)
            }
            (None, None) => None,
        };
        let fix = {
            let mode = env("PTC_FIX_MODE")
                .or(file.fix_mode)
                .unwrap_or_else(|| "fill".into());
            if !["fill", "enforce", "dry-run"].contains(&mode.as_str()) {
                return Err(invalid(
                    "PTC_FIX_MODE",
                    &mode,
                    "expected fill, enforce or dry-run",
                ));
            }
            let lifecycle_days = number(
                "PTC_LIFECYCLE_DAYS",
                file.lifecycle_days.map(u64::from),
                30,
                1..=3650,
            )? as u32;
            let lifecycle_policy = env("PTC_LIFECYCLE_POLICY").or(file.lifecycle_policy);
            let pull_principals = match env("PTC_PULL_PRINCIPALS") {
                Some(v) => split_list(&v).map(str::to_owned).collect(),
                None => file.pull_principals,
            };
            for p in &pull_principals {
                check_principal(p).map_err(|r| invalid("PTC_PULL_PRINCIPALS", p, r))?;
            }
            let pull_org_id = env("PTC_PULL_ORG_ID").or(file.pull_org_id);
            if let Some(org) = &pull_org_id {
                check_org_id(org).map_err(|r| invalid("PTC_PULL_ORG_ID", org, r))?;
            }
            let repository_tags = match env("PTC_REPOSITORY_TAGS") {
                Some(v) => split_list(&v)
                    .map(|kv| {
                        kv.split_once('=')
                            .filter(|(k, _)| !k.is_empty())
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .ok_or_else(|| invalid("PTC_REPOSITORY_TAGS", kv, "expected KEY=VALUE"))
                    })
                    .collect::<Result<_, _>>()?,
                None => file.repository_tags,
            };
            let scan_on_push = flag("PTC_SCAN_ON_PUSH", file.scan_on_push)?;
            let prefixes = match env("PTC_PREFIX_SETTINGS") {
                Some(v) => {
                    serde_json::from_str::<BTreeMap<String, PrefixFix>>(&v).map_err(|e| {
                        invalid(
                            "PTC_PREFIX_SETTINGS",
                            &v,
                            format!("expected a JSON object of prefix to settings: {e}"),
                        )
                    })?
                }
                None => file.prefixes,
            };
            for (prefix, o) in &prefixes {
                if let Err(reason) = crate::rules::Prefix::parse(prefix) {
                    return Err(invalid("PTC_PREFIX_SETTINGS", prefix, reason.to_string()));
                }
                o.check()
                    .map_err(|r| invalid("PTC_PREFIX_SETTINGS", prefix, r))?;
            }
            FixSettings {
                mode,
                lifecycle_days,
                lifecycle_policy,
                pull_principals,
                pull_org_id,
                repository_tags,
                scan_on_push,
                prefixes,
            }
        };
        let metrics_sink = match env("PTC_METRICS_SINK") {
            Some(v) => match v.trim() {
                "api" => MetricsSink::Api,
                "emf" => MetricsSink::Emf,
                _ => return Err(invalid("PTC_METRICS_SINK", &v, "expected api or emf")),
            },
            None => file.metrics_sink.unwrap_or(MetricsSink::Api),
        };
        let health = {
            let price = match env("PTC_STORAGE_PRICE_GB_MONTH") {
                Some(v) => v.trim().parse::<f64>().map_err(|_| {
                    invalid("PTC_STORAGE_PRICE_GB_MONTH", &v, "expected a number of USD")
                })?,
                None => file.storage_price_per_gb_month.unwrap_or(0.10),
            };
            if !(price.is_finite() && (0.0..=1000.0).contains(&price)) {
                return Err(invalid(
                    "PTC_STORAGE_PRICE_GB_MONTH",
                    &price.to_string(),
                    "must be between 0 and 1000",
                ));
            }
            let unused_days = number(
                "PTC_UNUSED_DAYS",
                file.unused_days.map(u64::from),
                30,
                1..=3650,
            )? as u32;
            let per_repository = flag("PTC_METRICS_PER_REPOSITORY", file.metrics_per_repository)?;
            HealthSettings {
                storage_price_per_gb_month: price,
                unused_days,
                per_repository,
            }
        };
        let region = env("PTC_REGION").or(file.region);
        Ok(Self {
            region,
            aws_endpoint,
            registry_endpoint,
            upstream_endpoints,
            metrics_namespace,
            expected_rules,
            rule_prefixes,
            watch_list,
            platforms,
            concurrency,
            aws_max_attempts,
            aws_timeout,
            http_timeout,
            log_format,
            log_filter,
            credential_max_age_days,
            prewarm_mode,
            ratelimit_floor,
            discovery_days,
            watch_list_source,
            fix,
            metrics_sink,
            health,
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

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::File {
        path: path.to_owned(),
        reason: e.to_string().trim().to_owned(),
    })
}

/// Items separated by commas, whitespace or newlines.
/// Every `PTC_*` variable must be text: a value that is not UTF-8 would otherwise read as
/// unset (an empty watch list, no pull grant wanted), so it stops start-up naming the
/// variable, as any other bad value does.
fn check_text(
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<(), ConfigError> {
    for (name, value) in vars {
        if let Some(name) = name.to_str()
            && name.starts_with("PTC_")
            && value.to_str().is_none()
        {
            return Err(invalid(
                name,
                &value.to_string_lossy(),
                "not UTF-8 text (the bytes that are not are shown as \u{FFFD})",
            ));
        }
    }
    Ok(())
}

fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
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
        let quay = s.fix.for_prefix("quay/");
        assert_eq!((quay.lifecycle_days, quay.scan_on_push), (7, true));
        assert_eq!(quay.pull_principals, ["111122223333"], "inherited");
        let hub = s.fix.for_prefix("docker-hub");
        assert_eq!(hub.lifecycle_days, 30);
        assert_eq!(hub.pull_org_id.as_deref(), Some("o-abcdefghij"));
        assert_eq!(hub.repository_tags["team"], "platform");
        assert!(
            !hub.repository_tags.contains_key("managed-by"),
            "replaced, not merged"
        );
        let other = s.fix.for_prefix("k8s");
        assert_eq!((other.lifecycle_days, other.scan_on_push), (30, false));

        // The environment (a SAM parameter) wins, as JSON.
        let s = load(&[
            ("PTC_CONFIG_FILE", p),
            ("PTC_PREFIX_SETTINGS", r#"{"k8s": {"lifecycle_days": 14}}"#),
        ])
        .unwrap();
        assert_eq!(s.fix.for_prefix("k8s").lifecycle_days, 14);
        assert_eq!(s.fix.for_prefix("quay").lifecycle_days, 30);

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
}
