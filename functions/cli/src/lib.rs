//! `ptc`, the operator CLI: one module per subcommand ([`commands`]), each with its
//! arguments, its run and its printers, over one shared [`Context`] (settings, logs, AWS
//! clients). Every run ends in `Ok(())` (exit code 0) or a [`CliError`], whose
//! [`CliError::exit_code`] is the process exit code; `main.rs` only wires them.

pub mod commands;
pub mod context;
pub mod error;
pub mod output;

pub use context::Context;
pub use error::CliError;
