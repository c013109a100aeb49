//! When a run stops ([`Deadline`]), and where it starts reading ([`rotation`]).
//!
//! The Lambda gives each inventory the invocation's deadline: reading starts no new
//! `DescribeImages` listing (one repository, all its pages) nor watch-list assessment after
//! [`Deadline::stop_at`], and one still running at [`Deadline::finish_by`] is cut; the run then
//! publishes what it read whole and withholds the rest (see [`crate::report::Unread`]).
//! `ptc health` runs without a deadline.
//!
//! So that a registry too large for one invocation is not cut at the same repository every
//! run, each run reads the repositories in the same order (by prefix, then name) but starts
//! at an offset drawn from its start time ([`rotation`]): stateless, and no schedule period
//! can make successive runs start at the same place.

use std::time::Instant;

/// When an invocation's run stops: start nothing after `stop_at`, end everything in flight by
/// `finish_by`. Both come from the Lambda invocation's deadline through
/// [`ptc_core::deadline::stop_at`] (10% of the time left before it, at least 5 s, at most 60 s)
/// and [`ptc_core::deadline::finish_by`] (half that margin before it); the rest of the margin
/// is for publishing the metrics and writing the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// No repository listing, and no watch-list assessment, starts after this instant.
    pub stop_at: Instant,
    /// A listing or assessment still running at this instant is cut (its result dropped);
    /// the two listings every run starts with (the rules, the repositories) are bounded by it
    /// too.
    pub finish_by: Instant,
}

impl Deadline {
    /// The stop points of an invocation whose deadline is `deadline_ms`, in milliseconds since
    /// the Unix epoch (`lambda_runtime::Context::deadline`). A deadline already past stops at
    /// once.
    pub fn of_invocation(deadline_ms: u64) -> Self {
        Self {
            stop_at: ptc_core::deadline::stop_at(deadline_ms),
            finish_by: ptc_core::deadline::finish_by(deadline_ms),
        }
    }

    /// Is it too late to start new work?
    pub fn stopped(&self) -> bool {
        Instant::now() >= self.stop_at
    }
}

pub use ptc_core::deadline::{rotated, rotation};
