//! The error every AWS call returns, classified: jobs decide on [`AwsErrorKind`], never on
//! message text. No SDK type here (the conversion from SDK errors is in [`crate::aws`]).

use std::fmt;

/// What kind of failure an AWS call had; jobs decide on this, not on strings.
///
/// The service's error code is classified by [`AwsError::from_sdk`]: throttling codes
/// (`ThrottlingException`, `Throttling`, `TooManyRequestsException`, `RequestLimitExceeded`,
/// `ProvisionedThroughputExceededException`, `SlowDown`) are [`Throttled`](Self::Throttled),
/// codes ending in `NotFoundException` are [`NotFound`](Self::NotFound), `AccessDeniedException`,
/// `AccessDenied`, `UnauthorizedOperation` and `UnrecognizedClientException` are
/// [`AccessDenied`](Self::AccessDenied), any other code is [`Service`](Self::Service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// Still throttled after every retry.
    Throttled,
    /// The named resource does not exist (the service's own error code is kept).
    NotFound(String),
    /// The caller may not make this call (an IAM policy, a resource policy, unknown credentials);
    /// carries the service's code, e.g. `AccessDeniedException`.
    AccessDenied(String),
    /// Any other error the service returned, with its code (e.g. `InvalidParameterException`).
    /// The adapters also use it for answers they cannot use: `InvalidResponse` (an answer
    /// that does not validate), `InvalidObject` (an S3 object too large or not UTF-8),
    /// `NoSecretString` (a binary secret), `InvalidTag`.
    Service(String),
    /// The call did not finish within the SDK's attempt or operation timeout
    /// (`PTC_AWS_TIMEOUT_SECS`, see [`crate::aws::load_sdk_config`]).
    Timeout,
    /// Could not reach the endpoint or read its answer (also: an Embedded Metric Format log
    /// line that could not be written).
    Transport,
}

/// An AWS call that failed: which operation, on what, and why.
///
/// Displayed as `<operation> failed: <code or kind>[: <message>]`, e.g.
/// `DescribeImages failed: RepositoryNotFoundException: no repo x`.
#[derive(Debug, Clone, thiserror::Error)]
pub struct AwsError {
    /// The API operation as the service's API reference names it, e.g. `DescribeImages`,
    /// `GetSecretValue`, `PutMetricData` (`EmbeddedMetricFormat` for a metrics log line).
    pub operation: &'static str,
    /// What kind of failure it was; what jobs decide on.
    pub kind: AwsErrorKind,
    /// The service's error message, or the adapter's explanation; may be empty. The adapters
    /// never put a secret's value or a registry token in it.
    pub message: String,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            AwsErrorKind::Throttled => "throttled after retries".to_owned(),
            AwsErrorKind::NotFound(code)
            | AwsErrorKind::AccessDenied(code)
            | AwsErrorKind::Service(code) => code.clone(),
            AwsErrorKind::Timeout => "timed out".to_owned(),
            AwsErrorKind::Transport => "could not reach the endpoint".to_owned(),
        };
        write!(f, "{} failed: {kind}", self.operation)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl AwsError {
    /// Whether the named resource does not exist ([`AwsErrorKind::NotFound`]: any code ending in
    /// `NotFoundException`, e.g. `RepositoryNotFoundException`, `LifecyclePolicyNotFoundException`,
    /// Secrets Manager's `ResourceNotFoundException`).
    pub fn is_not_found(&self) -> bool {
        matches!(self.kind, AwsErrorKind::NotFound(_))
    }

    /// ECR's answer for a repository that does not exist (any repository operation,
    /// `RepositoryNotFoundException` in the ECR API reference): one deleted by someone else
    /// between a listing and a read or write is a benign race, not a failure of the run.
    pub fn is_repository_gone(&self) -> bool {
        self.code()
            .is_some_and(|code| code.contains("RepositoryNotFoundException"))
    }

    /// The service's error code: the one carried by [`NotFound`](AwsErrorKind::NotFound),
    /// [`AccessDenied`](AwsErrorKind::AccessDenied) and [`Service`](AwsErrorKind::Service),
    /// `ThrottlingException` for [`Throttled`](AwsErrorKind::Throttled) (whichever throttling code
    /// the service sent), `None` for a timeout or a transport error.
    pub fn code(&self) -> Option<&str> {
        match &self.kind {
            AwsErrorKind::NotFound(c)
            | AwsErrorKind::AccessDenied(c)
            | AwsErrorKind::Service(c) => Some(c),
            AwsErrorKind::Throttled => Some("ThrottlingException"),
            _ => None,
        }
    }
}

pub(crate) fn classify(code: &str) -> AwsErrorKind {
    match code {
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "ProvisionedThroughputExceededException"
        | "SlowDown" => AwsErrorKind::Throttled,
        // S3's missing key is `NoSuchKey`
        // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html#API_GetObject_Errors).
        c if c.ends_with("NotFoundException")
            || c == "ResourceNotFoundException"
            || c == "NoSuchKey" =>
        {
            AwsErrorKind::NotFound(c.to_owned())
        }
        "AccessDeniedException"
        | "AccessDenied"
        | "UnauthorizedOperation"
        | "UnrecognizedClientException" => AwsErrorKind::AccessDenied(code.to_owned()),
        c => AwsErrorKind::Service(c.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(classify("ThrottlingException"), AwsErrorKind::Throttled);
        assert_eq!(
            classify("NoSuchKey"),
            AwsErrorKind::NotFound("NoSuchKey".into())
        );
        assert_eq!(
            classify("NoSuchBucket"),
            AwsErrorKind::Service("NoSuchBucket".into()),
            "a missing bucket is a misconfiguration, not an absent object"
        );
        assert_eq!(classify("Throttling"), AwsErrorKind::Throttled);
        assert_eq!(
            classify("RepositoryNotFoundException"),
            AwsErrorKind::NotFound("RepositoryNotFoundException".into())
        );
        assert_eq!(
            classify("LifecyclePolicyNotFoundException"),
            AwsErrorKind::NotFound("LifecyclePolicyNotFoundException".into())
        );
        assert_eq!(
            classify("AccessDeniedException"),
            AwsErrorKind::AccessDenied("AccessDeniedException".into())
        );
        assert_eq!(
            classify("InvalidParameterException"),
            AwsErrorKind::Service("InvalidParameterException".into())
        );
    }

    #[test]
    fn display_names_operation_and_code() {
        let err = AwsError {
            operation: "DescribeImages",
            kind: AwsErrorKind::NotFound("RepositoryNotFoundException".into()),
            message: "no repo x".into(),
        };
        assert_eq!(
            err.to_string(),
            "DescribeImages failed: RepositoryNotFoundException: no repo x"
        );
    }
}
