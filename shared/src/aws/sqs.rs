//! The aws-sdk adapter of the queue port ([`crate::queue::QueueApi`]): `SendMessageBatch` and
//! `GetQueueAttributes`.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};

use crate::error::{AwsError, AwsErrorKind};
use crate::queue::{MAX_BODY_BYTES, MAX_DELAY_SECS, Outgoing, QueueApi, QueueDepth};

/// SQS's most entries per `SendMessageBatch`
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html>).
const BATCH: usize = 10;

/// The SQS adapter of [`QueueApi`].
pub struct SdkQueue {
    client: Client,
}

impl SdkQueue {
    /// The adapter on an SQS client (see [`crate::aws::AwsClients::sqs`]).
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl QueueApi for SdkQueue {
    #[tracing::instrument(skip(self, messages), fields(messages = messages.len()), err(Display))]
    async fn send(
        &self,
        queue_url: &str,
        messages: &[Outgoing],
    ) -> Result<Vec<(usize, String)>, AwsError> {
        let mut refused = Vec::new();
        // Calls of at most 10 messages and MAX_BODY_BYTES in all ("the maximum total payload
        // size (the sum of the individual lengths of all of the batched messages)").
        let mut calls: Vec<Vec<usize>> = Vec::new();
        let mut bytes = 0;
        for (index, message) in messages.iter().enumerate() {
            if message.body.len() > MAX_BODY_BYTES {
                refused.push((index, format!("body over {MAX_BODY_BYTES} bytes")));
                continue;
            }
            match calls.last_mut() {
                Some(call)
                    if call.len() < BATCH && bytes + message.body.len() <= MAX_BODY_BYTES =>
                {
                    call.push(index);
                    bytes += message.body.len();
                }
                _ => {
                    calls.push(vec![index]);
                    bytes = message.body.len();
                }
            }
        }
        // Every call is made: one that fails leaves its messages refused (they may or may not
        // be in the queue) and the next calls go on.
        for call in calls {
            let mut entries = Vec::with_capacity(call.len());
            for index in &call {
                let message = &messages[*index];
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .message_body(&message.body)
                        .delay_seconds(message.delay_secs.min(MAX_DELAY_SECS) as i32)
                        .build()
                        .map_err(|e| AwsError {
                            operation: "SendMessageBatch",
                            kind: AwsErrorKind::Service("InvalidRequest".into()),
                            message: e.to_string(),
                        })?,
                );
            }
            match self
                .client
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    for failed in out.failed() {
                        // An id this call did not send is ignored (an answer to distrust).
                        let Some(index) = failed
                            .id()
                            .parse::<usize>()
                            .ok()
                            .filter(|i| call.contains(i))
                        else {
                            continue;
                        };
                        refused.push((
                            index,
                            format!(
                                "{}: {}",
                                failed.code(),
                                failed.message().unwrap_or_default()
                            ),
                        ));
                    }
                }
                Err(err) => {
                    let err = AwsError::from_sdk("SendMessageBatch", err).to_string();
                    refused.extend(call.iter().map(|i| (*i, err.clone())));
                }
            }
        }
        refused.sort();
        Ok(refused)
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn depth(&self, queue_url: &str) -> Result<QueueDepth, AwsError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetQueueAttributes", e))?;
        let attributes = out.attributes();
        let number = |name: QueueAttributeName| {
            attributes
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(QueueDepth {
            visible: number(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: number(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }
}
