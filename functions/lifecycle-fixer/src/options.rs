//! What a lifecycle-fixer run is configured with ([`Options`]): the desired settings per
//! rule prefix, the mode, and how the run goes; from the settings, where a desired lifecycle
//! policy that ECR would refuse stops start-up with the reason.

use std::collections::BTreeMap;

use ptc_core::Settings;
use ptc_core::config::{FixMode, FixSettings};

use crate::desired::{self, Desired, DesiredSet, default_lifecycle, pull_policy};
use crate::plan::Mode;

/// How a lifecycle-fixer run goes. Built by [`Options::from_settings`]; `ptc fix` then sets
/// `publish_metrics` from `--no-metrics`, the Lambda sets `stop_at` per invocation, and
/// [`handle`](crate::handle) sets `cache_made` from the event.
#[derive(Debug, Clone)]
pub struct Options {
    /// The desired settings per rule prefix: a default from `PTC_LIFECYCLE_POLICY` (else
    /// `PTC_LIFECYCLE_DAYS`, 1-3650, default 30), `PTC_PULL_PRINCIPALS`, `PTC_PULL_ORG_ID`,
    /// `PTC_REPOSITORY_TAGS` and `PTC_SCAN_ON_PUSH`, and one per prefix of
    /// `PTC_PREFIX_SETTINGS` (what a prefix does not set comes from the default).
    pub desired: DesiredSet,
    /// [`Mode::Fill`] for `PTC_FIX_MODE=fill` (the default), [`Mode::Enforce`] for
    /// `enforce` and `dry-run`.
    pub mode: Mode,
    /// `PTC_FIX_MODE=dry-run` (or `ptc fix --mode dry-run`): plan as `enforce` would, write
    /// nothing (no repository setting, no template), publish only `RunErrors` (and, on a
    /// full sweep, the heartbeat).
    pub dry_run: bool,
    /// How many repositories are read and fixed at once (`PTC_CONCURRENCY`, 1-256, default
    /// 16; 0 is taken as 1). Each repository's changes are written one after the other.
    pub concurrency: usize,
    /// CloudWatch namespace of every data point of the run (`PTC_METRICS_NAMESPACE`,
    /// default `ECRPullThroughCache`).
    pub namespace: String,
    /// Publish the run's CloudWatch data (always true from the settings; `ptc fix
    /// --no-metrics` turns it off). Off, not even `RunErrors` is published.
    pub publish_metrics: bool,
    /// Start no repository after this instant (the Lambda deadline, less a margin): the
    /// rest are reported as deferred; a repository once started gets all its changes.
    pub stop_at: Option<std::time::Instant>,
    /// The named repositories were created by the cache itself (its CreateRepository
    /// service event, a sync event). Only then is a repository matched by nothing but a
    /// `ROOT` rule changed: under `ROOT` every name matches, and nothing else tells a
    /// cached repository from the account's own (whose images a cache lifecycle policy
    /// would expire).
    pub cache_made: bool,
}

/// The desired settings of one prefix (or the defaults) from the settings; a lifecycle policy
/// ECR would refuse is an error naming the setting.
pub(crate) fn desired_from(
    fix: &FixSettings,
    setting: &str,
) -> Result<(Desired, Vec<String>), String> {
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
    ///
    /// Errors: `setting PTC_LIFECYCLE_POLICY: <why>` or `setting PTC_PREFIX_SETTINGS <prefix>:
    /// <why>` ([`LifecyclePolicy::parse`](crate::policy::LifecyclePolicy::parse)'s checks).
    /// A lifecycle rule that may expire the platform manifests of a live index is no error:
    /// it becomes one of the [`DesiredSet::warnings`] every report carries.
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
