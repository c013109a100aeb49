//! Are the roles that pull for the product ECR pull-time update exclusions?
//!
//! prewarm pulls every watch-list image through the cache and health-metrics reads index
//! manifests with `BatchGetImage`; a pull moves an image's `lastRecordedPullTime` unless the
//! puller's role is on the registry's exclusion list
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-time-update-exclusions.html>).
//! Without it, prewarm's discovery (tags pulled within `PTC_DISCOVERY_DAYS`) finds its own
//! pulls and keeps warming what nobody else uses, and health-metrics' `ImagesNotPulled`
//! counts the product's reads as use. The template registers both roles
//! (`AWS::ECR::PullTimeUpdateExclusion`); this check tells when that is undone or never
//! happened (a stack deployed where the resource type is not offered, an exclusion
//! deregistered by hand).
//!
//! One `ListPullTimeUpdateExclusions` (all pages) per full run, only when some principal is
//! expected. A list that cannot be read (AccessDenied, an operation the Region or partition
//! does not offer) is a finding that says the check could not run, and every principal of
//! the deployment counts as missing: a signal that cannot be computed is never a 0.

use ptc_core::ecr::EcrApi;
use ptc_core::pull_time::ExpectedExclusion;
use serde::Serialize;

use crate::report::Finding;

/// The check's result, in the report as `pull_time_exclusions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExclusionCheck {
    /// Whether `ListPullTimeUpdateExclusions` answered; false: every principal's `excluded`
    /// is unknown (`null`).
    pub listed: bool,
    /// One entry per expected principal: the deployment's (`PTC_PULL_TIME_EXCLUDED_ROLES`),
    /// then, for `ptc validate`, the caller's.
    pub principals: Vec<PrincipalCheck>,
    /// The deployment's principals not known to be excluded (all of them when the list
    /// could not be read): published as `PullTimeExclusionsMissing`. The caller of `ptc
    /// validate` is not counted (an operator's own role is not the deployment's).
    pub missing: usize,
    /// `pull-time-exclusion-missing` per principal not excluded (an error for the
    /// deployment's, a warning for the caller's), or one `pull-time-exclusions-unknown`
    /// when the list could not be read (an error, a warning when only the caller was
    /// expected).
    pub findings: Vec<Finding>,
}

/// One expected principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrincipalCheck {
    /// The principal's ARN (for a caller known from a role session, the role's ARN without
    /// its path).
    pub principal: String,
    /// Where the expectation comes from: `PTC_PULL_TIME_EXCLUDED_ROLES` or `the caller
    /// (arn:...)`.
    pub source: String,
    /// One of the deployment's roles, counted in [`ExclusionCheck::missing`] (not the
    /// caller of `ptc validate`).
    pub deployment: bool,
    /// Whether it is on the list; `null` when the list could not be read, or when an
    /// exclusion has its name but the path cannot be told (a `pull-time-exclusion-unknown`
    /// warning).
    pub excluded: Option<bool>,
    /// Looked for by account and role name: the caller's role known from its session ARN,
    /// which does not carry the path.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub matched_by_name: bool,
}

/// What is lost while a principal is not excluded.
const WHY: &str = "its pulls move lastRecordedPullTime, so prewarm's discovery (tags pulled within PTC_DISCOVERY_DAYS) and health-metrics' ImagesNotPulled count the product's own pulls as use";

/// Check `deployment` (counted in [`ExclusionCheck::missing`]) and `caller` (reported only)
/// against the registry's list. `None` when neither has a principal (no call is made).
pub async fn check(
    ecr: &dyn EcrApi,
    deployment: &[ExpectedExclusion],
    caller: Option<&ExpectedExclusion>,
) -> Option<ExclusionCheck> {
    let caller = caller.filter(|c| !deployment.iter().any(|d| d.arn == c.arn));
    let expected: Vec<(&ExpectedExclusion, bool)> = deployment
        .iter()
        .map(|e| (e, true))
        .chain(caller.map(|c| (c, false)))
        .collect();
    if expected.is_empty() {
        return None;
    }
    let listed = match ecr.pull_time_update_exclusions().await {
        Ok(list) => Ok(list),
        Err(err) => {
            tracing::warn!(error = %err, "cannot list the pull-time update exclusions");
            Err(err)
        }
    };
    let mut result = ExclusionCheck {
        listed: listed.is_ok(),
        principals: Vec::new(),
        missing: 0,
        findings: Vec::new(),
    };
    for (principal, counted) in &expected {
        let registration = listed.as_ref().ok().map(|l| principal.registration(l));
        let excluded = registration.as_ref().and_then(|r| r.as_ref().ok().copied());
        if *counted && excluded != Some(true) {
            result.missing += 1;
        }
        if excluded == Some(false) {
            result.findings.push(missing_finding(principal, *counted));
        }
        // A role known from its session only, with an exclusion of its name: it cannot be
        // told whether that exclusion is this role's (its path).
        if let Some(Err(why)) = &registration {
            result.findings.push(Finding::warning(
                "pull-time-exclusion-unknown",
                format!("{} ({}): {why}", principal.arn, principal.source),
            ));
        }
        result.principals.push(PrincipalCheck {
            principal: principal.arn.to_string(),
            source: principal.source.clone(),
            deployment: *counted,
            excluded,
            matched_by_name: !principal.path_known,
        });
    }
    if let Err(err) = &listed {
        let names: Vec<String> = expected.iter().map(|(e, _)| e.arn.to_string()).collect();
        // An error when the deployment's roles are in question; for the caller alone, a
        // warning, as its missing exclusion would be.
        let finding = if deployment.is_empty() {
            Finding::warning
        } else {
            Finding::error
        };
        result.findings.push(finding(
            "pull-time-exclusions-unknown",
            format!(
                "the pull-time update exclusions could not be listed ({err}), so the check could not run: whether {} {} excluded is unknown and PullTimeExclusionsMissing counts every role of the deployment as missing. AccessDenied: grant ecr:ListPullTimeUpdateExclusions; an unknown operation or endpoint: this Region or partition may not offer pull-time update exclusions, and the product's own pulls then count as use",
                names.join(", "),
                if names.len() == 1 { "is" } else { "are" }
            ),
        ));
    }
    tracing::info!(
        listed = result.listed,
        missing = result.missing,
        principals = result.principals.len(),
        "pull-time update exclusions checked"
    );
    Some(result)
}

fn missing_finding(principal: &ExpectedExclusion, counted: bool) -> Finding {
    let arn = &principal.arn;
    let matched = if principal.path_known {
        String::new()
    } else {
        format!(
            " (looked for any role named {} in account {}: the session ARN does not carry the role's path; `aws iam get-role --role-name {}` gives its ARN)",
            arn.name(),
            arn.account(),
            arn.name()
        )
    };
    let message = format!(
        "{arn} ({}) is not an ECR pull-time update exclusion{matched}: {WHY}. Register it: aws ecr register-pull-time-update-exclusion --principal-arn {arn} (see ptc iam pull-time-exclusion)",
        principal.source
    );
    if counted {
        Finding::error("pull-time-exclusion-missing", message)
    } else {
        Finding::warning("pull-time-exclusion-missing", message)
    }
}
