//! The aws-sdk adapter of the ECR port ([`crate::ecr`]): [`SdkEcr`] implements
//! [`EcrApi`], [`EcrSettingsApi`] and [`EcrTemplatesApi`] on one `aws_sdk_ecr::Client`.
//! Pages are followed to the end (`maxResults` 1000); SDK answers are validated and turned
//! into domain types, SDK errors into [`AwsError`] (retries and timeouts: [`crate::aws`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ecr::Client;
use aws_sdk_ecr::types::{DescribeImagesFilter, ImageIdentifier, ImageStatusFilter};
use time::OffsetDateTime;

use crate::aws::to_time;
use crate::ecr::*;
use crate::error::{AwsError, AwsErrorKind};
use crate::oci::MANIFEST_ACCEPT;
use crate::rules::{Prefix, PtcRule, UpstreamKind, normalise_upstream_url};

/// The aws-sdk adapter of [`EcrApi`], [`EcrSettingsApi`] and [`EcrTemplatesApi`].
#[derive(Clone)]
pub struct SdkEcr {
    client: Client,
    /// The client's region (empty when it has none), for the registry's ARNs.
    region: String,
}

impl SdkEcr {
    /// The adapter on an ECR client (see [`crate::aws::AwsClients`]).
    pub fn new(client: Client) -> Self {
        let region = client
            .config()
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_default();
        Self { client, region }
    }
}

/// Every page of a `DescribeImages` request (the caller names the operation on the client, so
/// the IAM action is read next to it) with `filter.imageStatus` = `status` and `maxResults`
/// 1000 (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImages.html>).
async fn all_images(
    request: aws_sdk_ecr::operation::describe_images::builders::DescribeImagesFluentBuilder,
    status: ImageStatusFilter,
) -> Result<Vec<ImageDetail>, AwsError> {
    let mut out = Vec::new();
    let mut pages = request
        .filter(DescribeImagesFilter::builder().image_status(status).build())
        .max_results(MAX_RESULTS)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::from_sdk("DescribeImages", e))?;
        out.extend(page.image_details().iter().map(image_detail));
    }
    Ok(out)
}

fn rule_from_sdk(rule: &aws_sdk_ecr::types::PullThroughCacheRule) -> Result<PtcRule, AwsError> {
    let bad = |what: String| AwsError {
        operation: "DescribePullThroughCacheRules",
        kind: AwsErrorKind::Service("InvalidResponse".into()),
        message: what,
    };
    let prefix_text = rule.ecr_repository_prefix().unwrap_or_default();
    let prefix = Prefix::parse(prefix_text).map_err(|e| bad(e.to_string()))?;
    let upstream_url = normalise_upstream_url(rule.upstream_registry_url().unwrap_or_default());
    // A kind the SDK or this version does not know (the SDK enum is non-exhaustive: its
    // `Unknown` gives the text ECR sent) is kept as `Other`, never an error: one rule of a
    // newer upstream must not fail the listing of every rule. Without `upstreamRegistry`
    // (older rules), the kind is the URL's, or `Other` with the URL.
    let kind = rule
        .upstream_registry()
        .map(|k| UpstreamKind::parse(k.as_str()))
        .or_else(|| UpstreamKind::from_url(&upstream_url))
        .unwrap_or_else(|| UpstreamKind::Other(upstream_url.clone()));
    Ok(PtcRule {
        prefix,
        upstream_url,
        kind,
        credential_arn: rule.credential_arn().map(str::to_owned),
        custom_role_arn: rule.custom_role_arn().map(str::to_owned),
        upstream_repository_prefix: rule.upstream_repository_prefix().map(str::to_owned),
    })
}

#[async_trait]
impl EcrApi for SdkEcr {
    #[tracing::instrument(skip(self), err(Display))]
    async fn describe_rules(&self) -> Result<Vec<PtcRule>, AwsError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_pull_through_cache_rules()
            .max_results(MAX_RESULTS)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("DescribePullThroughCacheRules", e))?;
            for rule in page.pull_through_cache_rules() {
                out.push(rule_from_sdk(rule)?);
            }
        }
        Ok(out)
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn validate_rule(&self, prefix: &str) -> Result<RuleValidation, AwsError> {
        let out = self
            .client
            .validate_pull_through_cache_rule()
            .ecr_repository_prefix(prefix)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ValidatePullThroughCacheRule", e))?;
        Ok(RuleValidation {
            prefix: out.ecr_repository_prefix().unwrap_or(prefix).to_owned(),
            is_valid: out.is_valid(),
            failure: out.failure().filter(|f| !f.is_empty()).map(str::to_owned),
        })
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn authorization_token(&self) -> Result<RegistryToken, AwsError> {
        let out = self
            .client
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetAuthorizationToken", e))?;
        let data = out.authorization_data().first().ok_or_else(|| AwsError {
            operation: "GetAuthorizationToken",
            kind: AwsErrorKind::Service("InvalidResponse".into()),
            message: "no authorizationData in the answer".into(),
        })?;
        let expires_at = to_time(data.expires_at()).unwrap_or_else(OffsetDateTime::now_utc);
        RegistryToken::decode(
            data.authorization_token().unwrap_or_default(),
            expires_at,
            data.proxy_endpoint().unwrap_or_default(),
        )
        .map_err(|message| AwsError {
            operation: "GetAuthorizationToken",
            kind: AwsErrorKind::Service("InvalidResponse".into()),
            message,
        })
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn describe_repositories(&self) -> Result<Vec<Repository>, AwsError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_repositories()
            .max_results(MAX_RESULTS)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("DescribeRepositories", e))?;
            out.extend(page.repositories().iter().map(repository));
        }
        Ok(out)
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn describe_repository(&self, name: &str) -> Result<Option<Repository>, AwsError> {
        match self
            .client
            .describe_repositories()
            .repository_names(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.repositories().first().map(repository)),
            Err(err) => {
                let err = AwsError::from_sdk("DescribeRepositories", err);
                if err.is_not_found() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    // `RepositoryNotFoundException` / `ImageNotFoundException` are ordinary answers here (a
    // repository or tag the cache has not created yet): the caller judges; no ERROR line.
    #[tracing::instrument(skip(self), err(level = "debug", Display))]
    async fn describe_images(&self, repository: &str) -> Result<Vec<ImageDetail>, AwsError> {
        let request = self.client.describe_images().repository_name(repository);
        let mut images = all_images(request, ImageStatusFilter::Active).await?;
        // ECR answers ACTIVE images only with this filter. A server that ignores the filter
        // (moto does: its DescribeImages reads no `filter`) must still not hand an archived
        // image to a caller that will treat it as pullable.
        images.retain(|i| i.status.is_pullable());
        Ok(images)
    }

    // `RepositoryNotFoundException` / `ImageNotFoundException` are ordinary answers here (a
    // repository or tag the cache has not created yet): the caller judges; no ERROR line.
    #[tracing::instrument(skip(self), err(level = "debug", Display))]
    async fn describe_images_any_status(
        &self,
        repository: &str,
    ) -> Result<Vec<ImageDetail>, AwsError> {
        let request = self.client.describe_images().repository_name(repository);
        all_images(request, ImageStatusFilter::Any).await
    }

    // `RepositoryNotFoundException` / `ImageNotFoundException` are ordinary answers here (a
    // repository or tag the cache has not created yet): the caller judges; no ERROR line.
    #[tracing::instrument(skip(self), err(level = "debug", Display))]
    async fn describe_image_ids(
        &self,
        repository: &str,
        tags: &[String],
        digests: &[String],
    ) -> Result<Vec<ImageDetail>, AwsError> {
        let ids = tags
            .iter()
            .map(|t| ImageIdentifier::builder().image_tag(t).build())
            .chain(
                digests
                    .iter()
                    .map(|d| ImageIdentifier::builder().image_digest(d).build()),
            );
        let out = self
            .client
            .describe_images()
            .repository_name(repository)
            .set_image_ids(Some(ids.collect()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeImages", e))?;
        Ok(out.image_details().iter().map(image_detail).collect())
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn image_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(String, String)>, AwsError> {
        let out = self
            .client
            .batch_get_image()
            .repository_name(repository)
            .image_ids(image_id(reference))
            .set_accepted_media_types(Some(
                MANIFEST_ACCEPT.split(", ").map(str::to_owned).collect(),
            ))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("BatchGetImage", e))?;
        Ok(out.images().first().and_then(|image| {
            let body = image.image_manifest()?.to_owned();
            let media_type = image
                .image_manifest_media_type()
                .map(str::to_owned)
                .or_else(|| {
                    serde_json::from_str::<serde_json::Value>(&body)
                        .ok()?
                        .get("mediaType")?
                        .as_str()
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            Some((media_type, body))
        }))
    }

    #[tracing::instrument(skip(self, digests), fields(digests = digests.len()), err(Display))]
    async fn layer_availability(
        &self,
        repository: &str,
        digests: &[String],
    ) -> Result<LayerAvailability, AwsError> {
        let mut unique: Vec<&String> = digests.iter().collect();
        unique.sort();
        unique.dedup();
        let mut out = LayerAvailability::default();
        for chunk in unique.chunks(MAX_LAYER_DIGESTS) {
            let answer = self
                .client
                .batch_check_layer_availability()
                .repository_name(repository)
                .set_layer_digests(Some(chunk.iter().map(|d| (*d).clone()).collect()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("BatchCheckLayerAvailability", e))?;
            for layer in answer.layers() {
                let Some(digest) = layer.layer_digest() else {
                    continue;
                };
                match layer.layer_availability() {
                    Some(aws_sdk_ecr::types::LayerAvailability::Available) => {
                        let size = layer.layer_size().unwrap_or(0).max(0) as u64;
                        out.available.insert(digest.to_owned(), size);
                    }
                    other => {
                        let why = other.map_or("no availability", |a| a.as_str());
                        out.missing.insert(digest.to_owned(), why.to_owned());
                    }
                }
            }
            for failure in answer.failures() {
                if let Some(digest) = failure.layer_digest() {
                    let why = failure
                        .failure_code()
                        .map_or("unknown failure", |c| c.as_str());
                    out.missing.insert(digest.to_owned(), why.to_owned());
                }
            }
        }
        Ok(out)
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn pull_time_update_exclusions(&self) -> Result<Vec<String>, AwsError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        // ECR's quota is 100 exclusions an account; 20 pages bound a server that keeps
        // answering a token.
        for _ in 0..20 {
            let page = self
                .client
                .list_pull_time_update_exclusions()
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ListPullTimeUpdateExclusions", e))?;
            out.extend(page.pull_time_update_exclusions().iter().cloned());
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(out),
            }
        }
        // A partial list would report registered roles as missing: an error, not a list.
        Err(AwsError {
            operation: "ListPullTimeUpdateExclusions",
            kind: AwsErrorKind::Service("InvalidResponse".into()),
            message: format!(
                "more than 20 pages ({} principals so far; ECR's quota is 100)",
                out.len()
            ),
        })
    }
}

/// `sha256:` plus 64 hex digits: a digest, otherwise a tag.
fn image_id(reference: &str) -> ImageIdentifier {
    let is_digest = reference
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if is_digest {
        ImageIdentifier::builder().image_digest(reference).build()
    } else {
        ImageIdentifier::builder().image_tag(reference).build()
    }
}

fn repository(repo: &aws_sdk_ecr::types::Repository) -> Repository {
    Repository {
        name: repo.repository_name().unwrap_or_default().to_owned(),
        arn: repo.repository_arn().unwrap_or_default().to_owned(),
        uri: repo.repository_uri().unwrap_or_default().to_owned(),
        created_at: to_time(repo.created_at()),
        tag_mutability: repo
            .image_tag_mutability()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_else(|| "MUTABLE".into()),
        tag_mutability_exclusions: repo
            .image_tag_mutability_exclusion_filters()
            .iter()
            .map(|f| f.filter().to_owned())
            .collect(),
        scan_on_push: repo
            .image_scanning_configuration()
            .is_some_and(|c| c.scan_on_push()),
    }
}

/// A template's fields as the SDK wants them, or an error naming the field that does not
/// build (a required part missing: never from a template ECR described).
fn build_error(field: &str, err: impl std::fmt::Display) -> AwsError {
    AwsError {
        operation: "CreateRepositoryCreationTemplate",
        kind: AwsErrorKind::Service("InvalidParameter".into()),
        message: format!("{field}: {err}"),
    }
}

fn template_encryption(
    t: &CreationTemplate,
) -> Result<
    Option<aws_sdk_ecr::types::EncryptionConfigurationForRepositoryCreationTemplate>,
    AwsError,
> {
    t.encryption_type
        .as_deref()
        .map(|kind| {
            aws_sdk_ecr::types::EncryptionConfigurationForRepositoryCreationTemplate::builder()
                .encryption_type(aws_sdk_ecr::types::EncryptionType::from(kind))
                .set_kms_key(t.kms_key.clone())
                .build()
                .map_err(|e| build_error("encryptionConfiguration", e))
        })
        .transpose()
}

fn template_tags(t: &CreationTemplate) -> Result<Option<Vec<aws_sdk_ecr::types::Tag>>, AwsError> {
    if t.resource_tags.is_empty() {
        return Ok(None);
    }
    t.resource_tags
        .iter()
        .map(|(k, v)| {
            aws_sdk_ecr::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| build_error("resourceTags", e))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn template_exclusions(
    t: &CreationTemplate,
) -> Result<Option<Vec<aws_sdk_ecr::types::ImageTagMutabilityExclusionFilter>>, AwsError> {
    if t.tag_mutability_exclusions.is_empty() {
        return Ok(None);
    }
    t.tag_mutability_exclusions
        .iter()
        .map(|f| {
            aws_sdk_ecr::types::ImageTagMutabilityExclusionFilter::builder()
                .filter_type(aws_sdk_ecr::types::ImageTagMutabilityExclusionFilterType::Wildcard)
                .filter(f)
                .build()
                .map_err(|e| build_error("imageTagMutabilityExclusionFilters", e))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn image_detail(image: &aws_sdk_ecr::types::ImageDetail) -> ImageDetail {
    ImageDetail {
        digest: image.image_digest().unwrap_or_default().to_owned(),
        tags: image.image_tags().to_vec(),
        size_bytes: image.image_size_in_bytes(),
        pushed_at: to_time(image.image_pushed_at()),
        last_pulled_at: to_time(image.last_recorded_pull_time()),
        media_type: image.image_manifest_media_type().map(str::to_owned),
        // No `imageStatus` in the answer: an answer from before the archive storage class,
        // when every image was active (the local stack's moto sends none either).
        status: image
            .image_status()
            .map_or(ImageStatus::Active, |s| ImageStatus::parse(s.as_str())),
        last_archived_at: to_time(image.last_archived_at()),
        last_activated_at: to_time(image.last_activated_at()),
    }
}

#[async_trait]
impl EcrSettingsApi for SdkEcr {
    #[tracing::instrument(skip(self, repository), fields(repository = %repository.name), err(Display))]
    async fn repository_settings(
        &self,
        repository: &Repository,
    ) -> Result<RepositorySettings, AwsError> {
        let name = repository.name.as_str();
        let (lifecycle, policy, tags) = tokio::join!(
            self.client
                .get_lifecycle_policy()
                .repository_name(name)
                .send(),
            self.client
                .get_repository_policy()
                .repository_name(name)
                .send(),
            self.client
                .list_tags_for_resource()
                .resource_arn(&repository.arn)
                .send(),
        );
        let absent_if_not_found = |err: AwsError| {
            if err.is_not_found() {
                Ok(None)
            } else {
                Err(err)
            }
        };
        let lifecycle_policy = match lifecycle {
            Ok(out) => out.lifecycle_policy_text().map(str::to_owned),
            Err(e) => absent_if_not_found(AwsError::from_sdk("GetLifecyclePolicy", e))?,
        };
        let repository_policy = match policy {
            Ok(out) => out.policy_text().map(str::to_owned),
            Err(e) => absent_if_not_found(AwsError::from_sdk("GetRepositoryPolicy", e))?,
        };
        let tags = tags
            .map_err(|e| AwsError::from_sdk("ListTagsForResource", e))?
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        Ok(RepositorySettings {
            lifecycle_policy,
            repository_policy,
            tags,
        })
    }

    #[tracing::instrument(skip(self, text), err(Display))]
    async fn put_lifecycle_policy(&self, repository: &str, text: &str) -> Result<(), AwsError> {
        self.client
            .put_lifecycle_policy()
            .repository_name(repository)
            .lifecycle_policy_text(text)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("PutLifecyclePolicy", e))
    }

    #[tracing::instrument(skip(self, text), err(Display))]
    async fn set_repository_policy(&self, repository: &str, text: &str) -> Result<(), AwsError> {
        self.client
            .set_repository_policy()
            .repository_name(repository)
            .policy_text(text)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("SetRepositoryPolicy", e))
    }

    #[tracing::instrument(skip(self, tags), err(Display))]
    async fn tag_repository(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let tags = tags
            .iter()
            .map(|(k, v)| aws_sdk_ecr::types::Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AwsError {
                operation: "TagResource",
                kind: AwsErrorKind::Service("InvalidTag".into()),
                message: e.to_string(),
            })?;
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("TagResource", e))
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn enable_scan_on_push(&self, repository: &str) -> Result<(), AwsError> {
        self.client
            .put_image_scanning_configuration()
            .repository_name(repository)
            .image_scanning_configuration(
                aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                    .scan_on_push(true)
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("PutImageScanningConfiguration", e))
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn registry_scan_type(&self) -> Result<String, AwsError> {
        let out = self
            .client
            .get_registry_scanning_configuration()
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetRegistryScanningConfiguration", e))?;
        // A registry that never set one scans the basic way.
        Ok(out
            .scanning_configuration()
            .and_then(|c| c.scan_type())
            .map_or_else(|| "BASIC".to_owned(), |t| t.as_str().to_owned()))
    }
}

#[async_trait]
impl EcrTemplatesApi for SdkEcr {
    #[tracing::instrument(skip(self), err(Display))]
    #[tracing::instrument(skip(self), err(Display))]
    async fn registry_policy(&self) -> Result<Option<String>, AwsError> {
        match self.client.get_registry_policy().send().await {
            Ok(out) => Ok(out.policy_text().map(str::to_owned)),
            Err(e) => {
                let err = AwsError::from_sdk("GetRegistryPolicy", e);
                // RegistryPolicyNotFoundException: the registry has none.
                if err.is_not_found() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    #[tracing::instrument(skip(self, text), err(Display))]
    async fn put_registry_policy(&self, text: &str) -> Result<(), AwsError> {
        self.client
            .put_registry_policy()
            .policy_text(text)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("PutRegistryPolicy", e))
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn registry(&self) -> Result<Registry, AwsError> {
        let out = self
            .client
            .describe_registry()
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeRegistry", e))?;
        let id = out.registry_id().unwrap_or_default().to_owned();
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AwsError {
                operation: "DescribeRegistry",
                kind: AwsErrorKind::Service("InvalidResponse".into()),
                message: format!("registryId {id:?} is not a 12-digit account"),
            });
        }
        Ok(Registry {
            id,
            region: self.region.clone(),
        })
    }

    async fn describe_templates(&self) -> Result<Vec<CreationTemplate>, AwsError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_repository_creation_templates()
            .max_results(MAX_RESULTS)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| AwsError::from_sdk("DescribeRepositoryCreationTemplates", e))?;
            for t in page.repository_creation_templates() {
                out.push(CreationTemplate {
                    prefix: t.prefix().unwrap_or_default().to_owned(),
                    applied_for: t
                        .applied_for()
                        .iter()
                        .map(|a| a.as_str().to_owned())
                        .collect(),
                    lifecycle_policy: t
                        .lifecycle_policy()
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned),
                    repository_policy: t
                        .repository_policy()
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned),
                    resource_tags: t
                        .resource_tags()
                        .iter()
                        .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
                        .collect(),
                    image_tag_mutability: t.image_tag_mutability().map(|m| m.as_str().to_owned()),
                    tag_mutability_exclusions: t
                        .image_tag_mutability_exclusion_filters()
                        .iter()
                        .map(|f| f.filter().to_owned())
                        .collect(),
                    description: t.description().map(str::to_owned),
                    encryption_type: t
                        .encryption_configuration()
                        .map(|e| e.encryption_type().as_str().to_owned()),
                    kms_key: t
                        .encryption_configuration()
                        .and_then(|e| e.kms_key())
                        .map(str::to_owned),
                    custom_role_arn: t
                        .custom_role_arn()
                        .filter(|r| !r.is_empty())
                        .map(str::to_owned),
                });
            }
        }
        Ok(out)
    }

    #[tracing::instrument(skip(self, template), fields(prefix = %template.prefix), err(Display))]
    async fn put_template(
        &self,
        template: &CreationTemplate,
        exists: bool,
    ) -> Result<(), AwsError> {
        use aws_sdk_ecr::types::RctAppliedFor;
        let applied: Vec<RctAppliedFor> = template
            .applied_for
            .iter()
            .map(|a| RctAppliedFor::from(a.as_str()))
            .collect();
        if exists {
            self.client
                .update_repository_creation_template()
                .prefix(&template.prefix)
                .set_applied_for(Some(applied))
                .set_lifecycle_policy(template.lifecycle_policy.clone())
                .set_repository_policy(template.repository_policy.clone())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk("UpdateRepositoryCreationTemplate", e))
        } else {
            self.client
                .create_repository_creation_template()
                .prefix(&template.prefix)
                .set_applied_for(Some(applied))
                .set_lifecycle_policy(template.lifecycle_policy.clone())
                .set_repository_policy(template.repository_policy.clone())
                .set_description(template.description.clone())
                .set_encryption_configuration(template_encryption(template)?)
                .set_resource_tags(template_tags(template)?)
                .set_image_tag_mutability(
                    template
                        .image_tag_mutability
                        .as_deref()
                        .map(aws_sdk_ecr::types::ImageTagMutability::from),
                )
                .set_image_tag_mutability_exclusion_filters(template_exclusions(template)?)
                .set_custom_role_arn(template.custom_role_arn.clone())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk("CreateRepositoryCreationTemplate", e))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use aws_sdk_ecr::operation::describe_pull_through_cache_rules::DescribePullThroughCacheRulesOutput;
    use aws_sdk_ecr::operation::get_authorization_token::GetAuthorizationTokenOutput;
    use aws_sdk_ecr::operation::validate_pull_through_cache_rule::ValidatePullThroughCacheRuleOutput;
    use aws_sdk_ecr::types::{AuthorizationData, PullThroughCacheRule, UpstreamRegistry};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use base64::Engine as _;

    use super::*;

    /// An error answer as ECR sends it (JSON 1.1), so the SDK parses code and message.
    pub(crate) fn json_error(
        status: u16,
        code: &str,
        message: &str,
    ) -> aws_smithy_runtime_api::http::Response {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
            aws_smithy_types::body::SdkBody::from(format!(
                r#"{{"__type":"{code}","message":"{message}"}}"#
            )),
        )
    }

    fn sdk_rule(prefix: &str, url: &str, kind: UpstreamRegistry) -> PullThroughCacheRule {
        PullThroughCacheRule::builder()
            .ecr_repository_prefix(prefix)
            .upstream_registry_url(url)
            .upstream_registry(kind)
            .build()
    }

    #[tokio::test]
    async fn describe_rules_follows_every_page_and_keeps_unknown_kinds() {
        let first = mock!(Client::describe_pull_through_cache_rules)
            .match_requests(|r| r.next_token().is_none() && r.max_results() == Some(1000))
            .then_output(|| {
                DescribePullThroughCacheRulesOutput::builder()
                    .pull_through_cache_rules(sdk_rule("quay", "quay.io", UpstreamRegistry::Quay))
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(Client::describe_pull_through_cache_rules)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(|| {
                DescribePullThroughCacheRulesOutput::builder()
                    .pull_through_cache_rules(sdk_rule(
                        "cgr",
                        "cgr.dev",
                        UpstreamRegistry::Chainguard,
                    ))
                    // A value neither the SDK nor this version knows: an upstream AWS adds
                    // later. It reaches us as the SDK's `Unknown` variant with the text.
                    .pull_through_cache_rules(sdk_rule(
                        "future",
                        "registry.future-upstream.example",
                        UpstreamRegistry::from("future-registry"),
                    ))
                    .pull_through_cache_rules(
                        PullThroughCacheRule::builder()
                            .ecr_repository_prefix("old")
                            .upstream_registry_url("registry.old-upstream.example")
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_ecr, RuleMode::Sequential, [&first, &second]);
        let rules = SdkEcr::new(client).describe_rules().await.unwrap();
        let kinds: Vec<_> = rules.iter().map(|r| r.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                UpstreamKind::Quay,
                UpstreamKind::Chainguard,
                UpstreamKind::Other("future-registry".into()),
                UpstreamKind::Other("registry.old-upstream.example".into()),
            ]
        );
        assert_eq!(rules[2].upstream_url, "registry.future-upstream.example");
        assert!(rules[2].unknown_kind_note().is_some());
    }

    #[tokio::test]
    async fn validate_maps_answer_and_not_found() {
        let ok = mock!(Client::validate_pull_through_cache_rule).then_output(|| {
            ValidatePullThroughCacheRuleOutput::builder()
                .ecr_repository_prefix("docker-hub")
                .is_valid(false)
                .failure("Invalid credentials")
                .build()
        });
        let missing = mock!(Client::validate_pull_through_cache_rule).then_http_response(|| {
            json_error(400, "PullThroughCacheRuleNotFoundException", "no such rule")
        });
        let client = mock_client!(aws_sdk_ecr, RuleMode::Sequential, [&ok, &missing]);
        let ecr = SdkEcr::new(client);
        let v = ecr.validate_rule("docker-hub").await.unwrap();
        assert!(!v.is_valid);
        assert_eq!(v.failure.as_deref(), Some("Invalid credentials"));
        let err = ecr.validate_rule("nope").await.unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        assert!(
            err.to_string()
                .contains("PullThroughCacheRuleNotFoundException"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn authorization_token_is_decoded() {
        let token = mock!(Client::get_authorization_token).then_output(|| {
            GetAuthorizationTokenOutput::builder()
                .authorization_data(
                    AuthorizationData::builder()
                        .authorization_token(
                            base64::engine::general_purpose::STANDARD.encode("AWS:s3cret"),
                        )
                        .proxy_endpoint("https://123456789012.dkr.ecr.us-east-1.amazonaws.com")
                        .expires_at(aws_smithy_types::DateTime::from_secs(2_000_000_000))
                        .build(),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_ecr, [&token]);
        let t = SdkEcr::new(client).authorization_token().await.unwrap();
        assert_eq!(t.username, "AWS");
        assert_eq!(t.password.expose(), "s3cret");
        assert_eq!(
            t.registry_host(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        );
        assert_eq!(t.expires_at.unix_timestamp(), 2_000_000_000);
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[tokio::test]
    async fn throttling_is_retried_by_the_sdk() {
        let rule = mock!(Client::describe_repositories)
            .sequence()
            .http_response(|| json_error(400, "ThrottlingException", "Rate exceeded"))
            .times(2)
            .output(|| {
                aws_sdk_ecr::operation::describe_repositories::DescribeRepositoriesOutput::builder()
                    .repositories(
                        aws_sdk_ecr::types::Repository::builder()
                            .repository_name("quay/a")
                            .build(),
                    )
                    .build()
            })
            .build();
        let client = mock_client!(aws_sdk_ecr, RuleMode::Sequential, [&rule], |c| c
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(1))
            ));
        let repos = SdkEcr::new(client).describe_repositories().await.unwrap();
        assert_eq!(repos[0].name, "quay/a");
        assert_eq!(rule.num_calls(), 3);
    }

    /// `describe_images` asks for ACTIVE images and keeps only those even from a server that
    /// ignores the filter (moto); `describe_images_any_status` asks for ANY and keeps each
    /// image's status. An answer without `imageStatus` is an active image.
    #[tokio::test]
    async fn image_status_is_asked_for_and_read() {
        use aws_sdk_ecr::operation::describe_images::DescribeImagesOutput;
        use aws_sdk_ecr::types::{ImageDetail as SdkImage, ImageStatus as SdkStatus};
        let answer = || {
            DescribeImagesOutput::builder()
                .image_details(
                    SdkImage::builder()
                        .image_digest("sha256:a")
                        .image_status(SdkStatus::Active)
                        .build(),
                )
                .image_details(
                    SdkImage::builder()
                        .image_digest("sha256:b")
                        .image_status(SdkStatus::Archived)
                        .last_archived_at(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                        .build(),
                )
                .image_details(SdkImage::builder().image_digest("sha256:c").build())
                .build()
        };
        let status = |r: &aws_sdk_ecr::operation::describe_images::DescribeImagesInput| {
            r.filter().and_then(|f| f.image_status()).cloned()
        };
        let active = mock!(Client::describe_images)
            .match_requests(move |r| status(r) == Some(ImageStatusFilter::Active))
            .then_output(answer);
        let any = mock!(Client::describe_images)
            .match_requests(move |r| status(r) == Some(ImageStatusFilter::Any))
            .then_output(answer);
        let client = mock_client!(aws_sdk_ecr, RuleMode::Sequential, [&active, &any]);
        let ecr = SdkEcr::new(client);
        let pullable = ecr.describe_images("quay/a").await.unwrap();
        let digests: Vec<&str> = pullable.iter().map(|i| i.digest.as_str()).collect();
        assert_eq!(digests, ["sha256:a", "sha256:c"], "never an archived image");
        let every = ecr.describe_images_any_status("quay/a").await.unwrap();
        let statuses: Vec<&ImageStatus> = every.iter().map(|i| &i.status).collect();
        assert_eq!(
            statuses,
            [
                &ImageStatus::Active,
                &ImageStatus::Archived,
                &ImageStatus::Active
            ]
        );
        assert_eq!(
            every[1].last_archived_at.map(|t| t.unix_timestamp()),
            Some(1_700_000_000)
        );
        assert_eq!((active.num_calls(), any.num_calls()), (1, 1));
    }
}
