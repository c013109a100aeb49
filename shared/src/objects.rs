//! The objects port: documents the jobs read from S3 (a long watch list), bounded in size.
//! Adapter: [`crate::aws::s3`]; fake: `crate::fakes::objects`.

use async_trait::async_trait;

use crate::error::AwsError;

/// Largest object read: a watch list of tens of thousands of references fits easily.
pub const MAX_OBJECT_BYTES: usize = 8 * 1024 * 1024;

#[async_trait]
pub trait ObjectsApi: Send + Sync {
    async fn get_text(&self, bucket: &str, key: &str) -> Result<String, AwsError>;
}
