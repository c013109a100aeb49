//! The inventory: every repository under a rule prefix and its images, summed per prefix.
//!
//! Images in the standard storage class (`ACTIVE`, the pullable ones) and images in the
//! archive storage class are counted and priced apart: since November 2025 an image can be
//! archived (by a lifecycle rule's `transition` action or by hand), and an archived image is
//! still stored and billed, at the archive storage price, but cannot be pulled
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/archive_restore_image.html>).

use std::collections::BTreeMap;

use ptc_core::ecr::{ImageDetail, ImageStatus, Repository};
use serde::Serialize;
use time::OffsetDateTime;

/// Bytes in the GB that ECR prices storage by (GiB, as AWS bills it).
pub const GB: f64 = 1024.0 * 1024.0 * 1024.0;
const DAY_SECS: f64 = 86_400.0;

/// The largest `imageSizeInBytes` believed: 10 TiB. ECR's largest layer is 52,000 MiB and an
/// image has at most a few hundred layers in practice (ECR service quotas); a larger value
/// from the API is counted in `implausible_sizes`, left out of the sums and reported.
pub const MAX_PLAUSIBLE_IMAGE_BYTES: u64 = 10 * 1024 * 1024 * 1024 * 1024;

/// Is this media type an index (OCI image index or Docker manifest list)?
pub fn is_index(media_type: Option<&str>) -> bool {
    media_type.is_some_and(|m| m.contains("image.index") || m.contains("manifest.list"))
}

/// One repository's figures. Every figure but the `archived_*` ones and
/// `implausible_sizes` counts active images only (the standard storage class: what a pull
/// can be served from, and what `DescribeImages` listed before the archive storage class).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RepositoryInventory {
    /// The repository name.
    pub repository: String,
    /// Active images (`imageStatus` `ACTIVE`): every manifest ECR holds in the standard
    /// storage class, indexes and the platform manifests they point to included.
    pub images: usize,
    /// Of those, multi-platform indexes (OCI image index or Docker manifest list).
    pub indexes: usize,
    /// Of those, images without a tag (platform manifests of an index among them).
    pub untagged_images: usize,
    /// Sum of `imageSizeInBytes` over single-platform images (an index's size is its
    /// children's, so it is not counted again).
    pub stored_bytes: u64,
    /// The part of `stored_bytes` in untagged single-platform images.
    pub untagged_bytes: u64,
    /// The earliest `imagePushedAt`, in seconds since the Unix epoch; `None` when no
    /// image has a push date.
    pub oldest_pushed_at: Option<i64>,
    /// Images whose last recorded pull (or push, if never pulled) is older than the limit.
    pub images_not_pulled: usize,
    /// Images that are not active: `ARCHIVED`, or `ACTIVATING` (being restored) or a status
    /// this code does not know. None of them can be pulled; all are counted as stored in the
    /// archive storage class (a restore is assumed billed as archived until it completes:
    /// AWS does not say).
    pub archived_images: usize,
    /// Of those, the ones being restored (`ACTIVATING`, up to 20 minutes).
    #[serde(skip_serializing_if = "is_zero")]
    pub activating_images: usize,
    /// Sum of `imageSizeInBytes` over the archived single-platform images, in bytes (an
    /// archived index is not counted again, as for [`stored_bytes`](Self::stored_bytes)).
    pub archived_bytes: u64,
    /// Images (of any status) whose `imageSizeInBytes` is negative or above
    /// [`MAX_PLAUSIBLE_IMAGE_BYTES`]: left out of the byte sums (an answer from the API is not
    /// trusted blindly).
    #[serde(skip_serializing_if = "is_zero")]
    pub implausible_sizes: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl RepositoryInventory {
    /// The figures of one repository from its `DescribeImages` answer with every status
    /// (`filter.imageStatus` `ANY`); an active image counts as not pulled when its last
    /// recorded pull (or push) is before `now - unused_days`.
    pub fn of(
        repository: &Repository,
        images: &[ImageDetail],
        now: OffsetDateTime,
        unused_days: u32,
    ) -> Self {
        let unused_before = now - time::Duration::days(i64::from(unused_days));
        let mut out = Self {
            repository: repository.name.clone(),
            ..Self::default()
        };
        for image in images {
            let index = is_index(image.media_type.as_deref());
            let size = match u64::try_from(image.size_bytes.unwrap_or(0)) {
                Ok(size) if size <= MAX_PLAUSIBLE_IMAGE_BYTES => size,
                _ => {
                    out.implausible_sizes += 1;
                    0
                }
            };
            if !image.status.is_pullable() {
                out.archived_images += 1;
                out.activating_images += usize::from(image.status == ImageStatus::Activating);
                if !index {
                    out.archived_bytes = out.archived_bytes.saturating_add(size);
                }
                continue;
            }
            out.images += 1;
            out.indexes += usize::from(index);
            if image.tags.is_empty() {
                out.untagged_images += 1;
                if !index {
                    out.untagged_bytes = out.untagged_bytes.saturating_add(size);
                }
            }
            if !index {
                out.stored_bytes = out.stored_bytes.saturating_add(size);
            }
            if let Some(pushed) = image.pushed_at {
                let t = pushed.unix_timestamp();
                out.oldest_pushed_at = Some(out.oldest_pushed_at.map_or(t, |o| o.min(t)));
            }
            let last_use = image.last_pulled_at.or(image.pushed_at);
            if last_use.is_some_and(|t| t < unused_before) {
                out.images_not_pulled += 1;
            }
        }
        out
    }
}

/// One rule prefix's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PrefixInventory {
    /// The rule prefix: the `Prefix` dimension of its metrics.
    pub prefix: String,
    /// The rule's upstream registry host (`quay.io`, ...).
    pub upstream: String,
    /// Repositories under the prefix whose images were listed (metric `Repositories`).
    pub repositories: usize,
    /// Their active images, indexes and platform manifests included (metric `Images`);
    /// archived ones are in [`archived_images`](Self::archived_images).
    pub images: usize,
    /// Their untagged active images (metric `UntaggedImages`).
    pub untagged_images: usize,
    /// Bytes of their active single-platform images, in the standard storage class (metric
    /// `StoredBytes`, unit `Bytes`): a layer shared by several images counts once per image.
    /// Saturates at `u64::MAX`.
    pub stored_bytes: u64,
    /// Bytes of their untagged active single-platform images (metric `UntaggedBytes`, unit
    /// `Bytes`).
    pub untagged_bytes: u64,
    /// `stored_bytes` at the configured price per GB-month. An upper estimate: ECR stores a
    /// layer shared by several images once. Rounded to 1/10,000 USD; metric
    /// `EstimatedMonthlyStorageCostUSD` (unit `None`). Archived images are not in it: see
    /// [`estimated_monthly_archive_cost_usd`](Self::estimated_monthly_archive_cost_usd); the
    /// prefix's storage bill is the sum of the two.
    pub estimated_monthly_cost_usd: f64,
    /// Archived images under the prefix (`ARCHIVED`, and `ACTIVATING` ones being restored):
    /// stored and billed, never pullable (metric `ArchivedImages`, unit `Count`). Not in
    /// [`images`](Self::images) nor in any figure above.
    pub archived_images: usize,
    /// Of those, the ones being restored (`ACTIVATING`); not published.
    #[serde(skip_serializing_if = "is_zero")]
    pub activating_images: usize,
    /// Bytes of the archived single-platform images (metric `ArchivedBytes`, unit `Bytes`).
    /// Saturates at `u64::MAX`.
    pub archived_bytes: u64,
    /// `archived_bytes` at the configured archive storage price per GB-month
    /// (`PTC_ARCHIVE_STORAGE_PRICE_GB_MONTH`), in USD, rounded to 1/10,000 USD; metric
    /// `EstimatedMonthlyArchiveStorageCostUSD` (unit `None`). An upper estimate, as for
    /// active images. Archive retrieval fees and the 90-day minimum storage charge are not
    /// in it.
    pub estimated_monthly_archive_cost_usd: f64,
    /// Days since the oldest `imagePushedAt` of an active image under the prefix, to the
    /// hundredth (metric
    /// `OldestImageAgeDays`, unit `None`); `None`, and not published, when no image has a
    /// push date.
    pub oldest_image_age_days: Option<f64>,
    /// Active images whose last recorded pull (or push, if never pulled) is more than
    /// `PTC_UNUSED_DAYS` old (metric `ImagesNotPulled`).
    pub images_not_pulled: usize,
    /// Repositories that could not be read (named in the report's errors).
    pub unreadable_repositories: usize,
    /// Repositories whose images were not listed before the invocation's deadline (not
    /// started, or cut; see [`crate::deadline`]). Not 0: every figure above is partial, so
    /// none of the prefix's own series is published (see [`PrefixInventory::read_whole`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub not_read_repositories: usize,
    /// Images whose size from the API was not believed (see
    /// [`RepositoryInventory::implausible_sizes`]); reported as a warning.
    #[serde(skip_serializing_if = "is_zero")]
    pub implausible_sizes: usize,
    /// Each repository's figures, by name; filled only with `PTC_METRICS_PER_REPOSITORY`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_repository: Vec<RepositoryInventory>,
}

impl PrefixInventory {
    /// A prefix with no repository yet.
    pub fn new(prefix: &str, upstream: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            upstream: upstream.to_owned(),
            ..Self::default()
        }
    }

    /// Add one repository's figures (sums saturate, never wrap); the oldest image's age is
    /// measured from `now`.
    pub fn add(&mut self, repo: &RepositoryInventory, now: OffsetDateTime) {
        self.repositories += 1;
        self.images += repo.images;
        self.untagged_images += repo.untagged_images;
        self.stored_bytes = self.stored_bytes.saturating_add(repo.stored_bytes);
        self.untagged_bytes = self.untagged_bytes.saturating_add(repo.untagged_bytes);
        self.archived_images += repo.archived_images;
        self.activating_images += repo.activating_images;
        self.archived_bytes = self.archived_bytes.saturating_add(repo.archived_bytes);
        self.implausible_sizes += repo.implausible_sizes;
        self.images_not_pulled += repo.images_not_pulled;
        if let Some(pushed) = repo.oldest_pushed_at {
            let age =
                ((now.unix_timestamp() - pushed).max(0) as f64 / DAY_SECS * 100.0).round() / 100.0;
            self.oldest_image_age_days =
                Some(self.oldest_image_age_days.map_or(age, |a| a.max(age)));
        }
    }

    /// Were all its repositories read (an unreadable one, named in the errors, aside)? Only
    /// then are its figures published.
    pub fn read_whole(&self) -> bool {
        self.not_read_repositories == 0
    }

    /// Set `estimated_monthly_cost_usd` from `stored_bytes` at `usd_per_gb_month` per
    /// [`GB`], and `estimated_monthly_archive_cost_usd` from `archived_bytes` at
    /// `archive_usd_per_gb_month` per [`GB`].
    pub fn price(&mut self, usd_per_gb_month: f64, archive_usd_per_gb_month: f64) {
        let usd =
            |bytes: u64, price: f64| (bytes as f64 / GB * price * 10_000.0).round() / 10_000.0;
        self.estimated_monthly_cost_usd = usd(self.stored_bytes, usd_per_gb_month);
        self.estimated_monthly_archive_cost_usd =
            usd(self.archived_bytes, archive_usd_per_gb_month);
    }
}

/// Sum repositories into their prefixes (`BTreeMap` by prefix, so the report is ordered).
pub fn by_prefix(
    prefixes: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, PrefixInventory> {
    prefixes
        .into_iter()
        .map(|(p, upstream)| (p.clone(), PrefixInventory::new(&p, &upstream)))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn absurd_sizes_from_the_api_are_left_out_never_a_panic() {
        use ptc_core::ecr::{ImageDetail, ImageStatus, Repository};
        let repo = Repository {
            name: "quay/a".into(),
            arn: String::new(),
            uri: String::new(),
            created_at: None,
            tag_mutability: "MUTABLE".into(),
            tag_mutability_exclusions: Vec::new(),
            scan_on_push: false,
        };
        let image = |size: i64| ImageDetail {
            digest: format!("sha256:{size}"),
            tags: vec!["t".into()],
            size_bytes: Some(size),
            pushed_at: None,
            last_pulled_at: None,
            media_type: None,
            status: ImageStatus::Active,
            last_archived_at: None,
            last_activated_at: None,
        };
        let images = [image(i64::MAX), image(i64::MAX - 1), image(-5), image(100)];
        let inventory =
            super::RepositoryInventory::of(&repo, &images, time::OffsetDateTime::now_utc(), 30);
        assert_eq!(inventory.stored_bytes, 100);
        assert_eq!(inventory.implausible_sizes, 3);
        let mut prefix = super::PrefixInventory::new("quay", "quay.io");
        prefix.add(&inventory, time::OffsetDateTime::now_utc());
        let mut huge = inventory.clone();
        huge.stored_bytes = u64::MAX;
        prefix.add(&huge, time::OffsetDateTime::now_utc());
        assert_eq!(prefix.stored_bytes, u64::MAX, "saturates, never wraps");
        assert_eq!(prefix.implausible_sizes, 6);
    }

    use super::*;

    fn image(
        tags: &[&str],
        size: i64,
        media: &str,
        pushed_days: i64,
        pulled_days: Option<i64>,
    ) -> ImageDetail {
        let now = OffsetDateTime::now_utc();
        ImageDetail {
            digest: format!("sha256:{:064x}", size),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            size_bytes: Some(size),
            pushed_at: Some(now - time::Duration::days(pushed_days)),
            last_pulled_at: pulled_days.map(|d| now - time::Duration::days(d)),
            media_type: Some(media.to_owned()),
            status: ImageStatus::Active,
            last_archived_at: None,
            last_activated_at: None,
        }
    }

    #[test]
    fn sums_sizes_without_counting_an_index_twice() {
        let repo = Repository {
            name: "quay/a".into(),
            arn: String::new(),
            uri: String::new(),
            created_at: None,
            tag_mutability: "MUTABLE".into(),
            tag_mutability_exclusions: Vec::new(),
            scan_on_push: false,
        };
        let manifest = "application/vnd.oci.image.manifest.v1+json";
        let images = [
            image(
                &["v1"],
                300,
                "application/vnd.oci.image.index.v1+json",
                40,
                Some(1),
            ),
            image(&[], 300, manifest, 40, Some(1)),
            image(&[], 200, manifest, 40, None),
            image(
                &["v0"],
                1000,
                "application/vnd.docker.distribution.manifest.v2+json",
                10,
                Some(35),
            ),
        ];
        let now = OffsetDateTime::now_utc();
        let r = RepositoryInventory::of(&repo, &images, now, 30);
        assert_eq!(r.images, 4);
        assert_eq!(r.indexes, 1);
        assert_eq!(r.stored_bytes, 1500, "the index's 300 is its child's");
        assert_eq!((r.untagged_images, r.untagged_bytes), (2, 500));
        assert_eq!(
            r.images_not_pulled, 2,
            "never pulled and pushed 40 days ago; pulled 35 days ago"
        );
        let mut p = PrefixInventory::new("quay", "quay.io");
        p.add(&r, now);
        p.price(0.10, 0.07);
        assert_eq!(p.oldest_image_age_days, Some(40.0));
        assert_eq!(p.repositories, 1);
        assert!((p.estimated_monthly_cost_usd - 0.0).abs() < 1e-3);
        p.stored_bytes = 512 * 1024 * 1024 * 1024;
        p.price(0.10, 0.07);
        assert_eq!(p.estimated_monthly_cost_usd, 51.2);
    }
}

#[cfg(test)]
mod archive_tests {
    use ptc_core::ecr::{ImageDetail, ImageStatus};

    use super::*;

    fn image(digest: u8, size: i64, media: &str, status: ImageStatus) -> ImageDetail {
        ImageDetail {
            digest: format!("sha256:{}", format!("{digest:02x}").repeat(32)),
            tags: vec![format!("v{digest}")],
            size_bytes: Some(size),
            pushed_at: Some(OffsetDateTime::now_utc() - time::Duration::days(400)),
            last_pulled_at: None,
            media_type: Some(media.into()),
            status,
            last_archived_at: None,
            last_activated_at: None,
        }
    }

    /// Archived (and activating) images are counted, sized and priced apart from active ones,
    /// and stay out of every figure of the active images.
    #[test]
    fn archived_images_are_counted_and_priced_apart() {
        let repo = ptc_tests::fixtures::repository("quay/a");
        let manifest = "application/vnd.oci.image.manifest.v1+json";
        let index = "application/vnd.oci.image.index.v1+json";
        let now = OffsetDateTime::now_utc();
        let images = [
            image(1, 3 * GB as i64, manifest, ImageStatus::Active),
            image(2, 5 * GB as i64, manifest, ImageStatus::Archived),
            image(3, 5 * GB as i64, index, ImageStatus::Archived),
            image(4, 2 * GB as i64, manifest, ImageStatus::Activating),
        ];
        let r = RepositoryInventory::of(&repo, &images, now, 30);
        assert_eq!((r.images, r.indexes), (1, 0), "active images only");
        assert_eq!(r.stored_bytes, 3 * GB as u64);
        assert_eq!(
            r.images_not_pulled, 1,
            "an archived image is not an unused active one"
        );
        assert_eq!((r.archived_images, r.activating_images), (3, 1));
        assert_eq!(
            r.archived_bytes,
            7 * GB as u64,
            "the archived index's size is its children's"
        );
        let mut p = PrefixInventory::new("quay", "quay.io");
        p.add(&r, now);
        p.add(&r, now);
        p.price(0.10, 0.07);
        assert_eq!((p.images, p.archived_images), (2, 6));
        assert_eq!(p.archived_bytes, 14 * GB as u64);
        assert_eq!(p.estimated_monthly_cost_usd, 0.6, "6 GiB at $0.10");
        assert_eq!(
            p.estimated_monthly_archive_cost_usd, 0.98,
            "14 GiB at the archive price, $0.07"
        );
    }
}
