//! The report of a validate-rules run: one [`RuleResult`] per rule with its [`Finding`]s,
//! the expected rules that are missing, each prefix's readiness for its consumers
//! ([`PrefixReadiness`]), a [`Summary`], run-level errors; and [`metric_data`], the pure
//! function from a report to the CloudWatch data it publishes.

use ptc_core::config::ExpectedRule;
use ptc_core::metrics::{MetricDatum, MetricError, Unit};
use serde::Serialize;
use time::OffsetDateTime;

use crate::cross_account::PrefixReadiness;
use crate::pull_time::ExclusionCheck;

/// How bad a [`Finding`] is; serialised as `error`, `warning` or `note`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Makes [`RuleResult::valid`] false: the rule is not usable as configured, or could not
    /// be checked (`ecr-validation-error`, `secret-unreadable`).
    Error,
    /// Worth acting on, but the rule works: only `credential-age` is a warning.
    Warning,
    /// For information only: `upstream-kind-unknown`, a rule for an upstream this version
    /// does not know, checked as a generic registry.
    Note,
}

/// One problem found with a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error, warning or note.
    pub severity: Severity,
    /// A stable kebab-case code for scripts: `ecr-validation-failed` (ECR says
    /// the rule is not valid), `ecr-validation-error` (the `ValidatePullThroughCacheRule`
    /// call failed), `credential-missing` (the upstream needs a secret and the rule has
    /// none), `prefix-out-of-scope`, `drift-upstream`, `drift-credential`, `secret-not-found`,
    /// `secret-access-denied`, `secret-unreadable`, `secret-name` (not under
    /// `ecr-pullthroughcache/`, so ECR will not use it), `secret-deletion-scheduled`,
    /// `secret-keys` (the value is not JSON with non-empty `username` and `accessToken`),
    /// the only warning, `credential-age`, and the only note, `upstream-kind-unknown` (ECR's
    /// `upstreamRegistry` is a kind this version does not know: no credential is required of
    /// the rule, ECR's validation and the secret checks still apply). Findings of the
    /// pull-time check ([`ExclusionCheck::findings`]): `pull-time-exclusion-missing` (a role
    /// that pulls for the product is not an ECR pull-time update exclusion; a warning for
    /// `ptc validate`'s caller) and `pull-time-exclusions-unknown` (the list could not be
    /// read, so the check could not run).
    pub code: &'static str,
    /// The finding for a person: names the rule's upstream, the secret or the AWS error.
    /// Never contains the secret's value.
    pub message: String,
}

impl Finding {
    pub(crate) fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn note(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Note,
            code,
            message: message.into(),
        }
    }
}

/// One rule's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleResult {
    /// The rule's `ecrRepositoryPrefix` (`ROOT` for the rule without a prefix); the `Prefix`
    /// dimension of its `RuleValid` and `CredentialAgeDays` points.
    pub prefix: String,
    /// The rule's `upstreamRegistryUrl`, a host such as `quay.io` or `registry-1.docker.io`.
    pub upstream: String,
    /// ECR's `upstreamRegistry` (`docker-hub`, `quay`, `ecr-public`,
    /// `github-container-registry`, `chainguard`, ...), also one this version does not know
    /// (then an `upstream-kind-unknown` note); when ECR gives none, the kind known from the
    /// URL, else the URL itself. Docker Hub, GitHub, GitLab, Azure and Chainguard need a
    /// credential secret.
    pub upstream_kind: String,
    /// The ARN of the rule's Secrets Manager secret; absent when the rule has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_arn: Option<String>,
    /// ECR says the rule is valid and no finding is an error.
    pub valid: bool,
    /// `ValidatePullThroughCacheRule`'s answer, when the call succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecr_valid: Option<bool>,
    /// ECR's free-form failure text (`ValidatePullThroughCacheRule`'s `failure`, no
    /// published list of values); absent when ECR gave none or the call failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// When the credential secret's current value was stored: the `AWSCURRENT` version's
    /// creation date, else (the value could not be read, or the secret is scheduled for
    /// deletion) DescribeSecret's `LastChangedDate`, else its `CreatedDate`. RFC 3339;
    /// absent without a secret, or when the secret could not be described.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub credential_changed_at: Option<OffsetDateTime>,
    /// Days since then, to the hundredth (0 for a date in the future); absent with
    /// `credential_changed_at`. Published as `CredentialAgeDays` (unit `None`, per `Prefix`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_age_days: Option<f64>,
    /// Every problem found, errors and warnings, in the order checked (ECR's validation,
    /// the secret, the credential, the scope, the drift); empty for a healthy rule.
    pub findings: Vec<Finding>,
}

/// The run's counts, over the rules in scope of the trigger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Rules checked (the length of [`ValidationReport::rules`]).
    pub rules: usize,
    /// Rules with [`RuleResult::valid`] true.
    pub valid: usize,
    /// Rules with [`RuleResult::valid`] false; published as `RulesInvalid` after a run over
    /// every rule.
    pub invalid: usize,
    /// Expected rules the registry lacks ([`ValidationReport::missing`]); published as
    /// `RulesMissing` after a run over every rule.
    pub missing: usize,
    /// Rules the config does not expect ([`ValidationReport::unexpected`]); not published.
    pub unexpected: usize,
    /// Prefixes whose every consumer may make all three kinds of pull
    /// ([`ValidationReport::cross_account`]).
    pub cross_account_ready: usize,
    /// Prefixes with a consumer that may not make one of them, or for which a verdict is
    /// unknown.
    pub cross_account_not_ready: usize,
}

/// The run's report: returned by the Lambda, logged as one JSON line, printed by `ptc`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationReport {
    /// Always `validate-rules`: the `Job` dimension of `RunErrors` and `FullRuns`.
    pub job: &'static str,
    /// Where the run came from ([`Trigger::source`](crate::event::Trigger::source)), or
    /// `unsupported event` for a payload that could not be read.
    pub trigger: String,
    /// One result per rule in scope, in the order `DescribePullThroughCacheRules` listed
    /// them. Empty when the rules could not be listed.
    pub rules: Vec<RuleResult>,
    /// Expected by the config (`PTC_RULES`), absent from the registry, within the
    /// trigger's scope. Each is published as a `RuleValid` of 0 for its prefix.
    pub missing: Vec<ExpectedRule>,
    /// In the registry, not expected by the config (only when the config lists rules).
    pub unexpected: Vec<String>,
    /// Prefixes the trigger named that the registry does not have (e.g. a deleted rule).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_found: Vec<String>,
    /// Notes on the settings, for information: each expected rule (within the trigger's
    /// scope) whose upstream this version does not know, which is kept and compared by
    /// prefix, URL and credential like any other, e.g. `expected rule future: upstream
    /// registry.new.example is not one this version knows; checked as a generic registry
    /// (...)`. Left out of the JSON when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Per rule prefix in scope that has consumers (the settings' pull grants), whether each
    /// consumer may make a first pull, a new-tag pull and a cached pull, as far as the cache
    /// account's registry policy and creation templates say ([`crate::cross_account`]). Left
    /// out of the JSON when empty: no consumer configured, or the policies could not be read
    /// (then one of `errors`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cross_account: Vec<PrefixReadiness>,
    /// Full runs: whether the roles that pull for the product (and `ptc validate`'s caller)
    /// are ECR pull-time update exclusions ([`crate::pull_time`]). Left out of the JSON when
    /// no principal is expected, or the run was for some prefixes only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_time_exclusions: Option<ExclusionCheck>,
    /// The counts.
    pub summary: Summary,
    /// CloudWatch data points written, `RunErrors` (and `FullRuns`) included; 0 when
    /// metrics are off or publishing failed (the failure is then one of `errors`).
    pub metrics_published: usize,
    /// Run-level errors: the event, listing the rules, publishing metrics, and each
    /// triggered prefix that cannot be a rule prefix. Any one fails the Lambda invocation
    /// and counts in `RunErrors`; a rule's own problems are its findings instead.
    pub errors: Vec<String>,
}

impl ValidationReport {
    pub(crate) fn new(trigger: &str) -> Self {
        Self {
            job: "validate-rules",
            trigger: trigger.to_owned(),
            rules: Vec::new(),
            missing: Vec::new(),
            unexpected: Vec::new(),
            not_found: Vec::new(),
            notes: Vec::new(),
            cross_account: Vec::new(),
            pull_time_exclusions: None,
            summary: Summary::default(),
            metrics_published: 0,
            errors: Vec::new(),
        }
    }

    /// A report for an event that could not be read.
    pub fn rejected(error: String) -> Self {
        let mut report = Self::new("unsupported event");
        report.errors.push(error);
        report
    }

    /// Every rule valid and none missing (warnings, run-level errors and cross-account
    /// readiness do not count here).
    pub fn healthy(&self) -> bool {
        self.summary.invalid == 0 && self.summary.missing == 0
    }

    /// The prefixes some consumer cannot pull through (a verdict denied or unknown).
    pub fn not_ready_for_consumers(&self) -> Vec<&str> {
        self.cross_account
            .iter()
            .filter(|p| !p.ready)
            .map(|p| p.prefix.as_str())
            .collect()
    }
}

/// The data points of a run: `RuleValid` (0 or 1) and `CredentialAgeDays` per prefix, a
/// `RuleValid` of 0 for each missing expected rule, `CrossAccountReady` (1, or 0 when a
/// consumer's verdict is denied or unknown) per prefix with consumers, and, when
/// `totals_known` (the run listed every rule of the registry), the totals
/// `CredentialsTooOld`, `RulesInvalid` and `RulesMissing` without a `Prefix` dimension, and
/// `CrossAccountReady` without one (1 when every prefix with consumers is ready, 0
/// otherwise; not published when no prefix has consumers or the policies could not be
/// read), which the alarms watch. Units: `Count` for the totals, `None` for `RuleValid`,
/// `CrossAccountReady` and `CredentialAgeDays` (days). Full runs that checked the
/// deployment's roles also publish `PullTimeExclusionsMissing` (`Count`, no dimension): those
/// not known to be pull-time update exclusions, all of them when the list could not be read.
/// `RunErrors` and `FullRuns` are added when published, not here.
pub fn metric_data(report: &ValidationReport, totals_known: bool) -> Vec<MetricDatum> {
    let mut data = Vec::new();
    // Values here are finite counts and ages, so a rejected datum is a programming error.
    let mut push = |datum: Result<MetricDatum, MetricError>| match datum {
        Ok(d) => data.push(d),
        Err(e) => tracing::error!(error = %e, "metric value rejected"),
    };
    for rule in &report.rules {
        push(
            MetricDatum::new("RuleValid", if rule.valid { 1.0 } else { 0.0 }, Unit::None)
                .and_then(|d| d.dimension("Prefix", &rule.prefix)),
        );
        if let Some(age) = rule.credential_age_days {
            push(
                MetricDatum::new("CredentialAgeDays", age, Unit::None)
                    .and_then(|d| d.dimension("Prefix", &rule.prefix)),
            );
        }
    }
    for prefix in &report.cross_account {
        push(
            MetricDatum::new("CrossAccountReady", ready(prefix.ready), Unit::None)
                .and_then(|d| d.dimension("Prefix", &prefix.prefix)),
        );
    }
    for missing in &report.missing {
        // An expected rule that is gone is not valid either: its alarm must fire.
        push(
            MetricDatum::new("RuleValid", 0.0, Unit::None)
                .and_then(|d| d.dimension("Prefix", missing.prefix.as_str())),
        );
    }
    // Set by full runs only. Not published when only `ptc validate`'s caller was checked:
    // a 0 would say the deployment's roles are excluded, which nobody asked.
    if let Some(check) = &report.pull_time_exclusions
        && check.principals.iter().any(|p| p.deployment)
    {
        push(MetricDatum::new(
            "PullTimeExclusionsMissing",
            check.missing as f64,
            Unit::Count,
        ));
    }
    // Totals describe the whole registry: a run scoped to one prefix, or one that could not
    // list the rules, does not publish them (a 0 it cannot know would clear the alarms).
    if totals_known {
        let too_old = report
            .rules
            .iter()
            .filter(|r| r.findings.iter().any(|f| f.code == "credential-age"))
            .count();
        push(MetricDatum::new(
            "CredentialsTooOld",
            too_old as f64,
            Unit::Count,
        ));
        push(MetricDatum::new(
            "RulesInvalid",
            report.summary.invalid as f64,
            Unit::Count,
        ));
        push(MetricDatum::new(
            "RulesMissing",
            report.summary.missing as f64,
            Unit::Count,
        ));
        // Nothing when no prefix has consumers (nothing to say) or the policies could not be
        // read (RunErrors pages instead of a score).
        if !report.cross_account.is_empty() {
            let all = report.cross_account.iter().all(|p| p.ready);
            push(MetricDatum::new(
                "CrossAccountReady",
                ready(all),
                Unit::None,
            ));
        }
    }
    data
}

fn ready(yes: bool) -> f64 {
    if yes { 1.0 } else { 0.0 }
}
