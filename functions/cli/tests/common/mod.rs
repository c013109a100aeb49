//! What the CLI's test files share.

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
