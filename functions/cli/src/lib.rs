//! `ptc`, the operator CLI: one module per subcommand ([`commands`]), each with its
//! arguments, its run and its printers, over one shared [`Context`] (settings, logs, AWS
//! clients for the account and Region of the [`target`] flags). Every run ends in `Ok(())`
//! (exit code 0) or a [`CliError`], whose [`CliError::exit_code`] is the process exit code;
//! `main.rs` only wires them. [`consumer_policy`] and [`pull_time_exclusion`] are the pure
//! halves of `ptc iam`; [`routing`] (rules and registry host, offline first), [`formats`]
//! (`ptc map --format`) and [`scan`] (the images of manifests, Dockerfiles and lists) those
//! of `ptc map`, `ptc scan` and `ptc rewrite`.

pub mod commands;
pub mod consumer_policy;
pub mod context;
pub mod error;
pub mod formats;
pub mod output;
pub mod pull_time_exclusion;
pub mod routing;
pub mod scan;
pub mod target;

pub use context::Context;
pub use error::CliError;
