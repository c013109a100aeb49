//! ptc-core: the domain, the ports and the adapters of the ECR pull-through cache control
//! plane. Dependencies point one way: domain <- ports <- adapters <- wiring.
//!
//! - Domain (no SDK, no settings): [`reference`](mod@reference) (image references,
//!   digests), [`rules`] (pull-through cache rules, routing both ways), [`platform`],
//!   [`secret`], [`deadline`], [`access`] (who may pull through the cache: IAM resource-based
//!   policies evaluated for a consumer), [`adoption`] (images classified for the cache, each rule as a mirror).
//! - Ports, traits with domain types: [`ecr`], [`secrets`], [`objects`], [`metrics`], [`queue`] (the work queue and the runs' store); their
//!   error, [`error::AwsError`].
//! - [`oci`]: the OCI distribution client (media types, manifests, the client).
//! - [`aws`]: the aws-sdk adapters of the ports, one `SdkConfig`, retries and timeouts.
//! - [`config`]: typed settings, read once, one loader per section.
//! - [`watchlist`], [`events`], [`logging`], [`lambda`]: inputs, logs and what every
//!   Lambda function's `main` shares.
//! - `fakes` (feature `fakes`, and this crate's tests): in-memory ports for tests and
//!   examples; never in a release binary.
//!
//! Each job's report type lives with the job (its fields are the job's own); they share the
//! shape: entries with an outcome and a reason, a summary, run-level errors.

#![warn(missing_docs)]

pub mod access;
pub mod adoption;
pub mod aws;
pub mod config;
pub mod deadline;
pub mod ecr;
pub mod error;
pub mod events;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod objects;
pub mod oci;
pub mod platform;
pub mod pull_time;
pub mod queue;
pub mod reference;
pub mod rules;
pub mod secret;
pub mod secrets;
pub mod watchlist;

#[cfg(any(test, feature = "fakes"))]
pub mod fakes;

pub use config::Settings;
pub use error::{AwsError, AwsErrorKind};
pub use lambda::{RunFailed, lambda_answer, lambda_start};
pub use reference::{Digest, ImageReference};
pub use rules::{PtcRule, RuleSet};
