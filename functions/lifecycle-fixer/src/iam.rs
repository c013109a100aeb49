//! IAM policy documents (repository policies) compared by meaning, following IAM's JSON
//! policy grammar (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html>):
//! - a single statement or a list, a string or a one-element list, and the order of
//!   statements and of list values do not change what a policy allows;
//! - `"Principal": "*"` is `{"AWS": "*"}` (both mean everyone, "Anonymous (public)
//!   principals" in
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html>);
//! - an account ID is its root ARN: `"123456789012"` is `arn:aws:iam::123456789012:root`
//!   (IAM stores the ARN, same page, "AWS account principals"; the `aws` partition only);
//! - action names are case-insensitive (`ecr:batchgetimage` is `ecr:BatchGetImage`,
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html>);
//! - condition key names are case-insensitive, and a condition key's values are a set
//!   (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html>).
//!
//! `Sid` stays part of a statement: it is the statement's identity, not its meaning.

use serde_json::{Map, Value};

/// Keys whose value may be a string or a list of strings, in any order.
const SET_KEYS: [&str; 8] = [
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "AWS",
    "Service",
    "Federated",
    "CanonicalUser",
];

fn normalise(value: &Value, key: Option<&str>) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.clone(), normalise(v, Some(k)));
            }
            Value::Object(out)
        }
        Value::String(s) if key.is_some_and(|k| SET_KEYS.contains(&k)) => {
            Value::Array(vec![Value::String(s.clone())])
        }
        Value::Array(items) if key.is_some_and(|k| SET_KEYS.contains(&k) || k == "Statement") => {
            let mut items: Vec<Value> = items.iter().map(|v| normalise(v, None)).collect();
            items.sort_by_key(|v| v.to_string());
            items.dedup();
            Value::Array(items)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| normalise(v, None)).collect()),
        other => other.clone(),
    }
}

/// A statement with IAM's equivalent spellings made one: `Principal`/`NotPrincipal` `"*"`
/// as `{"AWS": "*"}`, account IDs and `arn:<partition>:iam::<account>:root` as the account
/// ID, action names in lowercase, condition key names in lowercase with their values as a
/// set.
fn equivalent_forms(statement: &mut Value) {
    let Some(statement) = statement.as_object_mut() else {
        return;
    };
    for key in ["Principal", "NotPrincipal"] {
        if let Some(principal) = statement.get_mut(key) {
            if principal.as_str() == Some("*") {
                *principal = serde_json::json!({"AWS": "*"});
            }
            if let Some(aws) = principal.get_mut("AWS") {
                for_each_string(aws, |arn| account_of_root(arn).unwrap_or(arn).to_owned());
            }
        }
    }
    for key in ["Action", "NotAction"] {
        if let Some(actions) = statement.get_mut(key) {
            for_each_string(actions, str::to_ascii_lowercase);
        }
    }
    if let Some(Value::Object(operators)) = statement.get_mut("Condition") {
        for block in operators.values_mut() {
            if let Value::Object(keys) = block {
                // Two keys that differ only in case would be one key once lowered: then the
                // block keeps its keys as written (a difference is reported, never hidden).
                let distinct: std::collections::BTreeSet<String> =
                    keys.keys().map(|k| k.to_ascii_lowercase()).collect();
                let lower = distinct.len() == keys.len();
                let normalised: Map<String, Value> = std::mem::take(keys)
                    .into_iter()
                    .map(|(k, v)| {
                        let mut values = match v {
                            Value::Array(items) => items,
                            one => vec![one],
                        };
                        values.sort_by_key(|v| v.to_string());
                        values.dedup();
                        let k = if lower { k.to_ascii_lowercase() } else { k };
                        (k, Value::Array(values))
                    })
                    .collect();
                *keys = normalised;
            }
        }
    }
}

/// Apply `f` to a string value, or to each string of a list.
fn for_each_string(value: &mut Value, f: impl Fn(&str) -> String) {
    match value {
        Value::String(s) => *s = f(s),
        Value::Array(items) => {
            for item in items {
                if let Value::String(s) = item {
                    *s = f(s);
                }
            }
        }
        _ => {}
    }
}

/// The account of `arn:aws:iam::<12 digits>:root`. Only the `aws` partition, the one the
/// product writes its grants in: an account ID names the root of the resource's own
/// partition, so a root ARN of another partition (`aws-cn`, `aws-us-gov`) is a different
/// principal unless the repository is there, which this comparison cannot know; it is left
/// as written (a difference is reported, never hidden).
fn account_of_root(arn: &str) -> Option<&str> {
    let account = arn.strip_prefix("arn:aws:iam::")?.strip_suffix(":root")?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

/// The canonical form of a policy document, or `None` when it is not a JSON object.
pub fn canonical(text: &str) -> Option<Value> {
    let mut doc: Value = serde_json::from_str(text).ok()?;
    let object = doc.as_object_mut()?;
    if let Some(statement) = object.get_mut("Statement")
        && statement.is_object()
    {
        *statement = Value::Array(vec![statement.take()]);
    }
    if let Some(Value::Array(statements)) = object.get_mut("Statement") {
        statements.iter_mut().for_each(equivalent_forms);
    }
    Some(normalise(&doc, None))
}

/// Do two policy documents allow and deny the same? Unparseable text equals nothing.
pub fn same_meaning(a: &str, b: &str) -> bool {
    match (canonical(a), canonical(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_that_mean_the_same() {
        let a = r#"{"Version":"2012-10-17","Statement":{"Sid":"Pull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"ecr:BatchGetImage"}}"#;
        let b = r#"{"Statement":[{"Action":["ecr:BatchGetImage"],"Principal":{"AWS":["arn:aws:iam::111122223333:root"]},"Effect":"Allow","Sid":"Pull"}],"Version":"2012-10-17"}"#;
        assert!(same_meaning(a, b));
        let c = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Pull","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::444455556666:root"]},"Action":["ecr:GetDownloadUrlForLayer","ecr:BatchGetImage"]}]}"#;
        let d = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Pull","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::444455556666:root","arn:aws:iam::111122223333:root"]},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}"#;
        assert!(same_meaning(c, d));
    }

    #[test]
    fn different_meanings() {
        let a = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}]}"#;
        assert!(!same_meaning(a, &a.replace("Allow", "Deny")));
        assert!(!same_meaning(a, &a.replace("BatchGetImage", "PutImage")));
        assert!(!same_meaning(a, "[]"));
        assert!(!same_meaning(a, "nope"));
    }

    #[test]
    fn iam_equivalent_spellings() {
        let with = |principal: &str, action: &str, condition: &str| {
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"PtcPull","Effect":"Allow","Principal":{principal},"Action":{action}{condition}}}]}}"#
            )
        };
        let none = "";
        // "Principal": "*" is {"AWS": "*"}.
        assert!(same_meaning(
            &with(r#""*""#, r#""ecr:BatchGetImage""#, none),
            &with(r#"{"AWS":"*"}"#, r#""ecr:BatchGetImage""#, none)
        ));
        assert!(same_meaning(
            &with(r#""*""#, r#""ecr:BatchGetImage""#, none),
            &with(r#"{"AWS":["*"]}"#, r#""ecr:BatchGetImage""#, none)
        ));
        // An account ID is its root ARN, in any partition.
        assert!(same_meaning(
            &with(r#"{"AWS":"111122223333"}"#, r#""ecr:BatchGetImage""#, none),
            &with(
                r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
                r#""ecr:BatchGetImage""#,
                none
            )
        ));
        assert!(same_meaning(
            &with(
                r#"{"AWS":["arn:aws:iam::444455556666:role/ci","111122223333"]}"#,
                r#""ecr:BatchGetImage""#,
                none
            ),
            &with(
                r#"{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::444455556666:role/ci"]}"#,
                r#""ecr:BatchGetImage""#,
                none
            )
        ));
        // Another partition's root is another principal (the comparison cannot know the
        // repository's partition), and a malformed ARN is not a root.
        for other in [
            "arn:aws-cn:iam::111122223333:root",
            "arn:aws-us-gov:iam::111122223333:root",
            "arn:x:y:iam::111122223333:root",
        ] {
            assert!(!same_meaning(
                &with(
                    r#"{"AWS":["111122223333"]}"#,
                    r#""ecr:BatchGetImage""#,
                    none
                ),
                &with(
                    &format!(r#"{{"AWS":"{other}"}}"#),
                    r#""ecr:BatchGetImage""#,
                    none
                )
            ));
        }
        // Action names are case-insensitive.
        assert!(same_meaning(
            &with(
                r#""*""#,
                r#"["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]"#,
                none
            ),
            &with(
                r#""*""#,
                r#"["ECR:getdownloadurlforlayer","ecr:batchgetimage"]"#,
                none
            )
        ));
        // Condition keys are case-insensitive; a key's values are a set.
        assert!(same_meaning(
            &with(
                r#""*""#,
                r#""ecr:BatchGetImage""#,
                r#","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abcdefghij"}}"#
            ),
            &with(
                r#""*""#,
                r#""ecr:BatchGetImage""#,
                r#","Condition":{"StringEquals":{"aws:principalorgid":["o-abcdefghij"]}}"#
            )
        ));
        // What does change the meaning still does.
        assert!(!same_meaning(
            &with(r#"{"AWS":"111122223333"}"#, r#""ecr:BatchGetImage""#, none),
            &with(
                r#"{"AWS":"arn:aws:iam::111122223333:role/ci"}"#,
                r#""ecr:BatchGetImage""#,
                none
            )
        ));
        assert!(!same_meaning(
            &with(r#""*""#, r#""ecr:BatchGetImage""#, none),
            &with(r#"{"Service":"*"}"#, r#""ecr:BatchGetImage""#, none)
        ));
        assert!(!same_meaning(
            &with(
                r#""*""#,
                r#""ecr:BatchGetImage""#,
                r#","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abcdefghij"}}"#
            ),
            &with(
                r#""*""#,
                r#""ecr:BatchGetImage""#,
                r#","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-zzzzzzzzzz"}}"#
            )
        ));
        // Keys that collide once lowered are not merged: the difference stays visible.
        assert!(!same_meaning(
            &with(
                r#""*""#,
                r#""ecr:BatchGetImage""#,
                r#","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-aaaaaaaaaa","aws:principalorgid":"o-bbbbbbbbbb"}}"#
            ),
            &with(
                r#""*""#,
                r#""ecr:BatchGetImage""#,
                r#","Condition":{"StringEquals":{"aws:principalorgid":"o-bbbbbbbbbb"}}"#
            )
        ));
        // Condition values keep their case; IfExists is another operator.
        let org = |op: &str, value: &str| {
            with(
                r#""*""#,
                r#""ecr:BatchGetImage""#,
                &format!(r#","Condition":{{"{op}":{{"aws:PrincipalOrgID":"{value}"}}}}"#),
            )
        };
        assert!(!same_meaning(
            &org("StringEquals", "o-abcdefghij"),
            &org("StringEquals", "O-ABCDEFGHIJ")
        ));
        assert!(!same_meaning(
            &org("StringEquals", "o-abcdefghij"),
            &org("StringEqualsIfExists", "o-abcdefghij")
        ));
        // Sid is identity, not meaning.
        let a = with(r#""*""#, r#""ecr:BatchGetImage""#, none);
        assert!(!same_meaning(&a, &a.replace("PtcPull", "TheirPull")));
    }
}
