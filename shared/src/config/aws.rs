//! The `aws` section: how the jobs reach AWS and the registries. Region, endpoint
//! overrides (the local stack, VPC endpoints, registry mirrors), retries and timeouts.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ConfigError;
use super::source::{Endpoint, FileSettings, Source, invalid, split_list};

/// What [`load`] reads; [`super::Settings`] keeps each field under the same name.
pub(super) struct AwsSection {
    pub region: Option<String>,
    pub aws_endpoint: Option<Endpoint>,
    pub registry_endpoint: Option<Endpoint>,
    pub upstream_endpoints: BTreeMap<String, Endpoint>,
    pub aws_max_attempts: u32,
    pub aws_timeout: Duration,
    pub http_timeout: Duration,
}

/// `PTC_REGION`, `PTC_AWS_ENDPOINT_URL`, `PTC_REGISTRY_ENDPOINT`, `PTC_UPSTREAM_ENDPOINTS`
/// (`HOST=URL` items; the file's `upstream_endpoints` table first, the variable's items
/// over it), `PTC_AWS_MAX_ATTEMPTS` (1-20, default 5), `PTC_AWS_TIMEOUT_SECS` (1-900,
/// default 30), `PTC_HTTP_TIMEOUT_SECS` (1-900, default 20).
pub(super) fn load(src: &Source, file: &mut FileSettings) -> Result<AwsSection, ConfigError> {
    let aws_endpoint = src.endpoint(
        "PTC_AWS_ENDPOINT_URL",
        file.aws_endpoint.take(),
        "aws_endpoint",
    )?;
    let registry_endpoint = src.endpoint(
        "PTC_REGISTRY_ENDPOINT",
        file.registry_endpoint.take(),
        "registry_endpoint",
    )?;

    let mut upstream_endpoints = BTreeMap::new();
    for (host, url) in std::mem::take(&mut file.upstream_endpoints) {
        let ep = Endpoint::parse(&url)
            .map_err(|r| src.file_err(&format!("upstream_endpoints.{host}"), r))?;
        upstream_endpoints.insert(host.to_ascii_lowercase(), ep);
    }
    if let Some(value) = src.var("PTC_UPSTREAM_ENDPOINTS") {
        for item in split_list(&value) {
            let (host, url) = item
                .split_once('=')
                .ok_or_else(|| invalid("PTC_UPSTREAM_ENDPOINTS", item, "expected HOST=URL"))?;
            let ep =
                Endpoint::parse(url).map_err(|r| invalid("PTC_UPSTREAM_ENDPOINTS", item, r))?;
            upstream_endpoints.insert(host.trim().to_ascii_lowercase(), ep);
        }
    }

    let aws_max_attempts = src.number(
        "PTC_AWS_MAX_ATTEMPTS",
        file.aws_max_attempts.map(u64::from),
        5,
        1..=20,
    )? as u32;
    let aws_timeout = Duration::from_secs(src.number(
        "PTC_AWS_TIMEOUT_SECS",
        file.aws_timeout_secs,
        30,
        1..=900,
    )?);
    let http_timeout = Duration::from_secs(src.number(
        "PTC_HTTP_TIMEOUT_SECS",
        file.http_timeout_secs,
        20,
        1..=900,
    )?);
    Ok(AwsSection {
        region: src.var("PTC_REGION").or(file.region.take()),
        aws_endpoint,
        registry_endpoint,
        upstream_endpoints,
        aws_max_attempts,
        aws_timeout,
        http_timeout,
    })
}
