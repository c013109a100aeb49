//! health-metrics: the pull-through cache's health in CloudWatch.
//!
//! A scheduled run ([`inventory`]) reads every repository under a rule prefix and its images
//! and reports, per prefix, repositories, images, stored bytes and their monthly cost, the
//! oldest image, images not pulled for N days, the watch-list coverage, and per upstream the
//! watch-list images that would fail to pull if that upstream went down now
//! ([`readiness`]). "ECR Pull Through Cache Action" events become sync counts ([`event`]).
//! The job is [`job`], its settings [`options`], its report and metrics [`report`]; in
//! Lambda it stops before the invocation's deadline and publishes what it read whole
//! ([`deadline`]).
//! `main.rs` wires it to Lambda, `ptc health` to the command line.

#![warn(missing_docs)]

pub mod deadline;
pub mod event;
pub mod inventory;
pub mod job;
pub mod options;
pub mod readiness;
pub mod report;

use serde_json::Value;
use time::OffsetDateTime;

pub use crate::deadline::Deadline;
pub use crate::event::Trigger;
pub use crate::job::{Deps, run, run_until};
pub use crate::options::Options;
pub use crate::report::{HealthReport, metric_data};

/// One invocation without a deadline: [`handle_until`] with none.
pub async fn handle(
    deps: &Deps<'_>,
    options: &Options,
    event: &Value,
    now: OffsetDateTime,
) -> HealthReport {
    handle_until(deps, options, event, now, None).await
}

/// One invocation: a schedule (or `{}`) runs the inventory, stopping before `deadline` (the
/// Lambda's; see [`run_until`]); a pull-through cache sync event becomes its counts; anything
/// else is an error in the report, never a crash.
pub async fn handle_until(
    deps: &Deps<'_>,
    options: &Options,
    event: &Value,
    now: OffsetDateTime,
    deadline: Option<Deadline>,
) -> HealthReport {
    match event::trigger(event) {
        Ok(Trigger::Inventory { source }) => run_until(deps, options, source, now, deadline).await,
        Ok(Trigger::Sync(sync)) => job::sync_event(deps, options, sync, now).await,
        Err(err) => job::rejected(deps, options, now, err).await,
    }
}
