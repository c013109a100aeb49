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
    /// `PTC_QUEUE_RETRY_SECS` (1-3600, default 300): the wait before a failed image's second
    /// attempt; the third waits three times as long, then it is dead-lettered.
    pub retry_backoff: Duration,
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
/// `PTC_QUEUE_IMAGES_PER_MESSAGE`, `PTC_RUN_LEASE_HOURS`: a queue with its dead-letter queue
/// and the table, or the table alone (to read runs), or none.
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
    // A queue needs its dead-letter queue and the table; the table alone is enough to read
    // runs (`ptc runs`).
    if (work_queue_url.is_some() || dead_letter_url.is_some())
        && (work_queue_url.is_none() || dead_letter_url.is_none() || run_table.is_none())
    {
        let missing: Vec<&str> = [
            ("PTC_WORK_QUEUE_URL", work_queue_url.is_none()),
            ("PTC_WORK_DLQ_URL", dead_letter_url.is_none()),
            ("PTC_RUN_TABLE", run_table.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, absent)| absent.then_some(name))
        .collect();
        let (name, value) = match (&work_queue_url, &dead_letter_url) {
            (Some(url), _) => ("PTC_WORK_QUEUE_URL", url.as_str()),
            (None, Some(url)) => ("PTC_WORK_DLQ_URL", url.as_str()),
            (None, None) => unreachable!("one of them is set"),
        };
        return Err(invalid(
            name,
            value,
            format!("the work queue also needs {}", missing.join(" and ")),
        ));
    }
    let images_per_message = src.number("PTC_QUEUE_IMAGES_PER_MESSAGE", None, 10, 1..=50)? as usize;
    let run_lease =
        Duration::from_secs(src.number("PTC_RUN_LEASE_HOURS", None, 24, 1..=168)? * 3600);
    let retry_backoff =
        Duration::from_secs(src.number("PTC_QUEUE_RETRY_SECS", None, 300, 1..=3600)?);
    Ok(QueueSettings {
        work_queue_url,
        dead_letter_url,
        run_table,
        images_per_message,
        run_lease,
        retry_backoff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn load(vars: &[(&str, &str)]) -> Result<QueueSettings, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_sources(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .map(|s| s.queue)
    }

    #[test]
    fn a_queue_needs_its_dead_letters_and_table_and_a_table_alone_reads_runs() {
        let all = load(&[
            (
                "PTC_WORK_QUEUE_URL",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/w",
            ),
            (
                "PTC_WORK_DLQ_URL",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/d",
            ),
            ("PTC_RUN_TABLE", "ptc-runs"),
        ])
        .unwrap();
        assert!(all.places().is_some());
        assert_eq!(
            (all.images_per_message, all.run_lease.as_secs()),
            (10, 86_400)
        );
        let table = load(&[("PTC_RUN_TABLE", "ptc-runs")]).unwrap();
        assert_eq!(
            (table.places(), table.run_table.as_deref()),
            (None, Some("ptc-runs"))
        );
        let err = load(&[(
            "PTC_WORK_QUEUE_URL",
            "https://sqs.eu-west-1.amazonaws.com/1/w",
        )])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("PTC_WORK_QUEUE_URL")
                && err.contains("also needs PTC_WORK_DLQ_URL and PTC_RUN_TABLE"),
            "{err}"
        );
        for (name, value) in [
            ("PTC_RUN_TABLE", "x"),
            ("PTC_RUN_TABLE", "bad/name"),
            ("PTC_QUEUE_IMAGES_PER_MESSAGE", "51"),
            ("PTC_RUN_LEASE_HOURS", "0"),
        ] {
            let err = load(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
        let plain_http = load(&[
            ("PTC_WORK_QUEUE_URL", "http://sqs.example.com/1/w"),
            ("PTC_WORK_DLQ_URL", "https://sqs.example.com/1/d"),
            ("PTC_RUN_TABLE", "ptc-runs"),
        ]);
        assert!(plain_http.is_err(), "http only on loopback");
    }
}
