//! The Secrets Manager calls the jobs make (credential secrets of PTC rules).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use time::OffsetDateTime;

use crate::aws::{AwsError, AwsErrorKind, to_time};
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

#[derive(Clone)]
pub struct SdkSecrets {
    client: Client,
}

impl SdkSecrets {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl SecretsApi for SdkSecrets {
    #[tracing::instrument(skip(self), err(Display))]
    async fn describe_secret(&self, id: &str) -> Result<SecretInfo, AwsError> {
        let out = self
            .client
            .describe_secret()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeSecret", e))?;
        Ok(SecretInfo {
            arn: out.arn().unwrap_or(id).to_owned(),
            name: out.name().unwrap_or_default().to_owned(),
            deleted_at: to_time(out.deleted_date()),
            last_changed_at: to_time(out.last_changed_date()),
            last_rotated_at: to_time(out.last_rotated_date()),
            created_at: to_time(out.created_date()),
        })
    }

    // The value is never part of the span or the error.
    #[tracing::instrument(skip(self), err(Display))]
    async fn secret_value(&self, id: &str) -> Result<SecretValue, AwsError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetSecretValue", e))?;
        out.secret_string()
            .map(|s| SecretValue {
                value: Secret::new(s.to_owned()),
                version_created_at: to_time(out.created_date()),
            })
            .ok_or_else(|| AwsError {
                operation: "GetSecretValue",
                kind: AwsErrorKind::Service("NoSecretString".into()),
                message: format!(
                    "secret {id} has no SecretString (binary secrets are not valid PTC credentials)"
                ),
            })
    }
}

/// In-memory Secrets Manager for unit tests.
#[derive(Default)]
pub struct FakeSecrets {
    pub secrets: Mutex<BTreeMap<String, (SecretInfo, Option<SecretValue>)>>,
    /// Secret ids for which every call is denied.
    pub denied: Mutex<Vec<String>>,
}

impl FakeSecrets {
    /// A secret whose current value was stored at its `last_changed_at`.
    pub fn insert(&self, info: SecretInfo, value: Option<&str>) {
        let stored = info.last_changed_at;
        self.insert_version(info, value, stored);
    }

    /// A secret whose current value was stored at `version_created_at` (e.g. an old token
    /// whose secret's tags changed since).
    pub fn insert_version(
        &self,
        info: SecretInfo,
        value: Option<&str>,
        version_created_at: Option<OffsetDateTime>,
    ) {
        let value = value.map(|v| SecretValue {
            value: Secret::new(v.to_owned()),
            version_created_at,
        });
        self.secrets
            .lock()
            .unwrap()
            .insert(info.arn.clone(), (info, value));
    }

    fn lookup(
        &self,
        operation: &'static str,
        id: &str,
    ) -> Result<(SecretInfo, Option<SecretValue>), AwsError> {
        if self.denied.lock().unwrap().iter().any(|d| d == id) {
            return Err(AwsError {
                operation,
                kind: AwsErrorKind::AccessDenied("AccessDeniedException".into()),
                message: format!("not authorized to read {id}"),
            });
        }
        self.secrets
            .lock()
            .unwrap()
            .values()
            .find(|(info, _)| info.arn == id || info.name == id)
            .cloned()
            .ok_or_else(|| AwsError {
                operation,
                kind: AwsErrorKind::NotFound("ResourceNotFoundException".into()),
                message: format!("Secrets Manager can't find the specified secret {id}"),
            })
    }
}

#[async_trait]
impl SecretsApi for FakeSecrets {
    async fn describe_secret(&self, id: &str) -> Result<SecretInfo, AwsError> {
        self.lookup("DescribeSecret", id).map(|(info, _)| info)
    }

    async fn secret_value(&self, id: &str) -> Result<SecretValue, AwsError> {
        let (info, value) = self.lookup("GetSecretValue", id)?;
        if info.deleted_at.is_some() {
            return Err(AwsError {
                operation: "GetSecretValue",
                kind: AwsErrorKind::Service("InvalidRequestException".into()),
                message: "secret is marked for deletion".into(),
            });
        }
        value.ok_or_else(|| AwsError {
            operation: "GetSecretValue",
            kind: AwsErrorKind::Service("NoSecretString".into()),
            message: format!("secret {id} has no SecretString"),
        })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    #[tokio::test]
    async fn describe_reports_deletion_and_dates() {
        let rule = mock!(Client::describe_secret)
            .match_requests(|r| r.secret_id() == Some("ecr-pullthroughcache/docker-hub"))
            .then_output(|| {
                DescribeSecretOutput::builder()
                    .arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbC")
                    .name("ecr-pullthroughcache/docker-hub")
                    .deleted_date(aws_smithy_types::DateTime::from_secs(1_900_000_000))
                    .last_changed_date(aws_smithy_types::DateTime::from_secs(1_800_000_000))
                    .build()
            });
        let client = mock_client!(aws_sdk_secretsmanager, [&rule]);
        let info = SdkSecrets::new(client)
            .describe_secret("ecr-pullthroughcache/docker-hub")
            .await
            .unwrap();
        assert_eq!(info.name, "ecr-pullthroughcache/docker-hub");
        assert_eq!(info.deleted_at.unwrap().unix_timestamp(), 1_900_000_000);
        assert_eq!(
            info.last_changed_at.unwrap().unix_timestamp(),
            1_800_000_000
        );
    }

    #[tokio::test]
    async fn value_is_wrapped_and_errors_never_carry_it() {
        let ok = mock!(Client::get_secret_value).then_output(|| {
            GetSecretValueOutput::builder()
                .secret_string(r#"{"username":"u","accessToken":"tok"}"#)
                .created_date(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                .build()
        });
        let missing = mock!(Client::get_secret_value).then_http_response(|| {
            crate::ecr::tests::json_error(400, "ResourceNotFoundException", "gone")
        });
        let client = mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::Sequential,
            [&ok, &missing]
        );
        let secrets = SdkSecrets::new(client);
        let value = secrets.secret_value("x").await.unwrap();
        assert!(value.expose().contains("tok"));
        assert!(!format!("{value:?}").contains("tok"));
        assert_eq!(
            value.version_created_at.unwrap().unix_timestamp(),
            1_700_000_000
        );
        let err = secrets.secret_value("x").await.unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
    }

    #[tokio::test]
    async fn fake_denies_and_finds_by_name() {
        let fake = FakeSecrets::default();
        fake.insert(
            SecretInfo {
                arn: "arn:x".into(),
                name: "ecr-pullthroughcache/a".into(),
                deleted_at: None,
                last_changed_at: None,
                last_rotated_at: None,
                created_at: None,
            },
            Some("{}"),
        );
        assert_eq!(
            fake.describe_secret("ecr-pullthroughcache/a")
                .await
                .unwrap()
                .arn,
            "arn:x"
        );
        fake.denied.lock().unwrap().push("arn:x".into());
        let err = fake.secret_value("arn:x").await.unwrap_err();
        assert_eq!(
            err.kind,
            AwsErrorKind::AccessDenied("AccessDeniedException".into())
        );
    }
}
