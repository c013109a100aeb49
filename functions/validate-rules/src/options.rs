//! What a validate-rules run is configured with ([`Options`]), from the settings.

use ptc_core::Settings;
use ptc_core::config::ExpectedRule;
use ptc_core::pull_time::ExpectedExclusion;
use ptc_core::rules::Prefix;

use crate::cross_account::Consumers;

/// How a validate-rules run goes. Built by [`Options::from_settings`]; `ptc validate` then
/// sets [`publish_metrics`](Self::publish_metrics) from `--no-metrics`.
#[derive(Debug, Clone)]
pub struct Options {
    /// CloudWatch namespace of every data point of the run (`PTC_METRICS_NAMESPACE`,
    /// default `ECRPullThroughCache`).
    pub namespace: String,
    /// The rules the operator expects (`PTC_RULES`, `PREFIX=UPSTREAM_URL[+credential]` items,
    /// or the config file's `[[rules]]`). Empty: no drift check, and nothing is reported
    /// missing or unexpected. Each expected rule is compared with the registry's rule of the
    /// same prefix: a different upstream is a `drift-upstream` error, a credential where none
    /// is expected (or none where one is) a `drift-credential` error; an expected prefix the
    /// registry lacks is listed in [`ValidationReport::missing`](crate::ValidationReport::missing).
    pub expected: Vec<ExpectedRule>,
    /// Days after which a credential secret's current value counts as too old
    /// (`PTC_CREDENTIAL_MAX_AGE_DAYS`, 1-3650, default 90). An older value is a
    /// `credential-age` warning (the rule stays valid) and is counted in `CredentialsTooOld`.
    pub credential_max_age_days: u32,
    /// The prefixes the deployment may manage (`PTC_RULE_PREFIXES`); empty: no check.
    /// A rule whose prefix is neither listed nor below a listed one (`team` covers
    /// `team/quay`), with no `ROOT` in the list, gets a `prefix-out-of-scope` error.
    pub rule_prefixes: Vec<Prefix>,
    /// How many rules are checked at once, each with its `ValidatePullThroughCacheRule` and
    /// Secrets Manager calls (`PTC_CONCURRENCY`, 1-256, default 16; 0 is taken as 1).
    pub concurrency: usize,
    /// Publish the run's CloudWatch data (always true from the settings; `ptc validate
    /// --no-metrics` turns it off). Off, not even `RunErrors` is published.
    pub publish_metrics: bool,
    /// The accounts and roles each rule prefix serves, besides the cache account: the pull
    /// grants of the settings (`PTC_PULL_PRINCIPALS`, `PTC_PULL_ORG_ID`, a prefix's own in
    /// `PTC_PREFIX_SETTINGS`), whose first, new-tag and cached pulls are checked
    /// ([`crate::cross_account`]). Empty: nothing is checked or read.
    pub consumers: Consumers,
    /// The roles that pull for the deployment and must be ECR pull-time update exclusions
    /// (`PTC_PULL_TIME_EXCLUDED_ROLES`: prewarm's and health-metrics' roles in the template),
    /// checked against `ListPullTimeUpdateExclusions` in full runs ([`crate::pull_time`]);
    /// those not known to be excluded are `PullTimeExclusionsMissing`. Empty: no check.
    pub pull_time_exclusions: Vec<ExpectedExclusion>,
    /// `ptc validate`'s caller, when STS says who it is and it can be excluded (an IAM role,
    /// also known from a session, or user): checked with the others, a warning when it is
    /// not excluded, not counted in `PullTimeExclusionsMissing`. `None` in the Lambda.
    pub caller_exclusion: Option<ExpectedExclusion>,
}

impl Options {
    /// The options from the loaded settings, with metrics on.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            namespace: settings.metrics_namespace.clone(),
            expected: settings.expected_rules.clone(),
            credential_max_age_days: settings.credential_max_age_days,
            rule_prefixes: settings.rule_prefixes.clone(),
            concurrency: settings.concurrency,
            publish_metrics: true,
            consumers: Consumers::from_settings(&settings.fix),
            pull_time_exclusions: settings
                .pull_time_excluded_roles
                .iter()
                .map(|arn| ExpectedExclusion::exact(arn.clone(), "PTC_PULL_TIME_EXCLUDED_ROLES"))
                .collect(),
            caller_exclusion: None,
        }
    }
}
