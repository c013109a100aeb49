//! The aws-sdk adapter of the runs' store ([`crate::queue::RunStore`]): one DynamoDB table,
//! keys `pk` and `sk` (strings), items expiring through the table's TTL attribute
//! `expires_at`.
//!
//! Layout:
//! - the job's lease: `pk = job#<job>`, `sk = lease`: `run`, `lease_until`;
//! - a run: `pk = job#<job>`, `sk = run#<run id>` (a query lists a job's runs, newest first):
//!   `trigger`, `full`, `complete`, `started_at`, `planned`, `messages`, `queued`, `done`, one counter
//!   `n|<group>|<outcome>` per group and outcome, `finished_at`, `abandoned`; kept 90 days;
//! - an item's outcome: `pk = run#<run id>`, `sk = item#<key>` ([`crate::queue::item_key`]):
//!   `item`, `group`, `outcome`, `reason`, `at`; kept 30 days.
//!
//! Every attribute in an expression goes through an expression attribute name (`#run`, `#done`,
//! ...): many plain words are DynamoDB reserved words, refused in an expression
//! (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ReservedWords.html>).
//!
//! An outcome and its counters are written in one transaction whose put is conditional on the
//! item having none (`TransactWriteItems`,
//! <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html>):
//! a message done twice counts once.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use crate::error::{AwsError, AwsErrorKind};
use crate::queue::{Begin, ItemOutcome, RunId, RunRecord, RunStore, item_key};

/// How long a run's record is kept (the table's TTL), in seconds: 90 days.
const RUN_DAYS: i64 = 90 * 86_400;
/// How long an item's outcome is kept, in seconds: 30 days.
const ITEM_DAYS: i64 = 30 * 86_400;
/// The longest reason kept, in bytes.
const MAX_REASON: usize = 1024;

/// The DynamoDB adapter of [`RunStore`] on the table `table` (`PTC_RUN_TABLE`).
pub struct SdkRunStore {
    client: Client,
    table: String,
}

impl SdkRunStore {
    /// The adapter on a DynamoDB client and a table name.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn job_key(job: &str) -> AttributeValue {
    s(format!("job#{job}"))
}

fn run_sort(run: &RunId) -> AttributeValue {
    s(format!("run#{run}"))
}

fn invalid(operation: &'static str, message: String) -> AwsError {
    AwsError {
        operation,
        kind: AwsErrorKind::Service("InvalidResponse".into()),
        message,
    }
}

fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Whether an SDK error is a failed condition (the service's `ConditionalCheckFailedException`).
fn condition_failed<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    err: &SdkError<E, R>,
) -> bool {
    matches!(err, SdkError::ServiceError(e) if e.err().code() == Some("ConditionalCheckFailedException"))
}

/// The cancellation reasons of a cancelled transaction, in the order of its items; `None` for
/// any other error.
fn cancellation_codes<R>(
    err: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> Option<Vec<String>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match err {
        SdkError::ServiceError(e) => match e.err() {
            TransactWriteItemsError::TransactionCanceledException(c) => Some(
                c.cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_owned())
                    .collect(),
            ),
            _ => None,
        },
        _ => None,
    }
}

fn record_from(job: &str, item: &HashMap<String, AttributeValue>) -> Result<RunRecord, AwsError> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let number = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let flag = |k: &str| item.get(k).and_then(|v| v.as_bool().ok()).copied();
    let run = text("run")
        .ok_or_else(|| invalid("GetItem", "a run record without its id".into()))
        .and_then(|r| RunId::try_from(r).map_err(|e| invalid("GetItem", e)))?;
    let mut counts = BTreeMap::new();
    for (name, value) in item {
        let Some(rest) = name.strip_prefix("n|") else {
            continue;
        };
        let Some((group, outcome)) = rest.rsplit_once('|') else {
            continue;
        };
        let count = value
            .as_n()
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        counts.insert((group.to_owned(), outcome.to_owned()), count);
    }
    Ok(RunRecord {
        job: job.to_owned(),
        run,
        trigger: text("trigger").unwrap_or_default(),
        full: flag("full").unwrap_or(false),
        complete: flag("complete").unwrap_or(false),
        started_at: number("started_at").unwrap_or(0),
        planned: number("planned").unwrap_or(0).max(0) as u64,
        messages: number("messages").unwrap_or(0).max(0) as u64,
        queued: flag("queued").unwrap_or(false),
        done: number("done").unwrap_or(0).max(0) as u64,
        counts,
        finished_at: number("finished_at"),
        abandoned: flag("abandoned").unwrap_or(false),
        updated_at: number("updated_at"),
    })
}

/// How many times a write that conflicted with a transaction is tried in all.
const TRANSACTION_ATTEMPTS: u32 = 10;

/// Full jitter before attempt `attempt + 1` of a write that conflicted: up to 50 ms x 2^attempt,
/// at most 2 s.
async fn backoff(attempt: u32, seed: u64) {
    use std::hash::{BuildHasher, RandomState};
    let cap = (50u64 << attempt.min(6)).min(2000);
    let wait = RandomState::new().hash_one(seed.wrapping_add(u64::from(attempt))) % cap.max(1);
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
}

/// A token for `TransactWriteItems`' `ClientRequestToken` (1-36 characters): 32 hex digits of
/// the SHA-256 of `parts`. The same request gives the same token (an SDK retry of a write that
/// succeeded succeeds again); any other request, another token (a token reused with other
/// parameters within 10 minutes is `IdempotentParameterMismatchException`).
fn token<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    hash.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether an SDK error is a plain write refused because a transaction holds the item
/// (`TransactionConflictException`, not retried by the SDK).
fn conflicted<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    err: &SdkError<E, R>,
) -> bool {
    matches!(err, SdkError::ServiceError(e) if e.err().code() == Some("TransactionConflictException"))
}

impl SdkRunStore {
    /// One transaction of outcomes (at most 99) and the run's counters: the outcomes already
    /// there (a cancellation reason `ConditionalCheckFailed` at their place) are left out and
    /// the rest written again; a `TransactionConflict` (another worker's transaction on the
    /// run's record at the same time: DynamoDB cancels one of them,
    /// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling>,
    /// and the SDK does not retry it) is tried again after a jittered backoff, up to
    /// [`TRANSACTION_ATTEMPTS`] times.
    async fn record_chunk(
        &self,
        job: &str,
        run: &RunId,
        outcomes: &[ItemOutcome],
        now: i64,
    ) -> Result<(usize, usize), AwsError> {
        let mut pending: Vec<&ItemOutcome> = outcomes.iter().collect();
        let mut duplicates = 0;
        for attempt in 0..TRANSACTION_ATTEMPTS {
            if pending.is_empty() {
                return Ok((0, duplicates));
            }
            let mut transaction = self.client.transact_write_items();
            let mut counters: BTreeMap<String, u64> = BTreeMap::new();
            let mut keys = Vec::with_capacity(pending.len());
            for outcome in &pending {
                let key = item_key(&outcome.item);
                let mut put = Put::builder()
                    .table_name(&self.table)
                    .item("pk", s(format!("run#{run}")))
                    .item("sk", s(format!("item#{key}")))
                    .item("item", s(truncate(&outcome.item, 4096)))
                    .item("group", s(truncate(&outcome.group, 256)))
                    .item("outcome", s(truncate(&outcome.outcome, 64)))
                    .item("at", n(now))
                    .item("expires_at", n(now + ITEM_DAYS))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", "pk");
                if let Some(reason) = &outcome.reason {
                    put = put.item("reason", s(truncate(reason, MAX_REASON)));
                }
                let put = put
                    .build()
                    .map_err(|e| invalid("TransactWriteItems", e.to_string()))?;
                transaction =
                    transaction.transact_items(TransactWriteItem::builder().put(put).build());
                *counters
                    .entry(format!(
                        "n|{}|{}",
                        truncate(&outcome.group, 256),
                        truncate(&outcome.outcome, 64)
                    ))
                    .or_default() += 1;
                keys.push(key);
            }
            let mut update = Update::builder()
                .table_name(&self.table)
                .key("pk", job_key(job))
                .key("sk", run_sort(run))
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#done", "done")
                .expression_attribute_names("#updated", "updated_at")
                .expression_attribute_values(":done", n(pending.len()))
                .expression_attribute_values(":now", n(now));
            let mut adds = vec!["#done :done".to_owned()];
            for (i, (name, count)) in counters.iter().enumerate() {
                update = update
                    .expression_attribute_names(format!("#c{i}"), name)
                    .expression_attribute_values(format!(":c{i}"), n(count));
                adds.push(format!("#c{i} :c{i}"));
            }
            let update = update
                .update_expression(format!("ADD {} SET #updated = :now", adds.join(", ")))
                .build()
                .map_err(|e| invalid("TransactWriteItems", e.to_string()))?;
            // Every parameter of the request in its token: an SDK retry of a transaction that
            // succeeded succeeds again without writing twice; any other request has another
            // token.
            let now_text = now.to_string();
            let token = token([job, run.as_str(), now_text.as_str()].into_iter().chain(
                pending.iter().flat_map(|o| {
                    [
                        o.item.as_str(),
                        o.group.as_str(),
                        o.outcome.as_str(),
                        o.reason.as_deref().unwrap_or(""),
                    ]
                }),
            ));
            let sent = transaction
                .transact_items(TransactWriteItem::builder().update(update).build())
                .client_request_token(token)
                .send()
                .await;
            let codes = match sent {
                Ok(_) => return Ok((pending.len(), duplicates)),
                Err(err) => match cancellation_codes(&err) {
                    Some(codes) => codes,
                    None => return Err(AwsError::from_sdk("TransactWriteItems", err)),
                },
            };
            if codes.get(pending.len()).map(String::as_str) == Some("ConditionalCheckFailed") {
                return Err(AwsError {
                    operation: "TransactWriteItems",
                    kind: AwsErrorKind::NotFound("RunNotFound".into()),
                    message: format!("run {run} of {job} has no record"),
                });
            }
            let before = pending.len();
            let mut index = 0;
            pending.retain(|_| {
                let there = codes.get(index).map(String::as_str) == Some("ConditionalCheckFailed");
                index += 1;
                !there
            });
            duplicates += before - pending.len();
            let conflicted = codes
                .iter()
                .any(|c| c == "TransactionConflict" || c == "ThrottlingError");
            if before == pending.len() && !conflicted {
                return Err(AwsError {
                    operation: "TransactWriteItems",
                    kind: AwsErrorKind::Service("TransactionCanceledException".into()),
                    message: format!("cancelled: {}", codes.join(", ")),
                });
            }
            if conflicted {
                backoff(attempt, now as u64).await;
            }
        }
        Err(AwsError {
            operation: "TransactWriteItems",
            kind: AwsErrorKind::Throttled,
            message: format!(
                "the run's record kept conflicting with other writers after {TRANSACTION_ATTEMPTS} attempts"
            ),
        })
    }

    async fn lease_holder(&self, job: &str) -> Result<Option<(RunId, i64)>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", job_key(job))
            .key("sk", s("lease"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let Some(run) = item.get("run").and_then(|v| v.as_s().ok()) else {
            return Ok(None);
        };
        let until = item
            .get("lease_until")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        let run = RunId::try_from(run.clone()).map_err(|e| invalid("GetItem", e))?;
        Ok(Some((run, until)))
    }
}

#[async_trait]
impl RunStore for SdkRunStore {
    #[tracing::instrument(skip(self, run), fields(run = %run.run), err(Display))]
    async fn begin(&self, run: &RunRecord, lease_secs: i64, now: i64) -> Result<Begin, AwsError> {
        let record = Put::builder()
            .table_name(&self.table)
            .item("pk", job_key(&run.job))
            .item("sk", run_sort(&run.run))
            .item("run", s(run.run.as_str()))
            .item("trigger", s(truncate(&run.trigger, 256)))
            .item("full", AttributeValue::Bool(run.full))
            .item("complete", AttributeValue::Bool(run.complete))
            .item("started_at", n(run.started_at))
            .item("planned", n(run.planned))
            .item("messages", n(0))
            .item("queued", AttributeValue::Bool(false))
            .item("done", n(0))
            .item("expires_at", n(now + RUN_DAYS))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "pk")
            .build()
            .map_err(|e| invalid("TransactWriteItems", e.to_string()))?;
        let mut replaced = None;
        let mut transaction = self
            .client
            .transact_write_items()
            // The run id is the idempotency token: an SDK retry of a write that succeeded
            // succeeds again instead of finding its own lease taken
            // (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html>).
            .client_request_token(token([run.job.as_str(), run.run.as_str()]));
        if run.full {
            let holder = self.lease_holder(&run.job).await?;
            if let Some((holder, until)) = &holder
                && *holder != run.run
            {
                let record = self.run(&run.job, holder).await?;
                let unfinished = record.as_ref().is_some_and(|r| r.finished_at.is_none());
                let active = record
                    .as_ref()
                    .map(|r| r.updated_at.unwrap_or(r.started_at))
                    .is_some_and(|at| at >= now - lease_secs);
                // A finished run whose lease was not released blocks nothing.
                if unfinished && (*until >= now || active) {
                    return Ok(Begin::InFlight(holder.clone()));
                }
                if unfinished {
                    replaced = Some(holder.clone());
                }
            }
            // Taken only from the holder read above (or none): a planner that took it in
            // between makes this one fail the condition.
            let mut lease = Put::builder()
                .table_name(&self.table)
                .item("pk", job_key(&run.job))
                .item("sk", s("lease"))
                .item("run", s(run.run.as_str()))
                .item("lease_until", n(now + lease_secs))
                .expression_attribute_names("#run", "run");
            lease = match &holder {
                Some((previous, _)) => lease
                    .condition_expression("attribute_not_exists(#run) OR #run = :previous")
                    .expression_attribute_values(":previous", s(previous.as_str())),
                None => lease.condition_expression("attribute_not_exists(#run)"),
            };
            let lease = lease
                .build()
                .map_err(|e| invalid("TransactWriteItems", e.to_string()))?;
            transaction =
                transaction.transact_items(TransactWriteItem::builder().put(lease).build());
        }
        let sent = transaction
            .transact_items(TransactWriteItem::builder().put(record).build())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Begin::Started { replaced }),
            Err(err) => match cancellation_codes(&err) {
                Some(codes)
                    if codes
                        .iter()
                        .any(|c| c == "ConditionalCheckFailed" || c == "TransactionConflict") =>
                {
                    match self.lease_holder(&run.job).await? {
                        // Our own write, retried after it had succeeded.
                        Some((holder, _)) if holder == run.run => Ok(Begin::Started { replaced }),
                        // Another planner took the lease between the read and the write.
                        Some((holder, _)) => Ok(Begin::InFlight(holder)),
                        None => Err(invalid(
                            "TransactWriteItems",
                            format!(
                                "the run {} could not be started: {}",
                                run.run,
                                codes.join(", ")
                            ),
                        )),
                    }
                }
                Some(codes) => Err(AwsError {
                    operation: "TransactWriteItems",
                    kind: AwsErrorKind::Service("TransactionCanceledException".into()),
                    message: format!("cancelled: {}", codes.join(", ")),
                }),
                None => Err(AwsError::from_sdk("TransactWriteItems", err)),
            },
        }
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn queued(&self, job: &str, run: &RunId, messages: u64) -> Result<(), AwsError> {
        let mut attempt = 0;
        loop {
            let sent = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", job_key(job))
                .key("sk", run_sort(run))
                .update_expression("SET #queued = :yes, #messages = :m")
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#queued", "queued")
                .expression_attribute_names("#messages", "messages")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .expression_attribute_values(":m", n(messages))
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(()),
                // A worker's transaction holds the run's record: try again.
                Err(err) if conflicted(&err) && attempt + 1 < TRANSACTION_ATTEMPTS => {
                    backoff(attempt, messages).await;
                    attempt += 1;
                }
                Err(err) => return Err(AwsError::from_sdk("UpdateItem", err)),
            }
        }
    }

    #[tracing::instrument(skip(self, outcomes), fields(outcomes = outcomes.len()), err(Display))]
    async fn record_all(
        &self,
        job: &str,
        run: &RunId,
        outcomes: &[ItemOutcome],
        now: i64,
    ) -> Result<(usize, usize), AwsError> {
        let (mut written, mut duplicates) = (0, 0);
        // A transaction holds at most 100 actions: 99 outcomes and the run's counters.
        for chunk in outcomes.chunks(99) {
            let (w, d) = self.record_chunk(job, run, chunk, now).await?;
            written += w;
            duplicates += d;
        }
        Ok((written, duplicates))
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn run(&self, job: &str, run: &RunId) -> Result<Option<RunRecord>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", job_key(job))
            .key("sk", run_sort(run))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetItem", e))?;
        out.item().map(|item| record_from(job, item)).transpose()
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn runs(&self, job: &str, limit: usize) -> Result<Vec<RunRecord>, AwsError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :run)")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_values(":pk", job_key(job))
            .expression_attribute_values(":run", s("run#"))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 100) as i32)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("Query", e))?;
        out.items()
            .iter()
            .map(|item| record_from(job, item))
            .collect()
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn outcomes(&self, run: &RunId, limit: usize) -> Result<Vec<ItemOutcome>, AwsError> {
        let mut out = Vec::new();
        let mut start = None;
        // Bounded: at most `limit` outcomes, at most 1,000 pages.
        for _ in 0..1000 {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :item)")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":pk", s(format!("run#{run}")))
                .expression_attribute_values(":item", s("item#"))
                .limit((limit - out.len()).clamp(1, 1000) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("Query", e))?;
            for item in page.items() {
                let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
                out.push(ItemOutcome {
                    item: text("item").unwrap_or_default(),
                    group: text("group").unwrap_or_else(|| "-".into()),
                    outcome: text("outcome").unwrap_or_default(),
                    reason: text("reason"),
                });
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() && out.len() < limit => {
                    start = Some(key.clone());
                }
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn finish(
        &self,
        job: &str,
        run: &RunId,
        now: i64,
        abandoned: bool,
    ) -> Result<bool, AwsError> {
        // This call's mark, to tell its own write from another's when the SDK retried it.
        let finisher = {
            use std::hash::{BuildHasher, RandomState};
            format!("{:016x}", RandomState::new().hash_one((run.as_str(), now)))
        };
        let mut attempt = 0;
        let finished = loop {
            let sent = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", job_key(job))
                .key("sk", run_sort(run))
                .update_expression("SET #finished = :now, #abandoned = :abandoned, #by = :by")
                .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#finished)")
                .expression_attribute_names("#finished", "finished_at")
                .expression_attribute_names("#abandoned", "abandoned")
                .expression_attribute_names("#by", "finished_by")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":abandoned", AttributeValue::Bool(abandoned))
                .expression_attribute_values(":by", s(&finisher))
                .return_values_on_condition_check_failure(
                    aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match sent {
                Err(err) if conflicted(&err) && attempt + 1 < TRANSACTION_ATTEMPTS => {
                    backoff(attempt, now as u64).await;
                    attempt += 1;
                }
                other => break other,
            }
        };
        match finished {
            Ok(_) => {}
            // Finished already: by this call when the SDK retried a write that had succeeded
            // (its mark is there), else by another.
            Err(err) if condition_failed(&err) => {
                use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
                let mine = matches!(&err, SdkError::ServiceError(e) if matches!(
                    e.err(),
                    UpdateItemError::ConditionalCheckFailedException(c) if c
                        .item()
                        .and_then(|item| item.get("finished_by"))
                        .and_then(|v| v.as_s().ok())
                        .is_some_and(|by| *by == finisher)
                ));
                if !mine {
                    return Ok(false);
                }
            }
            Err(err) => return Err(AwsError::from_sdk("UpdateItem", err)),
        }
        // Release the lease if this run holds it (another run may have taken it already).
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", job_key(job))
            .key("sk", s("lease"))
            .update_expression("REMOVE #run SET #until = :zero")
            .condition_expression("#run = :run")
            .expression_attribute_names("#run", "run")
            .expression_attribute_names("#until", "lease_until")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":run", s(run.as_str()))
            .send()
            .await;
        match released {
            Ok(_) => {}
            Err(err) if condition_failed(&err) => {}
            // The run is finished whatever: its totals are to be published. A lease left
            // behind runs out by itself.
            Err(err) => {
                tracing::warn!(error = %AwsError::from_sdk("UpdateItem", err), "the job's lease was not released; it runs out by itself")
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    /// Every attribute name in the adapter's expressions is an alias (`#name`): DynamoDB
    /// refuses a reserved word in an expression (`ValidationException`) and moto does not
    /// check all of them, so the rule is checked on the source itself
    /// (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ReservedWords.html>).
    #[test]
    fn every_attribute_in_an_expression_is_an_alias() {
        let file = include_str!("dynamodb.rs");
        let source = &file[..file.find("#[cfg(test)]").expect("the tests' module")];
        let grammar = [
            "attribute_exists",
            "attribute_not_exists",
            "begins_with",
            "AND",
            "OR",
            "SET",
            "ADD",
            "REMOVE",
        ];
        let mut checked = 0;
        for piece in source.split("_expression(").skip(1) {
            let Some(literal) = piece
                .trim_start()
                .strip_prefix('"')
                .and_then(|rest| rest.split('"').next())
            else {
                continue;
            };
            checked += 1;
            let mut word = String::new();
            for c in literal.chars().chain(std::iter::once(' ')) {
                if c.is_ascii_alphanumeric() || c == '_' || c == '#' || c == ':' {
                    word.push(c);
                    continue;
                }
                if !word.is_empty()
                    && !word.starts_with('#')
                    && !word.starts_with(':')
                    && !grammar.contains(&word.as_str())
                {
                    panic!("{word:?} in {literal:?} is not an alias");
                }
                word.clear();
            }
        }
        assert!(checked >= 8, "the expressions were found: {checked}");
    }
}
