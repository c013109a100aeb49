//! The Lambda deadline: when a job stops starting new work, and where a run that may not
//! reach the end of its list starts in it ([`rotation`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

/// Stop starting new work this long before the Lambda deadline: 10% of the time left, at
/// least 5 s and at most 60 s, so that the images in flight can finish and the report and
/// metrics can be written.
pub fn stop_before(deadline_in: Duration) -> Duration {
    (deadline_in / 10)
        .clamp(Duration::from_secs(5), Duration::from_secs(60))
        .min(deadline_in)
}

/// The instant to stop starting work, from the invocation's deadline (milliseconds since the
/// epoch, as the Lambda runtime gives it).
pub fn stop_at(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Instant::now() + left - stop_before(left)
}

/// The instant by which work in flight must have ended, from the invocation's deadline: half
/// of [`stop_before`]'s margin before it, the other half left to write the report, the state
/// and the metrics. A download that would run past it is cut and left for the next run,
/// rather than the invocation being killed with nothing reported.
pub fn finish_by(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Instant::now() + left - stop_before(left) / 2
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

    #[test]
    fn stops_before_the_deadline_with_a_bounded_margin() {
        assert_eq!(
            stop_before(Duration::from_secs(900)),
            Duration::from_secs(60)
        );
        assert_eq!(
            stop_before(Duration::from_secs(120)),
            Duration::from_secs(12)
        );
        assert_eq!(stop_before(Duration::from_secs(20)), Duration::from_secs(5));
        assert_eq!(stop_before(Duration::from_secs(3)), Duration::from_secs(3));
    }

    #[test]
    fn the_stop_comes_before_the_deadline() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let stop = stop_at(now_ms + 100_000);
        let left = stop.saturating_duration_since(Instant::now());
        assert!(
            left <= Duration::from_secs(90) && left > Duration::from_secs(85),
            "{left:?}"
        );
        assert!(
            stop_at(now_ms.saturating_sub(1000)) <= Instant::now(),
            "a past deadline stops at once"
        );
        let finish = finish_by(now_ms + 100_000);
        let left = finish.saturating_duration_since(Instant::now());
        assert!(
            left <= Duration::from_secs(95) && left > Duration::from_secs(90),
            "{left:?}: half the 10 s margin before the deadline"
        );
        assert!(finish > stop);
    }
}
