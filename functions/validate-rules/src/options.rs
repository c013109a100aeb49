//! What a validate-rules run is configured with ([`Options`]), from the settings.

use ptc_core::Settings;
use ptc_core::config::ExpectedRule;
use ptc_core::rules::Prefix;

#[derive(Debug, Clone)]
pub struct Options {
    pub namespace: String,
    pub expected: Vec<ExpectedRule>,
    pub credential_max_age_days: u32,
    /// The prefixes the deployment may manage (`PTC_RULE_PREFIXES`); empty: no check.
    pub rule_prefixes: Vec<Prefix>,
    pub concurrency: usize,
    pub publish_metrics: bool,
}

impl Options {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            namespace: settings.metrics_namespace.clone(),
            expected: settings.expected_rules.clone(),
            credential_max_age_days: settings.credential_max_age_days,
            rule_prefixes: settings.rule_prefixes.clone(),
            concurrency: settings.concurrency,
            publish_metrics: true,
        }
    }
}
