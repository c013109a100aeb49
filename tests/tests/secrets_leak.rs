//! No secret leaves the jobs: every function runs through a real Lambda Runtime API with
//! the most verbose logging (`PTC_LOG=trace`), and `ptc` runs every command with `-vv` and
//! `PTC_LOG=trace`, against a stack whose rules use
//! credential secrets; no log line, report or metric contains an upstream's access token,
//! the ECR registry password, or a Basic-auth header value made of either.

use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use ptc_tests::lambda::Lambda;
use ptc_tests::{Stack, repo_root, unique};
use serde_json::json;

const DOCKER: &str = "registry-1.docker.io";

fn binary(name: &str) -> PathBuf {
    let path = repo_root().join("target/debug").join(name);
    assert!(
        path.exists(),
        "{} not built: the test command builds every binary (cargo test --workspace --all-targets)",
        path.display()
    );
    path
}

fn basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn no_log_line_report_or_metric_carries_a_secret() {
    let stack = Stack::start();
    let docker = stack
        .upstream_secret("ecr-pullthroughcache/docker-hub", DOCKER)
        .await;
    let ghcr = stack
        .upstream_secret("ecr-pullthroughcache/ghcr", "ghcr.io")
        .await;
    stack.create_rule("docker-hub", DOCKER, Some(&docker)).await;
    stack.create_rule("ghcr", "ghcr.io", Some(&ghcr)).await;
    stack.create_rule("quay", "quay.io", None).await;
    let namespace = format!("PtcLeak{}", unique());
    let mut env = stack.env();
    env.extend([
        ("PTC_LOG".to_owned(), "trace".to_owned()),
        ("PTC_METRICS_NAMESPACE".to_owned(), namespace.clone()),
        (
            "PTC_WATCH_LIST".to_owned(),
            "nginx:1.25 ghcr.io/fluxcd/source-controller:v1.2.4 quay.io/coreos/etcd:v3.5.13"
                .to_owned(),
        ),
        ("PTC_FIX_MODE".to_owned(), "enforce".to_owned()),
        ("PTC_PULL_PRINCIPALS".to_owned(), "111122223333".to_owned()),
        ("PTC_PREWARM_MODE".to_owned(), "layers".to_owned()),
    ]);

    // Everything the jobs say: Lambda logs and answers, CLI output on both streams.
    let mut said = String::new();
    let schedule = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    for function in [
        "prewarm",
        "validate-rules",
        "lifecycle-fixer",
        "health-metrics",
    ] {
        let lambda = Lambda::start(&binary(function), &env, 120);
        let answer = lambda.invoke(&schedule).await;
        assert!(answer.get("job").is_some(), "{function}: {answer}");
        said.push_str(&answer.to_string());
        said.push_str(&lambda.logs());
    }
    let failure = json!({"detail-type": "ECR Pull Through Cache Action", "source": "aws.ecr", "detail": {
        "sync-status": "FAILURE", "ecr-repository-prefix": "docker-hub", "repository-name": "docker-hub/library/nginx",
        "failure-code": "UNAUTHORIZED", "failure-reason": "upstream refused"}});
    for function in ["validate-rules", "health-metrics"] {
        let lambda = Lambda::start(&binary(function), &env, 60);
        said.push_str(&lambda.invoke(&failure).await.to_string());
        said.push_str(&lambda.logs());
    }
    let commands: [&[&str]; 6] = [
        &["-vv", "validate"],
        &["-vv", "prewarm", "--image", "nginx:1.25"],
        &[
            "-vv",
            "--output",
            "json",
            "prewarm",
            "--image",
            "ghcr.io/fluxcd/source-controller:v1.2.4",
        ],
        &["-vv", "fix", "--mode", "dry-run"],
        &["-vv", "health"],
        &["-vv", "--output", "json", "health"],
    ];
    for args in commands {
        let out = Command::new(binary("ptc"))
            .args(args)
            .env_remove("PTC_CONFIG_FILE")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run ptc");
        said.push_str(&String::from_utf8_lossy(&out.stdout));
        said.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // And every metric the jobs published (names, dimensions; values are numbers).
    let cw = aws_sdk_cloudwatch::Client::new(&stack.sdk_config().await);
    let metrics = cw
        .list_metrics()
        .namespace(&namespace)
        .send()
        .await
        .unwrap();
    assert!(!metrics.metrics().is_empty(), "the jobs published metrics");
    said.push_str(&format!("{metrics:?}"));

    // The debug logging was on, and the jobs did their work with the secrets.
    assert!(said.contains("TRACE"), "trace logging was on");
    assert!(
        said.contains("docker-hub/library/nginx"),
        "prewarm pulled through Docker Hub"
    );

    let mut secrets: Vec<(String, String)> = Vec::new();
    for host in [DOCKER, "ghcr.io"] {
        let up = stack.upstream(host);
        let (user, password) = (up.username.clone().unwrap(), up.password.clone().unwrap());
        secrets.push((format!("{host} access token"), password.clone()));
        secrets.push((format!("{host} Basic-auth value"), basic(&user, &password)));
    }
    let tokens: Vec<String> = stack.read("ecr").await["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    assert!(!tokens.is_empty(), "the jobs used ECR registry tokens");
    for token in tokens {
        secrets.push(("ECR registry password".into(), token.clone()));
        secrets.push(("ECR Basic-auth value".into(), basic("AWS", &token)));
    }
    for (what, value) in &secrets {
        assert!(value.len() >= 8, "{what} is a real secret");
        assert!(
            !said.contains(value.as_str()),
            "the {what} appears in the output, the logs or the metrics"
        );
    }
}
