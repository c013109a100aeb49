//! `ptc iam`: the IAM policies the accounts around the cache need. `ptc iam consumer-policy`
//! prints the identity policy of a consumer role (see [`crate::consumer_policy`]); `ptc iam
//! pull-time-exclusion` how to make a principal an ECR pull-time update exclusion (see
//! [`crate::pull_time_exclusion`]).

use std::io::Write as _;

use ptc_core::ecr::EcrApi as _;
use ptc_core::pull_time::{ExpectedExclusion, PrincipalArn};
use ptc_core::rules::{Prefix, RuleSet};

use super::Choices;
use crate::consumer_policy::{self, CacheScope};
use crate::context::Context;
use crate::error::CliError;
use crate::pull_time_exclusion;

/// `ptc iam SUBCOMMAND`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy to print.
    #[command(subcommand)]
    pub command: IamCommand,
}

/// The subcommands of `ptc iam`.
#[derive(Debug, clap::Subcommand)]
pub enum IamCommand {
    /// Print the identity policy a role of another account needs to pull through this cache.
    ConsumerPolicy(ConsumerPolicyArgs),
    /// Print how to make a role (yours by default) an ECR pull-time update exclusion, so
    /// that its pulls do not count as use, and whether it is one.
    PullTimeExclusion(PullTimeExclusionArgs),
}

/// `ptc iam pull-time-exclusion [--principal-arn ARN] [--no-check]`.
#[derive(Debug, clap::Args)]
pub struct PullTimeExclusionArgs {
    /// The IAM role or user ARN to register; default: the caller's, from STS
    /// GetCallerIdentity (a role session stands for its role).
    #[arg(long, value_name = "ARN", value_parser = PrincipalArn::parse)]
    pub principal_arn: Option<PrincipalArn>,
    /// Do not ask ECR whether it is registered already (ListPullTimeUpdateExclusions): with
    /// --principal-arn, no AWS call at all.
    #[arg(long)]
    pub no_check: bool,
}

/// `json` (an IAM policy document) or `terraform` (an `aws_iam_policy_document` data source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyFormat {
    /// The IAM JSON policy document.
    Json,
    /// A Terraform `aws_iam_policy_document` data source.
    Terraform,
}

impl PolicyFormat {
    /// `--format`'s names.
    pub const CHOICES: [(&'static str, Self); 2] =
        [("json", Self::Json), ("terraform", Self::Terraform)];
}

/// `ptc iam consumer-policy [--format json|terraform] [--account ID] [--prefix PREFIX]...`.
#[derive(Debug, clap::Args)]
pub struct ConsumerPolicyArgs {
    /// json (an IAM policy document) or terraform (an aws_iam_policy_document data source).
    /// `--output` has no effect here.
    #[arg(long, value_parser = Choices::new(&PolicyFormat::CHOICES), default_value = "json")]
    pub format: PolicyFormat,
    /// The cache account; default: the caller's, from STS GetCallerIdentity.
    #[arg(long, value_name = "ID", value_parser = parse_account)]
    pub account: Option<String>,
    /// Only these rule prefixes (repeatable); default: every rule of the settings, else of the
    /// registry.
    #[arg(long = "prefix", value_name = "PREFIX")]
    pub prefixes: Vec<String>,
}

/// Run `ptc iam SUBCOMMAND`.
pub async fn run(ctx: &Context, args: Args) -> Result<(), CliError> {
    match args.command {
        IamCommand::ConsumerPolicy(args) => consumer_policy(ctx, args).await,
        IamCommand::PullTimeExclusion(args) => pull_time_exclusion(ctx, args).await,
    }
}

/// Print how to register a principal as an ECR pull-time update exclusion: `--principal-arn`,
/// else the caller (STS `GetCallerIdentity`; a role session stands for its role, whose path
/// the session ARN does not show). Then whether it is registered
/// (`ListPullTimeUpdateExclusions`, unless `--no-check`; a failure there is `unknown`, not an
/// error). Exit code 0 either way. Errors: [`CliError::CallerPrincipal`],
/// [`CliError::NotExcludable`], [`Context::aws`]'s (without `--principal-arn` only),
/// [`CliError::Output`].
pub async fn pull_time_exclusion(
    ctx: &Context,
    args: PullTimeExclusionArgs,
) -> Result<(), CliError> {
    let expected = match args.principal_arn {
        Some(arn) => ExpectedExclusion::exact(arn, "--principal-arn"),
        None => {
            let caller = ctx
                .aws_for(
                    "who the caller is (GetCallerIdentity)",
                    Some("--principal-arn ARN"),
                )
                .await?
                .caller_identity()
                .await
                .map_err(CliError::CallerPrincipal)?;
            ExpectedExclusion::from_caller(&caller.arn)
                .ok_or(CliError::NotExcludable { caller: caller.arn })?
        }
    };
    let registered = if args.no_check {
        Err("not checked: --no-check".to_owned())
    } else {
        registered(ctx, &expected).await
    };
    // The Region only when given (flag or settings): finding the SDK's would load it.
    let region = ctx
        .target()
        .region
        .clone()
        .or_else(|| ctx.settings().region.clone());
    let advice = pull_time_exclusion::advice(&expected, region.as_deref(), registered);
    ctx.print(&advice, |out| pull_time_exclusion::print(out, &advice))
}

/// Whether ECR lists the principal; the reason as text when that cannot be told (no
/// credentials, AccessDenied, a Region without pull-time update exclusions).
async fn registered(ctx: &Context, expected: &ExpectedExclusion) -> Result<bool, String> {
    use aws_credential_types::provider::ProvideCredentials as _;
    let first_line = |text: String| text.lines().next().unwrap_or_default().to_owned();
    let aws = ctx.aws().await.map_err(|e| first_line(e.to_string()))?;
    // No credentials (offline, no profile): say so, without an ECR call that would fail and
    // log the chain's every provider.
    let credentials = aws.sdk.credentials_provider().ok_or("no AWS credentials")?;
    if let Err(err) = credentials.provide_credentials().await {
        tracing::info!(error = %err, "no credentials to ask ECR with");
        return Err(
            "no AWS credentials (--profile, --role-arn or the environment give them)".into(),
        );
    }
    match aws.ecr.pull_time_update_exclusions().await {
        Ok(list) => expected.registration(&list),
        Err(err) => Err(first_line(err.to_string())),
    }
}

/// Print the consumer policy of the cache: its rules' prefixes (the settings', else the
/// registry's `DescribePullThroughCacheRules`), account (`--account`, else STS
/// `GetCallerIdentity`) and Region (`--region`, the settings, the SDK's chain). AWS is
/// called only for what the flags and the settings do not give. Errors:
/// [`CliError::NoRules`], [`CliError::PrefixNotARule`], [`CliError::RegistryRules`],
/// [`CliError::CallerIdentity`], [`CliError::NoRegion`], [`CliError::Output`] (each before
/// any output).
pub async fn consumer_policy(ctx: &Context, args: ConsumerPolicyArgs) -> Result<(), CliError> {
    let rules = rules(ctx).await?;
    let prefixes = chosen_prefixes(&rules, &args.prefixes)?;
    let region = region(ctx).await?;
    let (account, partition) = match args.account {
        Some(account) => (
            account,
            consumer_policy::partition_of_region(&region).to_owned(),
        ),
        None => {
            let caller = ctx
                .aws_for(
                    "the cache account (GetCallerIdentity)",
                    Some("--account ID"),
                )
                .await?
                .caller_identity()
                .await
                .map_err(CliError::CallerIdentity)?;
            tracing::info!(
                account = %caller.account,
                caller = %caller.arn,
                "the cache account is the caller's"
            );
            let partition = caller
                .partition()
                .unwrap_or_else(|| consumer_policy::partition_of_region(&region))
                .to_owned();
            (caller.account, partition)
        }
    };
    let scope = CacheScope {
        partition,
        region,
        account,
        prefixes,
    };
    let doc = consumer_policy::consumer_policy(&scope);
    let text = match args.format {
        PolicyFormat::Json => consumer_policy::to_json(&doc),
        PolicyFormat::Terraform => consumer_policy::to_terraform(&doc, &scope),
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(CliError::Output)
}

/// The settings' expected rules, else the registry's.
async fn rules(ctx: &Context) -> Result<RuleSet, CliError> {
    ctx.rules_or_registry(ctx.settings().expected_rule_set())
        .await
}

/// Every rule's prefix, or the `--prefix` ones, each of which must be a rule's.
fn chosen_prefixes(rules: &RuleSet, asked: &[String]) -> Result<Vec<Prefix>, CliError> {
    let all: Vec<Prefix> = rules.rules().iter().map(|r| r.prefix.clone()).collect();
    if all.is_empty() {
        return Err(CliError::NoRules);
    }
    if asked.is_empty() {
        return Ok(all);
    }
    asked
        .iter()
        .map(|text| {
            let known = Prefix::parse(text)
                .ok()
                .filter(|prefix| all.contains(prefix));
            known.ok_or_else(|| CliError::PrefixNotARule {
                prefix: text.clone(),
                rules: all
                    .iter()
                    .map(Prefix::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        })
        .collect()
}

/// `--region`, else the settings' `PTC_REGION`, else the Region the SDK's chain finds
/// (`AWS_REGION`, the profile).
async fn region(ctx: &Context) -> Result<String, CliError> {
    let given = ctx
        .target()
        .region
        .clone()
        .or_else(|| ctx.settings().region.clone());
    if let Some(region) = given {
        return Ok(region);
    }
    let aws = ctx.aws().await?;
    aws.sdk
        .region()
        .map(|r| r.as_ref().to_owned())
        .ok_or(CliError::NoRegion)
}

/// `--account`: a 12-digit account ID.
fn parse_account(value: &str) -> Result<String, String> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_owned())
    } else {
        Err("an account ID is 12 digits".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use ptc_core::rules::PtcRule;

    use super::*;

    fn rules() -> RuleSet {
        RuleSet::new(vec![
            PtcRule::new("quay", "quay.io").unwrap(),
            PtcRule::new("k8s", "registry.k8s.io").unwrap(),
        ])
    }

    #[test]
    fn every_rule_prefix_by_default_and_the_asked_ones_otherwise() {
        let all = chosen_prefixes(&rules(), &[]).unwrap();
        assert_eq!(all.len(), 2);
        let some = chosen_prefixes(&rules(), &["k8s/".into()]).unwrap();
        assert_eq!(some, [Prefix::parse("k8s").unwrap()]);
    }

    #[test]
    fn a_prefix_that_names_no_rule_is_refused_with_the_rules() {
        for asked in ["ghcr", "Not A Prefix"] {
            let err = chosen_prefixes(&rules(), &[asked.into()]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "--prefix {asked}: no pull-through cache rule has this prefix (rules: k8s, quay)"
                )
            );
        }
        let err = chosen_prefixes(&RuleSet::new(vec![]), &[]).unwrap_err();
        assert!(matches!(err, CliError::NoRules), "{err}");
    }

    #[test]
    fn an_account_is_twelve_digits() {
        assert!(parse_account("111122223333").is_ok());
        for bad in ["11112222333", "1111222233334", "11112222333a"] {
            assert!(parse_account(bad).is_err(), "{bad}");
        }
    }
}
