//! What every command shares: the global options, the settings loaded once, the logs, and
//! the AWS clients, built once on first use (a command that needs no AWS call, such as
//! `ptc map --rule .. --registry ..`, never loads the AWS configuration, nor assumes
//! `--role-arn`).

use std::io::{IsTerminal, StdoutLock};
use std::sync::Arc;

use aws_config::SdkConfig;
use ptc_core::aws::{AwsClients, SdkEcr, SdkObjects, SdkSecrets};
use ptc_core::metrics::MetricsApi;
use ptc_core::{AwsError, Settings};
use serde::Serialize;
use tokio::sync::OnceCell;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::error::CliError;
use crate::output::{self, OutputFormat};
use crate::target::{self, TargetArgs};

/// The options every subcommand takes.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Settings file (TOML); same as PTC_CONFIG_FILE.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<String>,
    /// table for people, json for machines, watch-list for prewarm (ptc map, ptc scan).
    #[arg(long, global = true, value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// More log lines on stderr (-v: info, ptc's own debug; -vv: debug). PTC_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// `--profile`, `--region`, `--role-arn`: the account and Region to work in.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// The settings, the output format and the AWS adapters of one `ptc` run.
pub struct Context {
    settings: Settings,
    output: OutputFormat,
    target: TargetArgs,
    aws: OnceCell<Aws>,
}

/// The AWS adapters, built from one `SdkConfig` (endpoint, region, retries and timeouts of
/// the settings) and one set of service clients.
pub struct Aws {
    /// The configuration every client is built from (the flags' account and Region).
    pub sdk: SdkConfig,
    /// ECR: repositories, rules, settings, creation templates, the registry token.
    pub ecr: Arc<SdkEcr>,
    /// Secrets Manager: the rules' credential secrets.
    pub secrets: SdkSecrets,
    /// S3: a long watch list.
    pub objects: SdkObjects,
    /// The metrics sink of the settings: `PutMetricData`, or EMF lines on stderr (stdout
    /// holds the command's output).
    pub metrics: Box<dyn MetricsApi>,
}

impl Context {
    /// Load the settings (`--config`, else `PTC_CONFIG_FILE`, then the environment) and start
    /// the logs on stderr. Errors: [`CliError::Settings`] for a setting that cannot be read.
    pub fn new(global: &GlobalArgs) -> Result<Self, CliError> {
        let settings = Settings::load_with(global.config.clone())?;
        init_logs(global.verbose, settings.log_filter.as_deref());
        Ok(Self {
            settings,
            output: global.output,
            target: global.target.clone(),
            aws: OnceCell::new(),
        })
    }

    /// The settings, as loaded.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `--output`, as given.
    pub fn output(&self) -> OutputFormat {
        self.output
    }

    /// `--profile`, `--region`, `--role-arn`, as given.
    pub fn target(&self) -> &TargetArgs {
        &self.target
    }

    /// The AWS adapters, built on the first call (the role of `--role-arn` assumed then) and
    /// shared by every later one. Errors: [`CliError::Profile`], [`CliError::AssumeRole`].
    pub async fn aws(&self) -> Result<&Aws, CliError> {
        self.aws
            .get_or_try_init(|| Aws::load(&self.settings, &self.target))
            .await
    }

    /// The AWS adapters, once credentials are known to be there (the SDK's chain is asked
    /// once): without them, [`CliError::NeedsAws`], one line naming what they were
    /// `needed_for` and the flags or settings that do `instead` (when some do). Errors: also
    /// [`Context::aws`]'s.
    pub async fn aws_for(&self, needed_for: &str, instead: Option<&str>) -> Result<&Aws, CliError> {
        use aws_credential_types::provider::ProvideCredentials as _;
        let aws = self.aws().await?;
        let reason = match aws.sdk.credentials_provider() {
            None => Some("no credentials provider".to_owned()),
            Some(provider) => provider
                .provide_credentials()
                .await
                .err()
                .map(|e| target::error_chain(&e)),
        };
        match reason {
            None => Ok(aws),
            Some(reason) => Err(CliError::NeedsAws {
                needed_for: needed_for.to_owned(),
                instead: instead.map(str::to_owned),
                reason: first_line(&reason),
            }),
        }
    }

    /// The rules to work on: `local` when it has any (rules the settings or the command
    /// line give), else the registry's (`DescribePullThroughCacheRules`). Errors:
    /// [`CliError::RegistryRules`], and [`Context::aws_for`]'s.
    pub async fn rules_or_registry(
        &self,
        local: ptc_core::rules::RuleSet,
    ) -> Result<ptc_core::rules::RuleSet, CliError> {
        if !local.is_empty() {
            return Ok(local);
        }
        use ptc_core::ecr::EcrApi as _;
        let rules = self
            .aws_for(
                "the registry's rules (DescribePullThroughCacheRules)",
                Some("PTC_RULES or the config file's rules"),
            )
            .await?
            .ecr
            .describe_rules()
            .await
            .map_err(CliError::RegistryRules)?;
        Ok(ptc_core::rules::RuleSet::new(rules))
    }

    /// Print a command's report on stdout: `value` as JSON with `--output json`, else what
    /// `table` prints. Errors: [`CliError::Output`].
    pub fn print<T: Serialize>(
        &self,
        value: &T,
        table: impl FnOnce(&mut StdoutLock<'static>) -> std::io::Result<()>,
    ) -> Result<(), CliError> {
        if self.output == OutputFormat::WatchList {
            return Err(CliError::Usage(
                "--output watch-list is for ptc map and ptc scan".to_owned(),
            ));
        }
        output::emit(self.output, value, table).map_err(CliError::Output)
    }
}

impl Aws {
    async fn load(settings: &Settings, target: &TargetArgs) -> Result<Self, CliError> {
        let sdk = target::load_sdk_config(settings, target).await?;
        let clients = AwsClients::new(&sdk);
        Ok(Self {
            ecr: Arc::new(SdkEcr::new(clients.ecr())),
            secrets: SdkSecrets::new(clients.secrets()),
            objects: SdkObjects::lazy(clients.clone()),
            metrics: ptc_core::aws::for_sink(settings.metrics_sink, clients.cloudwatch(), true),
            sdk,
        })
    }

    /// STS `GetCallerIdentity`: who the calls are made as (after `--profile` and
    /// `--role-arn`), which needs no permission
    /// (<https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html>).
    pub async fn caller_identity(&self) -> Result<CallerIdentity, AwsError> {
        let out = aws_sdk_sts::Client::new(&self.sdk)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetCallerIdentity", e))?;
        Ok(CallerIdentity {
            account: out.account().unwrap_or_default().to_owned(),
            arn: out.arn().unwrap_or_default().to_owned(),
        })
    }
}

/// Who `ptc`'s calls are made as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// The 12-digit account ID.
    pub account: String,
    /// The caller's ARN, e.g. `arn:aws:sts::111122223333:assumed-role/ops/ptc-cli`.
    pub arn: String,
}

impl CallerIdentity {
    /// The partition of the caller's ARN (`aws`, `aws-cn`, ...), when it has one.
    pub fn partition(&self) -> Option<&str> {
        let partition = self.arn.strip_prefix("arn:")?.split(':').next()?;
        (!partition.is_empty()).then_some(partition)
    }
}

/// The first line of `text`, at most 300 characters: an SDK error in one line.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let mut cut: String = line.chars().take(300).collect();
    if cut.len() < line.len() {
        cut.push_str("...");
    }
    cut
}

/// Logs on stderr: `PTC_LOG` (from the settings) when set, else the level `-v` asks for.
/// Without `-v` (and without `PTC_LOG`), the AWS SDK's own lines (targets `aws_*`, such as
/// `aws_config::imds` probing for credentials on a laptop) and the adapters' error lines
/// (`ptc_core::aws::*` at ERROR: each error is returned to the command, which tells it) are
/// not written: what fails is told by `ptc`'s one-line error or the report.
fn init_logs(verbose: u8, filter_spec: Option<&str>) {
    let quiet_sdk = verbose == 0 && filter_spec.is_none();
    let default = match verbose {
        0 => "warn",
        1 => "info,ptc_core=debug",
        _ => "debug",
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(ptc_core::logging::filter(filter_spec, default))
                .with_filter(tracing_subscriber::filter::filter_fn(move |meta| {
                    !(quiet_sdk
                        && (meta.target().starts_with("aws_")
                            || (meta.target().starts_with("ptc_core::aws")
                                && *meta.level() == tracing::Level::ERROR)))
                })),
        )
        .init();
}
