//! The aws-sdk adapter of the objects port ([`crate::objects`]): `GetObject` with a byte
//! range, so no answer larger than [`MAX_OBJECT_BYTES`] is read.

use std::sync::OnceLock;

use async_trait::async_trait;
use aws_sdk_s3::Client;

use crate::aws::AwsClients;
use crate::error::{AwsError, AwsErrorKind};
use crate::objects::*;

/// The S3 adapter of [`ObjectsApi`]: `GetObject` with `Range: bytes=0-<MAX_OBJECT_BYTES>`,
/// read chunk by chunk and refused past [`MAX_OBJECT_BYTES`]
/// (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html>).
pub struct SdkObjects {
    client: OnceLock<Client>,
    /// Where the client comes from when it is built on first use ([`SdkObjects::lazy`]).
    clients: Option<AwsClients>,
}

impl SdkObjects {
    /// The adapter on an S3 client (see [`crate::aws::AwsClients`]).
    pub fn new(client: Client) -> Self {
        Self {
            client: OnceLock::from(client),
            clients: None,
        }
    }

    /// The adapter with its S3 client built on first use: a function whose watch list is not
    /// in S3 never builds one (nothing at start-up for a client most runs do not need).
    pub fn lazy(clients: AwsClients) -> Self {
        Self {
            client: OnceLock::new(),
            clients: Some(clients),
        }
    }

    fn client(&self) -> &Client {
        self.client.get_or_init(|| {
            self.clients
                .as_ref()
                .expect("an SdkObjects without a client has the clients to build one")
                .s3()
        })
    }
}

fn invalid(message: String) -> AwsError {
    AwsError {
        operation: "GetObject",
        kind: AwsErrorKind::Service("InvalidObject".into()),
        message,
    }
}

#[async_trait]
impl ObjectsApi for SdkObjects {
    #[tracing::instrument(skip(self), err(Display))]
    async fn get_text(&self, bucket: &str, key: &str) -> Result<String, AwsError> {
        let out = self
            .client()
            .get_object()
            .bucket(bucket)
            .key(key)
            // One byte more than the limit: enough to tell a list too large, never more.
            .range(format!("bytes=0-{MAX_OBJECT_BYTES}"))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetObject", e))?;
        if out
            .content_length()
            .is_some_and(|l| l as usize > MAX_OBJECT_BYTES)
        {
            return Err(invalid(format!(
                "s3://{bucket}/{key} is larger than {MAX_OBJECT_BYTES} bytes"
            )));
        }
        // Read chunk by chunk and stop past the limit: an answer without a length (or with
        // a wrong one) cannot make the run read more.
        let mut body = out.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| invalid(format!("reading s3://{bucket}/{key}: {e}")))?
        {
            if bytes.len() + chunk.len() > MAX_OBJECT_BYTES {
                return Err(invalid(format!(
                    "s3://{bucket}/{key} is larger than {MAX_OBJECT_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        String::from_utf8(bytes)
            .map_err(|_| invalid(format!("s3://{bucket}/{key} is not UTF-8 text")))
    }

    #[tracing::instrument(skip(self, text), fields(bytes = text.len()), err(Display))]
    async fn put_text(&self, bucket: &str, key: &str, text: &str) -> Result<(), AwsError> {
        if text.len() > MAX_OBJECT_BYTES {
            return Err(AwsError {
                operation: "PutObject",
                ..invalid(format!(
                    "s3://{bucket}/{key}: {} bytes is more than the {MAX_OBJECT_BYTES} a read takes",
                    text.len()
                ))
            });
        }
        self.client()
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(aws_sdk_s3::primitives::ByteStream::from(
                text.as_bytes().to_vec(),
            ))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("PutObject", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::get_object::GetObjectOutput;
    use aws_smithy_mocks::{mock, mock_client};

    #[tokio::test]
    async fn reads_text_objects() {
        let rule = mock!(Client::get_object)
            .match_requests(|r| r.bucket() == Some("b") && r.key() == Some("watch-list.txt"))
            .then_output(|| {
                GetObjectOutput::builder()
                    .body(aws_sdk_s3::primitives::ByteStream::from_static(
                        b"nginx:1.25\n",
                    ))
                    .build()
            });
        let client = mock_client!(aws_sdk_s3, [&rule]);
        assert_eq!(
            SdkObjects::new(client)
                .get_text("b", "watch-list.txt")
                .await
                .unwrap(),
            "nginx:1.25\n"
        );
    }

    #[tokio::test]
    async fn rejects_binary_objects() {
        let rule = mock!(Client::get_object).then_output(|| {
            GetObjectOutput::builder()
                .body(aws_sdk_s3::primitives::ByteStream::from_static(&[
                    0xff, 0xfe, 0x00,
                ]))
                .build()
        });
        let client = mock_client!(aws_sdk_s3, [&rule]);
        let err = SdkObjects::new(client)
            .get_text("b", "k")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }
}
