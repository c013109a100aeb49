//! Test data every crate's tests build the same way, written once.

use ptc_core::ecr::Repository;

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

/// The JSON file `tests/fixtures/<name>` of the crate at `manifest_dir` (its
/// `CARGO_MANIFEST_DIR`): recorded events and answers. Panics when it is missing or not JSON.
pub fn json(manifest_dir: &str, name: &str) -> serde_json::Value {
    let path = format!("{manifest_dir}/tests/fixtures/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}
