//! Watch-list coverage and outage readiness: would each watched image still pull if its
//! upstream went down right now? Only what ECR already holds, active, can be served then: the
//! tag (or the pinned digest) and, for a multi-platform image, the manifest of each wanted
//! platform. An archived image is held but cannot be pulled ("Requests to pull the archived
//! image will fail with a 404 error",
//! <https://docs.aws.amazon.com/AmazonECR/latest/userguide/archive-image.html>), so it is never
//! ready.

use std::collections::BTreeMap;

use ptc_core::ecr::{EcrApi, ImageDetail};
use ptc_core::oci::{Manifest, ManifestKind};
use ptc_core::platform::Platform;
use ptc_core::rules::RuleSet;
use ptc_core::watchlist::WatchEntry;
use serde::Serialize;

use crate::inventory::is_index;

/// Whether a watched image would pull with its upstream down (serialised in kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Readiness {
    /// The tag (or pinned digest) and every wanted platform are cached.
    Ready,
    /// The cache does not hold the tag or digest: a pull needs the upstream.
    NotCached,
    /// The index is cached but a wanted platform's manifest is not (or is archived).
    PlatformMissing,
    /// The tag (or pinned digest) is in the cache but archived (`ARCHIVED`, or `ACTIVATING`:
    /// being restored): a pull fails until it is restored, so it is neither cached nor ready.
    Archived,
    /// The cache could not be read for this image; counted as not ready.
    Unknown,
    /// The entry is not a reference the cache can serve (reported, not counted).
    Invalid,
    /// Cached and pullable by the cache account, but a consumer of its prefix (a pull grant of
    /// the settings: `PTC_PULL_PRINCIPALS`, `PTC_PULL_ORG_ID`) may not pull it, or the cache
    /// account's policies do not say that it may (the reason names the consumer and the
    /// statement). Set by `ptc health --outage`, which reads the policies of the cached
    /// repositories; the health-metrics job itself never reads a policy, so never sets it.
    ConsumersCannotPull,
}

/// One watch-list entry, assessed. Optional fields are left out of the JSON when absent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchItem {
    /// The entry as written (trimmed).
    pub image: String,
    /// The ECR repository that would serve it (`docker-hub/library/nginx`); absent for an
    /// invalid entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The rule prefix that serves it; absent for an invalid entry. Its `Prefix` dimension
    /// for `WatchListImages`, `WatchListCoverage` and `OutageExposedImages`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The upstream registry the rule pulls from (`quay.io`, `registry-1.docker.io`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The assessment.
    pub state: Readiness,
    /// Why it is not ready, or why it is invalid; absent when ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Wanted platforms the image is not published for (not held against it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl WatchItem {
    /// Is the tag or digest in the cache, pullable (whatever its platforms)? An archived image
    /// is not.
    pub fn cached(&self) -> bool {
        matches!(
            self.state,
            Readiness::Ready | Readiness::PlatformMissing | Readiness::ConsumersCannotPull
        )
    }

    /// Does this image depend on its upstream being up?
    pub fn exposed(&self) -> bool {
        matches!(
            self.state,
            Readiness::NotCached
                | Readiness::PlatformMissing
                | Readiness::Archived
                | Readiness::Unknown
                | Readiness::ConsumersCannotPull
        )
    }
}

/// What the cache holds, from the inventory: images per repository, and the repositories
/// that could not be read.
pub struct CacheView<'a> {
    /// Every repository's `DescribeImages` answer with every image status, by repository
    /// name: only an image whose [`ImageDetail::status`] is pullable can serve a pull. A
    /// repository not here (nor in `unreadable`) does not exist: nothing pulled it through
    /// the cache yet.
    pub images: &'a BTreeMap<String, Vec<ImageDetail>>,
    /// The repositories whose images could not be listed, with the error: their entries
    /// are [`Readiness::Unknown`].
    pub unreadable: &'a BTreeMap<String, String>,
}

/// Assess one watch-list entry against the cache: invalid when it does not parse or no
/// rule serves it; then the pinned digest, else the tag, must be cached and active (an
/// archived one is [`Readiness::Archived`]); for an index, one `BatchGetImage` reads the
/// cached index, and each of `platforms` it lists must have its manifest cached and active.
/// Never fails: a call that fails makes the entry [`Readiness::Unknown`].
pub async fn assess(
    ecr: &dyn EcrApi,
    rules: &RuleSet,
    cache: &CacheView<'_>,
    platforms: &[Platform],
    entry: &WatchEntry,
) -> WatchItem {
    let mut item = WatchItem {
        image: entry.input.clone(),
        repository: None,
        prefix: None,
        upstream: None,
        state: Readiness::Invalid,
        reason: None,
        notes: Vec::new(),
    };
    let reference = match &entry.reference {
        Ok(r) => r.clone(),
        Err(err) => {
            item.reason = Some(err.to_string());
            return item;
        }
    };
    let cached = match rules.route(&reference) {
        Ok(c) => c,
        Err(err) => {
            item.reason = Some(err.to_string());
            return item;
        }
    };
    let repository = cached.repository.clone();
    item.repository = Some(repository.clone());
    item.prefix = Some(cached.prefix.to_string());
    item.upstream = rules
        .rule_for_repository(&repository)
        .map(|r| r.upstream_url.clone());
    if let Some(err) = cache.unreadable.get(&repository) {
        item.state = Readiness::Unknown;
        item.reason = Some(format!("repository {repository} could not be read: {err}"));
        return item;
    }
    let Some(images) = cache.images.get(&repository) else {
        item.state = Readiness::NotCached;
        item.reason = Some(format!(
            "repository {repository} does not exist: never pulled through the cache"
        ));
        return item;
    };
    // A runtime pulls a pinned reference by digest, anything else by tag.
    let found = match (&cached.digest, &cached.tag) {
        (Some(digest), _) => images.iter().find(|i| i.digest == digest.as_str()),
        (None, Some(tag)) => images.iter().find(|i| i.tags.iter().any(|t| t == tag)),
        (None, None) => None,
    };
    let Some(image) = found else {
        item.state = Readiness::NotCached;
        item.reason = Some(match (&cached.digest, &cached.tag) {
            (Some(d), _) => format!("digest {d} is not cached"),
            (None, Some(t)) => format!("tag {t} is not cached"),
            _ => "nothing to look for".into(),
        });
        return item;
    };
    if !image.status.is_pullable() {
        item.state = Readiness::Archived;
        let since = image
            .last_archived_at
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .map(|t| format!(" since {t}"))
            .unwrap_or_default();
        item.reason = Some(format!(
            "{} is {}{since}: an archived image cannot be pulled until it is restored",
            image.digest, image.status
        ));
        return item;
    }
    if !is_index(image.media_type.as_deref()) {
        item.state = Readiness::Ready;
        return item;
    }
    // An index: each wanted platform's manifest must be cached too.
    let manifest = match ecr.image_manifest(&repository, &image.digest).await {
        Ok(Some((media_type, body))) => Manifest::parse(
            &format!("ecr://{repository}@{}", image.digest),
            Some(&media_type),
            body.into_bytes(),
            None,
        )
        .map_err(|e| e.to_string()),
        Ok(None) => Err(format!(
            "BatchGetImage returned no manifest for {}",
            image.digest
        )),
        Err(err) => Err(err.to_string()),
    };
    let manifest = match manifest {
        Ok(m) => m,
        Err(err) => {
            item.state = Readiness::Unknown;
            item.reason = Some(format!("cannot read the cached index: {err}"));
            return item;
        }
    };
    if !matches!(manifest.kind, ManifestKind::Index(_)) {
        item.state = Readiness::Ready;
        return item;
    }
    let mut missing = Vec::new();
    for platform in platforms {
        match manifest.platform_entry(platform) {
            Some(entry) => match images.iter().find(|i| i.digest == entry.digest.as_str()) {
                None => missing.push(format!("{platform} ({})", entry.digest)),
                Some(child) if !child.status.is_pullable() => {
                    missing.push(format!("{platform} ({}, {})", entry.digest, child.status))
                }
                Some(_) => {}
            },
            None => item
                .notes
                .push(format!("the image is not published for {platform}")),
        }
    }
    if missing.is_empty() {
        item.state = Readiness::Ready;
    } else {
        item.state = Readiness::PlatformMissing;
        item.reason = Some(format!("not cached: {}", missing.join(", ")));
    }
    item
}

/// The watch list per upstream: what would fail if that upstream went down now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpstreamReadiness {
    /// The upstream registry host (`registry-1.docker.io`, `quay.io`, ...).
    pub upstream: String,
    /// The rule prefixes of its watched entries, in first-seen order.
    pub prefixes: Vec<String>,
    /// Valid watch-list entries served through this upstream.
    pub watched: usize,
    /// Of those, the ones that would still pull ([`Readiness::Ready`]).
    pub ready: usize,
    /// The images that would fail to pull, with the reason.
    pub exposed: Vec<WatchItem>,
}

/// Group the assessed entries by upstream, ordered by upstream host; entries without an
/// upstream (invalid ones) are left out.
pub fn by_upstream(items: &[WatchItem]) -> Vec<UpstreamReadiness> {
    let mut out: BTreeMap<String, UpstreamReadiness> = BTreeMap::new();
    for item in items {
        let Some(upstream) = &item.upstream else {
            continue;
        };
        let entry = out
            .entry(upstream.clone())
            .or_insert_with(|| UpstreamReadiness {
                upstream: upstream.clone(),
                prefixes: Vec::new(),
                watched: 0,
                ready: 0,
                exposed: Vec::new(),
            });
        if let Some(prefix) = &item.prefix
            && !entry.prefixes.contains(prefix)
        {
            entry.prefixes.push(prefix.clone());
        }
        entry.watched += 1;
        if item.exposed() {
            entry.exposed.push(item.clone());
        } else {
            entry.ready += 1;
        }
    }
    out.into_values().collect()
}

/// Does `name` (as a user writes it: `quay.io`, `docker.io`, `ghcr.io`) mean `upstream`?
pub fn names_upstream(name: &str, upstream: &str) -> bool {
    let name = name.trim().trim_end_matches('/').to_ascii_lowercase();
    let docker = ["docker.io", "index.docker.io", "registry-1.docker.io"];
    name == upstream || (docker.contains(&name.as_str()) && docker.contains(&upstream))
}

#[cfg(test)]
mod tests {
    use ptc_core::ecr::ImageStatus;
    use ptc_core::fakes::FakeEcr;
    use ptc_core::rules::PtcRule;
    use serde_json::json;

    use super::*;

    fn detail(digest: &str, tags: &[&str], media: &str) -> ImageDetail {
        ImageDetail {
            digest: digest.into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            size_bytes: Some(10),
            pushed_at: None,
            last_pulled_at: None,
            media_type: Some(media.into()),
            status: ImageStatus::Active,
            last_archived_at: None,
            last_activated_at: None,
        }
    }

    fn digest(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    /// An archived tag, pinned digest or platform manifest is never ready nor cached: a pull
    /// of it fails until it is restored.
    #[tokio::test]
    async fn an_archived_image_is_never_ready() {
        let rules = RuleSet::new(vec![PtcRule::new("quay", "quay.io").unwrap()]);
        let manifest = "application/vnd.oci.image.manifest.v1+json";
        let index_type = "application/vnd.oci.image.index.v1+json";
        let archived = |d: ImageDetail, status: ImageStatus| ImageDetail { status, ..d };
        let index = json!({"schemaVersion": 2, "mediaType": index_type, "manifests": [
            {"mediaType": manifest, "digest": digest(2), "size": 10, "platform": {"os": "linux", "architecture": "amd64"}}
        ]})
        .to_string();
        let ecr = FakeEcr::default();
        ecr.state
            .lock()
            .unwrap()
            .manifests
            .insert(("quay/multi".into(), digest(1)), (index_type.into(), index));
        let images = BTreeMap::from([
            (
                "quay/single".to_owned(),
                vec![
                    archived(detail(&digest(7), &["v1"], manifest), ImageStatus::Archived),
                    archived(
                        detail(&digest(8), &["v2"], manifest),
                        ImageStatus::Activating,
                    ),
                    detail(&digest(9), &["v3"], manifest),
                ],
            ),
            (
                "quay/multi".to_owned(),
                vec![
                    detail(&digest(1), &["v1"], index_type),
                    archived(detail(&digest(2), &[], manifest), ImageStatus::Archived),
                ],
            ),
        ]);
        let unreadable = BTreeMap::new();
        let view = CacheView {
            images: &images,
            unreadable: &unreadable,
        };
        let platforms = [Platform::parse("linux/amd64").unwrap()];
        let check = |input: String| {
            let (ecr, rules, view, platforms) = (&ecr, &rules, &view, &platforms);
            async move { assess(ecr, rules, view, platforms, &WatchEntry::parse(&input)).await }
        };
        for input in [
            "quay.io/single:v1".to_owned(),
            "quay.io/single:v2".to_owned(),
            format!("quay.io/single@{}", digest(7)),
        ] {
            let item = check(input.clone()).await;
            assert_eq!(item.state, Readiness::Archived, "{input}: {item:?}");
            assert!(!item.cached() && item.exposed(), "{input}");
            assert!(
                item.reason.as_deref().unwrap().contains("cannot be pulled"),
                "{item:?}"
            );
        }
        assert_eq!(
            check("quay.io/single:v3".into()).await.state,
            Readiness::Ready
        );
        let multi = check("quay.io/multi:v1".into()).await;
        assert_eq!(multi.state, Readiness::PlatformMissing, "{multi:?}");
        assert!(
            multi.reason.as_deref().unwrap().contains("ARCHIVED"),
            "{multi:?}"
        );
        let exposure = by_upstream(&[multi]);
        assert_eq!((exposure[0].ready, exposure[0].exposed.len()), (0, 1));
    }

    #[tokio::test]
    async fn arm64_v8_is_checked_against_an_arm64_entry_without_variant() {
        // Issue 16's observed case: PTC_PLATFORMS=linux/amd64,linux/arm64/v8 and an index
        // whose arm64 entry has no variant (as most do). containerd's matcher takes that
        // entry for arm64/v8, so readiness must check its manifest, not skip it.
        let rules = RuleSet::new(vec![PtcRule::new("quay", "quay.io").unwrap()]);
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(2), "size": 10, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(3), "size": 10, "platform": {"os": "linux", "architecture": "arm64"}}
        ]}).to_string();
        let ecr = FakeEcr::default();
        ecr.state.lock().unwrap().manifests.insert(
            ("quay/multi".into(), digest(1)),
            ("application/vnd.oci.image.index.v1+json".into(), index),
        );
        let manifest = "application/vnd.oci.image.manifest.v1+json";
        let index_detail = detail(
            &digest(1),
            &["v1"],
            "application/vnd.oci.image.index.v1+json",
        );
        let platforms = [
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/arm64/v8").unwrap(),
        ];
        let unreadable = BTreeMap::new();
        let entry = WatchEntry::parse("quay.io/multi:v1");
        // The arm64 manifest is not cached: not ready, and the reason names the platform.
        let images = BTreeMap::from([(
            "quay/multi".to_owned(),
            vec![index_detail.clone(), detail(&digest(2), &[], manifest)],
        )]);
        let view = CacheView {
            images: &images,
            unreadable: &unreadable,
        };
        let item = assess(&ecr, &rules, &view, &platforms, &entry).await;
        assert_eq!(item.state, Readiness::PlatformMissing, "{item:?}");
        assert!(
            item.reason.as_deref().unwrap().contains(&digest(3)),
            "{item:?}"
        );
        assert!(item.notes.is_empty(), "published for arm64/v8: no note");
        // Cached: ready.
        let images = BTreeMap::from([(
            "quay/multi".to_owned(),
            vec![
                index_detail,
                detail(&digest(2), &[], manifest),
                detail(&digest(3), &[], manifest),
            ],
        )]);
        let view = CacheView {
            images: &images,
            unreadable: &unreadable,
        };
        let item = assess(&ecr, &rules, &view, &platforms, &entry).await;
        assert_eq!(item.state, Readiness::Ready, "{item:?}");
    }

    #[tokio::test]
    async fn every_state_with_its_reason() {
        let rules = RuleSet::new(vec![
            PtcRule::new("quay", "quay.io").unwrap(),
            PtcRule::new("docker-hub", "registry-1.docker.io").unwrap(),
        ]);
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(2), "size": 10, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(3), "size": 10, "platform": {"os": "linux", "architecture": "arm64"}}
        ]}).to_string();
        let ecr = FakeEcr::default();
        ecr.state.lock().unwrap().manifests.insert(
            ("quay/multi".into(), digest(1)),
            ("application/vnd.oci.image.index.v1+json".into(), index),
        );
        let manifest = "application/vnd.oci.image.manifest.v1+json";
        let images = BTreeMap::from([
            (
                "quay/multi".to_owned(),
                vec![
                    detail(
                        &digest(1),
                        &["v1"],
                        "application/vnd.oci.image.index.v1+json",
                    ),
                    detail(&digest(2), &[], manifest),
                ],
            ),
            (
                "docker-hub/library/nginx".to_owned(),
                vec![detail(&digest(9), &["1.25"], manifest)],
            ),
        ]);
        let unreadable = BTreeMap::from([("quay/locked".to_owned(), "AccessDenied".to_owned())]);
        let view = CacheView {
            images: &images,
            unreadable: &unreadable,
        };
        let platforms = [
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/arm64").unwrap(),
            Platform::parse("linux/s390x").unwrap(),
        ];
        let check = |input: &'static str| {
            let (ecr, rules, view, platforms) = (&ecr, &rules, &view, &platforms);
            async move { assess(ecr, rules, view, platforms, &WatchEntry::parse(input)).await }
        };
        let nginx = check("nginx:1.25").await;
        assert_eq!(nginx.state, Readiness::Ready);
        assert_eq!(nginx.upstream.as_deref(), Some("registry-1.docker.io"));
        assert_eq!(check("nginx:1.26").await.state, Readiness::NotCached);
        let pinned = format!("nginx@{}", digest(9));
        let pinned_item =
            assess(&ecr, &rules, &view, &platforms, &WatchEntry::parse(&pinned)).await;
        assert_eq!(pinned_item.state, Readiness::Ready);
        let multi = check("quay.io/multi:v1").await;
        assert_eq!(multi.state, Readiness::PlatformMissing);
        assert!(
            multi.reason.as_deref().unwrap().contains("linux/arm64"),
            "{multi:?}"
        );
        assert!(
            multi.notes[0].contains("s390x"),
            "not published: a note, not a failure"
        );
        assert!(multi.cached() && multi.exposed());
        assert_eq!(check("quay.io/other:v1").await.state, Readiness::NotCached);
        assert_eq!(check("quay.io/locked:v1").await.state, Readiness::Unknown);
        let gcr = check("gcr.io/x/y:1").await;
        assert_eq!(gcr.state, Readiness::Invalid);
        assert!(gcr.reason.is_some());
        assert_eq!(check("Bad Ref").await.state, Readiness::Invalid);

        let items = vec![nginx, multi, check("quay.io/other:v1").await];
        let ups = by_upstream(&items);
        let quay = ups.iter().find(|u| u.upstream == "quay.io").unwrap();
        assert_eq!((quay.watched, quay.ready, quay.exposed.len()), (2, 0, 2));
        let hub = ups
            .iter()
            .find(|u| names_upstream("docker.io", &u.upstream))
            .unwrap();
        assert_eq!((hub.watched, hub.ready), (1, 1));
    }
}
