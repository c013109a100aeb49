//! The ECR calls the jobs make: a small port trait with domain types, the aws-sdk adapter
//! behind it, and an in-memory fake for unit tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_ecr::Client;
use aws_sdk_ecr::types::ImageIdentifier;
use base64::Engine as _;
use time::OffsetDateTime;

use crate::aws::{AwsError, AwsErrorKind, to_time};
use crate::rules::{Prefix, PtcRule, UpstreamKind, normalise_upstream_url};
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

/// The aws-sdk adapter.
#[derive(Clone)]
pub struct SdkEcr {
    client: Client,
}

impl SdkEcr {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
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

    #[tracing::instrument(skip(self), err(Display))]
    async fn describe_images(&self, repository: &str) -> Result<Vec<ImageDetail>, AwsError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_images()
            .repository_name(repository)
            .max_results(MAX_RESULTS)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("DescribeImages", e))?;
            out.extend(page.image_details().iter().map(image_detail));
        }
        Ok(out)
    }

    #[tracing::instrument(skip(self), err(Display))]
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
                crate::registry::MANIFEST_ACCEPT
                    .split(", ")
                    .map(str::to_owned)
                    .collect(),
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
        scan_on_push: repo
            .image_scanning_configuration()
            .is_some_and(|c| c.scan_on_push()),
    }
}

fn image_detail(image: &aws_sdk_ecr::types::ImageDetail) -> ImageDetail {
    ImageDetail {
        digest: image.image_digest().unwrap_or_default().to_owned(),
        tags: image.image_tags().to_vec(),
        size_bytes: image.image_size_in_bytes(),
        pushed_at: to_time(image.image_pushed_at()),
        last_pulled_at: to_time(image.last_recorded_pull_time()),
        media_type: image.image_manifest_media_type().map(str::to_owned),
    }
}

/// In-memory ECR for unit tests. Errors can be queued per operation.
#[derive(Default)]
pub struct FakeEcr {
    pub state: Mutex<FakeEcrState>,
}

#[derive(Default)]
pub struct FakeEcrState {
    pub rules: Vec<PtcRule>,
    pub validations: BTreeMap<String, RuleValidation>,
    pub repositories: Vec<Repository>,
    pub images: BTreeMap<String, Vec<ImageDetail>>,
    /// (repository, digest) → (media type, manifest text), for `image_manifest`.
    pub manifests: BTreeMap<(String, String), (String, String)>,
    pub token: Option<RegistryToken>,
    /// Operation name → errors returned (front first) before answering normally.
    pub errors: BTreeMap<&'static str, Vec<AwsError>>,
    pub calls: BTreeMap<&'static str, usize>,
}

impl FakeEcr {
    pub fn with_rules(rules: Vec<PtcRule>) -> Self {
        let fake = Self::default();
        fake.state.lock().unwrap().rules = rules;
        fake
    }

    pub fn fail_next(&self, operation: &'static str, kind: AwsErrorKind) {
        self.state
            .lock()
            .unwrap()
            .errors
            .entry(operation)
            .or_default()
            .push(AwsError {
                operation,
                kind,
                message: "injected".into(),
            });
    }

    pub fn calls(&self, operation: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    fn enter(
        &self,
        operation: &'static str,
    ) -> Result<std::sync::MutexGuard<'_, FakeEcrState>, AwsError> {
        let mut state = self.state.lock().unwrap();
        *state.calls.entry(operation).or_default() += 1;
        if let Some(queue) = state.errors.get_mut(operation)
            && !queue.is_empty()
        {
            return Err(queue.remove(0));
        }
        Ok(state)
    }
}

fn not_found(operation: &'static str, code: &str, message: String) -> AwsError {
    AwsError {
        operation,
        kind: AwsErrorKind::NotFound(code.to_owned()),
        message,
    }
}

#[async_trait]
impl EcrApi for FakeEcr {
    async fn describe_rules(&self) -> Result<Vec<PtcRule>, AwsError> {
        Ok(self.enter("DescribePullThroughCacheRules")?.rules.clone())
    }

    async fn validate_rule(&self, prefix: &str) -> Result<RuleValidation, AwsError> {
        let state = self.enter("ValidatePullThroughCacheRule")?;
        if !state.rules.iter().any(|r| r.prefix.as_str() == prefix) {
            return Err(not_found(
                "ValidatePullThroughCacheRule",
                "PullThroughCacheRuleNotFoundException",
                format!("no rule with prefix {prefix}"),
            ));
        }
        Ok(state
            .validations
            .get(prefix)
            .cloned()
            .unwrap_or(RuleValidation {
                prefix: prefix.to_owned(),
                is_valid: true,
                failure: None,
            }))
    }

    async fn authorization_token(&self) -> Result<RegistryToken, AwsError> {
        let state = self.enter("GetAuthorizationToken")?;
        Ok(state.token.clone().unwrap_or_else(|| RegistryToken {
            username: "AWS".into(),
            password: Secret::new("fake-password".into()),
            expires_at: OffsetDateTime::now_utc() + time::Duration::hours(12),
            proxy_endpoint: "https://123456789012.dkr.ecr.us-east-1.amazonaws.com".into(),
        }))
    }

    async fn describe_repositories(&self) -> Result<Vec<Repository>, AwsError> {
        Ok(self.enter("DescribeRepositories")?.repositories.clone())
    }

    async fn describe_repository(&self, name: &str) -> Result<Option<Repository>, AwsError> {
        Ok(self
            .enter("DescribeRepositories")?
            .repositories
            .iter()
            .find(|r| r.name == name)
            .cloned())
    }

    async fn describe_images(&self, repository: &str) -> Result<Vec<ImageDetail>, AwsError> {
        let state = self.enter("DescribeImages")?;
        if !state.repositories.iter().any(|r| r.name == repository) {
            return Err(not_found(
                "DescribeImages",
                "RepositoryNotFoundException",
                format!("repository {repository} does not exist"),
            ));
        }
        Ok(state.images.get(repository).cloned().unwrap_or_default())
    }

    async fn describe_image_ids(
        &self,
        repository: &str,
        tags: &[String],
        digests: &[String],
    ) -> Result<Vec<ImageDetail>, AwsError> {
        let state = self.enter("DescribeImages")?;
        let images = state.images.get(repository).cloned().unwrap_or_default();
        let mut out: Vec<ImageDetail> = Vec::new();
        for wanted in tags
            .iter()
            .map(|t| (Some(t), None))
            .chain(digests.iter().map(|d| (None, Some(d))))
        {
            let found = images.iter().find(|i| match wanted {
                (Some(tag), _) => i.tags.contains(tag),
                (_, Some(digest)) => &i.digest == digest,
                _ => false,
            });
            match found {
                Some(image) if !out.iter().any(|o| o.digest == image.digest) => {
                    out.push(image.clone())
                }
                Some(_) => {}
                None => {
                    return Err(not_found(
                        "DescribeImages",
                        "ImageNotFoundException",
                        format!("image {wanted:?} not in {repository}"),
                    ));
                }
            }
        }
        Ok(out)
    }

    async fn image_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(String, String)>, AwsError> {
        let state = self.enter("BatchGetImage")?;
        let digest = state
            .images
            .get(repository)
            .and_then(|images| {
                images
                    .iter()
                    .find(|i| i.digest == reference || i.tags.iter().any(|t| t == reference))
            })
            .map_or_else(|| reference.to_owned(), |i| i.digest.clone());
        Ok(state
            .manifests
            .get(&(repository.to_owned(), digest))
            .cloned())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use aws_sdk_ecr::operation::describe_pull_through_cache_rules::DescribePullThroughCacheRulesOutput;
    use aws_sdk_ecr::operation::get_authorization_token::GetAuthorizationTokenOutput;
    use aws_sdk_ecr::operation::validate_pull_through_cache_rule::ValidatePullThroughCacheRuleOutput;
    use aws_sdk_ecr::types::{AuthorizationData, PullThroughCacheRule, UpstreamRegistry};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

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
                        UpstreamRegistry::from("chainguard"),
                    ))
                    .build()
            });
        let client = mock_client!(aws_sdk_ecr, RuleMode::Sequential, [&first, &second]);
        let rules = SdkEcr::new(client).describe_rules().await.unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].kind, UpstreamKind::Quay);
        assert_eq!(rules[1].kind, UpstreamKind::Other("chainguard".into()));
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

    #[tokio::test]
    async fn fake_queues_errors() {
        let fake = FakeEcr::with_rules(vec![PtcRule::new("quay", "quay.io").unwrap()]);
        fake.fail_next("DescribePullThroughCacheRules", AwsErrorKind::Throttled);
        assert!(fake.describe_rules().await.is_err());
        assert_eq!(fake.describe_rules().await.unwrap().len(), 1);
        assert_eq!(fake.calls("DescribePullThroughCacheRules"), 2);
    }
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

/// Settings of the fake's repositories, and a count of every write.
#[derive(Default)]
pub struct FakeEcrSettings {
    pub settings: Mutex<BTreeMap<String, RepositorySettings>>,
    /// Repositories deleted behind the caller's back: every call answers
    /// `RepositoryNotFoundException`.
    pub gone: Mutex<std::collections::BTreeSet<String>>,
    /// `None`: `BASIC`.
    pub scan_type: Mutex<Option<String>>,
    pub scan_on_push: Mutex<BTreeMap<String, bool>>,
    pub writes: Mutex<Vec<(&'static str, String)>>,
}

#[async_trait]
impl EcrSettingsApi for FakeEcrSettings {
    async fn repository_settings(
        &self,
        repository: &Repository,
    ) -> Result<RepositorySettings, AwsError> {
        if self.gone.lock().unwrap().contains(&repository.name) {
            return Err(AwsError {
                operation: "GetLifecyclePolicy",
                kind: AwsErrorKind::NotFound("RepositoryNotFoundException".into()),
                message: format!("The repository '{}' does not exist", repository.name),
            });
        }
        Ok(self
            .settings
            .lock()
            .unwrap()
            .get(&repository.name)
            .cloned()
            .unwrap_or_default())
    }

    async fn put_lifecycle_policy(&self, repository: &str, text: &str) -> Result<(), AwsError> {
        self.writes
            .lock()
            .unwrap()
            .push(("PutLifecyclePolicy", repository.to_owned()));
        self.settings
            .lock()
            .unwrap()
            .entry(repository.to_owned())
            .or_default()
            .lifecycle_policy = Some(text.to_owned());
        Ok(())
    }

    async fn set_repository_policy(&self, repository: &str, text: &str) -> Result<(), AwsError> {
        self.writes
            .lock()
            .unwrap()
            .push(("SetRepositoryPolicy", repository.to_owned()));
        self.settings
            .lock()
            .unwrap()
            .entry(repository.to_owned())
            .or_default()
            .repository_policy = Some(text.to_owned());
        Ok(())
    }

    async fn tag_repository(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let name = arn
            .split_once(":repository/")
            .map(|(_, n)| n)
            .unwrap_or(arn)
            .to_owned();
        self.writes
            .lock()
            .unwrap()
            .push(("TagResource", name.clone()));
        self.settings
            .lock()
            .unwrap()
            .entry(name)
            .or_default()
            .tags
            .extend(tags.clone());
        Ok(())
    }

    async fn enable_scan_on_push(&self, repository: &str) -> Result<(), AwsError> {
        self.writes
            .lock()
            .unwrap()
            .push(("PutImageScanningConfiguration", repository.to_owned()));
        self.scan_on_push
            .lock()
            .unwrap()
            .insert(repository.to_owned(), true);
        Ok(())
    }

    async fn registry_scan_type(&self) -> Result<String, AwsError> {
        Ok(self
            .scan_type
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| "BASIC".into()))
    }
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

#[async_trait]
impl EcrTemplatesApi for SdkEcr {
    #[tracing::instrument(skip(self), err(Display))]
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
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk("CreateRepositoryCreationTemplate", e))
        }
    }
}

/// In-memory templates for unit tests.
#[derive(Default)]
pub struct FakeTemplates {
    pub templates: Mutex<Vec<CreationTemplate>>,
    pub writes: Mutex<usize>,
    /// The next `put_template` fails with this error (and writes nothing).
    pub fail_next_put: Mutex<Option<AwsError>>,
}

#[async_trait]
impl EcrTemplatesApi for FakeTemplates {
    async fn describe_templates(&self) -> Result<Vec<CreationTemplate>, AwsError> {
        Ok(self.templates.lock().unwrap().clone())
    }

    async fn put_template(
        &self,
        template: &CreationTemplate,
        _exists: bool,
    ) -> Result<(), AwsError> {
        *self.writes.lock().unwrap() += 1;
        if let Some(err) = self.fail_next_put.lock().unwrap().take() {
            return Err(err);
        }
        let mut templates = self.templates.lock().unwrap();
        templates.retain(|t| t.prefix != template.prefix);
        templates.push(template.clone());
        Ok(())
    }
}
