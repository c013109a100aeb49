//! What `ptc map`, `ptc scan` and `ptc rewrite` route with: the rules and the registry host,
//! offline first.
//!
//! | what | from, first that gives it | AWS call only when none does |
//! |------|---------------------------|------------------------------|
//! | rules | `--rule PREFIX=UPSTREAM_URL`, else the settings' `PTC_RULES` | `DescribePullThroughCacheRules` |
//! | registry host | `--registry HOST` (`PTC_REGISTRY_HOST`), else `--account ID` (`PTC_ACCOUNT_ID`) with the Region (`--region`, `PTC_REGION`, the settings file, `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`) | `GetAuthorizationToken` |
//!
//! With the flags, no AWS configuration is loaded and the SDK writes nothing (not even its
//! IMDS probes); a command that does need AWS and finds no credentials says, in one line,
//! what it needed them for and which flags would do without.

use std::io::BufRead;

use ptc_core::adoption::registry_host_of;
use ptc_core::config::ExpectedRule;
use ptc_core::ecr::EcrApi as _;
use ptc_core::rules::RuleSet;

use crate::context::Context;
use crate::error::CliError;

/// `--rule`, `--registry`, `--account`: the routing of `ptc map`, `ptc scan`, `ptc rewrite`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RoutingArgs {
    /// A rule PREFIX=UPSTREAM_URL (repeatable). Without it: the settings' rules, else the registry's.
    #[arg(long = "rule", value_name = "PREFIX=UPSTREAM_URL")]
    pub rules: Vec<String>,
    /// Registry host of the cache; default: from --account and the Region, else GetAuthorizationToken.
    #[arg(long, env = "PTC_REGISTRY_HOST", value_name = "HOST")]
    pub registry: Option<String>,
    /// The cache's 12-digit account: with the Region, the registry host without any AWS call.
    #[arg(long, env = "PTC_ACCOUNT_ID", value_name = "ID")]
    pub account: Option<String>,
}

/// The rules and the registry host to route with.
#[derive(Debug, Clone)]
pub struct Routing {
    /// The rules, sorted by prefix.
    pub rules: RuleSet,
    /// The cache's registry host, e.g. `123456789012.dkr.ecr.eu-west-2.amazonaws.com`.
    pub registry_host: String,
}

/// The rules and the registry host of `args`, AWS called only for what the flags and the
/// settings do not give (see the module's table). Errors: [`CliError::BadRule`],
/// [`CliError::BadRouting`] (a bad `--account`, `--registry` or Region),
/// [`CliError::NeedsAws`] (no credentials where AWS is needed), [`CliError::RegistryRules`],
/// [`CliError::RegistryHost`], and [`Context::aws`]'s.
pub async fn resolve(ctx: &Context, args: &RoutingArgs) -> Result<Routing, CliError> {
    let rules = rules(ctx, &args.rules).await?;
    let registry_host = registry_host(ctx, args).await?;
    Ok(Routing {
        rules,
        registry_host,
    })
}

/// The `--rule` rules, else the settings' expected rules, else the registry's.
async fn rules(ctx: &Context, specs: &[String]) -> Result<RuleSet, CliError> {
    let local = if specs.is_empty() {
        ctx.settings().expected_rule_set()
    } else {
        parse_rules(specs)?
    };
    if !local.is_empty() {
        return Ok(local);
    }
    let aws = ctx
        .aws_for(
            "the registry's rules (DescribePullThroughCacheRules)",
            Some("--rule PREFIX=UPSTREAM_URL"),
        )
        .await?;
    let rules = aws
        .ecr
        .describe_rules()
        .await
        .map_err(CliError::RegistryRules)?;
    Ok(RuleSet::new(rules))
}

/// The `--rule` rules. A prefix given twice is refused, as in `PTC_RULES`: ECR has one rule
/// per prefix, and the second would route another upstream's images into the first's
/// repositories. Errors: [`CliError::BadRule`].
pub fn parse_rules(specs: &[String]) -> Result<RuleSet, CliError> {
    let mut rules: Vec<ptc_core::PtcRule> = Vec::new();
    for spec in specs {
        let rule = parse_rule(spec)?;
        if let Some(first) = rules.iter().find(|r| r.prefix == rule.prefix) {
            return Err(CliError::BadRule {
                spec: spec.clone(),
                reason: format!(
                    "prefix {} listed twice (already for {}): ECR has one rule per prefix",
                    rule.prefix, first.upstream_url
                ),
            });
        }
        rules.push(rule);
    }
    Ok(RuleSet::new(rules))
}

/// One `--rule PREFIX=UPSTREAM_URL`. Errors: [`CliError::BadRule`].
pub fn parse_rule(spec: &str) -> Result<ptc_core::PtcRule, CliError> {
    ExpectedRule::parse(spec)
        .map(|r| r.to_rule())
        .map_err(|reason| CliError::BadRule {
            spec: spec.to_owned(),
            reason,
        })
}

/// `--registry`, else `--account` with the Region, else `GetAuthorizationToken`.
async fn registry_host(ctx: &Context, args: &RoutingArgs) -> Result<String, CliError> {
    if let Some(host) = &args.registry {
        return checked_host(host).ok_or_else(|| {
            CliError::BadRouting(format!(
                "--registry {host:?}: a registry host such as 123456789012.dkr.ecr.eu-west-2.amazonaws.com"
            ))
        });
    }
    if let Some(account) = &args.account {
        let region = match offline_region(ctx) {
            Some(region) => region,
            // The profile's `region` (`--profile`, `AWS_PROFILE`, the default profile), read
            // from the shared config files alone: no credentials asked, no IMDS.
            None => profile_region(ctx).await.ok_or_else(|| {
                    CliError::BadRouting(format!(
                        "--account {account}: no Region for the registry host: pass --region, or set PTC_REGION, AWS_REGION or the profile's region"
                    ))
                })?,
        };
        return registry_host_of(account, &region)
            .map_err(|reason| CliError::BadRouting(format!("--account: {reason}")));
    }
    let aws = ctx
        .aws_for(
            "the registry host (GetAuthorizationToken)",
            Some("--registry HOST, or --account ID with --region"),
        )
        .await?;
    let token = aws
        .ecr
        .authorization_token()
        .await
        .map_err(CliError::RegistryHost)?;
    // AWS's answer is untrusted too: the host goes into every format's files.
    let given = token.registry_host();
    checked_host(given).ok_or_else(|| {
        CliError::BadRouting(format!(
            "GetAuthorizationToken answered the proxy endpoint {given:?}, which is not a registry host: pass --registry"
        ))
    })
}

/// `host` when it is a registry host: dot-separated labels of 1-63 letters, digits and `-`
/// (not at a label's ends), at most 253 characters, and an optional `:port` of 1-65535;
/// with a `.` or a port, or `localhost`, as references need to read the first component as
/// a host (a single label `myreg/...` is read as a Docker Hub path by every runtime);
/// lowercased, `:443` dropped as references read it. `None` otherwise (a scheme, a path, a
/// quote or a space could not be written safely in the formats' files).
fn checked_host(host: &str) -> Option<String> {
    let host = host.trim().trim_end_matches('/').to_ascii_lowercase();
    let (name, port) = match host.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host.as_str(), None),
    };
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
    });
    let reads_as_host = name.contains('.') || port.is_some() || name == "localhost";
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(label_ok)
        && port_ok
        && reads_as_host;
    ok.then(|| host.strip_suffix(":443").unwrap_or(&host).to_owned())
}

/// The `region` of the profile (`--profile`, else `AWS_PROFILE`, else `default`) in the shared
/// config files (`~/.aws/config`, `AWS_CONFIG_FILE`), as the AWS CLI reads it; nothing else is
/// asked (no credentials, no instance metadata).
async fn profile_region(ctx: &Context) -> Option<String> {
    use aws_config::meta::region::ProvideRegion as _;
    let mut provider = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(profile) = &ctx.target().profile {
        provider = provider.profile_name(profile);
    }
    provider
        .build()
        .region()
        .await
        .map(|r| r.as_ref().to_owned())
}

/// The Region without loading the AWS configuration: `--region`, the settings (`PTC_REGION`,
/// the file), then `AWS_REGION`, `AWS_DEFAULT_REGION` (then, in [`registry_host`], the
/// profile's).
fn offline_region(ctx: &Context) -> Option<String> {
    ctx.target()
        .region
        .clone()
        .or_else(|| ctx.settings().region.clone())
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
}

/// The references of the command line, `-` standing for those on stdin, one per line (blank
/// lines and `#` comments skipped). Errors: [`CliError::Stdin`].
pub fn expand_stdin(references: Vec<String>) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    for reference in references {
        if reference == "-" {
            for line in std::io::stdin().lock().lines() {
                let line = line.map_err(CliError::Stdin)?;
                let line = line.trim();
                if !line.is_empty() && !line.starts_with('#') {
                    out.push(line.to_owned());
                }
            }
        } else {
            out.push(reference);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_registry_hosts_pass() {
        assert_eq!(
            checked_host("123456789012.DKR.ecr.eu-west-2.amazonaws.com:443/").as_deref(),
            Some("123456789012.dkr.ecr.eu-west-2.amazonaws.com")
        );
        assert_eq!(
            checked_host("127.0.0.1:5000").as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(checked_host("localhost").as_deref(), Some("localhost"));
        assert_eq!(checked_host("myreg:5000").as_deref(), Some("myreg:5000"));
        for bad in [
            "",
            "https://x.example",
            "x.example/path",
            "x.example'\nkind: Secret",
            "a b",
            ":5000",
            "a:1:2",
            "a..b",
            "host:0",
            "host:65536",
            "-a.example",
            "myreg",
            "0",
        ] {
            assert_eq!(checked_host(bad), None, "{bad:?}");
        }
    }
}
