//! The Lambda deadline: when a job stops starting new work.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

#[cfg(test)]
mod tests {
    use super::*;

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
