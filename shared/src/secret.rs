//! A string that never shows itself in logs, `Debug` output or serialised reports.

use std::fmt;

/// A secret string (a password, a token, a secret's value): `Debug` prints
/// `Secret(<redacted>)`, `Display` and `Serialize` print `<redacted>`. Only
/// [`expose`](Self::expose) gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap `value`; from here on it is shown only through [`expose`](Self::expose).
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value, for the one place that must send it (an HTTP header, a JSON check).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

/// The credential secret of a pull through cache rule, as ECR reads it: a Secrets Manager
/// secret named `ecr-pullthroughcache/...` whose value is the JSON object
/// `{"username": "...", "accessToken": "..."}`
/// (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-creating-secret.html>).
/// The one parser of that shape: validate-rules checks it, prewarm pulls upstream with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamCredential {
    /// `username`: the upstream registry account's user name (not blank).
    pub username: String,
    /// `accessToken`: the upstream registry's access token or password (not blank), e.g. a Docker
    /// Hub access token or a GitHub personal access token.
    pub access_token: Secret,
}

impl UpstreamCredential {
    /// Parse a secret's value. Errors say what is wrong with the shape and never contain the
    /// value: not JSON, not an object, or which keys are missing or blank.
    pub fn parse(value: &str) -> Result<Self, String> {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(value) else {
            return Err(
                "the value is not JSON (expected {\"username\": ..., \"accessToken\": ...})".into(),
            );
        };
        let Some(object) = doc.as_object() else {
            return Err("the value is not a JSON object".into());
        };
        let text = |key: &str| {
            object
                .get(key)
                .and_then(|v| v.as_str())
                .filter(|s| !s.trim().is_empty())
        };
        match (text("username"), text("accessToken")) {
            (Some(username), Some(token)) => Ok(Self {
                username: username.to_owned(),
                access_token: Secret::new(token.to_owned()),
            }),
            (username, token) => {
                let missing: Vec<&str> = [("username", username), ("accessToken", token)]
                    .into_iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(k, _)| k)
                    .collect();
                Err(format!("missing or empty key(s) {}", missing.join(", ")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("hunter2".into());
        assert_eq!(s.expose(), "hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"));
    }

    #[test]
    fn upstream_credentials_are_checked_without_showing_them() {
        let ok = UpstreamCredential::parse(r#"{"username":"bot","accessToken":"s3cret"}"#).unwrap();
        assert_eq!(ok.username, "bot");
        assert_eq!(ok.access_token.expose(), "s3cret");
        assert!(!format!("{ok:?}").contains("s3cret"));
        let err =
            UpstreamCredential::parse(r#"{"username":" ","accessToken":"s3cret"}"#).unwrap_err();
        assert_eq!(err, "missing or empty key(s) username");
        assert!(!err.contains("s3cret"));
        assert_eq!(
            UpstreamCredential::parse("[]").unwrap_err(),
            "the value is not a JSON object"
        );
        assert!(
            UpstreamCredential::parse("s3cret")
                .unwrap_err()
                .starts_with("the value is not JSON")
        );
    }
}
