//! The registry permissions policy: what another account needs from the cache account so
//! that its first pull of an image (and of a new tag) can go through the cache.
//!
//! A pull through the cache by a principal of another account needs, from the cache
//! account: `ecr:CreateRepository` (a first pull creates the repository) and
//! `ecr:BatchImportUpstreamImage` (a first pull, or a new tag, imports the image) in the
//! **registry** policy, on the rule prefix's repositories; and the pull actions in the
//! repository policy of the cached repository (written per repository and in the creation
//! templates: [`pull_policy`](crate::desired::pull_policy)). The puller's own identity
//! policy must allow the same (`ptc iam consumer-policy`). Source: "IAM permissions
//! required to sync an upstream registry with an Amazon ECR private registry"
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-iam.html>),
//! and private registry policies
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry-permissions.html>).
//!
//! The product owns, in the registry policy, the statements whose `Sid` is
//! `PtcImportPrincipals<id>` or `PtcImportOrganization<id>`, one per rule prefix (`<id>`:
//! 12 hex digits of the prefix's hash, stable, so adding a prefix only adds a statement). Everything else is kept
//! in every mode ([`ownership`]); a foreign `Deny` of the import actions on a prefix's
//! repositories is reported.

use ptc_core::ecr::{EcrTemplatesApi, Registry};
use ptc_core::rules::RuleSet;
use serde::Serialize;
use serde_json::{Value, json};

use crate::desired::DesiredSet;
use crate::ownership::{self, Merge};
use crate::plan::Mode;

/// What a first pull by another account needs in the cache account's registry policy.
pub const IMPORT_ACTIONS: [&str; 2] = ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"];

/// Is this registry-policy statement the product's (`PtcImportPrincipals` or
/// `PtcImportOrganization`, followed by letters and digits: a prefix's id)?
pub fn owns_statement(statement: &Value) -> bool {
    statement
        .get("Sid")
        .and_then(Value::as_str)
        .and_then(|sid| {
            sid.strip_prefix("PtcImportPrincipals")
                .or_else(|| sid.strip_prefix("PtcImportOrganization"))
        })
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The grants a repository policy of the product holds: the principals of
/// `PtcPullPrincipals` and the organization of `PtcPullOrganization`.
fn grants_of(repository_policy: &str) -> (Vec<String>, Option<String>) {
    let doc: Value = serde_json::from_str(repository_policy).unwrap_or_default();
    let mut principals = Vec::new();
    let mut org = None;
    for s in doc["Statement"].as_array().into_iter().flatten() {
        match s["Sid"].as_str() {
            Some("PtcPullPrincipals") => match &s["Principal"]["AWS"] {
                Value::Array(list) => {
                    principals.extend(list.iter().filter_map(Value::as_str).map(str::to_owned))
                }
                Value::String(one) => principals.push(one.clone()),
                _ => {}
            },
            Some("PtcPullOrganization") => {
                org = s["Condition"]["StringEquals"]["aws:PrincipalOrgID"]
                    .as_str()
                    .map(str::to_owned);
            }
            _ => {}
        }
    }
    principals.sort();
    principals.dedup();
    (principals, org)
}

/// A stable `Sid` suffix for a rule prefix: 12 hex digits of FNV-1a 64 of its text (`Sid`s
/// are alphanumeric). Stable across runs and rule lists, so adding a prefix adds a statement
/// (fill adds it) and changes no other statement's `Sid`.
fn prefix_id(prefix: &ptc_core::rules::Prefix) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in prefix.as_str().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:012x}", hash >> 16)
}

/// The product's registry-policy statements for these rules: per rule prefix that grants
/// principals (or an organization), one statement allowing [`IMPORT_ACTIONS`] on that
/// prefix's repositories to them, `Sid` `PtcImportPrincipals<id>` (or
/// `PtcImportOrganization<id>`) with the prefix's stable id. Principals' root ARNs are
/// written in the registry's partition. Empty when no prefix grants anyone.
pub fn desired_statements(
    rules: &RuleSet,
    desired: &DesiredSet,
    registry: &Registry,
) -> Vec<Value> {
    let mut out = Vec::new();
    let partition = registry.partition();
    for rule in rules.rules() {
        let Some(policy) = &desired.for_rule_prefix(&rule.prefix).repository_policy else {
            continue;
        };
        let (principals, org) = grants_of(policy);
        let resource = registry.repositories_arn(&rule.prefix);
        let id = prefix_id(&rule.prefix);
        if !principals.is_empty() {
            let principals: Vec<String> = principals
                .iter()
                .map(|p| match p.strip_prefix("arn:aws:iam::") {
                    Some(rest) => format!("arn:{partition}:iam::{rest}"),
                    None => p.clone(),
                })
                .collect();
            out.push(json!({
                "Sid": format!("PtcImportPrincipals{id}"),
                "Effect": "Allow",
                "Principal": {"AWS": principals},
                "Action": IMPORT_ACTIONS,
                "Resource": resource,
            }));
        }
        if let Some(org) = org {
            out.push(json!({
                "Sid": format!("PtcImportOrganization{id}"),
                "Effect": "Allow",
                "Principal": "*",
                "Action": IMPORT_ACTIONS,
                "Resource": resource,
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": org}},
            }));
        }
    }
    out
}

/// A prefix whose registry statement would also cover another rule prefix's repositories
/// with other grants: `repository/team/*` covers `team/k8s/*`, `repository/*` (a `ROOT`
/// rule) covers every prefix. An Allow cannot leave them out, so the grant of the wider
/// prefix would reach principals the narrower one does not grant (a first pull would
/// create and import there). `Some(why)` then: nothing is written.
fn overlapping_grants(rules: &RuleSet, desired: &DesiredSet) -> Option<String> {
    let grants = |prefix: &ptc_core::rules::Prefix| {
        desired
            .for_rule_prefix(prefix)
            .repository_policy
            .as_deref()
            .map(grants_of)
            .unwrap_or_default()
    };
    for wide in rules.rules() {
        let wide_grants = grants(&wide.prefix);
        if wide_grants.0.is_empty() && wide_grants.1.is_none() {
            continue;
        }
        for narrow in rules.rules() {
            let under = narrow.prefix != wide.prefix
                && (wide.prefix.is_root()
                    || narrow
                        .prefix
                        .as_str()
                        .starts_with(&format!("{}/", wide.prefix)));
            let narrow_grants = grants(&narrow.prefix);
            // The wider grant reaches the narrower prefix's repositories: fine when the
            // narrower prefix grants those principals (and that organization) too.
            let covered = wide_grants.0.iter().all(|p| narrow_grants.0.contains(p))
                && (wide_grants.1.is_none() || wide_grants.1 == narrow_grants.1);
            if under && !covered {
                return Some(format!(
                    "prefix {}'s first-pull grant would cover {}'s repositories too, whose grants differ (a registry statement cannot leave them out): give them the same pull principals, or rule prefixes that do not nest; the registry policy is left as it is",
                    wide.prefix, narrow.prefix
                ));
            }
        }
    }
    None
}

/// Foreign `Deny` statements that refuse (or may refuse) the import actions to a consumer
/// on a prefix's repositories, by `Sid` (or position): what they deny is the owner's
/// choice, so they are only reported. Judged by the same evaluator as validate-rules'
/// verdicts ([`ptc_core::access`]), with the foreign Denies next to an allow-all, so only an
/// explicit (or possible) deny can decide.
fn blocking_denies(
    policy: &str,
    rules: &RuleSet,
    desired: &DesiredSet,
    registry: &Registry,
) -> Vec<String> {
    use ptc_core::access::{Consumer, Outcome, Policy, Request, Resource, evaluate};
    let doc: Value = serde_json::from_str(policy).unwrap_or_default();
    let statements: Vec<Value> = match &doc["Statement"] {
        Value::Array(list) => list.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    let mut denies: Vec<Value> = Vec::new();
    let mut names = Vec::new();
    for (i, s) in statements.iter().enumerate() {
        if owns_statement(s) || s["Effect"].as_str() != Some("Deny") {
            continue;
        }
        let name = match s["Sid"].as_str() {
            Some(sid) if !sid.is_empty() => format!("statement {sid}"),
            _ => format!("the statement at position {} (no Sid)", i + 1),
        };
        // The evaluator names a statement by its Sid; give each a unique one to find it.
        let mut s = s.clone();
        s["Sid"] = Value::String(format!("PtcProbe{i}"));
        names.push((format!("PtcProbe{i}"), name));
        denies.push(s);
    }
    if denies.is_empty() {
        return Vec::new();
    }
    denies.push(json!({"Sid": "PtcProbeAllowAll", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}));
    let probe = Policy::parse(
        "registry policy",
        Some(&json!({"Statement": denies}).to_string()),
    );
    let mut out: Vec<String> = Vec::new();
    for rule in rules.rules() {
        let Some(grant) = &desired.for_rule_prefix(&rule.prefix).repository_policy else {
            continue;
        };
        let (principals, org) = grants_of(grant);
        let resource = Resource::Under(
            registry
                .repositories_arn(&rule.prefix)
                .trim_end_matches('*')
                .to_owned(),
        );
        for consumer in Consumer::from_grants(&principals, org.as_deref()) {
            for action in IMPORT_ACTIONS {
                let decision = evaluate(
                    &[&probe],
                    &Request {
                        consumer: &consumer,
                        action,
                        resource: &resource,
                    },
                );
                if decision.outcome == Outcome::Allowed {
                    continue;
                }
                let Some(decided) = decision.statement.as_deref() else {
                    continue;
                };
                if let Some((_, name)) =
                    names.iter().find(|(sid, _)| decided.contains(sid.as_str()))
                    && !out.contains(name)
                {
                    out.push(name.clone());
                }
            }
        }
    }
    out
}

/// How the registry policy compared, and what was (or would be) written (serialised in
/// kebab-case where an enum).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegistryPolicyResult {
    /// `ok` (the product's statements as desired, or none desired and none there),
    /// `missing`/`different` (before this run's action), or `conflict` (not written).
    pub status: String,
    /// What is wrong, for a person, including foreign `Deny` statements that block
    /// consumers.
    pub findings: Vec<String>,
    /// `written`, `would write` (dry run), or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The whole policy text written (or that would be).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The foreign statements `text` keeps.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
    /// The product's statements `text` no longer holds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// A read or write that failed (counts as a failed item).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Check the registry policy against the statements the rules' grants need, and write the
/// merged policy (fill adds the product's missing statements, enforce also rewrites and
/// removes its own; a dry run only plans). Calls: `DescribeRegistry`, `GetRegistryPolicy`,
/// and `PutRegistryPolicy` when something is written.
pub async fn check(
    api: &dyn EcrTemplatesApi,
    rules: &RuleSet,
    desired: &DesiredSet,
    mode: Mode,
    dry_run: bool,
) -> RegistryPolicyResult {
    let mut result = RegistryPolicyResult {
        status: "ok".into(),
        ..RegistryPolicyResult::default()
    };
    let (registry, have) = match tokio::join!(api.registry(), api.registry_policy()) {
        (Ok(r), Ok(p)) => (r, p),
        (Err(e), _) | (_, Err(e)) => {
            result.status = "unknown".into();
            result.error = Some(format!("cannot read the registry policy: {e}"));
            return result;
        }
    };
    if let Some(why) = overlapping_grants(rules, desired) {
        result.status = "conflict".into();
        result.findings.push(why);
        return result;
    }
    let statements = desired_statements(rules, desired, &registry);
    let want = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
    let merged = match &have {
        None if statements.is_empty() => Merge::Same,
        None => Merge::Write {
            text: want,
            replaces: false,
            kept: Vec::new(),
            removed: Vec::new(),
        },
        Some(have) => ownership::merge_statements(
            have,
            &want,
            mode == Mode::Enforce,
            &owns_statement,
            "registry policy",
        ),
    };
    if let Some(have) = &have {
        for deny in blocking_denies(have, rules, desired, &registry) {
            result.findings.push(format!(
                "the registry policy's {deny} denies ecr:CreateRepository or ecr:BatchImportUpstreamImage on rule-prefix repositories: other accounts' first pulls may be refused (kept: it is not the product's)"
            ));
        }
    }
    match merged {
        Merge::Same => {}
        Merge::Differs(why) => {
            result.status = "different".into();
            result.findings.push(format!("registry policy: {why}"));
        }
        Merge::Conflict(why) => {
            result.status = "conflict".into();
            result.findings.push(why);
        }
        Merge::Write {
            text,
            replaces,
            kept,
            removed,
        } => {
            result.status = if replaces { "different" } else { "missing" }.into();
            result.findings.push(
                "the registry policy lacks the product's statements other accounts' first pulls need (ecr:CreateRepository, ecr:BatchImportUpstreamImage on the rule prefixes' repositories)".into(),
            );
            result.kept = kept;
            result.removed = removed;
            if dry_run {
                result.action = Some("would write".into());
            } else {
                match api.put_registry_policy(&text).await {
                    Ok(()) => result.action = Some("written".into()),
                    Err(e) => result.error = Some(format!("cannot write the registry policy: {e}")),
                }
            }
            result.text = Some(text);
        }
    }
    result
}

impl RegistryPolicyResult {
    /// Compliant after the run: nothing differed, or it was written.
    pub fn compliant_after_run(&self) -> bool {
        self.error.is_none()
            && (self.status == "ok" || self.action.as_deref() == Some("written"))
            && !self.findings.iter().any(|f| f.contains("denies"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ptc_core::fakes::{FakeTemplates, fake_registry};
    use ptc_core::rules::{Prefix, PtcRule};

    use super::*;
    use crate::desired::{Desired, default_lifecycle, pull_policy};

    fn rules() -> RuleSet {
        RuleSet::new(vec![
            PtcRule::new("quay", "quay.io").unwrap(),
            PtcRule::new("k8s", "registry.k8s.io").unwrap(),
        ])
    }

    fn desired(principals: &[&str], org: Option<&str>) -> DesiredSet {
        Desired {
            lifecycle_policy: Some(default_lifecycle(30).canonical()),
            repository_policy: pull_policy(
                &principals
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect::<Vec<_>>(),
                org,
            ),
            tags: BTreeMap::new(),
            scan_on_push: false,
        }
        .into()
    }

    /// `prefix` grants pull to `account` only (a `PTC_PREFIX_SETTINGS` override).
    fn grant(set: &mut DesiredSet, prefix: &str, account: &str) {
        let desired = Desired {
            repository_policy: pull_policy(&[account.to_owned()], None),
            ..set.default.clone()
        };
        set.prefixes.insert(Prefix::parse(prefix).unwrap(), desired);
    }

    #[test]
    fn one_statement_per_prefix_with_a_stable_sid() {
        let mut set = desired(&["222233334444"], Some("o-abc123"));
        grant(&mut set, "k8s", "333344445555");
        let statements = desired_statements(&rules(), &set, &fake_registry());
        // quay: principals and organization; k8s: its own principals only.
        assert_eq!(statements.len(), 3, "{statements:?}");
        let k8s = statements
            .iter()
            .find(|s| s["Resource"] == "arn:aws:ecr:us-east-1:123456789012:repository/k8s/*")
            .unwrap();
        assert_eq!(
            k8s["Principal"]["AWS"],
            json!(["arn:aws:iam::333344445555:root"])
        );
        let quay_sids: Vec<&str> = statements
            .iter()
            .filter(|s| s["Resource"] == "arn:aws:ecr:us-east-1:123456789012:repository/quay/*")
            .filter_map(|s| s["Sid"].as_str())
            .collect();
        assert_eq!(quay_sids.len(), 2);
        assert!(statements.iter().all(owns_statement));
        // Stable: the same prefix has the same Sid whatever the other rules.
        let alone = desired_statements(
            &RuleSet::new(vec![PtcRule::new("quay", "quay.io").unwrap()]),
            &set,
            &fake_registry(),
        );
        assert_eq!(alone[0]["Sid"].as_str(), Some(quay_sids[0]));
        let root = RuleSet::new(vec![PtcRule::new("ROOT", "quay.io").unwrap()]);
        let statements =
            desired_statements(&root, &desired(&["222233334444"], None), &fake_registry());
        assert_eq!(
            statements[0]["Resource"],
            json!("arn:aws:ecr:us-east-1:123456789012:repository/*")
        );
    }

    #[tokio::test]
    async fn fill_adds_a_new_prefixs_and_a_new_consumers_statement() {
        // Second review: with Sids numbered by position, a new prefix or a new group made
        // fill write a useless copy or nothing at all.
        let api = FakeTemplates::default();
        let quay_only = RuleSet::new(vec![PtcRule::new("quay", "quay.io").unwrap()]);
        check(
            &api,
            &quay_only,
            &desired(&["333344445555"], None),
            Mode::Fill,
            false,
        )
        .await;
        // A new prefix, same principals: fill adds its statement.
        let added = check(
            &api,
            &rules(),
            &desired(&["333344445555"], None),
            Mode::Fill,
            false,
        )
        .await;
        assert_eq!(added.action.as_deref(), Some("written"), "{added:?}");
        let text = api.registry_policy.lock().unwrap().clone().unwrap();
        assert!(text.contains("repository/k8s/*"), "{text}");
        // k8s now grants another account: fill keeps the old statement and says so;
        // enforce rewrites it.
        let mut set = desired(&["333344445555"], None);
        grant(&mut set, "k8s", "222233334444");
        let fill = check(&api, &rules(), &set, Mode::Fill, false).await;
        assert_eq!(fill.status, "different", "{fill:?}");
        let enforce = check(&api, &rules(), &set, Mode::Enforce, false).await;
        assert_eq!(enforce.action.as_deref(), Some("written"), "{enforce:?}");
        let text = api.registry_policy.lock().unwrap().clone().unwrap();
        assert!(text.contains("222233334444"), "{text}");
        assert_eq!(
            check(&api, &rules(), &set, Mode::Fill, false).await.action,
            None
        );
    }

    #[tokio::test]
    async fn fill_adds_the_statements_keeps_foreign_ones_and_reports_a_blocking_deny() {
        let api = FakeTemplates::default();
        let replication = r#"{"Sid":"ReplicationFromProd","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Resource":"arn:aws:ecr:us-east-1:123456789012:repository/*"}"#;
        let deny = r#"{"Sid":"NoImportsIntoK8s","Effect":"Deny","Principal":"*","Action":"ecr:BatchImportUpstreamImage","Resource":"arn:aws:ecr:us-east-1:123456789012:repository/k8s/*"}"#;
        *api.registry_policy.lock().unwrap() = Some(format!(
            r#"{{"Version":"2012-10-17","Statement":[{replication},{deny}]}}"#
        ));
        let set = desired(&["222233334444"], None);
        let dry = check(&api, &rules(), &set, Mode::Enforce, true).await;
        assert_eq!(dry.action.as_deref(), Some("would write"));
        assert_eq!(*api.registry_policy_writes.lock().unwrap(), 0);
        assert_eq!(
            dry.kept,
            [
                "statement ReplicationFromProd",
                "statement NoImportsIntoK8s"
            ]
        );
        assert!(
            dry.findings.iter().any(|f| f.contains("NoImportsIntoK8s")),
            "{dry:?}"
        );
        let fill = check(&api, &rules(), &set, Mode::Fill, false).await;
        assert_eq!(fill.action.as_deref(), Some("written"), "{fill:?}");
        let written = api.registry_policy.lock().unwrap().clone().unwrap();
        assert!(written.contains("ReplicationFromProd") && written.contains("PtcImportPrincipals"));
        let again = check(&api, &rules(), &set, Mode::Fill, false).await;
        assert_eq!(again.action, None, "{again:?}");
        assert_eq!(*api.registry_policy_writes.lock().unwrap(), 1);
        // No grant desired any more: enforce removes the product's statement only.
        let none = desired(&[], None);
        let cleared = check(&api, &rules(), &none, Mode::Enforce, false).await;
        assert_eq!(cleared.removed.len(), 2, "one per prefix: {cleared:?}");
        let written = api.registry_policy.lock().unwrap().clone().unwrap();
        assert!(!written.contains("PtcImport") && written.contains("ReplicationFromProd"));
    }

    #[tokio::test]
    async fn no_grant_no_policy_nothing_written() {
        let api = FakeTemplates::default();
        let result = check(&api, &rules(), &desired(&[], None), Mode::Enforce, false).await;
        assert_eq!(result.status, "ok");
        assert_eq!(*api.registry_policy_writes.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn nested_prefixes_with_other_grants_are_a_conflict() {
        // Review case: team grants 333344445555, team/k8s grants 222233334444; a statement
        // on repository/team/* would let 3333 create and import under team/k8s/.
        let rules = RuleSet::new(vec![
            PtcRule::new("team", "quay.io").unwrap(),
            PtcRule::new("team/k8s", "registry.k8s.io").unwrap(),
        ]);
        let mut set = desired(&["333344445555"], None);
        grant(&mut set, "team/k8s", "222233334444");
        let api = FakeTemplates::default();
        let result = check(&api, &rules, &set, Mode::Enforce, false).await;
        assert_eq!(result.status, "conflict", "{result:?}");
        assert!(result.findings[0].contains("team/k8s"));
        assert_eq!(*api.registry_policy_writes.lock().unwrap(), 0);
        // The same under a ROOT rule.
        let rules = RuleSet::new(vec![
            PtcRule::new("ROOT", "quay.io").unwrap(),
            PtcRule::new("k8s", "registry.k8s.io").unwrap(),
        ]);
        let mut set = desired(&["333344445555"], None);
        grant(&mut set, "k8s", "222233334444");
        assert_eq!(
            check(&api, &rules, &set, Mode::Enforce, false).await.status,
            "conflict"
        );
        // Same grants everywhere: no conflict.
        let same = desired(&["333344445555"], None);
        assert_eq!(
            check(&api, &rules, &same, Mode::Enforce, false)
                .await
                .action
                .as_deref(),
            Some("written")
        );
    }

    #[test]
    fn denies_are_judged_as_validate_judges_them() {
        // Second review: a Deny of one repository, or of an unrelated account, or with a
        // NotAction excluding both import actions, were misjudged by a sample-ARN check.
        let set = desired(&["222233334444"], None);
        let reported = |deny: Value| {
            let policy = json!({"Statement": [deny]}).to_string();
            blocking_denies(&policy, &rules(), &set, &fake_registry())
        };
        let base = "arn:aws:ecr:us-east-1:123456789012:repository";
        assert_eq!(
            reported(
                json!({"Sid": "One", "Effect": "Deny", "Principal": "*", "Action": "ecr:CreateRepository", "Resource": format!("{base}/k8s/pause")})
            ),
            ["statement One"]
        );
        assert!(
            reported(json!({"Sid": "Other", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "ecr:*", "Resource": "*"})).is_empty()
        );
        assert!(
            reported(json!({"Sid": "Not", "Effect": "Deny", "Principal": "*", "NotAction": ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"], "Resource": "*"})).is_empty()
        );
        assert_eq!(
            reported(
                json!({"Sid": "Cluster", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::222233334444:role/cluster"}, "Action": "ecr:BatchImportUpstreamImage", "Resource": "*"})
            ),
            ["statement Cluster"]
        );
    }
}
