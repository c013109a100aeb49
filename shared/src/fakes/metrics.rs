//! In-memory metrics for tests: every datum published, in order.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::AwsError;
use crate::metrics::*;

/// Records what would have been published.
#[derive(Default)]
pub struct FakeMetrics {
    /// Every datum published, in order, with its namespace.
    pub published: Mutex<Vec<(String, MetricDatum)>>,
    /// When set, every `put` answers this error and records nothing.
    pub fail: Mutex<Option<AwsError>>,
}

#[async_trait]
impl MetricsApi for FakeMetrics {
    async fn put(&self, namespace: &str, data: &[MetricDatum]) -> Result<usize, AwsError> {
        if let Some(err) = self.fail.lock().unwrap().clone() {
            return Err(err);
        }
        let mut published = self.published.lock().unwrap();
        published.extend(data.iter().map(|d| (namespace.to_owned(), d.clone())));
        Ok(batches(data).len())
    }
}
