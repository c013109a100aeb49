//! The work queue: a run's work as SQS messages, and the runs' outcomes in a small store.
//!
//! A job that outgrows one Lambda invocation is split in two (issue 19): a **planner** (the
//! schedule, `ptc prewarm --enqueue`) reads the whole list, starts a [`RunRecord`] and sends
//! the list as [`WorkMessage`]s, a few items of one group (an upstream) each; **workers** (the
//! same function, through an SQS event source mapping with `ReportBatchItemFailures` and a
//! `MaximumConcurrency`) do the items and record each one's terminal outcome once
//! ([`RunStore::record`]). The worker that records a run's last outcome finishes the run and
//! publishes its totals ([`RunStore::finish`]).
//!
//! What comes back, and how (AWS's engines only, no scheduler of ours):
//! - an item deferred for a rate limit is sent again with `DelaySeconds` = the wait the upstream
//!   asked for, at most [`MAX_DELAY_SECS`] (SQS's limit); a longer wait is carried in
//!   [`WorkMessage::not_before`], and a worker that receives the message early sends it on
//!   again with the wait left ([`Redelivery::hop`]): one message per 15 minutes of wait;
//! - an item not started before the invocation's deadline is sent again at once (not left
//!   unacknowledged: that would count towards the queue's `maxReceiveCount` and could send a
//!   healthy item to the dead-letter queue);
//! - a failed item is tried again [`RETRY_ATTEMPTS`] times with backoff, then recorded as
//!   failed and sent to the dead-letter queue with its reason ([`DeadLetter`]);
//! - a worker that dies mid-batch leaves its messages unacknowledged: SQS delivers them again
//!   after the visibility timeout, and after `maxReceiveCount` receives moves them to the
//!   dead-letter queue (a poison message: it crashes or times out every worker).
//!
//! Idempotence: SQS delivers at least once, and a message may be done twice; an item's outcome
//! is written with a condition (the first write wins), so each item of a run has exactly one
//! terminal outcome whatever the deliveries. A second planner while a run holds the job's lease
//! enqueues nothing ([`Begin::InFlight`]).
//!
//! Limits (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html>):
//! `DelaySeconds` 0-900; a message at most 256 KiB here (SQS now takes 1 MiB; a body of
//! [`MAX_ITEMS_PER_MESSAGE`] references is far below either); 10 messages per
//! `SendMessageBatch`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::AwsError;

/// The body format's version; a body of another version is refused (dead-lettered).
pub const MESSAGE_VERSION: u32 = 1;
/// SQS's longest `DelaySeconds`, 15 minutes
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>).
pub const MAX_DELAY_SECS: u32 = 900;
/// The largest body read or written, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The most items one message carries.
pub const MAX_ITEMS_PER_MESSAGE: usize = 50;
/// The longest item (a reference), in bytes.
pub const MAX_ITEM_BYTES: usize = 1024;
/// How many times an item that failed is tried in all before it is recorded as failed and
/// dead-lettered.
pub const RETRY_ATTEMPTS: u32 = 3;
/// The longest wait a message may ask for (`not_before`), 24 hours: a longer `Retry-After` is
/// clamped to it.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// A run's identifier: `<job>-<UTC yyyymmddThhmmssZ>-<8 hex>`, e.g.
/// `prewarm-20261130T052500Z-3fa2c1d0`: sorts by start time, ASCII letters, digits and `-`,
/// at most 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

impl RunId {
    /// A new id for `job` started at `now` (Unix seconds), with 32 random bits.
    pub fn new(job: &str, now: time::OffsetDateTime) -> Self {
        use std::hash::{BuildHasher, RandomState};
        let random = RandomState::new().hash_one(now.unix_timestamp_nanos()) as u32;
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        Self(format!("{job}-{stamp}-{random:08x}"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RunId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if value.is_empty()
            || value.len() > 64
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!(
                "run id {:?} is not 1-64 ASCII letters, digits and '-'",
                value.chars().take(80).collect::<String>()
            ));
        }
        Ok(Self(value))
    }
}

impl From<RunId> for String {
    fn from(id: RunId) -> String {
        id.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One item of work: for prewarm, a watch-list entry as written and which source listed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    /// The entry, e.g. `quay.io/prometheus/prometheus:v2.53.0`; 1-[`MAX_ITEM_BYTES`] bytes.
    pub reference: String,
    /// The job's word for where it came from (prewarm: `payload`, `settings`, `source`,
    /// `discovery`).
    pub origin: String,
}

/// An SQS message body: some items of one run and one group (JSON, [`MESSAGE_VERSION`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkMessage {
    /// [`MESSAGE_VERSION`].
    pub v: u32,
    /// The job that does the items, e.g. `prewarm`.
    pub job: String,
    /// The run the items belong to.
    pub run: RunId,
    /// The group: the upstream host the items are pulled from (`-` for entries that route
    /// nowhere), so that one message spends one upstream's budget.
    pub group: String,
    /// 1-[`MAX_ITEMS_PER_MESSAGE`] items.
    pub items: Vec<WorkItem>,
    /// The attempt these items are at, from 1: a failed item goes back with the next one,
    /// until [`RETRY_ATTEMPTS`].
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// Not to be done before this instant (Unix seconds): a wait longer than SQS's 15-minute
    /// delay, carried across hops ([`Redelivery::hop`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<i64>,
}

fn first_attempt() -> u32 {
    1
}

impl WorkMessage {
    /// Read and check a body: at most [`MAX_BODY_BYTES`], JSON of this shape, version
    /// [`MESSAGE_VERSION`], a job name of lowercase letters and `-`, 1-[`MAX_ITEMS_PER_MESSAGE`]
    /// items of 1-[`MAX_ITEM_BYTES`] bytes without control characters, an attempt of 1-100.
    /// The error names what is wrong (the body is untrusted: anyone who may send to the queue
    /// wrote it).
    pub fn parse(body: &str) -> Result<Self, String> {
        if body.len() > MAX_BODY_BYTES {
            return Err(format!(
                "the message body is {} bytes, over {MAX_BODY_BYTES}",
                body.len()
            ));
        }
        let message: WorkMessage = serde_json::from_str(body)
            .map_err(|e| format!("the message body is not a work message: {e}"))?;
        message.check()?;
        Ok(message)
    }

    fn check(&self) -> Result<(), String> {
        if self.v != MESSAGE_VERSION {
            return Err(format!(
                "message version {} is not {MESSAGE_VERSION}",
                self.v
            ));
        }
        if self.job.is_empty()
            || self.job.len() > 32
            || !self
                .job
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-')
        {
            return Err(format!("job {:?} is not a job name", self.job));
        }
        if self.items.is_empty() || self.items.len() > MAX_ITEMS_PER_MESSAGE {
            return Err(format!(
                "the message has {} items, not 1-{MAX_ITEMS_PER_MESSAGE}",
                self.items.len()
            ));
        }
        if self.group.len() > 255 {
            return Err("the message's group is over 255 bytes".into());
        }
        for item in &self.items {
            check_item(item)?;
        }
        if !(1..=100).contains(&self.attempt) {
            return Err(format!("attempt {} is not 1-100", self.attempt));
        }
        Ok(())
    }

    /// The body as JSON.
    pub fn body(&self) -> String {
        serde_json::to_string(self).expect("a work message serialises")
    }

    /// The same run and group with other items, attempt and wait.
    pub fn with(&self, items: Vec<WorkItem>, attempt: u32, not_before: Option<i64>) -> Self {
        Self {
            v: MESSAGE_VERSION,
            job: self.job.clone(),
            run: self.run.clone(),
            group: self.group.clone(),
            items,
            attempt,
            not_before,
        }
    }
}

/// Whether an item may travel in a message: a reference of 1-[`MAX_ITEM_BYTES`] bytes without
/// control characters, an origin of at most 32 bytes. The planner gives an item that fails
/// this its outcome instead of sending it; a worker dead-letters a message that holds one.
pub fn check_item(item: &WorkItem) -> Result<(), String> {
    // SQS takes only #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD and #x10000-#x10FFFF in a body
    // (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>);
    // controls are refused here too.
    let sqs_char = |c: char| !c.is_control() && !matches!(c, '\u{FFFE}' | '\u{FFFF}');
    if item.reference.is_empty()
        || item.reference.len() > MAX_ITEM_BYTES
        || !item.reference.chars().all(sqs_char)
        || !item.origin.chars().all(sqs_char)
        || item.origin.len() > 32
    {
        return Err(format!(
            "item {:?} is empty, over {MAX_ITEM_BYTES} bytes, or has control characters",
            item.reference.chars().take(80).collect::<String>()
        ));
    }
    Ok(())
}

/// The messages of a run: items grouped by their group (first-seen order kept), each group cut
/// into messages of at most `per_message` items (clamped to 1-[`MAX_ITEMS_PER_MESSAGE`]).
pub fn plan_messages(
    job: &str,
    run: &RunId,
    items: impl IntoIterator<Item = (String, WorkItem)>,
    per_message: usize,
) -> Vec<WorkMessage> {
    let per_message = per_message.clamp(1, MAX_ITEMS_PER_MESSAGE);
    let mut groups: Vec<(String, Vec<WorkItem>)> = Vec::new();
    for (group, item) in items {
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, list)) => list.push(item),
            None => groups.push((group, vec![item])),
        }
    }
    groups
        .into_iter()
        .flat_map(|(group, list)| {
            list.chunks(per_message)
                .map(|chunk| WorkMessage {
                    v: MESSAGE_VERSION,
                    job: job.to_owned(),
                    run: run.clone(),
                    group: group.clone(),
                    items: chunk.to_vec(),
                    attempt: 1,
                    not_before: None,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A message to send again, and its `DelaySeconds`.
#[derive(Debug, Clone, PartialEq)]
pub struct Redelivery {
    /// The body to send.
    pub message: WorkMessage,
    /// 0-[`MAX_DELAY_SECS`].
    pub delay_secs: u32,
}

impl Redelivery {
    /// Send `message` again after `wait` from `now` (Unix seconds): the delay is the wait up to
    /// [`MAX_DELAY_SECS`]; a longer wait (up to [`MAX_WAIT`]) is also written as `not_before`,
    /// which the receiving worker honours by sending the message on ([`Redelivery::hop`]).
    pub fn after(message: WorkMessage, wait: Duration, now: i64) -> Self {
        let wait = wait.min(MAX_WAIT).as_secs();
        let delay_secs = wait.min(u64::from(MAX_DELAY_SECS)) as u32;
        let not_before = (wait > u64::from(MAX_DELAY_SECS)).then_some(now + wait as i64);
        let attempt = message.attempt;
        let items = message.items.clone();
        Self {
            message: message.with(items, attempt, not_before),
            delay_secs,
        }
    }

    /// A message received before its `not_before`: send it on with the wait left (at most
    /// [`MAX_DELAY_SECS`]); `None` when it is due (no `not_before`, or past it), or when the
    /// wait left is longer than [`MAX_WAIT`] (no message this product writes asks for that: a
    /// hostile body or a clock gone wrong, done now rather than sent on forever).
    pub fn hop(message: &WorkMessage, now: i64) -> Option<Self> {
        let not_before = message.not_before?;
        let left = not_before
            .checked_sub(now)
            .filter(|left| *left > 0 && *left <= MAX_WAIT.as_secs() as i64)?;
        Some(Self {
            message: message.clone(),
            delay_secs: left.min(i64::from(MAX_DELAY_SECS)) as u32,
        })
    }

    /// A failed item's next attempt, after `backoff` times 3^(attempt-1) (the default 5 minutes:
    /// attempt 2 after 5 minutes, attempt 3 after 15 more, so that an upstream's short outage
    /// does not dead-letter its images); a wait past [`MAX_DELAY_SECS`] hops as
    /// [`Redelivery::after`]'s. `None` once `attempt` is [`RETRY_ATTEMPTS`] (it is then recorded
    /// as failed and dead-lettered).
    pub fn retry(
        message: &WorkMessage,
        items: Vec<WorkItem>,
        backoff: Duration,
        now: i64,
    ) -> Option<Self> {
        if message.attempt >= RETRY_ATTEMPTS {
            return None;
        }
        let wait = backoff.saturating_mul(3u32.saturating_pow(message.attempt - 1));
        Some(Self::after(
            message.with(items, message.attempt + 1, None),
            wait,
            now,
        ))
    }
}

/// What the dead-letter queue receives from a worker: the message (or the body that could not
/// be read) and why it was given up (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Why: the items' last failure, or what is wrong with the body.
    pub reason: String,
    /// The message, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<WorkMessage>,
    /// The first 4 KiB of a body that could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl DeadLetter {
    /// The dead letter as a JSON body, at most [`MAX_BODY_BYTES`]: a reason longer than 16 KiB
    /// (50 items' failures) is cut.
    pub fn body(&self) -> String {
        let mut letter = self.clone();
        if letter.reason.len() > 16 * 1024 {
            let mut end = 16 * 1024;
            while !letter.reason.is_char_boundary(end) {
                end -= 1;
            }
            letter.reason.truncate(end);
            letter.reason.push_str(" (cut)");
        }
        serde_json::to_string(&letter).expect("a dead letter serialises")
    }

    /// The dead letter of a body that could not be read: its first 4 KiB (at a character
    /// boundary) and the reason.
    pub fn unreadable(body: &str, reason: String) -> Self {
        let mut end = body.len().min(4096);
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            reason,
            message: None,
            body: Some(body[..end].to_owned()),
        }
    }
}

/// One message to send: its body and `DelaySeconds`.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The body (at most [`MAX_BODY_BYTES`]).
    pub body: String,
    /// 0-[`MAX_DELAY_SECS`].
    pub delay_secs: u32,
}

impl From<Redelivery> for Outgoing {
    fn from(r: Redelivery) -> Self {
        Self {
            body: r.message.body(),
            delay_secs: r.delay_secs,
        }
    }
}

/// How many messages a queue holds (`GetQueueAttributes`, approximate as SQS says).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// `ApproximateNumberOfMessages`: ready to be received.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible`: received, not yet deleted.
    pub in_flight: u64,
    /// `ApproximateNumberOfMessagesDelayed`: waiting for their delay.
    pub delayed: u64,
}

/// Sending to SQS. Adapter: [`crate::aws::SdkQueue`]; fake: `crate::fakes::FakeQueue`.
#[async_trait]
pub trait QueueApi: Send + Sync {
    /// Send the messages to `queue_url` (`SendMessageBatch`, 10 a call,
    /// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html>).
    /// Returns the indexes (into `messages`) of those not taken, with the reason: refused by
    /// SQS, or in a call that failed as a whole (those may or may not be in the queue: the
    /// caller sends them again, and the conditional outcomes make a second copy harmless).
    /// Every call is made whatever the earlier ones did. Calls hold at most 10 messages and
    /// [`MAX_BODY_BYTES`] in all.
    async fn send(
        &self,
        queue_url: &str,
        messages: &[Outgoing],
    ) -> Result<Vec<(usize, String)>, AwsError>;

    /// The queue's depth (`GetQueueAttributes`).
    async fn depth(&self, queue_url: &str) -> Result<QueueDepth, AwsError>;
}

/// A run as the store holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// The job, e.g. `prewarm`.
    pub job: String,
    /// The run.
    pub run: RunId,
    /// What started it: `schedule`, `ptc prewarm --enqueue`, ...
    pub trigger: String,
    /// A run over the job's whole list (a schedule's, not an operator's or on-demand list): it
    /// holds the job's lease, and its end is the job's heartbeat (`FullRuns`).
    pub full: bool,
    /// Every source of the list could be read: the run's undimensioned totals (what the
    /// alarms watch) are published only then.
    pub complete: bool,
    /// When the planner started it (Unix seconds).
    pub started_at: i64,
    /// Items planned (every one gets one terminal outcome).
    pub planned: u64,
    /// Messages the planner sent.
    pub messages: u64,
    /// Whether the planner has sent every message: the run cannot finish before.
    pub queued: bool,
    /// Items with their terminal outcome.
    pub done: u64,
    /// Terminal outcomes by (group, outcome), e.g. (`docker-hub`, `warmed`) → 12; prewarm's
    /// groups here are rule prefixes, `-` for entries without one.
    pub counts: BTreeMap<(String, String), u64>,
    /// When it finished (Unix seconds): every item done, or given up ([`RunRecord::abandoned`]).
    pub finished_at: Option<i64>,
    /// Given up: the lease ran out before every item was done (the rest count as deferred).
    pub abandoned: bool,
    /// When an outcome was last recorded (Unix seconds): a run whose lease ran out but that
    /// recorded an outcome within the last lease period is still in flight (a paced run).
    pub updated_at: Option<i64>,
}

impl RunRecord {
    /// Every planned item has its outcome (and the planner is done sending).
    pub fn complete(&self) -> bool {
        self.queued && self.done >= self.planned
    }
}

/// One item's terminal outcome in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemOutcome {
    /// The item (the reference as written).
    pub item: String,
    /// The group counted in (prewarm: the rule prefix, `-` for none).
    pub group: String,
    /// The outcome in the job's words, e.g. `warmed`, `failed`.
    pub outcome: String,
    /// Why, for a failure or a note; at most 1 KiB is kept.
    pub reason: Option<String>,
}

/// How [`RunStore::begin`] went.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// The run holds the job's lease; `replaced` is an earlier run whose lease had run out
    /// before it finished (to be finished as abandoned).
    Started {
        /// The run whose lease expired unfinished, if any.
        replaced: Option<RunId>,
    },
    /// Another run holds the lease: nothing is to be enqueued.
    InFlight(RunId),
}

/// The runs' store (a DynamoDB table). Adapter: [`crate::aws::SdkRunStore`]; fake:
/// `crate::fakes::FakeRunStore`.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Start `run`: write its record with `planned` items, not yet queued. A full run
    /// ([`RunRecord::full`]) also takes the job's lease for `lease_secs` from `now`, unless
    /// another run holds it: one whose lease has not run out, or one not finished that recorded
    /// an outcome (or started) within the last `lease_secs` (a paced run making progress) —
    /// then nothing is written and the answer is [`Begin::InFlight`]. A run that is not full (an
    /// operator's or an on-demand list) takes no lease: it runs beside a full one. Idempotent
    /// for the same `run` (an SDK retry of a write that succeeded answers `Started`).
    async fn begin(&self, run: &RunRecord, lease_secs: i64, now: i64) -> Result<Begin, AwsError>;

    /// The planner has sent `messages` messages: the run may finish.
    async fn queued(&self, job: &str, run: &RunId, messages: u64) -> Result<(), AwsError>;

    /// Record items' terminal outcomes, each once: (written by this call, already there: a
    /// message delivered twice). The outcomes and the run's counters are written together
    /// (all or nothing), so the counters always match the outcomes; a write that conflicts
    /// with another worker's is tried again.
    async fn record_all(
        &self,
        job: &str,
        run: &RunId,
        outcomes: &[ItemOutcome],
        now: i64,
    ) -> Result<(usize, usize), AwsError>;

    /// [`RunStore::record_all`] of one outcome: `Ok(true)` when this call wrote it.
    async fn record(
        &self,
        job: &str,
        run: &RunId,
        outcome: &ItemOutcome,
        now: i64,
    ) -> Result<bool, AwsError> {
        self.record_all(job, run, std::slice::from_ref(outcome), now)
            .await
            .map(|(written, _)| written == 1)
    }

    /// The run's record (a consistent read); `None` when there is none.
    async fn run(&self, job: &str, run: &RunId) -> Result<Option<RunRecord>, AwsError>;

    /// The job's latest runs, newest first, at most `limit`.
    async fn runs(&self, job: &str, limit: usize) -> Result<Vec<RunRecord>, AwsError>;

    /// The run's recorded outcomes, at most `limit`, in the store's order (by item).
    async fn outcomes(&self, run: &RunId, limit: usize) -> Result<Vec<ItemOutcome>, AwsError>;

    /// Mark the run finished at `now` (abandoned or not) and release the job's lease if this
    /// run holds it: `Ok(true)` for the one call that finished it (it publishes the totals).
    async fn finish(
        &self,
        job: &str,
        run: &RunId,
        now: i64,
        abandoned: bool,
    ) -> Result<bool, AwsError>;
}

/// The store's key of an item: the text itself, or `sha256:<hex>` of a text over 512 bytes
/// (a DynamoDB sort key holds at most 1,024 bytes:
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html>).
pub fn item_key(item: &str) -> String {
    if item.len() <= 512 {
        item.to_owned()
    } else {
        use sha2::Digest as _;
        let hash = sha2::Sha256::digest(item.as_bytes());
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(r: &str) -> WorkItem {
        WorkItem {
            reference: r.into(),
            origin: "settings".into(),
        }
    }

    fn run() -> RunId {
        RunId::try_from("prewarm-20261130T052500Z-3fa2c1d0".to_owned()).unwrap()
    }

    #[test]
    fn a_run_id_sorts_by_time_and_refuses_anything_else() {
        let at = time::OffsetDateTime::from_unix_timestamp(1_796_016_300).unwrap();
        let id = RunId::new("prewarm", at);
        assert!(id.as_str().starts_with("prewarm-20261130T052500Z-"), "{id}");
        assert_eq!(id.as_str().len(), "prewarm-20261130T052500Z-".len() + 8);
        assert!(RunId::try_from(id.to_string()).is_ok());
        for bad in ["", "a b", "x/../y", &"a".repeat(65), "run\n"] {
            assert!(RunId::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn items_are_grouped_then_cut_and_a_body_round_trips() {
        let items = [
            ("quay.io", "quay.io/a:1"),
            ("docker.io", "nginx:1"),
            ("quay.io", "quay.io/b:1"),
            ("quay.io", "quay.io/c:1"),
        ]
        .map(|(g, r)| (g.to_owned(), item(r)));
        let messages = plan_messages("prewarm", &run(), items, 2);
        let shape: Vec<(String, Vec<String>)> = messages
            .iter()
            .map(|m| {
                (
                    m.group.clone(),
                    m.items.iter().map(|i| i.reference.clone()).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (
                    "quay.io".into(),
                    vec!["quay.io/a:1".into(), "quay.io/b:1".into()]
                ),
                ("quay.io".into(), vec!["quay.io/c:1".into()]),
                ("docker.io".into(), vec!["nginx:1".into()]),
            ]
        );
        let body = messages[0].body();
        assert_eq!(WorkMessage::parse(&body).unwrap(), messages[0]);
        // 0 per message is taken as 1; over the cap, the cap.
        assert_eq!(
            plan_messages("prewarm", &run(), [("g".into(), item("a"))], 0).len(),
            1
        );
    }

    #[test]
    fn hostile_bodies_are_refused_with_the_reason() {
        let good = plan_messages("prewarm", &run(), [("g".into(), item("nginx:1"))], 10)
            .remove(0)
            .body();
        assert!(WorkMessage::parse(&good).is_ok());
        let cases = [
            ("not json", "not a work message".to_owned()),
            (&good.replace("\"v\":1", "\"v\":2"), "version".into()),
            (&good.replace("\"prewarm\"", "\"Pre warm\""), "job".into()),
            (
                &good.replace("\"nginx:1\"", "\"\""),
                "empty, over 1024".into(),
            ),
            (
                &good.replace("\"nginx:1\"", "\"a\\u0000b\""),
                "control".into(),
            ),
            (
                &good.replace("\"prewarm-20261130T052500Z-3fa2c1d0\"", "\"../x\""),
                "run id".into(),
            ),
            (
                &good.replace("}]", "}],\"extra\":1"),
                "unknown field".into(),
            ),
            (&"x".repeat(MAX_BODY_BYTES + 1), "over".into()),
        ];
        for (body, want) in cases {
            let err = WorkMessage::parse(body).unwrap_err();
            assert!(err.contains(&want), "{err} does not say {want}");
        }
        let too_many = plan_messages(
            "prewarm",
            &run(),
            (0..51).map(|i| ("g".to_owned(), item(&format!("i{i}")))),
            50,
        );
        let mut big = too_many[0].clone();
        big.items.extend(too_many[1].items.clone());
        assert!(
            WorkMessage::parse(&big.body())
                .unwrap_err()
                .contains("51 items")
        );
    }

    /// SQS delays go to 15 minutes; a longer wait hops: each receipt before `not_before` sends
    /// the message on with the wait left, until it is due.
    #[test]
    fn a_long_wait_is_carried_by_hops_of_at_most_15_minutes() {
        let message =
            plan_messages("prewarm", &run(), [("g".into(), item("nginx:1"))], 10).remove(0);
        let short = Redelivery::after(message.clone(), Duration::from_secs(120), 1000);
        assert_eq!((short.delay_secs, short.message.not_before), (120, None));
        let long = Redelivery::after(message.clone(), Duration::from_secs(21_600), 1000);
        assert_eq!(long.delay_secs, 900);
        assert_eq!(long.message.not_before, Some(22_600));
        let mut now = 1000 + 900;
        let mut hops = 0;
        while let Some(hop) = Redelivery::hop(&long.message, now) {
            assert!(hop.delay_secs <= MAX_DELAY_SECS && hop.delay_secs > 0);
            now += i64::from(hop.delay_secs);
            hops += 1;
            assert!(hops < 100);
        }
        assert_eq!((now, hops), (22_600, 23));
        // A huge Retry-After is clamped to a day.
        let huge = Redelivery::after(message.clone(), Duration::from_secs(u64::MAX / 2), 0);
        assert_eq!(huge.message.not_before, Some(MAX_WAIT.as_secs() as i64));
        // A body asking for more than a day (hostile, or a clock gone wrong) is due now, not
        // sent on forever.
        let mut hostile = message;
        hostile.not_before = Some(i64::MAX);
        assert_eq!(Redelivery::hop(&hostile, 1000), None);
        hostile.not_before = Some(1000 + MAX_WAIT.as_secs() as i64 + 1);
        assert_eq!(Redelivery::hop(&hostile, 1000), None);
        hostile.not_before = Some(i64::MIN);
        assert_eq!(Redelivery::hop(&hostile, 1000), None);
    }

    #[test]
    fn a_failed_item_is_tried_three_times_with_backoff() {
        let first = plan_messages("prewarm", &run(), [("g".into(), item("nginx:1"))], 10).remove(0);
        let backoff = Duration::from_secs(300);
        let second = Redelivery::retry(&first, first.items.clone(), backoff, 0).unwrap();
        assert_eq!((second.message.attempt, second.delay_secs), (2, 300));
        let third = Redelivery::retry(&second.message, first.items.clone(), backoff, 0).unwrap();
        assert_eq!(
            (
                third.message.attempt,
                third.delay_secs,
                third.message.not_before
            ),
            (3, 900, None)
        );
        assert_eq!(
            Redelivery::retry(&third.message, first.items.clone(), backoff, 0),
            None
        );
        // A longer backoff hops past SQS's 15 minutes.
        let long = Redelivery::retry(&second.message, first.items.clone(), backoff * 2, 0).unwrap();
        assert_eq!(
            (long.delay_secs, long.message.not_before),
            (900, Some(1800))
        );
    }

    #[test]
    fn a_long_item_is_keyed_by_its_hash() {
        assert_eq!(item_key("nginx:1"), "nginx:1");
        let long = "a".repeat(600);
        assert!(item_key(&long).starts_with("sha256:"));
        assert_eq!(item_key(&long).len(), 7 + 64);
        let unreadable = DeadLetter::unreadable(&"é".repeat(3000), "bad".into());
        assert!(unreadable.body.as_ref().unwrap().len() <= 4096);
        let mut long = unreadable;
        long.reason = "x: corrupt manifest; ".repeat(20_000);
        assert!(long.body().len() < 24 * 1024, "a long reason is cut");
        assert!(long.body().contains("(cut)"));
        // Characters SQS refuses in a body never go into a message.
        for bad in ["quay.io/a:1\u{FFFE}", "quay.io/a:1\u{7}", "quay.io/a\t:1"] {
            let item = WorkItem {
                reference: bad.into(),
                origin: "settings".into(),
            };
            assert!(check_item(&item).is_err(), "{bad:?}");
        }
    }
}
