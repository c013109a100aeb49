//! `ptc map`: upstream references → cached image URIs.

use ptc_core::reference::ImageReference;
use ptc_core::rules::RuleSet;
use serde::Serialize;

/// One line of `ptc map`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapping {
    /// As the user wrote it.
    pub reference: String,
    pub repository: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub uri: Option<String>,
    pub error: Option<String>,
}

impl Mapping {
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
}

/// Map every reference; a bad one gets its error and the rest go on.
pub fn map_references<'a>(
    rules: &RuleSet,
    registry_host: &str,
    references: impl IntoIterator<Item = &'a str>,
) -> Vec<Mapping> {
    references
        .into_iter()
        .map(|input| {
            let routed = ImageReference::parse(input)
                .map_err(|e| e.to_string())
                .and_then(|r| rules.route(&r).map_err(|e| e.to_string()));
            match routed {
                Ok(cached) => Mapping {
                    reference: input.to_owned(),
                    uri: Some(cached.uri(registry_host)),
                    repository: Some(cached.repository),
                    tag: cached.tag,
                    digest: cached.digest.map(|d| d.to_string()),
                    error: None,
                },
                Err(error) => Mapping {
                    reference: input.to_owned(),
                    repository: None,
                    tag: None,
                    digest: None,
                    uri: None,
                    error: Some(error),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use ptc_core::rules::PtcRule;

    use super::*;

    #[test]
    fn maps_good_references_and_reports_bad_ones() {
        let rules = RuleSet::new(vec![
            PtcRule::new("docker-hub", "registry-1.docker.io").unwrap(),
            PtcRule::new("quay", "quay.io").unwrap(),
        ]);
        let out = map_references(
            &rules,
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            ["nginx:1.25", "gcr.io/x/y", "Bad", "quay.io/a/b"],
        );
        assert_eq!(
            out[0].uri.as_deref(),
            Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/library/nginx:1.25")
        );
        assert_eq!(
            out[0].repository.as_deref(),
            Some("docker-hub/library/nginx")
        );
        assert!(out[1].error.as_deref().unwrap().contains("not supported"));
        assert!(out[2].error.as_deref().unwrap().contains("lowercase"));
        assert_eq!(out[3].tag.as_deref(), Some("latest"));
        assert_eq!(out.iter().filter(|m| m.failed()).count(), 2);
    }
}
