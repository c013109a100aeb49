//! The Secrets Manager port: the calls the jobs make on the credential secrets of pull
//! through cache rules. Adapter: [`crate::aws::secrets`]; fake: `crate::fakes::secrets`.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::AwsError;
use crate::secret::Secret;

/// What `DescribeSecret` says about a secret (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub arn: String,
    pub name: String,
    /// Set when the secret is scheduled for deletion.
    pub deleted_at: Option<OffsetDateTime>,
    pub last_changed_at: Option<OffsetDateTime>,
    pub last_rotated_at: Option<OffsetDateTime>,
    pub created_at: Option<OffsetDateTime>,
}

/// A secret's current value (`AWSCURRENT`) and when that value was stored.
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
    pub fn expose(&self) -> &str {
        self.value.expose()
    }
}

#[async_trait]
pub trait SecretsApi: Send + Sync {
    async fn describe_secret(&self, id: &str) -> Result<SecretInfo, AwsError>;
    /// The current value and its version's creation date.
    async fn secret_value(&self, id: &str) -> Result<SecretValue, AwsError>;
}
