//! What the cache holds, read from ECR's API before any pull: per repository, which watched
//! tags point where, which manifests are there, and which blobs. Batched by repository, and
//! none of it is a pull.
//!
//! Which calls count as a pull (they move `lastRecordedPullTime`, and a pull through the
//! cache may make ECR check the upstream): `BatchGetImage` and the layer downloads
//! (`GetDownloadUrlForLayer`), which is what the registry endpoint's manifest and blob GETs
//! are. `DescribeImages` and `BatchCheckLayerAvailability` read the repository's metadata:
//! ECR records "the last image pull" (`lastRecordedPullTime`,
//! <https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageDetail.html>) and
//! "updates the LastRecordedPullTime timestamp on every pull"
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-time-update-exclusions.html>);
//! a pull is the manifest read and, "when an image is pulled, the GetDownloadUrlForLayer API
//! is called once per image layer"
//! (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetDownloadUrlForLayer.html>).
//! This module calls neither `BatchGetImage` nor `GetDownloadUrlForLayer`. (AWS does not say
//! in so many words that a metadata read is not a pull; the stack's stand-in and the
//! steady-state test hold the code to it.)
//!
//! Per repository, in order, each step only when needed:
//! 1. the images discovery already listed (`DescribeImages` of the whole repository, run
//!    anyway when discovery is on): nothing more to ask about manifests;
//! 2. else `DescribeImages` by `imageIds` for the watched tags (100 ids a call); ECR answers
//!    `ImageNotFoundException` when any id is missing (a tag not cached yet), and the
//!    repository is then listed whole (`DescribeImages`, 1,000 a page);
//! 3. the remembered children of those tags' indexes and the pinned digests, by `imageIds`
//!    the same way, when step 2 found every tag;
//! 4. in `layers` mode, `BatchCheckLayerAvailability` for every remembered blob of those
//!    images (100 digests a call).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::StreamExt as _;
use ptc_core::config::PrewarmMode;
use ptc_core::ecr::{EcrApi, ImageDetail};
use ptc_core::platform::Platform;
use ptc_core::reference::Digest;

use crate::memory::{Blob, Known, Memory};

/// `DescribeImages`' limit of `imageIds` per call.
const MAX_IMAGE_IDS: usize = 100;

/// One watched image of a repository: its tag, and its pinned digest if the entry had one.
#[derive(Debug, Clone)]
pub struct Want {
    /// The tag to warm; `None` for a digest-only entry.
    pub tag: Option<String>,
    /// The digest the entry pinned (`name:tag@sha256:...`).
    pub pin: Option<Digest>,
}

/// What one repository holds, as far as the run asked.
#[derive(Debug, Default)]
pub struct Holdings {
    /// Watched tag → the digest it points to (active images only).
    tags: HashMap<String, String>,
    /// Active manifests known to be there.
    manifests: BTreeSet<String>,
    /// Digest → `imageManifestMediaType`, when ECR gave one.
    media_types: HashMap<String, String>,
    /// Whether `manifests` is the whole repository (listed), so a digest not in it is not there.
    listed: bool,
    /// Blobs ECR says it holds; `None` when not asked or the check failed.
    blobs: Option<BTreeSet<String>>,
    /// Blobs ECR was asked about (held or not).
    asked: BTreeSet<String>,
    /// Why ECR's state could not be read; every image of the repository is then pulled.
    unreadable: Option<String>,
    /// Why `BatchCheckLayerAvailability` failed: the repository's images are pulled, blobs
    /// and all.
    layers_unchecked: Option<String>,
}

/// The cache's state for every watched repository, read at the start of the run.
#[derive(Debug, Default)]
pub struct Survey {
    repositories: HashMap<String, Holdings>,
}

/// What the cache holds of one watched image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// The tag, each wanted platform's manifest and (in `layers` mode) every blob are there.
    Complete(Found),
    /// Everything but these blobs, which ECR no longer holds.
    MissingBlobs(Found, Vec<Blob>),
    /// Not cached, incomplete, or not known well enough to tell: the image is pulled.
    Unknown,
}

/// The cached tag and what it resolves to for the wanted platforms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The tag's digest.
    pub digest: Digest,
    /// (platform, manifest digest) of each wanted platform the index lists; for a
    /// single-platform image, `single-platform` and its own digest.
    pub platforms: Vec<(String, Digest)>,
    /// Wanted platforms the index does not list.
    pub missing_platforms: Vec<String>,
}

impl Survey {
    /// Read the state of every repository in `wants` (at most `concurrency` at once), with
    /// the listings discovery already made. A repository whose state cannot be read is noted
    /// (its images are pulled); nothing here fails the run.
    pub async fn read(
        ecr: &dyn EcrApi,
        memory: &Memory,
        wants: BTreeMap<String, Vec<Want>>,
        mut listed: HashMap<String, Vec<ImageDetail>>,
        mode: PrewarmMode,
        platforms: &[Platform],
        concurrency: usize,
    ) -> Self {
        let jobs: Vec<_> = wants
            .into_iter()
            .map(|(repository, wants)| {
                let listing = listed.remove(&repository);
                (repository, wants, listing)
            })
            .collect();
        let repositories = futures::stream::iter(jobs)
            .map(|(repository, wants, listing)| async move {
                let holdings =
                    read_repository(ecr, memory, &repository, &wants, listing, mode, platforms)
                        .await;
                (repository, holdings)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        Self { repositories }
    }

    /// What the cache holds of `tag` in `repository`, for the wanted platforms.
    pub fn cached(
        &self,
        memory: &Memory,
        repository: &str,
        tag: &str,
        mode: PrewarmMode,
        platforms: &[Platform],
    ) -> Cached {
        let Some(holdings) = self.repositories.get(repository) else {
            return Cached::Unknown;
        };
        if holdings.unreadable.is_some() {
            return Cached::Unknown;
        }
        let Some(digest) = holdings.tags.get(tag).and_then(|d| Digest::parse(d).ok()) else {
            return Cached::Unknown;
        };
        self.cached_digest(memory, repository, &digest, mode, platforms)
    }

    /// What the cache holds of the image `digest` in `repository` (a digest-only entry: a
    /// digest's content never changes, so a complete copy is fresh whatever the upstream's
    /// tags say).
    pub fn cached_digest(
        &self,
        memory: &Memory,
        repository: &str,
        digest: &Digest,
        mode: PrewarmMode,
        platforms: &[Platform],
    ) -> Cached {
        let Some(holdings) = self.repositories.get(repository) else {
            return Cached::Unknown;
        };
        if holdings.unreadable.is_some() || !holdings.manifests.contains(digest.as_str()) {
            return Cached::Unknown;
        }
        let Some(needs) = needs(memory, digest, platforms) else {
            return Cached::Unknown;
        };
        // What is remembered must agree with what ECR says each manifest is (an index, or
        // an image): a remembered structure that does not is not trusted.
        let is_index = matches!(memory.get(digest), Some(Known::Index { .. }));
        if !holdings.kind_agrees(digest.as_str(), is_index)
            || needs
                .images
                .iter()
                .any(|(_, d, _)| d != digest && !holdings.kind_agrees(d.as_str(), false))
        {
            return Cached::Unknown;
        }
        if needs
            .images
            .iter()
            .any(|(_, d, _)| !holdings.manifests.contains(d.as_str()))
        {
            return Cached::Unknown;
        }
        let found = Found {
            digest: digest.clone(),
            platforms: needs
                .images
                .iter()
                .map(|(p, d, _)| (p.clone(), d.clone()))
                .collect(),
            missing_platforms: needs.missing_platforms,
        };
        if mode != PrewarmMode::Layers || needs.images.is_empty() {
            return Cached::Complete(found);
        }
        let Some(held) = &holdings.blobs else {
            return Cached::Unknown;
        };
        let needed = || needs.images.iter().flat_map(|(_, _, blobs)| blobs.iter());
        // A blob ECR was not asked about (its image was learned during this run, after the
        // survey) is not known to be missing: the image is pulled, which asks.
        if needed().any(|b| !holdings.asked.contains(b.digest.as_str())) {
            return Cached::Unknown;
        }
        let mut missing: Vec<Blob> = needed()
            .filter(|b| !held.contains(b.digest.as_str()))
            .cloned()
            .collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            Cached::Complete(found)
        } else {
            Cached::MissingBlobs(found, missing)
        }
    }

    /// Whether ECR said it holds `blob` in `repository` (`false` when not asked).
    pub fn holds_blob(&self, repository: &str, blob: &str) -> bool {
        self.repositories
            .get(repository)
            .and_then(|h| h.blobs.as_ref())
            .is_some_and(|b| b.contains(blob))
    }

    /// Whether the repository held nothing before the run (it did not exist, or had no
    /// active image): no blob of it needs asking about.
    pub fn was_empty(&self, repository: &str) -> bool {
        self.repositories
            .get(repository)
            .is_some_and(|h| h.unreadable.is_none() && h.listed && h.manifests.is_empty())
    }

    /// Repositories whose state could not be read (or whose layers could not be checked),
    /// with why.
    pub fn unreadable(&self) -> Vec<(String, String)> {
        let mut out: Vec<_> = self
            .repositories
            .iter()
            .filter_map(|(r, h)| {
                h.unreadable
                    .clone()
                    .or_else(|| {
                        h.layers_unchecked
                            .as_ref()
                            .map(|why| format!("BatchCheckLayerAvailability: {why}"))
                    })
                    .map(|why| (r.clone(), why))
            })
            .collect();
        out.sort();
        out
    }
}

/// What a complete copy of the image `digest` needs, from memory: each wanted platform's
/// (platform, manifest digest, blobs), and the wanted platforms its index does not list.
/// `None` when something is not remembered.
struct Needs {
    images: Vec<(String, Digest, Vec<Blob>)>,
    missing_platforms: Vec<String>,
}

fn needs(memory: &Memory, digest: &Digest, platforms: &[Platform]) -> Option<Needs> {
    match memory.get(digest)? {
        Known::Image { blobs } => Some(Needs {
            images: vec![("single-platform".to_owned(), digest.clone(), blobs)],
            missing_platforms: Vec::new(),
        }),
        Known::Index { entries } => {
            let mut out = Needs {
                images: Vec::new(),
                missing_platforms: Vec::new(),
            };
            for platform in platforms {
                match platform.choose(entries.iter().map(|e| (e.platform.as_ref(), &e.digest))) {
                    Some(child) => {
                        let Known::Image { blobs } = memory.get(child)? else {
                            return None;
                        };
                        out.images
                            .push((platform.to_string(), child.clone(), blobs));
                    }
                    None => out.missing_platforms.push(platform.to_string()),
                }
            }
            Some(out)
        }
    }
}

async fn read_repository(
    ecr: &dyn EcrApi,
    memory: &Memory,
    repository: &str,
    wants: &[Want],
    listing: Option<Vec<ImageDetail>>,
    mode: PrewarmMode,
    platforms: &[Platform],
) -> Holdings {
    let mut holdings = Holdings::default();
    let tags: Vec<String> = {
        let set: BTreeSet<&String> = wants.iter().filter_map(|w| w.tag.as_ref()).collect();
        set.into_iter().cloned().collect()
    };
    match listing {
        Some(images) => holdings.absorb_listing(images),
        None => match by_ids(ecr, repository, &tags, &[]).await {
            Ok(Some(images)) => holdings.absorb(images),
            Ok(None) => {
                if let Err(why) = holdings.list(ecr, repository).await {
                    return holdings.unreadable(why);
                }
            }
            Err(why) => return holdings.unreadable(why),
        },
    }
    // The manifests and blobs complete copies of the watched tags need, as remembered.
    let mut children: BTreeSet<String> = BTreeSet::new();
    let mut blobs: BTreeSet<String> = BTreeSet::new();
    // The watched tags only (a listing holds every tag of the repository), and the pins.
    let pins = wants
        .iter()
        .filter_map(|w| w.pin.as_ref().map(Digest::to_string));
    let watched: Vec<String> = tags
        .iter()
        .filter_map(|t| holdings.tags.get(t).cloned())
        .collect();
    for digest in watched.into_iter().chain(pins) {
        let Ok(digest) = Digest::parse(&digest) else {
            continue;
        };
        if let Some(needs) = needs(memory, &digest, platforms) {
            for (_, child, child_blobs) in needs.images {
                children.insert(child.to_string());
                blobs.extend(child_blobs.into_iter().map(|b| b.digest.to_string()));
            }
        }
    }
    children.extend(
        wants
            .iter()
            .filter_map(|w| w.pin.as_ref().map(Digest::to_string)),
    );
    let unknown: Vec<String> = children
        .into_iter()
        .filter(|d| !holdings.manifests.contains(d))
        .collect();
    if !holdings.listed && !unknown.is_empty() {
        match by_ids(ecr, repository, &[], &unknown).await {
            Ok(Some(images)) => holdings.absorb(images),
            Ok(None) => {
                if let Err(why) = holdings.list(ecr, repository).await {
                    return holdings.unreadable(why);
                }
            }
            Err(why) => return holdings.unreadable(why),
        }
    }
    if mode == PrewarmMode::Layers && !blobs.is_empty() {
        let blobs: Vec<String> = blobs.into_iter().collect();
        match ecr.layer_availability(repository, &blobs).await {
            Ok(answer) => {
                holdings.blobs = Some(answer.available.into_keys().collect());
                holdings.asked = blobs.into_iter().collect();
            }
            Err(err) => {
                tracing::warn!(repository, error = %err, "cannot check the cached layers; the repository's images are pulled");
                holdings.layers_unchecked = Some(err.to_string());
            }
        }
    }
    holdings
}

/// `DescribeImages` by id, 100 ids a call: `Ok(None)` when ECR says one of them is not
/// there (the caller lists the repository instead) or the repository does not exist yet.
async fn by_ids(
    ecr: &dyn EcrApi,
    repository: &str,
    tags: &[String],
    digests: &[String],
) -> Result<Option<Vec<ImageDetail>>, String> {
    let ids: Vec<(bool, &String)> = tags
        .iter()
        .map(|t| (true, t))
        .chain(digests.iter().map(|d| (false, d)))
        .collect();
    let mut out = Vec::new();
    for chunk in ids.chunks(MAX_IMAGE_IDS) {
        let (tags, digests): (Vec<_>, Vec<_>) = chunk.iter().partition(|(is_tag, _)| *is_tag);
        let tags: Vec<String> = tags.into_iter().map(|(_, t)| (*t).clone()).collect();
        let digests: Vec<String> = digests.into_iter().map(|(_, d)| (*d).clone()).collect();
        match ecr.describe_image_ids(repository, &tags, &digests).await {
            Ok(images) => out.extend(images),
            Err(err) if err.is_not_found() => return Ok(None),
            Err(err) => return Err(err.to_string()),
        }
    }
    Ok(Some(out))
}

impl Holdings {
    fn unreadable(mut self, why: String) -> Self {
        self.unreadable = Some(why);
        self
    }

    /// Active images only: an archived or activating image cannot be pulled.
    fn absorb(&mut self, images: Vec<ImageDetail>) {
        for image in images.into_iter().filter(|i| i.status.is_pullable()) {
            self.manifests.insert(image.digest.clone());
            if let Some(media_type) = image.media_type.clone() {
                self.media_types.insert(image.digest.clone(), media_type);
            }
            for tag in image.tags {
                self.tags.insert(tag, image.digest.clone());
            }
        }
    }

    fn absorb_listing(&mut self, images: Vec<ImageDetail>) {
        self.absorb(images);
        self.listed = true;
    }

    /// Whether ECR's media type for `digest` (when it gave one) is an index exactly when
    /// `is_index`.
    fn kind_agrees(&self, digest: &str, is_index: bool) -> bool {
        self.media_types.get(digest).is_none_or(|media_type| {
            let index = [ptc_core::oci::OCI_INDEX, ptc_core::oci::DOCKER_LIST]
                .contains(&media_type.as_str());
            index == is_index
        })
    }

    async fn list(&mut self, ecr: &dyn EcrApi, repository: &str) -> Result<(), String> {
        match ecr.describe_images(repository).await {
            Ok(images) => {
                self.absorb_listing(images);
                Ok(())
            }
            // Not created yet: nothing is cached.
            Err(err) if err.is_repository_gone() => {
                self.listed = true;
                Ok(())
            }
            Err(err) => Err(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use ptc_core::ecr::ImageStatus;
    use ptc_core::error::AwsErrorKind;
    use ptc_core::fakes::FakeEcr;

    use super::*;
    use crate::memory::IndexEntry;

    const REPO: &str = "quay/app";

    fn digest(n: u16) -> Digest {
        Digest::parse(&format!("sha256:{}", format!("{n:04x}").repeat(16))).unwrap()
    }

    fn detail(n: u16, tags: &[&str], status: ImageStatus) -> ImageDetail {
        ptc_tests::fixtures::image(digest(n).as_str(), tags, status)
    }

    fn blob(n: u16) -> Blob {
        Blob {
            digest: digest(n),
            size: 100,
        }
    }

    fn platforms() -> Vec<Platform> {
        vec![
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/arm64").unwrap(),
        ]
    }

    /// An index (1) of amd64 (2, blobs 10 and 11) and arm64 (3, blobs 10 and 12), tagged
    /// `v1`, cached whole; remembered by the memory.
    fn cached_index() -> (FakeEcr, Memory) {
        let ecr = FakeEcr::default();
        {
            let mut state = ecr.state.lock().unwrap();
            state
                .repositories
                .push(ptc_tests::fixtures::repository(REPO));
            state.images.insert(
                REPO.into(),
                vec![
                    detail(1, &["v1"], ImageStatus::Active),
                    detail(2, &[], ImageStatus::Active),
                    detail(3, &[], ImageStatus::Active),
                ],
            );
            for b in [10, 11, 12] {
                state
                    .layers
                    .insert((REPO.into(), digest(b).to_string()), 100);
            }
        }
        let memory = Memory::default();
        memory.learn(
            digest(1),
            Known::Index {
                entries: vec![
                    IndexEntry {
                        platform: Some(Platform::parse("linux/amd64").unwrap()),
                        digest: digest(2),
                    },
                    IndexEntry {
                        platform: Some(Platform::parse("linux/arm64").unwrap()),
                        digest: digest(3),
                    },
                    IndexEntry {
                        platform: None,
                        digest: digest(4),
                    },
                ],
            },
        );
        memory.learn(
            digest(2),
            Known::Image {
                blobs: vec![blob(10), blob(11)],
            },
        );
        memory.learn(
            digest(3),
            Known::Image {
                blobs: vec![blob(10), blob(12)],
            },
        );
        (ecr, memory)
    }

    fn want(tags: &[&str]) -> BTreeMap<String, Vec<Want>> {
        BTreeMap::from([(
            REPO.to_owned(),
            tags.iter()
                .map(|t| Want {
                    tag: Some((*t).to_owned()),
                    pin: None,
                })
                .collect(),
        )])
    }

    async fn survey(ecr: &FakeEcr, memory: &Memory, tags: &[&str], mode: PrewarmMode) -> Survey {
        Survey::read(
            ecr,
            memory,
            want(tags),
            HashMap::new(),
            mode,
            &platforms(),
            4,
        )
        .await
    }

    fn found(platforms: &[(&str, u16)]) -> Found {
        Found {
            digest: digest(1),
            platforms: platforms
                .iter()
                .map(|(p, d)| ((*p).to_owned(), digest(*d)))
                .collect(),
            missing_platforms: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_complete_index_is_told_from_ecr_alone_in_three_calls() {
        let (ecr, memory) = cached_index();
        let survey = survey(&ecr, &memory, &["v1"], PrewarmMode::Layers).await;
        assert_eq!(
            survey.cached(&memory, REPO, "v1", PrewarmMode::Layers, &platforms()),
            Cached::Complete(found(&[("linux/amd64", 2), ("linux/arm64", 3)]))
        );
        // The tag, then the two platform manifests, then the three blobs: never a pull.
        assert_eq!(ecr.calls("DescribeImages"), 2);
        assert_eq!(ecr.calls("BatchCheckLayerAvailability"), 1);
        assert_eq!(ecr.calls("BatchGetImage"), 0);
    }

    #[tokio::test]
    async fn a_lost_blob_is_named_and_manifests_mode_does_not_ask() {
        let (ecr, memory) = cached_index();
        ecr.state
            .lock()
            .unwrap()
            .layers
            .remove(&(REPO.to_owned(), digest(12).to_string()));
        let layers = survey(&ecr, &memory, &["v1"], PrewarmMode::Layers).await;
        assert_eq!(
            layers.cached(&memory, REPO, "v1", PrewarmMode::Layers, &platforms()),
            Cached::MissingBlobs(
                found(&[("linux/amd64", 2), ("linux/arm64", 3)]),
                vec![blob(12)]
            )
        );
        let manifests = survey(&ecr, &memory, &["v1"], PrewarmMode::Manifests).await;
        assert!(matches!(
            manifests.cached(&memory, REPO, "v1", PrewarmMode::Manifests, &platforms()),
            Cached::Complete(_)
        ));
        assert_eq!(
            ecr.calls("BatchCheckLayerAvailability"),
            1,
            "layers mode only"
        );
    }

    #[tokio::test]
    async fn what_is_missing_archived_or_not_remembered_is_pulled() {
        // A platform manifest archived: not pullable, so not complete.
        let (ecr, memory) = cached_index();
        ecr.state.lock().unwrap().images.get_mut(REPO).unwrap()[2].status = ImageStatus::Archived;
        let s = survey(&ecr, &memory, &["v1"], PrewarmMode::Layers).await;
        assert_eq!(
            s.cached(&memory, REPO, "v1", PrewarmMode::Layers, &platforms()),
            Cached::Unknown
        );
        // A child not remembered (a state lost or from another version).
        let (ecr, _) = cached_index();
        let memory = Memory::default();
        memory.learn(
            digest(1),
            Known::Index {
                entries: vec![IndexEntry {
                    platform: Some(Platform::parse("linux/amd64").unwrap()),
                    digest: digest(2),
                }],
            },
        );
        let s = survey(&ecr, &memory, &["v1"], PrewarmMode::Layers).await;
        assert_eq!(
            s.cached(&memory, REPO, "v1", PrewarmMode::Layers, &platforms()),
            Cached::Unknown
        );
        // A tag not cached yet: ECR refuses the lookup by id, the repository is listed once.
        let (ecr, memory) = cached_index();
        let s = survey(&ecr, &memory, &["v1", "v2"], PrewarmMode::Layers).await;
        assert_eq!(
            s.cached(&memory, REPO, "v2", PrewarmMode::Layers, &platforms()),
            Cached::Unknown
        );
        assert!(matches!(
            s.cached(&memory, REPO, "v1", PrewarmMode::Layers, &platforms()),
            Cached::Complete(_)
        ));
        assert_eq!(ecr.calls("DescribeImages"), 2, "by id, then the listing");
        // A repository ECR will not describe: every image of it is pulled, and said.
        let (ecr, memory) = cached_index();
        ecr.fail_next(
            "DescribeImages",
            AwsErrorKind::AccessDenied("AccessDeniedException".into()),
        );
        let s = survey(&ecr, &memory, &["v1"], PrewarmMode::Layers).await;
        assert_eq!(
            s.cached(&memory, REPO, "v1", PrewarmMode::Layers, &platforms()),
            Cached::Unknown
        );
        assert_eq!(s.unreadable().len(), 1);
        assert!(
            s.unreadable()[0].1.contains("AccessDenied"),
            "{:?}",
            s.unreadable()
        );
    }

    /// A remembered structure that contradicts ECR's own media type (an index remembered as
    /// an image, e.g. a state edited by hand) is not trusted: the image is pulled.
    #[tokio::test]
    async fn a_memory_that_contradicts_ecrs_media_type_is_not_trusted() {
        let (ecr, memory) = cached_index();
        {
            let mut state = ecr.state.lock().unwrap();
            let images = state.images.get_mut(REPO).unwrap();
            images[0].media_type = Some(ptc_core::oci::OCI_INDEX.into());
            images[1].media_type = Some(ptc_core::oci::OCI_MANIFEST.into());
            images[2].media_type = Some(ptc_core::oci::OCI_MANIFEST.into());
        }
        let s = survey(&ecr, &memory, &["v1"], PrewarmMode::Layers).await;
        assert!(matches!(
            s.cached(&memory, REPO, "v1", PrewarmMode::Layers, &platforms()),
            Cached::Complete(_)
        ));
        // The same tag remembered as a single-platform image with one blob.
        let lying = Memory::default();
        lying.learn(
            digest(1),
            Known::Image {
                blobs: vec![blob(10)],
            },
        );
        let s = survey(&ecr, &lying, &["v1"], PrewarmMode::Layers).await;
        assert_eq!(
            s.cached(&lying, REPO, "v1", PrewarmMode::Layers, &platforms()),
            Cached::Unknown
        );
    }

    /// Review of issue 18: an image learned during the run (another tag of it was pulled
    /// first) has blobs ECR was never asked about; they are not "missing" (that made the run
    /// fetch every one of them again and say the cache lacked them): the image is pulled,
    /// which asks.
    #[tokio::test]
    async fn blobs_not_asked_about_are_not_called_missing() {
        let (ecr, memory) = cached_index();
        {
            let mut state = ecr.state.lock().unwrap();
            state
                .images
                .get_mut(REPO)
                .unwrap()
                .push(detail(7, &["v2"], ImageStatus::Active));
            state
                .layers
                .insert((REPO.into(), digest(13).to_string()), 100);
        }
        let s = survey(&ecr, &memory, &["v1", "v2"], PrewarmMode::Layers).await;
        memory.learn(
            digest(7),
            Known::Image {
                blobs: vec![blob(13)],
            },
        );
        assert_eq!(
            s.cached(&memory, REPO, "v2", PrewarmMode::Layers, &platforms()),
            Cached::Unknown
        );
    }

    #[tokio::test]
    async fn an_index_without_a_wanted_platform_is_complete_for_the_others() {
        let (ecr, memory) = cached_index();
        let wanted = vec![
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/s390x").unwrap(),
        ];
        let s = Survey::read(
            &ecr,
            &memory,
            want(&["v1"]),
            HashMap::new(),
            PrewarmMode::Layers,
            &wanted,
            4,
        )
        .await;
        let Cached::Complete(found) = s.cached(&memory, REPO, "v1", PrewarmMode::Layers, &wanted)
        else {
            panic!("complete for amd64");
        };
        assert_eq!(found.missing_platforms, ["linux/s390x"]);
    }

    /// Batched: 250 watched tags of one repository are 3 lookups by id, and the repository
    /// discovery already listed costs no lookup at all.
    #[tokio::test]
    async fn lookups_are_batched_and_discovery_listings_reused() {
        let ecr = FakeEcr::default();
        let tags: Vec<String> = (0..250).map(|n| format!("t{n}")).collect();
        {
            let mut state = ecr.state.lock().unwrap();
            state
                .repositories
                .push(ptc_tests::fixtures::repository(REPO));
            let tag_refs: Vec<&str> = tags.iter().map(String::as_str).collect();
            state
                .images
                .insert(REPO.into(), vec![detail(1, &tag_refs, ImageStatus::Active)]);
        }
        let memory = Memory::default();
        let tag_refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        let s = survey(&ecr, &memory, &tag_refs, PrewarmMode::Layers).await;
        assert_eq!(ecr.calls("DescribeImages"), 3);
        // Not remembered: nothing more asked, every image pulled (once, then remembered).
        assert_eq!(
            s.cached(&memory, REPO, "t7", PrewarmMode::Layers, &platforms()),
            Cached::Unknown
        );
        let listing = ecr.state.lock().unwrap().images[REPO].clone();
        let _ = Survey::read(
            &ecr,
            &memory,
            want(&tag_refs),
            HashMap::from([(REPO.to_owned(), listing)]),
            PrewarmMode::Layers,
            &platforms(),
            4,
        )
        .await;
        assert_eq!(ecr.calls("DescribeImages"), 3, "the listing was reused");
    }
}
