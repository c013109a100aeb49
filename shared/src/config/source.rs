//! Where settings come from: the environment (which wins) and the optional TOML file
//! (`PTC_CONFIG_FILE`), read through one `Source` that every section loader uses, so a
//! bad value is reported the same way everywhere: `setting NAME: invalid value "...": why`,
//! or `config file PATH: key: why`.

use std::collections::BTreeMap;
use std::path::Path;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::fix::PrefixFix;
use super::prewarm::PrewarmMode;
use super::rules::ExpectedRule;
use crate::logging::LogFormat;
use crate::metrics::MetricsSink;

pub(super) fn invalid(name: &str, value: &str, reason: impl Into<String>) -> ConfigError {
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

impl Endpoint {
    /// `https://HOST[:PORT][/PATH]`, or `http://` on a loopback address; the error says why not.
    pub fn parse(value: &str) -> Result<Self, String> {
        let url = Url::parse(value.trim()).map_err(|e| format!("not a URL: {e}"))?;
        match url.scheme() {
            "https" => {}
            "http" => {
                if !crate::net::is_loopback(&url) {
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

/// The TOML file: the same settings in snake_case; unknown keys are errors. Each section
/// loader takes its keys out of it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSettings {
    pub region: Option<String>,
    pub aws_endpoint: Option<String>,
    pub registry_endpoint: Option<String>,
    #[serde(default)]
    pub upstream_endpoints: BTreeMap<String, String>,
    pub metrics_namespace: Option<String>,
    #[serde(default)]
    pub rules: Vec<ExpectedRule>,
    #[serde(default)]
    pub rule_prefixes: Vec<String>,
    #[serde(default)]
    pub watch_list: Vec<String>,
    pub platforms: Option<Vec<String>>,
    pub concurrency: Option<usize>,
    pub aws_max_attempts: Option<u32>,
    pub aws_timeout_secs: Option<u64>,
    pub http_timeout_secs: Option<u64>,
    pub log_format: Option<LogFormat>,
    pub credential_max_age_days: Option<u32>,
    pub prewarm_mode: Option<PrewarmMode>,
    pub ratelimit_floor: Option<u64>,
    pub discovery_days: Option<u32>,
    pub watch_list_url: Option<String>,
    pub prewarm_state_url: Option<String>,
    pub fix_mode: Option<String>,
    pub lifecycle_days: Option<u32>,
    pub lifecycle_policy: Option<String>,
    #[serde(default)]
    pub pull_principals: Vec<String>,
    pub pull_org_id: Option<String>,
    #[serde(default)]
    pub repository_tags: BTreeMap<String, String>,
    pub scan_on_push: Option<bool>,
    #[serde(default)]
    pub prefixes: BTreeMap<String, PrefixFix>,
    pub metrics_sink: Option<MetricsSink>,
    pub storage_price_per_gb_month: Option<f64>,
    pub archive_storage_price_per_gb_month: Option<f64>,
    pub unused_days: Option<u32>,
    pub metrics_per_repository: Option<bool>,
}

/// The environment (blank values read as unset) and the file, with the error helpers every
/// section loader shares.
pub(super) struct Source<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    path: Option<String>,
}

impl<'a> Source<'a> {
    /// The source and the file it names (`PTC_CONFIG_FILE`), read and parsed.
    pub fn open(
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Result<(Self, FileSettings), ConfigError> {
        let source = Self { env, path: None };
        let path = source.var("PTC_CONFIG_FILE");
        let file = match &path {
            Some(path) => read_file(Path::new(path))?,
            None => FileSettings::default(),
        };
        Ok((Self { env, path }, file))
    }

    /// A variable's value; blank is unset.
    pub fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.trim().is_empty())
    }

    /// An error naming the file and the key.
    pub fn file_err(&self, key: &str, reason: String) -> ConfigError {
        ConfigError::File {
            path: self.path.clone().unwrap_or_default().into(),
            reason: format!("{key}: {reason}"),
        }
    }

    /// An endpoint override from `var`, else the file's `key`.
    pub fn endpoint(
        &self,
        var: &str,
        from_file: Option<String>,
        key: &str,
    ) -> Result<Option<Endpoint>, ConfigError> {
        match (self.var(var), from_file) {
            (Some(v), _) => Endpoint::parse(&v)
                .map(Some)
                .map_err(|r| invalid(var, &v, r)),
            (None, Some(v)) => Endpoint::parse(&v)
                .map(Some)
                .map_err(|r| self.file_err(key, r)),
            (None, None) => Ok(None),
        }
    }

    /// A whole number from `var`, else the file, else `default`; within `range`.
    pub fn number(
        &self,
        var: &str,
        from_file: Option<u64>,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let value = match self.var(var) {
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
    }

    /// `true` or `false`; from the file, else false.
    pub fn flag(&self, var: &str, from_file: Option<bool>) -> Result<bool, ConfigError> {
        match self.var(var) {
            Some(v) => match v.trim() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(invalid(var, &v, "expected true or false")),
            },
            None => Ok(from_file.unwrap_or(false)),
        }
    }

    /// One of `choices` (by name) from `var`, else the file's value, else `default`.
    pub fn choice<T: Copy>(
        &self,
        var: &str,
        from_file: Option<T>,
        default: T,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        match self.var(var) {
            // Surrounding blanks are allowed here, as they always were for these settings.
            Some(v) => pick(var, v.trim(), choices).map_err(|e| match e {
                ConfigError::Invalid { name, reason, .. } => ConfigError::Invalid {
                    name,
                    value: v.clone(),
                    reason,
                },
                other => other,
            }),
            None => Ok(from_file.unwrap_or(default)),
        }
    }
}

/// The value of `choices` named exactly `value`, or an error naming `var` and listing the
/// names (`expected a, b or c`).
pub(super) fn pick<T: Copy>(
    var: &str,
    value: &str,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    if let Some((_, t)) = choices.iter().find(|(name, _)| *name == value) {
        return Ok(*t);
    }
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let listed = match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Err(invalid(var, value, format!("expected {listed}")))
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

/// Every `PTC_*` variable must be text: a value that is not UTF-8 would otherwise read as
/// unset (an empty watch list, no pull grant wanted), so it stops start-up naming the
/// variable, as any other bad value does.
pub(super) fn check_text(
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

/// Items separated by commas, whitespace or newlines.
pub(super) fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}
