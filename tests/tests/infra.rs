//! The SAM template: `cfn-lint` and `sam validate --lint` find nothing (errors or warnings),
//! and every function's IAM policy grants each AWS action its code calls and no `*` action.
//!
//! What the code calls is read from the source, not from a list kept by hand: the SDK
//! operations inside each ptc-core adapter method (`self.client.<operation>()`), and the
//! adapter methods each function's code calls. A new SDK call reached from a function fails
//! this test until the template grants it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use ptc_tests::repo_root;
use serde_json::Value;

fn infra_bin(name: &str) -> PathBuf {
    let path = repo_root().join(".venv-infra/bin").join(name);
    assert!(
        path.exists(),
        "{} not found: run scripts/setup.sh (the README's test command does), which installs aws-sam-cli and cfn-lint",
        path.display()
    );
    path
}

fn template_path() -> PathBuf {
    repo_root().join("infra/template.yaml")
}

#[test]
fn cfn_lint_and_sam_validate_find_nothing() {
    let lint = Command::new(infra_bin("cfn-lint"))
        .arg(template_path())
        .output()
        .expect("run cfn-lint");
    let out = String::from_utf8_lossy(&lint.stdout);
    assert!(
        lint.status.success() && out.trim().is_empty(),
        "cfn-lint (exit {:?}):\n{out}{}",
        lint.status.code(),
        String::from_utf8_lossy(&lint.stderr)
    );
    let sam = Command::new(infra_bin("sam"))
        .args(["validate", "--lint", "--template-file"])
        .arg(template_path())
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run sam validate");
    let out = String::from_utf8_lossy(&sam.stdout);
    assert!(
        sam.status.success() && out.contains("is a valid SAM Template"),
        "sam validate --lint (exit {:?}):\n{out}{}",
        sam.status.code(),
        String::from_utf8_lossy(&sam.stderr)
    );
}

/// The template as JSON, intrinsic functions in their long form, decoded by cfn-lint.
fn template() -> Value {
    let script = "import json, sys\nfrom cfnlint.decode import decode\ntemplate, errors = decode(sys.argv[1])\nif errors:\n    sys.exit(str(errors))\nprint(json.dumps(template))";
    let out = Command::new(infra_bin("python"))
        .args(["-c", script])
        .arg(template_path())
        .output()
        .expect("decode the template");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("template JSON")
}

/// `get_metric_data` → `GetMetricData`.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Production code only: each `#[cfg(test)]` item (up to its closing brace in column 0) is
/// left out.
fn production(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        rest = match rest.find("\n}\n") {
            Some(end) => &rest[end + 3..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// The ptc-core adapters: SDK type, IAM service prefix, source file, and the names a function's
/// code must mention to use it (none: its methods count wherever they are called). The work
/// queue's and the run store's method names (`send`, `record`, `run`...) are common words, so
/// those adapters count only for a function that names them.
const ADAPTERS: [(&str, &str, &str, &[&str]); 6] = [
    ("SdkEcr", "ecr", "aws/ecr.rs", &[]),
    ("SdkSecrets", "secretsmanager", "aws/secrets.rs", &[]),
    ("SdkMetrics", "cloudwatch", "aws/cloudwatch.rs", &[]),
    ("SdkObjects", "s3", "aws/s3.rs", &[]),
    ("SdkQueue", "sqs", "aws/sqs.rs", &["SdkQueue", "QueueApi"]),
    (
        "SdkRunStore",
        "dynamodb",
        "aws/dynamodb.rs",
        &["SdkRunStore", "RunStore"],
    ),
];

/// The IAM actions of one SDK operation. Mostly `<service>:<Operation>`; a batch or a
/// transaction is authorised by the actions of its parts:
/// - SQS: "setting permissions for SendMessage ... sets permissions for the corresponding
///   batch versions of the actions"
///   (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-batch-api-actions.html>);
/// - DynamoDB: "Permissions for Put, Update, Delete, and Get actions are governed by the
///   permissions used for the underlying PutItem, UpdateItem, DeleteItem, and GetItem
///   operations. For the ConditionCheck action, you can use the dynamodb:ConditionCheckItem
///   permission" (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html>).
fn operation_actions(service: &str, operation: &str) -> Vec<String> {
    let parts: &[&str] = match (service, operation) {
        ("sqs", "send_message_batch") => &["SendMessage"],
        ("sqs", "delete_message_batch") => &["DeleteMessage"],
        ("sqs", "change_message_visibility_batch") => &["ChangeMessageVisibility"],
        // The adapter's transactions hold conditional Puts and Updates, no ConditionCheck.
        ("dynamodb", "transact_write_items") => &["PutItem", "UpdateItem"],
        _ => return vec![format!("{service}:{}", pascal(operation))],
    };
    parts.iter().map(|p| format!("{service}:{p}")).collect()
}

/// The methods (name, body) of every `impl ... for <sdk_type> {` block (`trait: true`) or
/// `impl <sdk_type> {` block (`trait: false`) of a file.
fn methods_of<'a>(text: &'a str, sdk_type: &str, trait_impl: bool) -> Vec<(String, &'a str)> {
    let header = if trait_impl {
        format!(" for {sdk_type} {{")
    } else {
        format!("impl {sdk_type} {{")
    };
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(&header) {
        let block = &rest[at..];
        let end = block.find("\n}\n").unwrap_or(block.len());
        for method in block[..end].split("async fn ").skip(1) {
            let name: String = method
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push((name, method));
        }
        rest = &rest[at + end..];
    }
    out
}

/// The SDK operations a method body calls: `self.client.op()`, or through an accessor:
/// `self.client().op()`.
fn operations(body: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut body = body;
    while let Some(i) = body.find("client") {
        let after = body[i + "client".len()..].trim_start();
        let after = after.strip_prefix("()").unwrap_or(after).trim_start();
        if let Some(call) = after.strip_prefix('.') {
            let op: String = call
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !op.is_empty() && call.trim_start()[op.len()..].starts_with("()") {
                out.insert(op);
            }
        }
        body = &body[i + "client".len()..];
    }
    out
}

/// Per adapter type: port method → IAM actions, from the `impl <Port> for Sdk<X>` blocks of
/// ptc-core, with the operations of the adapter's own helpers (`impl Sdk<X>`) that a method
/// calls as `self.<helper>(`. An adapter whose file does not exist has no methods.
fn adapters_by_type() -> BTreeMap<&'static str, BTreeMap<String, BTreeSet<String>>> {
    let mut out = BTreeMap::new();
    for (sdk_type, service, file, _) in ADAPTERS {
        let path = repo_root().join("shared/src").join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let text = production(&text);
        let helpers: BTreeMap<String, BTreeSet<String>> = methods_of(&text, sdk_type, false)
            .into_iter()
            .map(|(name, body)| (name, operations(body)))
            .collect();
        let methods: &mut BTreeMap<String, BTreeSet<String>> = out.entry(sdk_type).or_default();
        for (name, body) in methods_of(&text, sdk_type, true) {
            let mut ops = operations(body);
            for (helper, helper_ops) in &helpers {
                if body.contains(&format!("self.{helper}(")) {
                    ops.extend(helper_ops.iter().cloned());
                }
            }
            let entry = methods.entry(name).or_default();
            for op in ops {
                entry.extend(operation_actions(service, &op));
            }
        }
    }
    out
}

/// Adapter method → IAM actions, every adapter's methods merged by name.
fn adapter_actions() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for methods in adapters_by_type().into_values() {
        for (name, actions) in methods {
            out.entry(name).or_default().extend(actions);
        }
    }
    out
}

fn sources(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            text.push_str(&sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            text.push_str(&production(&std::fs::read_to_string(&path).unwrap()));
            text.push('\n');
        }
    }
    text
}

/// What a pull through the cache needs (PTC-FACTS: the puller's permissions).
const PULL_THROUGH_CACHE: [&str; 4] = [
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchImportUpstreamImage",
    "ecr:CreateRepository",
];

/// The actions a function's code calls: its own calls of adapter methods, and those made for
/// it by the ptc-core helpers it uses.
fn required_actions(
    binary: &str,
    adapters: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeSet<String> {
    let code = sources(&repo_root().join("functions").join(binary).join("src"));
    let by_type = adapters_by_type();
    let mut methods: BTreeSet<String> = BTreeSet::new();
    let mut actions: BTreeSet<String> = BTreeSet::new();
    for (sdk_type, _, _, names) in ADAPTERS {
        if !names.is_empty() && !names.iter().any(|n| code.contains(n)) {
            continue;
        }
        for (method, method_actions) in by_type.get(sdk_type).into_iter().flatten() {
            if code.contains(&format!(".{method}(")) {
                methods.insert(method.clone());
                actions.extend(method_actions.iter().cloned());
            }
        }
    }
    let helpers: [(&str, &[&str]); 4] = [
        ("publish_or_report", &["put"]),
        ("publish_run", &["put"]),
        ("watchlist::load", &["get_text"]),
        ("RegistryClient", &["authorization_token"]),
    ];
    for (helper, calls) in helpers {
        if code.contains(helper) {
            for call in calls.iter() {
                methods.insert((*call).to_owned());
                actions.extend(adapters.get(*call).cloned().unwrap_or_default());
            }
        }
    }
    if code.contains("RegistryClient") {
        actions.extend(PULL_THROUGH_CACHE.iter().map(|a| (*a).to_owned()));
    }
    // A function that writes an object it also reads (prewarm's state) must tell "not written
    // yet" from "denied": without s3:ListBucket, S3 answers a missing key with 403
    // AccessDenied instead of 404 NoSuchKey
    // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, "Permissions").
    if methods.contains("put_text") && methods.contains("get_text") {
        actions.insert("s3:ListBucket".to_owned());
    }
    actions
}

/// A policy document, or the document inside `Fn::If` (the `AWS::NoValue` branch is none).
fn documents(policy: &Value) -> Vec<&Value> {
    if let Some(branches) = policy.get("Fn::If").and_then(Value::as_array) {
        return branches[1..]
            .iter()
            .filter(|b| b.get("Statement").is_some())
            .collect();
    }
    vec![policy]
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        other => vec![other.to_string()],
    }
}

#[test]
fn every_function_policy_grants_what_its_code_calls_and_no_wildcard_action() {
    let adapters = adapter_actions();
    // The scan itself works: a few operations every reader of the code would expect.
    assert!(adapters["validate_rule"].contains("ecr:ValidatePullThroughCacheRule"));
    assert!(adapters["repository_settings"].contains("ecr:ListTagsForResource"));
    assert!(adapters["put"].contains("cloudwatch:PutMetricData"));
    assert!(adapters["get_text"].contains("s3:GetObject"));
    assert!(adapters["secret_value"].contains("secretsmanager:GetSecretValue"));
    let by_type = adapters_by_type();
    if let Some(queue) = by_type.get("SdkQueue") {
        let all: BTreeSet<&String> = queue.values().flatten().collect();
        assert!(all.contains(&"sqs:SendMessage".to_owned()), "{queue:?}");
        assert!(
            all.contains(&"sqs:GetQueueAttributes".to_owned()),
            "{queue:?}"
        );
    }
    if let Some(store) = by_type.get("SdkRunStore") {
        let all: BTreeSet<&String> = store.values().flatten().collect();
        // A helper of the adapter's own (`impl SdkRunStore`) counts for the methods calling it.
        assert!(all.contains(&"dynamodb:GetItem".to_owned()), "{store:?}");
        assert!(all.contains(&"dynamodb:UpdateItem".to_owned()), "{store:?}");
    }

    let template = template();
    let resources = template["Resources"].as_object().unwrap();
    let mut seen = BTreeSet::new();
    for (logical_id, resource) in resources {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{logical_id}: Metadata.BuildProperties.Binary"));
        assert_eq!(
            resource["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{logical_id}"
        );
        seen.insert(binary.to_owned());
        let mut granted = BTreeSet::new();
        let policies = resource["Properties"]["Policies"]
            .as_array()
            .unwrap_or_else(|| panic!("{logical_id}: Policies must be a list of documents"));
        for document in policies.iter().flat_map(documents) {
            for statement in document["Statement"].as_array().unwrap() {
                assert_eq!(statement["Effect"], "Allow", "{logical_id}");
                let actions = strings(&statement["Action"]);
                for action in &actions {
                    assert!(
                        !action.contains('*'),
                        "{logical_id}: wildcard action {action}"
                    );
                    if action.starts_with("secretsmanager:") {
                        let resource = statement["Resource"].to_string();
                        assert!(
                            resource.contains("secret:ecr-pullthroughcache/*"),
                            "{logical_id}: {action} must be scoped to ecr-pullthroughcache/*, not {resource}"
                        );
                    }
                    if action == "cloudwatch:PutMetricData" {
                        assert!(
                            statement["Condition"]["StringEquals"]
                                .get("cloudwatch:namespace")
                                .is_some(),
                            "{logical_id}: PutMetricData must be conditioned on the namespace"
                        );
                    }
                }
                granted.extend(actions);
            }
        }
        let required = required_actions(binary, &adapters);
        assert!(
            !required.is_empty(),
            "{binary}: no AWS call found in its code"
        );
        let missing: Vec<_> = required.difference(&granted).collect();
        let unused: Vec<_> = granted.difference(&required).collect();
        assert!(
            missing.is_empty(),
            "{logical_id} ({binary}) calls {missing:?} but its policy does not grant them"
        );
        assert!(
            unused.is_empty(),
            "{logical_id} ({binary}) is granted {unused:?}, which its code never calls (least privilege)"
        );
        println!(
            "{binary}: the {} actions its code calls, and only those: {required:?}",
            required.len()
        );
    }
    let packages: BTreeSet<String> = [
        "validate-rules",
        "prewarm",
        "lifecycle-fixer",
        "health-metrics",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(seen, packages, "the four functions are in the template");
}

/// `rate(N unit)` in seconds (the schedules' defaults are rates).
fn rate_seconds(expression: &str) -> u64 {
    let inner = expression
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{expression}: not a rate() expression"));
    let (n, unit) = inner.split_once(' ').unwrap();
    let n: u64 = n.parse().unwrap();
    n * match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3_600,
        "day" => 86_400,
        other => panic!("{expression}: unit {other}"),
    }
}

/// Each job's heartbeat alarm (no `FullRuns` data point, filled with 0 so that CloudWatch
/// does not look back past the window for older points) looks at a window longer than two
/// runs of its default schedule plus the function's timeout, so that one missed run, with
/// the next one late in its run, does not page and two missed runs do; every period of the
/// window must be empty for it to fire.
#[test]
fn heartbeat_windows_cover_two_runs_of_each_default_schedule() {
    let template = template();
    for (schedule, alarm, job, function) in [
        (
            "ValidateSchedule",
            "ValidateRulesHeartbeatAlarm",
            "validate-rules",
            "ValidateRulesFunction",
        ),
        (
            "PrewarmSchedule",
            "PrewarmHeartbeatAlarm",
            "prewarm",
            "PrewarmFunction",
        ),
        (
            "FixSchedule",
            "LifecycleFixerHeartbeatAlarm",
            "lifecycle-fixer",
            "LifecycleFixerFunction",
        ),
        (
            "HealthSchedule",
            "HealthMetricsHeartbeatAlarm",
            "health-metrics",
            "HealthMetricsFunction",
        ),
    ] {
        let timeout = template["Resources"][function]["Properties"]["Timeout"]
            .as_u64()
            .unwrap_or_else(|| panic!("{function}.Timeout"));
        let every = rate_seconds(
            template["Parameters"][schedule]["Default"]
                .as_str()
                .unwrap(),
        );
        let props = &template["Resources"][alarm]["Properties"];
        let number =
            |value: &Value, what: &str| value.as_u64().unwrap_or_else(|| panic!("{alarm}: {what}"));
        let queries = props["Metrics"].as_array().expect("a metric math alarm");
        let runs = &queries[0];
        assert_eq!(
            runs["MetricStat"]["Metric"]["MetricName"], "FullRuns",
            "{alarm}"
        );
        assert_eq!(
            runs["MetricStat"]["Metric"]["Dimensions"],
            serde_json::json!([{"Name": "Job", "Value": job}]),
            "{alarm}"
        );
        assert_eq!(queries[1]["Expression"], "FILL(runs, 0)", "{alarm}");
        let evaluations = number(&props["EvaluationPeriods"], "EvaluationPeriods");
        let window = number(&runs["MetricStat"]["Period"], "Period") * evaluations;
        assert!(
            window > 2 * every + timeout,
            "{alarm}: a window of {window} s, not more than two runs of {schedule} ({every} s) and the {timeout} s timeout"
        );
        assert_eq!(
            number(&props["DatapointsToAlarm"], "DatapointsToAlarm"),
            evaluations,
            "{alarm}"
        );
        assert_eq!(props["TreatMissingData"], "breaching", "{alarm}");
        assert_eq!(props["ComparisonOperator"], "LessThanThreshold", "{alarm}");
    }
}

/// The repository scope of the functions' policies follows `RulePrefixes` (a ROOT prefix
/// is every repository, since its repositories have no prefix), no ARN hard-codes the `aws`
/// partition, and the prefixes reach the functions (validate-rules reports a rule outside
/// them).
#[test]
fn rule_prefixes_scope_the_repositories_root_included_in_any_partition() {
    let text = std::fs::read_to_string(template_path()).unwrap();
    assert!(
        !text.contains("arn:aws:"),
        "an ARN with the aws partition written out: use ${{AWS::Partition}} (or a wildcard segment)"
    );
    let resources = ptc_tests::template::resolved(&[("RulePrefixes", "docker-hub,ROOT")]);
    let mut scoped = 0;
    for (id, resource) in resources["Resources"].as_object().unwrap() {
        if resource["Type"] == "AWS::Lambda::Function" {
            assert_eq!(
                resource["Properties"]["Environment"]["Variables"]["PTC_RULE_PREFIXES"],
                "docker-hub,ROOT",
                "{id}"
            );
        }
        if resource["Type"] != "AWS::IAM::Role" {
            continue;
        }
        for policy in resource["Properties"]["Policies"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for statement in policy["PolicyDocument"]["Statement"].as_array().unwrap() {
                let resources = match &statement["Resource"] {
                    Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
                    Value::String(one) => vec![one.as_str()],
                    _ => Vec::new(),
                };
                if resources.iter().any(|r| {
                    r.contains(":repository/") && !r.ends_with(":repository/*") && r.contains('/')
                }) {
                    scoped += 1;
                    assert_eq!(
                        resources,
                        [
                            "arn:*:ecr:*:*:repository/docker-hub/*",
                            "arn:*:ecr:*:*:repository/*"
                        ],
                        "{id} {}",
                        statement["Sid"]
                    );
                    assert!(
                        statement["Condition"]["StringEquals"]["aws:ResourceAccount"].is_string()
                            && statement["Condition"]["StringEquals"]["aws:RequestedRegion"]
                                .is_string(),
                        "{id}: the wildcard account and Region are pinned by conditions"
                    );
                }
            }
        }
    }
    assert_eq!(
        scoped, 3,
        "prewarm, lifecycle-fixer and health-metrics scope repositories"
    );
}

/// The topic every alarm notifies is encrypted with a key CloudWatch may use: with the AWS
/// managed `alias/aws/sns` (whose policy cannot grant it), alarms change state and no
/// notification is ever delivered.
/// https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
#[test]
fn cloudwatch_can_publish_to_the_encrypted_alarm_topic() {
    let template = template();
    let resources = template["Resources"].as_object().unwrap();
    let mut topics = BTreeSet::new();
    for (id, resource) in resources {
        if resource["Type"] != "AWS::CloudWatch::Alarm" {
            continue;
        }
        for key in ["AlarmActions", "OKActions", "InsufficientDataActions"] {
            for action in resource["Properties"][key].as_array().into_iter().flatten() {
                let topic = action["Ref"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{id}.{key}: a Ref to the template's topic"));
                topics.insert(topic.to_owned());
            }
        }
    }
    assert!(!topics.is_empty());
    for topic in topics {
        let key = &resources[&topic]["Properties"]["KmsMasterKeyId"];
        assert_ne!(
            key, "alias/aws/sns",
            "{topic}: CloudWatch cannot use the AWS managed key"
        );
        let Some(key_id) = key["Ref"].as_str() else {
            assert!(
                key.is_null(),
                "{topic}: a key of the template's own, or none: {key}"
            );
            continue;
        };
        let statements = resources[key_id]["Properties"]["KeyPolicy"]["Statement"]
            .as_array()
            .unwrap_or_else(|| panic!("{key_id}: a key policy"));
        let grants = statements.iter().any(|s| {
            let actions: Vec<&str> = match &s["Action"] {
                Value::String(a) => vec![a.as_str()],
                Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            s["Effect"] == "Allow"
                && s["Principal"]["Service"] == "cloudwatch.amazonaws.com"
                && actions.contains(&"kms:Decrypt")
                && actions.iter().any(|a| a.starts_with("kms:GenerateDataKey"))
        });
        assert!(
            grants,
            "{key_id}: cloudwatch.amazonaws.com needs kms:Decrypt and kms:GenerateDataKey*"
        );
    }
}

/// An empty `RulePrefixes` (or an empty item) would scope the functions' policies to
/// `repository//*`, no repository at all, and turn validate-rules' scope check off: the
/// template's `Rules` refuse it before anything is created.
#[test]
fn an_empty_rule_prefix_is_refused_at_deploy_time() {
    for value in ["", "quay,,k8s"] {
        let err = ptc_tests::template::try_resolved(&[("RulePrefixes", value)])
            .expect_err("an empty prefix is refused");
        assert!(err.contains("Rules.RulePrefixesNamed"), "{value:?}: {err}");
    }
    assert!(ptc_tests::template::try_resolved(&[("RulePrefixes", "quay,ROOT")]).is_ok());
}

/// The dashboard body, once resolved, is the JSON CloudWatch's `PutDashboard` takes (a
/// malformed body fails the deployment), and each widget graphs the product's namespace.
#[test]
fn the_dashboard_body_is_json_over_the_namespace() {
    let resources = ptc_tests::template::resolved(&[("MetricsNamespace", "PtcDash")]);
    let body = resources["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
        .as_str()
        .expect("a dashboard body");
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let widgets = body["widgets"].as_array().expect("widgets");
    assert!(widgets.len() >= 10);
    // The work queue's widgets graph AWS/SQS for the stack's own queues; every other widget
    // graphs the product's namespace.
    let queues: Vec<String> = ["WorkQueue", "WorkDeadLetterQueue"]
        .iter()
        .map(|id| {
            let url = resources["Resources"][id]["Properties"]["QueueName"]
                .as_str()
                .map(str::to_owned);
            url.unwrap_or_else(|| format!("ptc-{id}"))
        })
        .collect();
    let mut sqs_widgets = 0;
    for widget in widgets {
        let metrics = widget["properties"]["metrics"].to_string();
        if metrics.contains("AWS/SQS") {
            sqs_widgets += 1;
            assert!(
                queues.iter().any(|q| metrics.contains(q.as_str())),
                "{widget}: not one of the stack's queues {queues:?}"
            );
            continue;
        }
        assert!(metrics.contains("PtcDash"), "{widget}");
    }
    assert_eq!(
        sqs_widgets, 2,
        "the work queue's depth and age are on the dashboard"
    );
}

/// The work queue's visibility timeout is six times the timeout of the function that consumes
/// it: "set the source queue's visibility timeout to at least six times the timeout that you
/// configure on your function" (Lambda also refuses a mapping whose function's timeout is
/// longer than the visibility timeout).
/// <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html>
#[test]
fn the_work_queue_outlasts_six_function_timeouts_and_feeds_prewarm() {
    let template = template();
    let resources = template["Resources"].as_object().unwrap();
    let mut consumers = Vec::new();
    for (id, resource) in resources {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        for (event_id, event) in resource["Properties"]["Events"]
            .as_object()
            .into_iter()
            .flatten()
        {
            if event["Type"] != "SQS" {
                continue;
            }
            let props = &event["Properties"];
            let queue = props["Queue"]["Fn::GetAtt"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{id}.{event_id}: Queue is a GetAtt of a queue"));
            let timeout = resource["Properties"]["Timeout"].as_u64().unwrap();
            let visibility = resources[queue]["Properties"]["VisibilityTimeout"]
                .as_u64()
                .unwrap_or(30);
            assert!(
                visibility >= 6 * timeout,
                "{queue}: visibility timeout {visibility} s < 6 x {id}'s {timeout} s"
            );
            assert_eq!(
                props["FunctionResponseTypes"],
                serde_json::json!(["ReportBatchItemFailures"]),
                "{id}.{event_id}"
            );
            assert_eq!(
                props["ScalingConfig"]["MaximumConcurrency"],
                serde_json::json!({"Ref": "WorkerConcurrency"}),
                "{id}.{event_id}"
            );
            let redrive = &resources[queue]["Properties"]["RedrivePolicy"];
            assert!(
                redrive["deadLetterTargetArn"]["Fn::GetAtt"][0].is_string()
                    && redrive["maxReceiveCount"].as_u64().is_some_and(|n| n > 1),
                "{queue}: a dead-letter queue after a few receives: {redrive}"
            );
            consumers.push(format!("{id}<-{queue}"));
        }
    }
    assert_eq!(consumers, ["PrewarmFunction<-WorkQueue"]);
    let concurrency = &template["Parameters"]["WorkerConcurrency"];
    // AWS's bounds of MaximumConcurrency.
    assert_eq!(concurrency["MinValue"], 2);
    assert_eq!(concurrency["MaxValue"], 1000);
    let variables = &resources["PrewarmFunction"]["Properties"]["Environment"]["Variables"];
    for (name, target) in [
        ("PTC_WORK_QUEUE_URL", "WorkQueue"),
        ("PTC_WORK_DLQ_URL", "WorkDeadLetterQueue"),
        ("PTC_RUN_TABLE", "RunTable"),
        ("PTC_QUEUE_IMAGES_PER_MESSAGE", "ImagesPerMessage"),
        ("PTC_RUN_LEASE_HOURS", "RunLeaseHours"),
    ] {
        assert_eq!(
            variables[name],
            serde_json::json!({"Ref": target}),
            "{name}"
        );
    }
}

/// Every function whose code pulls from the cache (`ecr:BatchGetImage`: prewarm's pulls,
/// health-metrics' index reads) has its role registered as an ECR pull-time update exclusion,
/// no other role is, and validate-rules checks exactly those roles
/// (`PTC_PULL_TIME_EXCLUDED_ROLES`): a new puller cannot make the product's own pulls look
/// like use unnoticed.
#[test]
fn every_pulling_role_is_a_pull_time_exclusion_that_validate_rules_checks() {
    let adapters = adapter_actions();
    let template = template();
    let resources = template["Resources"].as_object().unwrap();
    let get_att_role = |value: &Value| -> String {
        let pair = value["Fn::GetAtt"]
            .as_array()
            .unwrap_or_else(|| panic!("not a GetAtt: {value}"));
        assert_eq!(pair[1], "Arn", "{value}");
        pair[0].as_str().unwrap().to_owned()
    };
    let mut pulling = BTreeSet::new();
    for (logical_id, resource) in resources {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        if required_actions(binary, &adapters).contains("ecr:BatchGetImage") {
            // SAM names the role it makes for a function with Policies `<Function>Role`.
            pulling.insert(format!("{logical_id}Role"));
        }
    }
    assert_eq!(
        pulling,
        BTreeSet::from([
            "HealthMetricsFunctionRole".to_owned(),
            "PrewarmFunctionRole".to_owned()
        ]),
        "the scan finds the pullers"
    );
    let excluded: BTreeSet<String> = resources
        .values()
        .filter(|r| r["Type"] == "AWS::ECR::PullTimeUpdateExclusion")
        .map(|r| get_att_role(&r["Properties"]["PrincipalArn"]))
        .collect();
    assert_eq!(
        excluded, pulling,
        "one exclusion per pulling role, no other"
    );
    let checked = &resources["ValidateRulesFunction"]["Properties"]["Environment"]["Variables"]["PTC_PULL_TIME_EXCLUDED_ROLES"]
        ["Fn::Join"];
    assert_eq!(checked[0], ",", "{checked}");
    let checked: BTreeSet<String> = checked[1]
        .as_array()
        .unwrap()
        .iter()
        .map(get_att_role)
        .collect();
    assert_eq!(
        checked, pulling,
        "validate-rules checks exactly those roles"
    );
}
