//! `ptc scan PATH...`: not written yet (issue 20).

use crate::context::Context;
use crate::error::CliError;
use crate::routing::RoutingArgs;

/// `ptc scan [--rule ..] [--registry HOST | --account ID] PATH...`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `--rule`, `--registry`, `--account`: what to route with.
    #[command(flatten)]
    pub routing: RoutingArgs,
    /// Files or directories to read; `-` reads stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
}

/// Not written yet.
pub async fn run(_ctx: &Context, _args: Args) -> Result<(), CliError> {
    Err(CliError::Usage("ptc scan is not written yet".to_owned()))
}
