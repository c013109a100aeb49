//! What in a repository's (or a template's) policies belongs to the product, and how the
//! product's parts are merged into a document that also holds other people's.
//!
//! The product owns, and only ever changes:
//! - in a repository policy, the statements whose `Sid` is one of [`OWNED_SIDS`]
//!   (`PtcPullPrincipals`, `PtcPullOrganization`);
//! - in a lifecycle policy, the rules whose `description` begins with [`RULE_MARKER`]
//!   (`ptc: `), and the rule an earlier release wrote without the marker (its description
//!   begins with [`LEGACY_RULE_DESCRIPTION`]).
//!
//! Everything else in the document (statements, rules, `Version`, `Id`) is foreign and kept
//! as it is, in every mode: its JSON values are written back unchanged (object keys in
//! alphabetical order), in their place. Where the product's rules cannot coexist with the
//! foreign ones, the merge reports why and the caller changes nothing:
//! - a foreign rule with a `rulePriority` one of the product's rules uses;
//! - a merged policy ECR would refuse ("Lifecycle policy properties": e.g. a foreign
//!   `tagStatus: any` rule, which must have the highest priority, below a product rule);
//! - a foreign rule that expires or archives untagged images: in a pull-through cache those
//!   include the platform manifests of every cached multi-platform image, which the product
//!   must keep while the index is cached (ECR does not document that lifecycle rules spare
//!   them; an expired or archived platform manifest breaks pulls of that platform).
//!
//! Priority scheme: the product's default rule has priority [`DEFAULT_RULE_PRIORITY`] (100),
//! so a team's rules (1-99, evaluated first) decide for the images they select, and the
//! product's rule governs what no team rule selected ("an image is acted on by at most one
//! rule", lifecycle policy evaluation rules,
//! <https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html>). A
//! lifecycle policy from the settings keeps the priorities it was written with.

use serde_json::{Map, Value, json};

use crate::iam;
use crate::policy::{ActionKind, CountType, LifecyclePolicy, PolicyError, Rule, TagStatus};

/// The `Sid`s of the product's repository-policy statements (see
/// [`pull_policy`](crate::desired::pull_policy)): only a statement with one of these is the
/// product's. A team's statement whose `Sid` merely begins the same way (`PtcAudit`) is not.
pub const OWNED_SIDS: [&str; 2] = ["PtcPullPrincipals", "PtcPullOrganization"];
/// A lifecycle rule whose `description` begins with this belongs to the product.
pub const RULE_MARKER: &str = "ptc: ";
/// How the product's rule began before it carried [`RULE_MARKER`]; such a rule is the
/// product's too (and is rewritten with the marker in `enforce` mode).
pub const LEGACY_RULE_DESCRIPTION: &str = "Expire cached tagged images pushed more than ";
/// The `rulePriority` of the product's default lifecycle rule.
pub const DEFAULT_RULE_PRIORITY: u32 = 100;
/// A policy document with no statement: what [`merge_repository_policy`] is given when no
/// grant is desired, so that the product's statements left on a policy are found.
pub const NO_STATEMENTS: &str = r#"{"Statement":[]}"#;
/// The longest `policyText` `SetRepositoryPolicy` accepts, in characters
/// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_SetRepositoryPolicy.html>).
pub const MAX_REPOSITORY_POLICY: usize = 10_240;

/// Is this lifecycle rule the product's? Its description begins with [`RULE_MARKER`], or
/// it is, in full, the rule an earlier release wrote ([`is_legacy_rule`]).
pub fn owns_rule(rule: &Rule) -> bool {
    rule.description
        .as_deref()
        .is_some_and(|d| d.starts_with(RULE_MARKER))
        || is_legacy_rule(rule)
}

/// The rule an earlier release wrote without the marker, recognised by its whole shape (not
/// by the start of its description, which a team's own rule may share): priority 1,
/// description `Expire cached tagged images pushed more than <N> days ago; the next pull
/// caches them again`, tagged images matching `["*"]`, `sinceImagePushed` in days, expire.
pub fn is_legacy_rule(rule: &Rule) -> bool {
    let s = &rule.selection;
    let described = rule.description.as_deref().is_some_and(|d| {
        d.strip_prefix(LEGACY_RULE_DESCRIPTION)
            .and_then(|rest| rest.strip_suffix(" days ago; the next pull caches them again"))
            .is_some_and(|n| n == s.count_number.to_string())
    });
    described
        && rule.rule_priority == 1
        && s.tag_status == TagStatus::Tagged
        && s.tag_pattern_list.as_deref() == Some(&["*".to_owned()][..])
        && s.tag_prefix_list.is_none()
        && s.count_type == CountType::SinceImagePushed
        && s.storage_class.is_none()
        && rule.action.kind == ActionKind::Expire
}

/// The literal start of a tag pattern (what every tag it matches begins with): the text
/// before its first `*`.
fn literal_start(pattern: &str) -> &str {
    pattern.split('*').next().unwrap_or_default()
}

/// Is every tag `inner` (a pattern of `tagPatternList`, or with `prefix` a prefix of
/// `tagPrefixList`) sure to match `outer` (likewise)? Conservative: `false` when unsure.
fn tag_covers(outer: &str, outer_is_prefix: bool, inner: &str, inner_is_prefix: bool) -> bool {
    let inner_start = if inner_is_prefix {
        inner
    } else {
        literal_start(inner)
    };
    if outer_is_prefix {
        return inner_start.starts_with(outer);
    }
    if outer.chars().all(|c| c == '*') {
        return true;
    }
    if !inner_is_prefix && outer == inner {
        return true;
    }
    // `release*` (one trailing wildcard) takes every tag beginning with `release`.
    match outer.strip_suffix('*') {
        Some(start) if !start.contains('*') => inner_start.starts_with(start),
        _ => false,
    }
}

/// Does `outer` select, by tags and storage class, every image `inner` selects? Then
/// `inner`, if evaluated after `outer`, can expire none of them: "an image that matches the
/// tagging requirements of a rule cannot be expired by a rule with a lower priority"
/// (lifecycle policy evaluation rules,
/// <https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html>). Rules of
/// different storage classes select different images. Conservative: `false` when unsure.
fn covers(outer: &Rule, inner: &Rule) -> bool {
    let class = |r: &Rule| {
        r.selection
            .storage_class
            .clone()
            .unwrap_or_else(|| "standard".into())
    };
    if class(outer) != class(inner) {
        return false;
    }
    let (o, i) = (&outer.selection, &inner.selection);
    match (o.tag_status, i.tag_status) {
        (TagStatus::Any, _) => true,
        (TagStatus::Tagged, TagStatus::Tagged) => {
            let list = |s: &crate::policy::Selection| -> Vec<(String, bool)> {
                match (&s.tag_prefix_list, &s.tag_pattern_list) {
                    (Some(p), _) => p.iter().map(|x| (x.clone(), true)).collect(),
                    (_, Some(p)) => p.iter().map(|x| (x.clone(), false)).collect(),
                    _ => Vec::new(),
                }
            };
            let (outer_tags, inner_tags) = (list(o), list(i));
            // An image `inner` selects has, for each of its entries, a tag matching it; it
            // matches `outer` when each of `outer`'s entries takes one of those tags.
            outer_tags.iter().all(|(ot, op)| {
                inner_tags
                    .iter()
                    .any(|(it, ip)| tag_covers(ot, *op, it, *ip))
            })
        }
        _ => false,
    }
}

/// The reason a team rule and a product rule cannot stand in one policy because one would
/// hide the other: a team rule after a product rule that selects all its images could never
/// act again (a "keep" rule would stop protecting), and a product rule after a team rule
/// that selects all its images would never act. `None` when neither hides the other.
fn shadowing(product: &[Rule], foreign: &[Rule]) -> Option<String> {
    for f in foreign {
        if let Some(p) = product
            .iter()
            .find(|p| p.rule_priority < f.rule_priority && covers(p, f))
        {
            let advice = if p.rule_priority <= 1 {
                "the product's rules leave no priority before them: give them higher rulePriority values in the settings".to_owned()
            } else {
                format!("give it a priority below {}", p.rule_priority)
            };
            return Some(format!(
                "{} comes after the product's {} and selects no image that one does not select first, so it could never act again; {advice}",
                describe_rule(f),
                describe_rule(p),
            ));
        }
        if let Some(p) = product
            .iter()
            .find(|p| f.rule_priority < p.rule_priority && covers(f, p))
        {
            return Some(format!(
                "{} comes before the product's {} and selects every image that one would, so the product's rule could never act",
                describe_rule(f),
                describe_rule(p),
            ));
        }
    }
    None
}

/// Is this repository policy statement the product's?
pub fn owns_statement(statement: &Value) -> bool {
    statement
        .get("Sid")
        .and_then(Value::as_str)
        .is_some_and(|sid| OWNED_SIDS.contains(&sid))
}

/// The desired rules with [`RULE_MARKER`] at the start of each description (added where
/// missing), so that the product finds its rules again. `Err` when the marked policy no
/// longer fits ECR's limits (the text grows by the marker).
pub fn mark_rules(policy: &LifecyclePolicy) -> Result<LifecyclePolicy, PolicyError> {
    let mut marked = policy.clone();
    for rule in &mut marked.rules {
        let description = rule.description.take().unwrap_or_default();
        rule.description = Some(if description.starts_with(RULE_MARKER) {
            description
        } else {
            format!("{RULE_MARKER}{description}")
        });
    }
    LifecyclePolicy::parse(&marked.canonical())
}

/// How a document compares with the product's wishes, and what to write, from [`merge_lifecycle`]
/// or [`merge_repository_policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// The product's parts are as desired: nothing to write.
    Same,
    /// Write `text`: the document with the product's parts added or rewritten.
    Write {
        /// The whole document to write.
        text: String,
        /// True when a product part already there is rewritten (not only added).
        replaces: bool,
        /// The foreign parts kept in `text`, for a person (`statement DenyContractor`,
        /// `lifecycle rule 1 "keep ten images"`).
        kept: Vec<String>,
        /// The product's own parts `text` no longer holds or holds rewritten (statements no
        /// longer desired, rules replaced).
        removed: Vec<String>,
    },
    /// The product's parts differ and the mode does not allow rewriting them (fill): what
    /// differs.
    Differs(String),
    /// The document cannot be merged (not valid, or the product's parts cannot coexist with
    /// the foreign ones): why. Nothing is written.
    Conflict(String),
}

fn describe_rule(rule: &Rule) -> String {
    match rule.description.as_deref() {
        Some(d) if !d.is_empty() => format!("lifecycle rule {} {:?}", rule.rule_priority, d),
        _ => format!("lifecycle rule {}", rule.rule_priority),
    }
}

/// Merge the desired product rules into the repository's lifecycle policy `have`.
///
/// `have` is validated with ECR's rules first ([`LifecyclePolicy::parse`]); a policy that
/// does not pass is a conflict (read, never rewritten). Foreign rules are kept in their
/// order; the product's rules follow them, in priority order. When the policy holds none of
/// the product's rules they are added (every mode); when it holds some that differ, they
/// are rewritten with `rewrite` (enforce) and reported without.
pub fn merge_lifecycle(have: &str, want: &LifecyclePolicy, rewrite: bool) -> Merge {
    let current = match LifecyclePolicy::parse(have) {
        Ok(p) => p,
        Err(err) => {
            return Merge::Conflict(format!(
                "the repository's lifecycle policy does not pass ECR's rules ({err}); left alone"
            ));
        }
    };
    let (owned, foreign): (Vec<Rule>, Vec<Rule>) =
        current.rules.iter().cloned().partition(owns_rule);
    let risky: Vec<String> = foreign
        .iter()
        .filter(|r| r.selection.tag_status != TagStatus::Tagged)
        .map(describe_rule)
        .collect();
    if !risky.is_empty() {
        return Merge::Conflict(format!(
            "{} {} untagged images, which include the platform manifests of cached multi-platform images: the product's lifecycle rules are not added next to {}; narrow {} to tagged images",
            risky.join(", "),
            if risky.len() == 1 {
                "selects"
            } else {
                "select"
            },
            if risky.len() == 1 { "it" } else { "them" },
            if risky.len() == 1 { "it" } else { "them" },
        ));
    }
    // Checked whether or not anything is written: a team rule added after the product's
    // is as dead as one the product would be added in front of.
    // The product rules the policy will hold: the desired ones when they are written
    // (enforce, or none in place), else those in place (fill keeps them).
    let judged = if rewrite || owned.is_empty() {
        &want.rules
    } else {
        &owned
    };
    if let Some(why) = shadowing(judged, &foreign) {
        return Merge::Conflict(why);
    }
    let same = !owned.is_empty()
        && crate::policy::same_meaning(
            &LifecyclePolicy {
                rules: owned.clone(),
            }
            .canonical(),
            &want.canonical(),
        );
    if same {
        return Merge::Same;
    }
    if !owned.is_empty() && !rewrite {
        return Merge::Differs(
            "the product's lifecycle rules differ from the desired ones; kept (fill mode)".into(),
        );
    }
    if let Some(clash) = foreign.iter().find(|f| {
        want.rules
            .iter()
            .any(|w| w.rule_priority == f.rule_priority)
    }) {
        return Merge::Conflict(format!(
            "{} uses rulePriority {}, which the product's rule needs; give it another priority (the product's rules use {})",
            describe_rule(clash),
            clash.rule_priority,
            want.rules
                .iter()
                .map(|r| r.rule_priority.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut rules = foreign.clone();
    let mut mine = want.rules.clone();
    mine.sort_by_key(|r| r.rule_priority);
    rules.extend(mine);
    let text = match serde_json::to_string(&LifecyclePolicy { rules }) {
        Ok(t) => t,
        Err(err) => return Merge::Conflict(format!("cannot write the merged policy: {err}")),
    };
    if let Err(err) = LifecyclePolicy::parse(&text) {
        return Merge::Conflict(format!(
            "the product's rules cannot coexist with the repository's own: ECR would refuse the merged policy ({err}); left alone"
        ));
    }
    Merge::Write {
        text,
        replaces: !owned.is_empty(),
        kept: foreign.iter().map(describe_rule).collect(),
        removed: owned
            .iter()
            .map(|r| format!("the product's {} (rewritten)", describe_rule(r)))
            .collect(),
    }
}

fn statements_of(doc: &Map<String, Value>) -> Option<Vec<Value>> {
    match doc.get("Statement") {
        None => Some(Vec::new()),
        Some(Value::Array(list)) => Some(list.clone()),
        Some(one @ Value::Object(_)) => Some(vec![one.clone()]),
        Some(_) => None,
    }
}

fn sid(statement: &Value) -> Option<&str> {
    statement.get("Sid").and_then(Value::as_str)
}

fn same_statement(a: &Value, b: &Value) -> bool {
    iam::same_meaning(
        &json!({"Statement": [a]}).to_string(),
        &json!({"Statement": [b]}).to_string(),
    )
}

/// Merge the desired product statements (the `Statement` list of `want`, a policy document)
/// into the repository policy `have`.
///
/// Each product statement is found by its `Sid`: missing, it is added (every mode); of
/// another meaning ([`iam`]'s comparison), it is rewritten in its place when `rewrite`
/// (enforce), else reported. A product statement that is no longer desired (an
/// organization grant after `PTC_PULL_ORG_ID` was unset) is removed when `rewrite`, else
/// reported. Foreign statements, `Version` and `Id` are kept. Conflicts: `have` is not a
/// JSON object with a `Statement` object or list, or two statements share a product `Sid`.
pub fn merge_repository_policy(have: &str, want: &str, rewrite: bool) -> Merge {
    merge_statements(have, want, rewrite, &owns_statement, "repository policy")
}

/// [`merge_repository_policy`] for any policy document (a registry policy too): `owns`
/// says which statements are the product's, `what` names the document in messages. The
/// merged text is at most [`MAX_REPOSITORY_POLICY`] characters (`SetRepositoryPolicy` and
/// `PutRegistryPolicy` share the limit).
pub fn merge_statements(
    have: &str,
    want: &str,
    rewrite: bool,
    owns_statement: &dyn Fn(&Value) -> bool,
    what: &str,
) -> Merge {
    let Some(Value::Object(mut doc)) = serde_json::from_str::<Value>(have).ok() else {
        return Merge::Conflict(format!("the {what} is not a JSON object; left alone"));
    };
    let Some(current) = statements_of(&doc) else {
        return Merge::Conflict(format!(
            "the {what}'s Statement is neither an object nor a list; left alone"
        ));
    };
    let desired: Vec<Value> = serde_json::from_str::<Value>(want)
        .ok()
        .as_ref()
        .and_then(Value::as_object)
        .and_then(statements_of)
        .unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for s in current.iter().filter(|s| owns_statement(s)) {
        let id = sid(s).unwrap_or_default();
        if !seen.insert(id) {
            return Merge::Conflict(format!(
                "the {what} has two statements with Sid {id}; left alone"
            ));
        }
    }
    let mut out: Vec<Value> = Vec::new();
    let mut removed = Vec::new();
    let mut differs = Vec::new();
    let mut replaces = false;
    let mut added = false;
    for s in &current {
        if !owns_statement(s) {
            out.push(s.clone());
            continue;
        }
        let id = sid(s).unwrap_or_default();
        match desired.iter().find(|d| sid(d) == Some(id)) {
            Some(d) if same_statement(s, d) => out.push(s.clone()),
            Some(d) if rewrite => {
                out.push(d.clone());
                replaces = true;
            }
            Some(_) => {
                differs.push(format!("statement {id} differs from the desired one"));
                out.push(s.clone());
            }
            None if rewrite => {
                replaces = true;
                removed.push(format!("the product's statement {id} (no longer desired)"));
            }
            None => {
                differs.push(format!("statement {id} is no longer desired"));
                out.push(s.clone());
            }
        }
    }
    for d in &desired {
        let id = sid(d).unwrap_or_default();
        if !current
            .iter()
            .any(|s| owns_statement(s) && sid(s) == Some(id))
        {
            out.push(d.clone());
            added = true;
        }
    }
    let kept: Vec<String> = current
        .iter()
        .enumerate()
        .filter(|(_, s)| !owns_statement(s))
        .map(|(i, s)| match sid(s) {
            Some(id) if !id.is_empty() => format!("statement {id}"),
            _ => format!(
                "the statement at position {} of the current policy (no Sid)",
                i + 1
            ),
        })
        .collect();
    if !replaces && !added {
        return if differs.is_empty() {
            Merge::Same
        } else {
            Merge::Differs(format!("{}; kept (fill mode)", differs.join("; ")))
        };
    }
    if out.is_empty() {
        // Every statement was the product's and none is desired any more: a policy
        // needs a statement, and deleting the policy is not this product's to do.
        return Merge::Conflict(
            "the product's statements are no longer desired and the policy has no other; left as it is (delete it by hand if it should go)".into(),
        );
    }
    // `Version` is kept as it is, absent included: without one IAM reads the document as
    // 2008-10-17, where a team statement's policy variables are plain text; adding one
    // would change what that statement means (the product's statements use no variable).
    doc.insert("Statement".into(), Value::Array(out));
    let text = Value::Object(doc).to_string();
    if text.chars().count() > MAX_REPOSITORY_POLICY {
        return Merge::Conflict(format!(
            "the {what} with the product's statements would be {} characters, over the {MAX_REPOSITORY_POLICY} ECR accepts; left alone",
            text.chars().count()
        ));
    }
    let mut merge = Merge::Write {
        text,
        replaces,
        kept,
        removed,
    };
    if !differs.is_empty()
        && let Merge::Write { kept, .. } = &mut merge
    {
        // Fill mode adds a missing statement and leaves a differing one: say so too.
        kept.extend(
            differs
                .into_iter()
                .map(|d| format!("{d} (kept, fill mode)")),
        );
    }
    merge
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{default_lifecycle, pull_policy};

    const DENY_CONTRACTOR: &str = r#"{"Sid":"DenyContractor","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::444455556666:role/contractor"},"Action":"ecr:*"}"#;
    const CI_PUSH: &str = r#"{"Sid":"CiPush","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/ci"},"Action":["ecr:PutImage","ecr:InitiateLayerUpload","ecr:UploadLayerPart","ecr:CompleteLayerUpload"]}"#;

    fn grant() -> String {
        pull_policy(&["111122223333".into()], None).unwrap()
    }

    fn statements(text: &str) -> Vec<Value> {
        let doc: Value = serde_json::from_str(text).unwrap();
        doc["Statement"].as_array().unwrap().clone()
    }

    #[test]
    fn foreign_statements_survive_enforce() {
        // The observed case: the product's statement, a Deny for a contractor and a push
        // grant for CI. Enforce with a changed grant rewrites only the product's statement.
        let old = pull_policy(&["999988887777".into()], None).unwrap();
        let mut have: Value = serde_json::from_str(&old).unwrap();
        let list = have["Statement"].as_array_mut().unwrap();
        list.insert(0, serde_json::from_str(DENY_CONTRACTOR).unwrap());
        list.push(serde_json::from_str(CI_PUSH).unwrap());
        let Merge::Write {
            text,
            replaces,
            kept,
            ..
        } = merge_repository_policy(&have.to_string(), &grant(), true)
        else {
            panic!("expected a write")
        };
        assert!(replaces);
        assert_eq!(kept, ["statement DenyContractor", "statement CiPush"]);
        let written = statements(&text);
        assert_eq!(written.len(), 3);
        assert_eq!(
            written[0],
            serde_json::from_str::<Value>(DENY_CONTRACTOR).unwrap()
        );
        assert_eq!(written[2], serde_json::from_str::<Value>(CI_PUSH).unwrap());
        assert!(text.contains("111122223333:root") && !text.contains("999988887777"));
        // Merged again: nothing to do.
        assert_eq!(merge_repository_policy(&text, &grant(), true), Merge::Same);
    }

    #[test]
    fn statements_other_services_and_tools_wrote_are_kept() {
        // Further cases of the kind. A repository has one policy that several owners share
        // (terraform-provider-aws#985, "an ECR repository can have only one policy
        // document"; #35940, registry policies overwriting each other). Lambda adds its own
        // statement when a function uses an image of another account
        // (https://docs.aws.amazon.com/lambda/latest/dg/images-create.html, "Amazon ECR
        // permissions"; its Sid as in terraform-aws-modules/terraform-aws-ecr#53), and a
        // statement may have no Sid at all.
        let lambda = r#"{"Sid":"LambdaECRImageRetrievalPolicy","Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Condition":{"StringLike":{"aws:sourceArn":"arn:aws:lambda:us-east-1:111122223333:function:*"}}}"#;
        let anonymous = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::555566667777:root"},"Action":"ecr:BatchGetImage"}"#;
        let have = format!(r#"{{"Version":"2008-10-17","Statement":[{lambda},{anonymous}]}}"#);
        let Merge::Write { text, kept, .. } = merge_repository_policy(&have, &grant(), true) else {
            panic!("expected a write")
        };
        assert_eq!(
            kept,
            [
                "statement LambdaECRImageRetrievalPolicy",
                "the statement at position 2 of the current policy (no Sid)"
            ]
        );
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc["Version"], "2008-10-17",
            "the document's version is kept"
        );
        let written = statements(&text);
        assert_eq!(written[0], serde_json::from_str::<Value>(lambda).unwrap());
        assert_eq!(
            written[1],
            serde_json::from_str::<Value>(anonymous).unwrap()
        );
        assert_eq!(written.len(), 3);
    }

    #[test]
    fn a_team_sid_that_only_looks_like_the_products_is_kept() {
        let team = r#"{"Sid":"PtcAudit","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::777788889999:root"},"Action":"ecr:DescribeImages"}"#;
        let have = format!(r#"{{"Version":"2012-10-17","Statement":[{team}]}}"#);
        let Merge::Write { text, kept, .. } = merge_repository_policy(&have, &grant(), true) else {
            panic!("expected a write")
        };
        assert_eq!(kept, ["statement PtcAudit"]);
        assert!(text.contains("PtcAudit"));
    }

    #[test]
    fn fill_adds_the_grant_next_to_other_statements() {
        // Fill could never add the product's grant to a policy with other statements.
        let have = format!(r#"{{"Version":"2012-10-17","Id":"team","Statement":{CI_PUSH}}}"#);
        let Merge::Write {
            text,
            replaces,
            kept,
            ..
        } = merge_repository_policy(&have, &grant(), false)
        else {
            panic!("expected a write")
        };
        assert!(!replaces);
        assert_eq!(kept, ["statement CiPush"]);
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["Id"], "team");
        assert_eq!(statements(&text).len(), 2);
        assert_eq!(merge_repository_policy(&text, &grant(), false), Merge::Same);
    }

    #[test]
    fn fill_reports_a_differing_product_statement() {
        let old = pull_policy(&["999988887777".into()], None).unwrap();
        assert!(matches!(
            merge_repository_policy(&old, &grant(), false),
            Merge::Differs(why) if why.contains("PtcPullPrincipals")
        ));
    }

    #[test]
    fn an_undesired_product_statement_goes_in_enforce_only() {
        let both = pull_policy(&["111122223333".into()], Some("o-abc123")).unwrap();
        let mut have: Value = serde_json::from_str(&both).unwrap();
        have["Statement"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::from_str(CI_PUSH).unwrap());
        let have = have.to_string();
        let Merge::Write { text, .. } = merge_repository_policy(&have, &grant(), true) else {
            panic!("expected a write")
        };
        assert!(!text.contains("PtcPullOrganization") && text.contains("CiPush"));
        assert!(matches!(
            merge_repository_policy(&have, &grant(), false),
            Merge::Differs(why) if why.contains("no longer desired")
        ));
    }

    #[test]
    fn unreadable_or_ambiguous_policies_are_left_alone() {
        for have in [
            "not json".to_owned(),
            r#"["a list"]"#.to_owned(),
            r#"{"Statement":"text"}"#.to_owned(),
            format!(
                r#"{{"Statement":[{0},{0}]}}"#,
                r#"{"Sid":"PtcPullPrincipals","Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}"#
            ),
        ] {
            assert!(
                matches!(
                    merge_repository_policy(&have, &grant(), true),
                    Merge::Conflict(_)
                ),
                "{have}"
            );
        }
    }

    fn team_rule(priority: u32, selection: &str) -> String {
        format!(
            r#"{{"rulePriority":{priority},"description":"keep ten images, set by hand by the team","selection":{selection},"action":{{"type":"expire"}}}}"#
        )
    }

    fn want() -> LifecyclePolicy {
        default_lifecycle(30)
    }

    #[test]
    fn a_teams_rule_survives_and_the_product_rule_joins_it() {
        let team = team_rule(
            1,
            r#"{"tagStatus":"tagged","tagPatternList":["release-*"],"countType":"imageCountMoreThan","countNumber":10}"#,
        );
        let have = format!(r#"{{"rules":[{team}]}}"#);
        for rewrite in [false, true] {
            let Merge::Write {
                text,
                replaces,
                kept,
                ..
            } = merge_lifecycle(&have, &want(), rewrite)
            else {
                panic!("expected a write")
            };
            assert!(!replaces);
            assert_eq!(
                kept,
                [r#"lifecycle rule 1 "keep ten images, set by hand by the team""#]
            );
            let merged = LifecyclePolicy::parse(&text).unwrap();
            assert_eq!(merged.rules.len(), 2);
            assert_eq!(merged.rules[0].rule_priority, 1);
            assert_eq!(merged.rules[1].rule_priority, DEFAULT_RULE_PRIORITY);
            assert_eq!(merge_lifecycle(&text, &want(), rewrite), Merge::Same);
        }
    }

    #[test]
    fn enforce_rewrites_only_the_product_rule() {
        let team = team_rule(
            1,
            r#"{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":10}"#,
        );
        let old = default_lifecycle(7);
        let have = format!(
            r#"{{"rules":[{team},{}]}}"#,
            serde_json::to_string(&old.rules[0]).unwrap()
        );
        let Merge::Write { text, replaces, .. } = merge_lifecycle(&have, &want(), true) else {
            panic!("expected a write")
        };
        assert!(replaces);
        assert!(text.contains("set by hand by the team") && text.contains(r#""countNumber":30"#));
        assert!(matches!(
            merge_lifecycle(&have, &want(), false),
            Merge::Differs(_)
        ));
    }

    #[test]
    fn rules_that_cannot_coexist_change_nothing() {
        let clash = format!(
            r#"{{"rules":[{}]}}"#,
            team_rule(
                DEFAULT_RULE_PRIORITY,
                r#"{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":10}"#
            )
        );
        let untagged = format!(
            r#"{{"rules":[{}]}}"#,
            team_rule(
                1,
                r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14}"#
            )
        );
        let broken = r#"{"rules":[{"rulePriority":1,"description":"a policy ECR would refuse: sinceImagePulled with expire","selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"sinceImagePulled","countUnit":"days","countNumber":3}, "action":{"type":"expire"}}]}"#;
        for (have, why) in [
            (clash.as_str(), "rulePriority 100"),
            (untagged.as_str(), "platform manifests"),
            (broken, "does not pass ECR's rules"),
        ] {
            for rewrite in [false, true] {
                match merge_lifecycle(have, &want(), rewrite) {
                    Merge::Conflict(text) => assert!(text.contains(why), "{text}"),
                    other => panic!("{have}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn a_legacy_product_rule_is_the_products() {
        let legacy = r#"{"rules":[{"rulePriority":1,"description":"Expire cached tagged images pushed more than 30 days ago; the next pull caches them again","selection":{"tagStatus":"tagged","tagPatternList":["*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}"#;
        let Merge::Write { text, kept, .. } = merge_lifecycle(legacy, &want(), true) else {
            panic!("expected a write")
        };
        assert!(kept.is_empty());
        assert_eq!(LifecyclePolicy::parse(&text).unwrap().rules.len(), 1);
    }

    #[test]
    fn the_review_cases() {
        // A team rule after the product's catch-all could never act again: a "keep" rule
        // would stop protecting ("an image that matches the tagging requirements of a rule
        // cannot be expired by a rule with a lower priority", LifecyclePolicies.html).
        let keep_prod = format!(
            r#"{{"rules":[{}]}}"#,
            team_rule(
                150,
                r#"{"tagStatus":"tagged","tagPatternList":["prod-*"],"countType":"imageCountMoreThan","countNumber":9999}"#
            )
        );
        assert!(matches!(
            merge_lifecycle(&keep_prod, &want(), true),
            Merge::Conflict(why) if why.contains("lifecycle rule 150") && why.contains("below 100")
        ));
        // Before it, the team's rule decides first: they coexist.
        let early = keep_prod.replace(r#""rulePriority":150"#, r#""rulePriority":10"#);
        assert!(matches!(
            merge_lifecycle(&early, &want(), true),
            Merge::Write { .. }
        ));
        // A team rule that merely begins like the product's old description is the team's.
        let lookalike = r#"{"rules":[{"rulePriority":2,"description":"Expire cached tagged images pushed more than 7 days ago -- team's own copy for nightly","selection":{"tagStatus":"tagged","tagPatternList":["nightly-*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}"#;
        let Merge::Write { text, kept, .. } = merge_lifecycle(lookalike, &want(), true) else {
            panic!("expected a write")
        };
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(text.contains("team's own copy"));
        // No Version: none is added (IAM would then read the team's policy variables).
        let versionless = r#"{"Statement":[{"Sid":"Home","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"ecr:BatchGetImage","Resource":"arn:aws:ecr:*:*:repository/${aws:username}/*"}]}"#;
        let Merge::Write { text, .. } = merge_repository_policy(versionless, &grant(), true) else {
            panic!("expected a write")
        };
        assert!(!text.contains("Version"), "{text}");
        // Over SetRepositoryPolicy's 10,240 characters once merged: left alone.
        let big = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Big","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:root"}},"Action":"ecr:BatchGetImage","Condition":{{"StringEquals":{{"aws:PrincipalTag/team":"{}"}}}}}}]}}"#,
            "x".repeat(10_000)
        );
        assert!(matches!(
            merge_repository_policy(&big, &grant(), true),
            Merge::Conflict(why) if why.contains("10240")
        ));
    }

    #[test]
    fn grants_go_when_no_grant_is_desired_any_more() {
        let both = pull_policy(&["111122223333".into()], Some("o-abc123")).unwrap();
        let mut have: Value = serde_json::from_str(&both).unwrap();
        have["Statement"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::from_str(CI_PUSH).unwrap());
        let Merge::Write { text, removed, .. } =
            merge_repository_policy(&have.to_string(), NO_STATEMENTS, true)
        else {
            panic!("expected a write")
        };
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert_eq!(statements(&text).len(), 1);
        assert!(matches!(
            merge_repository_policy(&have.to_string(), NO_STATEMENTS, false),
            Merge::Differs(_)
        ));
        // Only the product's statements: the policy cannot be emptied; reported.
        assert!(matches!(
            merge_repository_policy(&both, NO_STATEMENTS, true),
            Merge::Conflict(_)
        ));
        // A policy with none of the product's statements: nothing to do.
        let team = format!(r#"{{"Statement":[{CI_PUSH}]}}"#);
        assert_eq!(
            merge_repository_policy(&team, NO_STATEMENTS, true),
            Merge::Same
        );
    }

    #[test]
    fn rules_that_hide_one_another() {
        let rule = |priority: u32, description: &str, selection: &str| {
            format!(
                r#"{{"rulePriority":{priority},"description":"{description}","selection":{selection},"action":{{"type":"expire"}}}}"#
            )
        };
        let keep = |priority: u32, list: &str| {
            rule(
                priority,
                "team: keep them all",
                &format!(
                    r#"{{"tagStatus":"tagged",{list},"countType":"imageCountMoreThan","countNumber":9999}}"#
                ),
            )
        };
        let policy = |rules: &[String]| format!(r#"{{"rules":[{}]}}"#, rules.join(","));
        let product = serde_json::to_string(&want().rules[0]).unwrap();
        // A team rule added after the product's is in place: reported although nothing
        // would be written.
        let after = policy(&[product.clone(), keep(150, r#""tagPatternList":["prod-*"]"#)]);
        for rewrite in [false, true] {
            assert!(matches!(
                merge_lifecycle(&after, &want(), rewrite),
                Merge::Conflict(why) if why.contains("lifecycle rule 150")
            ));
        }
        // A narrower product rule from the settings hides a team rule it covers:
        // `release` takes every tag `release-lts` takes.
        let settings = LifecyclePolicy::parse(&policy(&[rule(
            1,
            "ptc: expire old releases",
            r#"{"tagStatus":"tagged","tagPrefixList":["release"],"countType":"sinceImagePushed","countUnit":"days","countNumber":30}"#,
        )]))
        .unwrap();
        let lts = policy(&[keep(5, r#""tagPrefixList":["release-lts"]"#)]);
        assert!(matches!(
            merge_lifecycle(&lts, &settings, true),
            Merge::Conflict(why) if why.contains("no priority before them")
        ));
        let patterns = policy(&[keep(5, r#""tagPatternList":["release-lts-*"]"#)]);
        assert!(matches!(
            merge_lifecycle(&patterns, &settings, true),
            Merge::Conflict(_)
        ));
        // Different tags: they coexist.
        let nightly = policy(&[keep(5, r#""tagPrefixList":["nightly"]"#)]);
        assert!(matches!(
            merge_lifecycle(&nightly, &settings, true),
            Merge::Write { .. }
        ));
        // A team catch-all before the product's rule: the product's could never act.
        let catch_all = policy(&[keep(1, r#""tagPatternList":["*"]"#)]);
        assert!(matches!(
            merge_lifecycle(&catch_all, &want(), true),
            Merge::Conflict(why) if why.contains("the product's rule could never act")
        ));
        // Archived images are another set: a rule on them after the product's is fine.
        let archived = policy(&[rule(
            200,
            "team: expire what has been archived for a year",
            r#"{"tagStatus":"tagged","tagPatternList":["*"],"storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365}"#,
        )]);
        assert!(matches!(
            merge_lifecycle(&archived, &want(), true),
            Merge::Write { .. }
        ));
        // The earlier release's rule (priority 1, every tag) and a team rule at 10: enforce
        // moves the product's rule to 100, after the team's.
        let legacy = r#"{"rulePriority":1,"description":"Expire cached tagged images pushed more than 30 days ago; the next pull caches them again","selection":{"tagStatus":"tagged","tagPatternList":["*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}"#;
        let with_legacy = policy(&[legacy.to_owned(), keep(10, r#""tagPrefixList":["v"]"#)]);
        assert!(matches!(
            merge_lifecycle(&with_legacy, &want(), true),
            Merge::Write { replaces: true, .. }
        ));
    }
}
