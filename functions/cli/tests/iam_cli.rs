//! `ptc iam consumer-policy` and the global `--profile`, `--region`, `--role-arn`, as a user
//! runs them against the local stack: the real binary, moto's IAM and STS.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use ptc_tests::{Stack, unique};

mod common;
use serde_json::Value;

/// The consumer account of these tests (moto keeps a backend per account).
const OTHER_ACCOUNT: &str = "210987654321";

/// What a consumer role may do on the cache's repositories, and the token on `*`: the ECR
/// user guide's "IAM permissions required to sync an upstream registry" and the pull actions.
const REPOSITORY_ACTIONS: [&str; 5] = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:BatchImportUpstreamImage",
    "ecr:CreateRepository",
    "ecr:GetDownloadUrlForLayer",
];

fn ptc(stack: &Stack, args: &[&str], env: &[(&str, &str)], remove: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ptc"));
    command
        .args(args)
        .env_remove("PTC_CONFIG_FILE")
        .env_remove("PTC_RULES")
        .env_remove("PTC_LOG")
        .env_remove("AWS_PROFILE")
        // Never the instance metadata service, should a test leave no other credentials.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(stack.env())
        .envs(env.iter().copied());
    for name in remove {
        command.env_remove(name);
    }
    command.output().expect("run ptc")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Each action of the document with the resources it is allowed on; panics on anything but
/// `Allow` statements of `Sid`, `Effect`, `Action` and `Resource` (no `NotAction`, no
/// `Condition`: nothing that would widen or narrow the grant unseen).
fn grants(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    assert_eq!(doc["Version"], "2012-10-17", "{doc}");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for statement in doc["Statement"].as_array().expect("statements") {
        let keys: BTreeSet<&str> = statement
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["Action", "Effect", "Resource", "Sid"]),
            "{statement}"
        );
        assert_eq!(statement["Effect"], "Allow", "{statement}");
        let strings = |v: &Value| -> Vec<String> {
            match v {
                Value::String(s) => vec![s.clone()],
                other => other
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect(),
            }
        };
        for action in strings(&statement["Action"]) {
            out.entry(action)
                .or_default()
                .extend(strings(&statement["Resource"]));
        }
    }
    out
}

/// The grants the documented rules ask for: the token on `*`, the five actions on exactly
/// `repositories`.
fn expected_grants(repositories: &[String]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::from([(
        "ecr:GetAuthorizationToken".to_owned(),
        BTreeSet::from(["*".to_owned()]),
    )]);
    for action in REPOSITORY_ACTIONS {
        out.insert(action.to_owned(), repositories.iter().cloned().collect());
    }
    out
}

/// `(sid, actions, resources)` of each statement of the Terraform data source, read by an
/// HCL parser and evaluated.
fn terraform_statements(text: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    let body: hcl::Body = hcl::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let data = body.blocks().next().expect("one block");
    assert_eq!(data.identifier(), "data");
    let labels: Vec<&str> = data.labels().iter().map(|l| l.as_str()).collect();
    assert_eq!(labels, ["aws_iam_policy_document", "ptc_consumer"]);
    data.body()
        .blocks()
        .map(|statement| {
            let value = |name: &str| {
                let expr = statement
                    .body()
                    .attributes()
                    .find(|a| a.key() == name)
                    .unwrap_or_else(|| panic!("no {name}: {text}"))
                    .expr()
                    .clone();
                hcl::eval::Evaluate::evaluate(&expr, &hcl::eval::Context::new()).unwrap()
            };
            let strings = |v: hcl::Value| -> Vec<String> {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect()
            };
            assert_eq!(value("effect").as_str(), Some("Allow"));
            (
                value("sid").as_str().unwrap().to_owned(),
                strings(value("actions")),
                strings(value("resources")),
            )
        })
        .collect()
}

/// The same statements as the JSON document, in Terraform's shape.
fn json_statements(doc: &Value) -> Vec<(String, Vec<String>, Vec<String>)> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["Sid"].as_str().unwrap().to_owned(),
                strings(&s["Action"]),
                strings(&s["Resource"]),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_consumer_policy_is_accepted_by_iam_and_grants_exactly_the_documented_actions() {
    let stack = Stack::shared();
    let (quay, k8s) = (format!("quay-{}", unique()), format!("k8s-{}", unique()));
    stack.create_rule(&quay, "quay.io", None).await;
    stack.create_rule(&k8s, "registry.k8s.io", None).await;

    let (json_out, terraform_out, one_prefix, other_region) = {
        let k8s = k8s.clone();
        tokio::task::spawn_blocking(move || {
            (
                ptc(stack, &["iam", "consumer-policy"], &[], &[]),
                ptc(
                    stack,
                    &["iam", "consumer-policy", "--format", "terraform"],
                    &[],
                    &[],
                ),
                ptc(
                    stack,
                    &["iam", "consumer-policy", "--prefix", &k8s],
                    &[],
                    &[],
                ),
                ptc(
                    stack,
                    &["--region", "ap-southeast-2", "iam", "consumer-policy"],
                    &[("PTC_RULES", "quay=quay.io")],
                    &[],
                ),
            )
        })
        .await
        .unwrap()
    };

    // The registry's rules (every rule of the stack's registry holds these two and maybe
    // others of the tests running beside this one), the caller's account and the Region.
    assert_eq!(
        json_out.status.code(),
        Some(0),
        "{}",
        text(&json_out.stderr)
    );
    let doc: Value = serde_json::from_slice(&json_out.stdout).expect("a JSON document");
    let account = &stack.info.account;
    let arn = |prefix: &str| format!("arn:aws:ecr:us-east-1:{account}:repository/{prefix}/*");
    let granted = grants(&doc);
    let repositories = &granted["ecr:CreateRepository"];
    assert!(
        repositories.contains(&arn(&quay)) && repositories.contains(&arn(&k8s)),
        "{doc}"
    );
    let repositories: Vec<String> = repositories.iter().cloned().collect();
    assert_eq!(granted, expected_grants(&repositories), "{doc}");

    // IAM takes it as a managed policy (moto validates the document as IAM does: this
    // request without a Resource is refused, so the acceptance means something).
    let iam = aws_sdk_iam::Client::new(&stack.sdk_config().await);
    let name = format!("ptc-consumer-{}", unique());
    let created = iam
        .create_policy()
        .policy_name(&name)
        .policy_document(text(&json_out.stdout))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreatePolicy refused the document: {e:?}"));
    assert!(created.policy().and_then(|p| p.arn()).is_some());
    let mut broken = doc.clone();
    broken["Statement"][1]
        .as_object_mut()
        .unwrap()
        .remove("Resource");
    let refused = iam
        .create_policy()
        .policy_name(format!("{name}-broken"))
        .policy_document(broken.to_string())
        .send()
        .await;
    assert!(
        refused.is_err(),
        "moto accepted a statement without Resource"
    );

    // Terraform: the same statements, read back by an HCL parser.
    assert_eq!(terraform_out.status.code(), Some(0));
    assert_eq!(
        terraform_statements(&text(&terraform_out.stdout)),
        json_statements(&doc)
    );

    // --prefix: that rule's repositories only.
    let doc: Value = serde_json::from_slice(&one_prefix.stdout).expect("a JSON document");
    assert_eq!(grants(&doc), expected_grants(&[arn(&k8s)]), "{doc}");

    // --region over PTC_REGION; the rules of PTC_RULES without a call to ECR.
    let doc: Value = serde_json::from_slice(&other_region.stdout).expect("a JSON document");
    assert_eq!(
        grants(&doc),
        expected_grants(&[format!(
            "arn:aws:ecr:ap-southeast-2:{account}:repository/quay/*"
        )]),
        "{doc}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_policy_refuses_what_it_cannot_grant() {
    let stack = Stack::shared();
    let rules = [("PTC_RULES", "quay=quay.io,k8s=registry.k8s.io")];
    let (no_rule, bad_account, bad_format, offline) = tokio::task::spawn_blocking(move || {
        (
            ptc(
                stack,
                &["iam", "consumer-policy", "--prefix", "ghcr"],
                &rules,
                &[],
            ),
            ptc(
                stack,
                &["iam", "consumer-policy", "--account", "1234"],
                &rules,
                &[],
            ),
            ptc(
                stack,
                &["iam", "consumer-policy", "--format", "yaml"],
                &rules,
                &[],
            ),
            // --account, PTC_RULES and PTC_REGION: no AWS call at all, so no credentials needed.
            ptc(
                stack,
                &["iam", "consumer-policy", "--account", "111122223333"],
                &[
                    rules[0],
                    ("PTC_REGION", "cn-north-1"),
                    ("PTC_AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
                ],
                &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
            ),
        )
    })
    .await
    .unwrap();
    assert_eq!(no_rule.status.code(), Some(2));
    assert_eq!(
        text(&no_rule.stderr).trim(),
        "ptc: --prefix ghcr: no pull-through cache rule has this prefix (rules: k8s, quay)"
    );
    assert!(no_rule.stdout.is_empty());
    assert_eq!(bad_account.status.code(), Some(2));
    assert!(
        text(&bad_account.stderr).contains("invalid value '1234' for '--account <ID>'"),
        "{}",
        text(&bad_account.stderr)
    );
    assert_eq!(bad_format.status.code(), Some(2));
    assert!(
        text(&bad_format.stderr).contains("[possible values: json, terraform]"),
        "{}",
        text(&bad_format.stderr)
    );
    // PTC_RULES is read from the environment as given; the cn- Region is the aws-cn partition.
    assert_eq!(offline.status.code(), Some(0), "{}", text(&offline.stderr));
    let doc: Value = serde_json::from_slice(&offline.stdout).unwrap();
    assert_eq!(
        grants(&doc),
        expected_grants(&[
            "arn:aws-cn:ecr:cn-north-1:111122223333:repository/k8s/*".to_owned(),
            "arn:aws-cn:ecr:cn-north-1:111122223333:repository/quay/*".to_owned(),
        ])
    );
}

/// A role in [`OTHER_ACCOUNT`], created there as that account's administrator would (through
/// a role moto lets anyone assume), trusting the stack's account.
async fn create_role_in_other_account(stack: &Stack, name: &str) -> String {
    let sts = aws_sdk_sts::Client::new(&stack.sdk_config().await);
    let admin = sts
        .assume_role()
        .role_arn(format!(
            "arn:aws:iam::{OTHER_ACCOUNT}:role/OrganizationAccountAccessRole"
        ))
        .role_session_name("setup")
        .send()
        .await
        .expect("AssumeRole into the other account");
    let creds = admin.credentials().expect("credentials");
    let config = stack
        .sdk_config()
        .await
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_owned()),
            None,
            "setup",
        )))
        .build();
    common::create_iam_role(&config, &stack.info.account, "/", name).await
}

#[tokio::test(flavor = "multi_thread")]
async fn role_arn_makes_the_calls_as_the_role_and_logs_no_secret() {
    let stack = Stack::shared();
    let role_arn = create_role_in_other_account(stack, &format!("ptc-operator-{}", unique())).await;
    assert!(role_arn.contains(OTHER_ACCOUNT), "{role_arn}");
    const BASE_SECRET: &str = "base-secret-that-must-never-be-logged";
    let out = {
        let role_arn = role_arn.clone();
        tokio::task::spawn_blocking(move || {
            ptc(
                stack,
                &["-vv", "--role-arn", &role_arn, "iam", "consumer-policy"],
                &[
                    ("PTC_RULES", "quay=quay.io"),
                    ("AWS_SECRET_ACCESS_KEY", BASE_SECRET),
                ],
                &[],
            )
        })
        .await
        .unwrap()
    };
    let log = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    // GetCallerIdentity was answered for the assumed role: the cache account is the role's.
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        grants(&doc),
        expected_grants(&[format!(
            "arn:aws:ecr:us-east-1:{OTHER_ACCOUNT}:repository/quay/*"
        )])
    );
    let role_name = role_arn.rsplit('/').next().unwrap();
    assert!(log.contains("assumed the role"), "{log}");
    assert!(
        log.contains(&format!("assumed-role/{role_name}/ptc-cli")),
        "the session name: {log}"
    );
    assert!(!log.contains(BASE_SECRET), "{log}");
    assert!(!log.contains("SecretAccessKey"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_cannot_be_assumed_stops_the_run_naming_the_flag() {
    let stack = Stack::shared();
    let home = tempfile::tempdir().unwrap();
    let empty = |name: &str| {
        let path = home.path().join(name);
        std::fs::write(&path, "").unwrap();
        path.display().to_string()
    };
    let (config, credentials) = (empty("config"), empty("credentials"));
    let home_dir = home.path().display().to_string();
    let role = format!("arn:aws:iam::{OTHER_ACCOUNT}:role/ptc-operator");
    let (no_base_credentials, not_an_arn) = tokio::task::spawn_blocking(move || {
        // No credentials to ask STS with: no variables, no files, no instance metadata.
        let no_credentials = [
            ("AWS_CONFIG_FILE", config.as_str()),
            ("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()),
            ("HOME", home_dir.as_str()),
            ("PTC_RULES", "quay=quay.io"),
        ];
        let unset = [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ];
        (
            ptc(
                stack,
                &["--role-arn", &role, "validate", "--no-metrics"],
                &no_credentials,
                &unset,
            ),
            ptc(
                stack,
                &["iam", "consumer-policy", "--role-arn", "ptc-operator"],
                &[("PTC_RULES", "quay=quay.io")],
                &[],
            ),
        )
    })
    .await
    .unwrap();
    let err = text(&no_base_credentials.stderr);
    assert_eq!(no_base_credentials.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with(&format!(
            "ptc: --role-arn arn:aws:iam::{OTHER_ACCOUNT}:role/ptc-operator: cannot assume the role: "
        )),
        "{err}"
    );
    assert!(no_base_credentials.stdout.is_empty());

    let err = text(&not_an_arn.stderr);
    assert_eq!(not_an_arn.status.code(), Some(2), "{err}");
    assert!(
        err.contains("invalid value 'ptc-operator' for '--role-arn <ARN>'")
            && err.contains("arn:<partition>:iam::<12-digit account>:role/<name>"),
        "{err}"
    );
}

/// Credentials of a session in `account`, written as the profile `name` of a credentials
/// file, with `region` in the config file.
async fn write_profile(stack: &Stack, dir: &Path, name: &str, account: &str, region: &str) {
    let sts = aws_sdk_sts::Client::new(&stack.sdk_config().await);
    let session = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/developer"))
        .role_session_name("profile")
        .send()
        .await
        .expect("AssumeRole");
    let creds = session.credentials().unwrap();
    std::fs::write(
        dir.join("credentials"),
        format!(
            "[{name}]\naws_access_key_id = {}\naws_secret_access_key = {}\naws_session_token = {}\n",
            creds.access_key_id(),
            creds.secret_access_key(),
            creds.session_token()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("config"),
        format!("[profile {name}]\nregion = {region}\n"),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn profile_gives_the_credentials_over_the_environment_and_the_region() {
    let stack = Stack::shared();
    let dir = tempfile::tempdir().unwrap();
    write_profile(stack, dir.path(), "consumer", OTHER_ACCOUNT, "eu-central-1").await;
    let config = dir.path().join("config").display().to_string();
    let credentials = dir.path().join("credentials").display().to_string();
    let (with_profile, unknown_profile) = tokio::task::spawn_blocking(move || {
        let files = [
            ("AWS_CONFIG_FILE", config.as_str()),
            ("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()),
            ("PTC_RULES", "quay=quay.io"),
        ];
        // AWS_ACCESS_KEY_ID stays set (the stack's): --profile wins over it, as in the AWS
        // CLI. No PTC_REGION nor AWS_REGION: the profile's region is taken.
        (
            ptc(
                stack,
                &["--profile", "consumer", "iam", "consumer-policy"],
                &files,
                &["PTC_REGION", "AWS_REGION"],
            ),
            ptc(
                stack,
                &["--profile", "nobody", "iam", "consumer-policy"],
                &files,
                &[],
            ),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        with_profile.status.code(),
        Some(0),
        "{}",
        text(&with_profile.stderr)
    );
    let doc: Value = serde_json::from_slice(&with_profile.stdout).unwrap();
    assert_eq!(
        grants(&doc),
        expected_grants(&[format!(
            "arn:aws:ecr:eu-central-1:{OTHER_ACCOUNT}:repository/quay/*"
        )])
    );

    let err = text(&unknown_profile.stderr);
    assert_eq!(unknown_profile.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("ptc: --profile nobody: no credentials: "),
        "{err}"
    );
    assert!(unknown_profile.stdout.is_empty());
}
