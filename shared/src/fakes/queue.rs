//! An in-memory queue and runs' store for tests, with the adapters' semantics (conditional
//! outcomes, the job's lease).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{AwsError, AwsErrorKind};
use crate::queue::*;

/// An in-memory queue: what was sent, per queue URL, in order.
#[derive(Default)]
pub struct FakeQueue {
    /// (queue URL, message) in the order sent.
    pub sent: Mutex<Vec<(String, Outgoing)>>,
    /// When set, every call fails with this error code.
    pub fail: Mutex<Option<String>>,
    /// The next this many calls fail as a whole (then calls succeed).
    pub fail_next: Mutex<usize>,
    /// The depth answered.
    pub depth: Mutex<QueueDepth>,
}

impl FakeQueue {
    /// The bodies sent to `queue_url`, with their delays.
    pub fn sent_to(&self, queue_url: &str) -> Vec<Outgoing> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(q, _)| q == queue_url)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

#[async_trait]
impl QueueApi for FakeQueue {
    async fn send(
        &self,
        queue_url: &str,
        messages: &[Outgoing],
    ) -> Result<Vec<(usize, String)>, AwsError> {
        let failing_next = {
            let mut next = self.fail_next.lock().unwrap();
            let failing = *next > 0;
            *next = next.saturating_sub(1);
            failing
        };
        if let Some(code) = self
            .fail
            .lock()
            .unwrap()
            .clone()
            .or(failing_next.then(|| "ServiceUnavailable".to_owned()))
        {
            return Err(AwsError {
                operation: "SendMessageBatch",
                kind: AwsErrorKind::Service(code),
                message: "told to fail".into(),
            });
        }
        let mut sent = self.sent.lock().unwrap();
        for m in messages {
            sent.push((queue_url.to_owned(), m.clone()));
        }
        Ok(Vec::new())
    }

    async fn depth(&self, _queue_url: &str) -> Result<QueueDepth, AwsError> {
        Ok(*self.depth.lock().unwrap())
    }
}

/// An in-memory runs' store.
#[derive(Default)]
pub struct FakeRunStore {
    /// job → (run holding the lease, lease_until).
    pub leases: Mutex<BTreeMap<String, (RunId, i64)>>,
    /// (job, run) → record.
    pub runs: Mutex<BTreeMap<(String, RunId), RunRecord>>,
    /// (run, item key) → outcome.
    pub outcomes: Mutex<BTreeMap<(RunId, String), ItemOutcome>>,
    /// When set, `record_all` fails with this error code (nothing written).
    pub fail_records: Mutex<Option<String>>,
}

fn missing(run: &RunId) -> AwsError {
    AwsError {
        operation: "TransactWriteItems",
        kind: AwsErrorKind::NotFound("RunNotFound".into()),
        message: format!("run {run} has no record"),
    }
}

#[async_trait]
impl RunStore for FakeRunStore {
    async fn begin(&self, run: &RunRecord, lease_secs: i64, now: i64) -> Result<Begin, AwsError> {
        let mut leases = self.leases.lock().unwrap();
        let mut runs = self.runs.lock().unwrap();
        if runs.contains_key(&(run.job.clone(), run.run.clone())) {
            // The same run again (a retried write that had succeeded).
            return Ok(Begin::Started { replaced: None });
        }
        let mut replaced = None;
        if run.full {
            if let Some((holder, until)) = leases.get(&run.job).cloned() {
                let record = runs.get(&(run.job.clone(), holder.clone()));
                let unfinished = record.is_some_and(|r| r.finished_at.is_none());
                let active = record
                    .and_then(|r| r.updated_at.or(Some(r.started_at)))
                    .is_some_and(|at| at >= now - lease_secs);
                if unfinished && (until >= now || active) {
                    return Ok(Begin::InFlight(holder));
                }
                if unfinished {
                    replaced = Some(holder);
                }
            }
            leases.insert(run.job.clone(), (run.run.clone(), now + lease_secs));
        }
        let mut record = run.clone();
        record.queued = false;
        record.done = 0;
        record.counts.clear();
        runs.insert((run.job.clone(), run.run.clone()), record);
        Ok(Begin::Started { replaced })
    }

    async fn queued(&self, job: &str, run: &RunId, messages: u64) -> Result<(), AwsError> {
        let mut runs = self.runs.lock().unwrap();
        let record = runs
            .get_mut(&(job.to_owned(), run.clone()))
            .ok_or_else(|| missing(run))?;
        record.queued = true;
        record.messages = messages;
        Ok(())
    }

    async fn record_all(
        &self,
        job: &str,
        run: &RunId,
        outcomes: &[ItemOutcome],
        now: i64,
    ) -> Result<(usize, usize), AwsError> {
        if let Some(code) = self.fail_records.lock().unwrap().clone() {
            return Err(AwsError {
                operation: "TransactWriteItems",
                kind: AwsErrorKind::Service(code),
                message: "told to fail".into(),
            });
        }
        let mut runs = self.runs.lock().unwrap();
        let record = runs
            .get_mut(&(job.to_owned(), run.clone()))
            .ok_or_else(|| missing(run))?;
        let mut stored = self.outcomes.lock().unwrap();
        let (mut written, mut duplicates) = (0, 0);
        for outcome in outcomes {
            let key = (run.clone(), item_key(&outcome.item));
            if stored.contains_key(&key) {
                duplicates += 1;
                continue;
            }
            stored.insert(key, outcome.clone());
            record.done += 1;
            record.updated_at = Some(now);
            *record
                .counts
                .entry((outcome.group.clone(), outcome.outcome.clone()))
                .or_default() += 1;
            written += 1;
        }
        Ok((written, duplicates))
    }

    async fn run(&self, job: &str, run: &RunId) -> Result<Option<RunRecord>, AwsError> {
        Ok(self
            .runs
            .lock()
            .unwrap()
            .get(&(job.to_owned(), run.clone()))
            .cloned())
    }

    async fn runs(&self, job: &str, limit: usize) -> Result<Vec<RunRecord>, AwsError> {
        Ok(self
            .runs
            .lock()
            .unwrap()
            .values()
            .rev()
            .filter(|r| r.job == job)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn outcomes(&self, run: &RunId, limit: usize) -> Result<Vec<ItemOutcome>, AwsError> {
        Ok(self
            .outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|((r, _), _)| r == run)
            .take(limit)
            .map(|(_, o)| o.clone())
            .collect())
    }

    async fn finish(
        &self,
        job: &str,
        run: &RunId,
        now: i64,
        abandoned: bool,
    ) -> Result<bool, AwsError> {
        let mut runs = self.runs.lock().unwrap();
        let Some(record) = runs.get_mut(&(job.to_owned(), run.clone())) else {
            return Ok(false);
        };
        if record.finished_at.is_some() {
            return Ok(false);
        }
        record.finished_at = Some(now);
        record.abandoned = abandoned;
        let mut leases = self.leases.lock().unwrap();
        if leases.get(job).is_some_and(|(holder, _)| holder == run) {
            leases.remove(job);
        }
        Ok(true)
    }
}
