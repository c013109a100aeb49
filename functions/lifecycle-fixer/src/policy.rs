//! ECR lifecycle policies: parsed, validated with the documented rules, compared by meaning.
//!
//! The shapes and rules are ECR's: lifecycle policies
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html>) and their
//! properties
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html>).
//! Unknown keys are refused, as a typo would otherwise be dropped silently and the policy
//! written without it.

use serde::{Deserialize, Serialize};

/// Lifecycle policy text length limits (ECR): the minimum length of `PutLifecyclePolicy`'s
/// `lifecyclePolicyText`
/// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PutLifecyclePolicy.html>).
/// [`LifecyclePolicy::parse`] compares it with the text's length in characters (Unicode
/// scalar values), as the quota is written ("Lifecycle policy length: 30,720 characters",
/// <https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html>), not bytes:
/// a description in Japanese takes three bytes a character.
pub const MIN_TEXT: usize = 100;
/// The maximum length of `PutLifecyclePolicy`'s `lifecyclePolicyText`, compared likewise.
pub const MAX_TEXT: usize = 30_720;
/// The most `*` wildcards one `tagPatternList` entry may hold ("Lifecycle policy
/// properties", tag pattern list:
/// <https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html>).
pub const MAX_WILDCARDS: usize = 4;

/// A lifecycle policy document: `{"rules": [...]}`, at least one rule. Build it with
/// [`LifecyclePolicy::parse`] to have it validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecyclePolicy {
    /// The rules, in the order written (ECR applies them by `rulePriority`).
    pub rules: Vec<Rule>,
}

/// One rule: which images it selects and what it does to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// `rulePriority`: from 1, unique in the policy, lowest applied first; a
    /// `tagStatus: any` rule must have the highest.
    pub rule_priority: u32,
    /// `description`, optional free text; part of the policy's meaning when comparing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `selection`: the images the rule applies to.
    pub selection: Selection,
    /// `action`: expire them, or move them to the archive storage class.
    pub action: Action,
}

/// A rule's `selection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selection {
    /// `tagStatus`: `tagged`, `untagged` or `any`.
    pub tag_status: TagStatus,
    /// `tagPrefixList`: tag prefixes (`prod` selects `prod1`); with `tagStatus: tagged` only,
    /// and then either this or `tagPatternList`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_prefix_list: Option<Vec<String>>,
    /// `tagPatternList`: tag patterns with `*` wildcards (`prod*`); with `tagStatus: tagged`
    /// only; at most [`MAX_WILDCARDS`] wildcards per pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_pattern_list: Option<Vec<String>>,
    /// `storageClass`: `standard` (the default) or `archive`, the storage class of the
    /// images the rule selects: `archive`, and required, with `sinceImageTransitioned`;
    /// `standard` with every other count type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// `countType`: what `countNumber` limits.
    pub count_type: CountType,
    /// `countUnit`: `days` for every count type but `imageCountMoreThan`, which takes none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_unit: Option<String>,
    /// `countNumber`: at least 1; images for `imageCountMoreThan`, days otherwise.
    pub count_number: u32,
}

/// `tagStatus`: which images a rule looks at (serialised in lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagStatus {
    /// Images with a tag matching `tagPrefixList` or `tagPatternList`.
    Tagged,
    /// Images without a tag (in a cache, these include the platform manifests of an
    /// index).
    Untagged,
    /// Every image; one rule at most, with the highest `rulePriority`.
    Any,
}

/// `countType`: the limit a rule applies (serialised in camelCase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CountType {
    /// More than `countNumber` images: the ones beyond the count are selected. No
    /// `countUnit`.
    ImageCountMoreThan,
    /// Pushed more than `countNumber` days ago (for a cache: when ECR stored the image).
    SinceImagePushed,
    /// Not pulled for more than `countNumber` days; accepted with the `transition` action
    /// only.
    SinceImagePulled,
    /// Moved to the archive storage class more than `countNumber` days ago.
    SinceImageTransitioned,
}

/// A rule's `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Action {
    /// `type`: `expire` or `transition`.
    #[serde(rename = "type")]
    pub kind: ActionKind,
    /// `targetStorageClass`: `archive`, required by `transition` and refused with `expire`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_storage_class: Option<String>,
}

/// `action.type` (serialised in lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// Delete the selected images.
    Expire,
    /// Move the selected images to the archive storage class.
    Transition,
}

/// Why ECR would refuse a lifecycle policy text (checked before anything is written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON, or not this shape (an unknown key, a wrong type, a missing field): serde's
    /// message, with line and column.
    #[error("lifecycle policy is not valid JSON for ECR: {0}")]
    Json(String),
    /// The text's length in characters is outside [`MIN_TEXT`]..=[`MAX_TEXT`].
    #[error("lifecycle policy text is {0} characters; ECR accepts 100 to 30,720")]
    Length(usize),
    /// One rule breaks a documented rule.
    #[error("lifecycle policy rule {priority}: {reason}")]
    Rule {
        /// The rule's `rulePriority`.
        priority: u32,
        /// What is wrong, e.g. `countNumber must be at least 1`.
        reason: String,
    },
    /// The policy as a whole is wrong: no rules, a `rulePriority` used twice, or more than
    /// one `tagStatus: any` rule.
    #[error("lifecycle policy: {0}")]
    Policy(String),
}

impl LifecyclePolicy {
    /// Parse and validate policy text as ECR would accept it: the shape, then
    /// [`LifecyclePolicy::validate`], then the length. The first problem is the error.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let policy: Self =
            serde_json::from_str(text).map_err(|e| PolicyError::Json(e.to_string()))?;
        policy.validate()?;
        let length = text.chars().count();
        if !(MIN_TEXT..=MAX_TEXT).contains(&length) {
            return Err(PolicyError::Length(length));
        }
        Ok(policy)
    }

    /// The documented rules (ECR lifecycle policy properties,
    /// <https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html>):
    /// at least one rule; unique `rulePriority` values from 1; at most one `tagStatus: any`
    /// rule, with the highest priority; `tagged` with exactly one of `tagPrefixList` and
    /// `tagPatternList`, `untagged` and `any` with neither; at most [`MAX_WILDCARDS`] `*`
    /// per tag pattern; `storageClass` `archive` (required) with `sinceImageTransitioned`
    /// and `standard` (or none) with the other count types; `countNumber` at least 1;
    /// `countUnit` `days` for every count type but `imageCountMoreThan`, which takes none;
    /// `transition` with `targetStorageClass` `archive`, `expire` without one. Also
    /// `sinceImagePulled` with `transition` only (ECR's archive storage class, "Archiving
    /// images": a pull-based rule archives, it never deletes).
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.rules.is_empty() {
            return Err(PolicyError::Policy("no rules".into()));
        }
        let mut priorities: Vec<u32> = self.rules.iter().map(|r| r.rule_priority).collect();
        priorities.sort_unstable();
        if priorities.windows(2).any(|w| w[0] == w[1]) {
            return Err(PolicyError::Policy(
                "rulePriority values must be unique".into(),
            ));
        }
        let highest = *priorities.last().expect("non-empty");
        let any_rules = self
            .rules
            .iter()
            .filter(|r| r.selection.tag_status == TagStatus::Any)
            .count();
        if any_rules > 1 {
            return Err(PolicyError::Policy(
                "only one rule may select tagStatus any".into(),
            ));
        }
        for rule in &self.rules {
            let bad = |reason: &str| PolicyError::Rule {
                priority: rule.rule_priority,
                reason: reason.to_owned(),
            };
            let s = &rule.selection;
            if rule.rule_priority == 0 {
                return Err(bad("rulePriority starts at 1"));
            }
            if s.tag_status == TagStatus::Any && rule.rule_priority != highest {
                return Err(bad(
                    "a tagStatus any rule must have the highest rulePriority (it is evaluated last)",
                ));
            }
            let lists = [&s.tag_prefix_list, &s.tag_pattern_list]
                .iter()
                .filter(|l| l.as_ref().is_some_and(|v| !v.is_empty()))
                .count();
            match s.tag_status {
                TagStatus::Tagged if lists != 1 => {
                    return Err(bad(
                        "tagStatus tagged needs exactly one of tagPrefixList or tagPatternList",
                    ));
                }
                TagStatus::Untagged | TagStatus::Any if lists != 0 => {
                    return Err(bad(
                        "tagPrefixList and tagPatternList go with tagStatus tagged only",
                    ));
                }
                _ => {}
            }
            // "Tag pattern list": at most four `*` wildcards per pattern.
            if let Some(pattern) = s
                .tag_pattern_list
                .iter()
                .flatten()
                .find(|p| p.matches('*').count() > MAX_WILDCARDS)
            {
                return Err(bad(&format!(
                    "tag pattern {pattern:?} has more than {MAX_WILDCARDS} wildcards (*)"
                )));
            }
            // "Storage class": `standard` (the default) with imageCountMoreThan,
            // sinceImagePushed and sinceImagePulled; `archive`, required, with
            // sinceImageTransitioned.
            match (s.count_type, s.storage_class.as_deref()) {
                (CountType::SinceImageTransitioned, Some("archive")) => {}
                (CountType::SinceImageTransitioned, _) => {
                    return Err(bad(
                        "sinceImageTransitioned needs storageClass archive (the only supported value)",
                    ));
                }
                (_, None | Some("standard")) => {}
                (_, Some(other)) => {
                    return Err(bad(&format!(
                        "storageClass {other:?} is not supported with imageCountMoreThan, sinceImagePushed or sinceImagePulled (only standard)"
                    )));
                }
            }
            // "Count number": positive integers, 0 is not accepted.
            if s.count_number == 0 {
                return Err(bad("countNumber must be at least 1"));
            }
            match (s.count_type, s.count_unit.as_deref()) {
                (CountType::ImageCountMoreThan, Some(_)) => {
                    return Err(bad("imageCountMoreThan takes no countUnit"));
                }
                (CountType::ImageCountMoreThan, None) => {}
                (_, Some("days")) => {}
                _ => {
                    return Err(bad(
                        "sinceImagePushed, sinceImagePulled and sinceImageTransitioned need countUnit days",
                    ));
                }
            }
            match rule.action.kind {
                ActionKind::Expire => {
                    if s.count_type == CountType::SinceImagePulled {
                        return Err(bad(
                            "sinceImagePulled works only with the transition action, not expire",
                        ));
                    }
                    if rule.action.target_storage_class.is_some() {
                        return Err(bad(
                            "targetStorageClass goes with the transition action only",
                        ));
                    }
                }
                ActionKind::Transition => {
                    if rule.action.target_storage_class.as_deref() != Some("archive") {
                        return Err(bad(
                            "the transition action needs targetStorageClass archive",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Rules that may expire a platform manifest of a multi-platform image while its index is
    /// still cached: the manifests an index points to are untagged, and ECR does not document
    /// that a lifecycle rule spares them (its delete API refuses them with
    /// `ImageReferencedByManifestList`; whether lifecycle expiry does the same is unconfirmed).
    /// One warning text per `expire` rule whose `tagStatus` is `untagged` or `any`.
    pub fn child_risks(&self) -> Vec<String> {
        self.rules
            .iter()
            .filter(|r| {
                r.action.kind == ActionKind::Expire && r.selection.tag_status != TagStatus::Tagged
            })
            .map(|r| {
                format!(
                    "lifecycle rule {} expires untagged images: it may expire a platform manifest of a multi-platform image whose index is still cached (pulls of that platform then fail); select tagged images only to be sure",
                    r.rule_priority
                )
            })
            .collect()
    }

    /// Canonical text: rules in priority order, keys in a fixed order, no whitespace.
    pub fn canonical(&self) -> String {
        let mut sorted = self.clone();
        sorted.rules.sort_by_key(|r| r.rule_priority);
        serde_json::to_string(&sorted).expect("a policy serialises")
    }
}

/// What a policy means, as text to compare: its canonical form with each rule's
/// `tagPatternList` and `tagPrefixList` as sets. ECR selects the images that match all of a
/// rule's patterns (or prefixes), so their order and repeats mean nothing ("Lifecycle policy
/// properties",
/// <https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html>).
fn meaning(policy: &LifecyclePolicy) -> String {
    let mut policy = policy.clone();
    for rule in &mut policy.rules {
        for list in [
            &mut rule.selection.tag_pattern_list,
            &mut rule.selection.tag_prefix_list,
        ]
        .into_iter()
        .flatten()
        {
            list.sort();
            list.dedup();
        }
    }
    policy.canonical()
}

/// Do two policy texts mean the same? Key order, whitespace, rule order and the order of a
/// rule's tag patterns or prefixes do not count. A text that does not parse is never equal
/// to anything (it has to be replaced or reported).
pub fn same_meaning(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<LifecyclePolicy>(a),
        serde_json::from_str::<LifecyclePolicy>(b),
    ) {
        (Ok(a), Ok(b)) => meaning(&a) == meaning(&b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPIRE_30: &str = r#"{"rules":[{"rulePriority":1,"description":"Expire images pushed more than 30 days ago","selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}"#;

    fn rule(priority: u32, selection: &str, action: &str) -> String {
        format!(
            r#"{{"rulePriority":{priority},"description":"a rule long enough to pass the minimum length of policy text","selection":{selection},"action":{action}}}"#
        )
    }

    fn policy(rules: &[String]) -> String {
        format!(r#"{{"rules":[{}]}}"#, rules.join(","))
    }

    #[test]
    fn accepts_the_documented_example() {
        let p = LifecyclePolicy::parse(EXPIRE_30).unwrap();
        assert_eq!(p.rules[0].selection.count_number, 30);
    }

    #[test]
    fn rejects_what_ecr_rejects() {
        let expire = r#"{"type":"expire"}"#;
        let cases = [
            (policy(&[rule(1, r#"{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":30}"#, expire)]), "sinceImagePulled"),
            (policy(&[rule(1, r#"{"tagStatus":"any","countType":"sinceImagePushed","countNumber":30}"#, expire)]), "countUnit days"),
            (policy(&[rule(1, r#"{"tagStatus":"any","countType":"imageCountMoreThan","countUnit":"days","countNumber":3}"#, expire)]), "no countUnit"),
            (policy(&[rule(1, r#"{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":3}"#, expire)]), "exactly one of"),
            (policy(&[rule(1, r#"{"tagStatus":"untagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":3}"#, expire)]), "tagged only"),
            (policy(&[rule(1, r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":0}"#, expire)]), "at least 1"),
            (policy(&[rule(1, r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5}"#, expire), rule(2, r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}"#, expire)]), "highest rulePriority"),
            (policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":5}"#, expire), rule(1, r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}"#, expire)]), "unique"),
            (policy(&[rule(1, r#"{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":30}"#, r#"{"type":"transition"}"#)]), "archive"),
            (policy(&[]), "no rules"),
            (
                policy(
                    &(1..=300)
                        .map(|p| rule(p, r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}"#, expire))
                        .collect::<Vec<_>>(),
                ),
                "characters",
            ),
            (r#"{"rules":[{"rulePriority":1,"selektion":{}}]}"#.to_owned(), "JSON"),
        ];
        for (text, expected) in cases {
            let err = LifecyclePolicy::parse(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}\n-> {err}");
        }
    }

    #[test]
    fn the_documented_rules_of_each_property() {
        // Each case from "Lifecycle policy properties"
        // (https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html).
        let expire = r#"{"type":"expire"}"#;
        let tagged = |patterns: &str| {
            policy(&[rule(
                1,
                &format!(
                    r#"{{"tagStatus":"tagged","tagPatternList":{patterns},"countType":"imageCountMoreThan","countNumber":5}}"#
                ),
                expire,
            )])
        };
        // "[\"*test*1*2*3\", \"test*1*2*3*\"] is valid but [\"test*1*2*3*4*5*6\"] is invalid".
        LifecyclePolicy::parse(&tagged(r#"["*test*1*2*3","test*1*2*3*"]"#)).unwrap();
        let err = LifecyclePolicy::parse(&tagged(r#"["test*1*2*3*4*5*6"]"#)).unwrap_err();
        assert!(err.to_string().contains("more than 4 wildcards"), "{err}");
        // Archive, then expire what has been archived for a year: the documented pair.
        let archive_then_expire = policy(&[
            rule(
                1,
                r#"{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":90}"#,
                r#"{"type":"transition","targetStorageClass":"archive"}"#,
            )
            .replace(r#""tagStatus":"any""#, r#""tagStatus":"untagged""#),
            rule(
                2,
                r#"{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365}"#,
                expire,
            ),
        ]);
        LifecyclePolicy::parse(&archive_then_expire).unwrap();
        let cases = [
            // sinceImageTransitioned: storageClass required, archive only.
            (
                r#"{"tagStatus":"any","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365}"#,
                "needs storageClass archive",
            ),
            (
                r#"{"tagStatus":"any","storageClass":"standard","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365}"#,
                "needs storageClass archive",
            ),
            // The other count types: standard only.
            (
                r#"{"tagStatus":"any","storageClass":"archive","countType":"sinceImagePushed","countUnit":"days","countNumber":30}"#,
                "only standard",
            ),
            (
                r#"{"tagStatus":"any","storageClass":"glacier","countType":"imageCountMoreThan","countNumber":3}"#,
                "only standard",
            ),
            // countUnit is days, nothing else.
            (
                r#"{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"hours","countNumber":30}"#,
                "countUnit days",
            ),
        ];
        for (selection, expected) in cases {
            let text = policy(&[rule(1, selection, expire)]);
            let err = LifecyclePolicy::parse(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{selection}\n-> {err}");
        }
        let standard = policy(&[rule(
            1,
            r#"{"tagStatus":"any","storageClass":"standard","countType":"sinceImagePushed","countUnit":"days","countNumber":30}"#,
            expire,
        )]);
        LifecyclePolicy::parse(&standard).unwrap();
    }

    #[test]
    fn length_is_counted_in_characters() {
        // 30,720 characters is the quota; a policy described in Japanese is three bytes a
        // character, so a byte count would refuse what ECR accepts.
        let description = "日本語の説明".repeat(2_000);
        let text = format!(
            r#"{{"rules":[{{"rulePriority":1,"description":"{description}","selection":{{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":3}},"action":{{"type":"expire"}}}}]}}"#
        );
        assert!(text.len() > MAX_TEXT && text.chars().count() < MAX_TEXT);
        LifecyclePolicy::parse(&text).unwrap();
    }

    #[test]
    fn pulled_based_archiving_is_allowed() {
        let text = policy(&[rule(
            1,
            r#"{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":90}"#,
            r#"{"type":"transition","targetStorageClass":"archive"}"#,
        )]);
        LifecyclePolicy::parse(&text).unwrap();
    }

    #[test]
    fn meaning_ignores_key_order_whitespace_and_rule_order() {
        let reordered = r#"{ "rules": [ { "action": { "type": "expire" }, "selection": { "countNumber": 30, "countUnit": "days", "countType": "sinceImagePushed", "tagStatus": "any" },
            "description": "Expire images pushed more than 30 days ago", "rulePriority": 1 } ] }"#;
        assert!(same_meaning(EXPIRE_30, reordered));
        let two = |first: &str, second: &str| format!(r#"{{"rules":[{first},{second}]}}"#);
        let a = rule(
            1,
            r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}"#,
            r#"{"type":"expire"}"#,
        );
        let b = rule(
            2,
            r#"{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30}"#,
            r#"{"type":"expire"}"#,
        );
        assert!(same_meaning(&two(&a, &b), &two(&b, &a)));
        assert!(!same_meaning(EXPIRE_30, &EXPIRE_30.replace("30}", "31}")));
        assert!(!same_meaning(EXPIRE_30, "not json"));
    }

    #[test]
    fn rules_that_can_reach_index_children_are_named() {
        let expire = r#"{"type":"expire"}"#;
        let tagged = policy(&[rule(
            1,
            r#"{"tagStatus":"tagged","tagPatternList":["*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":30}"#,
            expire,
        )]);
        assert!(
            LifecyclePolicy::parse(&tagged)
                .unwrap()
                .child_risks()
                .is_empty()
        );
        let risky = LifecyclePolicy::parse(EXPIRE_30).unwrap().child_risks();
        assert_eq!(risky.len(), 1);
        assert!(risky[0].contains("rule 1"), "{risky:?}");
        let archive = policy(&[rule(
            1,
            r#"{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":90}"#,
            r#"{"type":"transition","targetStorageClass":"archive"}"#,
        )]);
        assert!(
            LifecyclePolicy::parse(&archive)
                .unwrap()
                .child_risks()
                .is_empty()
        );
    }

    #[test]
    fn tag_patterns_are_a_set() {
        // ECR selects images matching all of a rule's patterns: order means nothing.
        let a = policy(&[rule(
            1,
            r#"{"tagStatus":"tagged","tagPatternList":["release*","prod*"],"countType":"imageCountMoreThan","countNumber":5}"#,
            r#"{"type":"expire"}"#,
        )]);
        let b = a.replace(r#"["release*","prod*"]"#, r#"["prod*","release*"]"#);
        assert_ne!(a, b);
        assert!(same_meaning(&a, &b));
        let c = a.replace(r#"["release*","prod*"]"#, r#"["prod*"]"#);
        assert!(!same_meaning(&a, &c), "fewer patterns select more images");
        let p = a
            .replace("tagPatternList", "tagPrefixList")
            .replace('*', "");
        let q = p.replace(r#"["release","prod"]"#, r#"["prod","release","prod"]"#);
        assert!(same_meaning(&p, &q));
    }
}
