//! IAM policy documents (repository policies) compared by meaning: a single statement or a
//! list, a string or a one-element list, and the order of statements and of list values do
//! not change what a policy allows.

use serde_json::{Map, Value};

/// Keys whose value may be a string or a list of strings, in any order.
const SET_KEYS: [&str; 6] = [
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "AWS",
    "Service",
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

/// The canonical form of a policy document, or `None` when it is not a JSON object.
pub fn canonical(text: &str) -> Option<Value> {
    let mut doc: Value = serde_json::from_str(text).ok()?;
    let object = doc.as_object_mut()?;
    if let Some(statement) = object.get_mut("Statement")
        && statement.is_object()
    {
        *statement = Value::Array(vec![statement.take()]);
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
}
