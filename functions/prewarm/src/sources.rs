//! The watch list: the invocation payload, the settings, and discovery of the tags that
//! clusters pulled recently, merged and de-duplicated on the normalised reference.

use futures::StreamExt as _;
use ptc_core::ecr::EcrApi;
use ptc_core::reference::{ImageReference, ReferenceError};
use ptc_core::rules::RuleSet;
use serde::Serialize;
use time::OffsetDateTime;

/// Where a watch-list entry came from, in merge order (the first source to list an image
/// keeps it); serialised in lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The invocation's `{"images": [...]}`, or `ptc prewarm --image`.
    Payload,
    /// `PTC_WATCH_LIST` (or the config file's `watch_list`).
    Settings,
    /// The long list of `PTC_WATCH_LIST_URL`.
    Source,
    /// A tag pulled recently from a cached repository ([`discover`]).
    Discovery,
}

impl Origin {
    /// The origin's name as serialised (`payload`, `settings`, `source`, `discovery`).
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Payload => "payload",
            Origin::Settings => "settings",
            Origin::Source => "source",
            Origin::Discovery => "discovery",
        }
    }

    /// The origin of a name written by [`Origin::as_str`]; `payload` for any other text (a
    /// queued item's origin is informative only).
    pub fn from_name(name: &str) -> Self {
        match name {
            "settings" => Origin::Settings,
            "source" => Origin::Source,
            "discovery" => Origin::Discovery,
            _ => Origin::Payload,
        }
    }
}

/// One watch-list entry as written, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's text, trimmed.
    pub input: String,
    /// The input parsed (once, when the sources were merged).
    pub reference: Result<ImageReference, ReferenceError>,
    /// The source that listed it first.
    pub origin: Origin,
}

/// Merge sources in order, keeping the first of entries that normalise to the same
/// reference: registry, repository, tag and digest (`nginx:1.25` and
/// `docker.io/library/nginx:1.25` are one entry; `nginx` is `nginx:latest`). A tag that an
/// entry pins (`nginx:1.25@sha256:...`) is warmed by that entry alone, whatever the order:
/// a plain `nginx:1.25` of any source (discovery's, typically) is dropped, so the image is
/// pulled once per run and the pin is checked; a digest-only `nginx@sha256:...` for a digest
/// that a tagged entry pins is dropped the same way. Blank entries and `#` comments are dropped.
/// Entries that do not parse are kept (the job reports them) but deduplicated on their text.
pub fn merge(sources: impl IntoIterator<Item = (Origin, Vec<String>)>) -> Vec<Entry> {
    let mut dedup = ptc_core::watchlist::Dedup::default();
    let mut out = Vec::new();
    for (origin, inputs) in sources {
        out.extend(inputs.iter().filter_map(|i| dedup.admit(i)).map(|e| Entry {
            input: e.input,
            reference: e.reference,
            origin,
        }));
    }
    let pinned: std::collections::HashSet<(String, String, String)> = out
        .iter()
        .filter_map(|e| e.reference.as_ref().ok())
        .filter(|r| r.digest.is_some())
        .filter_map(|r| Some((r.registry.clone(), r.repository.clone(), r.tag.clone()?)))
        .collect();
    // A digest-only entry for a digest a tagged entry pins is that entry's image too.
    let pins: std::collections::HashSet<(String, String, String)> = out
        .iter()
        .filter_map(|e| e.reference.as_ref().ok())
        .filter(|r| r.tag.is_some())
        .filter_map(|r| {
            Some((
                r.registry.clone(),
                r.repository.clone(),
                r.digest.as_ref()?.to_string(),
            ))
        })
        .collect();
    out.retain(|e| match &e.reference {
        Ok(r) if r.digest.is_none() => r.tag.as_ref().is_none_or(|tag| {
            !pinned.contains(&(r.registry.clone(), r.repository.clone(), tag.clone()))
        }),
        Ok(r) if r.tag.is_none() => r.digest.as_ref().is_none_or(|digest| {
            !pins.contains(&(r.registry.clone(), r.repository.clone(), digest.to_string()))
        }),
        _ => true,
    });
    out
}

/// What discovery found: the references to warm, the listing of each repository it read (so
/// that the run does not ask ECR again), and the repositories it could not read.
#[derive(Default)]
pub struct Discovery {
    /// `registry/repository:tag` of every tag pulled within the window, sorted.
    pub references: Vec<String>,
    /// Repository name → its active images, as `DescribeImages` listed them.
    pub listings: std::collections::HashMap<String, Vec<ptc_core::ecr::ImageDetail>>,
    /// Repositories that could not be listed, as run-level errors.
    pub errors: Vec<String>,
}

/// Every tag of a cached repository (under a rule prefix; not one matched only by a ROOT
/// rule) pulled within `days`, as the upstream reference it came from. Repositories are
/// read concurrently; a repository that cannot be read is skipped with a warning in
/// `errors`.
///
/// `lastRecordedPullTime` counts every principal's pulls but those of the roles in ECR's
/// pull-time update exclusions: with prewarm's (and health-metrics') roles excluded, a tag
/// that only prewarm pulls leaves the list `days` after the last pull by anyone else (ECR
/// records a pull time at most about once a day).
pub async fn discover(
    ecr: &dyn EcrApi,
    rules: &RuleSet,
    days: u32,
    now: OffsetDateTime,
    concurrency: usize,
) -> Discovery {
    if days == 0 {
        return Discovery::default();
    }
    let since = now - time::Duration::days(i64::from(days));
    let repositories = match ecr.describe_repositories().await {
        Ok(r) => r,
        Err(err) => {
            return Discovery {
                errors: vec![format!("discovery: cannot list repositories: {err}")],
                ..Discovery::default()
            };
        }
    };
    // A repository matched only by a ROOT rule may be the account's own (every name matches
    // ROOT): discovering its tags would pull the account's images from the upstream.
    let cached: Vec<_> = repositories
        .into_iter()
        .filter(|repo| {
            rules
                .rule_for_repository(&repo.name)
                .is_some_and(|rule| !rule.prefix.is_root())
        })
        .filter_map(|repo| rules.upstream_of(&repo.name).ok().map(|up| (repo.name, up)))
        .collect();
    let results: Vec<_> = futures::stream::iter(cached)
        .map(|(name, up)| async move { (ecr.describe_images(&name).await, name, up) })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut out = Discovery::default();
    for (images, name, up) in results {
        match images {
            Ok(images) => {
                for image in images
                    .iter()
                    .filter(|i| i.last_pulled_at.is_some_and(|t| t >= since))
                {
                    for tag in &image.tags {
                        out.references
                            .push(format!("{}/{}:{tag}", up.registry, up.repository));
                    }
                }
                out.listings.insert(name, images);
            }
            // Deleted since the listing: nothing to discover there, not a failure.
            Err(err) if err.is_repository_gone() => {}
            Err(err) => out
                .errors
                .push(format!("discovery: cannot read repository {name}: {err}")),
        }
    }
    out.references.sort();
    out
}

#[cfg(test)]
mod tests {
    use ptc_core::ecr::ImageDetail;
    use ptc_core::fakes::FakeEcr;
    use ptc_core::rules::PtcRule;

    use super::*;

    #[test]
    fn merges_and_deduplicates_on_the_normalised_reference() {
        let entries = merge([
            (Origin::Payload, vec!["nginx:1.25".into(), "bad ref".into()]),
            (
                Origin::Settings,
                vec![
                    "docker.io/library/nginx:1.25".into(),
                    "# comment".into(),
                    "".into(),
                    "quay.io/a/b:1".into(),
                ],
            ),
            (
                Origin::Discovery,
                vec![
                    "registry-1.docker.io/library/nginx:1.25".into(),
                    "bad ref".into(),
                ],
            ),
        ]);
        let inputs: Vec<_> = entries
            .iter()
            .map(|e| (e.input.as_str(), e.origin))
            .collect();
        assert_eq!(
            inputs,
            [
                ("nginx:1.25", Origin::Payload),
                ("bad ref", Origin::Payload),
                ("quay.io/a/b:1", Origin::Settings)
            ]
        );
    }

    /// Issue 18, measured: discovery added `ghcr.io/fluxcd/source-controller:v1.2.4` next to the
    /// watch list's digest-pinned entry for the same tag, and the image was pulled twice a
    /// run. The pinned entry wins whatever the order; other tags and pins stay.
    #[test]
    fn a_pinned_entry_takes_the_place_of_the_same_tag_unpinned() {
        let pin = format!("sha256:{}", "ab".repeat(32));
        let other_pin = format!("sha256:{}", "cd".repeat(32));
        let entries = merge([
            (
                Origin::Payload,
                vec!["ghcr.io/fluxcd/source-controller:v1.2.4".into()],
            ),
            (
                Origin::Settings,
                vec![
                    format!("ghcr.io/fluxcd/source-controller:v1.2.4@{pin}"),
                    format!("ghcr.io/fluxcd/source-controller:v1.2.3@{other_pin}"),
                ],
            ),
            (
                Origin::Discovery,
                vec![
                    "ghcr.io/fluxcd/source-controller:v1.2.4".into(),
                    "ghcr.io/fluxcd/source-controller:v1.2.5".into(),
                    format!("ghcr.io/fluxcd/source-controller@{pin}"),
                    format!("ghcr.io/fluxcd/helm-controller@{pin}"),
                ],
            ),
        ]);
        let inputs: Vec<_> = entries.iter().map(|e| e.input.as_str()).collect();
        assert_eq!(
            inputs,
            [
                format!("ghcr.io/fluxcd/source-controller:v1.2.4@{pin}").as_str(),
                format!("ghcr.io/fluxcd/source-controller:v1.2.3@{other_pin}").as_str(),
                "ghcr.io/fluxcd/source-controller:v1.2.5",
                format!("ghcr.io/fluxcd/helm-controller@{pin}").as_str(),
            ]
        );
    }

    #[tokio::test]
    async fn discovery_finds_recently_pulled_tags_under_rule_prefixes() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let rules = RuleSet::new(vec![
            PtcRule::new("docker-hub", "registry-1.docker.io").unwrap(),
        ]);
        let fake = FakeEcr::default();
        {
            let mut state = fake.state.lock().unwrap();
            for name in ["docker-hub/library/nginx", "team/app"] {
                state
                    .repositories
                    .push(ptc_tests::fixtures::repository(name));
            }
            let image = |tags: &[&str], pulled_days_ago: Option<i64>| ImageDetail {
                last_pulled_at: pulled_days_ago.map(|d| now - time::Duration::days(d)),
                ..ptc_tests::fixtures::image(
                    &format!("sha256:{}", tags.join("")),
                    tags,
                    ptc_core::ecr::ImageStatus::Active,
                )
            };
            state.images.insert(
                "docker-hub/library/nginx".into(),
                vec![
                    image(&["1.25", "1"], Some(1)),
                    image(&["1.24"], Some(30)),
                    image(&["old"], None),
                ],
            );
            state
                .images
                .insert("team/app".into(), vec![image(&["v1"], Some(0))]);
        }
        let found = discover(&fake, &rules, 7, now, 4).await;
        let (refs, errors) = (found.references, found.errors);
        assert!(errors.is_empty());
        assert_eq!(
            found.listings["docker-hub/library/nginx"].len(),
            3,
            "the repository's listing is kept for the run"
        );
        assert_eq!(
            refs,
            [
                "registry-1.docker.io/library/nginx:1",
                "registry-1.docker.io/library/nginx:1.25"
            ]
        );
        assert_eq!(
            discover(&fake, &rules, 0, now, 4).await.references,
            Vec::<String>::new()
        );
        // Under a ROOT rule every name matches: team/app may be the account's own
        // repository, and is not discovered (its images would be pulled from Docker Hub).
        let with_root = RuleSet::new(vec![
            PtcRule::new("docker-hub", "registry-1.docker.io").unwrap(),
            PtcRule::new("ROOT", "quay.io").unwrap(),
        ]);
        let refs = discover(&fake, &with_root, 7, now, 4).await.references;
        assert!(refs.iter().all(|r| !r.contains("team/app")), "{refs:?}");
        assert_eq!(refs.len(), 2);
    }
}
