//! `ptc probe --consumer-role-arn` as an operator runs it against the local stack (issue 17):
//! consumer account B's role, assumed through the stack's STS, pulls through the cache
//! account's registry endpoint, which holds another account's token to the documented
//! cross-account rules. Before `ptc fix` grants the registry statements the first pull is
//! refused naming `ecr:CreateRepository`; after a fill sweep the three pulls pass; once the
//! product's registry statement is removed, a first pull is refused again.

use std::process::Command;

use ptc_tests::{CONSUMER_IN_ORG, Stack, unique};
use serde_json::{Value, json};

mod common;
use common::ptc;

/// `ptc probe --output json` in a blocking task: the exit code and the report.
async fn probe(stack: &'static Stack, role: &str, images: &[&str]) -> (Option<i32>, Value) {
    let mut args: Vec<String> = vec![
        "probe".into(),
        "--output".into(),
        "json".into(),
        "--consumer-role-arn".into(),
        role.into(),
    ];
    for image in images {
        args.push("--image".into());
        args.push((*image).into());
    }
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ptc(stack, &args, &[])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {stdout}, stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

fn probe_of<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} probe: {report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_is_refused_before_ptc_fix_passes_after_and_is_refused_again_without_the_statement() {
    let stack: &'static Stack = Box::leak(Box::new(Stack::start()));
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    stack.create_rule("quay", "quay.io", None).await;
    let role = stack
        .create_role(
            CONSUMER_IN_ORG,
            &format!("cluster-{}", unique()),
            Some(&Stack::consumer_pull_policy()),
        )
        .await;
    // A tag upstream that the cache has never seen.
    stack
        .control(
            "upstreams/registry.k8s.io/tag",
            json!({"repository": "pause", "from": "3.9", "to": "3.9-probe"}),
        )
        .await;
    let images = [
        "registry.k8s.io/pause:3.9",
        "registry.k8s.io/pause:3.9-probe",
    ];

    // Before `ptc fix`: the first pull needs ecr:CreateRepository from the registry policy.
    let (code, report) = probe(stack, &role, &images).await;
    assert_eq!(code, Some(1), "{report}");
    let new_image = probe_of(&report, "new-image");
    assert_eq!(new_image["outcome"], "refused", "{report}");
    assert_eq!(new_image["missing_permission"], "ecr:CreateRepository");
    assert!(
        new_image["grant_side"]
            .as_str()
            .unwrap()
            .contains("registry permissions policy"),
        "{report}"
    );
    assert_eq!(
        new_image["chosen_from"],
        "--image registry.k8s.io/pause:3.9"
    );
    assert_eq!(report["consumer_account"], CONSUMER_IN_ORG);
    // The refusal changed nothing: no repository was created in the cache account.
    let ecr = aws_sdk_ecr::Client::new(&stack.sdk_config().await);
    let repos = ecr.describe_repositories().send().await.unwrap();
    assert!(repos.repositories().is_empty(), "{repos:?}");

    // The table names the permission and the side too.
    let role_arn = role.clone();
    let table = tokio::task::spawn_blocking(move || {
        ptc(
            stack,
            &[
                "probe",
                "--consumer-role-arn",
                &role_arn,
                "--image",
                "registry.k8s.io/pause:3.9",
            ],
            &[],
        )
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert_eq!(table.status.code(), Some(1), "{text}");
    assert!(
        text.contains("REFUSED: ecr:CreateRepository missing")
            && text.contains("the cache account's registry permissions policy"),
        "{text}"
    );

    // A fill sweep with the consumer account as a pull principal.
    let fix = tokio::task::spawn_blocking(move || {
        ptc(
            stack,
            &["fix"],
            &[
                ("PTC_PULL_PRINCIPALS", CONSUMER_IN_ORG),
                ("PTC_METRICS_NAMESPACE", "PtcCliProbe"),
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(
        fix.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&fix.stdout),
        String::from_utf8_lossy(&fix.stderr)
    );

    let (code, report) = probe(stack, &role, &images).await;
    assert_eq!(code, Some(0), "{report}");
    for kind in ["new-image", "new-tag", "cached"] {
        assert_eq!(probe_of(&report, kind)["outcome"], "pulled", "{report}");
    }
    assert!(
        probe_of(&report, "new-tag")["image"]
            .as_str()
            .unwrap()
            .ends_with("/k8s/pause:3.9-probe"),
        "{report}"
    );
    assert!(
        probe_of(&report, "cached")["chosen_from"]
            .as_str()
            .unwrap()
            .starts_with("the new image"),
        "{report}"
    );

    // Without --image: the watch list. No uncached tag of a cached repository in it: that
    // kind is not probed, which is exit code 2 (pass --image), the report still printed.
    let role_arn = role.clone();
    let out = tokio::task::spawn_blocking(move || {
        ptc(
            stack,
            &[
                "probe",
                "--output",
                "json",
                "--consumer-role-arn",
                &role_arn,
            ],
            &[(
                "PTC_WATCH_LIST",
                "registry.k8s.io/pause:3.9 registry.k8s.io/coredns/coredns:v1.11.1",
            )],
        )
    })
    .await
    .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "{report}");
    assert_eq!(
        probe_of(&report, "new-image")["chosen_from"],
        "watch list registry.k8s.io/coredns/coredns:v1.11.1"
    );
    assert_eq!(probe_of(&report, "new-image")["outcome"], "pulled");
    assert_eq!(
        probe_of(&report, "cached")["chosen_from"],
        "watch list registry.k8s.io/pause:3.9"
    );
    assert_eq!(probe_of(&report, "new-tag")["outcome"], "not-probed");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("new tag"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The product's registry statement removed (someone else's kept): refused again.
    let policy: Value = serde_json::from_str(
        ecr.get_registry_policy()
            .send()
            .await
            .unwrap()
            .policy_text()
            .unwrap(),
    )
    .unwrap();
    let mut kept: Vec<Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["Sid"].as_str().unwrap_or_default().starts_with("Ptc"))
        .cloned()
        .collect();
    assert!(
        kept.len() < policy["Statement"].as_array().unwrap().len(),
        "{policy}"
    );
    kept.push(json!({"Sid": "ReplicationFromProd", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
        "Action": ["ecr:ReplicateImage"],
        "Resource": format!("arn:aws:ecr:{}:{}:repository/*", stack.info.region, stack.info.account)}));
    ecr.put_registry_policy()
        .policy_text(json!({"Version": "2012-10-17", "Statement": kept}).to_string())
        .send()
        .await
        .unwrap();
    let (code, report) = probe(
        stack,
        &role,
        &["quay.io/coreos/etcd:v3.5.13", "registry.k8s.io/pause:3.9"],
    )
    .await;
    assert_eq!(code, Some(1), "{report}");
    let new_image = probe_of(&report, "new-image");
    assert_eq!(new_image["outcome"], "refused", "{report}");
    assert_eq!(new_image["missing_permission"], "ecr:CreateRepository");
    // What is cached is still granted by its repository policy.
    assert_eq!(probe_of(&report, "cached")["outcome"], "pulled", "{report}");
    assert_eq!(probe_of(&report, "new-tag")["outcome"], "not-probed");
}

#[test]
fn usage_errors_exit_2() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ptc"))
            .args(args)
            .env_remove("PTC_CONFIG_FILE")
            .env_remove("AWS_PROFILE")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("PTC_AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("PTC_RULES", "k8s=registry.k8s.io")
            .output()
            .expect("run ptc")
    };
    let missing = run(&["probe"]);
    assert_eq!(missing.status.code(), Some(2));
    let bad = run(&["probe", "--consumer-role-arn", "cluster"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected arn:"));
    // A reference no rule routes is refused before any AWS call.
    let image = run(&[
        "probe",
        "--consumer-role-arn",
        "arn:aws:iam::222233334444:role/cluster",
        "--image",
        "gcr.io/distroless/static:nonroot",
    ]);
    let stderr = String::from_utf8_lossy(&image.stderr);
    assert_eq!(image.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--image gcr.io/distroless/static:nonroot"),
        "{stderr}"
    );
}
