//! The work queue on the local stack (issue 19), and a driver that plays Lambda's SQS event
//! source mapping (ESM) against it.
//!
//! moto serves SQS (with `DelaySeconds`, the visibility timeout and `RedrivePolicy` to a
//! dead-letter queue) and DynamoDB. [`drive`] does what the ESM does for a standard queue with
//! `FunctionResponseTypes: [ReportBatchItemFailures]`: it long-polls the queue, invokes a
//! function binary running under the Runtime Interface Emulator ([`Lambda`]) with the event
//! Lambda sends, and deletes what the function's answer says succeeded. It reimplements
//! neither delays nor redrive: SQS (moto) does both, as in AWS.
//!
//! The documented behaviour it follows:
//! - Polling, batches, the event and deletion on success: "Using Lambda with Amazon SQS",
//!   <https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html> ("Lambda reads messages in
//!   batches and invokes your function once for each batch. When your function successfully
//!   processes a batch, Lambda deletes its messages from the queue"; the example standard
//!   queue message event there is the shape built here, through
//!   [`aws_lambda_events::event::sqs::SqsEvent`]).
//! - Errors and partial batch responses: "Handling errors for an SQS event source in Lambda",
//!   <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting>
//!   (a function error leaves the whole batch, which reappears after the visibility timeout;
//!   the success and failure conditions of a `batchItemFailures` answer: see [`judge`]).
//! - Maximum concurrency: "Configuring scaling behavior for SQS event source mappings",
//!   <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html#events-sqs-max-concurrency>
//!   ("limits the number of concurrent instances of the function that an Amazon SQS event
//!   source can invoke"). AWS's minimum is 2; the driver also takes 1, for tests.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName,
};
use serde_json::Value;

use crate::lambda::Lambda;
use crate::{Stack, unique};

/// A standard queue with its dead-letter queue (made by [`Stack::create_work_queue`]).
#[derive(Debug, Clone)]
pub struct WorkQueue {
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
}

/// The queue's approximate counts (GetQueueAttributes): visible, in flight (received and
/// not deleted, not yet visible again) and delayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Depth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

impl Depth {
    pub fn is_empty(&self) -> bool {
        self.visible == 0 && self.in_flight == 0 && self.delayed == 0
    }
}

impl Stack {
    /// An SQS client for the stack's moto endpoint.
    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config().await)
    }

    /// A DynamoDB client for the stack's moto endpoint.
    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config().await)
    }

    /// A new standard queue (unique name) with `VisibilityTimeout` = `visibility_timeout_secs`
    /// and a `RedrivePolicy` sending a message to a new dead-letter queue once it has been
    /// received `max_receive_count` times.
    pub async fn create_work_queue(
        &self,
        visibility_timeout_secs: u32,
        max_receive_count: u32,
    ) -> WorkQueue {
        let sqs = self.sqs().await;
        let name = format!("ptc-work-{}", unique());
        let dlq_url = sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .expect("CreateQueue (dead-letter queue)")
            .queue_url
            .expect("a dead-letter queue URL");
        let dlq_arn = queue_arn(&sqs, &dlq_url).await;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": max_receive_count.to_string(),
        });
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout_secs.to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .expect("CreateQueue (work queue)")
            .queue_url
            .expect("a work queue URL");
        let arn = queue_arn(&sqs, &url).await;
        WorkQueue {
            url,
            arn,
            dlq_url,
            dlq_arn,
        }
    }

    /// A new DynamoDB table (unique name) for runs: `pk` (S) HASH, `sk` (S) RANGE,
    /// PAY_PER_REQUEST. Returns its name once it is ACTIVE.
    pub async fn create_run_table(&self) -> String {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
            TableStatus,
        };
        let ddb = self.dynamodb().await;
        let name = format!("ptc-runs-{}", unique());
        let attribute = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition")
        };
        let key = |n: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
                .expect("key schema element")
        };
        ddb.create_table()
            .table_name(&name)
            .attribute_definitions(attribute("pk"))
            .attribute_definitions(attribute("sk"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .expect("CreateTable (runs)");
        // moto answers ACTIVE at once; AWS takes a moment. Bounded: 60 x 0.5 s.
        for _ in 0..60 {
            let status = ddb
                .describe_table()
                .table_name(&name)
                .send()
                .await
                .expect("DescribeTable")
                .table
                .and_then(|t| t.table_status);
            if status == Some(TableStatus::Active) {
                return name;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("table {name} not ACTIVE after 30 s");
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes QueueArn")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("a QueueArn")
}

async fn depth_of(sqs: &aws_sdk_sqs::Client, url: &str) -> Depth {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .expect("GetQueueAttributes (depth)")
        .attributes
        .unwrap_or_default();
    let count = |name: QueueAttributeName| {
        attributes
            .get(&name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name:?} in {attributes:?}"))
    };
    Depth {
        visible: count(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    }
}

impl WorkQueue {
    /// The work queue's depth.
    pub async fn depth(&self, sqs: &aws_sdk_sqs::Client) -> Depth {
        depth_of(sqs, &self.url).await
    }

    /// The dead-letter queue's depth.
    pub async fn dlq_depth(&self, sqs: &aws_sdk_sqs::Client) -> Depth {
        depth_of(sqs, &self.dlq_url).await
    }

    /// The bodies of the messages in the dead-letter queue, in the order received. They are
    /// received (hidden for 30 s while reading, so that none is read twice) and then made
    /// visible again (ChangeMessageVisibility 0): the DLQ keeps them, each with one more
    /// receive counted. Messages already in flight in the DLQ are not seen.
    pub async fn dead_letters(&self, sqs: &aws_sdk_sqs::Client) -> Vec<String> {
        let mut bodies = Vec::new();
        let mut handles = Vec::new();
        // Bounded: 100 receives of up to 10 messages.
        for _ in 0..100 {
            let messages = sqs
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                // moto answers every visible message without a long poll; AWS samples
                // servers on a short poll and may answer fewer.
                .wait_time_seconds(0)
                .send()
                .await
                .expect("ReceiveMessage (dead-letter queue)")
                .messages
                .unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                bodies.push(m.body.unwrap_or_default());
                handles.extend(m.receipt_handle);
            }
        }
        for chunk in handles.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, handle)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .build()
                        .expect("visibility entry")
                })
                .collect();
            sqs.change_message_visibility_batch()
                .queue_url(&self.dlq_url)
                .set_entries(Some(entries))
                .send()
                .await
                .expect("ChangeMessageVisibilityBatch (dead-letter queue)");
        }
        bodies
    }
}

/// How [`drive`] runs.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// The ESM's `BatchSize`: ReceiveMessage's `MaxNumberOfMessages`, 1-10 (no batching
    /// window: Lambda needs `MaximumBatchingWindowInSeconds` only above 10).
    pub batch_size: i32,
    /// The ESM's `ScalingConfig.MaximumConcurrency`: invocations at once, also bounded by the
    /// number of [`Lambda`]s given (each emulator serves one invocation at a time).
    pub maximum_concurrency: usize,
    /// Stop after this long (then [`DriverStats::timed_out`]).
    pub max_wall: Duration,
    /// Stop once this many consecutive empty polls, with no invocation running, found the
    /// queue empty (visible, in flight and delayed all 0).
    pub idle_polls: u32,
}

impl Default for DriverOptions {
    fn default() -> Self {
        Self {
            batch_size: 10,
            maximum_concurrency: 2,
            max_wall: Duration::from_secs(60),
            idle_polls: 2,
        }
    }
}

/// One message as the driver received it.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub message_id: String,
    pub body: String,
    /// SQS's `ApproximateReceiveCount` for this receive.
    pub receive_count: u32,
    pub at: Instant,
    /// The invocation (index into [`DriverStats::invocation_spans`]) it went to.
    pub invocation: usize,
}

/// One invocation: which Lambda of the pool ran it, when, and how many messages it carried.
#[derive(Debug, Clone)]
pub struct InvocationSpan {
    pub lambda: usize,
    pub start: Instant,
    pub end: Option<Instant>,
    pub messages: usize,
    pub outcome: Option<Judgement>,
}

/// What [`drive`] saw and did.
#[derive(Debug, Clone, Default)]
pub struct DriverStats {
    /// Invocations made (each with one non-empty batch).
    pub invocations: u64,
    /// Messages received from the queue, counting each receive (a message delivered twice
    /// counts twice).
    pub messages_received: u64,
    /// Messages left in the queue because a valid partial batch response listed them.
    pub batch_item_failures: u64,
    /// Invocations that answered an error document (`errorType` / `errorMessage`): their
    /// whole batch was left.
    pub function_errors: u64,
    /// Invocations whose answer broke the documented partial-batch rules (an empty, null or
    /// unknown `itemIdentifier`, a bad key name, a non-object answer): their whole batch was
    /// left, as Lambda does.
    pub invalid_responses: u64,
    /// Messages deleted (DeleteMessageBatch entries that succeeded).
    pub deleted: u64,
    /// DeleteMessageBatch entries that failed (e.g. a receipt handle no longer valid).
    pub delete_failures: u64,
    /// ReceiveMessage calls made, and how many of them answered no message.
    pub polls: u64,
    pub empty_polls: u64,
    /// The run stopped at `max_wall` rather than on an idle queue.
    pub timed_out: bool,
    /// The most invocations running at once.
    pub max_in_flight_invocations: usize,
    /// Every receive, in order.
    pub receipts: Vec<Receipt>,
    /// Every invocation, in start order.
    pub invocation_spans: Vec<InvocationSpan>,
    /// Message ids deleted, in order (a correct run deletes each at most once).
    pub deleted_ids: Vec<String>,
    /// The run's wall time.
    pub elapsed: Duration,
}

impl DriverStats {
    /// How many times each message id was received.
    pub fn receives_by_id(&self) -> BTreeMap<String, u32> {
        let mut counts = BTreeMap::new();
        for r in &self.receipts {
            *counts.entry(r.message_id.clone()).or_default() += 1;
        }
        counts
    }

    /// How many times each message id was deleted.
    pub fn deletes_by_id(&self) -> BTreeMap<String, u32> {
        let mut counts = BTreeMap::new();
        for id in &self.deleted_ids {
            *counts.entry(id.clone()).or_default() += 1;
        }
        counts
    }
}

/// What an invocation's answer means for its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Delete every message.
    AllSucceeded,
    /// Delete every message but these (a valid partial batch response).
    PartialFailure(Vec<String>),
    /// The function failed (an error document): leave every message.
    FunctionError(String),
    /// The answer broke the documented rules: leave every message.
    Invalid(String),
}

/// Judge an invocation's answer for a batch holding `batch_ids`, following "Success and
/// failure conditions" of
/// <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting>:
///
/// Lambda treats a batch as a complete success on an empty `batchItemFailures` list, a null
/// `batchItemFailures` list, an empty `EventResponse` or a null `EventResponse`; and as a
/// complete failure on an invalid JSON response, an empty string `itemIdentifier`, a null
/// `itemIdentifier`, an `itemIdentifier` with a bad key name, or an `itemIdentifier` value
/// with a message ID that doesn't exist (in the batch).
///
/// Readings of that list made here: an object without `batchItemFailures` (other keys are
/// ignored) is a null list; a `batchItemFailures` that is neither a list nor null, an entry
/// that is not an object, an `itemIdentifier` that is not a string, and an answer that is
/// JSON but not an object or null are "an invalid JSON response". An error document (what
/// the Runtime API answers for a function error: `errorType` / `errorMessage`) is a
/// function error, which leaves the whole batch: "all messages in that batch become visible
/// in the queue again" after the visibility timeout. (An answer that is not JSON at all
/// cannot reach here: [`Lambda::invoke`] panics on it.)
pub fn judge(answer: &Value, batch_ids: &[String]) -> Judgement {
    let object = match answer {
        Value::Null => return Judgement::AllSucceeded,
        Value::Object(o) => o,
        other => return Judgement::Invalid(format!("not an EventResponse object: {other}")),
    };
    if object.contains_key("errorType") || object.contains_key("errorMessage") {
        return Judgement::FunctionError(format!(
            "{}: {}",
            object
                .get("errorType")
                .and_then(Value::as_str)
                .unwrap_or(""),
            object
                .get("errorMessage")
                .and_then(Value::as_str)
                .unwrap_or("")
        ));
    }
    let failures = match object.get("batchItemFailures") {
        None | Some(Value::Null) => return Judgement::AllSucceeded,
        Some(Value::Array(items)) => items,
        Some(other) => return Judgement::Invalid(format!("batchItemFailures is {other}")),
    };
    let known: HashSet<&str> = batch_ids.iter().map(String::as_str).collect();
    let mut failed: Vec<String> = Vec::new();
    for item in failures {
        let Some(item) = item.as_object() else {
            return Judgement::Invalid(format!("a batch item failure is not an object: {item}"));
        };
        let id = match item.get("itemIdentifier") {
            None => {
                return Judgement::Invalid(format!(
                    "a batch item failure without itemIdentifier (bad key name): {item:?}"
                ));
            }
            Some(Value::Null) => return Judgement::Invalid("a null itemIdentifier".to_owned()),
            Some(Value::String(s)) if s.is_empty() => {
                return Judgement::Invalid("an empty string itemIdentifier".to_owned());
            }
            Some(Value::String(s)) => s,
            Some(other) => {
                return Judgement::Invalid(format!("itemIdentifier is not a string: {other}"));
            }
        };
        if !known.contains(id.as_str()) {
            return Judgement::Invalid(format!("itemIdentifier {id} is not in the batch"));
        }
        if !failed.contains(id) {
            failed.push(id.clone());
        }
    }
    if failed.is_empty() {
        Judgement::AllSucceeded
    } else {
        Judgement::PartialFailure(failed)
    }
}

/// The event Lambda's SQS ESM sends for `messages` received from the queue `queue_arn` in
/// `region`, as [`SqsEvent`] (its serialisation is what the function receives).
pub fn sqs_event(messages: &[Message], queue_arn: &str, region: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            record.md5_of_body = m.md5_of_body.clone();
            record.md5_of_message_attributes = m.md5_of_message_attributes.clone();
            // Every system attribute SQS returned (ApproximateReceiveCount, SentTimestamp,
            // SenderId, ApproximateFirstReceiveTimestamp; AWSTraceHeader and the FIFO ones
            // when present), keyed by their SQS names as in the documented event.
            record.attributes = m
                .attributes
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect();
            record.message_attributes = m
                .message_attributes
                .iter()
                .flatten()
                .map(|(name, value)| {
                    let mut attribute = SqsMessageAttribute::default();
                    attribute.data_type = Some(value.data_type.clone());
                    attribute.string_value = value.string_value.clone();
                    attribute.binary_value = value.binary_value.as_ref().map(|b| {
                        let mut data = Base64Data::default();
                        *data = b.as_ref().to_vec();
                        data
                    });
                    attribute.string_list_values =
                        value.string_list_values.clone().unwrap_or_default();
                    attribute.binary_list_values = value
                        .binary_list_values
                        .iter()
                        .flatten()
                        .map(|b| {
                            let mut data = Base64Data::default();
                            *data = b.as_ref().to_vec();
                            data
                        })
                        .collect();
                    (name.clone(), attribute)
                })
                .collect();
            record.event_source = Some("aws:sqs".to_owned());
            record.event_source_arn = Some(queue_arn.to_owned());
            record.aws_region = Some(region.to_owned());
            record
        })
        .collect();
    event
}

/// The region of an SQS queue ARN (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
fn region_of(arn: &str) -> String {
    arn.split(':').nth(3).unwrap_or_default().to_owned()
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

enum Event {
    Received(Vec<Message>),
    Answered {
        span: usize,
        batch: Vec<Message>,
        answer: Value,
    },
    Deadline,
}

/// Play Lambda's SQS event source mapping on `queue` with the pool `lambdas` until the queue
/// stays empty (see [`DriverOptions::idle_polls`]) or `options.max_wall` passes.
///
/// Each ReceiveMessage is a long poll (WaitTimeSeconds 1, MaxNumberOfMessages = batch_size,
/// every system and message attribute), made only while an invocation slot is free
/// (`min(maximum_concurrency, lambdas.len())`), so no message waits in flight for a slot. A
/// non-empty batch goes to a free [`Lambda`] as [`sqs_event`]; its answer is [`judge`]d:
/// the messages that succeeded are deleted with DeleteMessageBatch, the others are left for
/// SQS to deliver again after the visibility timeout (or to move to the dead-letter queue
/// after maxReceiveCount receives). Receives and invocations run concurrently.
///
/// At `max_wall` no new batch is received; invocations already running are awaited (their
/// function timeout bounds them) and their answers applied, so the pool stays usable.
pub async fn drive(
    sqs: &aws_sdk_sqs::Client,
    queue: &WorkQueue,
    lambdas: &[Lambda],
    options: &DriverOptions,
) -> DriverStats {
    assert!(
        (1..=10).contains(&options.batch_size),
        "batch_size {} is not 1-10",
        options.batch_size
    );
    assert!(!lambdas.is_empty(), "no Lambda to invoke");
    assert!(options.maximum_concurrency >= 1, "maximum_concurrency 0");
    let slots = options.maximum_concurrency.min(lambdas.len());
    let region = region_of(&queue.arn);
    let started = Instant::now();
    let deadline = tokio::time::Instant::from_std(started + options.max_wall);
    let mut stats = DriverStats::default();
    let mut free: Vec<usize> = (0..slots).rev().collect();
    let mut receiving: Option<Boxed<'_, Vec<Message>>> = None;
    let mut running: Vec<Boxed<'_, (usize, Vec<Message>, Value)>> = Vec::new();
    let mut sleep = Box::pin(tokio::time::sleep_until(deadline));
    let mut stopping = false;
    let mut idle = 0u32;

    // Bounded: every turn either receives (a 1 s long poll), applies an answer or reaches the
    // deadline, and no receive starts after it.
    loop {
        if !stopping && receiving.is_none() && !free.is_empty() {
            let request = sqs
                .receive_message()
                .queue_url(&queue.url)
                .max_number_of_messages(options.batch_size)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All");
            receiving = Some(Box::pin(async move {
                request
                    .send()
                    .await
                    .expect("ReceiveMessage (work queue)")
                    .messages
                    .unwrap_or_default()
            }));
            stats.polls += 1;
        }
        if receiving.is_none() && running.is_empty() {
            break;
        }
        let event = std::future::poll_fn(|cx| {
            if let Some(r) = receiving.as_mut()
                && let Poll::Ready(messages) = r.as_mut().poll(cx)
            {
                return Poll::Ready(Event::Received(messages));
            }
            for i in 0..running.len() {
                if let Poll::Ready((span, batch, answer)) = running[i].as_mut().poll(cx) {
                    drop(running.swap_remove(i));
                    return Poll::Ready(Event::Answered {
                        span,
                        batch,
                        answer,
                    });
                }
            }
            if !stopping && sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Deadline);
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::Deadline => {
                stopping = true;
                stats.timed_out = true;
                // A long poll under way is dropped; had it taken messages, they come back
                // after the visibility timeout, as from a poller that stopped.
                receiving = None;
            }
            Event::Received(messages) => {
                receiving = None;
                if messages.is_empty() {
                    stats.empty_polls += 1;
                    if running.is_empty() && depth_of(sqs, &queue.url).await.is_empty() {
                        idle += 1;
                        if idle >= options.idle_polls {
                            stopping = true;
                        }
                    } else {
                        idle = 0;
                    }
                    continue;
                }
                idle = 0;
                let lambda = free.pop().expect("a free slot when receiving");
                let span = stats.invocation_spans.len();
                let now = Instant::now();
                stats.invocations += 1;
                stats.messages_received += messages.len() as u64;
                for m in &messages {
                    stats.receipts.push(Receipt {
                        message_id: m.message_id.clone().unwrap_or_default(),
                        body: m.body.clone().unwrap_or_default(),
                        receive_count: m
                            .attributes
                            .as_ref()
                            .and_then(|a| {
                                a.get(&MessageSystemAttributeName::ApproximateReceiveCount)
                            })
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0),
                        at: now,
                        invocation: span,
                    });
                }
                stats.invocation_spans.push(InvocationSpan {
                    lambda,
                    start: now,
                    end: None,
                    messages: messages.len(),
                    outcome: None,
                });
                let event = serde_json::to_value(sqs_event(&messages, &queue.arn, &region))
                    .expect("SqsEvent serialises");
                let target = &lambdas[lambda];
                running.push(Box::pin(async move {
                    let answer = target.invoke(&event).await;
                    (span, messages, answer)
                }));
                stats.max_in_flight_invocations =
                    stats.max_in_flight_invocations.max(running.len());
            }
            Event::Answered {
                span,
                batch,
                answer,
            } => {
                let ids: Vec<String> = batch
                    .iter()
                    .map(|m| m.message_id.clone().unwrap_or_default())
                    .collect();
                let judgement = judge(&answer, &ids);
                let keep: Vec<String> = match &judgement {
                    Judgement::AllSucceeded => Vec::new(),
                    Judgement::PartialFailure(failed) => {
                        stats.batch_item_failures += failed.len() as u64;
                        failed.clone()
                    }
                    Judgement::FunctionError(_) => {
                        stats.function_errors += 1;
                        ids.clone()
                    }
                    Judgement::Invalid(_) => {
                        stats.invalid_responses += 1;
                        ids.clone()
                    }
                };
                let done: Vec<&Message> = batch
                    .iter()
                    .filter(|m| !keep.contains(m.message_id.as_ref().unwrap_or(&String::new())))
                    .collect();
                delete(sqs, &queue.url, &done, &mut stats).await;
                let record = &mut stats.invocation_spans[span];
                record.end = Some(Instant::now());
                record.outcome = Some(judgement);
                free.push(record.lambda);
            }
        }
    }
    stats.elapsed = started.elapsed();
    stats
}

async fn delete(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    messages: &[&Message],
    stats: &mut DriverStats,
) {
    for chunk in messages.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .build()
                    .expect("delete entry")
            })
            .collect();
        let output = sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("DeleteMessageBatch (work queue)");
        for ok in output.successful {
            let i: usize = ok.id[1..].parse().expect("our entry id");
            stats.deleted += 1;
            stats
                .deleted_ids
                .push(chunk[i].message_id.clone().unwrap_or_default());
        }
        stats.delete_failures += output.failed.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids() -> Vec<String> {
        vec!["a".to_owned(), "b".to_owned()]
    }

    #[test]
    fn the_documented_success_conditions_delete_the_whole_batch() {
        for answer in [
            json!(null),
            json!({}),
            json!({"batchItemFailures": []}),
            json!({"batchItemFailures": null}),
            json!({"statusCode": 200}),
        ] {
            assert_eq!(judge(&answer, &ids()), Judgement::AllSucceeded, "{answer}");
        }
    }

    #[test]
    fn a_partial_batch_response_leaves_the_listed_messages() {
        let answer =
            json!({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "b"}]});
        assert_eq!(
            judge(&answer, &ids()),
            Judgement::PartialFailure(vec!["b".to_owned()])
        );
    }

    #[test]
    fn the_documented_failure_conditions_fail_the_whole_batch() {
        for answer in [
            json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            json!({"batchItemFailures": [{"itemIdentifier": null}]}),
            json!({"batchItemFailures": [{"messageId": "a"}]}),
            json!({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "z"}]}),
            json!({"batchItemFailures": "a"}),
            json!({"batchItemFailures": ["a"]}),
            json!("ok"),
            json!([]),
        ] {
            assert!(
                matches!(judge(&answer, &ids()), Judgement::Invalid(_)),
                "{answer}"
            );
        }
    }

    #[test]
    fn an_error_document_is_a_function_error() {
        let answer = json!({"errorType": "Boom", "errorMessage": "crash"});
        assert_eq!(
            judge(&answer, &ids()),
            Judgement::FunctionError("Boom: crash".to_owned())
        );
    }

    #[test]
    fn the_event_has_the_documented_shape() {
        use aws_sdk_sqs::primitives::Blob;
        use aws_sdk_sqs::types::MessageAttributeValue;
        let message = Message::builder()
            .message_id("059f36b4-87a3-44ab-83d2-661975830a7d")
            .receipt_handle("AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a")
            .body("test")
            .md5_of_body("098f6bcd4621d373cade4e832627b4f6")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1545082649183")
            .attributes(
                MessageSystemAttributeName::SenderId,
                "AIDAIENQZJOLO23YVJ4VO",
            )
            .attributes(
                MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
                "1545082649185",
            )
            .message_attributes(
                "kind",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("image")
                    .build()
                    .unwrap(),
            )
            .message_attributes(
                "blob",
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(Blob::new(b"10".to_vec()))
                    .build()
                    .unwrap(),
            )
            .build();
        let arn = "arn:aws:sqs:us-east-2:123456789012:my-queue";
        let value = serde_json::to_value(sqs_event(&[message], arn, &region_of(arn))).unwrap();
        let record = &value["Records"][0];
        assert_eq!(record["messageId"], "059f36b4-87a3-44ab-83d2-661975830a7d");
        assert_eq!(
            record["receiptHandle"],
            "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a"
        );
        assert_eq!(record["body"], "test");
        assert_eq!(record["md5OfBody"], "098f6bcd4621d373cade4e832627b4f6");
        assert_eq!(record["eventSource"], "aws:sqs");
        assert_eq!(record["eventSourceARN"], arn);
        assert_eq!(record["awsRegion"], "us-east-2");
        assert_eq!(
            record["attributes"],
            json!({
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1545082649183",
                "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                "ApproximateFirstReceiveTimestamp": "1545082649185"
            })
        );
        assert_eq!(record["messageAttributes"]["kind"]["dataType"], "String");
        assert_eq!(record["messageAttributes"]["kind"]["stringValue"], "image");
        assert_eq!(record["messageAttributes"]["blob"]["binaryValue"], "MTA=");
        let back: SqsEvent = serde_json::from_value(value).unwrap();
        assert_eq!(back.records.len(), 1);
    }
}
