//! The `rules` section: the pull through cache rules the operator expects
//! (`PTC_RULES`), the prefixes the deployment may manage (`PTC_RULE_PREFIXES`), the
//! credential age limit (`PTC_CREDENTIAL_MAX_AGE_DAYS`), and the roles that must be ECR
//! pull-time update exclusions (`PTC_PULL_TIME_EXCLUDED_ROLES`).

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::source::{FileSettings, Source, invalid, split_list};
use crate::pull_time::PrincipalArn;
use crate::rules::{Prefix, PtcRule, RuleError};

/// A rule the operator expects the registry to have: a `PTC_RULES` item, or a `[[rules]]`
/// table of the file (keys `prefix`, `upstream_url`, `credential`; unknown keys are errors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedRule {
    /// The rule's repository prefix, e.g. `docker-hub` (see [`Prefix::parse`]).
    pub prefix: Prefix,
    /// The upstream registry URL, e.g. `registry-1.docker.io`: a registry host
    /// ([`crate::rules::UpstreamKind::for_url`]). A host whose kind this version does not know
    /// (an upstream AWS added after it) is kept, with a note ([`Self::unknown_kind_note`]);
    /// only a host this code knows ECR cannot cache from (`gcr.io`, ...) and what is not a
    /// host are refused. From `PTC_RULES` normalised (no scheme, no trailing `/`, lowercase);
    /// from the file as written.
    pub upstream_url: String,
    /// Whether the rule must carry a credential secret.
    #[serde(default)]
    pub credential: bool,
}

impl ExpectedRule {
    /// `PREFIX=UPSTREAM_URL` or `PREFIX=UPSTREAM_URL+credential`.
    ///
    /// The error is a message: no `=`, or the [`RuleError`] of the prefix or URL. An upstream
    /// this version does not know is no error (see [`Self::unknown_kind_note`]).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (prefix, url) = spec
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("{spec:?} is not PREFIX=UPSTREAM_URL"))?;
        let (url, credential) = match url.strip_suffix("+credential") {
            Some(url) => (url, true),
            None => (url, false),
        };
        let rule = PtcRule::new(prefix.trim(), url).map_err(|e: RuleError| e.to_string())?;
        Ok(Self {
            prefix: rule.prefix,
            upstream_url: rule.upstream_url,
            credential,
        })
    }

    /// This rule as a [`PtcRule`] (kind inferred from the URL, [`UpstreamKind::Other`] with
    /// the host for one this version does not know; no credential ARN): a routing table entry
    /// for `ptc map` without a registry.
    ///
    /// # Panics
    ///
    /// When the URL is not one [`PtcRule::new`] accepts: never for a value the settings read,
    /// which are validated; possible for one built by hand.
    ///
    /// [`UpstreamKind::Other`]: crate::rules::UpstreamKind::Other
    pub fn to_rule(&self) -> PtcRule {
        // Validated when read: a registry host (of a known kind or not).
        PtcRule::new(self.prefix.as_str(), &self.upstream_url)
            .expect("expected rules are validated when read")
    }

    /// For an upstream this version does not know, the note reports give the rule, e.g.
    /// `upstream registry.new.example is not one this version knows; checked as a generic
    /// registry (...)` (see [`PtcRule::unknown_kind_note`]); `None` for a known one.
    pub fn unknown_kind_note(&self) -> Option<String> {
        self.to_rule().unknown_kind_note()
    }
}

/// What [`load`] reads.
pub(super) struct RulesSection {
    pub expected_rules: Vec<ExpectedRule>,
    pub rule_prefixes: Vec<Prefix>,
    pub credential_max_age_days: u32,
    pub pull_time_excluded_roles: Vec<PrincipalArn>,
}

/// `PTC_RULES` (`PREFIX=URL[+credential]` items; each prefix once; an upstream this version
/// does not know is kept, see [`ExpectedRule::unknown_kind_note`]), `PTC_RULE_PREFIXES`
/// (prefixes without a trailing `/`), `PTC_CREDENTIAL_MAX_AGE_DAYS` (1-3650, default 90).
pub(super) fn load(src: &Source, file: &mut FileSettings) -> Result<RulesSection, ConfigError> {
    let expected_rules = match src.var("PTC_RULES") {
        Some(value) => split_list(&value)
            .map(|spec| ExpectedRule::parse(spec).map_err(|r| invalid("PTC_RULES", spec, r)))
            .collect::<Result<Vec<_>, _>>()?,
        None => {
            for rule in &file.rules {
                PtcRule::new(rule.prefix.as_str(), &rule.upstream_url)
                    .map_err(|e| src.file_err("rules", e.to_string()))?;
            }
            std::mem::take(&mut file.rules)
        }
    };
    let mut seen = std::collections::HashSet::new();
    for rule in &expected_rules {
        if !seen.insert(rule.prefix.clone()) {
            return Err(invalid(
                "PTC_RULES",
                rule.prefix.as_str(),
                "prefix listed twice",
            ));
        }
    }

    // A trailing "/" is a valid rule prefix for ECR, but the template writes the IAM
    // scope `repository/<prefix>/*` from the same list: `quay/` would scope it to
    // `repository/quay//*`, which matches no repository.
    let rule_prefix = |p: &str| {
        if p.ends_with('/') {
            return Err(format!(
                "no trailing \"/\" (the IAM scope built from RulePrefixes, repository/{p}*, would match no repository)"
            ));
        }
        Prefix::parse(p).map_err(|e| e.to_string())
    };
    let rule_prefixes = match src.var("PTC_RULE_PREFIXES") {
        Some(value) => split_list(&value)
            .map(|p| rule_prefix(p).map_err(|e| invalid("PTC_RULE_PREFIXES", p, e)))
            .collect::<Result<Vec<_>, _>>()?,
        None => file
            .rule_prefixes
            .iter()
            .map(|p| rule_prefix(p).map_err(|e| src.file_err("rule_prefixes", e)))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let credential_max_age_days = src.number(
        "PTC_CREDENTIAL_MAX_AGE_DAYS",
        file.credential_max_age_days.map(u64::from),
        90,
        1..=3650,
    )? as u32;
    Ok(RulesSection {
        expected_rules,
        rule_prefixes,
        credential_max_age_days,
        pull_time_excluded_roles: pull_time_excluded_roles(src)?,
    })
}

/// `PTC_PULL_TIME_EXCLUDED_ROLES`: IAM role or user ARNs (ECR's exclusion pattern), each
/// once; environment only (the template writes it from the functions' roles).
fn pull_time_excluded_roles(src: &Source) -> Result<Vec<PrincipalArn>, ConfigError> {
    const NAME: &str = "PTC_PULL_TIME_EXCLUDED_ROLES";
    let Some(value) = src.var(NAME) else {
        return Ok(Vec::new());
    };
    let mut arns: Vec<PrincipalArn> = Vec::new();
    for item in split_list(&value) {
        let arn = PrincipalArn::parse(item).map_err(|r| invalid(NAME, item, r))?;
        if arns.contains(&arn) {
            return Err(invalid(NAME, item, "listed twice"));
        }
        arns.push(arn);
    }
    Ok(arns)
}

#[cfg(test)]
mod tests {
    use crate::Settings;

    fn excluded(value: &str) -> Result<Vec<String>, String> {
        Settings::from_sources(|name| {
            (name == "PTC_PULL_TIME_EXCLUDED_ROLES").then(|| value.to_owned())
        })
        .map(|s| {
            s.pull_time_excluded_roles
                .iter()
                .map(ToString::to_string)
                .collect()
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn pull_time_excluded_roles_are_role_or_user_arns() {
        assert_eq!(
            excluded(
                "arn:aws:iam::123456789012:role/ptc-PrewarmFunctionRole-1A2B,arn:aws:iam::123456789012:role/svc/health"
            )
            .unwrap(),
            [
                "arn:aws:iam::123456789012:role/ptc-PrewarmFunctionRole-1A2B",
                "arn:aws:iam::123456789012:role/svc/health"
            ]
        );
        assert_eq!(excluded("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_bad_excluded_role_stops_start_up_naming_it() {
        for (value, bad, why) in [
            (
                "arn:aws:iam::123456789012:role/ok,arn:aws:sts::123456789012:assumed-role/ptc/s",
                "assumed-role/ptc/s",
                "not an IAM role or user ARN",
            ),
            ("123456789012", "123456789012", "not an IAM role"),
            (
                "arn:aws:iam::123456789012:role/a,arn:aws:iam::123456789012:role/a",
                "role/a",
                "listed twice",
            ),
        ] {
            let err = excluded(value).unwrap_err();
            assert!(
                err.contains("PTC_PULL_TIME_EXCLUDED_ROLES")
                    && err.contains(bad)
                    && err.contains(why),
                "{value}: {err}"
            );
        }
    }
}
