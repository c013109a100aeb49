//! Deploy-time rules on the SAM template, by tools other than cfn-lint and `sam validate`
//! (tests/tests/infra.rs runs those):
//!
//! - checkov finds nothing on the template nor on its SAM-transformed form. A check that
//!   does not apply to this product is skipped in the template itself, in the resource's
//!   `Metadata: checkov: skip:` with the reason.
//! - moto's CloudFormation creates the transformed stack, offline and in process
//!   (tests/stack/cfn_deploy.py, which says what that engine checks and what it does not):
//!   CREATE_COMPLETE, every resource really made, the schedules, rules and failure
//!   destinations wired to the functions and the failure queue.
//!
//! The tools come from scripts/setup.sh (.venv-checkov, .venv-infra, .venv); a missing one
//! fails the test, it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use ptc_tests::repo_root;
use ptc_tests::template::{cfn_deploy as deploy, check_resources, tool};
use serde_json::Value;

fn template_path() -> PathBuf {
    repo_root().join("infra/template.yaml")
}

/// The template through the SAM transform (tests/stack/sam_transform.py), as `dir/template.json`.
fn transformed(dir: &Path) -> PathBuf {
    let out = Command::new(tool(".venv-infra", "python"))
        .arg(repo_root().join("tests/stack/sam_transform.py"))
        .arg(template_path())
        .output()
        .expect("run sam_transform.py");
    assert!(
        out.status.success(),
        "the SAM transform failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join("template.json");
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// checkov's failed checks on one CloudFormation template, one line each.
fn checkov_failures(template: &Path) -> Vec<String> {
    // --skip-download: no call to the vendor's platform (there is no network here, and the
    // run must not depend on one).
    let out = Command::new(tool(".venv-checkov", "checkov"))
        .arg("--file")
        .arg(template)
        .args(["--framework", "cloudformation", "--quiet", "--compact"])
        .args(["--skip-download", "--output", "json"])
        .output()
        .expect("run checkov");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON report ({e}; exit {:?}):\n{stdout}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let summary = &report["summary"];
    assert!(
        summary["resource_count"].as_u64().unwrap_or(0) > 0
            && summary["parsing_errors"].as_u64() == Some(0),
        "checkov did not read {} as a CloudFormation template: {report}",
        template.display()
    );
    let failures: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            format!(
                "{} {} ({} lines {}): {}",
                f["check_id"].as_str().unwrap_or("?"),
                f["resource"].as_str().unwrap_or("?"),
                f["file_path"].as_str().unwrap_or("?"),
                f["file_line_range"],
                f["check_name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(
        failures.is_empty(),
        out.status.success(),
        "checkov's exit status ({:?}) disagrees with its report:\n{stdout}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    failures
}

#[test]
fn checkov_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // The transformed form shows what SAM generates (roles, schedules, queues, permissions),
    // which checkov does not see in the SAM resources.
    for template in [template_path(), transformed(dir.path())] {
        let failures = checkov_failures(&template);
        assert!(
            failures.is_empty(),
            "checkov found {} failed checks in {}. Fix them, or skip a check that does not \
             apply in the resource's Metadata (checkov: skip: [{{id, comment}}]) with the reason:\n{}",
            failures.len(),
            template.display(),
            failures.join("\n")
        );
    }
}

/// How many roles have an inline policy statement with this id.
fn roles_with_sid(result: &Value, sid: &str) -> usize {
    result["role_sids"]
        .as_object()
        .expect("role_sids")
        .values()
        .filter(|sids| sids.as_array().unwrap().iter().any(|s| s == sid))
        .count()
}

#[test]
fn moto_cloudformation_creates_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    let template = transformed(dir.path());

    let defaults = deploy(&template, &[]);
    let made = check_resources(&defaults, &[]);
    for kind in [
        "AWS::Lambda::Function",
        "AWS::Lambda::Permission",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::IAM::Role",
        "AWS::Events::Rule",
        "AWS::Scheduler::Schedule",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::Topic",
        "AWS::SNS::TopicPolicy",
        "AWS::Logs::LogGroup",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::Dashboard",
        "AWS::DynamoDB::Table",
        "AWS::Lambda::EventSourceMapping",
    ] {
        assert!(
            made.get(kind).copied().unwrap_or(0) > 0,
            "the stack made no {kind}: {made:#?}"
        );
    }
    assert_eq!(made.get("AWS::Lambda::Function"), Some(&4), "{made:#?}");
    // prewarm's and health-metrics' roles are pull-time update exclusions (their ARNs pass
    // ECR's PrincipalArn pattern: the model checks it), and validate-rules may list them.
    assert_eq!(
        made.get("AWS::ECR::PullTimeUpdateExclusion"),
        Some(&2),
        "{made:#?}"
    );
    assert_eq!(roles_with_sid(&defaults, "PullTimeExclusions"), 1);
    // prewarm alone reads and writes its state object.
    assert_eq!(made.get("AWS::S3::BucketPolicy"), Some(&1), "{made:#?}");
    assert_eq!(
        roles_with_sid(&defaults, "PrewarmState"),
        1,
        "{}",
        defaults["role_sids"]
    );
    assert_eq!(made.get("AWS::SNS::Subscription"), None, "{made:#?}");
    // The work queue: prewarm alone plans into it and consumes it (tests/tests/stackset.rs
    // checks the queues', table's and mapping's settings on the packaged template).
    assert_eq!(made.get("AWS::SQS::Queue"), Some(&3), "{made:#?}");
    assert_eq!(made.get("AWS::Lambda::EventSourceMapping"), Some(&1));
    assert_eq!(roles_with_sid(&defaults, "WorkQueue"), 1);
    assert_eq!(roles_with_sid(&defaults, "RunTable"), 1);
    assert_eq!(
        made.get("AWS::Oam::Link"),
        None,
        "no sink, no link: {made:#?}"
    );
    assert_eq!(
        roles_with_sid(&defaults, "WatchList"),
        0,
        "no watch-list bucket, yet a role may read one: {}",
        defaults["role_sids"]
    );

    let parameters = [
        "AlarmEmail=ops@example.com",
        "WatchListBucket=ptc-watch-list",
    ];
    let set = deploy(&template, &parameters);
    let made = check_resources(&set, &parameters);
    assert_eq!(made.get("AWS::SNS::Subscription"), Some(&1), "{made:#?}");
    // prewarm and health-metrics read the long watch list.
    assert_eq!(roles_with_sid(&set, "WatchList"), 2, "{}", set["role_sids"]);
}

/// The event source mapping polls the work queue with the function's role: SAM attaches the
/// AWS managed policy AWSLambdaSQSQueueExecutionRole (sqs:ReceiveMessage, DeleteMessage,
/// GetQueueAttributes, ChangeMessageVisibility) to the role of a function with an SQS event,
/// which is why the template does not grant them itself. If a SAM version stopped doing it,
/// the mapping could not poll: this says so.
#[test]
fn the_sam_transform_grants_the_mapping_its_polling() {
    let dir = tempfile::tempdir().unwrap();
    let template: Value =
        serde_json::from_slice(&std::fs::read(transformed(dir.path())).unwrap()).unwrap();
    let resources = template["Resources"].as_object().unwrap();
    let mut polled_by = Vec::new();
    for (id, resource) in resources {
        if resource["Type"] != "AWS::Lambda::EventSourceMapping" {
            continue;
        }
        let function = resource["Properties"]["FunctionName"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: FunctionName"));
        let role = resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{function}: Role"));
        let managed = resources[role]["Properties"]["ManagedPolicyArns"].to_string();
        assert!(
            managed.contains("policy/service-role/AWSLambdaSQSQueueExecutionRole"),
            "{role}: no AWSLambdaSQSQueueExecutionRole for {id}: {managed}"
        );
        polled_by.push(function.to_owned());
    }
    assert_eq!(polled_by, ["PrewarmFunction"]);
}
