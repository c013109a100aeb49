//! lifecycle-fixer: bring every repository the pull-through cache creates to the desired
//! settings (lifecycle policy, repository policy, tags, scan on push).
//!
//! This crate holds the domain: lifecycle policies validated with ECR's rules and
//! compared by meaning ([`policy`]), IAM repository policies compared by meaning
//! ([`iam`]), the desired settings ([`desired`]) and the change plan per repository and
//! mode ([`plan`]), the creation templates ([`templates`]), and the sweep that reads, plans
//! and fixes repositories ([`job`]), with its [`options`] and [`report`]. Triggers: the daily
//! sweep, CloudTrail `CreateRepository` (service and API call shapes) and pull-through cache
//! sync events ([`event`]).

#![warn(missing_docs)]

pub mod desired;
pub mod event;
pub mod iam;
pub mod job;
pub mod mutability;
pub mod options;
pub mod ownership;
pub mod plan;
pub mod policy;
pub mod registry;
pub mod report;
pub mod templates;

use serde_json::Value;

pub use crate::event::Trigger;
pub use crate::job::{Deps, sweep};
pub use crate::options::Options;
pub use crate::report::FixReport;

/// One invocation: an event (or a schedule) to a report. A bad event gives a report with the
/// error (the Lambda then fails the invocation, see `ptc_core::RunFailed`). Every invocation
/// publishes its `RunErrors` point.
pub async fn handle(deps: &Deps<'_>, options: &Options, event: &Value) -> FixReport {
    match event::parse(event) {
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
            job::without_work(deps, options, FixReport::empty(&source, options)).await
        }
        Err(err) => {
            tracing::error!(error = %err, "event rejected");
            let mut report = FixReport::empty("unsupported event", options);
            report.errors.push(err);
            job::without_work(deps, options, report).await
        }
    }
}
