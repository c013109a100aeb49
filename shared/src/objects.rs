//! The objects port: documents the jobs read from S3 (a long watch list), bounded in size.
//! Adapter: [`crate::aws::s3`]; fake: `crate::fakes::objects`.

use async_trait::async_trait;

use crate::error::AwsError;

/// Largest object read, in bytes (8 MiB): a watch list of tens of thousands of references
/// fits easily.
pub const MAX_OBJECT_BYTES: usize = 8 * 1024 * 1024;

/// Reading a text document from an object store. Adapter: [`crate::aws::SdkObjects`]; fake:
/// `crate::fakes::FakeObjects` (feature `fakes`).
#[async_trait]
pub trait ObjectsApi: Send + Sync {
    /// The object `s3://<bucket>/<key>` as UTF-8 text, at most [`MAX_OBJECT_BYTES`] bytes
    /// (`GetObject` with a byte range:
    /// <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html>). A larger object, or
    /// one that is not UTF-8, is
    /// [`AwsErrorKind::Service`](crate::error::AwsErrorKind::Service)`("InvalidObject")`; a missing
    /// key is the service's `NoSuchKey`.
    async fn get_text(&self, bucket: &str, key: &str) -> Result<String, AwsError>;
    /// Write `text` as the object `s3://<bucket>/<key>` (`PutObject`, `Content-Type:
    /// application/json`; encrypted by the bucket's default encryption, so a bucket that
    /// requires SSE-KMS works too), replacing what was there
    /// (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html>). Text longer
    /// than [`MAX_OBJECT_BYTES`] is refused before any call
    /// ([`AwsErrorKind::Service`](crate::error::AwsErrorKind::Service)`("InvalidObject")`), so
    /// that what is written can be read back.
    async fn put_text(&self, bucket: &str, key: &str, text: &str) -> Result<(), AwsError>;
}
