//! `ptc rewrite PATH...`: not written yet (issue 20).

use crate::context::Context;
use crate::error::CliError;
use crate::routing::RoutingArgs;

/// `ptc rewrite [--rule ..] [--registry HOST | --account ID] [--write] PATH...`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `--rule`, `--registry`, `--account`: what to route with.
    #[command(flatten)]
    pub routing: RoutingArgs,
    /// Rewrite the files in place instead of printing a patch.
    #[arg(long)]
    pub write: bool,
    /// Files or directories to rewrite.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
}

/// Not written yet.
pub async fn run(_ctx: &Context, _args: Args) -> Result<(), CliError> {
    Err(CliError::Usage("ptc rewrite is not written yet".to_owned()))
}
