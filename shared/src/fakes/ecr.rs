//! In-memory ECR for tests: [`FakeEcr`] (rules, repositories, images, manifests, the
//! registry token), [`FakeEcrSettings`] (repository settings) and [`FakeTemplates`]
//! (creation templates). Errors can be queued per operation; every call is counted.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::ecr::*;
use crate::error::{AwsError, AwsErrorKind};
use crate::rules::PtcRule;
use crate::secret::Secret;

/// In-memory ECR for unit tests. Errors can be queued per operation.
#[derive(Default)]
pub struct FakeEcr {
    /// The fake registry: tests set it up and read it through the lock.
    pub state: Mutex<FakeEcrState>,
}

/// What [`FakeEcr`] holds and answers, the errors it is told to return and its call counts.
#[derive(Default)]
pub struct FakeEcrState {
    /// What `describe_rules` answers; `validate_rule` answers
    /// `PullThroughCacheRuleNotFoundException` for a prefix not among them.
    pub rules: Vec<PtcRule>,
    /// Prefix → what `validate_rule` answers (default: valid, no failure).
    pub validations: BTreeMap<String, RuleValidation>,
    /// What `describe_repositories` and `describe_repository` answer; `describe_images` answers
    /// `RepositoryNotFoundException` for a name not here.
    pub repositories: Vec<Repository>,
    /// Repository name → its images, whatever their [`ImageStatus`], for
    /// `describe_images_any_status`, `describe_images` (which answers the
    /// [`ImageStatus::Active`] ones only, as ECR does without a status filter),
    /// `describe_image_ids` (every status; a missing tag or digest is
    /// `ImageNotFoundException`) and the tag lookup of `image_manifest`.
    pub images: BTreeMap<String, Vec<ImageDetail>>,
    /// (repository, digest) → (media type, manifest text), for `image_manifest`.
    pub manifests: BTreeMap<(String, String), (String, String)>,
    /// (repository, blob digest) → size in bytes: the blobs `layer_availability` finds
    /// (one call per 100 digests, as ECR's; a repository neither in `repositories` nor in
    /// `images` is `RepositoryNotFoundException`).
    pub layers: BTreeMap<(String, String), u64>,
    /// What `pull_time_update_exclusions` answers.
    pub pull_time_update_exclusions: Vec<String>,
    /// What `authorization_token` answers; `None`: user `AWS`, password `fake-password`, 12 hours
    /// to expiry, endpoint `https://123456789012.dkr.ecr.us-east-1.amazonaws.com`.
    pub token: Option<RegistryToken>,
    /// Operation name → errors returned (front first) before answering normally.
    pub errors: BTreeMap<&'static str, Vec<AwsError>>,
    /// Operation name → calls made, failed ones included (see [`FakeEcr::calls`]).
    pub calls: BTreeMap<&'static str, usize>,
}

impl FakeEcr {
    /// A fake registry with these rules and nothing else.
    pub fn with_rules(rules: Vec<PtcRule>) -> Self {
        let fake = Self::default();
        fake.state.lock().unwrap().rules = rules;
        fake
    }

    /// Queue an error of `kind` (message `injected`) for the next call of `operation`, by its API
    /// name, e.g. `DescribeImages`. Queued errors come out first in, first out.
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

    /// How many times `operation` (its API name) was called; 0 if never. `describe_repository`
    /// counts as `DescribeRepositories`, `describe_image_ids` and `describe_images_any_status` as
    /// `DescribeImages`, the calls the SDK adapter makes.
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
        // ECR's rule: without `filter.imageStatus`, only ACTIVE images are returned
        // (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImagesFilter.html).
        let mut images = self.describe_images_any_status(repository).await?;
        images.retain(|i| i.status == ImageStatus::Active);
        Ok(images)
    }

    async fn describe_images_any_status(
        &self,
        repository: &str,
    ) -> Result<Vec<ImageDetail>, AwsError> {
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
            let state = self.enter("BatchCheckLayerAvailability")?;
            if !state.repositories.iter().any(|r| r.name == repository)
                && !state.images.contains_key(repository)
            {
                return Err(not_found(
                    "BatchCheckLayerAvailability",
                    "RepositoryNotFoundException",
                    format!("repository {repository} does not exist"),
                ));
            }
            for digest in chunk {
                match state
                    .layers
                    .get(&(repository.to_owned(), (*digest).clone()))
                {
                    Some(size) => {
                        out.available.insert((*digest).clone(), *size);
                    }
                    None => {
                        out.missing
                            .insert((*digest).clone(), "MissingLayerDigest".to_owned());
                    }
                }
            }
        }
        Ok(out)
    }

    async fn pull_time_update_exclusions(&self) -> Result<Vec<String>, AwsError> {
        let state = self.enter("ListPullTimeUpdateExclusions")?;
        Ok(state.pull_time_update_exclusions.clone())
    }
}

/// Settings of the fake's repositories, and a count of every write.
#[derive(Default)]
pub struct FakeEcrSettings {
    /// Repository name → its settings: what `repository_settings` answers (default: none set),
    /// updated by every write.
    pub settings: Mutex<BTreeMap<String, RepositorySettings>>,
    /// Repositories deleted behind the caller's back: every call answers
    /// `RepositoryNotFoundException`.
    pub gone: Mutex<std::collections::BTreeSet<String>>,
    /// `None`: `BASIC`.
    pub scan_type: Mutex<Option<String>>,
    /// Repository name → `true` once `enable_scan_on_push` was called for it.
    pub scan_on_push: Mutex<BTreeMap<String, bool>>,
    /// Every write in order, as (operation, repository name), e.g. `("PutLifecyclePolicy",
    /// "quay/app")`; `TagResource` names the repository from its ARN.
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

/// In-memory templates for unit tests.
#[derive(Default)]
pub struct FakeTemplates {
    /// What `describe_templates` answers; `put_template` replaces the template with the same
    /// prefix.
    pub templates: Mutex<Vec<CreationTemplate>>,
    /// The number of `put_template` calls, failed ones included.
    pub writes: Mutex<usize>,
    /// The next `put_template` fails with this error (and writes nothing).
    pub fail_next_put: Mutex<Option<AwsError>>,
    /// The registry permissions policy `registry_policy` answers and
    /// `put_registry_policy` replaces.
    pub registry_policy: Mutex<Option<String>>,
    /// The number of `put_registry_policy` calls.
    pub registry_policy_writes: Mutex<usize>,
}

/// The registry the fakes answer for: account `123456789012` in `us-east-1`.
pub fn fake_registry() -> Registry {
    Registry {
        id: "123456789012".into(),
        region: "us-east-1".into(),
    }
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

    async fn registry_policy(&self) -> Result<Option<String>, AwsError> {
        Ok(self.registry_policy.lock().unwrap().clone())
    }

    async fn put_registry_policy(&self, text: &str) -> Result<(), AwsError> {
        *self.registry_policy_writes.lock().unwrap() += 1;
        *self.registry_policy.lock().unwrap() = Some(text.to_owned());
        Ok(())
    }

    async fn registry(&self) -> Result<Registry, AwsError> {
        Ok(fake_registry())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fake_queues_errors() {
        let fake = FakeEcr::with_rules(vec![PtcRule::new("quay", "quay.io").unwrap()]);
        fake.fail_next("DescribePullThroughCacheRules", AwsErrorKind::Throttled);
        assert!(fake.describe_rules().await.is_err());
        assert_eq!(fake.describe_rules().await.unwrap().len(), 1);
        assert_eq!(fake.calls("DescribePullThroughCacheRules"), 2);
    }
}
