//! `ptc iam pull-time-exclusion` and the pull-time check of `ptc validate`, as a user runs
//! them: offline with `--principal-arn`, and against the local stack (moto's IAM and STS, the
//! stack's ECR pull-time update exclusions).

use std::process::{Command, Output};

use ptc_tests::{Stack, unique};

mod common;
use common::ptc;
use serde_json::Value;

/// `ptc` with nothing of the caller's environment: no credentials, no profile, no instance
/// metadata, an AWS endpoint nobody listens on.
fn ptc_offline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ptc"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PTC_AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .output()
        .expect("run ptc")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const ARN: &str = "arn:aws:iam::123456789012:role/ci/ptc-prewarm";

#[test]
fn with_principal_arn_it_prints_the_command_and_the_resource_offline_and_quietly() {
    let out = ptc_offline(&["iam", "pull-time-exclusion", "--principal-arn", ARN]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "no SDK noise");
    for needle in [
        &format!("aws ecr register-pull-time-update-exclusion --principal-arn {ARN}"),
        "Type: AWS::ECR::PullTimeUpdateExclusion",
        &format!("PrincipalArn: \"{ARN}\""),
        "registered: unknown (no AWS credentials",
    ] {
        assert!(stdout.contains(needle), "{needle}:\n{stdout}");
    }

    let out = ptc_offline(&[
        "iam",
        "pull-time-exclusion",
        "--principal-arn",
        ARN,
        "--no-check",
        "--region",
        "eu-west-1",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let advice: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(advice["principal_arn"], ARN);
    assert_eq!(advice["path_known"], true);
    assert_eq!(advice["registered"], Value::Null);
    assert_eq!(
        advice["aws_cli"],
        format!(
            "aws ecr register-pull-time-update-exclusion --region eu-west-1 --principal-arn {ARN}"
        )
    );
}

#[test]
fn a_principal_ecr_cannot_exclude_is_refused_naming_the_flag() {
    for bad in [
        "arn:aws:sts::123456789012:assumed-role/ops/alice",
        "arn:aws:iam::123456789012:root",
        "ops",
    ] {
        let out = ptc_offline(&["iam", "pull-time-exclusion", "--principal-arn", bad]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("--principal-arn") && stderr.contains(bad),
            "{bad}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

/// A role of the stack's account with a path, as IAM names it.
async fn create_role(stack: &Stack, path: &str, name: &str) -> String {
    let config = stack.sdk_config().await;
    common::create_iam_role(&config, &stack.info.account, path, name).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_callers_role_is_found_by_name_and_never_said_registered_without_its_path() {
    let stack = Stack::shared();
    let name = format!("ptc-operator-{}", unique());
    let role_arn = create_role(stack, "/ops/", &name).await;
    assert!(role_arn.contains(":role/ops/"), "{role_arn}");
    let ask = {
        let role_arn = role_arn.clone();
        move || {
            ptc(
                stack,
                &[
                    "--role-arn",
                    &role_arn,
                    "iam",
                    "pull-time-exclusion",
                    "--output",
                    "json",
                ],
                &[],
            )
        }
    };
    let out = tokio::task::spawn_blocking(ask.clone()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let advice: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // The session ARN names the role, not its path.
    let bare = format!("arn:aws:iam::{}:role/{name}", stack.info.account);
    assert_eq!(advice["principal_arn"], bare.as_str(), "{advice:#}");
    assert_eq!(advice["path_known"], false);
    assert!(
        advice["note"]
            .as_str()
            .unwrap()
            .contains(&format!("aws iam get-role --role-name {name}")),
        "{advice:#}"
    );
    assert_eq!(advice["registered"], false, "{advice:#}");

    aws_sdk_ecr::Client::new(&stack.sdk_config().await)
        .register_pull_time_update_exclusion()
        .principal_arn(&role_arn)
        .send()
        .await
        .expect("RegisterPullTimeUpdateExclusion");
    let out = tokio::task::spawn_blocking(ask).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let advice: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // Review of issue 18: an exclusion of the role's name with another path names no role
    // (ECR kept recording that role's pulls); a session does not say the path, so a name
    // match is "unknown", with the ARN to compare and how.
    assert_eq!(advice["registered"], Value::Null, "{advice:#}");
    let why = advice["registered_unknown"].as_str().unwrap();
    assert!(
        why.contains(&role_arn) && why.contains(&format!("aws iam get-role --role-name {name}")),
        "{advice:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_fails_while_a_role_of_the_deployment_is_not_excluded() {
    let stack = Stack::shared();
    let excluded = create_role(stack, "/", &format!("ptc-prewarm-{}", unique())).await;
    let missing = create_role(stack, "/svc/", &format!("ptc-health-{}", unique())).await;
    aws_sdk_ecr::Client::new(&stack.sdk_config().await)
        .register_pull_time_update_exclusion()
        .principal_arn(&excluded)
        .send()
        .await
        .expect("RegisterPullTimeUpdateExclusion");
    let roles = format!("{excluded},{missing}");
    let out = tokio::task::spawn_blocking(move || {
        ptc(
            stack,
            &["validate", "--output", "json", "--no-metrics"],
            &[("PTC_PULL_TIME_EXCLUDED_ROLES", roles.as_str())],
        )
    })
    .await
    .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    let check = &report["pull_time_exclusions"];
    assert_eq!(check["listed"], true, "{check:#}");
    assert_eq!(check["missing"], 1, "{check:#}");
    let findings = check["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["code"] == "pull-time-exclusion-missing"
                && f["message"].as_str().unwrap().contains(&missing)),
        "{check:#}"
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}
