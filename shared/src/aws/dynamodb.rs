//! The aws-sdk adapter of the runs' store ([`crate::queue::RunStore`]): one DynamoDB table,
//! keys `pk` and `sk` (strings), items expiring through the table's TTL attribute
//! `expires_at`.
//!
//! Layout:
//! - the job's lease: `pk = job#<job>`, `sk = lease`: `run`, `lease_until`;
//! - a run: `pk = job#<job>`, `sk = run#<run id>` (a query lists a job's runs, newest first):
//!   `trigger`, `full`, `started_at`, `planned`, `messages`, `queued`, `done`, one counter
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
        started_at: number("started_at").unwrap_or(0),
        planned: number("planned").unwrap_or(0).max(0) as u64,
        messages: number("messages").unwrap_or(0).max(0) as u64,
        queued: flag("queued").unwrap_or(false),
        done: number("done").unwrap_or(0).max(0) as u64,
        counts,
        finished_at: number("finished_at"),
        abandoned: flag("abandoned").unwrap_or(false),
    })
}

impl SdkRunStore {
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
    async fn begin(&self, run: &RunRecord, lease_until: i64, now: i64) -> Result<Begin, AwsError> {
        let previous = self.lease_holder(&run.job).await?;
        if let Some((holder, until)) = &previous
            && *until >= now
        {
            return Ok(Begin::InFlight(holder.clone()));
        }
        let lease = Put::builder()
            .table_name(&self.table)
            .item("pk", job_key(&run.job))
            .item("sk", s("lease"))
            .item("run", s(run.run.as_str()))
            .item("lease_until", n(lease_until))
            .condition_expression(
                "attribute_not_exists(#pk) OR #until < :now OR attribute_not_exists(#run)",
            )
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#until", "lease_until")
            .expression_attribute_names("#run", "run")
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(|e| invalid("TransactWriteItems", e.to_string()))?;
        let record = Put::builder()
            .table_name(&self.table)
            .item("pk", job_key(&run.job))
            .item("sk", run_sort(&run.run))
            .item("run", s(run.run.as_str()))
            .item("trigger", s(truncate(&run.trigger, 256)))
            .item("full", AttributeValue::Bool(run.full))
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
        let sent = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(lease).build())
            .transact_items(TransactWriteItem::builder().put(record).build())
            .send()
            .await;
        match sent {
            Ok(_) => {
                // The lease was free or had run out: a run that held it and did not finish is
                // to be finished as abandoned.
                let replaced = match previous {
                    Some((old, _)) if old != run.run => match self.run(&run.job, &old).await? {
                        Some(record) if record.finished_at.is_none() => Some(old),
                        _ => None,
                    },
                    _ => None,
                };
                Ok(Begin::Started { replaced })
            }
            Err(err) => match cancellation_codes(&err) {
                Some(codes)
                    if codes.first().map(String::as_str) == Some("ConditionalCheckFailed") =>
                {
                    // Another planner took the lease between the read and the write.
                    match self.lease_holder(&run.job).await? {
                        Some((holder, _)) => Ok(Begin::InFlight(holder)),
                        None => Err(invalid(
                            "TransactWriteItems",
                            "the lease is taken but cannot be read".into(),
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
        self.client
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
            .await
            .map_err(|e| AwsError::from_sdk("UpdateItem", e))?;
        Ok(())
    }

    #[tracing::instrument(skip(self, outcome), fields(item = %outcome.item), err(Display))]
    async fn record(
        &self,
        job: &str,
        run: &RunId,
        outcome: &ItemOutcome,
        now: i64,
    ) -> Result<bool, AwsError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("run#{run}")))
            .item("sk", s(format!("item#{}", item_key(&outcome.item))))
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
        let counter = format!(
            "n|{}|{}",
            truncate(&outcome.group, 256),
            truncate(&outcome.outcome, 64)
        );
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", job_key(job))
            .key("sk", run_sort(run))
            .update_expression("ADD #done :one, #n :one")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#done", "done")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#n", counter)
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(|e| invalid("TransactWriteItems", e.to_string()))?;
        let sent = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(err) => match cancellation_codes(&err) {
                Some(codes)
                    if codes.first().map(String::as_str) == Some("ConditionalCheckFailed") =>
                {
                    Ok(false)
                }
                Some(codes)
                    if codes.get(1).map(String::as_str) == Some("ConditionalCheckFailed") =>
                {
                    Err(AwsError {
                        operation: "TransactWriteItems",
                        kind: AwsErrorKind::NotFound("RunNotFound".into()),
                        message: format!("run {run} of {job} has no record"),
                    })
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
        let finished = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", job_key(job))
            .key("sk", run_sort(run))
            .update_expression("SET #finished = :now, #abandoned = :abandoned")
            .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#finished)")
            .expression_attribute_names("#finished", "finished_at")
            .expression_attribute_names("#abandoned", "abandoned")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":abandoned", AttributeValue::Bool(abandoned))
            .send()
            .await;
        match finished {
            Ok(_) => {}
            Err(err) if condition_failed(&err) => return Ok(false),
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
            Ok(_) => Ok(true),
            Err(err) if condition_failed(&err) => Ok(true),
            Err(err) => Err(AwsError::from_sdk("UpdateItem", err)),
        }
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
