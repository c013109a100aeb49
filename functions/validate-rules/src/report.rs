//! The report of a validate-rules run: one [`RuleResult`] per rule with its [`Finding`]s,
//! the expected rules that are missing, a [`Summary`], run-level errors; and
//! [`metric_data`], the pure function from a report to the CloudWatch data it publishes.

use ptc_core::config::ExpectedRule;
use ptc_core::metrics::{MetricDatum, MetricError, Unit};
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub code: &'static str,
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
}

/// One rule's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleResult {
    pub prefix: String,
    pub upstream: String,
    pub upstream_kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_arn: Option<String>,
    /// ECR says the rule is valid and no finding is an error.
    pub valid: bool,
    /// `ValidatePullThroughCacheRule`'s answer, when the call succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecr_valid: Option<bool>,
    /// ECR's free-form failure text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// When the credential secret's current value was stored.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub credential_changed_at: Option<OffsetDateTime>,
    /// Days since then, to the hundredth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_age_days: Option<f64>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub rules: usize,
    pub valid: usize,
    pub invalid: usize,
    pub missing: usize,
    pub unexpected: usize,
}

/// The run's report: returned by the Lambda, logged as one JSON line, printed by `ptc`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationReport {
    pub job: &'static str,
    pub trigger: String,
    pub rules: Vec<RuleResult>,
    /// Expected by the config, absent from the registry.
    pub missing: Vec<ExpectedRule>,
    /// In the registry, not expected by the config (only when the config lists rules).
    pub unexpected: Vec<String>,
    /// Prefixes the trigger named that the registry does not have (e.g. a deleted rule).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_found: Vec<String>,
    pub summary: Summary,
    pub metrics_published: usize,
    /// Run-level errors: the event, listing the rules, publishing metrics.
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

    /// Every rule valid and none missing.
    pub fn healthy(&self) -> bool {
        self.summary.invalid == 0 && self.summary.missing == 0
    }
}

/// The data points of a run: `RuleValid` (0 or 1) and `CredentialAgeDays` per prefix, a
/// `RuleValid` of 0 for each missing expected rule, and, when `totals_known` (the run listed
/// every rule of the registry), the totals `CredentialsTooOld`, `RulesInvalid` and
/// `RulesMissing` without a `Prefix` dimension, which the alarms watch.
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
    for missing in &report.missing {
        // An expected rule that is gone is not valid either: its alarm must fire.
        push(
            MetricDatum::new("RuleValid", 0.0, Unit::None)
                .and_then(|d| d.dimension("Prefix", missing.prefix.as_str())),
        );
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
    }
    data
}
