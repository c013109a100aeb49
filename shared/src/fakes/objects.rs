//! In-memory objects for tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{AwsError, AwsErrorKind};
use crate::objects::*;

/// In-memory objects for unit tests.
#[derive(Default)]
pub struct FakeObjects {
    /// (bucket, key) → text; a missing one answers `NoSuchKey` ([`AwsErrorKind::NotFound`]).
    pub objects: Mutex<BTreeMap<(String, String), String>>,
}

#[async_trait]
impl ObjectsApi for FakeObjects {
    async fn get_text(&self, bucket: &str, key: &str) -> Result<String, AwsError> {
        self.objects
            .lock()
            .unwrap()
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned()
            .ok_or_else(|| AwsError {
                operation: "GetObject",
                kind: AwsErrorKind::NotFound("NoSuchKey".into()),
                message: format!("s3://{bucket}/{key} does not exist"),
            })
    }

    async fn put_text(&self, bucket: &str, key: &str, text: &str) -> Result<(), AwsError> {
        if text.len() > MAX_OBJECT_BYTES {
            return Err(AwsError {
                operation: "PutObject",
                kind: AwsErrorKind::Service("InvalidObject".into()),
                message: format!("s3://{bucket}/{key} is too large"),
            });
        }
        self.objects
            .lock()
            .unwrap()
            .insert((bucket.to_owned(), key.to_owned()), text.to_owned());
        Ok(())
    }
}
