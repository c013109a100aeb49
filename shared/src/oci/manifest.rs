//! Manifests as the registry sends them: checked against their digest, bounded in size and
//! in descriptors, parsed into an index (platform entries) or an image (config and layers).

use crate::oci::{RateLimit, RegistryError};
use crate::platform::Platform;
use crate::reference::Digest;

/// Registries cap manifests at 4 MiB (4,194,304 bytes); anything larger is refused unread.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Most descriptors one manifest may list (index entries, or config and layers). Real images
/// have a few dozen layers (overlay filesystems stack at most about 128); a manifest listing
/// more is refused rather than fetched blob by blob.
pub const MAX_MANIFEST_DESCRIPTORS: usize = 1000;

/// A content descriptor in a manifest: an index entry (one platform's manifest), or an image's
/// config or a layer
/// (<https://github.com/opencontainers/image-spec/blob/main/descriptor.md>).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Descriptor {
    /// `mediaType`; empty when absent.
    pub media_type: String,
    /// `digest`: `sha256:<64 hex>` or `sha512:<128 hex>` (validated when parsed).
    pub digest: Digest,
    /// `size` in bytes; [`RegistryClient::get_blob`](crate::oci::RegistryClient::get_blob) reads no
    /// more.
    pub size: u64,
    /// `platform` of an index entry; `None` when absent or without `os` or `architecture`.
    pub platform: Option<Platform>,
}

/// What a manifest lists: the platforms' manifests, or one image's blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestKind {
    /// OCI index or Docker manifest list.
    Index(Vec<Descriptor>),
    /// Single-platform image.
    Image {
        /// `config`: the image configuration blob.
        config: Descriptor,
        /// `layers`, in order (fewer than [`MAX_MANIFEST_DESCRIPTORS`] with the config).
        layers: Vec<Descriptor>,
    },
}

/// A manifest as the registry sent it, checked and parsed ([`Manifest::parse`]), as
/// [`RegistryClient::get_manifest`](crate::oci::RegistryClient::get_manifest) returns it.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The body's `mediaType`, else the `Content-Type` header without parameters, else empty; e.g.
    /// [`OCI_INDEX`](crate::oci::OCI_INDEX).
    pub media_type: String,
    /// The sha256 digest of the body (whatever algorithm the request named).
    pub digest: Digest,
    /// The body as received, at most [`MAX_MANIFEST_BYTES`].
    pub body: Vec<u8>,
    /// What it lists.
    pub kind: ManifestKind,
    /// The `ratelimit-*` headers of the answer (all `None` when parsed without one).
    pub rate_limit: RateLimit,
}

impl Manifest {
    /// Parse and check a manifest body. `requested` is the digest asked for, if any.
    ///
    /// `url` only names the manifest in errors; `content_type` is the answer's header.
    /// [`RegistryError::DigestMismatch`] when the body's digest, in `requested`'s
    /// algorithm, is not `requested`. [`RegistryError::InvalidManifest`] when the body is
    /// not a JSON object, its `schemaVersion` is not 2, it has neither `manifests` nor
    /// `config` and `layers`, it lists more than [`MAX_MANIFEST_DESCRIPTORS`] blobs, or a
    /// descriptor lacks a valid `digest` or a `size`.
    pub fn parse(
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        requested: Option<&Digest>,
    ) -> Result<Self, RegistryError> {
        let invalid = |reason: String| RegistryError::InvalidManifest {
            url: url.to_owned(),
            reason,
        };
        let digest = Digest::sha256_of(&body);
        // Checked in the requested digest's own algorithm (sha256 or sha512).
        if let Some(want) = requested {
            let actual = want.of_content(&body);
            if actual != *want {
                return Err(RegistryError::DigestMismatch {
                    url: url.to_owned(),
                    expected: want.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| invalid(format!("not JSON ({e})")))?;
        let object = doc
            .as_object()
            .ok_or_else(|| invalid("not a JSON object".into()))?;
        if object.get("schemaVersion").and_then(|v| v.as_u64()) != Some(2) {
            return Err(invalid(
                "schemaVersion is not 2 (Docker schema 1 is not supported)".into(),
            ));
        }
        let media_type = object
            .get("mediaType")
            .and_then(|v| v.as_str())
            .or(content_type.map(|c| c.split(';').next().unwrap_or(c).trim()))
            .unwrap_or_default()
            .to_owned();
        let descriptor =
            |value: &serde_json::Value, what: &str| -> Result<Descriptor, RegistryError> {
                let digest_text = value
                    .get("digest")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| invalid(format!("{what} has no digest")))?;
                let digest = Digest::parse(digest_text)
                    .map_err(|r| invalid(format!("{what} digest {digest_text:?}: {r}")))?;
                let size = value
                    .get("size")
                    .and_then(|v| v.as_u64())
                    .ok_or_else(|| invalid(format!("{what} has no size")))?;
                let platform = value.get("platform").and_then(|p| {
                    let os = p.get("os")?.as_str()?;
                    let arch = p.get("architecture")?.as_str()?;
                    Some(Platform {
                        os: os.to_owned(),
                        architecture: arch.to_owned(),
                        variant: p.get("variant").and_then(|v| v.as_str()).map(str::to_owned),
                    })
                });
                Ok(Descriptor {
                    media_type: value
                        .get("mediaType")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    digest,
                    size,
                    platform,
                })
            };
        let kind = if let Some(children) = object.get("manifests") {
            let children = children
                .as_array()
                .ok_or_else(|| invalid("manifests is not an array".into()))?;
            if children.len() > MAX_MANIFEST_DESCRIPTORS {
                return Err(invalid(format!(
                    "{} index entries, more than {MAX_MANIFEST_DESCRIPTORS}",
                    children.len()
                )));
            }
            ManifestKind::Index(
                children
                    .iter()
                    .map(|c| descriptor(c, "index entry"))
                    .collect::<Result<_, _>>()?,
            )
        } else {
            let config = object
                .get("config")
                .ok_or_else(|| invalid("neither manifests nor config".into()))?;
            let layers = object
                .get("layers")
                .and_then(|l| l.as_array())
                .ok_or_else(|| invalid("layers missing".into()))?;
            if layers.len() >= MAX_MANIFEST_DESCRIPTORS {
                return Err(invalid(format!(
                    "{} layers, more than {} blobs with the config",
                    layers.len(),
                    MAX_MANIFEST_DESCRIPTORS
                )));
            }
            ManifestKind::Image {
                config: descriptor(config, "config")?,
                layers: layers
                    .iter()
                    .map(|l| descriptor(l, "layer"))
                    .collect::<Result<_, _>>()?,
            }
        };
        Ok(Self {
            media_type,
            digest,
            body,
            kind,
            rate_limit: RateLimit::default(),
        })
    }

    /// Whether it is an index (OCI image index or Docker manifest list).
    pub fn is_index(&self) -> bool {
        matches!(self.kind, ManifestKind::Index(_))
    }

    /// The index entry a node of `wanted` would pull: the one earliest in its
    /// [`Platform::preference`], as containerd chooses (`linux/arm64/v8` takes an `arm64`
    /// entry without a variant; `linux/arm` takes `arm/v7` before `arm/v6`).
    pub fn platform_entry(&self, wanted: &Platform) -> Option<&Descriptor> {
        let ManifestKind::Index(entries) = &self.kind else {
            return None;
        };
        wanted.choose(entries.iter().map(|d| (d.platform.as_ref(), d)))
    }
}

/// What a HEAD on a manifest says: its headers, no body
/// (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md#checking-if-content-exists-in-the-registry>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// `Docker-Content-Digest`, when present and a valid digest.
    pub digest: Option<Digest>,
    /// `Content-Type`, as sent.
    pub media_type: Option<String>,
    /// `Content-Length`: the manifest's size in bytes.
    pub size: Option<u64>,
    /// The `ratelimit-*` headers (a HEAD does not count as a Docker Hub pull).
    pub rate_limit: RateLimit,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{OCI_INDEX, OCI_MANIFEST};

    const U: &str = "http://r/v2/x/manifests/1";

    #[test]
    fn parses_an_index_with_platforms() {
        let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":10,"platform":{"os":"linux","architecture":"amd64"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":10,"platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}"#;
        let m = Manifest::parse(U, None, body.to_vec(), None).unwrap();
        assert!(m.is_index());
        assert_eq!(m.media_type, OCI_INDEX);
        let amd = Platform::parse("linux/amd64").unwrap();
        assert!(
            m.platform_entry(&amd)
                .unwrap()
                .digest
                .as_str()
                .starts_with("sha256:1111")
        );
        assert!(
            m.platform_entry(&Platform::parse("linux/arm").unwrap())
                .is_some()
        );
        assert!(
            m.platform_entry(&Platform::parse("linux/arm/v6").unwrap())
                .is_none()
        );
        // An arm64 node runs the 32-bit arm image when no arm64 one is published
        // (containerd's platforms.Only).
        assert!(
            m.platform_entry(&Platform::parse("linux/arm64").unwrap())
                .unwrap()
                .digest
                .as_str()
                .starts_with("sha256:2222")
        );
    }

    #[test]
    fn the_entry_a_node_pulls_is_chosen_by_preference_not_by_order() {
        // alpine and busybox list arm/v6 before arm/v7: an arm/v7 node pulls v7, and an
        // amd64 node pulls amd64 (v1) before amd64/v3 (containerd's platforms.Only).
        let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":10,"platform":{"os":"linux","architecture":"amd64","variant":"v3"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":10,"platform":{"os":"linux","architecture":"amd64"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:6666666666666666666666666666666666666666666666666666666666666666","size":10,"platform":{"os":"linux","architecture":"arm","variant":"v6"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:7777777777777777777777777777777777777777777777777777777777777777","size":10,"platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}"#;
        let m = Manifest::parse(U, None, body.to_vec(), None).unwrap();
        let pick = |wanted: &str| {
            m.platform_entry(&Platform::parse(wanted).unwrap())
                .map(|d| d.digest.as_str()[7..11].to_owned())
        };
        assert_eq!(pick("linux/arm").as_deref(), Some("7777"));
        assert_eq!(pick("linux/arm/v6").as_deref(), Some("6666"));
        assert_eq!(pick("linux/amd64").as_deref(), Some("1111"));
        assert_eq!(pick("linux/amd64/v3").as_deref(), Some("3333"));
        assert_eq!(pick("linux/arm64").as_deref(), Some("7777"));
        assert_eq!(pick("linux/s390x"), None);
    }

    #[test]
    fn parses_an_image_using_content_type_when_body_has_none() {
        let body = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":5},"layers":[]}"#;
        let m = Manifest::parse(
            U,
            Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
            body.to_vec(),
            None,
        )
        .unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert!(matches!(m.kind, ManifestKind::Image { ref layers, .. } if layers.is_empty()));
        assert_eq!(m.digest, Digest::sha256_of(body));
    }

    #[test]
    fn rejects_bad_manifests() {
        let cases: [&[u8]; 6] = [
            b"not json",
            br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:1"#,
            br#"[1,2]"#,
            br#"{"schemaVersion":1,"fsLayers":[]}"#,
            br#"{"schemaVersion":2}"#,
            br#"{"schemaVersion":2,"manifests":[{"digest":"md5:1","size":1}]}"#,
        ];
        for body in cases {
            let err = Manifest::parse(U, None, body.to_vec(), None).unwrap_err();
            assert!(
                matches!(err, RegistryError::InvalidManifest { .. }),
                "{err:?}"
            );
            assert!(err.to_string().contains(U));
        }
        let other = Digest::sha256_of(b"other");
        let err = Manifest::parse(
            U,
            None,
            br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(),
            Some(&other),
        )
        .unwrap_err();
        assert!(matches!(err, RegistryError::DigestMismatch { .. }));
    }
}
