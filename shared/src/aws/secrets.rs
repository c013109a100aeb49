//! The aws-sdk adapter of the Secrets Manager port ([`crate::secrets`]). A secret's value
//! is wrapped in [`Secret`] as soon as it is read, and no error carries it.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use crate::aws::to_time;
use crate::error::{AwsError, AwsErrorKind};
use crate::secret::Secret;
use crate::secrets::*;

/// The Secrets Manager adapter of [`SecretsApi`]: `DescribeSecret` and `GetSecretValue`
/// (<https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html>).
#[derive(Clone)]
pub struct SdkSecrets {
    client: Client,
}

impl SdkSecrets {
    /// The adapter on a Secrets Manager client (see [`crate::aws::AwsClients`]).
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

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
            crate::aws::ecr::tests::json_error(400, "ResourceNotFoundException", "gone")
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
}
