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
        for (chunk_index, chunk) in messages.chunks(BATCH).enumerate() {
            let first = chunk_index * BATCH;
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, message) in chunk.iter().enumerate() {
                if message.body.len() > MAX_BODY_BYTES {
                    refused.push((first + i, format!("body over {MAX_BODY_BYTES} bytes")));
                    continue;
                }
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id((first + i).to_string())
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
            if entries.is_empty() {
                continue;
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("SendMessageBatch", e))?;
            for failed in out.failed() {
                let index = failed.id().parse::<usize>().unwrap_or(usize::MAX);
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
