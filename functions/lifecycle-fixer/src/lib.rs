//! lifecycle-fixer: bring every repository the pull-through cache creates to the desired
//! settings (lifecycle policy, repository policy, tags, scan on push).
//!
//! This crate holds the domain so far: lifecycle policies validated with ECR's rules and
//! compared by meaning ([`policy`]), IAM repository policies compared by meaning
//! ([`iam`]), the desired settings ([`desired`]) and the change plan per repository and
//! mode ([`plan`]). The AWS wiring, the events and the Lambda come next.

pub mod desired;
pub mod iam;
pub mod plan;
pub mod policy;
