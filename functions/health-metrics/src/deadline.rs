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

use time::OffsetDateTime;

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

/// Where a run started at `now` begins in a list of `len` items (0 ≤ offset < `len`; 0 for an
/// empty list): the run's start time in whole seconds since the epoch through the SplitMix64
/// mixer, scaled to `len`. Every run starts at a point spread uniformly over the list, whatever
/// the schedule: when one invocation reads a share `f` of the list, a given repository is left
/// unread by `k` successive runs with a probability of about `(1 - f)^k` (a tenth of the list
/// read each run: under 5% after 30 runs; a third: under 2% after 10). Two runs started in the
/// same second start at the same place.
pub fn rotation(now: OffsetDateTime, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let mut z = (now.unix_timestamp() as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((u128::from(z) * len as u128) >> 64) as usize
}

/// `items` turned so that the one at [`rotation`]`(now, len)` comes first (the order is
/// otherwise kept: the list read as a circle).
pub fn rotated<T>(mut items: Vec<T>, now: OffsetDateTime) -> Vec<T> {
    let offset = rotation(now, items.len());
    items.rotate_left(offset);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_moves_between_runs_and_stays_in_the_list() {
        let start = OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap();
        assert_eq!(rotation(start, 0), 0);
        assert_eq!(rotation(start, 1), 0);
        // Hourly runs over 10 items: every item is some run's start within 40 runs, and
        // few runs start where the run before did (a tenth would, by chance).
        let starts: Vec<usize> = (0..40)
            .map(|h| rotation(start + time::Duration::hours(h), 10))
            .collect();
        assert!(starts.iter().all(|s| *s < 10), "{starts:?}");
        for item in 0..10 {
            assert!(starts.contains(&item), "{item} never first: {starts:?}");
        }
        let same = starts.windows(2).filter(|w| w[0] == w[1]).count();
        assert!(same < 10, "{starts:?}");
        // Deterministic: the same second, the same start.
        assert_eq!(rotation(start, 1000), rotation(start, 1000));
        let turned = rotated((0..10).collect(), start);
        assert_eq!(turned[0], rotation(start, 10));
        assert_eq!(turned.len(), 10);
    }
}
