//! The ECR registry's credentials for the OCI client: the `GetAuthorizationToken` token of
//! the ECR port, fetched once per run and refreshed shortly before it expires or after a 401.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::config::Endpoint;
use crate::ecr::{EcrApi, RegistryToken};
use crate::oci::{CredentialSource, Credentials, RegistryClient, RegistryError};

/// The ECR registry token: fetched once, reused across the run, refreshed shortly before it
/// expires or when the registry answers 401.
pub struct EcrTokenSource {
    ecr: Arc<dyn EcrApi>,
    /// The token and until when it is used.
    token: Mutex<Option<(RegistryToken, OffsetDateTime)>>,
    margin: time::Duration,
}

impl EcrTokenSource {
    /// A source that fetches no token until asked. A token is then reused until 5 minutes before
    /// its `expiresAt`; one whose expiry is less than 5 minutes away, past, or 2 days or more away
    /// is used for one hour instead.
    pub fn new(ecr: Arc<dyn EcrApi>) -> Self {
        Self {
            ecr,
            token: Mutex::new(None),
            margin: time::Duration::minutes(5),
        }
    }

    /// The current token (fetching one if needed); `refresh` fetches a new one whatever the
    /// cached one's age (after a 401). A failed `GetAuthorizationToken` is
    /// [`RegistryError::Credentials`] with the [`AwsError`](crate::error::AwsError)'s text.
    pub async fn token(&self, refresh: bool) -> Result<RegistryToken, RegistryError> {
        let mut guard = self.token.lock().await;
        let now = OffsetDateTime::now_utc();
        let fresh = guard.as_ref().is_some_and(|(_, until)| *until > now);
        if refresh || !fresh {
            let token = self
                .ecr
                .authorization_token()
                .await
                .map_err(|e| RegistryError::Credentials(e.to_string()))?;
            // Used until `margin` before it expires. An expiry that is missing, past, or
            // absurd must not mean one GetAuthorizationToken per request: such a token is
            // used for an hour (a 401 still refreshes it). A difference of two dates cannot
            // overflow, where a date minus a duration can.
            let left = token.expires_at - now;
            let until = if left > self.margin && left < time::Duration::days(2) {
                now + (left - self.margin)
            } else {
                tracing::warn!(expires_at = %token.expires_at, "registry token with an implausible expiry: used for an hour");
                now + time::Duration::hours(1)
            };
            *guard = Some((token, until));
        }
        Ok(guard.as_ref().expect("token set above").0.clone())
    }
}

#[async_trait]
impl CredentialSource for EcrTokenSource {
    async fn credentials(&self, refresh: bool) -> Result<Credentials, RegistryError> {
        let token = self.token(refresh).await?;
        Ok(Credentials::Basic {
            username: token.username,
            password: token.password,
        })
    }
}

impl RegistryClient {
    /// The ECR registry of the account: the token's `proxyEndpoint`, or `endpoint_override`
    /// (the local stack). The token is fetched now and reused.
    pub async fn for_ecr(
        http: reqwest::Client,
        ecr: Arc<dyn EcrApi>,
        endpoint_override: Option<&str>,
    ) -> Result<(Self, String), RegistryError> {
        let source = Arc::new(EcrTokenSource::new(ecr));
        let token = source.token(false).await?;
        let host = token.registry_host().to_owned();
        let base = match endpoint_override {
            Some(endpoint) => endpoint.to_owned(),
            // An answer from the API: https, or http on loopback only, like any endpoint.
            None => Endpoint::parse(&token.proxy_endpoint)
                .map_err(|reason| {
                    RegistryError::Credentials(format!(
                        "GetAuthorizationToken's proxyEndpoint {:?}: {reason}",
                        token.proxy_endpoint
                    ))
                })?
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
        };
        Ok((Self::new(http, &base, source), host))
    }
}
