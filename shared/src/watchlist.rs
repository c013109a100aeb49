//! The long watch list (`PTC_WATCH_LIST_URL`): an S3 object or a file, read by prewarm and
//! health-metrics alike.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::objects::ObjectsApi;
use crate::reference::{ImageReference, ReferenceError};

/// Where a long watch list lives: one reference per line (`#` comments), or a JSON array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum WatchListSource {
    /// An S3 object, `s3://<bucket>/<key>`, read with [`ObjectsApi::get_text`] (at most 8 MiB).
    S3 {
        /// The bucket name: 3 to 63 lowercase letters, digits, `.` or `-`.
        bucket: String,
        /// The object key (not empty), e.g. `ptc/watch-list.txt`.
        key: String,
    },
    /// A local file (`file:///PATH` or a plain path), read whole.
    File(PathBuf),
}

impl WatchListSource {
    /// `s3://bucket/key`, `file:///path` or a path (surrounding whitespace ignored).
    ///
    /// The error says why not: `expected s3://BUCKET/KEY` (no `/` after the bucket), a bucket
    /// name that is not 3-63 characters of `[a-z0-9.-]`, an empty key, another scheme, or an
    /// empty path.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if let Some(rest) = value.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').ok_or("expected s3://BUCKET/KEY")?;
            let bucket_ok = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                });
            if !bucket_ok {
                return Err(format!("{bucket:?} is not an S3 bucket name"));
            }
            if key.is_empty() {
                return Err("the S3 key is empty".into());
            }
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            });
        }
        if value.contains("://") && !value.starts_with("file://") {
            return Err("expected s3://BUCKET/KEY, file:///PATH or a path".into());
        }
        let path = value.strip_prefix("file://").unwrap_or(value);
        if path.is_empty() {
            return Err("empty path".into());
        }
        Ok(Self::File(PathBuf::from(path)))
    }

    /// The entries of a watch list document: a JSON array of strings when the text starts
    /// with `[` (leading whitespace ignored), else one entry per line, trimmed, blank lines
    /// and lines starting with `#` dropped. Entries are not parsed here (see [`WatchEntry`]).
    pub fn entries(text: &str) -> Result<Vec<String>, String> {
        if text.trim_start().starts_with('[') {
            return serde_json::from_str::<Vec<String>>(text)
                .map_err(|e| format!("not a JSON array of strings: {e}"));
        }
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect())
    }
}

impl fmt::Display for WatchListSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Watch-list entries merged from several sources: trimmed, blank lines and `#` comments
/// dropped, and of the entries naming the same image (same normalised reference) only the
/// first kept. An entry that does not parse is kept once, on its text, to be reported.
#[derive(Default)]
pub struct Dedup {
    seen: BTreeSet<String>,
}

/// One watch-list entry: its text as written (trimmed) and what it parses to, parsed once
/// here for every later step (routing, pulling, reporting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEntry {
    /// The entry as written, trimmed, e.g. `nginx:1.25`: what reports show.
    pub input: String,
    /// What it parses to with [`ImageReference::parse`], or why it does not (an entry that does not
    /// parse is kept, to be reported).
    pub reference: Result<ImageReference, ReferenceError>,
}

impl WatchEntry {
    /// An entry from its text (trimmed), parsed.
    pub fn parse(input: &str) -> Self {
        let input = input.trim();
        Self {
            input: input.to_owned(),
            reference: ImageReference::parse(input),
        }
    }
}

impl Dedup {
    /// The entry to keep, trimmed and parsed; `None` for a blank, a comment or a repeat.
    pub fn admit(&mut self, input: &str) -> Option<WatchEntry> {
        let input = input.trim();
        if input.is_empty() || input.starts_with('#') {
            return None;
        }
        let entry = WatchEntry::parse(input);
        let key = entry
            .reference
            .as_ref()
            .map_or_else(|_| entry.input.clone(), |r| r.to_string());
        self.seen.insert(key).then_some(entry)
    }
}

/// The entries of the long watch list; the error names the source
/// (`watch list <source>: <why>`): a read that failed, an object over
/// [`crate::objects::MAX_OBJECT_BYTES`], text that is not UTF-8, a JSON array that is not of
/// strings. Entries come as [`WatchListSource::entries`] gives them, not yet deduplicated
/// ([`Dedup`]).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lists_come_from_s3_or_a_file() {
        let objects = crate::fakes::FakeObjects::default();
        objects.objects.lock().unwrap().insert(
            ("b".into(), "list.txt".into()),
            "nginx:1.25\n# c\nquay.io/a/b:1\n".into(),
        );
        let s3 = WatchListSource::S3 {
            bucket: "b".into(),
            key: "list.txt".into(),
        };
        assert_eq!(
            load(&objects, &s3).await.unwrap(),
            ["nginx:1.25", "quay.io/a/b:1"]
        );
        let missing = WatchListSource::S3 {
            bucket: "b".into(),
            key: "nope".into(),
        };
        assert!(
            load(&objects, &missing)
                .await
                .unwrap_err()
                .contains("s3://b/nope")
        );
        let dir = std::env::temp_dir().join(format!("ptc-list-{}", std::process::id()));
        std::fs::write(&dir, r#"["ghcr.io/x/y:1"]"#).unwrap();
        assert_eq!(
            load(&objects, &WatchListSource::File(dir.clone()))
                .await
                .unwrap(),
            ["ghcr.io/x/y:1"]
        );
        std::fs::remove_file(dir).unwrap();
    }

    #[test]
    fn dedup_keeps_the_first_of_each_image() {
        let mut d = Dedup::default();
        let kept: Vec<String> = [
            " nginx:1.25 ",
            "docker.io/library/nginx:1.25",
            "",
            "# note",
            "bad ref",
            "bad ref",
            "quay.io/a/b:1",
        ]
        .iter()
        .filter_map(|i| d.admit(i))
        .map(|e| e.input)
        .collect();
        assert_eq!(kept, ["nginx:1.25", "bad ref", "quay.io/a/b:1"]);
    }
}
