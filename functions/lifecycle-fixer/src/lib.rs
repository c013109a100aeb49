//! lifecycle-fixer: bring every repository the pull-through cache creates to the desired
//! settings (lifecycle policy, repository policy, tags, scan on push).
//!
//! This crate holds the domain so far: lifecycle policies validated with ECR's rules and
//! compared by meaning ([`policy`]), IAM repository policies compared by meaning
//! ([`iam`]), the desired settings ([`desired`]) and the change plan per repository and
//! mode ([`plan`]), and the sweep that reads, plans and fixes repositories ([`sweep`]).
//! The events, the templates check, the Lambda and `ptc fix` come next.

pub mod desired;
pub mod iam;
pub mod plan;
pub mod policy;
pub mod sweep;
