//! `ptc map`: upstream references → cached image URIs.

use std::io::{BufRead, Write};

use ptc_core::config::ExpectedRule;
use ptc_core::ecr::EcrApi as _;
use ptc_core::reference::ImageReference;
use ptc_core::rules::RuleSet;
use serde::Serialize;

use crate::context::Context;
use crate::error::{CliError, Findings};
use crate::output;

/// `ptc map [--rule PREFIX=UPSTREAM_URL]... [--registry HOST] REF...`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A rule PREFIX=UPSTREAM_URL (repeatable). Without it: the config's rules, else the registry's.
    #[arg(long = "rule", value_name = "PREFIX=UPSTREAM_URL")]
    pub rules: Vec<String>,
    /// Registry host for the URIs; default: the account's, from GetAuthorizationToken.
    #[arg(long, env = "PTC_REGISTRY_HOST", value_name = "HOST")]
    pub registry: Option<String>,
    /// References as people write them (nginx:1.25, quay.io/x/y:v1); `-` reads them from stdin.
    #[arg(required = true, value_name = "REF")]
    pub references: Vec<String>,
}

/// Map the references and print one [`Mapping`] each. AWS is reached only for what the
/// command line and the settings do not give: the rules (`DescribePullThroughCacheRules`)
/// and the registry host (`GetAuthorizationToken`). Errors: [`CliError::BadRule`],
/// [`CliError::RegistryRules`], [`CliError::RegistryHost`], [`CliError::Stdin`] (each before
/// any output), [`Findings::UnmappedReferences`] when a reference cannot be mapped,
/// [`CliError::Output`].
pub async fn run(ctx: &Context, args: Args) -> Result<(), CliError> {
    let rules = rules(ctx, &args.rules).await?;
    let registry = registry_host(ctx, args.registry).await?;
    let inputs = expand_stdin(args.references)?;
    let mappings = map_references(&rules, &registry, inputs.iter().map(String::as_str));
    ctx.print(&mappings, |out| print(out, &mappings))?;
    match mappings.iter().filter(|m| m.failed()).count() {
        0 => Ok(()),
        failed => Err(CliError::Findings(Findings::UnmappedReferences(failed))),
    }
}

/// The `--rule` rules, else the settings' expected rules, else the registry's.
async fn rules(ctx: &Context, specs: &[String]) -> Result<RuleSet, CliError> {
    let local = if specs.is_empty() {
        ctx.settings().expected_rule_set()
    } else {
        RuleSet::new(
            specs
                .iter()
                .map(|spec| rule(spec))
                .collect::<Result<_, _>>()?,
        )
    };
    ctx.rules_or_registry(local).await
}

/// One `--rule PREFIX=UPSTREAM_URL`.
fn rule(spec: &str) -> Result<ptc_core::PtcRule, CliError> {
    ExpectedRule::parse(spec)
        .map(|r| r.to_rule())
        .map_err(|reason| CliError::BadRule {
            spec: spec.to_owned(),
            reason,
        })
}

/// `--registry` (or `PTC_REGISTRY_HOST`), else the account's from `GetAuthorizationToken`.
async fn registry_host(ctx: &Context, given: Option<String>) -> Result<String, CliError> {
    if let Some(host) = given {
        return Ok(host);
    }
    let ecr = &ctx.aws().await?.ecr;
    let token = ecr
        .authorization_token()
        .await
        .map_err(CliError::RegistryHost)?;
    Ok(token.registry_host().to_owned())
}

/// `-` stands for the references on stdin, one per line (blank lines and `#` comments skipped).
fn expand_stdin(references: Vec<String>) -> Result<Vec<String>, CliError> {
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

/// Two columns: the reference as given, its cached image URI or `error: <why>`.
pub fn print(out: &mut impl Write, mappings: &[Mapping]) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = mappings
        .iter()
        .map(|m| match (&m.uri, &m.error) {
            (Some(uri), _) => vec![m.reference.clone(), uri.clone()],
            (None, error) => vec![
                m.reference.clone(),
                format!("error: {}", error.as_deref().unwrap_or_default()),
            ],
        })
        .collect();
    output::table(out, &["REFERENCE", "CACHED IMAGE"], &rows)
}

/// One line of `ptc map`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapping {
    /// As the user wrote it.
    pub reference: String,
    /// The cached repository (`<prefix>/<upstream path>`), when it maps.
    pub repository: Option<String>,
    /// The tag (`latest` when neither tag nor digest is given), when it maps.
    pub tag: Option<String>,
    /// The digest (`sha256:...`), when given and it maps.
    pub digest: Option<String>,
    /// The cached image URI on the registry host, when it maps.
    pub uri: Option<String>,
    /// Why it does not map: an unreadable reference, no rule for its registry.
    pub error: Option<String>,
}

impl Mapping {
    /// The reference could not be mapped.
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
}

/// Map every reference; a bad one gets its error and the rest go on.
pub fn map_references<'a>(
    rules: &RuleSet,
    registry_host: &str,
    references: impl IntoIterator<Item = &'a str>,
) -> Vec<Mapping> {
    references
        .into_iter()
        .map(|input| {
            let routed = ImageReference::parse(input)
                .map_err(|e| e.to_string())
                .and_then(|r| rules.route(&r).map_err(|e| e.to_string()));
            match routed {
                Ok(cached) => Mapping {
                    reference: input.to_owned(),
                    uri: Some(cached.uri(registry_host)),
                    repository: Some(cached.repository),
                    tag: cached.tag,
                    digest: cached.digest.map(|d| d.to_string()),
                    error: None,
                },
                Err(error) => Mapping {
                    reference: input.to_owned(),
                    repository: None,
                    tag: None,
                    digest: None,
                    uri: None,
                    error: Some(error),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use ptc_core::rules::PtcRule;

    use super::*;

    #[test]
    fn maps_good_references_and_reports_bad_ones() {
        let rules = RuleSet::new(vec![
            PtcRule::new("docker-hub", "registry-1.docker.io").unwrap(),
            PtcRule::new("quay", "quay.io").unwrap(),
        ]);
        let out = map_references(
            &rules,
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            ["nginx:1.25", "gcr.io/x/y", "Bad", "quay.io/a/b"],
        );
        assert_eq!(
            out[0].uri.as_deref(),
            Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/library/nginx:1.25")
        );
        assert_eq!(
            out[0].repository.as_deref(),
            Some("docker-hub/library/nginx")
        );
        assert!(out[1].error.as_deref().unwrap().contains("not supported"));
        assert!(out[2].error.as_deref().unwrap().contains("lowercase"));
        assert_eq!(out[3].tag.as_deref(), Some("latest"));
        assert_eq!(out.iter().filter(|m| m.failed()).count(), 2);
    }
}
