//! The long watch list (`PTC_WATCH_LIST_URL`): an S3 object or a file, read by prewarm and
//! health-metrics alike.

use crate::config::WatchListSource;
use crate::objects::ObjectsApi;

/// The entries of the long watch list; the error names the source.
pub async fn load(
    objects: &dyn ObjectsApi,
    source: &WatchListSource,
) -> Result<Vec<String>, String> {
    let text = match source {
        WatchListSource::S3 { bucket, key } => objects
            .get_text(bucket, key)
            .await
            .map_err(|e| e.to_string()),
        WatchListSource::File(path) => tokio::fs::read_to_string(path)
            .await
            .map_err(|e| e.to_string()),
    }
    .map_err(|e| format!("watch list {source}: {e}"))?;
    WatchListSource::entries(&text).map_err(|e| format!("watch list {source}: {e}"))
}
