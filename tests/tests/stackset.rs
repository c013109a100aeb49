//! The fleet's template: `scripts/package-stackset.sh` turns `infra/template.yaml` into a
//! template CloudFormation StackSets can deploy (no `Transform`, no `AWS::Serverless::*`:
//! StackSets' default service-managed execution role cannot run transforms or macros,
//! <https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-custom-execution-role.html>),
//! offline, with samtranslator. The packaged template:
//!
//! - has no transform and no serverless resource, and cfn-lint finds nothing in it;
//! - keeps every resource the SAM transform makes (every alarm, queue, table, event source
//!   mapping...), with no Region or partition written in;
//! - reads each function's code from `${ArtifactBucketPrefix}-${AWS::Region}` at the key
//!   given to the script;
//! - deploys through moto's CloudFormation (tests/stack/cfn_deploy.py): CREATE_COMPLETE, every
//!   resource really made, the work queue, its dead-letter queue, the run table and the
//!   event source mapping as the contract says, and the cross-account link when
//!   `MonitoringSinkArn` is set.
//!
//! The tools come from scripts/setup.sh (.venv-infra, .venv); a missing one fails the test,
//! it never skips.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ptc_tests::repo_root;
use ptc_tests::template::{cfn_deploy, check_resources, tool};
use serde_json::{Value, json};

/// Runs the packaging script into `dir/stackset.yaml`, prewarm's key given alone and the
/// others from the prefix.
fn package(dir: &Path) -> PathBuf {
    tool(".venv-infra", "python");
    let out_path = dir.join("stackset.yaml");
    let out = Command::new(repo_root().join("scripts/package-stackset.sh"))
        .arg("-o")
        .arg(&out_path)
        .args([
            "--key-prefix",
            "ptc/1.2.3",
            "prewarm=builds/prewarm-abc.zip",
        ])
        .output()
        .expect("run scripts/package-stackset.sh");
    assert!(
        out.status.success(),
        "package-stackset.sh failed ({:?}):\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out_path
}

/// A template as JSON, decoded by cfn-lint (short-form intrinsics in their long form).
fn decode(path: &Path) -> Value {
    let script = "import json, sys\nfrom cfnlint.decode import decode\ntemplate, errors = decode(sys.argv[1])\nif errors:\n    sys.exit(str(errors))\nprint(json.dumps(template))";
    let out = Command::new(tool(".venv-infra", "python"))
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("decode the template");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("template JSON")
}

/// `infra/template.yaml` through the SAM transform, as the single-account deployment gets it.
fn sam_transformed() -> Value {
    let out = Command::new(tool(".venv-infra", "python"))
        .arg(repo_root().join("tests/stack/sam_transform.py"))
        .arg(repo_root().join("infra/template.yaml"))
        .output()
        .expect("run sam_transform.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("sam_transform.py's JSON")
}

fn resources_of(template: &Value) -> &serde_json::Map<String, Value> {
    template["Resources"].as_object().expect("Resources")
}

fn ids_of_type(template: &Value, kind: &str) -> BTreeSet<String> {
    resources_of(template)
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, _)| id.clone())
        .collect()
}

#[test]
fn the_packaged_template_has_no_transform_and_keeps_every_resource() {
    let dir = tempfile::tempdir().unwrap();
    let path = package(dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    let packaged = decode(&path);

    assert!(
        packaged.get("Transform").is_none(),
        "a Transform is left: StackSets cannot deploy it"
    );
    let serverless: Vec<_> = resources_of(&packaged)
        .iter()
        .filter(|(_, r)| {
            r["Type"]
                .as_str()
                .is_some_and(|t| t.starts_with("AWS::Serverless::"))
        })
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        serverless.is_empty(),
        "serverless resources: {serverless:?}"
    );
    // One template for every Region and partition: nothing of the machine that packaged it.
    assert!(
        !text.contains("us-east-1"),
        "a Region is written in the packaged template"
    );
    assert!(
        !text.contains("arn:aws:"),
        "the aws partition is written in the packaged template"
    );

    let lint = Command::new(tool(".venv-infra", "cfn-lint"))
        .arg(&path)
        .output()
        .expect("run cfn-lint");
    let out = String::from_utf8_lossy(&lint.stdout);
    assert!(
        lint.status.success() && out.trim().is_empty(),
        "cfn-lint on the packaged template (exit {:?}):\n{out}{}",
        lint.status.code(),
        String::from_utf8_lossy(&lint.stderr)
    );

    // Every resource (and type) of the single-account deployment is in the fleet's.
    let sam = sam_transformed();
    let sam_ids: BTreeSet<_> = resources_of(&sam).keys().cloned().collect();
    let packaged_ids: BTreeSet<_> = resources_of(&packaged).keys().cloned().collect();
    let lost: Vec<_> = sam_ids.difference(&packaged_ids).collect();
    assert!(lost.is_empty(), "the packaged template lost {lost:?}");
    for kind in [
        "AWS::CloudWatch::Alarm",
        "AWS::SQS::Queue",
        "AWS::DynamoDB::Table",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Oam::Link",
    ] {
        let ids = ids_of_type(&packaged, kind);
        assert!(!ids.is_empty(), "no {kind}");
        assert_eq!(ids, ids_of_type(&sam, kind), "{kind}");
    }
    for id in [
        "WorkQueue",
        "WorkDeadLetterQueue",
        "RunTable",
        "WorkDeadLetterAlarm",
        "WorkQueueStuckAlarm",
        "MonitoringLink",
    ] {
        assert!(packaged_ids.contains(id), "{id} is missing");
    }
    let parameters = packaged["Parameters"].as_object().unwrap();
    for name in sam["Parameters"].as_object().unwrap().keys() {
        assert!(parameters.contains_key(name), "parameter {name} lost");
    }
    assert!(parameters.contains_key("ArtifactBucketPrefix"));

    // Each function's code: the Region's artifact bucket, the key given to the script.
    let mut keys = BTreeSet::new();
    for (id, resource) in resources_of(&packaged) {
        if resource["Type"] != "AWS::Lambda::Function" {
            continue;
        }
        let code = &resource["Properties"]["Code"];
        assert_eq!(
            code["S3Bucket"],
            json!({"Fn::Sub": "${ArtifactBucketPrefix}-${AWS::Region}"}),
            "{id}"
        );
        keys.insert(code["S3Key"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        keys,
        BTreeSet::from(
            [
                "builds/prewarm-abc.zip",
                "ptc/1.2.3/health-metrics.zip",
                "ptc/1.2.3/lifecycle-fixer.zip",
                "ptc/1.2.3/validate-rules.zip",
            ]
            .map(str::to_owned)
        )
    );
}

/// A function without a key is refused, with its name.
#[test]
fn a_function_without_a_key_is_refused() {
    tool(".venv-infra", "python");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(repo_root().join("scripts/package-stackset.sh"))
        .arg("-o")
        .arg(dir.path().join("stackset.yaml"))
        .args(["prewarm=p.zip", "validate-rules=v.zip"])
        .output()
        .expect("run scripts/package-stackset.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("health-metrics") && stderr.contains("lifecycle-fixer"),
        "{stderr}"
    );
    assert!(!dir.path().join("stackset.yaml").exists());
}

/// One deployment by tests/stack/cfn_deploy.py, every resource made and wired.
fn deploy(template: &Path, parameters: &[&str]) -> Value {
    let result = cfn_deploy(template, parameters);
    check_resources(&result, parameters);
    result
}

/// The queue whose name has this logical id (CloudFormation names it `<stack>-<id>-<suffix>`).
fn queue<'a>(result: &'a Value, logical_id: &str) -> &'a Value {
    let wanted = format!("-{logical_id}-");
    let found: Vec<_> = result["queues"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.contains(&wanted))
        .collect();
    assert_eq!(found.len(), 1, "{logical_id}: {:?}", result["queues"]);
    found[0].1
}

#[test]
fn the_packaged_template_deploys_with_the_work_queue_the_table_and_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let path = package(dir.path());

    let plain = deploy(&path, &["ArtifactBucketPrefix=ptc-artifacts"]);
    assert_eq!(plain["found"]["AWS::Oam::Link"], 0, "no sink, no link");
    assert_eq!(plain["found"]["AWS::Lambda::Function"], 4);

    let sink = "arn:aws:oam:us-east-1:111122223333:sink/f3b2e1a0-1234-4c5d-9e8f-0a1b2c3d4e5f";
    let parameters = [
        "ArtifactBucketPrefix=ptc-artifacts",
        &format!("MonitoringSinkArn={sink}"),
        "WorkerConcurrency=7",
    ];
    let set = deploy(&path, &parameters);
    assert_eq!(set["found"]["AWS::Oam::Link"], 1);
    assert_eq!(set["oam_links"][0]["SinkIdentifier"], sink);
    assert_eq!(
        set["oam_links"][0]["ResourceTypes"],
        json!(["AWS::CloudWatch::Metric", "AWS::Logs::LogGroup"])
    );

    // The work queue: 6 x prewarm's 900 s, two weeks, SSE-SQS, dead letters after 5 receives.
    let work = queue(&set, "WorkQueue");
    let dead = queue(&set, "WorkDeadLetterQueue");
    assert_eq!(work["VisibilityTimeout"], "5400");
    assert_eq!(work["MessageRetentionPeriod"], "1209600");
    assert_eq!(work["SqsManagedSseEnabled"], "true");
    let redrive: Value = serde_json::from_str(work["RedrivePolicy"].as_str().unwrap()).unwrap();
    assert_eq!(redrive["deadLetterTargetArn"], dead["QueueArn"]);
    assert_eq!(redrive["maxReceiveCount"], 5);
    assert_eq!(dead["MessageRetentionPeriod"], "1209600");
    assert_eq!(dead["SqsManagedSseEnabled"], "true");

    // The worker: prewarm consumes the work queue, partial batch failures, the concurrency.
    let mappings = set["event_source_mappings"].as_array().unwrap();
    assert_eq!(mappings.len(), 1, "{mappings:?}");
    let mapping = &mappings[0];
    assert_eq!(mapping["EventSourceArn"], work["QueueArn"]);
    assert!(
        mapping["FunctionArn"]
            .as_str()
            .unwrap()
            .contains("PrewarmFunction"),
        "{mapping}"
    );
    assert_eq!(mapping["BatchSize"], 5);
    assert_eq!(
        mapping["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert_eq!(mapping["ScalingConfig"]["MaximumConcurrency"], 7);

    // The run table.
    let tables = set["tables"].as_object().unwrap();
    assert_eq!(tables.len(), 1, "{tables:?}");
    let table = tables.values().next().unwrap();
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        table["KeySchema"],
        json!([{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    );
    assert_eq!(
        table["TimeToLive"],
        json!({"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"})
    );
    assert_eq!(
        table["PointInTimeRecovery"]["PointInTimeRecoveryStatus"],
        "ENABLED"
    );
}
