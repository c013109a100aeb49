//! The serialisable result of every run: one entry per item with its outcome.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Warning,
    Failed,
    /// Not attempted in this run (deadline, rate-limit budget); retried next run.
    Deferred,
}

/// One item of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry<T: Serialize> {
    /// What the entry is about: a reference, a prefix, a repository.
    pub item: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub detail: T,
}

/// A run's report: entries plus run-level errors (bad events, publishing failures).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report<T: Serialize> {
    pub job: &'static str,
    pub entries: Vec<Entry<T>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl<T: Serialize> Report<T> {
    pub fn new(job: &'static str) -> Self {
        Self {
            job,
            entries: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.entries.iter().filter(|e| e.outcome == outcome).count()
    }

    /// True when nothing failed (warnings and deferrals do not fail a run).
    pub fn succeeded(&self) -> bool {
        self.count(Outcome::Failed) == 0 && self.errors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize)]
    struct D {
        uri: String,
    }

    #[test]
    fn serialises_flat_entries_and_counts() {
        let mut report = Report::new("map");
        report.entries.push(Entry {
            item: "nginx".into(),
            outcome: Outcome::Ok,
            error: None,
            detail: D { uri: "u".into() },
        });
        report.entries.push(Entry {
            item: "X".into(),
            outcome: Outcome::Failed,
            error: Some("bad".into()),
            detail: D { uri: String::new() },
        });
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["entries"][0]["uri"], "u");
        assert_eq!(json["entries"][1]["outcome"], "failed");
        assert!(json["entries"][0].get("error").is_none());
        assert_eq!(report.count(Outcome::Failed), 1);
        assert!(!report.succeeded());
    }
}
