//! The `fix` section: what lifecycle-fixer brings every cached repository to (lifecycle
//! policy, pull grants, tags, scan on push), by default and per rule prefix, and how
//! (`fill`, `enforce`, `dry-run`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::source::{FileSettings, Source, invalid, pick, split_list};
use crate::rules::Prefix;

/// How lifecycle-fixer changes repositories (`PTC_FIX_MODE`, `ptc fix --mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixMode {
    /// Add what is missing, never replace what someone else set (the default).
    Fill,
    /// Bring what the product owns to the desired settings, keeping the rest.
    Enforce,
    /// Report what `enforce` would change; change nothing.
    DryRun,
}

impl FixMode {
    /// The setting's names, as `PTC_FIX_MODE` and `ptc fix --mode` take them.
    pub const CHOICES: [(&'static str, Self); 3] = [
        ("fill", Self::Fill),
        ("enforce", Self::Enforce),
        ("dry-run", Self::DryRun),
    ];

    /// `fill`, `enforce` or `dry-run`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fill => "fill",
            Self::Enforce => "enforce",
            Self::DryRun => "dry-run",
        }
    }
}

impl std::fmt::Display for FixMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FixMode {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        pick("mode", value, &Self::CHOICES).map_err(|e| match e {
            ConfigError::Invalid { reason, .. } => reason,
            other => other.to_string(),
        })
    }
}

/// What lifecycle-fixer brings every cached repository to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixSettings {
    /// `PTC_FIX_MODE` (file `fix_mode`): `fill` (default), `enforce` or `dry-run`.
    pub mode: FixMode,
    /// `PTC_LIFECYCLE_DAYS` (1-3650, default 30): the default lifecycle policy expires cached
    /// tagged images pushed more than this many days ago (the next pull caches them again).
    pub lifecycle_days: u32,
    /// `PTC_LIFECYCLE_POLICY`: a lifecycle policy document replacing the default (validated by
    /// lifecycle-fixer).
    pub lifecycle_policy: Option<String>,
    /// `PTC_PULL_PRINCIPALS`: accounts (12 digits) or IAM ARNs (starting `arn:aws`) granted
    /// pull on every cached repository.
    pub pull_principals: Vec<String>,
    /// `PTC_PULL_ORG_ID`: an AWS Organization granted pull (`aws:PrincipalOrgID`), `o-` and
    /// 10 to 32 lowercase letters or digits.
    pub pull_org_id: Option<String>,
    /// `PTC_REPOSITORY_TAGS` (`KEY=VALUE` items, key not empty; file table `repository_tags`): tags
    /// on every cached repository.
    pub repository_tags: BTreeMap<String, String>,
    /// `PTC_SCAN_ON_PUSH` (`true` or `false`, default false): turn on scan on push (applied only
    /// when the registry uses basic scanning).
    pub scan_on_push: bool,
    /// Overrides per rule prefix (`[prefixes.<prefix>]` in the file, or `PTC_PREFIX_SETTINGS`
    /// as a JSON object); what a prefix does not set comes from the settings above.
    pub prefixes: BTreeMap<Prefix, PrefixFix>,
}

/// The desired settings of one rule prefix, where they differ from the defaults: a
/// `[prefixes.<prefix>]` table of the file, or a value of the `PTC_PREFIX_SETTINGS` JSON
/// object. Unknown keys are errors; `None` inherits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixFix {
    /// Overrides [`FixSettings::lifecycle_days`] (1-3650); setting it drops an inherited global
    /// `lifecycle_policy`.
    pub lifecycle_days: Option<u32>,
    /// Overrides [`FixSettings::lifecycle_policy`].
    pub lifecycle_policy: Option<String>,
    /// Replaces [`FixSettings::pull_principals`] (12-digit accounts or IAM ARNs).
    pub pull_principals: Option<Vec<String>>,
    /// Overrides [`FixSettings::pull_org_id`] (`o-...`).
    pub pull_org_id: Option<String>,
    /// Replaces [`FixSettings::repository_tags`] whole (not merged with them).
    pub repository_tags: Option<BTreeMap<String, String>>,
    /// Overrides [`FixSettings::scan_on_push`].
    pub scan_on_push: Option<bool>,
}

impl FixSettings {
    /// The settings of `prefix`: its overrides on top of the defaults (with no
    /// [`prefixes`](Self::prefixes) of their own). A prefix that sets `lifecycle_days` but no
    /// `lifecycle_policy` does not inherit the global policy text.
    pub fn for_prefix(&self, prefix: &Prefix) -> FixSettings {
        let Some(o) = self.prefixes.get(prefix) else {
            return FixSettings {
                prefixes: BTreeMap::new(),
                ..self.clone()
            };
        };
        // A prefix that sets its own lifecycle days does not inherit a global policy text.
        let lifecycle_policy = match (&o.lifecycle_policy, o.lifecycle_days) {
            (Some(text), _) => Some(text.clone()),
            (None, Some(_)) => None,
            (None, None) => self.lifecycle_policy.clone(),
        };
        FixSettings {
            mode: self.mode,
            lifecycle_days: o.lifecycle_days.unwrap_or(self.lifecycle_days),
            lifecycle_policy,
            pull_principals: o
                .pull_principals
                .clone()
                .unwrap_or_else(|| self.pull_principals.clone()),
            pull_org_id: o.pull_org_id.clone().or_else(|| self.pull_org_id.clone()),
            repository_tags: o
                .repository_tags
                .clone()
                .unwrap_or_else(|| self.repository_tags.clone()),
            scan_on_push: o.scan_on_push.unwrap_or(self.scan_on_push),
            prefixes: BTreeMap::new(),
        }
    }
}

fn check_lifecycle_days(days: u32) -> Result<(), String> {
    (1..=3650)
        .contains(&days)
        .then_some(())
        .ok_or_else(|| format!("{days} is outside 1..=3650"))
}

fn check_principal(p: &str) -> Result<(), String> {
    let account = p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit());
    if account || p.starts_with("arn:aws") {
        Ok(())
    } else {
        Err(format!(
            "{p:?}: expected a 12-digit account ID or an IAM ARN"
        ))
    }
}

fn check_org_id(org: &str) -> Result<(), String> {
    let ok = org.strip_prefix("o-").is_some_and(|rest| {
        (10..=32).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{org:?}: expected an organization ID like o-a1b2c3d4e5"
        ))
    }
}

impl PrefixFix {
    fn check(&self) -> Result<(), String> {
        if let Some(days) = self.lifecycle_days {
            check_lifecycle_days(days).map_err(|e| format!("lifecycle_days: {e}"))?;
        }
        for p in self.pull_principals.iter().flatten() {
            check_principal(p).map_err(|e| format!("pull_principals: {e}"))?;
        }
        if let Some(org) = &self.pull_org_id {
            check_org_id(org).map_err(|e| format!("pull_org_id: {e}"))?;
        }
        Ok(())
    }
}

/// `PTC_FIX_MODE`, `PTC_LIFECYCLE_DAYS` (1-3650, default 30), `PTC_LIFECYCLE_POLICY`,
/// `PTC_PULL_PRINCIPALS` (12-digit accounts or IAM ARNs), `PTC_PULL_ORG_ID` (`o-...`),
/// `PTC_REPOSITORY_TAGS` (`KEY=VALUE` items), `PTC_SCAN_ON_PUSH`, `PTC_PREFIX_SETTINGS` (a JSON
/// object of prefix to [`PrefixFix`]; each prefix once, `quay` and `quay/` being one).
pub(super) fn load(src: &Source, file: &mut FileSettings) -> Result<FixSettings, ConfigError> {
    let mode = match src.var("PTC_FIX_MODE").or(file.fix_mode.take()) {
        Some(v) => pick("PTC_FIX_MODE", &v, &FixMode::CHOICES)?,
        None => FixMode::Fill,
    };
    let lifecycle_days = src.number(
        "PTC_LIFECYCLE_DAYS",
        file.lifecycle_days.map(u64::from),
        30,
        1..=3650,
    )? as u32;
    let lifecycle_policy = src
        .var("PTC_LIFECYCLE_POLICY")
        .or(file.lifecycle_policy.take());
    let pull_principals = match src.var("PTC_PULL_PRINCIPALS") {
        Some(v) => split_list(&v).map(str::to_owned).collect(),
        None => std::mem::take(&mut file.pull_principals),
    };
    for p in &pull_principals {
        check_principal(p).map_err(|r| invalid("PTC_PULL_PRINCIPALS", p, r))?;
    }
    let pull_org_id = src.var("PTC_PULL_ORG_ID").or(file.pull_org_id.take());
    if let Some(org) = &pull_org_id {
        check_org_id(org).map_err(|r| invalid("PTC_PULL_ORG_ID", org, r))?;
    }
    let repository_tags = match src.var("PTC_REPOSITORY_TAGS") {
        Some(v) => split_list(&v)
            .map(|kv| {
                kv.split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .ok_or_else(|| invalid("PTC_REPOSITORY_TAGS", kv, "expected KEY=VALUE"))
            })
            .collect::<Result<_, _>>()?,
        None => std::mem::take(&mut file.repository_tags),
    };
    let scan_on_push = src.flag("PTC_SCAN_ON_PUSH", file.scan_on_push)?;
    let by_text = match src.var("PTC_PREFIX_SETTINGS") {
        Some(v) => serde_json::from_str::<BTreeMap<String, PrefixFix>>(&v).map_err(|e| {
            invalid(
                "PTC_PREFIX_SETTINGS",
                &v,
                format!("expected a JSON object of prefix to settings: {e}"),
            )
        })?,
        None => std::mem::take(&mut file.prefixes),
    };
    let mut prefixes = BTreeMap::new();
    for (text, o) in by_text {
        let prefix = Prefix::parse(&text)
            .map_err(|reason| invalid("PTC_PREFIX_SETTINGS", &text, reason.to_string()))?;
        o.check()
            .map_err(|r| invalid("PTC_PREFIX_SETTINGS", &text, r))?;
        if prefixes.insert(prefix, o).is_some() {
            return Err(invalid(
                "PTC_PREFIX_SETTINGS",
                &text,
                "prefix listed twice (a trailing \"/\" names the same prefix)",
            ));
        }
    }
    Ok(FixSettings {
        mode,
        lifecycle_days,
        lifecycle_policy,
        pull_principals,
        pull_org_id,
        repository_tags,
        scan_on_push,
        prefixes,
    })
}
