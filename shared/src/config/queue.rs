//! The work queue's settings (issue 19): where the planner sends the work and the workers
//! record the runs. Environment only (the template sets them; `ptc` takes flags).

use std::time::Duration;

use super::ConfigError;
use super::source::{Endpoint, Source, invalid};

/// Where a run's work goes, and how it is cut. All three places unset: no queue (every run is
/// done in one process, as before).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueueSettings {
    /// `PTC_WORK_QUEUE_URL`: the SQS queue the planner sends the work to, e.g.
    /// `https://sqs.eu-west-1.amazonaws.com/123456789012/ptc-work` (https, or http on
    /// loopback). Set, a scheduled prewarm run plans into the queue instead of warming.
    pub work_queue_url: Option<Endpoint>,
    /// `PTC_WORK_DLQ_URL`: the queue's dead-letter queue, where a worker sends what it gives
    /// up on, with the reason. Required with the work queue.
    pub dead_letter_url: Option<Endpoint>,
    /// `PTC_RUN_TABLE`: the DynamoDB table of the runs (3-255 of `A-Z a-z 0-9 _ . -`).
    /// Required with the work queue.
    pub run_table: Option<String>,
    /// `PTC_QUEUE_IMAGES_PER_MESSAGE` (1-50, default 10): the most images of one upstream a
    /// message carries.
    pub images_per_message: usize,
    /// `PTC_RUN_LEASE_HOURS` (1-168, default 24): how long a run holds its job's lease; a
    /// planner finds the job free once the run has finished, or after this (the run is then
    /// finished as abandoned, its missing outcomes counted as deferred).
    pub run_lease: Duration,
}

impl QueueSettings {
    /// The three places, when the queue is configured: (work queue URL, dead-letter URL,
    /// table).
    pub fn places(&self) -> Option<(&str, &str, &str)> {
        Some((
            self.work_queue_url.as_ref()?.as_str(),
            self.dead_letter_url.as_ref()?.as_str(),
            self.run_table.as_deref()?,
        ))
    }
}

/// Read `PTC_WORK_QUEUE_URL`, `PTC_WORK_DLQ_URL`, `PTC_RUN_TABLE`,
/// `PTC_QUEUE_IMAGES_PER_MESSAGE`, `PTC_RUN_LEASE_HOURS`: all three places or none.
pub(super) fn load(src: &Source) -> Result<QueueSettings, ConfigError> {
    let url = |name: &str| -> Result<Option<Endpoint>, ConfigError> {
        src.var(name)
            .map(|v| Endpoint::parse(v.trim()).map_err(|r| invalid(name, &v, r)))
            .transpose()
    };
    let work_queue_url = url("PTC_WORK_QUEUE_URL")?;
    let dead_letter_url = url("PTC_WORK_DLQ_URL")?;
    let run_table = src
        .var("PTC_RUN_TABLE")
        .map(|v| {
            let v = v.trim().to_owned();
            let ok = (3..=255).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if ok {
                Ok(v)
            } else {
                Err(invalid(
                    "PTC_RUN_TABLE",
                    &v,
                    "a DynamoDB table name is 3-255 of A-Z a-z 0-9 _ . -",
                ))
            }
        })
        .transpose()?;
    let set = [
        work_queue_url.is_some(),
        dead_letter_url.is_some(),
        run_table.is_some(),
    ];
    if set.iter().any(|s| *s) && !set.iter().all(|s| *s) {
        return Err(invalid(
            "PTC_WORK_QUEUE_URL",
            "",
            "the work queue needs all three of PTC_WORK_QUEUE_URL, PTC_WORK_DLQ_URL and PTC_RUN_TABLE",
        ));
    }
    let images_per_message = src.number("PTC_QUEUE_IMAGES_PER_MESSAGE", None, 10, 1..=50)? as usize;
    let run_lease =
        Duration::from_secs(src.number("PTC_RUN_LEASE_HOURS", None, 24, 1..=168)? * 3600);
    Ok(QueueSettings {
        work_queue_url,
        dead_letter_url,
        run_table,
        images_per_message,
        run_lease,
    })
}
