//! prewarm on the work queue (issue 19; the queue's rules are in [`ptc_core::queue`]).
//!
//! - [`plan`]: the scheduled run (or `ptc prewarm --enqueue`) reads the whole watch list, takes
//!   the job's lease, writes the run's record and sends the entries, grouped by upstream, a
//!   few per message. A second planner while a run is in flight enqueues nothing.
//! - [`work`]: one invocation of the queue's event source mapping: the batch's images are
//!   warmed together (one survey, one state), then each message is settled: terminal outcomes
//!   recorded once, what the upstream deferred sent again with its wait, what the deadline cut
//!   sent again at once, what failed tried again then dead-lettered; a message that could not
//!   be settled is a batch item failure (SQS delivers it again).
//! - [`finish_if_complete`]: the worker (or planner) that sees a run's last outcome finishes
//!   it and publishes the run's totals under the same metric names as a run in one process,
//!   so the alarms and the heartbeat keep working.
//!
//! Why the prewarm function itself is the worker (not a function of its own): the same code,
//! settings, IAM and registry token; the event source mapping's `MaximumConcurrency` bounds
//! the workers, and the schedule's planner invocation is one more. The cost: one timeout for
//! both roles (the planner only reads the list and sends messages: seconds).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::StreamExt as _;
use ptc_core::metrics::{MetricsApi, Run, publish_run};
use ptc_core::queue::{
    Begin, DeadLetter, ItemOutcome, Outgoing, QueueApi, Redelivery, RunId, RunRecord, RunStore,
    WorkItem, WorkMessage, plan_messages,
};
use ptc_core::watchlist::WatchEntry;
use serde::Serialize;
use time::OffsetDateTime;

use crate::job::{Deps, gather, warm_given};
use crate::options::Options;
use crate::report::{ImageResult, Outcome, Summary, Traffic, cost_data, outcome_data, summary_of};
use crate::sources::{Entry, Origin};

/// The job's name in the queue's messages and the store.
pub const JOB: &str = "prewarm";

/// The queue's ports and places.
pub struct QueueDeps<'a> {
    /// SQS (`SendMessageBatch`, `GetQueueAttributes`).
    pub queue: &'a dyn QueueApi,
    /// The runs' store (DynamoDB).
    pub store: &'a dyn RunStore,
    /// `PTC_WORK_QUEUE_URL`.
    pub queue_url: &'a str,
    /// `PTC_WORK_DLQ_URL`.
    pub dead_letter_url: &'a str,
    /// `PTC_QUEUE_IMAGES_PER_MESSAGE` (1-50).
    pub per_message: usize,
    /// `PTC_RUN_LEASE_HOURS`, as a duration.
    pub lease: Duration,
    /// `PTC_QUEUE_RETRY_SECS`: the wait before a failed item's second attempt (the third
    /// waits three times as long).
    pub retry_backoff: Duration,
}

/// What a planner did.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    /// Always `prewarm`.
    pub job: &'static str,
    /// What started it (`schedule`, `invocation {}`, `on-demand list`, `ptc prewarm --enqueue`).
    pub trigger: String,
    /// The run planned; absent when none was (another in flight, the rules unreadable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunId>,
    /// The run that holds the job's lease, when this planner enqueued nothing because of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<RunId>,
    /// An earlier run whose lease ran out unfinished, finished as abandoned by this planner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abandoned: Option<RunId>,
    /// Entries planned (each gets one terminal outcome).
    pub planned: usize,
    /// Messages sent.
    pub messages: usize,
    /// Entries SQS did not take (recorded as deferred, with the reason).
    pub not_queued: usize,
    /// Problems that did not stop the plan.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Run-level errors (a source unreadable, the store or the queue failing); they fail the
    /// invocation and count in `RunErrors`.
    pub errors: Vec<String>,
    /// CloudWatch values published.
    pub metrics_published: usize,
}

/// One SQS message as the event source mapping delivers it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `messageId`: what a batch item failure names.
    pub message_id: String,
    /// The body.
    pub body: String,
}

/// How one message was settled.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Settled {
    /// Terminal outcomes written by this invocation.
    pub recorded: usize,
    /// Terminal outcomes another delivery had already written (a message done twice).
    pub duplicates: usize,
    /// Items sent again after the wait their upstream asked for.
    pub rate_limited: usize,
    /// Items sent again because the deadline came first.
    pub deadline: usize,
    /// Failed items sent again for another attempt.
    pub retried: usize,
    /// Items given up, in the dead-letter queue.
    pub dead_lettered: usize,
    /// Messages received before their `not_before`, sent on.
    pub hops: usize,
    /// Messages of a run already finished (or abandoned), acknowledged without work.
    pub finished_runs: usize,
}

/// What a worker invocation did.
#[derive(Debug, Clone, Serialize)]
pub struct WorkReport {
    /// Always `prewarm`.
    pub job: &'static str,
    /// Messages in the batch.
    pub messages: usize,
    /// One result per distinct image warmed.
    pub images: Vec<ImageResult>,
    /// The batch's settlement, summed.
    pub settled: Settled,
    /// Runs this invocation finished (it published their totals).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub finished: Vec<RunId>,
    /// The `messageId`s to report as batch item failures.
    pub batch_item_failures: Vec<String>,
    /// Requests made for the images.
    pub traffic: Traffic,
    /// Problems that did not fail a message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Errors: a message that could not be settled, the rules unreadable, publishing.
    pub errors: Vec<String>,
    /// The invocation, in milliseconds.
    pub duration_ms: u64,
}

impl WorkReport {
    /// A batch that cannot be worked at all (the queue not configured, the registry endpoint
    /// unreachable, not an SQS event): every message fails (SQS delivers it again, and after
    /// `maxReceiveCount` receives moves it to the dead-letter queue), with the reason.
    pub fn refused(message_ids: Vec<String>, error: String) -> Self {
        tracing::error!(error = %error, "the batch cannot be worked");
        Self {
            job: JOB,
            messages: message_ids.len(),
            images: Vec::new(),
            settled: Settled::default(),
            finished: Vec::new(),
            batch_item_failures: message_ids,
            traffic: Traffic::default(),
            warnings: Vec::new(),
            errors: vec![error],
            duration_ms: 0,
        }
    }

    /// The answer to the event source mapping: `{"batchItemFailures": [{"itemIdentifier":
    /// "<messageId>"}, ...]}`
    /// (<https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>).
    pub fn batch_response(&self) -> serde_json::Value {
        serde_json::json!({
            "batchItemFailures": self
                .batch_item_failures
                .iter()
                .map(|id| serde_json::json!({"itemIdentifier": id}))
                .collect::<Vec<_>>()
        })
    }
}

fn unix(now: OffsetDateTime) -> i64 {
    now.unix_timestamp()
}

/// How many times the planner sends a message SQS did not take before it records the message's
/// entries as deferred.
const SEND_ATTEMPTS: usize = 3;

/// Plan a run of the whole list (the payload's images, the settings', the long list, discovery)
/// into the queue. Nothing is warmed here.
///
/// A full run (no payload) takes the job's lease: a second planner while it is in flight (its
/// lease not run out, or still recording outcomes) enqueues nothing and, the run making
/// progress, publishes the heartbeat for it (a paced run may last longer than the heartbeat's
/// window). A payload's run takes no lease and runs beside a full one. Entries the worker would
/// refuse (over 1,024 bytes, control characters) get their outcome here, `failed`.
pub async fn plan(
    deps: &Deps<'_>,
    q: &QueueDeps<'_>,
    options: &Options,
    trigger: &str,
    payload_images: Vec<String>,
    now: OffsetDateTime,
) -> PlanReport {
    let mut report = PlanReport {
        job: JOB,
        trigger: trigger.to_owned(),
        run: None,
        in_flight: None,
        abandoned: None,
        planned: 0,
        messages: 0,
        not_queued: 0,
        warnings: Vec::new(),
        errors: Vec::new(),
        metrics_published: 0,
    };
    // A payload's run (`{"images": [...]}`, `ptc prewarm --enqueue --image`) plans those images
    // alone: they are wanted now, beside the run of the whole list that may be in flight.
    let full = payload_images.is_empty();
    let gathered = if full {
        gather(deps, options, payload_images, now).await
    } else {
        crate::job::gather_payload(deps, payload_images).await
    };
    let gathered = match gathered {
        Ok(g) => g,
        Err(err) => {
            report.errors.push(err);
            return ended(deps.metrics, options, report).await;
        }
    };
    report.errors.extend(gathered.errors.iter().cloned());
    let run = RunId::new(JOB, now);
    let record = RunRecord {
        job: JOB.to_owned(),
        run: run.clone(),
        trigger: trigger.to_owned(),
        full,
        complete: gathered.errors.is_empty(),
        started_at: unix(now),
        planned: gathered.entries.len() as u64,
        messages: 0,
        queued: false,
        done: 0,
        counts: BTreeMap::new(),
        finished_at: None,
        abandoned: false,
        updated_at: None,
    };
    let lease_secs = q.lease.as_secs() as i64;
    match q.store.begin(&record, lease_secs, unix(now)).await {
        Ok(Begin::InFlight(other)) => {
            report.warnings.push(format!(
                "run {other} is in flight: nothing enqueued (it holds the job's lease until it finishes, or until it records no outcome for {} h)",
                q.lease.as_secs() / 3600
            ));
            let heartbeat = match q.store.run(JOB, &other).await {
                Ok(Some(r)) => {
                    r.full && r.updated_at.unwrap_or(r.started_at) >= unix(now) - lease_secs
                }
                _ => false,
            };
            report.in_flight = Some(other);
            if options.publish_metrics && !options.dry_run {
                report.metrics_published += publish_run(
                    deps.metrics,
                    &options.namespace,
                    Run::new(JOB).full(heartbeat),
                    Vec::new(),
                    &mut report.errors,
                )
                .await;
            }
            return report;
        }
        Ok(Begin::Started { replaced }) => {
            if let Some(old) = replaced {
                match abandon(deps.metrics, q.store, options, &old, now).await {
                    Ok(()) => report.abandoned = Some(old),
                    Err(err) => report.errors.push(err),
                }
            }
        }
        Err(err) => {
            report
                .errors
                .push(format!("cannot start a run in the runs' table: {err}"));
            return ended(deps.metrics, options, report).await;
        }
    }
    report.run = Some(run.clone());
    report.planned = gathered.entries.len();
    // Group by upstream: one message spends one upstream's budget. An entry the worker would
    // refuse gets its outcome now.
    let mut refused_items: Vec<ItemOutcome> = Vec::new();
    let mut routed: Vec<(String, String, WorkItem)> = Vec::new();
    for entry in &gathered.entries {
        let (upstream, prefix) = route_of(&gathered.rules, entry);
        let item = WorkItem {
            reference: entry.input.clone(),
            origin: entry.origin.as_str().to_owned(),
        };
        match ptc_core::queue::check_item(&item) {
            Ok(()) => routed.push((upstream, prefix, item)),
            Err(why) => refused_items.push(ItemOutcome {
                item: entry.input.clone(),
                group: prefix,
                outcome: Outcome::Failed.as_str().to_owned(),
                reason: Some(format!("the entry cannot be queued: {why}")),
            }),
        }
    }
    let prefix_of: HashMap<String, String> = routed
        .iter()
        .map(|(_, prefix, item)| (item.reference.clone(), prefix.clone()))
        .collect();
    let messages = plan_messages(
        JOB,
        &run,
        routed
            .into_iter()
            .map(|(upstream, _, item)| (upstream, item)),
        q.per_message,
    );
    let outgoing: Vec<Outgoing> = messages
        .iter()
        .map(|m| Outgoing {
            body: m.body(),
            delay_secs: 0,
        })
        .collect();
    // Send, then send again what SQS did not take (a call that failed as a whole included:
    // its messages may or may not be in the queue; a second copy is harmless).
    let mut pending: Vec<usize> = (0..outgoing.len()).collect();
    let mut last_error = String::new();
    for _ in 0..SEND_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        let batch: Vec<Outgoing> = pending.iter().map(|i| outgoing[*i].clone()).collect();
        let refused: BTreeSet<usize> = match q.queue.send(q.queue_url, &batch).await {
            Ok(refused) => refused
                .into_iter()
                .filter_map(|(i, why)| {
                    last_error = why;
                    pending.get(i).copied()
                })
                .collect(),
            Err(err) => {
                last_error = err.to_string();
                pending.iter().copied().collect()
            }
        };
        pending.retain(|i| refused.contains(i));
    }
    report.messages = outgoing.len() - pending.len();
    // What SQS did not take still gets its outcome, so that the run can finish and the
    // totals show it.
    let mut not_queued: Vec<ItemOutcome> = Vec::new();
    for index in &pending {
        for item in &messages[*index].items {
            not_queued.push(ItemOutcome {
                item: item.reference.clone(),
                group: prefix_of
                    .get(&item.reference)
                    .cloned()
                    .unwrap_or_else(|| "-".into()),
                outcome: Outcome::Deferred.as_str().to_owned(),
                reason: Some(format!("could not be queued: {last_error}")),
            });
        }
    }
    report.not_queued = not_queued.len();
    if !pending.is_empty() {
        report.errors.push(format!(
            "{} of {} messages could not be queued after {SEND_ATTEMPTS} attempts ({} entries deferred): {last_error}",
            pending.len(),
            outgoing.len(),
            report.not_queued,
        ));
    }
    let settled: Vec<ItemOutcome> = refused_items.into_iter().chain(not_queued).collect();
    if !settled.is_empty()
        && let Err(err) = q.store.record_all(JOB, &run, &settled, unix(now)).await
    {
        report
            .errors
            .push(format!("cannot record {} outcomes: {err}", settled.len()));
    }
    if let Err(err) = q.store.queued(JOB, &run, report.messages as u64).await {
        report
            .errors
            .push(format!("cannot mark run {run} queued: {err}"));
    }
    // A run with nothing to queue (an empty list) finishes here.
    match finish_if_complete(deps.metrics, q.store, options, &run, now).await {
        Ok(_) => {}
        Err(err) => report.errors.push(err),
    }
    ended(deps.metrics, options, report).await
}

/// The upstream host (the message group) and the rule prefix (the counting group) of an
/// entry; `-` for an entry that does not parse or route.
fn route_of(rules: &ptc_core::RuleSet, entry: &Entry) -> (String, String) {
    let Ok(reference) = &entry.reference else {
        return ("-".into(), "-".into());
    };
    match rules.route(reference) {
        Ok(cached) => {
            let upstream = rules
                .get(cached.prefix.as_str())
                .map(|r| r.upstream_url.clone())
                .unwrap_or_else(|| "-".into());
            (upstream, cached.prefix.to_string())
        }
        Err(_) => ("-".into(), "-".into()),
    }
}

/// The end of a planner's invocation: its `RunErrors` published, the report returned.
async fn ended(metrics: &dyn MetricsApi, options: &Options, mut report: PlanReport) -> PlanReport {
    publish_errors(
        metrics,
        options,
        &mut report.errors,
        &mut report.metrics_published,
    )
    .await;
    report
}

/// `RunErrors` of a planner or worker invocation (not the run's totals: those are published
/// once, when the run finishes).
async fn publish_errors(
    metrics: &dyn MetricsApi,
    options: &Options,
    errors: &mut Vec<String>,
    published: &mut usize,
) {
    if options.publish_metrics && !options.dry_run {
        *published += publish_run(
            metrics,
            &options.namespace,
            Run::new(JOB),
            Vec::new(),
            errors,
        )
        .await;
    }
}

/// Finish `old` as abandoned (its lease ran out before every item had an outcome) and publish
/// its totals, the items without an outcome counted as deferred, with a run error.
async fn abandon(
    metrics: &dyn MetricsApi,
    store: &dyn RunStore,
    options: &Options,
    old: &RunId,
    now: OffsetDateTime,
) -> Result<(), String> {
    let record = store
        .run(JOB, old)
        .await
        .map_err(|e| format!("cannot read run {old}: {e}"))?;
    let Some(record) = record else {
        return Ok(());
    };
    // A run every item of which has its outcome was not abandoned: its last worker could not
    // finish it.
    let abandoned = !record.complete();
    if store
        .finish(JOB, old, unix(now), abandoned)
        .await
        .map_err(|e| format!("cannot finish run {old}: {e}"))?
    {
        publish_totals(metrics, options, &record, unix(now), abandoned).await;
    }
    Ok(())
}

/// Finish the run if every planned item has its outcome and it is not finished yet; the one
/// caller that finishes it publishes its totals. `Ok(true)` when this call finished it.
pub async fn finish_if_complete(
    metrics: &dyn MetricsApi,
    store: &dyn RunStore,
    options: &Options,
    run: &RunId,
    now: OffsetDateTime,
) -> Result<bool, String> {
    let record = store
        .run(JOB, run)
        .await
        .map_err(|e| format!("cannot read run {run}: {e}"))?;
    let Some(record) = record else {
        return Ok(false);
    };
    if !record.complete() || record.finished_at.is_some() {
        return Ok(false);
    }
    let won = store
        .finish(JOB, run, unix(now), false)
        .await
        .map_err(|e| format!("cannot finish run {run}: {e}"))?;
    if won {
        publish_totals(metrics, options, &record, unix(now), false).await;
    }
    Ok(won)
}

/// The per-prefix summaries, the unrouted count and the totals of a run's record; items
/// without an outcome (an abandoned run) count as deferred in the totals.
pub fn run_summaries(record: &RunRecord) -> (BTreeMap<String, Summary>, usize, Summary) {
    let mut by_group: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
    for ((group, outcome), n) in &record.counts {
        by_group.entry(group).or_default().push((outcome, *n));
    }
    let unrouted = by_group
        .get("-")
        .map_or(0, |list| list.iter().map(|(_, n)| *n as usize).sum());
    let by_prefix = by_group
        .iter()
        .filter(|(group, _)| **group != "-")
        .map(|(group, list)| ((*group).to_owned(), summary_of(list.iter().copied())))
        .collect();
    let missing = record.planned.saturating_sub(record.done);
    let totals = summary_of(
        record
            .counts
            .iter()
            .map(|((_, outcome), n)| (outcome.as_str(), *n))
            .chain(std::iter::once(("deferred", missing))),
    );
    (by_prefix, unrouted, totals)
}

/// Publish a finished run's totals: the outcome points of a run in one process (the alarms
/// watch the undimensioned totals of a full run), `PrewarmDuration` from the planner's start
/// to the last outcome, and the run's `RunErrors` and heartbeat (`FullRuns`, for a full run
/// that was not abandoned).
async fn publish_totals(
    metrics: &dyn MetricsApi,
    options: &Options,
    record: &RunRecord,
    now: i64,
    abandoned: bool,
) -> usize {
    if !options.publish_metrics || options.dry_run {
        return 0;
    }
    let (by_prefix, unrouted, totals) = run_summaries(record);
    let duration = (now - record.started_at).max(0) as f64;
    let data = outcome_data(
        &by_prefix,
        (record.full && record.complete).then_some(&totals),
        unrouted,
        duration,
    );
    let mut errors = Vec::new();
    if abandoned {
        errors.push(format!(
            "run {} abandoned: {} of {} entries had no outcome when its lease ran out",
            record.run,
            record.planned.saturating_sub(record.done),
            record.planned
        ));
        tracing::error!(run = %record.run, "run abandoned");
    }
    let full = record.full && !abandoned;
    let published = publish_run(
        metrics,
        &options.namespace,
        Run::new(JOB).full(full),
        data,
        &mut errors,
    )
    .await;
    tracing::info!(run = %record.run, planned = record.planned, done = record.done, coverage = ?totals.coverage_percent, "run finished");
    published
}

/// A message of the batch, read.
struct Due {
    delivery: usize,
    message: WorkMessage,
}

/// One worker invocation: the batch's messages settled (see the module's documentation).
pub async fn work(
    deps: &Deps<'_>,
    q: &QueueDeps<'_>,
    options: &Options,
    deliveries: &[Delivery],
    now: OffsetDateTime,
) -> WorkReport {
    let started = std::time::Instant::now();
    let mut report = WorkReport {
        job: JOB,
        messages: deliveries.len(),
        images: Vec::new(),
        settled: Settled::default(),
        finished: Vec::new(),
        batch_item_failures: Vec::new(),
        traffic: Traffic::default(),
        warnings: Vec::new(),
        errors: Vec::new(),
        duration_ms: 0,
    };
    let mut failed: BTreeSet<usize> = BTreeSet::new();
    let mut dead: Vec<(usize, DeadLetter)> = Vec::new();
    let mut again: Vec<(usize, Redelivery)> = Vec::new();
    let mut due: Vec<Due> = Vec::new();
    for (index, delivery) in deliveries.iter().enumerate() {
        match WorkMessage::parse(&delivery.body) {
            Err(why) => {
                tracing::error!(message_id = %delivery.message_id, reason = %why, "unreadable message dead-lettered");
                dead.push((index, DeadLetter::unreadable(&delivery.body, why)));
            }
            Ok(message) if message.job != JOB => {
                let why = format!("message for job {:?}, not {JOB}", message.job);
                dead.push((index, DeadLetter::unreadable(&delivery.body, why)));
            }
            Ok(message) => match Redelivery::hop(&message, unix(now)) {
                Some(hop) => {
                    report.settled.hops += 1;
                    again.push((index, hop));
                }
                None => due.push(Due {
                    delivery: index,
                    message,
                }),
            },
        }
    }
    // Each run's record, once: a message of a run that is finished (or abandoned) is
    // acknowledged without work (its outcomes can no longer count, and a later run covers
    // the list); one of a run the table does not know is dead-lettered.
    let mut records: BTreeMap<RunId, Option<RunRecord>> = BTreeMap::new();
    for d in &due {
        if records.contains_key(&d.message.run) {
            continue;
        }
        match q.store.run(JOB, &d.message.run).await {
            Ok(record) => {
                records.insert(d.message.run.clone(), record);
            }
            Err(err) => {
                report
                    .errors
                    .push(format!("cannot read run {}: {err}", d.message.run));
            }
        }
    }
    due.retain(|d| match records.get(&d.message.run) {
        None => {
            failed.insert(d.delivery);
            false
        }
        Some(None) => {
            dead.push((
                d.delivery,
                DeadLetter {
                    reason: format!("run {} has no record in the runs' table", d.message.run),
                    message: Some(d.message.clone()),
                    body: None,
                },
            ));
            false
        }
        Some(Some(record)) if record.finished_at.is_some() => {
            report.settled.finished_runs += 1;
            false
        }
        Some(Some(_)) => true,
    });
    // The batch's images, each distinct reference once.
    let mut entries: Vec<Entry> = Vec::new();
    let mut seen: HashMap<String, ()> = HashMap::new();
    for d in &due {
        for item in &d.message.items {
            let parsed = WatchEntry::parse(&item.reference);
            if seen.insert(key_of(&parsed), ()).is_none() {
                entries.push(Entry {
                    input: parsed.input,
                    reference: parsed.reference,
                    origin: Origin::from_name(&item.origin),
                });
            }
        }
    }
    let mut results: HashMap<String, ImageResult> = HashMap::new();
    let mut save = None;
    if !entries.is_empty() {
        let (warmed, pending) = warm_given(deps, options, "queue", entries, now).await;
        save = pending;
        if !warmed.errors.is_empty() {
            // Nothing could be done (the rules unreadable): every due message comes back.
            report.errors.extend(warmed.errors.clone());
            failed.extend(due.iter().map(|d| d.delivery));
            due.clear();
        }
        for image in &warmed.images {
            results.insert(key_of(&WatchEntry::parse(&image.reference)), image.clone());
        }
        report.traffic = warmed.traffic;
        report.warnings.extend(warmed.warnings.clone());
        report.images = warmed.images;
    }
    // Settle each due message: what is terminal, what goes back, what is given up.
    let mut terminal: Vec<(usize, RunId, ItemOutcome)> = Vec::new();
    let mut runs: BTreeSet<RunId> = BTreeSet::new();
    for d in &due {
        runs.insert(d.message.run.clone());
        let mut rate: Vec<WorkItem> = Vec::new();
        let mut wait = 0u64;
        let mut deadline: Vec<WorkItem> = Vec::new();
        let mut retry: Vec<WorkItem> = Vec::new();
        let mut given_up: Vec<(WorkItem, String)> = Vec::new();
        for item in &d.message.items {
            let result = results.get(&key_of(&WatchEntry::parse(&item.reference)));
            let group = result
                .and_then(|r| r.prefix.clone())
                .unwrap_or_else(|| "-".into());
            let done = |outcome: Outcome, reason: Option<String>| ItemOutcome {
                item: item.reference.clone(),
                group: group.clone(),
                outcome: outcome.as_str().to_owned(),
                reason,
            };
            match fate(result) {
                Fate::Done(outcome, reason) => {
                    terminal.push((d.delivery, d.message.run.clone(), done(outcome, reason)));
                }
                Fate::Attempt { reason, cut } => {
                    if d.message.attempt >= ptc_core::queue::RETRY_ATTEMPTS {
                        let reason = if cut {
                            format!(
                                "cut at the invocation's deadline {} times (raise the function's timeout): {reason}",
                                d.message.attempt
                            )
                        } else {
                            reason
                        };
                        terminal.push((
                            d.delivery,
                            d.message.run.clone(),
                            done(Outcome::Failed, Some(reason.clone())),
                        ));
                        given_up.push((item.clone(), reason));
                    } else {
                        retry.push(item.clone());
                    }
                }
                Fate::Wait(secs) => {
                    wait = wait.max(secs);
                    rate.push(item.clone());
                }
                Fate::Again => deadline.push(item.clone()),
            }
        }
        let m = &d.message;
        if !rate.is_empty() {
            report.settled.rate_limited += rate.len();
            again.push((
                d.delivery,
                Redelivery::after(
                    m.with(rate, m.attempt, None),
                    Duration::from_secs(wait),
                    unix(now),
                ),
            ));
        }
        if !deadline.is_empty() {
            report.settled.deadline += deadline.len();
            again.push((
                d.delivery,
                Redelivery {
                    message: m.with(deadline, m.attempt, None),
                    delay_secs: 0,
                },
            ));
        }
        if !retry.is_empty() {
            report.settled.retried += retry.len();
            if let Some(next) = Redelivery::retry(m, retry, q.retry_backoff, unix(now)) {
                again.push((d.delivery, next));
            }
        }
        if !given_up.is_empty() {
            report.settled.dead_lettered += given_up.len();
            let reason = given_up
                .iter()
                .map(|(item, why)| format!("{}: {why}", item.reference))
                .collect::<Vec<_>>()
                .join("; ");
            let items = given_up.into_iter().map(|(item, _)| item).collect();
            dead.push((
                d.delivery,
                DeadLetter {
                    reason: format!("failed {} times: {reason}", m.attempt),
                    message: Some(m.with(items, m.attempt, None)),
                    body: None,
                },
            ));
        }
    }
    // Send what goes back, then what is given up; a message whose sends failed comes back
    // whole (its outcomes are written once whatever happens).
    let outgoing: Vec<Outgoing> = again.iter().map(|(_, r)| r.clone().into()).collect();
    send_all(
        q.queue,
        q.queue_url,
        &outgoing,
        &again,
        &mut failed,
        &mut report.errors,
    )
    .await;
    let letters: Vec<Outgoing> = dead
        .iter()
        .map(|(_, d)| Outgoing {
            body: d.body(),
            delay_secs: 0,
        })
        .collect();
    send_all(
        q.queue,
        q.dead_letter_url,
        &letters,
        &dead,
        &mut failed,
        &mut report.errors,
    )
    .await;
    // Record the terminal outcomes: one write per message (the outcomes and the run's
    // counters together), two messages at a time.
    let mut by_message: BTreeMap<usize, (RunId, Vec<ItemOutcome>)> = BTreeMap::new();
    for (delivery, run, outcome) in terminal {
        by_message
            .entry(delivery)
            .or_insert_with(|| (run, Vec::new()))
            .1
            .push(outcome);
    }
    /// A delivery, and what writing its outcomes gave: (written, already there).
    type Recorded = (usize, Result<(usize, usize), String>);
    let recorded: Vec<Recorded> = futures::stream::iter(by_message)
        .map(|(delivery, (run, outcomes))| async move {
            let written = q
                .store
                .record_all(JOB, &run, &outcomes, unix(now))
                .await
                .map_err(|e| {
                    format!(
                        "cannot record {} outcomes of run {run}: {e}",
                        outcomes.len()
                    )
                });
            (delivery, written)
        })
        .buffer_unordered(2)
        .collect()
        .await;
    for (delivery, written) in recorded {
        match written {
            Ok((new, duplicates)) => {
                report.settled.recorded += new;
                report.settled.duplicates += duplicates;
            }
            Err(err) => {
                report.errors.push(err);
                failed.insert(delivery);
            }
        }
    }
    for run in runs {
        match finish_if_complete(deps.metrics, q.store, options, &run, now).await {
            Ok(true) => report.finished.push(run),
            Ok(false) => {}
            // Its messages come back, and the next delivery tries the finish again.
            Err(err) => {
                report.errors.push(err);
                failed.extend(
                    due.iter()
                        .filter(|d| d.message.run == run)
                        .map(|d| d.delivery),
                );
            }
        }
    }
    report.batch_item_failures = failed
        .iter()
        .map(|i| deliveries[*i].message_id.clone())
        .collect();
    // The invocation's cost and errors (the run's totals are published when it finishes).
    if options.publish_metrics {
        let mut errors = report.errors.clone();
        publish_run(
            deps.metrics,
            &options.namespace,
            Run::new(JOB),
            cost_data(&report.traffic, report.warnings.len()),
            &mut errors,
        )
        .await;
        report.errors = errors;
    }
    if let Some(save) = save {
        let mut side = crate::report::PrewarmReport::new("queue", options.mode);
        save.run(options, &mut side).await;
        report.warnings.extend(side.warnings);
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

/// What becomes of one item of a message once the batch is warmed.
enum Fate {
    /// Its terminal outcome now: cached and verified (warmed, already fresh, stale), or failed
    /// in a way that fails every time (the entry does not parse or has no rule: a watch-list
    /// error, not poison; no retry, no dead letter).
    Done(Outcome, Option<String>),
    /// Another attempt, until the last: a failure, or work cut at the deadline (an image no
    /// invocation can finish must end too).
    Attempt { reason: String, cut: bool },
    /// Back after the wait its upstream asked for, in seconds.
    Wait(u64),
    /// Back at once: not started before the deadline (or not warmed at all).
    Again,
}

fn fate(result: Option<&ImageResult>) -> Fate {
    let Some(result) = result else {
        return Fate::Again;
    };
    match result.outcome {
        Outcome::Warmed | Outcome::AlreadyFresh | Outcome::Stale => {
            Fate::Done(result.outcome, result.reason.clone())
        }
        Outcome::Failed if result.prefix.is_none() => {
            Fate::Done(Outcome::Failed, result.reason.clone())
        }
        Outcome::Failed => Fate::Attempt {
            reason: result.reason.clone().unwrap_or_else(|| "failed".into()),
            cut: false,
        },
        Outcome::Deferred if result.cut => Fate::Attempt {
            reason: result.reason.clone().unwrap_or_else(|| "cut".into()),
            cut: true,
        },
        Outcome::Deferred => result.retry_after_secs.map_or(Fate::Again, Fate::Wait),
        Outcome::Planned => Fate::Again,
    }
}

/// Send `messages` (each from the delivery `from[i].0`); a delivery one of whose messages
/// was not taken is marked failed.
async fn send_all<T>(
    queue: &dyn QueueApi,
    url: &str,
    messages: &[Outgoing],
    from: &[(usize, T)],
    failed: &mut BTreeSet<usize>,
    errors: &mut Vec<String>,
) {
    if messages.is_empty() {
        return;
    }
    match queue.send(url, messages).await {
        Ok(refused) => {
            for (index, why) in refused {
                if let Some((delivery, _)) = from.get(index) {
                    failed.insert(*delivery);
                    errors.push(format!("a message to {url} was refused: {why}"));
                }
            }
        }
        Err(err) => {
            failed.extend(from.iter().map(|(d, _)| *d));
            errors.push(format!("cannot send to {url}: {err}"));
        }
    }
}

/// The key an entry is matched on: its normalised reference, else its text.
fn key_of(entry: &WatchEntry) -> String {
    match &entry.reference {
        Ok(reference) => reference.to_string(),
        Err(_) => entry.input.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use ptc_core::fakes::{
        FakeEcr, FakeMetrics, FakeObjects, FakeQueue, FakeRunStore, FakeSecrets,
    };
    use ptc_core::oci::{Credentials, RegistryClient};
    use ptc_core::queue::{DeadLetter, MAX_DELAY_SECS};
    use ptc_core::{PtcRule, Settings};

    use super::*;

    struct World {
        ecr: FakeEcr,
        secrets: FakeSecrets,
        objects: FakeObjects,
        metrics: FakeMetrics,
        queue: FakeQueue,
        store: FakeRunStore,
        cache: RegistryClient,
        http: reqwest::Client,
        endpoints: BTreeMap<String, String>,
        options: Options,
    }

    impl World {
        fn new(watch_list: &[&str]) -> Self {
            let ecr = FakeEcr::default();
            ecr.state.lock().unwrap().rules = vec![
                PtcRule::new("quay", "quay.io").unwrap(),
                PtcRule::new("k8s", "registry.k8s.io").unwrap(),
            ];
            let http = reqwest::Client::new();
            let mut options = Options::from_settings(&Settings::from_sources(|_| None).unwrap());
            options.settings_watch_list = watch_list.iter().map(|s| (*s).to_owned()).collect();
            options.discovery_days = 0;
            Self {
                ecr,
                secrets: FakeSecrets::default(),
                objects: FakeObjects::default(),
                metrics: FakeMetrics::default(),
                queue: FakeQueue::default(),
                store: FakeRunStore::default(),
                cache: RegistryClient::new(
                    http.clone(),
                    "http://127.0.0.1:9",
                    Arc::new(Credentials::Anonymous),
                ),
                http,
                endpoints: BTreeMap::new(),
                options,
            }
        }

        fn deps(&self) -> Deps<'_> {
            Deps {
                ecr: &self.ecr,
                secrets: &self.secrets,
                objects: &self.objects,
                metrics: &self.metrics,
                cache: &self.cache,
                registry_host: "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                http: &self.http,
                upstream_endpoints: &self.endpoints,
            }
        }

        fn q(&self) -> QueueDeps<'_> {
            QueueDeps {
                queue: &self.queue,
                store: &self.store,
                queue_url: "https://sqs/work",
                dead_letter_url: "https://sqs/dead",
                per_message: 2,
                lease: Duration::from_secs(3600),
                retry_backoff: Duration::from_secs(300),
            }
        }

        async fn plan(&self, now: OffsetDateTime) -> PlanReport {
            plan(
                &self.deps(),
                &self.q(),
                &self.options,
                "schedule",
                Vec::new(),
                now,
            )
            .await
        }

        fn published(&self, name: &str) -> Vec<f64> {
            self.metrics
                .published
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, d)| d.name == name && d.dimensions.is_empty())
                .map(|(_, d)| d.value)
                .collect()
        }
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_796_000_000 + secs).unwrap()
    }

    fn bodies(queue: &FakeQueue, url: &str) -> Vec<WorkMessage> {
        queue
            .sent_to(url)
            .iter()
            .map(|m| WorkMessage::parse(&m.body).unwrap())
            .collect()
    }

    /// The plan groups the list by upstream, a few a message; a second planner while the run
    /// is in flight sends nothing; once the lease has run out, the next planner finishes the
    /// old run as abandoned, its missing outcomes counted as deferred, with a run error.
    #[tokio::test]
    async fn a_plan_groups_by_upstream_and_a_run_in_flight_holds_the_lease() {
        let world = World::new(&[
            "quay.io/a:1",
            "registry.k8s.io/pause:3.9",
            "quay.io/b:1",
            "quay.io/c:1",
            "gcr.io/x/y:1",
        ]);
        let first = world.plan(at(0)).await;
        assert!(first.errors.is_empty(), "{first:?}");
        assert_eq!((first.planned, first.messages), (5, 4));
        let sent = bodies(&world.queue, "https://sqs/work");
        let groups: Vec<(&str, usize)> = sent
            .iter()
            .map(|m| (m.group.as_str(), m.items.len()))
            .collect();
        assert_eq!(
            groups,
            [
                ("quay.io", 2),
                ("quay.io", 1),
                ("registry.k8s.io", 1),
                ("-", 1)
            ]
        );
        let run = first.run.clone().unwrap();
        let record = world.store.run(JOB, &run).await.unwrap().unwrap();
        assert!(
            record.queued && record.full && record.planned == 5 && record.finished_at.is_none()
        );

        let second = world.plan(at(60)).await;
        assert_eq!(second.in_flight.as_ref(), Some(&run));
        assert_eq!(second.run, None);
        assert_eq!(
            world.queue.sent_to("https://sqs/work").len(),
            4,
            "nothing sent twice"
        );

        // Two outcomes recorded, then the lease runs out.
        for item in ["quay.io/a:1", "quay.io/b:1"] {
            let outcome = ItemOutcome {
                item: item.into(),
                group: "quay".into(),
                outcome: "warmed".into(),
                reason: None,
            };
            assert!(world.store.record(JOB, &run, &outcome, 0).await.unwrap());
        }
        let third = world.plan(at(3601)).await;
        assert_eq!(third.abandoned.as_ref(), Some(&run), "{third:?}");
        assert!(third.run.is_some() && third.run != Some(run.clone()));
        let old = world.store.run(JOB, &run).await.unwrap().unwrap();
        assert!(old.abandoned && old.finished_at.is_some());
        // The abandoned run's totals: 2 warmed, 3 without an outcome counted deferred.
        assert_eq!(world.published("ImagesWarmed"), vec![2.0]);
        assert_eq!(world.published("ImagesDeferred"), vec![3.0]);
        let run_errors: Vec<f64> = world
            .metrics
            .published
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, d)| d.name == "RunErrors")
            .map(|(_, d)| d.value)
            .collect();
        assert!(run_errors.contains(&1.0), "{run_errors:?}");
        assert!(
            world.published("FullRuns").is_empty(),
            "no heartbeat for an abandoned run"
        );
    }

    /// An empty list is a run that finishes at once: its totals and heartbeat are published.
    /// Messages SQS refuses are recorded as deferred with the reason, so the run still ends.
    #[tokio::test]
    async fn an_empty_run_finishes_at_once_and_refused_messages_are_deferred() {
        let empty = World::new(&[]);
        let report = empty.plan(at(0)).await;
        assert_eq!((report.planned, report.messages), (0, 0));
        let run = report.run.unwrap();
        assert!(
            empty
                .store
                .run(JOB, &run)
                .await
                .unwrap()
                .unwrap()
                .finished_at
                .is_some()
        );
        let heartbeat: Vec<f64> = empty
            .metrics
            .published
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, d)| d.name == "FullRuns")
            .map(|(_, d)| d.value)
            .collect();
        assert_eq!(heartbeat, vec![1.0]);

        let refused = World::new(&["quay.io/a:1", "registry.k8s.io/pause:3.9"]);
        *refused.queue.fail.lock().unwrap() =
            Some("AWS.SimpleQueueService.NonExistentQueue".into());
        let report = refused.plan(at(0)).await;
        assert_eq!((report.messages, report.not_queued), (0, 2));
        assert!(
            report.errors[0].contains("could not be queued"),
            "{report:?}"
        );
        let run = report.run.unwrap();
        let record = refused.store.run(JOB, &run).await.unwrap().unwrap();
        assert_eq!(
            record.counts.get(&("quay".into(), "deferred".into())),
            Some(&1)
        );
        assert!(
            record.finished_at.is_some(),
            "every item has its outcome: the run ended"
        );
        assert_eq!(refused.published("ImagesDeferred"), vec![2.0]);
    }

    /// Bodies are untrusted: an unreadable one, or one for another job, goes to the dead-letter
    /// queue with the reason and is acknowledged; a message received before its `not_before`
    /// is sent on with the wait left; an entry with no rule fails at once (no retry, no dead
    /// letter); nothing else is touched.
    #[tokio::test]
    async fn a_worker_dead_letters_hostile_bodies_and_hops_early_messages() {
        let world = World::new(&[]);
        let planned = World::new(&["gcr.io/x/y:1"]);
        let report = planned.plan(at(0)).await;
        let run = report.run.unwrap();
        // The worker's store holds the run too.
        let record = planned.store.run(JOB, &run).await.unwrap().unwrap();
        world
            .store
            .runs
            .lock()
            .unwrap()
            .insert((JOB.to_owned(), run.clone()), record);
        let unroutable = bodies(&planned.queue, "https://sqs/work").remove(0);
        let mut early = unroutable.clone();
        early.not_before = Some(at(0).unix_timestamp() + 5000);
        let mut other_job = unroutable.clone();
        other_job.job = "lifecycle-fixer".into();
        let deliveries: Vec<Delivery> = [
            "{\"not\": \"work\"}".to_owned(),
            other_job.body(),
            early.body(),
            unroutable.body(),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, body)| Delivery {
            message_id: format!("m{i}"),
            body,
        })
        .collect();
        let report = work(
            &world.deps(),
            &world.q(),
            &world.options,
            &deliveries,
            at(10),
        )
        .await;
        assert!(report.batch_item_failures.is_empty(), "{report:?}");
        let letters: Vec<DeadLetter> = world
            .queue
            .sent_to("https://sqs/dead")
            .iter()
            .map(|m| serde_json::from_str(&m.body).unwrap())
            .collect();
        assert_eq!(letters.len(), 2);
        assert!(
            letters[0].reason.contains("not a work message"),
            "{letters:?}"
        );
        assert!(letters[1].reason.contains("lifecycle-fixer"), "{letters:?}");
        let again = world.queue.sent_to("https://sqs/work");
        assert_eq!(again.len(), 1, "the early message, sent on");
        assert_eq!(again[0].delay_secs, MAX_DELAY_SECS);
        assert_eq!(report.settled.hops, 1);
        // The unroutable entry: failed at once, recorded; the run is done and finished.
        assert_eq!((report.settled.recorded, report.settled.retried), (1, 0));
        assert_eq!(report.finished, vec![run.clone()]);
        let outcome =
            world.store.outcomes.lock().unwrap()[&(run, "gcr.io/x/y:1".to_owned())].clone();
        assert_eq!(outcome.outcome, "failed");
        assert_eq!(outcome.group, "-");
    }

    /// A store that cannot be written fails the message (SQS delivers it again): an outcome
    /// is never lost by acknowledging a message whose outcome was not written. A message of a
    /// run the table does not know is dead-lettered; one of a finished run is acknowledged
    /// without work.
    #[tokio::test]
    async fn outcomes_not_written_come_back_and_unknown_or_finished_runs_are_not_worked() {
        let planned = World::new(&["gcr.io/x/y:1"]);
        let run = planned.plan(at(0)).await.run.unwrap();
        let message = bodies(&planned.queue, "https://sqs/work").remove(0);
        let delivery = |id: &str| Delivery {
            message_id: id.into(),
            body: message.body(),
        };
        let record = planned.store.run(JOB, &run).await.unwrap().unwrap();

        // The run is known, its outcomes cannot be written.
        let failing = World::new(&[]);
        failing
            .store
            .runs
            .lock()
            .unwrap()
            .insert((JOB.to_owned(), run.clone()), record.clone());
        *failing.store.fail_records.lock().unwrap() =
            Some("ProvisionedThroughputExceededException".into());
        let report = work(
            &failing.deps(),
            &failing.q(),
            &failing.options,
            &[delivery("m1")],
            at(10),
        )
        .await;
        assert_eq!(report.batch_item_failures, vec!["m1".to_owned()]);
        assert!(report.errors[0].contains("cannot record"), "{report:?}");

        // The table does not know the run: dead-lettered with the reason.
        let unknown = World::new(&[]);
        let report = work(
            &unknown.deps(),
            &unknown.q(),
            &unknown.options,
            &[delivery("m2")],
            at(10),
        )
        .await;
        assert!(report.batch_item_failures.is_empty(), "{report:?}");
        let letters = unknown.queue.sent_to("https://sqs/dead");
        assert_eq!(letters.len(), 1);
        assert!(letters[0].body.contains("has no record"), "{letters:?}");

        // The run is finished (here: abandoned): acknowledged, nothing warmed, nothing sent.
        let finished = World::new(&[]);
        let mut done = record;
        done.finished_at = Some(5);
        done.abandoned = true;
        finished
            .store
            .runs
            .lock()
            .unwrap()
            .insert((JOB.to_owned(), run.clone()), done);
        let report = work(
            &finished.deps(),
            &finished.q(),
            &finished.options,
            &[delivery("m3")],
            at(10),
        )
        .await;
        assert!(
            report.batch_item_failures.is_empty() && report.images.is_empty(),
            "{report:?}"
        );
        assert_eq!(report.settled.finished_runs, 1);
        assert!(finished.queue.sent.lock().unwrap().is_empty());
    }

    /// An entry the worker would refuse (a control character, over 1,024 bytes) gets its
    /// outcome from the planner, `failed`, instead of a message that would be dead-lettered
    /// whole and leave the run unable to finish.
    #[tokio::test]
    async fn the_planner_settles_entries_no_message_may_carry() {
        let long = format!("quay.io/a:{}", "x".repeat(1100));
        let world = World::new(&["quay.io/a:1", "quay.io/b:1\tlatest", &long]);
        let report = world.plan(at(0)).await;
        let run = report.run.unwrap();
        let record = world.store.run(JOB, &run).await.unwrap().unwrap();
        let failed = record
            .counts
            .get(&("-".to_owned(), "failed".to_owned()))
            .copied();
        assert_eq!(failed, Some(2), "{record:?}");
        let sent: Vec<String> = bodies(&world.queue, "https://sqs/work")
            .iter()
            .flat_map(|m| m.items.iter().map(|i| i.reference.clone()))
            .collect();
        assert_eq!(
            sent,
            ["quay.io/a:1"],
            "only what a message may carry is sent"
        );
        let outcome =
            world.store.outcomes.lock().unwrap()[&(run, "quay.io/b:1\tlatest".to_owned())].clone();
        assert!(
            outcome
                .reason
                .unwrap_or_default()
                .contains("cannot be queued"),
            "the reason is kept"
        );
    }

    /// A send that fails as a whole is tried again; the messages SQS takes then are not
    /// recorded as deferred.
    #[tokio::test]
    async fn a_failed_send_is_tried_again_before_anything_is_deferred() {
        let world = World::new(&["quay.io/a:1", "registry.k8s.io/pause:3.9"]);
        *world.queue.fail_next.lock().unwrap() = 1;
        let report = world.plan(at(0)).await;
        assert!(report.errors.is_empty(), "{report:?}");
        assert_eq!((report.messages, report.not_queued), (2, 0));
        let record = world
            .store
            .run(JOB, &report.run.unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.done, 0, "nothing deferred: {record:?}");
    }

    #[test]
    fn a_runs_summaries_count_prefixes_apart_from_entries_without_a_rule() {
        let mut counts = BTreeMap::new();
        counts.insert(("quay".to_owned(), "warmed".to_owned()), 3);
        counts.insert(("quay".to_owned(), "failed".to_owned()), 1);
        counts.insert(("-".to_owned(), "failed".to_owned()), 2);
        let record = RunRecord {
            job: JOB.into(),
            run: RunId::new(JOB, at(0)),
            trigger: "schedule".into(),
            full: true,
            complete: true,
            updated_at: None,
            started_at: 0,
            planned: 8,
            messages: 1,
            queued: true,
            done: 6,
            counts,
            finished_at: None,
            abandoned: false,
        };
        let (by_prefix, unrouted, totals) = run_summaries(&record);
        assert_eq!(unrouted, 2);
        assert_eq!(by_prefix["quay"].coverage_percent, Some(75.0));
        assert_eq!((totals.images, totals.deferred, totals.failed), (8, 2, 3));
    }
}
