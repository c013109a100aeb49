//! `ptc`: the operator CLI. Wiring only: the environment check, the arguments, the
//! [`Context`], the subcommand, the exit code.

use std::process::ExitCode;

use clap::Parser as _;
use ptc_cli::commands::Cli;
use ptc_cli::{CliError, Context};
use ptc_core::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    exit(run().await)
}

async fn run() -> Result<(), CliError> {
    // Before clap reads PTC_* variables into arguments: a value that is not text is named.
    Settings::check_environment()?;
    let cli = Cli::parse();
    let ctx = Context::new(&cli.global)?;
    cli.command.run(&ctx).await
}

/// The one place a result becomes the exit code; what stops a run is told on stderr.
fn exit(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if !err.told_on_stdout() {
                eprintln!("ptc: {err}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}
