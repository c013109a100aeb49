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

use std::collections::BTreeMap;

use ptc_core::Settings;
use ptc_core::config::{FixMode, FixSettings};
use serde_json::Value;

use crate::desired::{Desired, DesiredSet, default_lifecycle, pull_policy};
use crate::plan::Mode;
use crate::sweep::{Deps, FixReport, Options, sweep};
use crate::trigger::Trigger;

/// The desired settings of one prefix (or the defaults) from the settings; a lifecycle policy
/// ECR would refuse is an error naming the setting.
fn desired_from(fix: &FixSettings, setting: &str) -> Result<(Desired, Vec<String>), String> {
    let lifecycle = match &fix.lifecycle_policy {
        Some(text) => {
            desired::lifecycle_from_config(text).map_err(|e| format!("setting {setting}: {e}"))?
        }
        None => default_lifecycle(fix.lifecycle_days),
    };
    let warnings = lifecycle
        .child_risks()
        .into_iter()
        .map(|w| format!("{setting}: {w}"))
        .collect();
    let desired = Desired {
        lifecycle_policy: Some(lifecycle.canonical()),
        repository_policy: pull_policy(&fix.pull_principals, fix.pull_org_id.as_deref()),
        tags: fix.repository_tags.clone(),
        scan_on_push: fix.scan_on_push,
    };
    Ok((desired, warnings))
}

impl Options {
    /// The desired settings (per prefix) and mode from the settings; a desired lifecycle
    /// policy that ECR would refuse stops start-up with the reason.
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let fix = &settings.fix;
        let (default, mut warnings) = desired_from(fix, "PTC_LIFECYCLE_POLICY")?;
        let mut prefixes = BTreeMap::new();
        for prefix in fix.prefixes.keys() {
            let (desired, w) = desired_from(
                &fix.for_prefix(prefix),
                &format!("PTC_PREFIX_SETTINGS {prefix}"),
            )?;
            warnings.extend(w);
            prefixes.insert(prefix.clone(), desired);
        }
        warnings.dedup();
        let (mode, dry_run) = match fix.mode {
            FixMode::Enforce => (Mode::Enforce, false),
            FixMode::DryRun => (Mode::Enforce, true),
            FixMode::Fill => (Mode::Fill, false),
        };
        Ok(Self {
            desired: DesiredSet {
                default,
                prefixes,
                warnings,
            },
            mode,
            dry_run,
            concurrency: settings.concurrency,
            namespace: settings.metrics_namespace.clone(),
            publish_metrics: true,
            stop_at: None,
            cache_made: false,
        })
    }
}

/// One invocation: an event (or a schedule) to a report. A bad event gives a report with the
/// error (the Lambda then fails the invocation, see `ptc_core::RunFailed`). Every invocation
/// publishes its `RunErrors` point.
pub async fn handle(deps: &Deps<'_>, options: &Options, event: &Value) -> FixReport {
    match trigger::parse(event) {
        Ok(Trigger::Sweep { source }) => sweep(deps, options, None, &source).await,
        Ok(Trigger::Repositories {
            source,
            names,
            cache_made,
        }) => {
            let options = Options {
                cache_made,
                ..options.clone()
            };
            sweep(deps, &options, Some(&names), &source).await
        }
        Ok(Trigger::Nothing { source }) => {
            sweep::without_work(deps, options, FixReport::empty(&source, options)).await
        }
        Err(err) => {
            tracing::error!(error = %err, "event rejected");
            let mut report = FixReport::empty("unsupported event", options);
            report.errors.push(err);
            sweep::without_work(deps, options, report).await
        }
    }
}
