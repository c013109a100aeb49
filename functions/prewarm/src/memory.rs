//! What prewarm remembers between runs: the structure of each manifest it pulled and verified,
//! by digest (an index's platform entries, an image's blobs), so that the next run can tell a
//! complete cached image from ECR's API alone, without pulling it.
//!
//! Why a small state object, and not ECR alone: ECR's metadata calls (`DescribeImages`,
//! `BatchCheckLayerAvailability`) say which tags, manifests and blobs a repository holds, but
//! not which manifests an index lists or which blobs an image needs; only reading the
//! manifest says that, and reading it is a pull (`BatchGetImage`, or a GET through the
//! registry endpoint) that refreshes `lastRecordedPullTime` unless the reader's role is
//! excluded, and may make ECR check the upstream. What is remembered is content-addressed: a
//! digest's manifest never changes, so an entry never goes stale; what changes (which tag
//! points where, what the cache still holds) is read from ECR on every run. A lost, unreadable
//! or foreign state costs one run of manifest pulls (blobs ECR holds are still not fetched).
//! A state that parses but lies (edited by hand, or written by a bug) is trusted: it could
//! make a run call an image complete that is not, so it lives in the stack's own bucket,
//! which only prewarm's role may write, and every entry is bounded as a parsed manifest is.
//! Cost: one `GetObject` and at most one `PutObject` a run (the object is
//! written only when something was learned or forgotten); about 95 bytes per blob and per
//! index entry (2.2 KB for a two-platform image of 8 layers; 8 MiB holds about 3,800 such
//! images, and a larger state keeps what fits, see [`Memory::save`]).
//!
//! The document (`version` 1):
//! `{"version":1,"manifests":{"sha256:…":{"kind":"index","entries":[{"platform":"linux/amd64","digest":"sha256:…"}]},"sha256:…":{"kind":"image","blobs":[{"digest":"sha256:…","size":1234}]}}}`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use ptc_core::objects::{MAX_OBJECT_BYTES, ObjectsApi};
use ptc_core::oci::MAX_MANIFEST_DESCRIPTORS;
use ptc_core::platform::Platform;
use ptc_core::reference::Digest;
use ptc_core::watchlist::WatchListSource;
use serde::{Deserialize, Serialize};

/// The document's version; a document of another version is ignored (the run starts with
/// nothing remembered) and overwritten.
pub const STATE_VERSION: u32 = 1;

/// The most manifests a document may hold (200,000: two platforms of 50,000 indexes and
/// more); a larger one is refused whole as not ours.
pub const MAX_REMEMBERED: usize = 200_000;

/// What one manifest lists, as far as warming needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Known {
    /// An OCI index or Docker manifest list: its entries' platforms and digests.
    Index {
        /// In the index's order; `platform` absent for an entry without one (an attestation).
        entries: Vec<IndexEntry>,
    },
    /// A single-platform image: its config and layers, each once.
    Image {
        /// The config first, then the layers in order.
        blobs: Vec<Blob>,
    },
}

/// One entry of an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The entry's platform as the index wrote it (`os`, `architecture`, `variant`, kept
    /// verbatim: `x86-64` or an empty variant too, as containerd would match them).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "verbatim")]
    pub platform: Option<Platform>,
    /// The platform's manifest.
    pub digest: Digest,
}

/// A blob an image needs: what a layer fetch needs to ask for it and bound it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Blob {
    /// `sha256:<64 hex>`.
    pub digest: Digest,
    /// Its size in bytes, as the manifest declared it.
    pub size: u64,
}

/// A platform stored as the manifest wrote it, not through [`Platform::parse`] (which accepts
/// only the spellings a setting may use): what a pull saw is what the next run reads.
mod verbatim {
    use ptc_core::platform::Platform;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Raw {
        os: String,
        architecture: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        variant: Option<String>,
    }

    pub fn serialize<S: Serializer>(p: &Option<Platform>, s: S) -> Result<S::Ok, S::Error> {
        p.as_ref()
            .map(|p| Raw {
                os: p.os.clone(),
                architecture: p.architecture.clone(),
                variant: p.variant.clone(),
            })
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Platform>, D::Error> {
        Ok(Option::<Raw>::deserialize(d)?.map(|r| Platform {
            os: r.os,
            architecture: r.architecture,
            variant: r.variant,
        }))
    }
}

/// The longest platform field kept (a manifest's are a few characters).
const MAX_PLATFORM_FIELD: usize = 128;

impl Known {
    /// Whether the entry is within the bounds a parsed manifest has.
    pub fn is_sane(&self) -> bool {
        match self {
            // An index lists at least one manifest (an empty one would make any tag look
            // complete for no platform).
            Known::Index { entries } => {
                !entries.is_empty()
                    && entries.len() <= MAX_MANIFEST_DESCRIPTORS
                    && entries.iter().filter_map(|e| e.platform.as_ref()).all(|p| {
                        [Some(&p.os), Some(&p.architecture), p.variant.as_ref()]
                            .into_iter()
                            .flatten()
                            .all(|f| f.len() <= MAX_PLATFORM_FIELD)
                    })
            }
            Known::Image { blobs } => !blobs.is_empty() && blobs.len() <= MAX_MANIFEST_DESCRIPTORS,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Document<M = BTreeMap<Digest, Known>> {
    version: u32,
    manifests: M,
}

/// Where the state is kept: an S3 object (the Lambda: `PTC_PREWARM_STATE_URL`, the stack's
/// bucket) or a local file (`ptc prewarm`), or nowhere.
pub enum Store<'a> {
    /// Nothing is remembered: every image's manifests are pulled each run.
    Nowhere,
    /// `s3://bucket/key`, through the objects port (`GetObject` at most 8 MiB, `PutObject`).
    S3 {
        /// The objects port.
        objects: &'a dyn ObjectsApi,
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
    },
    /// A local file, written whole through a temporary file and a rename.
    File(PathBuf),
}

impl<'a> Store<'a> {
    /// The store a setting names (see [`ptc_core::Settings::prewarm_state`]).
    pub fn at(source: Option<&WatchListSource>, objects: &'a dyn ObjectsApi) -> Self {
        match source {
            None => Store::Nowhere,
            Some(WatchListSource::S3 { bucket, key }) => Store::S3 {
                objects,
                bucket: bucket.clone(),
                key: key.clone(),
            },
            Some(WatchListSource::File(path)) => Store::File(path.clone()),
        }
    }

    /// Where, for messages.
    pub fn describe(&self) -> String {
        match self {
            Store::Nowhere => "nowhere".into(),
            Store::S3 { bucket, key, .. } => format!("s3://{bucket}/{key}"),
            Store::File(path) => path.display().to_string(),
        }
    }

    async fn read(&self) -> Result<Option<String>, String> {
        match self {
            Store::Nowhere => Ok(None),
            Store::S3 {
                objects,
                bucket,
                key,
            } => match objects.get_text(bucket, key).await {
                Ok(text) => Ok(Some(text)),
                Err(err) if err.is_not_found() => Ok(None),
                Err(err) => Err(err.to_string()),
            },
            Store::File(path) => match std::fs::metadata(path) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(err.to_string()),
                Ok(meta) if meta.len() > MAX_OBJECT_BYTES as u64 => {
                    Err(format!("larger than {MAX_OBJECT_BYTES} bytes"))
                }
                Ok(_) => std::fs::read_to_string(path)
                    .map(Some)
                    .map_err(|e| e.to_string()),
            },
        }
    }

    async fn write(&self, text: &str) -> Result<(), String> {
        match self {
            Store::Nowhere => Ok(()),
            Store::S3 {
                objects,
                bucket,
                key,
            } => objects
                .put_text(bucket, key, text)
                .await
                .map_err(|e| e.to_string()),
            Store::File(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                }
                let partial = path.with_extension(format!("partial-{}", std::process::id()));
                std::fs::write(&partial, text).map_err(|e| e.to_string())?;
                std::fs::rename(&partial, path).map_err(|e| e.to_string())
            }
        }
    }
}

/// The run's memory: what was loaded, what this run used and learned. Shared by the run's
/// tasks.
#[derive(Default)]
pub struct Memory {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    known: BTreeMap<Digest, Known>,
    used: BTreeSet<Digest>,
    changed: bool,
    /// The load failed for a reason other than "absent": the run does not overwrite what it
    /// could not read.
    unreadable: bool,
}

impl Memory {
    /// Load the state; a warning when it is unreadable (the run goes on with nothing
    /// remembered, and does not overwrite it) or not ours (ignored, overwritten).
    pub async fn load(store: &Store<'_>) -> (Self, Option<String>) {
        let memory = Memory::default();
        let text = match store.read().await {
            Ok(Some(text)) => text,
            Ok(None) => return (memory, None),
            Err(err) => {
                memory.inner.lock().unwrap().unreadable = true;
                let warning = format!(
                    "prewarm state {} is unreadable ({err}): every image's manifests are pulled this run",
                    store.describe()
                );
                return (memory, Some(warning));
            }
        };
        match parse(&text) {
            Ok((known, 0)) => {
                memory.inner.lock().unwrap().known = known;
                (memory, None)
            }
            Ok((known, dropped)) => {
                let mut inner = memory.inner.lock().unwrap();
                inner.known = known;
                inner.changed = true;
                drop(inner);
                let warning = format!(
                    "prewarm state {}: {dropped} entries that do not read were dropped (their images are pulled this run)",
                    store.describe()
                );
                (memory, Some(warning))
            }
            Err(why) => {
                memory.inner.lock().unwrap().changed = true;
                let warning = format!(
                    "prewarm state {} is not a state this version reads ({why}): ignored, and replaced",
                    store.describe()
                );
                (memory, Some(warning))
            }
        }
    }

    /// What is remembered of `digest` (marked used: kept when the state is saved).
    pub fn get(&self, digest: &Digest) -> Option<Known> {
        let mut inner = self.inner.lock().unwrap();
        let known = inner.known.get(digest).cloned()?;
        inner.used.insert(digest.clone());
        Some(known)
    }

    /// Remember what a verified pull showed; an entry out of a parsed manifest's bounds (an
    /// index with no entry) is not remembered (its image is pulled each run), so that a
    /// state never holds what a run would refuse to read.
    pub fn learn(&self, digest: Digest, known: Known) {
        if !known.is_sane() {
            return;
        }
        let mut inner = self.inner.lock().unwrap();
        inner.used.insert(digest.clone());
        if inner.known.get(&digest) != Some(&known) {
            inner.known.insert(digest, known);
            inner.changed = true;
        }
    }

    /// Save what this run used or learned, when that differs from what was loaded. With
    /// `forget`, what no entry of the run touched is left out (a run over the whole watch
    /// list); without (a run that could not read every source), it is kept. `Ok(false)` when
    /// nothing was written.
    ///
    /// A state larger than the [`MAX_OBJECT_BYTES`] a run reads keeps what fits (in digest
    /// order) and says how many manifests it left out: their images are pulled each run
    /// (manifests only; blobs the cache holds are still skipped). The second value is that
    /// warning.
    pub async fn save(
        &self,
        store: &Store<'_>,
        forget: bool,
    ) -> Result<(bool, Option<String>), String> {
        let (text, warning) = {
            let inner = self.inner.lock().unwrap();
            if inner.unreadable {
                return Ok((false, None));
            }
            let kept: BTreeMap<Digest, Known> = inner
                .known
                .iter()
                .filter(|(d, _)| !forget || inner.used.contains(*d))
                .map(|(d, k)| (d.clone(), k.clone()))
                .collect();
            if !inner.changed && kept.len() == inner.known.len() {
                return Ok((false, None));
            }
            fit(kept, MAX_OBJECT_BYTES)?
        };
        store
            .write(&text)
            .await
            .map(|()| (true, warning))
            .map_err(|e| format!("cannot save the prewarm state to {}: {e}", store.describe()))
    }
}

/// The document of `manifests`, at most `max` bytes: when the whole does not fit, the entries
/// that fit in digest order, and a warning naming how many were left out.
fn fit(manifests: BTreeMap<Digest, Known>, max: usize) -> Result<(String, Option<String>), String> {
    let render = |manifests: BTreeMap<Digest, Known>| {
        serde_json::to_string(&Document {
            version: STATE_VERSION,
            manifests,
        })
        .map_err(|e| e.to_string())
    };
    let total = manifests.len();
    let whole = render(manifests.clone())?;
    if whole.len() <= max {
        return Ok((whole, None));
    }
    // Each entry's share: `"<digest>":<entry>,`; the envelope's 40 bytes are kept aside.
    let mut budget = max.saturating_sub(64);
    let mut kept = BTreeMap::new();
    for (digest, known) in manifests {
        let size = digest.as_str().len() + 4 + serde_json::to_string(&known).map_or(0, |t| t.len());
        if size > budget {
            break;
        }
        budget -= size;
        kept.insert(digest, known);
    }
    let left_out = total - kept.len();
    let text = render(kept)?;
    Ok((
        text,
        Some(format!(
            "the prewarm state would be {} bytes, more than the {max} a run reads: {left_out} of {total} manifests are not remembered, and their images' manifests are pulled each run",
            whole.len()
        )),
    ))
}

/// The manifests of a state document, validated: every digest and platform parses, every
/// entry is within a parsed manifest's bounds, at most [`MAX_REMEMBERED`] manifests.
///
/// An entry that does not read (a digest or an entry out of shape or bounds) is dropped
/// alone, and counted: one odd manifest must not cost every image a pull, run after run.
fn parse(text: &str) -> Result<(BTreeMap<Digest, Known>, usize), String> {
    let doc: Document<BTreeMap<String, serde_json::Value>> =
        serde_json::from_str(text).map_err(|e| e.to_string())?;
    if doc.version != STATE_VERSION {
        return Err(format!("version {}", doc.version));
    }
    if doc.manifests.len() > MAX_REMEMBERED {
        return Err(format!("more than {MAX_REMEMBERED} manifests"));
    }
    let total = doc.manifests.len();
    let known: BTreeMap<Digest, Known> = doc
        .manifests
        .into_iter()
        .filter_map(|(digest, entry)| {
            let digest = Digest::parse(&digest).ok()?;
            let known: Known = serde_json::from_value(entry).ok()?;
            known.is_sane().then_some((digest, known))
        })
        .collect();
    let dropped = total - known.len();
    Ok((known, dropped))
}

#[cfg(test)]
mod tests {
    use ptc_core::fakes::FakeObjects;

    use super::*;

    fn digest(n: u8) -> Digest {
        Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap()
    }

    fn image(n: u8) -> Known {
        Known::Image {
            blobs: vec![Blob {
                digest: digest(n),
                size: 10,
            }],
        }
    }

    #[tokio::test]
    async fn remembers_what_was_used_and_learned_and_writes_only_on_change() {
        let objects = FakeObjects::default();
        let store = Store::S3 {
            objects: &objects,
            bucket: "b".into(),
            key: "k".into(),
        };
        let (memory, warning) = Memory::load(&store).await;
        assert_eq!(warning, None, "an absent state is no warning");
        memory.learn(digest(1), image(10));
        memory.learn(
            digest(2),
            Known::Index {
                entries: vec![IndexEntry {
                    platform: Some(Platform::parse("linux/amd64").unwrap()),
                    digest: digest(1),
                }],
            },
        );
        assert!(memory.save(&store, true).await.unwrap().0);
        let (again, warning) = Memory::load(&store).await;
        assert_eq!(warning, None);
        assert_eq!(again.get(&digest(1)), Some(image(10)));
        // Only digest 1 was used: a run that did not see the whole list keeps digest 2 (no
        // write: nothing changed); a whole run forgets it (a write), then nothing changes.
        assert!(!again.save(&store, false).await.unwrap().0);
        assert!(again.save(&store, true).await.unwrap().0);
        let (third, _) = Memory::load(&store).await;
        assert_eq!(third.get(&digest(2)), None);
        assert!(third.get(&digest(1)).is_some());
        assert!(
            !third.save(&store, true).await.unwrap().0,
            "nothing new: no write"
        );
    }

    #[tokio::test]
    async fn a_state_that_is_not_ours_is_ignored_and_one_that_cannot_be_read_is_kept() {
        let objects = FakeObjects::default();
        let store = Store::S3 {
            objects: &objects,
            bucket: "b".into(),
            key: "k".into(),
        };
        for text in [
            "not json",
            r#"{"version":2,"manifests":{}}"#,
            r#"{"version":1,"manifests":[]}"#,
        ] {
            objects.put_text("b", "k", text).await.expect("fake put");
            let (memory, warning) = Memory::load(&store).await;
            assert!(
                warning
                    .as_deref()
                    .is_some_and(|w| w.contains("not a state")),
                "{text}: {warning:?}"
            );
            assert_eq!(memory.get(&digest(1)), None);
            assert!(memory.save(&store, true).await.unwrap().0, "replaced");
        }
        // Entries that do not read are dropped one by one (review of issue 18: one odd
        // manifest made the whole state unreadable, and every image was pulled every run);
        // the good entry beside them stays.
        let good = format!(
            r#""{}":{{"kind":"image","blobs":[{{"digest":"{}","size":1}}]}}"#,
            digest(2),
            digest(3)
        );
        let one = "sha256:0101010101010101010101010101010101010101010101010101010101010101";
        for bad in [
            r#""sha256:zz":{"kind":"image","blobs":[]}"#.to_owned(),
            format!(r#""{one}":{{"kind":"image","blobs":[]}}"#),
            format!(r#""{one}":{{"kind":"index","entries":[]}}"#),
            format!(
                r#""{one}":{{"kind":"index","entries":[{{"platform":"linux","digest":"{one}"}}]}}"#
            ),
            format!(r#""{one}":{{"kind":"unknown"}}"#),
        ] {
            let text = format!(r#"{{"version":1,"manifests":{{{bad},{good}}}}}"#);
            objects.put_text("b", "k", &text).await.expect("fake put");
            let (memory, warning) = Memory::load(&store).await;
            assert!(
                warning
                    .as_deref()
                    .is_some_and(|w| w.contains("1 entries that do not read were dropped")),
                "{text}: {warning:?}"
            );
            assert_eq!(memory.get(&digest(1)), None);
            assert!(memory.get(&digest(2)).is_some(), "{text}");
            assert!(
                memory.save(&store, true).await.unwrap().0,
                "rewritten without it"
            );
        }
        // A file that cannot be read (a directory) is a warning, and is never overwritten.
        let dir = std::env::temp_dir().join(format!("ptc-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::File(dir.clone());
        let (memory, warning) = Memory::load(&store).await;
        assert!(warning.unwrap().contains("unreadable"));
        memory.learn(digest(1), image(1));
        assert!(!memory.save(&store, true).await.unwrap().0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A state past what a run reads keeps what fits, readable, and says what it left out
    /// (two-platform images of 8 layers take about 2.3 KB each: 8 MiB holds about 3,600).
    #[test]
    fn a_state_too_large_keeps_what_fits() {
        let many: BTreeMap<Digest, Known> = (0..200u8)
            .map(|n| {
                (
                    digest(n),
                    Known::Image {
                        blobs: (0..9)
                            .map(|_| Blob {
                                digest: digest(n),
                                size: 123_456,
                            })
                            .collect(),
                    },
                )
            })
            .collect();
        let (whole, warning) = fit(many.clone(), MAX_OBJECT_BYTES).unwrap();
        assert_eq!(warning, None);
        let per_image = whole.len() / 200;
        assert!(
            (800..1100).contains(&per_image),
            "{per_image} bytes per image manifest"
        );
        let (text, warning) = fit(many, 50_000).unwrap();
        assert!(text.len() <= 50_000, "{}", text.len());
        let (kept, dropped) = parse(&text).expect("what is written can be read back");
        assert_eq!(dropped, 0);
        assert!(kept.len() > 40 && kept.len() < 200, "{}", kept.len());
        let warning = warning.unwrap();
        assert!(
            warning.contains(&format!("{} of 200 manifests", 200 - kept.len())),
            "{warning}"
        );
    }

    /// Review of issue 18: an index whose entries a setting could not spell (`x86-64`, an
    /// empty variant) is remembered as it is and read back; an index with no entry is not
    /// remembered at all (its image is pulled each run) rather than poisoning the state.
    #[tokio::test]
    async fn what_a_pull_saw_is_what_the_next_run_reads() {
        let objects = FakeObjects::default();
        let store = Store::S3 {
            objects: &objects,
            bucket: "b".into(),
            key: "k".into(),
        };
        let odd = Known::Index {
            entries: vec![IndexEntry {
                platform: Some(Platform {
                    os: "linux".into(),
                    architecture: "x86-64".into(),
                    variant: Some(String::new()),
                }),
                digest: digest(5),
            }],
        };
        let (memory, _) = Memory::load(&store).await;
        memory.learn(digest(4), odd.clone());
        memory.learn(digest(6), Known::Index { entries: vec![] });
        assert!(memory.save(&store, true).await.unwrap().0);
        let (again, warning) = Memory::load(&store).await;
        assert_eq!(warning, None);
        assert_eq!(again.get(&digest(4)), Some(odd));
        assert_eq!(again.get(&digest(6)), None);
    }

    #[tokio::test]
    async fn a_file_store_round_trips() {
        let path = std::env::temp_dir()
            .join(format!("ptc-state-file-{}", std::process::id()))
            .join("state.json");
        let store = Store::File(path.clone());
        let (memory, _) = Memory::load(&store).await;
        memory.learn(digest(3), image(4));
        assert!(memory.save(&store, true).await.unwrap().0);
        let (again, warning) = Memory::load(&store).await;
        assert_eq!(warning, None);
        assert_eq!(again.get(&digest(3)), Some(image(4)));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
