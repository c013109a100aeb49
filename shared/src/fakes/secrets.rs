//! In-memory Secrets Manager for tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::{AwsError, AwsErrorKind};
use crate::secret::Secret;
use crate::secrets::*;

/// In-memory Secrets Manager for unit tests.
#[derive(Default)]
pub struct FakeSecrets {
    /// ARN → (what `describe_secret` answers, the current value), found by ARN or name. No value:
    /// `secret_value` answers `NoSecretString`; a `deleted_at`: `InvalidRequestException`.
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
    use super::*;

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
