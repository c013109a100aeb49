//! What can stop `ptc`, and the one place that turns it into an exit code.
//!
//! | Exit code | When                                                                       |
//! |-----------|----------------------------------------------------------------------------|
//! | 0         | the command ran and found nothing wrong                                    |
//! | 1         | the command ran; its report has errors or findings ([`CliError::RunErrors`], [`CliError::Findings`]) |
//! | 2         | the command could not run: settings, arguments, AWS or registry set-up (a `--profile` or `--role-arn` without credentials included), stdin, stdout (every other variant); clap's own usage errors exit 2 as well |
//!
//! A code 1 is told by the report on stdout; a code 2 by one `ptc: <message>` line on stderr.

use ptc_core::AwsError;
use ptc_core::config::ConfigError;
use ptc_core::oci::RegistryError;

/// Why `ptc` stops with a non-zero exit code; [`CliError::exit_code`] maps each to its code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A setting that cannot be read: an environment variable, the settings file, `PTC_LOG`
    /// (exit code 2).
    #[error(transparent)]
    Settings(#[from] ConfigError),
    /// Settings that load but a job refuses, e.g. a lifecycle policy ECR would refuse; the
    /// message names the setting (exit code 2).
    #[error("{0}")]
    InvalidSettings(String),
    /// A `--rule` that is not `PREFIX=UPSTREAM_URL` (exit code 2).
    #[error("--rule {spec}: {reason}")]
    BadRule {
        /// As given on the command line.
        spec: String,
        /// Why it is not a rule.
        reason: String,
    },
    /// The HTTP client for the registries cannot be built (exit code 2).
    #[error(transparent)]
    HttpClient(RegistryError),
    /// No token for the account's registry endpoint (exit code 2).
    #[error("registry token: {0}")]
    RegistryToken(#[source] RegistryError),
    /// `DescribePullThroughCacheRules` failed where the rules were needed (exit code 2).
    #[error("reading the registry's rules: {0}")]
    RegistryRules(#[source] AwsError),
    /// `GetAuthorizationToken` failed where the registry host was needed (exit code 2).
    #[error("finding the registry host (pass --registry to skip this call): {0}")]
    RegistryHost(#[source] AwsError),
    /// `--profile` gives no credentials: an unknown profile, an expired SSO session, a
    /// failing `credential_process` (exit code 2).
    #[error("--profile {profile}: no credentials: {reason}")]
    Profile {
        /// As given.
        profile: String,
        /// What the SDK's profile provider said.
        reason: String,
    },
    /// `--role-arn`: STS `AssumeRole` refused, or no base credentials to ask with
    /// (exit code 2).
    #[error("--role-arn {role_arn}: cannot assume the role: {reason}")]
    AssumeRole {
        /// As given.
        role_arn: String,
        /// What STS or the credentials chain said.
        reason: String,
    },
    /// STS `GetCallerIdentity` failed where the cache account was needed (exit code 2).
    #[error("finding the cache account (pass --account to skip this call): {0}")]
    CallerIdentity(#[source] AwsError),
    /// `ptc iam pull-time-exclusion` without `--principal-arn`: STS `GetCallerIdentity`
    /// failed (exit code 2).
    #[error("finding who the caller is (pass --principal-arn to skip this call): {0}")]
    CallerPrincipal(#[source] AwsError),
    /// `ptc iam pull-time-exclusion` without `--principal-arn`: the caller is not an IAM role
    /// or user (an account root, a federated user), which ECR cannot exclude (exit code 2).
    #[error(
        "the caller {caller} is not an IAM role or user, which only can be pull-time update exclusions: pass --principal-arn"
    )]
    NotExcludable {
        /// The caller's ARN, from STS.
        caller: String,
    },
    /// `--registry`, `--account` or the Region cannot give a registry host; the message names
    /// the flag (exit code 2).
    #[error("{0}")]
    BadRouting(String),
    /// AWS is needed and no credentials are found: what for, and the flags that do without
    /// (exit code 2).
    #[error("no AWS credentials for {needed_for}{}: {reason}", without_aws(.instead))]
    NeedsAws {
        /// What the call was for, e.g. `the registry host (GetAuthorizationToken)`.
        needed_for: String,
        /// The flags that make the call unneeded, if any do.
        instead: Option<String>,
        /// What the SDK's credentials chain said, first line.
        reason: String,
    },
    /// Reading a file `ptc scan` or `ptc rewrite` was given, or writing one (exit code 2).
    #[error("{path}: {reason}")]
    File {
        /// The path as given.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A flag combination or value the command cannot use; the message names the flag
    /// (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// No Region from the flags, the settings or the SDK's chain (exit code 2).
    #[error("no AWS Region: pass --region, or set PTC_REGION or the profile's region")]
    NoRegion,
    /// The settings name no rule and the registry has none: no prefix to grant (exit code 2).
    #[error("no pull-through cache rules in the settings or the registry: no prefix to grant")]
    NoRules,
    /// A `--prefix` that names none of the rules (exit code 2).
    #[error("--prefix {prefix}: no pull-through cache rule has this prefix (rules: {rules})")]
    PrefixNotARule {
        /// As given.
        prefix: String,
        /// The rules' prefixes, comma-separated.
        rules: String,
    },
    /// `ptc probe --consumer-role-arn`: STS `AssumeRole` refused (exit code 2).
    #[error("--consumer-role-arn {role_arn}: cannot assume the role: {reason}")]
    ConsumerRole {
        /// As given.
        role_arn: String,
        /// What STS or the credentials chain said.
        reason: String,
    },
    /// `ptc probe --image`: a reference that is not one, or that no rule routes (exit code 2).
    #[error("--image {image}: {reason}")]
    BadImage {
        /// As given.
        image: String,
        /// Why it cannot be pulled through the cache.
        reason: String,
    },
    /// `ptc probe`: no candidate for these kinds of pull; the report on stdout says which
    /// (exit code 2).
    #[error("probe incomplete: nothing to pull for: {0} (pass --image REF)")]
    ProbeIncomplete(String),
    /// The work queue or the runs' table is needed and not given: the message names the
    /// flags and variables missing (exit code 2).
    #[error("{0}")]
    QueueNotConfigured(String),
    /// The runs' table could not be read (exit code 2).
    #[error("reading the runs' table {table}: {source}")]
    RunTable {
        /// `--run-table` or PTC_RUN_TABLE.
        table: String,
        /// What DynamoDB said.
        #[source]
        source: AwsError,
    },
    /// `ptc runs RUN_ID`: no such run in the table (exit code 2).
    #[error("run {run} not found in the runs' table {table}")]
    UnknownRun {
        /// As given.
        run: String,
        /// `--run-table` or PTC_RUN_TABLE.
        table: String,
    },
    /// Reading the references of `ptc map -`, `ptc prewarm --image -` (exit code 2).
    #[error("reading stdin: {0}")]
    Stdin(#[source] std::io::Error),
    /// Writing the report on stdout (exit code 2).
    #[error("writing output: {0}")]
    Output(#[source] std::io::Error),
    /// The run went through and its report, already on stdout, lists errors or warnings:
    /// failed AWS calls, repositories or images (exit code 1).
    #[error("the run reported errors")]
    RunErrors,
    /// The run went through cleanly and found what the command looks for; the report on
    /// stdout lists it (exit code 1).
    #[error("{0}")]
    Findings(Findings),
}

/// What a clean run can find that fails the command (exit code 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Findings {
    /// `ptc validate`: rules ECR or the secret check reject, or expected rules missing.
    #[error("invalid or missing rules")]
    InvalidRules,
    /// `ptc validate --prefix`: prefixes that name no rule of the registry.
    #[error("{0} prefixes name no rule")]
    UnknownPrefixes(usize),
    /// `ptc validate`: rule prefixes some consumer (a pull grant of the settings) cannot
    /// pull through, as the cache account's policies say (denied or unknown).
    #[error("{0} prefixes are not ready for their consumers")]
    ConsumersCannotPull(usize),
    /// `ptc validate`: roles of the deployment (`PTC_PULL_TIME_EXCLUDED_ROLES`) not known to
    /// be ECR pull-time update exclusions (not listed, or the list could not be read).
    #[error("{0} roles that pull for the product are not known to be pull-time update exclusions")]
    PullTimeExclusionsMissing(usize),
    /// `ptc health --outage`: watched images that would fail to pull.
    #[error("{0} watched images would fail to pull")]
    ExposedImages(usize),
    /// `ptc probe`: pulls the registry refused (or that failed) as the consumer.
    #[error("{0} pulls through the cache refused or failed")]
    RefusedPulls(usize),
    /// `ptc map`: references with no cached image URI.
    #[error("{0} references cannot be mapped")]
    UnmappedReferences(usize),
    /// `ptc scan`, `ptc rewrite`: files or references that could not be read (each listed in
    /// the report).
    #[error("{0} problems reading the inputs")]
    ScanProblems(usize),
}

/// ` (pass <flags> to work without AWS)`, or how to give credentials when no flag does without.
fn without_aws(instead: &Option<String>) -> String {
    match instead {
        Some(flags) => format!(" (pass {flags} to work without AWS)"),
        None => {
            " (give them with --profile, AWS_PROFILE or the AWS_ACCESS_KEY_ID variables)".to_owned()
        }
    }
}

impl CliError {
    /// The process exit code: 1 for [`CliError::RunErrors`] and [`CliError::Findings`] (the
    /// command ran), 2 for everything that kept it from running.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::RunErrors | Self::Findings(_) => 1,
            Self::Settings(_)
            | Self::InvalidSettings(_)
            | Self::BadRule { .. }
            | Self::HttpClient(_)
            | Self::RegistryToken(_)
            | Self::RegistryRules(_)
            | Self::RegistryHost(_)
            | Self::Profile { .. }
            | Self::AssumeRole { .. }
            | Self::CallerIdentity(_)
            | Self::CallerPrincipal(_)
            | Self::NotExcludable { .. }
            | Self::NoRegion
            | Self::BadRouting(_)
            | Self::NeedsAws { .. }
            | Self::File { .. }
            | Self::Usage(_)
            | Self::NoRules
            | Self::PrefixNotARule { .. }
            | Self::ConsumerRole { .. }
            | Self::BadImage { .. }
            | Self::ProbeIncomplete(_)
            | Self::QueueNotConfigured(_)
            | Self::RunTable { .. }
            | Self::UnknownRun { .. }
            | Self::Stdin(_)
            | Self::Output(_) => 2,
        }
    }

    /// Whether the report on stdout already tells what went wrong, so nothing goes to stderr.
    pub fn told_on_stdout(&self) -> bool {
        matches!(self, Self::RunErrors | Self::Findings(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_exit_1_and_everything_that_stops_a_run_exits_2() {
        assert_eq!(CliError::RunErrors.exit_code(), 1);
        assert_eq!(CliError::Findings(Findings::InvalidRules).exit_code(), 1);
        assert!(CliError::Findings(Findings::UnmappedReferences(2)).told_on_stdout());
        assert_eq!(CliError::Findings(Findings::RefusedPulls(1)).exit_code(), 1);
        let io = || std::io::Error::other("closed");
        for err in [
            CliError::InvalidSettings("setting X: bad".into()),
            CliError::BadRule {
                spec: "a:b".into(),
                reason: "no".into(),
            },
            CliError::Stdin(io()),
            CliError::Output(io()),
            CliError::AssumeRole {
                role_arn: "arn:aws:iam::111122223333:role/x".into(),
                reason: "AccessDenied".into(),
            },
            CliError::Profile {
                profile: "prod".into(),
                reason: "not defined".into(),
            },
            CliError::NoRegion,
            CliError::NoRules,
            CliError::ConsumerRole {
                role_arn: "arn:aws:iam::222233334444:role/x".into(),
                reason: "AccessDenied".into(),
            },
            CliError::BadImage {
                image: "gcr.io/x".into(),
                reason: "no rule".into(),
            },
            CliError::ProbeIncomplete("new tag".into()),
        ] {
            assert_eq!(err.exit_code(), 2, "{err}");
            assert!(!err.told_on_stdout(), "{err}");
        }
    }

    #[test]
    fn messages_read_as_before() {
        let err = CliError::BadRule {
            spec: "quay:quay.io".into(),
            reason: "\"quay:quay.io\" is not PREFIX=UPSTREAM_URL".into(),
        };
        assert_eq!(
            err.to_string(),
            "--rule quay:quay.io: \"quay:quay.io\" is not PREFIX=UPSTREAM_URL"
        );
        let err = CliError::AssumeRole {
            role_arn: "arn:aws:iam::111122223333:role/x".into(),
            reason: "AccessDenied: not authorized".into(),
        };
        assert_eq!(
            err.to_string(),
            "--role-arn arn:aws:iam::111122223333:role/x: cannot assume the role: AccessDenied: not authorized"
        );
        let err = CliError::Output(std::io::Error::other("broken pipe"));
        assert_eq!(err.to_string(), "writing output: broken pipe");
    }
}
