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
