//! The checks of a rule's credential secret: its name (ECR reads only secrets named
//! `ecr-pullthroughcache/...`), that it exists and is not scheduled for deletion, that its
//! value has the shape ECR reads (`{"username": ..., "accessToken": ...}`), and its age.
//! The value is read for the shape check only: never logged, returned or put in a finding
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-creating-secret.html>).

use ptc_core::AwsErrorKind;
use ptc_core::secret::UpstreamCredential;
use ptc_core::secrets::SecretsApi;
use time::OffsetDateTime;

use crate::report::Finding;

/// Secrets of pull-through cache rules must be named like this.
pub const SECRET_PREFIX: &str = "ecr-pullthroughcache/";

/// The secret's checks. Its value is read for the key check only: never logged, returned or
/// put in a finding.
pub(crate) async fn check_secret(
    secrets: &dyn SecretsApi,
    arn: &str,
    max_age_days: u32,
    now: OffsetDateTime,
) -> (Vec<Finding>, Option<OffsetDateTime>) {
    let mut findings = Vec::new();
    let info = match secrets.describe_secret(arn).await {
        Ok(info) => info,
        Err(err) => {
            let finding = match err.kind {
                AwsErrorKind::NotFound(_) => Finding::error(
                    "secret-not-found",
                    format!("credential secret {arn} does not exist"),
                ),
                AwsErrorKind::AccessDenied(_) => Finding::error(
                    "secret-access-denied",
                    format!("not allowed to describe credential secret {arn}: {err}"),
                ),
                _ => Finding::error(
                    "secret-unreadable",
                    format!("could not describe credential secret {arn}: {err}"),
                ),
            };
            return (vec![finding], None);
        }
    };
    if !info.name.starts_with(SECRET_PREFIX) {
        findings.push(Finding::error(
            "secret-name",
            format!(
                "secret name {} does not start with {SECRET_PREFIX}; ECR will not use it",
                info.name
            ),
        ));
    }
    if let Some(deleted) = info.deleted_at {
        findings.push(Finding::error(
            "secret-deletion-scheduled",
            format!(
                "secret {} is scheduled for deletion ({})",
                info.name,
                deleted.date()
            ),
        ));
    }
    // The age of the credential is the age of the secret's current value: the version's
    // creation date. DescribeSecret's dates are the fallback (a secret scheduled for deletion
    // is not read), and LastChangedDate also moves on tag and description edits.
    let mut changed = info.last_changed_at.or(info.created_at);
    if info.deleted_at.is_none() {
        match secrets.secret_value(arn).await {
            Ok(value) => {
                changed = value.version_created_at.or(changed);
                if let Some(problem) = credential_problem(value.expose()) {
                    findings.push(Finding::error(
                        "secret-keys",
                        format!("secret {}: {problem}", info.name),
                    ));
                }
            }
            Err(err) => {
                let code = if matches!(err.kind, AwsErrorKind::AccessDenied(_)) {
                    "secret-access-denied"
                } else {
                    "secret-unreadable"
                };
                findings.push(Finding::error(
                    code,
                    format!("could not read secret {}: {err}", info.name),
                ));
            }
        }
    }
    if let Some(days) = changed.map(|t| age_days(now, t))
        && days > f64::from(max_age_days)
    {
        findings.push(Finding::warning(
            "credential-age",
            format!(
                "secret {} value last changed {:.0} days ago (more than {max_age_days}): rotate the token",
                info.name,
                days.floor()
            ),
        ));
    }
    (findings, changed)
}

/// Days from `then` to `now`, to the hundredth: enough for a rotation alarm, readable in a
/// report.
pub(crate) fn age_days(now: OffsetDateTime, then: OffsetDateTime) -> f64 {
    ((now - then).as_seconds_f64() / 864.0).round().max(0.0) / 100.0
}

/// What is wrong with a credential secret's value, if anything. Never quotes the value.
fn credential_problem(value: &str) -> Option<String> {
    UpstreamCredential::parse(value).err()
}
