//! The ECR port: the calls the jobs make, as traits with domain types (no SDK type
//! crosses it). The aws-sdk adapter is [`crate::aws::ecr`]; the in-memory fakes are in
//! `crate::fakes::ecr` (feature `fakes`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use base64::Engine as _;
use time::OffsetDateTime;

use crate::error::AwsError;
use crate::rules::PtcRule;
use crate::secret::Secret;

/// ECR's page size limit for the Describe* calls: `maxResults` is 1 to 1000 for
/// `DescribePullThroughCacheRules`, `DescribeRepositories`, `DescribeImages` and
/// `DescribeRepositoryCreationTemplates`; the SDK adapter asks for full pages and follows
/// `nextToken` to the end
/// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeRepositories.html>).
pub const MAX_RESULTS: i32 = 1000;

/// The answer of `ValidatePullThroughCacheRule`: whether ECR could read the rule's credential
/// secret, reach the upstream registry and authenticate to it
/// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ValidatePullThroughCacheRule.html>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleValidation {
    /// `ecrRepositoryPrefix`: the rule's repository prefix as ECR echoes it (the prefix asked for
    /// when the answer has none), e.g. `docker-hub` or `ROOT`.
    pub prefix: String,
    /// `isValid`: `true` when ECR reached the upstream registry and authentication succeeded;
    /// `false` means validation failed and [`failure`](Self::failure) says why.
    pub is_valid: bool,
    /// Free-form text from ECR; there is no published list of values.
    pub failure: Option<String>,
}

/// Credentials for the registry endpoint, from `GetAuthorizationToken`: Basic auth for the
/// account's registry, valid for 12 hours
/// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetAuthorizationToken.html>,
/// <https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html>).
#[derive(Debug, Clone)]
pub struct RegistryToken {
    /// The user name: the decoded token's text before the first `:` (`AWS` for ECR).
    pub username: String,
    /// The password: the decoded token's text after the first `:`; never logged.
    pub password: Secret,
    /// `expiresAt`: when the token stops working (the SDK adapter uses the time of the call when
    /// the answer has none, so such a token is fetched again).
    pub expires_at: OffsetDateTime,
    /// `https://<account>.dkr.ecr.<region>.amazonaws.com`.
    pub proxy_endpoint: String,
}

impl RegistryToken {
    /// Decode the base64 `user:password` token (`authorizationToken`, standard alphabet,
    /// surrounding whitespace ignored). `proxy_endpoint` is kept without a trailing `/`.
    ///
    /// The error is a message without the token: not base64, not UTF-8, or no `:` in it.
    pub fn decode(
        token: &str,
        expires_at: OffsetDateTime,
        proxy_endpoint: &str,
    ) -> Result<Self, String> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .map_err(|_| "authorization token is not base64".to_owned())?;
        let text =
            String::from_utf8(raw).map_err(|_| "authorization token is not UTF-8".to_owned())?;
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| "authorization token is not user:password".to_owned())?;
        Ok(Self {
            username: user.to_owned(),
            password: Secret::new(password.to_owned()),
            expires_at,
            proxy_endpoint: proxy_endpoint.trim_end_matches('/').to_owned(),
        })
    }

    /// Host of the registry, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com`.
    pub fn registry_host(&self) -> &str {
        self.proxy_endpoint
            .strip_prefix("https://")
            .or_else(|| self.proxy_endpoint.strip_prefix("http://"))
            .unwrap_or(&self.proxy_endpoint)
    }
}

/// An ECR repository as `DescribeRepositories` describes it
/// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_Repository.html>). A missing
/// field of the answer is empty text (or the default named below), never an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// `repositoryName`, e.g. `quay/prometheus/node-exporter`: for a cached repository,
    /// `<rule prefix>/<upstream path>` (the path alone under a `ROOT` rule).
    pub name: String,
    /// `repositoryArn`, `arn:aws:ecr:<region>:<12-digit account>:repository/<name>`: what
    /// [`EcrSettingsApi::tag_repository`] and `ListTagsForResource` take.
    pub arn: String,
    /// `repositoryUri`, `<account>.dkr.ecr.<region>.amazonaws.com/<name>`.
    pub uri: String,
    /// `createdAt`: when the repository was created (for a cached one: at its first pull).
    pub created_at: Option<OffsetDateTime>,
    /// `imageTagMutability`: `MUTABLE`, `IMMUTABLE`, `MUTABLE_WITH_EXCLUSION` or
    /// `IMMUTABLE_WITH_EXCLUSION` (`MUTABLE` when the answer has none).
    pub tag_mutability: String,
    /// `imageTagMutabilityExclusionFilters`' values: `*` wildcard patterns of the tags that
    /// take the opposite mutability (`…_WITH_EXCLUSION` only; empty otherwise)
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageTagMutabilityExclusionFilter.html>).
    pub tag_mutability_exclusions: Vec<String>,
    /// `imageScanningConfiguration.scanOnPush` (`false` when absent); a setting of basic scanning
    /// only, see [`EcrSettingsApi::registry_scan_type`].
    pub scan_on_push: bool,
}

/// An image's `imageStatus`: which storage class holds it and whether it can be pulled
/// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageDetail.html>,
/// <https://docs.aws.amazon.com/AmazonECR/latest/userguide/archive_restore_image.html>).
///
/// Since November 2025 ECR has an archive storage class: an archived image stays in its
/// repository, is still described and billed (at the archive storage price), but "cannot be
/// pulled. Requests to pull the archived image will fail with a 404 error"
/// (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/archive-image.html>). A restore
/// takes up to 20 minutes, during which the image is `ACTIVATING`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ImageStatus {
    /// `ACTIVE`: in the standard storage class, pullable. Also what an answer without
    /// `imageStatus` means: answers from before the archive storage class (and the local
    /// stack's moto) carry none, and then every image was active.
    #[default]
    Active,
    /// `ARCHIVED`: in the archive storage class; a pull fails until it is restored.
    Archived,
    /// `ACTIVATING`: being restored from the archive; not pullable yet.
    Activating,
    /// A status this code does not know (the SDK's enum is non-exhaustive), as ECR sent it;
    /// treated as not pullable.
    Other(String),
}

impl ImageStatus {
    /// The status from its API name (`ACTIVE`, `ARCHIVED`, `ACTIVATING`); anything else is
    /// [`ImageStatus::Other`].
    pub fn parse(value: &str) -> Self {
        match value {
            "ACTIVE" => Self::Active,
            "ARCHIVED" => Self::Archived,
            "ACTIVATING" => Self::Activating,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The API name, e.g. `ARCHIVED`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Active => "ACTIVE",
            Self::Archived => "ARCHIVED",
            Self::Activating => "ACTIVATING",
            Self::Other(other) => other,
        }
    }

    /// Can a pull be served from this image? Only an `ACTIVE` one: archived images (and
    /// images still being restored) cannot be pulled.
    pub fn is_pullable(&self) -> bool {
        *self == Self::Active
    }
}

impl std::fmt::Display for ImageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One image of a repository, as `DescribeImages` describes it
/// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageDetail.html>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDetail {
    /// `imageDigest`, `sha256:<64 hex>` (the digest of the manifest ECR stores), as ECR sent it
    /// (empty when the answer has none).
    pub digest: String,
    /// `imageTags`: every tag on this digest; empty for an untagged image.
    pub tags: Vec<String>,
    /// `imageSizeInBytes`: bytes stored by ECR (compressed layers, so smaller than the size
    /// `docker images` shows, as the API reference notes).
    pub size_bytes: Option<i64>,
    /// `imagePushedAt`: when the image was pushed to (for a cached image: stored in) the
    /// repository.
    pub pushed_at: Option<OffsetDateTime>,
    /// `lastRecordedPullTime`: the last pull ECR recorded. ECR refreshes it at least once every 24
    /// hours, so with frequent pulls it may lag the real last pull by up to a day; `None` when ECR
    /// recorded no pull.
    pub last_pulled_at: Option<OffsetDateTime>,
    /// `imageManifestMediaType`, e.g. `application/vnd.oci.image.index.v1+json` (see
    /// [`crate::oci::media`]).
    pub media_type: Option<String>,
    /// `imageStatus` ([`ImageStatus::Active`] when the answer has none): only an active image
    /// can be pulled.
    pub status: ImageStatus,
    /// `lastArchivedAt`: when the image was last moved to the archive storage class; `None`
    /// when never archived (or the answer has none).
    pub last_archived_at: Option<OffsetDateTime>,
    /// `lastActivatedAt`: when the image was last restored from the archive to the standard
    /// storage class; `None` when never restored.
    pub last_activated_at: Option<OffsetDateTime>,
}

/// The ECR read calls the jobs make: pull through cache rules, repositories, images,
/// manifests and the registry token. Adapter: [`crate::aws::SdkEcr`]; in-memory fake:
/// `crate::fakes::FakeEcr` (feature `fakes`). Every failure is an [`AwsError`], classified.
#[async_trait]
pub trait EcrApi: Send + Sync {
    /// Every rule of the registry: `DescribePullThroughCacheRules`, all pages, `maxResults` 1000
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribePullThroughCacheRules.html>).
    /// A rule whose `ecrRepositoryPrefix` is not a valid [`crate::rules::Prefix`] fails the call
    /// with [`AwsErrorKind::Service`](crate::error::AwsErrorKind::Service)`("InvalidResponse")`.
    async fn describe_rules(&self) -> Result<Vec<PtcRule>, AwsError>;
    /// `ValidatePullThroughCacheRule` for the rule with this prefix (2-30 characters, or `ROOT`):
    /// ECR reads the rule's Secrets Manager secret and authenticates to the upstream
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ValidatePullThroughCacheRule.html>).
    /// A prefix without a rule is `PullThroughCacheRuleNotFoundException`
    /// ([`AwsErrorKind::NotFound`](crate::error::AwsErrorKind::NotFound)).
    async fn validate_rule(&self, prefix: &str) -> Result<RuleValidation, AwsError>;
    /// `GetAuthorizationToken` for the caller's registry, decoded with [`RegistryToken::decode`]
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetAuthorizationToken.html>).
    /// An answer without `authorizationData`, or with a token that does not decode, is
    /// [`AwsErrorKind::Service`](crate::error::AwsErrorKind::Service)`("InvalidResponse")`.
    async fn authorization_token(&self) -> Result<RegistryToken, AwsError>;
    /// Every repository of the registry: `DescribeRepositories`, all pages, `maxResults` 1000
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeRepositories.html>).
    async fn describe_repositories(&self) -> Result<Vec<Repository>, AwsError>;
    /// One repository by name (`None` when it does not exist): one call, whatever the
    /// registry's size (`DescribeRepositories` with `repositoryNames`; its
    /// `RepositoryNotFoundException` is `Ok(None)`).
    async fn describe_repository(&self, name: &str) -> Result<Option<Repository>, AwsError>;
    /// Every **active** (pullable) image of one repository: `DescribeImages`, all pages,
    /// `maxResults` 1000, `filter.imageStatus` `ACTIVE` (ECR's default: "If not specified,
    /// only images with ACTIVE status are returned",
    /// <https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImagesFilter.html>).
    /// Archived and activating images are never in the answer, whatever the server sends: what
    /// a warm-up or a readiness check needs. A repository that does not exist is
    /// `RepositoryNotFoundException` (see [`AwsError::is_repository_gone`]).
    async fn describe_images(&self, repository: &str) -> Result<Vec<ImageDetail>, AwsError>;
    /// Every image of one repository **whatever its status** (active, archived, activating):
    /// `DescribeImages` with `filter.imageStatus` `ANY`, all pages, `maxResults` 1000
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImagesFilter.html>).
    /// What an inventory and a storage bill need; each image's [`ImageDetail::status`] says
    /// whether it can be pulled. Errors as [`describe_images`](Self::describe_images).
    async fn describe_images_any_status(
        &self,
        repository: &str,
    ) -> Result<Vec<ImageDetail>, AwsError>;
    /// Only the images with these tags and digests (`sha256:<64 hex>`): one `DescribeImages`
    /// call with `imageIds`, at most 100 ids in all (tags and digests together; the API's
    /// limit, not checked here). ECR answers `ImageNotFoundException` when any of them is
    /// missing. No status filter is sent (whether ECR's `ACTIVE` default applies to a lookup
    /// by id is not documented): a caller that needs a pullable image checks
    /// [`ImageDetail::status`].
    async fn describe_image_ids(
        &self,
        repository: &str,
        tags: &[String],
        digests: &[String],
    ) -> Result<Vec<ImageDetail>, AwsError>;
    /// The manifest ECR holds for a tag or digest (`BatchGetImage`, every manifest media
    /// type accepted): its media type and text, `None` when ECR does not have it.
    ///
    /// `reference` is a digest when it is `sha256:` and 64 hex digits, a tag otherwise. The
    /// accepted types are [`crate::oci::MANIFEST_ACCEPT`]; the media type is
    /// `imageManifestMediaType`, else the manifest's own `mediaType`, else empty
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_BatchGetImage.html>).
    async fn image_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(String, String)>, AwsError>;
    /// Which of these blobs (layers and configs, `sha256:<64 hex>`) the repository holds:
    /// `BatchCheckLayerAvailability`, at most [`MAX_LAYER_DIGESTS`] digests a call (the
    /// API's limit), as many calls as the list needs
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_BatchCheckLayerAvailability.html>).
    /// A read of the repository's metadata: not an image pull, so it does not move any
    /// image's `lastRecordedPullTime` (only pulls do: `BatchGetImage` and the layer
    /// downloads; see PTC-FACTS "what counts as a pull"). Duplicates in `digests` are asked
    /// for once. A digest the answer leaves out is in neither map: the caller treats it as
    /// missing.
    async fn layer_availability(
        &self,
        repository: &str,
        digests: &[String],
    ) -> Result<LayerAvailability, AwsError>;
    /// The IAM principals (role and user ARNs) whose pulls do not update an image's
    /// `lastRecordedPullTime`: `ListPullTimeUpdateExclusions`, all pages (at most 100 per
    /// account, ECR's quota)
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ListPullTimeUpdateExclusions.html>,
    /// <https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-time-update-exclusions.html>).
    async fn pull_time_update_exclusions(&self) -> Result<Vec<String>, AwsError>;
}

/// `BatchCheckLayerAvailability`'s limit of digests per call (`layerDigests`, 1-100).
pub const MAX_LAYER_DIGESTS: usize = 100;

/// What [`EcrApi::layer_availability`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerAvailability {
    /// Digest → size in bytes (`layerSize`; 0 when the answer has none) of each blob whose
    /// `layerAvailability` is `AVAILABLE`.
    pub available: BTreeMap<String, u64>,
    /// Digest → why not: the `failureCode` of a failure (`MissingLayerDigest`,
    /// `InvalidLayerDigest`) or a layer whose `layerAvailability` is not `AVAILABLE`
    /// (`UNAVAILABLE`, or `ARCHIVED` for an archived image's layers).
    pub missing: BTreeMap<String, String>,
}

impl LayerAvailability {
    /// Whether the repository holds `digest` (an answer that left it out: no).
    pub fn holds(&self, digest: &str) -> bool {
        self.available.contains_key(digest)
    }
}

/// A repository's settings that lifecycle-fixer manages.
/// `Default` is a repository with no policy and no tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositorySettings {
    /// The lifecycle policy JSON text (`GetLifecyclePolicy`'s `lifecyclePolicyText`); `None` when
    /// the repository has none
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html>).
    pub lifecycle_policy: Option<String>,
    /// The repository policy, IAM policy JSON text (`GetRepositoryPolicy`'s `policyText`); `None`
    /// when the repository has none
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policies.html>).
    pub repository_policy: Option<String>,
    /// The repository's tags, key to value (`ListTagsForResource`).
    pub tags: BTreeMap<String, String>,
}

/// The ECR calls that read and write repository settings. Nothing here deletes.
#[async_trait]
pub trait EcrSettingsApi: Send + Sync {
    /// Lifecycle policy, repository policy and tags (absent policies are `None`).
    ///
    /// The SDK adapter makes its three calls at once: `GetLifecyclePolicy`,
    /// `GetRepositoryPolicy` (their not-found errors are `None`) and `ListTagsForResource` on
    /// the repository's ARN. Any other error of any of them fails the call.
    async fn repository_settings(
        &self,
        repository: &Repository,
    ) -> Result<RepositorySettings, AwsError>;
    /// `PutLifecyclePolicy`: replace the repository's lifecycle policy with `text` (lifecycle
    /// policy JSON, which ECR validates)
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PutLifecyclePolicy.html>).
    async fn put_lifecycle_policy(&self, repository: &str, text: &str) -> Result<(), AwsError>;
    /// `SetRepositoryPolicy`: replace the repository policy with `text` (IAM policy JSON)
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_SetRepositoryPolicy.html>).
    async fn set_repository_policy(&self, repository: &str, text: &str) -> Result<(), AwsError>;
    /// `TagResource` on the repository's ARN: add these tags, overwriting the value of a key that
    /// exists; tags not named are kept
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_TagResource.html>).
    async fn tag_repository(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError>;
    /// `PutImageScanningConfiguration` with `scanOnPush` true: new images of the repository are
    /// scanned on push (basic scanning)
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PutImageScanningConfiguration.html>).
    async fn enable_scan_on_push(&self, repository: &str) -> Result<(), AwsError>;
    /// The registry's scanning type (`BASIC` or `ENHANCED`): scan on push is a repository
    /// setting of basic scanning only. `GetRegistryScanningConfiguration`; `BASIC` when the
    /// registry never set one
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetRegistryScanningConfiguration.html>).
    async fn registry_scan_type(&self) -> Result<String, AwsError>;
}

/// A repository creation template, as far as lifecycle-fixer manages it: the settings ECR
/// gives a repository it creates under the template's prefix
/// (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-creation-templates.html>,
/// <https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_RepositoryCreationTemplate.html>).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreationTemplate {
    /// `prefix`: the repository name prefix the template applies to, e.g. `docker-hub` (a rule
    /// prefix), or `ROOT` for every repository no other template matches.
    pub prefix: String,
    /// `appliedFor`: what the template applies to: `PULL_THROUGH_CACHE`, `REPLICATION`,
    /// `CREATE_ON_PUSH`.
    pub applied_for: Vec<String>,
    /// `lifecyclePolicy`: lifecycle policy JSON text given to new repositories; `None` when absent
    /// or empty.
    pub lifecycle_policy: Option<String>,
    /// `repositoryPolicy`: repository policy (IAM policy JSON) given to new repositories; `None`
    /// when absent or empty.
    pub repository_policy: Option<String>,
    /// `resourceTags` given to new repositories, key to value. Read only: `put_template` does not
    /// send them.
    pub resource_tags: BTreeMap<String, String>,
    /// `imageTagMutability` of new repositories (e.g. `MUTABLE`). Read only: `put_template` does
    /// not send it.
    pub image_tag_mutability: Option<String>,
    /// `imageTagMutabilityExclusionFilters`' wildcard values. Read only.
    pub tag_mutability_exclusions: Vec<String>,
    /// `description`. Read only: `put_template` does not send it, so it is kept.
    pub description: Option<String>,
    /// `encryptionConfiguration.encryptionType`: `AES256`, `KMS` or `KMS_DSSE`. Read only.
    pub encryption_type: Option<String>,
    /// `encryptionConfiguration.kmsKey`: the KMS key of `KMS` encryption. Read only.
    pub kms_key: Option<String>,
    /// `customRoleArn`: the role ECR assumes to apply the template's resource tags and KMS
    /// key; without one, ECR uses its service-linked role, which cannot
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-creation-templates-create.html>).
    /// Read only.
    pub custom_role_arn: Option<String>,
}

/// A private registry: one account's ECR in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// The registry id, the 12-digit account, e.g. `111122223333`.
    pub id: String,
    /// The region, e.g. `eu-west-1`.
    pub region: String,
}

impl Registry {
    /// The ARN partition of the region: `aws-cn` for `cn-*`, `aws-us-gov` for `us-gov-*`,
    /// `aws` otherwise
    /// (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html>).
    pub fn partition(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "aws-cn"
        } else if self.region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }

    /// The ARN of the repositories under a rule prefix, for a policy's `Resource`:
    /// `arn:<partition>:ecr:<region>:<id>:repository/<prefix>/*`, or `repository/*` for
    /// `ROOT` (every name).
    pub fn repositories_arn(&self, prefix: &crate::rules::Prefix) -> String {
        let base = format!(
            "arn:{}:ecr:{}:{}:repository/",
            self.partition(),
            self.region,
            self.id
        );
        if prefix.is_root() {
            format!("{base}*")
        } else {
            format!("{base}{prefix}/*")
        }
    }
}

/// The registry-level calls: creation templates and the registry permissions policy. Nothing here deletes. Adapter: [`crate::aws::SdkEcr`];
/// fake: `crate::fakes::FakeTemplates` (feature `fakes`).
#[async_trait]
pub trait EcrTemplatesApi: Send + Sync {
    /// Every template of the registry: `DescribeRepositoryCreationTemplates`, all pages,
    /// `maxResults` 1000
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeRepositoryCreationTemplates.html>).
    async fn describe_templates(&self) -> Result<Vec<CreationTemplate>, AwsError>;
    /// Create (`exists` false) or update a `PULL_THROUGH_CACHE` template.
    ///
    /// An update (`UpdateRepositoryCreationTemplate`) sends the template's `prefix`,
    /// `appliedFor`, `lifecyclePolicy` and `repositoryPolicy` only: the fields the product
    /// manages. It leaves the fields it does not send as they are (description, encryption,
    /// resource tags, mutability, custom role); the caller sends `appliedFor` with every
    /// entry the template had. A create (`CreateRepositoryCreationTemplate`) also sends
    /// every other field the template has (a copy of the `ROOT` template keeps them)
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepositoryCreationTemplate.html>,
    /// <https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_UpdateRepositoryCreationTemplate.html>).
    async fn put_template(&self, template: &CreationTemplate, exists: bool)
    -> Result<(), AwsError>;
    /// The registry's permissions policy text: `GetRegistryPolicy`; `None` when the registry
    /// has none (`RegistryPolicyNotFoundException`)
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetRegistryPolicy.html>).
    async fn registry_policy(&self) -> Result<Option<String>, AwsError>;
    /// `PutRegistryPolicy`: replace the registry's permissions policy with `text` (at most
    /// 10,240 characters)
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PutRegistryPolicy.html>).
    async fn put_registry_policy(&self, text: &str) -> Result<(), AwsError>;
    /// The registry this client talks to: its account (`DescribeRegistry`'s `registryId`,
    /// <https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeRegistry.html>)
    /// and the client's region, from which its repositories' ARNs are made.
    async fn registry(&self) -> Result<Registry, AwsError>;
}
