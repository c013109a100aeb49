//! A Lambda function for testing the SQS event source mapping driver (`ptc_tests::queue`).
//!
//! It takes the event as `aws_lambda_events::event::sqs::SqsEvent` and fails the invocation
//! (errorType `EventShape`) when the event does not have the shape Lambda's SQS event source
//! sends (<https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html>). Then, per record body:
//! - `fail`: reported as a batch item failure;
//! - `crash`: the whole invocation errors (errorType `Crash`);
//! - `sleep:MS`: sleeps MS milliseconds, then succeeds;
//! - anything else succeeds.
//!
//! A body `answer:KIND` sets the whole answer instead, to exercise the partial-batch rules:
//! `null`, `empty` (`{}`), `bad-id` (an itemIdentifier not in the batch), `empty-id`
//! (`""`), `null-id` (null), `bad-key` (`messageId` instead of `itemIdentifier`).

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

fn shape_error(event: &SqsEvent) -> Option<String> {
    if event.records.is_empty() {
        return Some("no Records".to_owned());
    }
    for record in &event.records {
        let missing = [
            ("messageId", record.message_id.as_deref()),
            ("receiptHandle", record.receipt_handle.as_deref()),
            ("body", record.body.as_deref()),
            ("md5OfBody", record.md5_of_body.as_deref()),
            ("eventSourceARN", record.event_source_arn.as_deref()),
            ("awsRegion", record.aws_region.as_deref()),
        ]
        .into_iter()
        .find(|(_, v)| v.is_none_or(str::is_empty));
        if let Some((name, _)) = missing {
            return Some(format!("a record without {name}"));
        }
        if record.event_source.as_deref() != Some("aws:sqs") {
            return Some(format!("eventSource {:?}", record.event_source));
        }
        if !record
            .event_source_arn
            .as_deref()
            .is_some_and(|a| a.starts_with("arn:aws:sqs:"))
        {
            return Some(format!("eventSourceARN {:?}", record.event_source_arn));
        }
        for name in [
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
        ] {
            if record.attributes.get(name).is_none_or(|v| v.is_empty()) {
                return Some(format!("attributes without {name}"));
            }
        }
        for (name, attribute) in &record.message_attributes {
            if attribute.data_type.is_none() {
                return Some(format!("message attribute {name} without dataType"));
            }
        }
    }
    None
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let sqs: SqsEvent = serde_json::from_value(event.payload)
        .map_err(|e| Error::from(format!("EventShape: not an SqsEvent: {e}")))?;
    if let Some(problem) = shape_error(&sqs) {
        return Err(Error::from(format!("EventShape: {problem}")));
    }
    let id_of = |i: usize| sqs.records[i].message_id.clone().unwrap_or_default();
    let bodies: Vec<&str> = sqs
        .records
        .iter()
        .map(|r| r.body.as_deref().unwrap_or_default())
        .collect();
    if bodies.contains(&"crash") {
        return Err(Error::from("Crash: a record asked to crash"));
    }
    if let Some(kind) = bodies.iter().find_map(|b| b.strip_prefix("answer:")) {
        return Ok(match kind {
            "null" => Value::Null,
            "empty" => json!({}),
            "bad-id" => json!({"batchItemFailures": [{"itemIdentifier": "no-such-message"}]}),
            "empty-id" => json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            "null-id" => json!({"batchItemFailures": [{"itemIdentifier": null}]}),
            "bad-key" => json!({"batchItemFailures": [{"messageId": id_of(0)}]}),
            other => return Err(Error::from(format!("unknown answer kind {other}"))),
        });
    }
    let mut failures = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        if let Some(ms) = body.strip_prefix("sleep:") {
            let ms: u64 = ms.parse()?;
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        } else if *body == "fail" {
            failures.push(json!({"itemIdentifier": id_of(i)}));
        }
    }
    Ok(json!({"batchItemFailures": failures}))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .init();
    lambda_runtime::run(service_fn(handle)).await
}
