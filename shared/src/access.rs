//! Who may pull through the cache, as far as the cache account decides: a small, explicit
//! evaluator of IAM resource-based policies (the registry permissions policy, a repository
//! policy, a creation template's `repositoryPolicy`) for one consumer, one action and one
//! resource, and the three kinds of pull through the cache with the actions each needs.
//!
//! The grammar and the evaluation follow the IAM user guide:
//! - elements (`Effect`, `Principal`, `Action`/`NotAction`, `Resource`/`NotResource`,
//!   `Condition`), a string or a list wherever a list may be:
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html>;
//! - `"Principal": "*"` is `{"AWS": "*"}`; an account ID is its `arn:<partition>:iam::<id>:root`
//!   and means every identity of that account; a role or user ARN means that identity only;
//!   no wildcard inside a principal ARN ("You cannot use a wildcard to match part of a
//!   principal name or ARN"):
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html>;
//! - action names are case-insensitive, `*` and `?` wildcards:
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html>;
//!   ARNs are case-sensitive, `*` and `?` wildcards in any segment:
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html>;
//! - a resource-based policy's statement without `Resource` means the resource the policy is
//!   attached to (ECR repository policies are written so);
//! - conditions: every operator and key must hold (AND), a key's values are alternatives (OR);
//!   condition key names are case-insensitive, `StringEquals`/`StringNotEquals` compare
//!   exactly, `StringLike`/`StringNotLike` with `*` and `?`:
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html>,
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html>;
//! - an explicit `Deny` wins over any `Allow`; without an `Allow`, the request is denied
//!   (implicitly):
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>.
//!
//! **Never a silent answer.** What the evaluator does not know gives the verdict
//! [`Outcome::Unknown`] with the reason, never an allow or a deny: a condition operator other
//! than the four string ones above, a condition key other than `aws:PrincipalOrgID` and
//! `aws:PrincipalAccount` (or one whose value the consumer's description does not give, such
//! as the organization of an account named alone), a policy variable (`${...}`),
//! `NotPrincipal`, a wildcard inside a principal ARN, an `Allow` that covers only part of the
//! repositories asked about, a statement or a document that is not what the grammar says.
//! A statement that cannot apply for a reason the evaluator does know (another principal,
//! another action, another resource, a condition known to be false) is left out whatever its
//! other elements hold: the Lambda service's `LambdaECRImageRetrievalPolicy` (a `Service`
//! principal, an `aws:sourceArn` condition) says nothing about a consumer account.
//!
//! Not covered (the consumer's half, and what only AWS sees): the consumer's identity
//! policies, permissions boundaries and session policies; service and resource control
//! policies; VPC endpoint policies; tags; and whether a principal the policy names still
//! exists.

use serde::Serialize;
use serde_json::Value;

/// `ecr:CreateRepository`: a first pull creates the repository.
pub const CREATE_REPOSITORY: &str = "ecr:CreateRepository";
/// `ecr:BatchImportUpstreamImage`: a first pull, or a new tag, imports the image.
pub const BATCH_IMPORT_UPSTREAM_IMAGE: &str = "ecr:BatchImportUpstreamImage";
/// `ecr:BatchGetImage`: a pull reads the manifest.
pub const BATCH_GET_IMAGE: &str = "ecr:BatchGetImage";
/// `ecr:GetDownloadUrlForLayer`: a pull downloads the layers.
pub const GET_DOWNLOAD_URL_FOR_LAYER: &str = "ecr:GetDownloadUrlForLayer";

/// Who asks: what a `Principal` element can name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Principal {
    /// Every identity of one account: a 12-digit account ID, or its
    /// `arn:<partition>:iam::<account>:root`. A statement naming the account (or `*`) applies;
    /// one naming a single role of it does not (it grants that role, not the account).
    Account {
        /// The 12-digit account ID.
        account: String,
    },
    /// One IAM role or user (`arn:aws:iam::<account>:role/<name>`), as its ARN. A statement
    /// naming this ARN, its account or `*` applies.
    Identity {
        /// The ARN, as configured.
        arn: String,
        /// The ARN's account, when it has a 12-digit one.
        account: Option<String>,
    },
    /// An account of an AWS Organization that no statement names by itself: what a grant to
    /// the organization (`PTC_PULL_ORG_ID`) stands for. A statement naming `*` applies; one
    /// naming an account or an ARN does not (it names someone else); its `aws:PrincipalAccount`
    /// is not known.
    OrgMember {
        /// The organization, `o-...`.
        org_id: String,
    },
}

/// A consumer of the cache: a principal of another account the settings grant pull
/// (`PTC_PULL_PRINCIPALS`, `PTC_PULL_ORG_ID`, or a prefix's own), as the evaluator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consumer {
    /// As people read it: the account ID or ARN as configured, or `any account of o-...`.
    pub name: String,
    /// What a `Principal` element is matched against.
    pub principal: Principal,
    /// The organization the consumer is known to belong to (`aws:PrincipalOrgID`): the
    /// organization of an [`Principal::OrgMember`]; `None` for a principal named alone, whose
    /// organization the settings do not say (a condition on it is then unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

/// The 12-digit account of an ARN (`arn:<partition>:<service>:<region>:<account>:...`).
fn arn_account(arn: &str) -> Option<&str> {
    let account = arn.strip_prefix("arn:")?.split(':').nth(3)?;
    is_account(account).then_some(account)
}

fn is_account(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// The account of `arn:<partition>:iam::<account>:root`, any partition.
fn root_account(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (_partition, rest) = rest.split_once(':')?;
    let account = rest.strip_prefix("iam::")?.strip_suffix(":root")?;
    is_account(account).then_some(account)
}

impl Consumer {
    /// A principal as `PTC_PULL_PRINCIPALS` holds it: a 12-digit account ID or its root ARN
    /// (the account), or the ARN of a role or user (that identity).
    pub fn principal(text: &str) -> Self {
        let text = text.trim();
        let principal = if is_account(text) {
            Principal::Account {
                account: text.to_owned(),
            }
        } else if let Some(account) = root_account(text) {
            Principal::Account {
                account: account.to_owned(),
            }
        } else {
            Principal::Identity {
                arn: text.to_owned(),
                account: arn_account(text).map(str::to_owned),
            }
        };
        Self {
            name: text.to_owned(),
            principal,
            org_id: None,
        }
    }

    /// Any account of the organization `org_id` (`PTC_PULL_ORG_ID`).
    pub fn organization(org_id: &str) -> Self {
        Self {
            name: format!("any account of {org_id}"),
            principal: Principal::OrgMember {
                org_id: org_id.to_owned(),
            },
            org_id: Some(org_id.to_owned()),
        }
    }

    /// The consumers of one set of pull grants: each principal, then the organization.
    pub fn from_grants(principals: &[String], org_id: Option<&str>) -> Vec<Self> {
        let mut out: Vec<Self> = principals.iter().map(|p| Self::principal(p)).collect();
        out.extend(org_id.map(Self::organization));
        out
    }

    /// The consumer's account, when it is one account (`aws:PrincipalAccount`).
    pub fn account(&self) -> Option<&str> {
        match &self.principal {
            Principal::Account { account } => Some(account),
            Principal::Identity { account, .. } => account.as_deref(),
            Principal::OrgMember { .. } => None,
        }
    }
}

/// What a request is made on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// One resource, by its ARN: an existing repository.
    Arn(String),
    /// Every resource whose ARN starts with this text and goes on: the repositories a rule
    /// prefix holds, `arn:aws:ecr:<region>:<account>:repository/<prefix>/` (`repository/` for
    /// `ROOT`), existing or still to be created by the cache.
    Under(String),
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Arn(arn) => f.write_str(arn),
            Self::Under(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// A resource-based policy, read once, with the name a verdict gives it (`registry policy`,
/// `the k8s creation template's repository policy`, ...).
#[derive(Debug, Clone)]
pub struct Policy {
    name: String,
    present: bool,
    statements: Result<Vec<Value>, String>,
}

impl Policy {
    /// The policy from its JSON text; `None` (or an empty text) is a policy that is not there,
    /// which allows nothing. A text that is not a policy document makes every verdict that
    /// reads it [`Outcome::Unknown`].
    pub fn parse(name: impl Into<String>, text: Option<&str>) -> Self {
        let name = name.into();
        let text = text.map(str::trim).filter(|t| !t.is_empty());
        let Some(text) = text else {
            return Self {
                name,
                present: false,
                statements: Ok(Vec::new()),
            };
        };
        let statements = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(doc)) => match doc.get("Statement") {
                Some(Value::Array(list)) => Ok(list.clone()),
                Some(one @ Value::Object(_)) => Ok(vec![one.clone()]),
                _ => Err(format!("{name} has no Statement list")),
            },
            Ok(_) => Err(format!("{name} is not a JSON object")),
            Err(err) => Err(format!("{name} is not JSON: {err}")),
        };
        Self {
            name,
            present: true,
            statements,
        }
    }

    /// The name verdicts give it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Is there a policy at all?
    pub fn is_present(&self) -> bool {
        self.present
    }
}

/// A verdict (serialised in kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// A statement allows it and none denies it.
    Allowed,
    /// A statement denies it, or none allows it.
    Denied,
    /// The evaluator cannot tell: the reason names the statement and what it could not
    /// evaluate. Counted as not allowed, never as allowed.
    Unknown,
}

/// The evaluator's answer for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Allowed, denied or unknown.
    pub outcome: Outcome,
    /// The statement that decided, e.g. `registry policy, statement PtcImportPrincipals` (a
    /// statement without `Sid` by its position); absent for an implicit deny (none allows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// Why, for a person.
    pub reason: String,
}

/// One request: who, what, on what.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Who asks.
    pub consumer: &'a Consumer,
    /// The action, e.g. `ecr:BatchGetImage`.
    pub action: &'a str,
    /// On what.
    pub resource: &'a Resource,
}

/// A three-valued match: yes, no, or the evaluator cannot tell (why).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Unknown(String),
}

impl Tri {
    /// All must hold: a `No` anywhere is `No`; else the first `Unknown`; else `Yes`.
    fn all(items: impl IntoIterator<Item = Tri>) -> Tri {
        let mut unknown = None;
        for item in items {
            match item {
                Tri::No => return Tri::No,
                Tri::Unknown(why) => {
                    unknown.get_or_insert(why);
                }
                Tri::Yes => {}
            }
        }
        unknown.map_or(Tri::Yes, Tri::Unknown)
    }

    /// One must hold: a `Yes` anywhere is `Yes`; else the first `Unknown`; else `No`.
    fn any(items: impl IntoIterator<Item = Tri>) -> Tri {
        let mut unknown = None;
        for item in items {
            match item {
                Tri::Yes => return Tri::Yes,
                Tri::Unknown(why) => {
                    unknown.get_or_insert(why);
                }
                Tri::No => {}
            }
        }
        unknown.map_or(Tri::No, Tri::Unknown)
    }
}

/// How much of the resources asked about a `Resource` element reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cover {
    All,
    Part,
    None,
}

/// A string or a list of strings; `None` when it is anything else.
fn strings(value: &Value) -> Option<Vec<&str>> {
    match value {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// IAM's wildcards as an automaton over the pattern's positions: the positions reachable
/// after reading `text` (a `*` matches any run of characters, `?` one character).
fn glob_states(pattern: &[char], text: &str) -> Vec<bool> {
    let close = |states: &mut Vec<bool>| {
        for i in 0..pattern.len() {
            if states[i] && pattern[i] == '*' {
                states[i + 1] = true;
            }
        }
    };
    let mut states = vec![false; pattern.len() + 1];
    states[0] = true;
    close(&mut states);
    for c in text.chars() {
        let mut next = vec![false; pattern.len() + 1];
        for i in 0..pattern.len() {
            if !states[i] {
                continue;
            }
            match pattern[i] {
                '*' => next[i] = true,
                '?' => next[i + 1] = true,
                p if p == c => next[i + 1] = true,
                _ => {}
            }
        }
        close(&mut next);
        if !next.iter().any(|s| *s) {
            return next;
        }
        states = next;
    }
    states
}

fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    glob_states(&pattern, text)[pattern.len()]
}

/// How much of `resource` the ARN pattern reaches: for one ARN, all or none; for every ARN
/// under a prefix, all of them (the pattern goes on with nothing but `*` after the prefix),
/// part (some text after the prefix matches), or none.
fn cover(pattern: &str, resource: &Resource) -> Cover {
    match resource {
        Resource::Arn(arn) => {
            if glob(pattern, arn) {
                Cover::All
            } else {
                Cover::None
            }
        }
        Resource::Under(prefix) => {
            let chars: Vec<char> = pattern.chars().collect();
            let states = glob_states(&chars, prefix);
            let open: Vec<usize> = (0..chars.len()).filter(|i| states[*i]).collect();
            if open.iter().any(|i| chars[*i..].iter().all(|c| *c == '*')) {
                Cover::All
            } else if open.is_empty() {
                Cover::None
            } else {
                Cover::Part
            }
        }
    }
}

/// How a `Principal` element names the consumer. `deny`: the statement denies, so a
/// principal that may be one of the consumer's (an account of its organization, an
/// identity of its account) is `Unknown`, never `No`: "some of them are denied" is not
/// "none is" (IAM policy evaluation logic, an explicit deny in any policy wins:
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>).
fn principal_names(element: &Value, consumer: &Consumer, deny: bool) -> Tri {
    let map = match element {
        Value::String(s) if s == "*" => return Tri::Yes,
        Value::Object(map) => map,
        other => return Tri::Unknown(format!("Principal {other} is not a principal element")),
    };
    let mut results = Vec::new();
    for (kind, values) in map {
        let Some(values) = strings(values) else {
            return Tri::Unknown(format!("Principal {kind} is not a string or a list"));
        };
        if kind != "AWS" {
            // Service, Federated, CanonicalUser: never an IAM principal of another account.
            results.push(Tri::No);
            continue;
        }
        results.extend(
            values
                .into_iter()
                .map(|v| aws_principal_names(v, consumer, deny)),
        );
    }
    Tri::any(results)
}

/// How one `{"AWS": ...}` value names the consumer.
fn aws_principal_names(value: &str, consumer: &Consumer, deny: bool) -> Tri {
    if value == "*" {
        return Tri::Yes;
    }
    let named_account = if is_account(value) {
        Some(value)
    } else {
        root_account(value)
    };
    if let Some(named) = named_account {
        return match &consumer.principal {
            // An account of the organization may be one of its members.
            Principal::OrgMember { .. } if deny => Tri::Unknown(format!(
                "the statement denies account {named}, which may be a member of {}",
                consumer.name
            )),
            Principal::OrgMember { .. } => Tri::No,
            Principal::Account { account } => bool_tri(account == named),
            Principal::Identity {
                account: Some(account),
                ..
            } => bool_tri(account == named),
            Principal::Identity { arn, account: None } => Tri::Unknown(format!(
                "the account of {arn} is not known, and the statement names account {named}"
            )),
        };
    }
    if value.contains('*') || value.contains('?') {
        return Tri::Unknown(format!(
            "principal {value} has a wildcard inside an ARN, which IAM does not allow"
        ));
    }
    // A role session (`arn:<p>:sts::<account>:assumed-role/<role>/<session>`) of the
    // consumer's role: nodes pull as such sessions, so a Deny of one refuses some of the
    // role's pulls ("Role session principals", IAM Principal element:
    // <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html>).
    if let (true, Principal::Identity { arn, .. }) = (deny, &consumer.principal)
        && let Some(session_role) = value
            .split_once(":assumed-role/")
            .and_then(|(_, rest)| rest.split('/').next())
        && arn_account(value) == arn_account(arn)
        && arn.rsplit('/').next() == Some(session_role)
    {
        return Tri::Unknown(format!("the statement denies {value}, a session of {arn}"));
    }
    match &consumer.principal {
        Principal::Identity { arn, .. } => bool_tri(arn == value),
        // A denied identity of the consumer's account (a cluster role) is one of the
        // principals the grant is for: some of them are refused.
        Principal::Account { account } if deny && arn_account(value) == Some(account.as_str()) => {
            Tri::Unknown(format!(
                "the statement denies {value}, an identity of account {account}"
            ))
        }
        Principal::OrgMember { .. } if deny => Tri::Unknown(format!(
            "the statement denies {value}, which may belong to a member of {}",
            consumer.name
        )),
        // The statement names one identity (or a unique ID), not every identity of the
        // account nor an unnamed organization member.
        Principal::Account { .. } | Principal::OrgMember { .. } => Tri::No,
    }
}

fn bool_tri(yes: bool) -> Tri {
    if yes { Tri::Yes } else { Tri::No }
}

/// The request context's value of a condition key the evaluator knows, for this consumer:
/// `Ok(value)`, or why it is not known.
fn context_value<'a>(key: &str, consumer: &'a Consumer) -> Result<&'a str, String> {
    match key.to_ascii_lowercase().as_str() {
        "aws:principalorgid" => consumer.org_id.as_deref().ok_or_else(|| {
            format!(
                "the organization of {} is not known (aws:PrincipalOrgID)",
                consumer.name
            )
        }),
        "aws:principalaccount" => consumer.account().ok_or_else(|| {
            format!(
                "the account of {} is not known (aws:PrincipalAccount)",
                consumer.name
            )
        }),
        _ => Err(format!("condition key {key} is not evaluated")),
    }
}

/// Does the `Condition` element hold for the consumer?
fn condition_holds(condition: &Value, consumer: &Consumer) -> Tri {
    let Value::Object(operators) = condition else {
        return Tri::Unknown("Condition is not an object".into());
    };
    let mut results = Vec::new();
    for (operator, clauses) in operators {
        let (negated, like) = match operator.as_str() {
            "StringEquals" => (false, false),
            "StringNotEquals" => (true, false),
            "StringLike" => (false, true),
            "StringNotLike" => (true, true),
            other => {
                results.push(Tri::Unknown(format!(
                    "condition operator {other} is not evaluated"
                )));
                continue;
            }
        };
        let Value::Object(clauses) = clauses else {
            results.push(Tri::Unknown(format!("{operator} is not an object")));
            continue;
        };
        for (key, values) in clauses {
            let Some(values) = strings(values) else {
                results.push(Tri::Unknown(format!(
                    "{operator} {key}: values are not strings"
                )));
                continue;
            };
            if values.iter().any(|v| v.contains("${")) {
                results.push(Tri::Unknown(format!(
                    "{operator} {key}: a policy variable is not evaluated"
                )));
                continue;
            }
            let actual = match context_value(key, consumer) {
                Ok(actual) => actual,
                Err(why) => {
                    results.push(Tri::Unknown(why));
                    continue;
                }
            };
            let hit = values
                .iter()
                .any(|v| if like { glob(v, actual) } else { *v == actual });
            results.push(bool_tri(hit != negated));
        }
    }
    Tri::all(results)
}

/// What one statement says about a request.
enum Judged {
    NotApplicable,
    Allow,
    Deny(String),
    MaybeAllow(String),
    MaybeDeny(String),
}

fn judge(statement: &Value, request: &Request<'_>) -> Judged {
    let Value::Object(s) = statement else {
        return Judged::MaybeDeny("a statement that is not an object".into());
    };
    let deny = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => false,
        Some("Deny") => true,
        _ => return Judged::MaybeDeny("an Effect that is neither Allow nor Deny".into()),
    };
    let action = match (s.get("Action"), s.get("NotAction")) {
        (Some(list), None) | (None, Some(list)) => match strings(list) {
            Some(patterns) => {
                let hit = patterns.iter().any(|p| {
                    glob(
                        &p.to_ascii_lowercase(),
                        &request.action.to_ascii_lowercase(),
                    )
                });
                bool_tri(hit == s.contains_key("Action"))
            }
            None => Tri::Unknown("Action is not a string or a list".into()),
        },
        _ => Tri::Unknown("not exactly one of Action and NotAction".into()),
    };
    let resource = match (s.get("Resource"), s.get("NotResource")) {
        // A resource-based policy's statement without Resource: the resource it is on.
        (None, None) => Ok(Cover::All),
        (Some(list), None) | (None, Some(list)) => match strings(list) {
            Some(patterns) if patterns.iter().any(|p| p.contains("${")) => {
                Err("a policy variable in Resource is not evaluated".to_owned())
            }
            Some(patterns) => {
                let covers: Vec<Cover> = patterns
                    .iter()
                    .map(|p| cover(p, request.resource))
                    .collect();
                let any = |c: Cover| covers.contains(&c);
                Ok(if s.contains_key("Resource") {
                    if any(Cover::All) {
                        Cover::All
                    } else if any(Cover::Part) {
                        Cover::Part
                    } else {
                        Cover::None
                    }
                } else if any(Cover::All) {
                    Cover::None
                } else if any(Cover::Part) {
                    Cover::Part
                } else {
                    Cover::All
                })
            }
            None => Err("Resource is not a string or a list".to_owned()),
        },
        _ => Err("both Resource and NotResource".to_owned()),
    };
    let principal = match (s.get("Principal"), s.get("NotPrincipal")) {
        (Some(p), None) => principal_names(p, request.consumer, deny),
        (None, Some(_)) => Tri::Unknown("NotPrincipal is not evaluated".into()),
        _ => Tri::Unknown("no Principal (a resource-based policy names one)".into()),
    };
    let condition = s
        .get("Condition")
        .map_or(Tri::Yes, |c| condition_holds(c, request.consumer));
    let resource_tri = match &resource {
        Ok(Cover::None) => Tri::No,
        Ok(_) => Tri::Yes,
        Err(why) => Tri::Unknown(why.clone()),
    };
    match Tri::all([action, resource_tri, principal, condition]) {
        Tri::No => Judged::NotApplicable,
        Tri::Unknown(why) if deny => Judged::MaybeDeny(why),
        Tri::Unknown(why) => Judged::MaybeAllow(why),
        Tri::Yes if deny => Judged::Deny(match resource {
            Ok(Cover::Part) => format!(
                "denies {} to {} on part of {}",
                request.action, request.consumer.name, request.resource
            ),
            _ => format!(
                "denies {} to {} on {}",
                request.action, request.consumer.name, request.resource
            ),
        }),
        Tri::Yes if resource == Ok(Cover::Part) => Judged::MaybeAllow(format!(
            "allows {} on part of {} only",
            request.action, request.resource
        )),
        Tri::Yes => Judged::Allow,
    }
}

/// `<policy>, statement <Sid>`, or by its position when it has no `Sid`.
fn statement_name(policy: &Policy, statement: &Value, index: usize) -> String {
    match statement.get("Sid").and_then(Value::as_str) {
        Some(sid) if !sid.is_empty() => format!("{}, statement {sid}", policy.name),
        _ => format!("{}, statement {} (no Sid)", policy.name, index + 1),
    }
}

/// Evaluate `request` under every policy of `policies` at once (all are the resource
/// account's resource-based policies: an explicit `Deny` in any of them wins, an `Allow` in
/// any of them allows): [`Outcome::Denied`] with the statement when one denies; otherwise
/// [`Outcome::Unknown`] when a statement that might deny cannot be evaluated; otherwise
/// [`Outcome::Allowed`] with the statement when one allows; otherwise unknown when one that
/// might allow cannot be evaluated; otherwise denied, implicitly (no statement allows).
pub fn evaluate(policies: &[&Policy], request: &Request<'_>) -> Decision {
    let mut maybe_deny: Option<(String, String)> = None;
    let mut allow: Option<String> = None;
    let mut maybe_allow: Option<(String, String)> = None;
    for policy in policies {
        let statements = match &policy.statements {
            Ok(list) => list,
            Err(why) => {
                maybe_deny.get_or_insert((policy.name.clone(), why.clone()));
                continue;
            }
        };
        for (i, statement) in statements.iter().enumerate() {
            match judge(statement, request) {
                Judged::NotApplicable => {}
                Judged::Deny(reason) => {
                    return Decision {
                        outcome: Outcome::Denied,
                        statement: Some(statement_name(policy, statement, i)),
                        reason,
                    };
                }
                Judged::Allow => {
                    allow.get_or_insert_with(|| statement_name(policy, statement, i));
                }
                Judged::MaybeDeny(why) => {
                    maybe_deny.get_or_insert((statement_name(policy, statement, i), why));
                }
                Judged::MaybeAllow(why) => {
                    maybe_allow.get_or_insert((statement_name(policy, statement, i), why));
                }
            }
        }
    }
    let subject = format!(
        "{} to {} on {}",
        request.action, request.consumer.name, request.resource
    );
    if let Some((statement, why)) = maybe_deny {
        return Decision {
            outcome: Outcome::Unknown,
            reason: format!("{statement} may deny {subject}: {why}"),
            statement: Some(statement),
        };
    }
    if let Some(statement) = allow {
        return Decision {
            outcome: Outcome::Allowed,
            reason: format!("{statement} allows {subject}"),
            statement: Some(statement),
        };
    }
    if let Some((statement, why)) = maybe_allow {
        return Decision {
            outcome: Outcome::Unknown,
            reason: format!("{statement} may allow {subject}: {why}"),
            statement: Some(statement),
        };
    }
    let names: Vec<String> = policies
        .iter()
        .map(|p| {
            if p.present {
                p.name.clone()
            } else {
                format!("{} (there is none)", p.name)
            }
        })
        .collect();
    Decision {
        outcome: Outcome::Denied,
        statement: None,
        reason: format!("no statement of {} allows {subject}", names.join(" or ")),
    }
}

/// The three kinds of pull through the cache, and what the cache account must allow for
/// each (ECR user guide, "IAM permissions required to sync an upstream registry with an
/// Amazon ECR private registry",
/// <https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-iam.html>).
/// Serialised in kebab-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullKind {
    /// An image not cached yet, into a repository that does not exist yet:
    /// `ecr:CreateRepository` ("can be granted by either an identity-based IAM policy or the
    /// private registry permissions policy": across accounts, the registry policy) and
    /// `ecr:BatchImportUpstreamImage` (there is no repository policy yet: the registry
    /// policy).
    FirstPull,
    /// A new tag of an image whose repository is cached: `ecr:BatchImportUpstreamImage`, from
    /// the registry policy or the repository's policy.
    NewTag,
    /// What the cache holds: `ecr:BatchGetImage` and `ecr:GetDownloadUrlForLayer`, from the
    /// repository's policy (for a repository the cache will create, its creation template's
    /// `repositoryPolicy`), and from the registry policy under registry policy scope V2 only.
    CachedPull,
}

impl PullKind {
    /// Every kind, in the order a repository lives them.
    pub const ALL: [PullKind; 3] = [Self::FirstPull, Self::NewTag, Self::CachedPull];

    /// The actions the cache account must allow.
    pub fn actions(self) -> &'static [&'static str] {
        match self {
            Self::FirstPull => &[CREATE_REPOSITORY, BATCH_IMPORT_UPSTREAM_IMAGE],
            Self::NewTag => &[BATCH_IMPORT_UPSTREAM_IMAGE],
            Self::CachedPull => &[BATCH_GET_IMAGE, GET_DOWNLOAD_URL_FOR_LAYER],
        }
    }

    /// `first pull`, `new tag`, `cached pull`.
    pub fn label(self) -> &'static str {
        match self {
            Self::FirstPull => "first pull",
            Self::NewTag => "new tag",
            Self::CachedPull => "cached pull",
        }
    }
}

/// The cache account's side of a pull: its policies, for some of its repositories.
#[derive(Debug, Clone, Copy)]
pub struct CacheSide<'a> {
    /// The cache account (12 digits). A consumer of the same account needs no resource-based
    /// policy (its identity policy decides); only an explicit `Deny` stops it.
    pub account: &'a str,
    /// The registry permissions policy (`GetRegistryPolicy`).
    pub registry_policy: &'a Policy,
    /// The repository policy of the repositories asked about: an existing repository's own
    /// (`GetRepositoryPolicy`), or, for the repositories the cache will create, the
    /// `repositoryPolicy` of the creation template they will get.
    pub repository_policy: &'a Policy,
    /// The repositories asked about.
    pub resource: &'a Resource,
}

/// The verdict on one kind of pull for one consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullVerdict {
    /// Allowed when every action of the kind is; denied when one is; else unknown.
    pub outcome: Outcome,
    /// The action that decided a denial (the first denied) or an unknown; absent when
    /// allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The statement that decided (for an allow, the first action's); absent for an implicit
    /// deny.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// Why, for a person.
    pub reason: String,
}

/// One action of a kind of pull, under the policies that count for it.
fn decide(kind: PullKind, action: &str, consumer: &Consumer, side: &CacheSide<'_>) -> Decision {
    let request = Request {
        consumer,
        action,
        resource: side.resource,
    };
    let registry = side.registry_policy;
    let repository = side.repository_policy;
    let decision = match kind {
        PullKind::FirstPull => evaluate(&[registry], &request),
        PullKind::NewTag => evaluate(&[registry, repository], &request),
        PullKind::CachedPull => {
            // The registry policy counts for the pull actions under scope V2 (ECR's default)
            // and not under V1 ("Amazon ECR only enforces the following permissions at the
            // private registry level": the three registry actions); the scope is an account
            // setting (GetAccountSetting REGISTRY_POLICY_SCOPE) that is not read here, so a
            // verdict that depends on it is unknown.
            // https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry-permissions-account-settings.html
            let with = evaluate(&[registry, repository], &request);
            let without = evaluate(&[repository], &request);
            if with.outcome == without.outcome {
                without
            } else {
                Decision {
                    outcome: Outcome::Unknown,
                    reason: format!(
                        "the registry policy decides, and it counts for {action} only under registry policy scope V2 (ECR's default; the scope is not read): with it, {}; without it, {}",
                        with.reason, without.reason
                    ),
                    statement: with.statement.or(without.statement),
                }
            }
        }
    };
    if consumer.account() == Some(side.account)
        && !(decision.outcome == Outcome::Denied && decision.statement.is_some())
        && decision.outcome != Outcome::Unknown
    {
        return Decision {
            outcome: Outcome::Allowed,
            statement: decision.statement,
            reason: format!(
                "{} is of the cache account: its own identity policy decides, and no statement denies {action}",
                consumer.name
            ),
        };
    }
    decision
}

/// May `consumer` make this kind of pull, as far as the cache account's policies say? Every
/// action of the kind is evaluated (see [`PullKind`] for the policies that count for each);
/// the first denied action decides, else the first unknown one, else it is allowed.
pub fn pull(kind: PullKind, consumer: &Consumer, side: &CacheSide<'_>) -> PullVerdict {
    let decisions: Vec<(&str, Decision)> = kind
        .actions()
        .iter()
        .map(|action| (*action, decide(kind, action, consumer, side)))
        .collect();
    let first = |outcome: Outcome| decisions.iter().find(|(_, d)| d.outcome == outcome);
    if let Some((action, d)) = first(Outcome::Denied).or_else(|| first(Outcome::Unknown)) {
        return PullVerdict {
            outcome: d.outcome,
            action: Some((*action).to_owned()),
            statement: d.statement.clone(),
            reason: d.reason.clone(),
        };
    }
    PullVerdict {
        outcome: Outcome::Allowed,
        action: None,
        statement: decisions.first().and_then(|(_, d)| d.statement.clone()),
        reason: decisions
            .iter()
            .map(|(_, d)| d.reason.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CACHE: &str = "111122223333";
    const K8S: &str = "arn:aws:ecr:us-east-1:111122223333:repository/k8s/";

    fn policy(name: &str, doc: Value) -> Policy {
        Policy::parse(name, Some(&doc.to_string()))
    }

    fn under_k8s() -> Resource {
        Resource::Under(K8S.into())
    }

    fn decide_one(doc: Value, consumer: &Consumer, action: &str, resource: &Resource) -> Decision {
        let p = policy("registry policy", doc);
        evaluate(
            &[&p],
            &Request {
                consumer,
                action,
                resource,
            },
        )
    }

    fn outcome(doc: Value, consumer: &Consumer, action: &str) -> Outcome {
        decide_one(doc, consumer, action, &under_k8s()).outcome
    }

    /// The ECR user guide's registry policy for pull through cache, "Granting registry
    /// permissions for pull through cache in Amazon ECR"
    /// (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry-permissions-create-pullthroughcache.html>):
    /// one role, the two registry actions, the rule prefix's repositories.
    fn user_guide_registry_policy() -> Value {
        json!({"Version": "2012-10-17", "Statement": [{
            "Sid": "PullThroughCacheFromReadOnlyRole",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::222233334444:role/example-role"},
            "Action": ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"],
            "Resource": "arn:aws:ecr:us-east-1:111122223333:repository/k8s/*"
        }]})
    }

    /// The statements lifecycle-fixer writes in the registry policy
    /// (`lifecycle_fixer::registry::desired_statements`, the product's own shape).
    fn product_registry_policy() -> Value {
        json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "PtcImportPrincipals", "Effect": "Allow",
             "Principal": {"AWS": ["arn:aws:iam::222233334444:root"]},
             "Action": ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"],
             "Resource": ["arn:aws:ecr:us-east-1:111122223333:repository/k8s/*",
                          "arn:aws:ecr:us-east-1:111122223333:repository/quay/*"]},
            {"Sid": "PtcImportOrganization", "Effect": "Allow", "Principal": "*",
             "Action": ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"],
             "Resource": ["arn:aws:ecr:us-east-1:111122223333:repository/k8s/*"],
             "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}}
        ]})
    }

    #[test]
    fn the_user_guides_registry_policy_grants_its_role_and_nobody_else() {
        let role = Consumer::principal("arn:aws:iam::222233334444:role/example-role");
        let other_role = Consumer::principal("arn:aws:iam::222233334444:role/nodes");
        let account = Consumer::principal("222233334444");
        let doc = user_guide_registry_policy();
        let d = decide_one(doc.clone(), &role, CREATE_REPOSITORY, &under_k8s());
        assert_eq!(d.outcome, Outcome::Allowed, "{d:?}");
        assert_eq!(
            d.statement.as_deref(),
            Some("registry policy, statement PullThroughCacheFromReadOnlyRole")
        );
        // Another role of the account, and the account as a whole, are not that role.
        assert_eq!(
            outcome(doc.clone(), &other_role, CREATE_REPOSITORY),
            Outcome::Denied
        );
        assert_eq!(
            outcome(doc.clone(), &account, CREATE_REPOSITORY),
            Outcome::Denied
        );
        // The pull actions are not in it.
        let d = decide_one(doc.clone(), &role, BATCH_GET_IMAGE, &under_k8s());
        assert_eq!(d.outcome, Outcome::Denied);
        assert!(d.statement.is_none(), "an implicit deny: {d:?}");
        assert!(d.reason.contains("no statement of registry policy allows"));
        // Another prefix's repositories are not in it.
        let quay = Resource::Under("arn:aws:ecr:us-east-1:111122223333:repository/quay/".into());
        assert_eq!(
            decide_one(doc, &role, CREATE_REPOSITORY, &quay).outcome,
            Outcome::Denied
        );
    }

    #[test]
    fn the_products_statements_grant_principals_and_the_organization() {
        let doc = product_registry_policy();
        let account = Consumer::principal("222233334444");
        let role_of_account = Consumer::principal("arn:aws:iam::222233334444:role/nodes");
        let org = Consumer::organization("o-a1b2c3d4e5");
        let other_org = Consumer::organization("o-zzzzzzzzzz");
        for c in [&account, &role_of_account, &org] {
            for action in [CREATE_REPOSITORY, BATCH_IMPORT_UPSTREAM_IMAGE] {
                assert_eq!(outcome(doc.clone(), c, action), Outcome::Allowed, "{c:?}");
            }
        }
        assert_eq!(
            outcome(doc.clone(), &other_org, CREATE_REPOSITORY),
            Outcome::Denied
        );
        // An account named alone whose organization is not known: PtcImportOrganization
        // cannot be evaluated for it, so only a definite grant makes it allowed.
        let stranger = Consumer::principal("333344445555");
        let d = decide_one(doc, &stranger, CREATE_REPOSITORY, &under_k8s());
        assert_eq!(d.outcome, Outcome::Unknown, "{d:?}");
        assert!(
            d.reason
                .contains("organization of 333344445555 is not known"),
            "{d:?}"
        );
    }

    #[test]
    fn a_deny_of_some_of_the_consumers_principals_is_not_a_pass() {
        // Review cases: an organization granted, a Deny naming one member account; an
        // account granted, a Deny naming its cluster role. Some of the consumer's principals
        // are refused: never "allowed" (an explicit deny wins, IAM evaluation logic).
        let allow_and_deny = |deny_principal: &str| {
            json!({"Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "ecr:CreateRepository", "Resource": "*",
                 "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}},
                {"Effect": "Allow", "Principal": {"AWS": "222233334444"}, "Action": "ecr:CreateRepository", "Resource": "*"},
                {"Sid": "NoCluster", "Effect": "Deny", "Principal": {"AWS": deny_principal}, "Action": "ecr:CreateRepository", "Resource": "*"}
            ]})
        };
        let org = Consumer::organization("o-a1b2c3d4e5");
        let account = Consumer::principal("222233334444");
        assert_ne!(
            outcome(
                allow_and_deny("arn:aws:iam::222233334444:root"),
                &org,
                CREATE_REPOSITORY
            ),
            Outcome::Allowed
        );
        assert_ne!(
            outcome(
                allow_and_deny("arn:aws:iam::222233334444:role/cluster"),
                &account,
                CREATE_REPOSITORY
            ),
            Outcome::Allowed
        );
        // A Deny of a session of the granted role: some of its pulls are refused.
        let role = Consumer::principal("arn:aws:iam::222233334444:role/nodes");
        assert_ne!(
            outcome(
                allow_and_deny("arn:aws:sts::222233334444:assumed-role/nodes/i-0abc"),
                &role,
                CREATE_REPOSITORY
            ),
            Outcome::Allowed
        );
        // A Deny of another account's role does not concern this account.
        assert_eq!(
            outcome(
                allow_and_deny("arn:aws:iam::999988887777:role/cluster"),
                &account,
                CREATE_REPOSITORY
            ),
            Outcome::Allowed
        );
    }

    #[test]
    fn principal_forms() {
        let account = Consumer::principal("222233334444");
        let role = Consumer::principal("arn:aws:iam::222233334444:role/nodes");
        let org = Consumer::organization("o-a1b2c3d4e5");
        let allow = |principal: Value| json!({"Statement": {"Effect": "Allow", "Principal": principal, "Action": "ecr:CreateRepository", "Resource": "*"}});
        let cases: [(Value, [Outcome; 3]); 9] = [
            (json!("*"), [Outcome::Allowed; 3]),
            (json!({"AWS": "*"}), [Outcome::Allowed; 3]),
            (
                json!({"AWS": "222233334444"}),
                [Outcome::Allowed, Outcome::Allowed, Outcome::Denied],
            ),
            (
                json!({"AWS": "arn:aws:iam::222233334444:root"}),
                [Outcome::Allowed, Outcome::Allowed, Outcome::Denied],
            ),
            // Another partition's root ARN is the same account number.
            (
                json!({"AWS": ["arn:aws-cn:iam::222233334444:root"]}),
                [Outcome::Allowed, Outcome::Allowed, Outcome::Denied],
            ),
            (
                json!({"AWS": "arn:aws:iam::222233334444:role/nodes"}),
                [Outcome::Denied, Outcome::Allowed, Outcome::Denied],
            ),
            (
                json!({"AWS": "arn:aws:iam::999988887777:root"}),
                [Outcome::Denied; 3],
            ),
            (
                json!({"Service": "lambda.amazonaws.com"}),
                [Outcome::Denied; 3],
            ),
            (
                json!({"AWS": "arn:aws:iam::222233334444:role/*"}),
                [Outcome::Unknown; 3],
            ),
        ];
        for (principal, want) in cases {
            for (consumer, want) in [&account, &role, &org].into_iter().zip(want) {
                assert_eq!(
                    outcome(allow(principal.clone()), consumer, CREATE_REPOSITORY),
                    want,
                    "{principal} for {}",
                    consumer.name
                );
            }
        }
        let not_principal = json!({"Statement": {"Effect": "Deny", "NotPrincipal": {"AWS": "222233334444"}, "Action": "*", "Resource": "*"}});
        assert_eq!(
            outcome(not_principal, &account, CREATE_REPOSITORY),
            Outcome::Unknown
        );
    }

    #[test]
    fn actions_are_case_insensitive_with_wildcards_and_not_action() {
        let c = Consumer::principal("222233334444");
        let with = |action: Value| json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "222233334444"}, "Action": action, "Resource": "*"}]});
        for (action, want) in [
            (json!("ecr:*"), Outcome::Allowed),
            (json!("*"), Outcome::Allowed),
            (json!("ECR:batchimportupstreamimage"), Outcome::Allowed),
            (json!(["ecr:Batch*"]), Outcome::Allowed),
            (json!("ecr:BatchImportUpstreamImag?"), Outcome::Allowed),
            (json!("ecr:BatchGetImage"), Outcome::Denied),
            (json!("s3:*"), Outcome::Denied),
        ] {
            assert_eq!(
                outcome(with(action.clone()), &c, BATCH_IMPORT_UPSTREAM_IMAGE),
                want,
                "{action}"
            );
        }
        let not_action = json!({"Statement": {"Effect": "Allow", "Principal": "*", "NotAction": ["ecr:Delete*", "ecr:Put*"], "Resource": "*"}});
        assert_eq!(
            outcome(not_action.clone(), &c, BATCH_IMPORT_UPSTREAM_IMAGE),
            Outcome::Allowed
        );
        assert_eq!(
            outcome(not_action, &c, "ecr:DeleteRepository"),
            Outcome::Denied
        );
    }

    #[test]
    fn resources_cover_a_prefix_all_part_or_none() {
        let c = Consumer::principal("222233334444");
        let on = |resource: Value, effect: &str| json!({"Statement": {"Effect": effect, "Principal": "*", "Action": "ecr:CreateRepository", "Resource": resource}});
        for (resource, want) in [
            (json!("*"), Outcome::Allowed),
            (
                json!("arn:aws:ecr:us-east-1:111122223333:repository/*"),
                Outcome::Allowed,
            ),
            (
                json!("arn:aws:ecr:*:111122223333:repository/k8s/*"),
                Outcome::Allowed,
            ),
            (
                json!("arn:aws:ecr:us-east-1:111122223333:repository/k8s*"),
                Outcome::Allowed,
            ),
            // One repository of the prefix is not every repository of it.
            (
                json!("arn:aws:ecr:us-east-1:111122223333:repository/k8s/pause"),
                Outcome::Unknown,
            ),
            (
                json!("arn:aws:ecr:us-east-1:111122223333:repository/k8s/?*"),
                Outcome::Unknown,
            ),
            // ARNs are case-sensitive.
            (
                json!("arn:aws:ecr:us-east-1:111122223333:repository/K8S/*"),
                Outcome::Denied,
            ),
            (
                json!("arn:aws:ecr:us-east-1:999988887777:repository/*"),
                Outcome::Denied,
            ),
        ] {
            assert_eq!(
                outcome(on(resource.clone(), "Allow"), &c, CREATE_REPOSITORY),
                want,
                "{resource}"
            );
        }
        // A Deny of part of the prefix denies it (some of its repositories).
        let allow_all =
            json!({"Effect": "Allow", "Principal": "*", "Action": "ecr:*", "Resource": "*"});
        let deny_pause = json!({"Sid": "NoPause", "Effect": "Deny", "Principal": "*", "Action": "ecr:CreateRepository",
            "Resource": "arn:aws:ecr:us-east-1:111122223333:repository/k8s/pause"});
        let d = decide_one(
            json!({"Statement": [allow_all.clone(), deny_pause.clone()]}),
            &c,
            CREATE_REPOSITORY,
            &under_k8s(),
        );
        assert_eq!(
            (d.outcome, d.statement.as_deref()),
            (Outcome::Denied, Some("registry policy, statement NoPause"))
        );
        assert!(d.reason.contains("on part of"), "{d:?}");
        // One repository, exactly.
        let pause = Resource::Arn(format!("{K8S}pause"));
        let coredns = Resource::Arn(format!("{K8S}coredns"));
        let doc = json!({"Statement": [allow_all, deny_pause]});
        assert_eq!(
            decide_one(doc.clone(), &c, CREATE_REPOSITORY, &pause).outcome,
            Outcome::Denied
        );
        assert_eq!(
            decide_one(doc, &c, CREATE_REPOSITORY, &coredns).outcome,
            Outcome::Allowed
        );
        // NotResource: everything but another prefix.
        let not_quay = json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "ecr:*",
            "NotResource": "arn:aws:ecr:us-east-1:111122223333:repository/quay/*"}});
        assert_eq!(outcome(not_quay, &c, CREATE_REPOSITORY), Outcome::Allowed);
        let not_k8s = json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "ecr:*",
            "NotResource": "arn:aws:ecr:us-east-1:111122223333:repository/k8s/*"}});
        assert_eq!(outcome(not_k8s, &c, CREATE_REPOSITORY), Outcome::Denied);
    }

    #[test]
    fn an_explicit_deny_wins_wherever_it_is() {
        let c = Consumer::principal("222233334444");
        let registry = policy("registry policy", product_registry_policy());
        let repository = policy(
            "repository policy",
            json!({"Version": "2008-10-17", "Statement": [{"Sid": "NoImports", "Effect": "Deny",
                "Principal": {"AWS": "*"}, "Action": "ecr:BatchImportUpstreamImage"}]}),
        );
        let resource = under_k8s();
        let request = Request {
            consumer: &c,
            action: BATCH_IMPORT_UPSTREAM_IMAGE,
            resource: &resource,
        };
        let d = evaluate(&[&registry, &repository], &request);
        assert_eq!(d.outcome, Outcome::Denied);
        assert_eq!(
            d.statement.as_deref(),
            Some("repository policy, statement NoImports")
        );
    }

    /// A guardrail many organizations write: deny everyone outside the organization
    /// (IAM user guide, aws:PrincipalOrgID,
    /// <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalorgid>).
    #[test]
    fn conditions_on_the_organization_and_the_account() {
        let guardrail = json!({"Statement": [
            {"Sid": "Consumers", "Effect": "Allow", "Principal": "*", "Action": "ecr:*", "Resource": "*",
             "Condition": {"StringLike": {"aws:PrincipalAccount": ["2222*", "4444*"]}}},
            {"Sid": "OnlyOurOrganization", "Effect": "Deny", "Principal": "*", "Action": "ecr:*", "Resource": "*",
             "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}}
        ]});
        let mut in_org = Consumer::principal("222233334444");
        in_org.org_id = Some("o-a1b2c3d4e5".into());
        let mut outside = Consumer::principal("222233334444");
        outside.org_id = Some("o-zzzzzzzzzz".into());
        let unknown_org = Consumer::principal("222233334444");
        let org = Consumer::organization("o-a1b2c3d4e5");
        assert_eq!(
            outcome(guardrail.clone(), &in_org, CREATE_REPOSITORY),
            Outcome::Allowed
        );
        let d = decide_one(guardrail.clone(), &outside, CREATE_REPOSITORY, &under_k8s());
        assert_eq!(
            (d.outcome, d.statement.as_deref()),
            (
                Outcome::Denied,
                Some("registry policy, statement OnlyOurOrganization")
            )
        );
        let d = decide_one(
            guardrail.clone(),
            &unknown_org,
            CREATE_REPOSITORY,
            &under_k8s(),
        );
        assert_eq!(d.outcome, Outcome::Unknown, "{d:?}");
        assert!(d.reason.contains("OnlyOurOrganization may deny"), "{d:?}");
        // An organization member named by no one: its account is not known.
        let d = decide_one(guardrail, &org, CREATE_REPOSITORY, &under_k8s());
        assert_eq!(d.outcome, Outcome::Unknown, "{d:?}");
        assert!(d.reason.contains("aws:PrincipalAccount"), "{d:?}");
        // StringEquals with a list: any value; key names in any case.
        let listed = json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "ecr:*", "Resource": "*",
            "Condition": {"StringEquals": {"AWS:PrincipalAccount": ["999988887777", "222233334444"]}}}});
        assert_eq!(
            outcome(listed, &in_org, CREATE_REPOSITORY),
            Outcome::Allowed
        );
    }

    #[test]
    fn what_the_evaluator_does_not_know_is_unknown_never_an_allow_or_a_deny() {
        let c = Consumer::principal("222233334444");
        let allow_if = |condition: Value| json!({"Statement": {"Sid": "S", "Effect": "Allow", "Principal": "*", "Action": "ecr:*", "Resource": "*", "Condition": condition}});
        let deny_if = |condition: Value| {
            json!({"Statement": [
                {"Sid": "All", "Effect": "Allow", "Principal": "*", "Action": "ecr:*", "Resource": "*"},
                {"Sid": "S", "Effect": "Deny", "Principal": "*", "Action": "ecr:*", "Resource": "*", "Condition": condition}]})
        };
        for condition in [
            json!({"StringEquals": {"aws:SourceVpc": "vpc-1"}}),
            json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            json!({"StringEqualsIfExists": {"aws:PrincipalAccount": "222233334444"}}),
            json!({"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-a1b2c3d4e5/*"}}),
            json!({"StringEquals": {"aws:PrincipalAccount": "${aws:ResourceAccount}"}}),
            json!({"Bool": {"aws:SecureTransport": "true"}}),
        ] {
            for doc in [allow_if(condition.clone()), deny_if(condition.clone())] {
                let d = decide_one(doc, &c, CREATE_REPOSITORY, &under_k8s());
                assert_eq!(d.outcome, Outcome::Unknown, "{condition}: {d:?}");
                assert_eq!(d.statement.as_deref(), Some("registry policy, statement S"));
            }
        }
        // A condition known to be false leaves the statement out, whatever else it holds.
        let known_false = json!({"StringEquals": {"aws:PrincipalAccount": "999988887777"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}});
        assert_eq!(
            outcome(allow_if(known_false), &c, CREATE_REPOSITORY),
            Outcome::Denied
        );
        // A document that is not a policy.
        let broken = Policy::parse("registry policy", Some("{not json"));
        let resource = under_k8s();
        let d = evaluate(
            &[&broken],
            &Request {
                consumer: &c,
                action: CREATE_REPOSITORY,
                resource: &resource,
            },
        );
        assert_eq!(d.outcome, Outcome::Unknown, "{d:?}");
        let bad_effect = json!({"Statement": {"Effect": "allow", "Principal": "*", "Action": "*", "Resource": "*"}});
        assert_eq!(outcome(bad_effect, &c, CREATE_REPOSITORY), Outcome::Unknown);
    }

    /// The statement the Lambda service writes on a repository so that functions can use
    /// its images (a `Service` principal with an `aws:sourceArn` condition, which is not
    /// evaluated): it says nothing about a consumer account, so it is left out, not unknown.
    #[test]
    fn a_service_statement_with_an_unknown_condition_is_left_out() {
        let c = Consumer::principal("222233334444");
        let doc = json!({"Version": "2008-10-17", "Statement": [
            {"Sid": "LambdaECRImageRetrievalPolicy", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
             "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
             "Condition": {"StringLike": {"aws:sourceArn": "arn:aws:lambda:us-east-1:111122223333:function:*"}}},
            {"Sid": "PtcPullPrincipals", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::222233334444:root"]},
             "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]}
        ]});
        let d = decide_one(doc.clone(), &c, BATCH_GET_IMAGE, &under_k8s());
        assert_eq!(
            (d.outcome, d.statement.as_deref()),
            (
                Outcome::Allowed,
                Some("registry policy, statement PtcPullPrincipals")
            )
        );
        // Alone, it grants the consumer nothing: denied, not unknown.
        let lambda_only = json!({"Statement": [doc["Statement"][0].clone()]});
        let d = decide_one(lambda_only, &c, BATCH_GET_IMAGE, &under_k8s());
        assert_eq!((d.outcome, d.statement), (Outcome::Denied, None));
    }

    fn side<'a>(
        registry: &'a Policy,
        repository: &'a Policy,
        resource: &'a Resource,
    ) -> CacheSide<'a> {
        CacheSide {
            account: CACHE,
            registry_policy: registry,
            repository_policy: repository,
            resource,
        }
    }

    /// The three kinds of pull as the user guide describes them, with the policies
    /// lifecycle-fixer writes: the registry grant for first pulls and new tags, the template's
    /// repository policy for cached pulls (`lifecycle_fixer::desired::pull_policy`).
    #[test]
    fn the_three_kinds_of_pull_read_their_own_policies() {
        let c = Consumer::principal("222233334444");
        let resource = under_k8s();
        let none = Policy::parse("registry policy", None);
        let no_template = Policy::parse("the creation template's repository policy", None);
        let registry = policy("registry policy", product_registry_policy());
        let template = policy(
            "the k8s creation template's repository policy",
            json!({"Version": "2012-10-17", "Statement": [{"Sid": "PtcPullPrincipals", "Effect": "Allow",
                "Principal": {"AWS": ["arn:aws:iam::222233334444:root"]},
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]}]}),
        );
        // Nothing granted: each kind denied, naming its first action.
        let bare = side(&none, &no_template, &resource);
        let first = pull(PullKind::FirstPull, &c, &bare);
        assert_eq!(
            (first.outcome, first.action.as_deref()),
            (Outcome::Denied, Some(CREATE_REPOSITORY))
        );
        assert!(first.reason.contains("(there is none)"), "{first:?}");
        assert_eq!(
            pull(PullKind::CachedPull, &c, &bare).action.as_deref(),
            Some(BATCH_GET_IMAGE)
        );
        // The registry grant: first pulls and new tags, not cached pulls.
        let granted = side(&registry, &no_template, &resource);
        assert_eq!(
            pull(PullKind::FirstPull, &c, &granted).outcome,
            Outcome::Allowed
        );
        assert_eq!(
            pull(PullKind::NewTag, &c, &granted).outcome,
            Outcome::Allowed
        );
        assert_eq!(
            pull(PullKind::CachedPull, &c, &granted).outcome,
            Outcome::Denied
        );
        // The template's grant: cached pulls, and not first pulls (no repository yet).
        let templated = side(&none, &template, &resource);
        assert_eq!(
            pull(PullKind::CachedPull, &c, &templated).outcome,
            Outcome::Allowed
        );
        assert_eq!(
            pull(PullKind::FirstPull, &c, &templated).outcome,
            Outcome::Denied
        );
        // Both: every kind.
        let both = side(&registry, &template, &resource);
        for kind in PullKind::ALL {
            assert_eq!(pull(kind, &c, &both).outcome, Outcome::Allowed, "{kind:?}");
        }
        // A new tag may also be imported under the repository's own grant.
        let repo_import = policy(
            "repository policy",
            json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": "222233334444"}, "Action": "ecr:BatchImportUpstreamImage"}}),
        );
        assert_eq!(
            pull(PullKind::NewTag, &c, &side(&none, &repo_import, &resource)).outcome,
            Outcome::Allowed
        );
        // Not a first pull, whatever a repository policy says: there is no repository yet.
        let repo_both = policy(
            "repository policy",
            json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": "222233334444"},
                "Action": ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"]}}),
        );
        assert_eq!(
            pull(PullKind::FirstPull, &c, &side(&none, &repo_both, &resource)).outcome,
            Outcome::Denied
        );
    }

    /// A registry policy that grants the pull actions counts only under registry policy
    /// scope V2, which is not read: the cached pull it alone allows is unknown.
    #[test]
    fn a_cached_pull_that_only_the_registry_policy_allows_depends_on_its_scope() {
        let c = Consumer::principal("222233334444");
        let resource = under_k8s();
        let registry = policy(
            "registry policy",
            json!({"Statement": {"Sid": "Consumers", "Effect": "Allow", "Principal": {"AWS": "222233334444"},
                "Action": ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Resource": "arn:aws:ecr:us-east-1:111122223333:repository/k8s/*"}}),
        );
        let no_template = Policy::parse("the creation template's repository policy", None);
        let v = pull(
            PullKind::CachedPull,
            &c,
            &side(&registry, &no_template, &resource),
        );
        assert_eq!(v.outcome, Outcome::Unknown, "{v:?}");
        assert!(v.reason.contains("scope V2"), "{v:?}");
    }

    #[test]
    fn a_consumer_of_the_cache_account_needs_no_resource_policy() {
        let own = Consumer::principal("arn:aws:iam::111122223333:role/ci");
        let none = Policy::parse("registry policy", None);
        let resource = under_k8s();
        assert_eq!(
            pull(PullKind::FirstPull, &own, &side(&none, &none, &resource)).outcome,
            Outcome::Allowed
        );
        let deny = policy(
            "registry policy",
            json!({"Statement": {"Sid": "Freeze", "Effect": "Deny", "Principal": "*", "Action": "ecr:CreateRepository", "Resource": "*"}}),
        );
        assert_eq!(
            pull(PullKind::FirstPull, &own, &side(&deny, &none, &resource)).outcome,
            Outcome::Denied
        );
    }

    #[test]
    fn consumers_from_the_settings() {
        let list = Consumer::from_grants(
            &[
                "222233334444".into(),
                "arn:aws:iam::333344445555:root".into(),
                "arn:aws:iam::444455556666:role/nodes".into(),
            ],
            Some("o-a1b2c3d4e5"),
        );
        let accounts: Vec<Option<&str>> = list.iter().map(Consumer::account).collect();
        assert_eq!(
            accounts,
            [
                Some("222233334444"),
                Some("333344445555"),
                Some("444455556666"),
                None
            ]
        );
        assert!(matches!(list[1].principal, Principal::Account { .. }));
        assert!(matches!(list[2].principal, Principal::Identity { .. }));
        assert_eq!(list[3].name, "any account of o-a1b2c3d4e5");
        assert_eq!(list[3].org_id.as_deref(), Some("o-a1b2c3d4e5"));
    }

    #[test]
    fn globs() {
        assert!(glob("a*c", "abbbc"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("**", ""));
        assert!(!glob("abc", "abcd"));
        let k8s = Resource::Under("x/k8s/".into());
        assert_eq!(cover("x/*", &k8s), Cover::All);
        assert_eq!(cover("x/k8s/a*", &k8s), Cover::Part);
        assert_eq!(cover("x/k8s/", &k8s), Cover::None, "only the prefix itself");
        assert_eq!(cover("x/quay/*", &k8s), Cover::None);
        assert_eq!(cover("x/k?s/**", &k8s), Cover::All);
    }
}
