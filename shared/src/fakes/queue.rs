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
        if let Some(code) = self.fail.lock().unwrap().clone() {
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
    async fn begin(&self, run: &RunRecord, lease_until: i64, now: i64) -> Result<Begin, AwsError> {
        let mut leases = self.leases.lock().unwrap();
        let previous = leases.get(&run.job).cloned();
        if let Some((holder, until)) = &previous
            && *until >= now
        {
            return Ok(Begin::InFlight(holder.clone()));
        }
        leases.insert(run.job.clone(), (run.run.clone(), lease_until));
        let mut runs = self.runs.lock().unwrap();
        let mut record = run.clone();
        record.queued = false;
        record.done = 0;
        record.counts.clear();
        runs.insert((run.job.clone(), run.run.clone()), record);
        let replaced = previous
            .filter(|(old, _)| {
                runs.get(&(run.job.clone(), old.clone()))
                    .is_some_and(|r| r.finished_at.is_none())
            })
            .map(|(old, _)| old);
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

    async fn record(
        &self,
        job: &str,
        run: &RunId,
        outcome: &ItemOutcome,
        _now: i64,
    ) -> Result<bool, AwsError> {
        let mut runs = self.runs.lock().unwrap();
        let record = runs
            .get_mut(&(job.to_owned(), run.clone()))
            .ok_or_else(|| missing(run))?;
        let mut outcomes = self.outcomes.lock().unwrap();
        let key = (run.clone(), item_key(&outcome.item));
        if outcomes.contains_key(&key) {
            return Ok(false);
        }
        outcomes.insert(key, outcome.clone());
        record.done += 1;
        *record
            .counts
            .entry((outcome.group.clone(), outcome.outcome.clone()))
            .or_default() += 1;
        Ok(true)
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
