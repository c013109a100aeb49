//! lifecycle-fixer: bring every repository the pull-through cache creates to the desired
//! settings (lifecycle policy, repository policy, tags, scan on push).
//!
//! This crate holds the domain so far: lifecycle policies validated with ECR's rules and
//! compared by meaning ([`policy`]), IAM repository policies compared by meaning
//! ([`iam`]), the desired settings ([`desired`]) and the change plan per repository and
//! mode ([`plan`]), and the sweep that reads, plans and fixes repositories ([`sweep`]).
//! Triggers: the daily sweep, CloudTrail `CreateRepository` (service and API call shapes)
//! and pull-through cache sync events ([`trigger`]).

pub mod desired;
pub mod iam;
pub mod plan;
pub mod policy;
pub mod sweep;
pub mod templates;
pub mod trigger;

use ptc_core::Settings;
use serde_json::Value;

use crate::desired::{Desired, default_lifecycle, pull_policy};
use crate::plan::Mode;
use crate::sweep::{Deps, FixReport, Options, sweep};
use crate::trigger::Trigger;

impl Options {
    /// The desired settings and mode from the settings; a desired lifecycle policy that ECR
    /// would refuse stops start-up with the reason.
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let fix = &settings.fix;
        let lifecycle = match &fix.lifecycle_policy {
            Some(text) => desired::lifecycle_from_config(text)
                .map_err(|e| format!("setting PTC_LIFECYCLE_POLICY: {e}"))?,
            None => default_lifecycle(fix.lifecycle_days),
        };
        let (mode, dry_run) = match fix.mode.as_str() {
            "enforce" => (Mode::Enforce, false),
            "dry-run" => (Mode::Enforce, true),
            _ => (Mode::Fill, false),
        };
        Ok(Self {
            desired: Desired {
                lifecycle_policy: Some(lifecycle.canonical()),
                repository_policy: pull_policy(&fix.pull_principals, fix.pull_org_id.as_deref()),
                tags: fix.repository_tags.clone(),
                scan_on_push: fix.scan_on_push,
            },
            mode,
            dry_run,
            concurrency: settings.concurrency,
            namespace: settings.metrics_namespace.clone(),
            publish_metrics: true,
        })
    }
}

/// One invocation: an event (or a schedule) to a report. A bad event gives a report with the
/// error; it never fails the invocation.
pub async fn handle(deps: &Deps<'_>, options: &Options, event: &Value) -> FixReport {
    match trigger::parse(event) {
        Ok(Trigger::Sweep { source }) => sweep(deps, options, None, &source).await,
        Ok(Trigger::Repositories { source, names }) => {
            sweep(deps, options, Some(&names), &source).await
        }
        Ok(Trigger::Nothing { source }) => FixReport::empty(&source, options),
        Err(err) => {
            tracing::error!(error = %err, "event rejected");
            let mut report = FixReport::empty("unsupported event", options);
            report.errors.push(err);
            report
        }
    }
}
