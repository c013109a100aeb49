//! The subcommands, one module each: its arguments (`Args`), its `run` and its printers.
//! Every `run` returns `Ok(())` for exit code 0, else the [`CliError`] that decides the code;
//! one that calls AWS may also stop on [`Context::aws`]'s errors (`--profile`, `--role-arn`).

use std::ffi::OsStr;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};

use crate::context::{Context, GlobalArgs};
use crate::error::CliError;

pub mod fix;
pub mod health;
pub mod iam;
pub mod map;
pub mod prewarm;
pub mod probe;
pub mod rewrite;
pub mod runs;
pub mod scan;
pub mod validate;

/// `ptc`'s command line: the global options and one subcommand.
#[derive(Debug, Parser)]
#[command(
    name = "ptc",
    version,
    about = "Keeps an Amazon ECR pull-through cache healthy",
    long_about = None
)]
pub struct Cli {
    /// `--config`, `--output`, `-v`, `--profile`, `--region`, `--role-arn`: taken before or
    /// after the subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands; the doc comment of each is its line in `ptc --help`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring the repositories the cache created to the desired settings.
    Fix(fix::Args),
    /// Pull the watch list through the cache, verify it in ECR, compare with upstream.
    Prewarm(prewarm::Args),
    /// The queued runs of prewarm (`ptc prewarm --enqueue`), or one run's progress.
    Runs(runs::Args),
    /// Inventory of the cache per prefix, watch-list coverage and outage readiness; publish the metrics.
    Health(health::Args),
    /// Validate every pull-through cache rule and its credential secret; publish the metrics.
    Validate(validate::Args),
    /// Print the cached image URI of each upstream reference, or the routing in a format (--format).
    Map(map::Args),
    /// List the images of manifests, Helm releases, Dockerfiles and lists, each with its class.
    Scan(scan::Args),
    /// Point the images of manifests and Dockerfiles at the cache (a patch, or --write).
    Rewrite(rewrite::Args),
    /// Print the IAM policies other accounts need to use the cache.
    Iam(iam::Args),
    /// Pull through the cache as another account's role: a new image, a new tag, a cached image.
    Probe(probe::Args),
}

impl Command {
    /// Run the subcommand. `Ok(())` is exit code 0; the error carries the code
    /// ([`CliError::exit_code`]).
    pub async fn run(self, ctx: &Context) -> Result<(), CliError> {
        match self {
            Self::Fix(args) => fix::run(ctx, args).await,
            Self::Prewarm(args) => prewarm::run(ctx, args).await,
            Self::Runs(args) => runs::run(ctx, args).await,
            Self::Health(args) => health::run(ctx, args).await,
            Self::Validate(args) => validate::run(ctx, args).await,
            Self::Map(args) => map::run(ctx, args).await,
            Self::Scan(args) => scan::run(ctx, args).await,
            Self::Rewrite(args) => rewrite::run(ctx, args).await,
            Self::Iam(args) => iam::run(ctx, args).await,
            Self::Probe(args) => probe::run(ctx, args).await,
        }
    }
}

/// A clap value parser over a `(name, value)` table such as `FixMode::CHOICES`: it accepts
/// the names, lists them in `--help` and rejects anything else with clap's usual message
/// (`invalid value 'x' for '--mode <MODE>'`, the possible values, a similar one).
#[derive(Debug, Clone)]
pub struct Choices<T: 'static> {
    table: &'static [(&'static str, T)],
}

impl<T> Choices<T> {
    /// The parser for `table`.
    pub const fn new(table: &'static [(&'static str, T)]) -> Self {
        Self { table }
    }

    fn names(&self) -> PossibleValuesParser {
        PossibleValuesParser::new(self.table.iter().map(|(name, _)| *name))
    }
}

impl<T: Copy + Send + Sync + 'static> TypedValueParser for Choices<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let name = self.names().parse_ref(cmd, arg, value)?;
        self.table
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, value)| *value)
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            self.table.iter().map(|(name, _)| PossibleValue::new(*name)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;
    use ptc_core::config::{FixMode, PrewarmMode};

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn modes_parse_to_their_enums() {
        let cli = Cli::try_parse_from(["ptc", "fix", "--mode", "dry-run"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Fix(fix::Args {
                mode: Some(FixMode::DryRun),
                ..
            })
        ));
        let cli = Cli::try_parse_from(["ptc", "prewarm", "--mode", "manifests"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Prewarm(prewarm::Args {
                mode: Some(PrewarmMode::Manifests),
                ..
            })
        ));
        let err = Cli::try_parse_from(["ptc", "fix", "--mode", "Fill"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        let text = err.to_string();
        assert!(
            text.contains("invalid value 'Fill' for '--mode <MODE>'")
                && text.contains("[possible values: fill, enforce, dry-run]"),
            "{text}"
        );
    }
}
