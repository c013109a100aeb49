//! What the CLI's test files share (each test binary uses some of it).
#![allow(dead_code)]

use std::process::{Command, Output};

use ptc_tests::Stack;

/// The built `ptc` against the stack, with `env` added and nothing of the caller's settings
/// (config file, rules, log filter, fix mode, watch list, profile, instance metadata).
pub fn ptc(stack: &Stack, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ptc"))
        .args(args)
        .env_remove("PTC_CONFIG_FILE")
        .env_remove("PTC_RULES")
        .env_remove("PTC_LOG")
        .env_remove("PTC_FIX_MODE")
        .env_remove("PTC_WATCH_LIST")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(stack.env())
        .envs(env.iter().copied())
        .output()
        .expect("run ptc")
}

/// The built `ptc` with no settings (config file, rules, log filter, profile), no instance
/// metadata and stdin closed: what the commands that work offline from `--rule` and
/// `--registry` (or `--account` and `--region`) are run with.
pub fn ptc_offline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ptc"))
        .args(args)
        .env_remove("PTC_CONFIG_FILE")
        .env_remove("PTC_RULES")
        .env_remove("PTC_LOG")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run ptc")
}

/// Create IAM role `path` + `name` with `config`'s credentials (moto's IAM of their account),
/// trusting `trusted_account` to assume it; returns its ARN as IAM gives it (with the path).
pub async fn create_iam_role(
    config: &aws_config::SdkConfig,
    trusted_account: &str,
    path: &str,
    name: &str,
) -> String {
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{trusted_account}:root")},
            "Action": "sts:AssumeRole",
        }],
    });
    let role = aws_sdk_iam::Client::new(config)
        .create_role()
        .path(path)
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("CreateRole");
    role.role().expect("role").arn().to_owned()
}
