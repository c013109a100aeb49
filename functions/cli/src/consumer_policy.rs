//! The consumer side of a shared cache: the identity policy a role in another account (a
//! cluster's node role, a CI runner's role) needs to pull through this account's
//! pull-through cache, as an IAM JSON policy document or as Terraform. Pure: the cache
//! account, Region and rule prefixes in, the document out.
//!
//! The actions, least privilege (the other half, the cache account's registry and
//! repository policies, must allow the same actions for a pull from another account):
//! - `ecr:GetAuthorizationToken` on `*`: the registry token. The action has no resource
//!   type, so `*` is its only resource (Service Authorization Reference, "Actions,
//!   resources, and condition keys for Amazon Elastic Container Registry",
//!   <https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerregistry.html>).
//! - `ecr:BatchGetImage`, `ecr:GetDownloadUrlForLayer`, `ecr:BatchCheckLayerAvailability` on
//!   the cached repositories: a pull of an image the cache holds, the pull actions of the
//!   AWS managed policies `AmazonEC2ContainerRegistryPullOnly` and `...ReadOnly`
//!   (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/security-iam-awsmanpol.html>).
//! - `ecr:BatchImportUpstreamImage` and `ecr:CreateRepository` on the cached repositories: a
//!   pull of an image the cache does not hold yet. ECR user guide, "IAM permissions required
//!   to sync an upstream registry with an Amazon ECR private registry"
//!   (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-iam.html>):
//!   `BatchImportUpstreamImage` "to retrieve the external image and import it to your private
//!   registry" (a first pull and a new tag), `CreateRepository` "if the repository storing
//!   the cached images doesn't already exist" (a first pull of a repository); both may be
//!   granted by an identity-based policy. `ecr:CreatePullThroughCacheRule`, the guide's third
//!   action, is the cache account's own business and is not granted.
//!
//! The resources: `arn:<partition>:ecr:<region>:<cache account>:repository/<prefix>/*` for
//! each rule prefix, the repositories that prefix's rule creates and serves; a `ROOT` rule
//! serves repositories of any name, so with it the one resource is `repository/*`.

use std::fmt::Write as _;

use ptc_core::rules::Prefix;
use serde::Serialize;

/// The pull actions: an image the cache holds.
pub const PULL_ACTIONS: [&str; 3] = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
];

/// The first-pull actions: an image (or a tag) the cache does not hold yet.
pub const FIRST_PULL_ACTIONS: [&str; 2] = ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"];

/// The registry token, which names no resource.
pub const TOKEN_ACTION: &str = "ecr:GetAuthorizationToken";

/// The Terraform name of the data source [`to_terraform`] prints.
pub const TERRAFORM_NAME: &str = "ptc_consumer";

/// Whose cache the consumers pull through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheScope {
    /// `aws`, `aws-cn`, `aws-us-gov`, ...
    pub partition: String,
    /// The cache's Region; consumers pull from the same Region.
    pub region: String,
    /// The cache account's 12-digit ID.
    pub account: String,
    /// The rule prefixes to grant (at least one).
    pub prefixes: Vec<Prefix>,
}

/// An IAM JSON policy document, serialised with IAM's element names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyDocument {
    /// `2012-10-17`, the current policy language version.
    #[serde(rename = "Version")]
    pub version: &'static str,
    /// The statements, in the order printed.
    #[serde(rename = "Statement")]
    pub statements: Vec<Statement>,
}

/// One `Allow` statement of a [`PolicyDocument`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// Letters and digits, unique in the document.
    #[serde(rename = "Sid")]
    pub sid: &'static str,
    /// Always `Allow`.
    #[serde(rename = "Effect")]
    pub effect: &'static str,
    /// The actions, sorted.
    #[serde(rename = "Action")]
    pub actions: Vec<&'static str>,
    /// The resource ARNs, sorted (`*` for the token).
    #[serde(rename = "Resource")]
    pub resources: Vec<String>,
}

/// The consumer identity policy for `scope`: the token on `*`, then the pull actions and the
/// first-pull actions on the prefixes' repositories (two statements, so that a reader sees
/// which is which; the same resources in both).
pub fn consumer_policy(scope: &CacheScope) -> PolicyDocument {
    let repositories = repository_arns(scope);
    let allow = |sid, actions: &[&'static str], resources: Vec<String>| Statement {
        sid,
        effect: "Allow",
        actions: actions.to_vec(),
        resources,
    };
    PolicyDocument {
        version: "2012-10-17",
        statements: vec![
            allow(
                "PtcGetAuthorizationToken",
                &[TOKEN_ACTION],
                vec!["*".to_owned()],
            ),
            allow("PtcPullCachedImages", &PULL_ACTIONS, repositories.clone()),
            allow("PtcPullThroughCache", &FIRST_PULL_ACTIONS, repositories),
        ],
    }
}

/// `arn:<partition>:ecr:<region>:<account>:repository/<prefix>/*` per prefix, sorted and
/// without repeats; only `repository/*` when a prefix is `ROOT`.
pub fn repository_arns(scope: &CacheScope) -> Vec<String> {
    let base = format!(
        "arn:{}:ecr:{}:{}:repository/",
        scope.partition, scope.region, scope.account
    );
    if scope.prefixes.iter().any(Prefix::is_root) {
        return vec![format!("{base}*")];
    }
    let mut arns: Vec<String> = scope
        .prefixes
        .iter()
        .map(|p| format!("{base}{}/*", p.as_str()))
        .collect();
    arns.sort();
    arns.dedup();
    arns
}

/// The partition of a Region, for a cache account given without a call to STS: the
/// partitions' documented Region prefixes (`cn-`: `aws-cn`, `us-gov-`: `aws-us-gov`, the
/// ISO Regions), `aws` for every other Region.
pub fn partition_of_region(region: &str) -> &'static str {
    const PREFIXES: [(&str, &str); 6] = [
        ("cn-", "aws-cn"),
        ("us-gov-", "aws-us-gov"),
        ("us-isob-", "aws-iso-b"),
        ("us-isof-", "aws-iso-f"),
        ("us-iso-", "aws-iso"),
        ("eu-isoe-", "aws-iso-e"),
    ];
    PREFIXES
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map_or("aws", |(_, partition)| partition)
}

/// The document as IAM reads it: pretty JSON, one line at the end.
pub fn to_json(doc: &PolicyDocument) -> String {
    let mut text = serde_json::to_string_pretty(doc).expect("a policy document serialises");
    text.push('\n');
    text
}

/// The document as a Terraform `aws_iam_policy_document` data source named
/// [`TERRAFORM_NAME`] (the form the AWS provider's documentation recommends over a JSON
/// string, and the one `source_policy_documents` can merge), laid out as `terraform fmt`
/// lays it out, with a comment on how to attach it.
pub fn to_terraform(doc: &PolicyDocument, scope: &CacheScope) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Pull through the ECR pull-through cache of account {} in {} (ptc iam consumer-policy).",
        scope.account, scope.region
    );
    let _ = writeln!(
        out,
        "# Attach to the consumer role, e.g. policy = data.aws_iam_policy_document.{TERRAFORM_NAME}.json"
    );
    let _ = writeln!(out, "# in an aws_iam_role_policy or an aws_iam_policy.");
    let _ = writeln!(
        out,
        "data \"aws_iam_policy_document\" \"{TERRAFORM_NAME}\" {{"
    );
    for (i, statement) in doc.statements.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str("  statement {\n");
        let attributes = [
            ("sid", hcl_string(statement.sid)),
            ("effect", hcl_string(statement.effect)),
            ("actions", hcl_list(&statement.actions, "    ")),
            ("resources", hcl_list(&statement.resources, "    ")),
        ];
        write_attributes(&mut out, &attributes, "    ");
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}

/// Attributes as `terraform fmt` writes them: the `=` of consecutive one-line attributes
/// aligned, an attribute whose value spans lines written `name = [` and ending the run.
fn write_attributes(out: &mut String, attributes: &[(&str, String)], indent: &str) {
    let mut i = 0;
    while i < attributes.len() {
        let run_end = attributes[i..]
            .iter()
            .position(|(_, value)| value.contains('\n'))
            .map_or(attributes.len(), |n| i + n);
        if run_end == i {
            let (name, value) = &attributes[i];
            let _ = writeln!(out, "{indent}{name} = {value}");
            i += 1;
            continue;
        }
        let width = attributes[i..run_end]
            .iter()
            .map(|(name, _)| name.len())
            .max()
            .unwrap_or(0);
        for (name, value) in &attributes[i..run_end] {
            let _ = writeln!(out, "{indent}{name:<width$} = {value}");
        }
        i = run_end;
    }
}

/// A list of strings: `["a"]` on one line for one item, else one item a line.
fn hcl_list<S: AsRef<str>>(items: &[S], indent: &str) -> String {
    match items {
        [one] => format!("[{}]", hcl_string(one.as_ref())),
        _ => {
            let mut text = String::from("[\n");
            for item in items {
                let _ = writeln!(text, "{indent}  {},", hcl_string(item.as_ref()));
            }
            text.push_str(indent);
            text.push(']');
            text
        }
    }
}

/// A quoted HCL string: `\` and `"` escaped, and `${` / `%{` doubled so that Terraform
/// reads them as text, not as an interpolation or a directive.
pub(crate) fn hcl_string(value: &str) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .replace("${", "$${")
        .replace("%{", "%%{");
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(prefixes: &[&str]) -> CacheScope {
        CacheScope {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "111122223333".into(),
            prefixes: prefixes.iter().map(|p| Prefix::parse(p).unwrap()).collect(),
        }
    }

    #[test]
    fn the_policy_grants_the_documented_actions_on_the_prefixes_repositories_only() {
        let doc = consumer_policy(&scope(&["quay", "k8s", "team/ghcr"]));
        let value = serde_json::to_value(&doc).unwrap();
        let repositories = serde_json::json!([
            "arn:aws:ecr:eu-west-1:111122223333:repository/k8s/*",
            "arn:aws:ecr:eu-west-1:111122223333:repository/quay/*",
            "arn:aws:ecr:eu-west-1:111122223333:repository/team/ghcr/*",
        ]);
        assert_eq!(
            value,
            serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "PtcGetAuthorizationToken",
                        "Effect": "Allow",
                        "Action": ["ecr:GetAuthorizationToken"],
                        "Resource": ["*"],
                    },
                    {
                        "Sid": "PtcPullCachedImages",
                        "Effect": "Allow",
                        "Action": [
                            "ecr:BatchCheckLayerAvailability",
                            "ecr:BatchGetImage",
                            "ecr:GetDownloadUrlForLayer",
                        ],
                        "Resource": repositories,
                    },
                    {
                        "Sid": "PtcPullThroughCache",
                        "Effect": "Allow",
                        "Action": ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"],
                        "Resource": repositories,
                    },
                ],
            })
        );
    }

    #[test]
    fn a_root_rule_covers_every_repository_and_repeats_are_dropped() {
        assert_eq!(
            repository_arns(&scope(&["quay", "ROOT", "k8s"])),
            ["arn:aws:ecr:eu-west-1:111122223333:repository/*"]
        );
        assert_eq!(
            repository_arns(&scope(&["quay", "quay/"])),
            ["arn:aws:ecr:eu-west-1:111122223333:repository/quay/*"]
        );
    }

    #[test]
    fn the_partition_follows_the_region_when_no_arn_tells_it() {
        let mut china = scope(&["quay"]);
        china.region = "cn-north-1".into();
        china.partition = partition_of_region(&china.region).into();
        assert_eq!(
            repository_arns(&china),
            ["arn:aws-cn:ecr:cn-north-1:111122223333:repository/quay/*"]
        );
        assert_eq!(partition_of_region("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_of_region("us-isob-east-1"), "aws-iso-b");
        assert_eq!(partition_of_region("us-iso-east-1"), "aws-iso");
        assert_eq!(partition_of_region("eu-west-1"), "aws");
    }

    #[test]
    fn json_is_the_document_itself() {
        let doc = consumer_policy(&scope(&["quay"]));
        let text = to_json(&doc);
        assert!(text.ends_with("}\n"));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, serde_json::to_value(&doc).unwrap());
    }

    #[test]
    fn terraform_is_laid_out_as_terraform_fmt_does() {
        let s = scope(&["quay", "k8s"]);
        let text = to_terraform(&consumer_policy(&s), &s);
        let body = text
            .lines()
            .skip_while(|l| l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            body,
            r#"data "aws_iam_policy_document" "ptc_consumer" {
  statement {
    sid       = "PtcGetAuthorizationToken"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid    = "PtcPullCachedImages"
    effect = "Allow"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [
      "arn:aws:ecr:eu-west-1:111122223333:repository/k8s/*",
      "arn:aws:ecr:eu-west-1:111122223333:repository/quay/*",
    ]
  }

  statement {
    sid    = "PtcPullThroughCache"
    effect = "Allow"
    actions = [
      "ecr:BatchImportUpstreamImage",
      "ecr:CreateRepository",
    ]
    resources = [
      "arn:aws:ecr:eu-west-1:111122223333:repository/k8s/*",
      "arn:aws:ecr:eu-west-1:111122223333:repository/quay/*",
    ]
  }
}"#
        );
    }

    /// The Terraform text read back by an HCL parser (hcl-rs): the same statements, actions
    /// and resources as the JSON document.
    #[test]
    fn terraform_parses_as_hcl_to_the_same_statements() {
        for prefixes in [&["quay", "k8s", "team/ghcr"][..], &["ROOT"][..]] {
            let s = scope(prefixes);
            let doc = consumer_policy(&s);
            let parsed = terraform_statements(&to_terraform(&doc, &s));
            let expected: Vec<_> = doc
                .statements
                .iter()
                .map(|st| {
                    (
                        st.sid.to_owned(),
                        st.effect.to_owned(),
                        st.actions.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                        st.resources.clone(),
                    )
                })
                .collect();
            assert_eq!(parsed, expected);
        }
    }

    #[test]
    fn hcl_strings_are_read_back_as_written_never_interpolated() {
        let raw = r#"a"b\c${x}%{if y}z%{endif}"#;
        assert_eq!(hcl_string(raw), r#""a\"b\\c$${x}%%{if y}z%%{endif}""#);
        let body: hcl::Body = hcl::from_str(&format!("v = {}\n", hcl_string(raw))).unwrap();
        let expr = body.attributes().next().unwrap().expr().clone();
        // With `x` and `y` undefined, an interpolation or a directive would fail to evaluate.
        let value = hcl::eval::Evaluate::evaluate(&expr, &hcl::eval::Context::new()).unwrap();
        assert_eq!(value.as_str(), Some(raw));
    }

    type Parsed = (String, String, Vec<String>, Vec<String>);

    /// `(sid, effect, actions, resources)` of each `statement` block of the one
    /// `data "aws_iam_policy_document" "ptc_consumer"` block of `text`.
    pub(crate) fn terraform_statements(text: &str) -> Vec<Parsed> {
        let body: hcl::Body = hcl::from_str(text).expect("valid HCL");
        let blocks: Vec<&hcl::Block> = body.blocks().collect();
        assert_eq!(blocks.len(), 1, "{text}");
        let data = blocks[0];
        assert_eq!(data.identifier(), "data");
        let labels: Vec<&str> = data.labels().iter().map(|l| l.as_str()).collect();
        assert_eq!(labels, ["aws_iam_policy_document", TERRAFORM_NAME]);
        data.body()
            .blocks()
            .map(|statement| {
                assert_eq!(statement.identifier(), "statement");
                let attribute = |name: &str| -> hcl::Value {
                    let expr = statement
                        .body()
                        .attributes()
                        .find(|a| a.key() == name)
                        .unwrap_or_else(|| panic!("no {name} in {text}"))
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
                (
                    attribute("sid").as_str().unwrap().to_owned(),
                    attribute("effect").as_str().unwrap().to_owned(),
                    strings(attribute("actions")),
                    strings(attribute("resources")),
                )
            })
            .collect()
    }
}
