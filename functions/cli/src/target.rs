//! Which account and region `ptc` works in: the global `--profile`, `--region` and
//! `--role-arn`, and the one `SdkConfig` they give every command that calls AWS.
//!
//! | flag | what it changes | over |
//! |------|-----------------|------|
//! | `--region REGION` | the Region of every call | `PTC_REGION`, the settings file's `region`, `AWS_REGION`, the profile's `region` |
//! | `--profile NAME` | the base credentials: that profile of the shared config and credentials files, as the AWS CLI's `--profile` (static keys, `role_arn`/`source_profile`, SSO, `credential_process`); its `region` when nothing above names one | `AWS_PROFILE`, and the `AWS_ACCESS_KEY_ID` environment credentials the SDK's default chain would take first |
//! | `--role-arn ARN` | every call is made as that role: STS `AssumeRole` (session `ptc-cli`) with the base credentials, before any other call | |
//!
//! A profile or a role that gives no credentials stops the run before any other call, with
//! an error naming the flag (exit code 2). Credentials are never logged: what the logs say is
//! the role ARN, the session name and the expiry.

use std::fmt;
use std::str::FromStr;

use aws_config::SdkConfig;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use ptc_core::Settings;
use ptc_core::aws::{AwsOptions, sdk_config_loader};

use crate::error::CliError;

/// The session name of every `--role-arn` session: CloudTrail shows the calls of `ptc` as
/// `assumed-role/<role>/ptc-cli`.
pub const SESSION_NAME: &str = "ptc-cli";

/// `--profile`, `--region`, `--role-arn`: taken before or after the subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TargetArgs {
    /// Named AWS profile: its credentials (over the AWS_* variables) and its Region.
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// AWS Region, over PTC_REGION, the settings file and the profile.
    #[arg(long, global = true, value_name = "REGION", value_parser = parse_region)]
    pub region: Option<String>,
    /// Assume this IAM role (STS AssumeRole, session ptc-cli) before any other call.
    #[arg(long, global = true, value_name = "ARN")]
    pub role_arn: Option<RoleArn>,
}

/// An IAM role ARN, `arn:<partition>:iam::<account>:role/<path><name>`, checked when given
/// so that a typo is refused before any call (IAM's limits: a role name of 1-64 characters
/// of letters, digits and `+=,.@_-`, a path of the same characters and `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    text: String,
    partition_end: usize,
}

impl RoleArn {
    /// The ARN as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `aws`, `aws-cn`, `aws-us-gov`, ...
    pub fn partition(&self) -> &str {
        &self.text["arn:".len()..self.partition_end]
    }

    /// The 12-digit account ID the role belongs to.
    pub fn account(&self) -> &str {
        let rest = &self.text[self.partition_end + ":iam::".len()..];
        &rest[..12]
    }
}

impl FromStr for RoleArn {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        const SHAPE: &str = "expected arn:<partition>:iam::<12-digit account>:role/<name>";
        let rest = text.strip_prefix("arn:").ok_or(SHAPE)?;
        let (partition, rest) = rest.split_once(':').ok_or(SHAPE)?;
        let partition_ok = partition.starts_with("aws")
            && partition
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !partition_ok {
            return Err(format!("{SHAPE}: {partition:?} is not a partition"));
        }
        let rest = rest.strip_prefix("iam::").ok_or(SHAPE)?;
        let (account, resource) = rest.split_once(':').ok_or(SHAPE)?;
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{SHAPE}: {account:?} is not a 12-digit account ID"));
        }
        let path_and_name = resource.strip_prefix("role/").ok_or(SHAPE)?;
        let name = path_and_name.rsplit('/').next().unwrap_or_default();
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b);
        if !(1..=64).contains(&name.len()) || !name.bytes().all(allowed) {
            return Err(format!(
                "{SHAPE}: the role name has 1 to 64 letters, digits or +=,.@_-"
            ));
        }
        if text.len() > 2048 || !path_and_name.bytes().all(|b| allowed(b) || b == b'/') {
            return Err(format!(
                "{SHAPE}: the role path has letters, digits, +=,.@_- and /"
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            partition_end: "arn:".len() + partition.len(),
        })
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `--region`: lowercase letters, digits and `-`, starting with a letter (`eu-west-1`,
/// `us-gov-west-1`); whether AWS knows it is for AWS to say.
fn parse_region(value: &str) -> Result<String, String> {
    let ok = value.len() <= 64
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err("a Region is lowercase letters, digits and '-', such as eu-west-1".to_owned())
    }
}

/// The `SdkConfig` of the settings (endpoint, retries, timeouts) for the account and Region
/// the flags target. With `--profile` or `--role-arn`, the credentials are fetched here once,
/// so that a profile or a role that gives none stops the run before any other call.
///
/// Errors: [`CliError::Profile`], [`CliError::AssumeRole`].
pub async fn load_sdk_config(
    settings: &Settings,
    target: &TargetArgs,
) -> Result<SdkConfig, CliError> {
    let mut options = AwsOptions::from_settings(settings);
    if let Some(region) = &target.region {
        options.region = Some(region.clone());
    }
    let mut loader = sdk_config_loader(&options);
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    let mut sdk = loader.load().await;
    if let Some(profile) = &target.profile {
        sdk = with_profile_credentials(sdk, profile);
        if target.role_arn.is_none() {
            check_credentials(&sdk)
                .await
                .map_err(|reason| CliError::Profile {
                    profile: profile.clone(),
                    reason,
                })?;
        }
    }
    match &target.role_arn {
        Some(role) => assume_role(sdk, role).await,
        None => Ok(sdk),
    }
}

/// The named profile's credentials in place of the default chain's, which would take the
/// `AWS_ACCESS_KEY_ID` variables first: `--profile` wins over them, as in the AWS CLI.
fn with_profile_credentials(sdk: SdkConfig, profile: &str) -> SdkConfig {
    let provider = ProfileFileCredentialsProvider::builder()
        .configure(&ProviderConfig::default().with_region(sdk.region().cloned()))
        .profile_name(profile)
        .build();
    sdk.into_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
}

/// `sdk` with the credentials of `role`, assumed with the credentials of `sdk` (STS
/// `AssumeRole`, session [`SESSION_NAME`], at the settings' endpoint, retries and timeouts).
/// The role is assumed once here to fail early; the SDK's identity cache then holds and
/// refreshes the session (one more `AssumeRole` on the first call).
async fn assume_role(sdk: SdkConfig, role: &RoleArn) -> Result<SdkConfig, CliError> {
    let provider = AssumeRoleProvider::builder(role.as_str())
        .session_name(SESSION_NAME)
        .configure(&sdk)
        .build()
        .await;
    let expiry = provider
        .provide_credentials()
        .await
        .map_err(|err| CliError::AssumeRole {
            role_arn: role.to_string(),
            reason: error_chain(&err),
        })?
        .expiry();
    tracing::info!(
        role_arn = %role,
        session = SESSION_NAME,
        expires = ?expiry,
        "assumed the role"
    );
    Ok(sdk
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build())
}

/// Fetch the credentials of `sdk` once; the reason they cannot be had otherwise.
async fn check_credentials(sdk: &SdkConfig) -> Result<(), String> {
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| "no credentials provider".to_owned())?;
    provider
        .provide_credentials()
        .await
        .map(drop)
        .map_err(|err| error_chain(&err))
}

/// An error and its sources on one line (`a: b: c`), each told once: the SDK's errors say
/// little at the top ("service error") and the reason at the bottom.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_arn_is_read_into_partition_and_account() {
        let arn: RoleArn = "arn:aws-us-gov:iam::111122223333:role/platform/ptc-operator"
            .parse()
            .unwrap();
        assert_eq!(arn.partition(), "aws-us-gov");
        assert_eq!(arn.account(), "111122223333");
        assert_eq!(
            arn.to_string(),
            "arn:aws-us-gov:iam::111122223333:role/platform/ptc-operator"
        );
        assert!(
            "arn:aws:iam::111122223333:role/a+b=c,d.e@f_g-h"
                .parse::<RoleArn>()
                .is_ok()
        );
    }

    #[test]
    fn what_is_not_a_role_arn_is_refused_with_its_reason() {
        for (text, says) in [
            ("ptc-operator", "expected arn:"),
            ("arn:aws:iam::1111:role/x", "12-digit account"),
            ("arn:aws:iam::111122223333:user/x", "expected arn:"),
            ("arn:aws:sts::111122223333:role/x", "expected arn:"),
            ("arn:gcp:iam::111122223333:role/x", "not a partition"),
            ("arn:aws:iam::111122223333:role/", "1 to 64"),
            ("arn:aws:iam::111122223333:role/a b", "1 to 64"),
            ("arn:aws:iam::111122223333:role/p ath/x", "role path"),
        ] {
            let err = text.parse::<RoleArn>().unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
        let long = format!("arn:aws:iam::111122223333:role/{}", "a".repeat(65));
        assert!(long.parse::<RoleArn>().unwrap_err().contains("1 to 64"));
    }

    #[test]
    fn regions_are_checked_for_shape_only() {
        assert_eq!(parse_region("eu-west-1").unwrap(), "eu-west-1");
        assert!(parse_region("us-gov-west-1").is_ok());
        for bad in ["", "EU-WEST-1", "1-west", "eu west 1"] {
            assert!(parse_region(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_error_chain_reads_on_one_line_without_repeats() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl fmt::Display for E {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let err = E(
            "service error",
            Some(Box::new(E(
                "AccessDenied: not authorized",
                Some(Box::new(E("not authorized", None))),
            ))),
        );
        assert_eq!(
            error_chain(&err),
            "service error: AccessDenied: not authorized"
        );
    }
}
