//! The operator CLI's commands as library functions: they take their inputs and return
//! results; `main.rs` wires arguments, settings and AWS clients to them.

pub mod health;
pub mod map;
pub mod output;
