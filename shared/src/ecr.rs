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

/// ECR's page size limit for the Describe* calls.
pub const MAX_RESULTS: i32 = 1000;

/// The answer of `ValidatePullThroughCacheRule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleValidation {
    pub prefix: String,
    pub is_valid: bool,
    /// Free-form text from ECR; there is no published list of values.
    pub failure: Option<String>,
}

/// Credentials for the registry endpoint, from `GetAuthorizationToken`.
#[derive(Debug, Clone)]
pub struct RegistryToken {
    pub username: String,
    pub password: Secret,
    pub expires_at: OffsetDateTime,
    /// `https://<account>.dkr.ecr.<region>.amazonaws.com`.
    pub proxy_endpoint: String,
}

impl RegistryToken {
    /// Decode the base64 `user:password` token.
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub name: String,
    pub arn: String,
    pub uri: String,
    pub created_at: Option<OffsetDateTime>,
    pub tag_mutability: String,
    pub scan_on_push: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDetail {
    pub digest: String,
    pub tags: Vec<String>,
    pub size_bytes: Option<i64>,
    pub pushed_at: Option<OffsetDateTime>,
    pub last_pulled_at: Option<OffsetDateTime>,
    pub media_type: Option<String>,
}

#[async_trait]
pub trait EcrApi: Send + Sync {
    /// Every rule of the registry (all pages).
    async fn describe_rules(&self) -> Result<Vec<PtcRule>, AwsError>;
    async fn validate_rule(&self, prefix: &str) -> Result<RuleValidation, AwsError>;
    async fn authorization_token(&self) -> Result<RegistryToken, AwsError>;
    /// Every repository (all pages, `maxResults` 1000).
    async fn describe_repositories(&self) -> Result<Vec<Repository>, AwsError>;
    /// One repository by name (`None` when it does not exist): one call, whatever the
    /// registry's size.
    async fn describe_repository(&self, name: &str) -> Result<Option<Repository>, AwsError>;
    /// Every image of one repository (all pages, `maxResults` 1000).
    async fn describe_images(&self, repository: &str) -> Result<Vec<ImageDetail>, AwsError>;
    /// Only the images with these tags and digests (one call, at most 100 ids). ECR answers
    /// `ImageNotFoundException` when any of them is missing.
    async fn describe_image_ids(
        &self,
        repository: &str,
        tags: &[String],
        digests: &[String],
    ) -> Result<Vec<ImageDetail>, AwsError>;
    /// The manifest ECR holds for a tag or digest (`BatchGetImage`, every manifest media
    /// type accepted): its media type and text, `None` when ECR does not have it.
    async fn image_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(String, String)>, AwsError>;
}

/// A repository's settings that lifecycle-fixer manages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositorySettings {
    pub lifecycle_policy: Option<String>,
    pub repository_policy: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// The ECR calls that read and write repository settings. Nothing here deletes.
#[async_trait]
pub trait EcrSettingsApi: Send + Sync {
    /// Lifecycle policy, repository policy and tags (absent policies are `None`).
    async fn repository_settings(
        &self,
        repository: &Repository,
    ) -> Result<RepositorySettings, AwsError>;
    async fn put_lifecycle_policy(&self, repository: &str, text: &str) -> Result<(), AwsError>;
    async fn set_repository_policy(&self, repository: &str, text: &str) -> Result<(), AwsError>;
    async fn tag_repository(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError>;
    async fn enable_scan_on_push(&self, repository: &str) -> Result<(), AwsError>;
    /// The registry's scanning type (`BASIC` or `ENHANCED`): scan on push is a repository
    /// setting of basic scanning only.
    async fn registry_scan_type(&self) -> Result<String, AwsError>;
}

/// A repository creation template, as far as lifecycle-fixer manages it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreationTemplate {
    pub prefix: String,
    pub applied_for: Vec<String>,
    pub lifecycle_policy: Option<String>,
    pub repository_policy: Option<String>,
    pub resource_tags: BTreeMap<String, String>,
    pub image_tag_mutability: Option<String>,
}

/// The creation-template calls. Nothing here deletes.
#[async_trait]
pub trait EcrTemplatesApi: Send + Sync {
    async fn describe_templates(&self) -> Result<Vec<CreationTemplate>, AwsError>;
    /// Create (`exists` false) or update a `PULL_THROUGH_CACHE` template.
    async fn put_template(&self, template: &CreationTemplate, exists: bool)
    -> Result<(), AwsError>;
}
