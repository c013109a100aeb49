//! Test data every crate's tests build the same way, written once.

use ptc_core::ecr::{ImageDetail, ImageStatus, Repository};

/// A repository as `DescribeRepositories` lists it: its name, its ARN in account
/// 123456789012 of us-east-1, mutable tags, no scan on push, no URI or creation time.
pub fn repository(name: &str) -> Repository {
    Repository {
        name: name.into(),
        arn: format!("arn:aws:ecr:us-east-1:123456789012:repository/{name}"),
        uri: String::new(),
        created_at: None,
        tag_mutability: "MUTABLE".into(),
        tag_mutability_exclusions: Vec::new(),
        scan_on_push: false,
    }
}

/// An image as `DescribeImages` lists it: its digest, tags and status, nothing else known
/// (no size, dates or media type).
pub fn image(digest: &str, tags: &[&str], status: ImageStatus) -> ImageDetail {
    ImageDetail {
        digest: digest.into(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        size_bytes: None,
        pushed_at: None,
        last_pulled_at: None,
        media_type: None,
        status,
        last_archived_at: None,
        last_activated_at: None,
    }
}

/// The JSON file `tests/fixtures/<name>` of the crate at `manifest_dir` (its
/// `CARGO_MANIFEST_DIR`): recorded events and answers. Panics when it is missing or not JSON.
pub fn json(manifest_dir: &str, name: &str) -> serde_json::Value {
    let path = format!("{manifest_dir}/tests/fixtures/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}
