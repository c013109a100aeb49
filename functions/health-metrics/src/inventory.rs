//! The inventory: every repository under a rule prefix and its images, summed per prefix.

use std::collections::BTreeMap;

use ptc_core::ecr::{ImageDetail, Repository};
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

/// One repository's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RepositoryInventory {
    /// The repository name.
    pub repository: String,
    /// Images `DescribeImages` lists: every manifest ECR holds, indexes and the platform
    /// manifests they point to included.
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
    /// Images whose `imageSizeInBytes` is negative or above [`MAX_PLAUSIBLE_IMAGE_BYTES`]:
    /// left out of the byte sums (an answer from the API is not trusted blindly).
    #[serde(skip_serializing_if = "is_zero")]
    pub implausible_sizes: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl RepositoryInventory {
    /// The figures of one repository from its `DescribeImages` answer; an image counts as
    /// not pulled when its last recorded pull (or push) is before `now - unused_days`.
    pub fn of(
        repository: &Repository,
        images: &[ImageDetail],
        now: OffsetDateTime,
        unused_days: u32,
    ) -> Self {
        let unused_before = now - time::Duration::days(i64::from(unused_days));
        let mut out = Self {
            repository: repository.name.clone(),
            images: images.len(),
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
    /// Their images, indexes and platform manifests included (metric `Images`).
    pub images: usize,
    /// Their untagged images (metric `UntaggedImages`).
    pub untagged_images: usize,
    /// Bytes of their single-platform images (metric `StoredBytes`, unit `Bytes`): a layer
    /// shared by several images counts once per image. Saturates at `u64::MAX`.
    pub stored_bytes: u64,
    /// Bytes of their untagged single-platform images (metric `UntaggedBytes`, unit
    /// `Bytes`).
    pub untagged_bytes: u64,
    /// `stored_bytes` at the configured price per GB-month. An upper estimate: ECR stores a
    /// layer shared by several images once. Rounded to 1/10,000 USD; metric
    /// `EstimatedMonthlyStorageCostUSD` (unit `None`).
    pub estimated_monthly_cost_usd: f64,
    /// Days since the oldest `imagePushedAt` under the prefix, to the hundredth (metric
    /// `OldestImageAgeDays`, unit `None`); `None`, and not published, when no image has a
    /// push date.
    pub oldest_image_age_days: Option<f64>,
    /// Images whose last recorded pull (or push, if never pulled) is more than
    /// `PTC_UNUSED_DAYS` old (metric `ImagesNotPulled`).
    pub images_not_pulled: usize,
    /// Repositories that could not be read (named in the report's errors).
    pub unreadable_repositories: usize,
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
        self.implausible_sizes += repo.implausible_sizes;
        self.images_not_pulled += repo.images_not_pulled;
        if let Some(pushed) = repo.oldest_pushed_at {
            let age =
                ((now.unix_timestamp() - pushed).max(0) as f64 / DAY_SECS * 100.0).round() / 100.0;
            self.oldest_image_age_days =
                Some(self.oldest_image_age_days.map_or(age, |a| a.max(age)));
        }
    }

    /// Set `estimated_monthly_cost_usd` from `stored_bytes` at `usd_per_gb_month` per
    /// [`GB`].
    pub fn price(&mut self, usd_per_gb_month: f64) {
        let cost = self.stored_bytes as f64 / GB * usd_per_gb_month;
        self.estimated_monthly_cost_usd = (cost * 10_000.0).round() / 10_000.0;
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
        use ptc_core::ecr::{ImageDetail, Repository};
        let repo = Repository {
            name: "quay/a".into(),
            arn: String::new(),
            uri: String::new(),
            created_at: None,
            tag_mutability: "MUTABLE".into(),
            scan_on_push: false,
        };
        let image = |size: i64| ImageDetail {
            digest: format!("sha256:{size}"),
            tags: vec!["t".into()],
            size_bytes: Some(size),
            pushed_at: None,
            last_pulled_at: None,
            media_type: None,
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
        p.price(0.10);
        assert_eq!(p.oldest_image_age_days, Some(40.0));
        assert_eq!(p.repositories, 1);
        assert!((p.estimated_monthly_cost_usd - 0.0).abs() < 1e-3);
        p.stored_bytes = 512 * 1024 * 1024 * 1024;
        p.price(0.10);
        assert_eq!(p.estimated_monthly_cost_usd, 51.2);
    }
}
