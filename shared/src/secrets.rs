//! The Secrets Manager port: the calls the jobs make on the credential secrets of pull
//! through cache rules. Adapter: [`crate::aws::secrets`]; fake: `crate::fakes::secrets`.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::AwsError;
use crate::secret::Secret;

/// What `DescribeSecret` says about a secret (never its value)
/// (<https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    /// `ARN`, `arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random characters>`
    /// (the id asked for when the answer has none).
    pub arn: String,
    /// `Name`, e.g. `ecr-pullthroughcache/docker-hub` (empty when the answer has none).
    pub name: String,
    /// `DeletedDate`: present only when the secret is scheduled for deletion; its value can
    /// then not be read until `RestoreSecret` cancels the deletion.
    pub deleted_at: Option<OffsetDateTime>,
    /// `LastChangedDate`: the last change of any kind (value, description, tags, policy); see
    /// [`SecretValue::version_created_at`] for the value alone.
    pub last_changed_at: Option<OffsetDateTime>,
    /// `LastRotatedDate`: the last rotation; `None` when rotation never ran.
    pub last_rotated_at: Option<OffsetDateTime>,
    /// `CreatedDate`: when the secret was created.
    pub created_at: Option<OffsetDateTime>,
}

/// A secret's current value (`AWSCURRENT`) and when that value was stored
/// (<https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html>).
#[derive(Debug, Clone)]
pub struct SecretValue {
    /// The `SecretString`, wrapped so that it cannot be logged by accident.
    pub value: Secret,
    /// `GetSecretValue`'s `CreatedDate`: when this version was created, i.e. when the value
    /// last changed. Unlike `DescribeSecret`'s `LastChangedDate` ("modified in any way"), it
    /// does not move when someone edits the description, the tags or the policy.
    pub version_created_at: Option<OffsetDateTime>,
}

impl SecretValue {
    /// The `SecretString` itself, for the one place that parses it
    /// ([`crate::secret::UpstreamCredential::parse`]).
    pub fn expose(&self) -> &str {
        self.value.expose()
    }
}

/// The Secrets Manager calls the jobs make on a rule's credential secret. Adapter:
/// [`crate::aws::SdkSecrets`]; fake: `crate::fakes::FakeSecrets` (feature `fakes`).
#[async_trait]
pub trait SecretsApi: Send + Sync {
    /// `DescribeSecret` of `id` (the secret's ARN or name): its dates, never its value. A secret
    /// that does not exist is `ResourceNotFoundException`
    /// ([`AwsErrorKind::NotFound`](crate::error::AwsErrorKind::NotFound)).
    async fn describe_secret(&self, id: &str) -> Result<SecretInfo, AwsError>;
    /// The current value and its version's creation date (`GetSecretValue` of `id`, the ARN
    /// or name). A binary secret (no `SecretString`) is
    /// [`AwsErrorKind::Service`](crate::error::AwsErrorKind::Service)`("NoSecretString")`;
    /// neither the span nor the error carries the value.
    async fn secret_value(&self, id: &str) -> Result<SecretValue, AwsError>;
}
