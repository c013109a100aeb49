//! The validation job: every rule (or the prefixes an event names) is validated by ECR, its
//! credential secret is checked through Secrets Manager, the rules are compared with the
//! ones the config expects, each prefix's consumers are checked against the registry policy
//! and the creation templates ([`crate::cross_account`]), and the results become a report
//! and CloudWatch metrics.
//!
//! Rules are independent: a failing call for one rule is that rule's finding, never the
//! end of the run. Nothing here creates, changes or deletes a rule or a secret.

use std::collections::BTreeMap;

use futures::StreamExt as _;
use ptc_core::AwsError;
use ptc_core::config::ExpectedRule;
use ptc_core::ecr::{EcrApi, EcrTemplatesApi, RuleValidation};
use ptc_core::metrics::MetricsApi;
use ptc_core::rules::{Prefix, PtcRule};
use ptc_core::secrets::SecretsApi;
use time::OffsetDateTime;

use crate::credential::{age_days, check_secret};
use crate::event::Trigger;
use crate::options::Options;
use crate::report::{Finding, RuleResult, Severity, Summary, ValidationReport, metric_data};

/// The ports a run uses. The Lambda passes the SDK adapters; tests pass the fakes. Nothing
/// here writes to ECR or Secrets Manager.
pub struct Deps<'a> {
    /// ECR: `DescribePullThroughCacheRules` (every page) once per run (not at all for
    /// [`Trigger::Nothing`]), `ValidatePullThroughCacheRule` once per rule in scope, and
    /// `ListPullTimeUpdateExclusions` (every page) once per full run when a principal is
    /// expected ([`crate::pull_time`]).
    pub ecr: &'a dyn EcrApi,
    /// Secrets Manager: `DescribeSecret` for each rule's credential secret, then
    /// `GetSecretValue` (unless the secret is scheduled for deletion) to check the value's
    /// keys and date. The value is never logged or reported.
    pub secrets: &'a dyn SecretsApi,
    /// Where the run's data points go: `PutMetricData`, or Embedded Metric Format log
    /// lines (`PTC_METRICS_SINK`).
    pub metrics: &'a dyn MetricsApi,
    /// The registry's settings, for cross-account readiness: `DescribeRegistry`,
    /// `GetRegistryPolicy` and `DescribeRepositoryCreationTemplates`, once per run, and only
    /// when a rule in scope has consumers ([`Options::consumers`]).
    pub templates: &'a dyn EcrTemplatesApi,
}

/// Run the job for a trigger. Whatever happens, the run publishes its `RunErrors` point
/// (unless metrics are off); the totals only when every rule was read.
pub async fn run(
    deps: &Deps<'_>,
    options: &Options,
    trigger: &Trigger,
    now: OffsetDateTime,
) -> ValidationReport {
    let (mut report, totals_known) = check(deps, options, trigger, now).await;
    // A registry-wide question: asked by full runs (schedule, `{}`, `ptc validate`), not by
    // each rule's events.
    if matches!(trigger, Trigger::All { .. }) {
        report.pull_time_exclusions = crate::pull_time::check(
            deps.ecr,
            &options.pull_time_exclusions,
            options.caller_exclusion.as_ref(),
        )
        .await;
    }
    if options.publish_metrics {
        let full_run = matches!(trigger, Trigger::All { .. });
        publish(deps, options, &mut report, full_run, totals_known).await;
    }
    report
}

/// The run without publishing: the report, and whether it covers the whole registry (a run
/// for every rule whose listing succeeded), so that its totals mean something.
async fn check(
    deps: &Deps<'_>,
    options: &Options,
    trigger: &Trigger,
    now: OffsetDateTime,
) -> (ValidationReport, bool) {
    let mut report = ValidationReport::new(trigger.source());
    let wanted: Option<Vec<String>> = match trigger {
        Trigger::Nothing { .. } => return (report, false),
        Trigger::All { .. } => None,
        Trigger::Prefixes { prefixes, .. } => {
            // A name that cannot be a rule prefix is an error naming it; the rest go on.
            let mut valid = Vec::new();
            for prefix in prefixes {
                match Prefix::parse(prefix) {
                    Ok(p) => valid.push(p.as_str().to_owned()),
                    Err(err) => report.errors.push(err.to_string()),
                }
            }
            Some(valid)
        }
    };
    let rules = match deps.ecr.describe_rules().await {
        Ok(rules) => rules,
        Err(err) => {
            tracing::error!(error = %err, "cannot list the pull-through cache rules");
            report.errors.push(format!("cannot list the rules: {err}"));
            return (report, false);
        }
    };
    let in_scope = |prefix: &str| {
        wanted
            .as_ref()
            .is_none_or(|w| w.iter().any(|p| p == prefix))
    };
    let expected: BTreeMap<&str, &ExpectedRule> = options
        .expected
        .iter()
        .filter(|e| in_scope(e.prefix.as_str()))
        .map(|e| (e.prefix.as_str(), e))
        .collect();
    report.notes = expected
        .iter()
        .filter_map(|(prefix, e)| {
            e.unknown_kind_note()
                .map(|note| format!("expected rule {prefix}: {note}"))
        })
        .collect();

    let checks = rules
        .iter()
        .filter(|r| in_scope(r.prefix.as_str()))
        .map(|rule| {
            check_rule(
                deps,
                options,
                rule,
                expected.get(rule.prefix.as_str()).copied(),
                now,
            )
        });
    report.rules = futures::stream::iter(checks)
        .buffered(options.concurrency.max(1))
        .collect()
        .await;

    report.missing = expected
        .values()
        .filter(|e| !rules.iter().any(|r| r.prefix == e.prefix))
        .map(|e| (*e).clone())
        .collect();
    if !options.expected.is_empty() {
        report.unexpected = rules
            .iter()
            .filter(|r| {
                in_scope(r.prefix.as_str())
                    && !options.expected.iter().any(|e| e.prefix == r.prefix)
            })
            .map(|r| r.prefix.to_string())
            .collect();
    }
    if let Some(wanted) = &wanted {
        report.not_found = wanted
            .iter()
            .filter(|p| !rules.iter().any(|r| r.prefix.as_str() == p.as_str()))
            .cloned()
            .collect();
    }
    let judged: Vec<&PtcRule> = rules
        .iter()
        .filter(|r| in_scope(r.prefix.as_str()))
        .collect();
    match crate::cross_account::assess(deps.templates, &judged, &options.consumers).await {
        Ok(prefixes) => report.cross_account = prefixes,
        Err(errors) => {
            for error in &errors {
                tracing::error!(error = %error, "cross-account readiness not known");
            }
            report.errors.extend(errors);
        }
    }
    report.summary = Summary {
        rules: report.rules.len(),
        valid: report.rules.iter().filter(|r| r.valid).count(),
        invalid: report.rules.iter().filter(|r| !r.valid).count(),
        missing: report.missing.len(),
        unexpected: report.unexpected.len(),
        cross_account_ready: report.cross_account.iter().filter(|p| p.ready).count(),
        cross_account_not_ready: report.cross_account.iter().filter(|p| !p.ready).count(),
    };
    (report, wanted.is_none())
}

async fn check_rule(
    deps: &Deps<'_>,
    options: &Options,
    rule: &PtcRule,
    expected: Option<&ExpectedRule>,
    now: OffsetDateTime,
) -> RuleResult {
    let prefix = rule.prefix.as_str();
    let mut result = RuleResult {
        prefix: prefix.to_owned(),
        upstream: rule.upstream_url.clone(),
        upstream_kind: rule.kind.to_string(),
        credential_arn: rule.credential_arn.clone(),
        valid: false,
        ecr_valid: None,
        failure: None,
        credential_changed_at: None,
        credential_age_days: None,
        findings: Vec::new(),
    };
    let (validation, secret_findings) = tokio::join!(deps.ecr.validate_rule(prefix), async {
        match &rule.credential_arn {
            Some(arn) => {
                check_secret(deps.secrets, arn, options.credential_max_age_days, now).await
            }
            None => (Vec::new(), None),
        }
    });
    record_validation(&mut result, validation);
    let (findings, changed) = secret_findings;
    result.findings.extend(findings);
    result.credential_changed_at = changed;
    result.credential_age_days = changed.map(|t| age_days(now, t));
    result.findings.extend(credential_missing(rule));
    result.findings.extend(unknown_kind(rule));
    result.findings.extend(out_of_scope(options, rule));
    result.findings.extend(drift(expected, rule));
    result.valid = result.ecr_valid == Some(true)
        && !result
            .findings
            .iter()
            .any(|f| f.severity == Severity::Error);
    tracing::info!(
        prefix,
        valid = result.valid,
        findings = result.findings.len(),
        "rule checked"
    );
    result
}

/// ECR's answer to `ValidatePullThroughCacheRule`: its verdict and failure text, or the
/// error that kept it from answering, as a finding.
fn record_validation(result: &mut RuleResult, validation: Result<RuleValidation, AwsError>) {
    match validation {
        Ok(v) => {
            result.ecr_valid = Some(v.is_valid);
            if !v.is_valid {
                let text = v
                    .failure
                    .clone()
                    .unwrap_or_else(|| "no reason given".into());
                result.findings.push(Finding::error(
                    "ecr-validation-failed",
                    format!("ECR says the rule is not valid: {text}"),
                ));
            }
            result.failure = v.failure;
        }
        Err(err) => result.findings.push(Finding::error(
            "ecr-validation-error",
            format!("could not validate the rule: {err}"),
        )),
    }
}

/// An upstream that needs a credential (Docker Hub, GitHub, GitLab, Azure) and a rule
/// without one.
fn credential_missing(rule: &PtcRule) -> Option<Finding> {
    (rule.credential_arn.is_none() && rule.kind.needs_credentials()).then(|| {
        Finding::error(
            "credential-missing",
            format!(
                "upstream {} ({}) needs a credential secret, and the rule has none",
                rule.upstream_url, rule.kind
            ),
        )
    })
}

/// A rule whose `upstreamRegistry` this version does not know (AWS added the upstream after
/// it): a note, not an error. It is checked as a generic registry: ECR's validation and the
/// secret checks as for any rule, no credential required of it (no `credential-missing`),
/// drift by prefix, URL and credential.
fn unknown_kind(rule: &PtcRule) -> Option<Finding> {
    rule.unknown_kind_note()
        .map(|note| Finding::note("upstream-kind-unknown", note))
}

/// A rule outside the deployment's rule prefixes (`PTC_RULE_PREFIXES`): the functions' IAM
/// policies reach only the repositories under those prefixes (the template's RulePrefixes),
/// so this rule's repositories would be denied to prewarm, lifecycle-fixer and
/// health-metrics. ROOT in the list scopes the policies to every repository (its
/// repositories have no prefix), so then every rule is in scope; a listed prefix also covers
/// the rule prefixes below it (`repository/team/*` holds `team/quay/...`).
fn out_of_scope(options: &Options, rule: &PtcRule) -> Option<Finding> {
    let in_scope = options.rule_prefixes.is_empty()
        || options.rule_prefixes.iter().any(|p| {
            p.is_root()
                || p == &rule.prefix
                || rule
                    .prefix
                    .as_str()
                    .strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        });
    (!in_scope).then(|| {
        Finding::error(
            "prefix-out-of-scope",
            format!(
                "prefix {} is not one of the deployment's rule prefixes ({}): the functions cannot manage its repositories; add it to RulePrefixes (PTC_RULE_PREFIXES)",
                rule.prefix,
                options
                    .rule_prefixes
                    .iter()
                    .map(Prefix::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// Where the rule differs from the one the settings expect (`PTC_RULES`): its upstream, or
/// whether it carries a credential.
fn drift(expected: Option<&ExpectedRule>, rule: &PtcRule) -> Vec<Finding> {
    let mut findings = Vec::new();
    let Some(want) = expected else {
        return findings;
    };
    if want.upstream_url != rule.upstream_url {
        findings.push(Finding::error(
            "drift-upstream",
            format!(
                "the config expects upstream {}, the registry has {}",
                want.upstream_url, rule.upstream_url
            ),
        ));
    }
    if want.credential != rule.credential_arn.is_some() {
        let (wanted, actual) = if want.credential {
            ("a credential", "none")
        } else {
            ("no credential", "one")
        };
        findings.push(Finding::error(
            "drift-credential",
            format!("the config expects {wanted}, the rule has {actual}"),
        ));
    }
    findings
}

/// The run's metrics; `full_run` for a run over every rule (the heartbeat), `totals_known`
/// when it could also list them (the totals).
async fn publish(
    deps: &Deps<'_>,
    options: &Options,
    report: &mut ValidationReport,
    full_run: bool,
    totals_known: bool,
) {
    let data = metric_data(report, totals_known);
    report.metrics_published = ptc_core::metrics::publish_run(
        deps.metrics,
        &options.namespace,
        ptc_core::metrics::Run::new(report.job).full(full_run),
        data,
        &mut report.errors,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use ptc_core::AwsErrorKind;
    use ptc_core::ecr::RuleValidation;
    use ptc_core::fakes::FakeEcr;
    use ptc_core::fakes::FakeMetrics;
    use ptc_core::fakes::FakeSecrets;
    use ptc_core::fakes::FakeTemplates;
    use ptc_core::secrets::SecretInfo;
    use std::sync::Mutex;
    use time::Duration;

    use super::*;
    use crate::cross_account::Consumers;
    use ptc_core::access::{Consumer, Outcome};

    const NOW: i64 = 1_795_000_000;
    const ARN: &str =
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbC";
    const GOOD: &str = r#"{"username":"u","accessToken":"dckr_pat_SECRET"}"#;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(NOW).unwrap()
    }

    fn options() -> Options {
        Options {
            namespace: "Test".into(),
            expected: Vec::new(),
            credential_max_age_days: 90,
            rule_prefixes: Vec::new(),
            concurrency: 4,
            publish_metrics: true,
            consumers: Consumers::default(),
            pull_time_exclusions: Vec::new(),
            caller_exclusion: None,
        }
    }

    fn secret(name: &str, changed_days_ago: i64) -> SecretInfo {
        SecretInfo {
            arn: ARN.into(),
            name: name.into(),
            deleted_at: None,
            last_changed_at: Some(now() - Duration::days(changed_days_ago)),
            last_rotated_at: None,
            created_at: Some(now() - Duration::days(400)),
        }
    }

    /// The registry's settings: [`FakeTemplates`], with its reads counted and a read that
    /// can be made to fail.
    #[derive(Default)]
    struct Settings {
        inner: FakeTemplates,
        reads: Mutex<Vec<&'static str>>,
        fail: Mutex<Option<(&'static str, AwsErrorKind)>>,
    }

    impl Settings {
        fn read(&self, operation: &'static str) -> Result<(), ptc_core::AwsError> {
            self.reads.lock().unwrap().push(operation);
            match &*self.fail.lock().unwrap() {
                Some((op, kind)) if *op == operation => Err(ptc_core::AwsError {
                    operation,
                    kind: kind.clone(),
                    message: "refused".into(),
                }),
                _ => Ok(()),
            }
        }
    }

    #[async_trait::async_trait]
    impl EcrTemplatesApi for Settings {
        async fn describe_templates(
            &self,
        ) -> Result<Vec<ptc_core::ecr::CreationTemplate>, ptc_core::AwsError> {
            self.read("DescribeRepositoryCreationTemplates")?;
            self.inner.describe_templates().await
        }
        async fn put_template(
            &self,
            _: &ptc_core::ecr::CreationTemplate,
            _: bool,
        ) -> Result<(), ptc_core::AwsError> {
            unreachable!("validate-rules writes nothing")
        }
        async fn registry_policy(&self) -> Result<Option<String>, ptc_core::AwsError> {
            self.read("GetRegistryPolicy")?;
            self.inner.registry_policy().await
        }
        async fn put_registry_policy(&self, _: &str) -> Result<(), ptc_core::AwsError> {
            unreachable!("validate-rules writes nothing")
        }
        async fn registry(&self) -> Result<ptc_core::ecr::Registry, ptc_core::AwsError> {
            self.read("DescribeRegistry")?;
            self.inner.registry().await
        }
    }

    struct World {
        ecr: FakeEcr,
        secrets: FakeSecrets,
        metrics: FakeMetrics,
        settings: Settings,
    }

    impl World {
        fn new(rules: Vec<PtcRule>) -> Self {
            Self {
                ecr: FakeEcr::with_rules(rules),
                secrets: FakeSecrets::default(),
                metrics: FakeMetrics::default(),
                settings: Settings::default(),
            }
        }

        async fn run(&self, options: &Options, trigger: Trigger) -> ValidationReport {
            let deps = Deps {
                ecr: &self.ecr,
                secrets: &self.secrets,
                metrics: &self.metrics,
                templates: &self.settings,
            };
            run(&deps, options, &trigger, now()).await
        }

        fn metric(&self, name: &str, prefix: Option<&str>) -> Option<f64> {
            self.metrics
                .published
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|(_, d)| {
                    d.name == name
                        && prefix
                            .is_none_or(|p| d.dimensions == [("Prefix".to_owned(), p.to_owned())])
                })
                .map(|(_, d)| d.value)
        }
    }

    impl World {
        /// The last value of `name` without dimension (a total).
        fn total(&self, name: &str) -> Option<f64> {
            self.metrics
                .published
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|(_, d)| d.name == name && d.dimensions.is_empty())
                .map(|(_, d)| d.value)
        }
    }

    fn all() -> Trigger {
        Trigger::All {
            source: "test".into(),
        }
    }

    fn docker() -> PtcRule {
        PtcRule::new("docker-hub", "registry-1.docker.io")
            .unwrap()
            .with_credential(ARN)
    }

    fn quay() -> PtcRule {
        PtcRule::new("quay", "quay.io").unwrap()
    }

    fn codes(result: &RuleResult) -> Vec<&'static str> {
        result.findings.iter().map(|f| f.code).collect()
    }

    #[tokio::test]
    async fn healthy_rules_are_valid_and_publish_metrics() {
        let world = World::new(vec![docker(), quay()]);
        world
            .secrets
            .insert(secret("ecr-pullthroughcache/docker-hub", 10), Some(GOOD));
        let report = world.run(&options(), all()).await;
        assert_eq!(
            report.summary,
            Summary {
                rules: 2,
                valid: 2,
                invalid: 0,
                missing: 0,
                unexpected: 0,
                ..Summary::default()
            }
        );
        assert!(report.healthy() && report.errors.is_empty());
        let docker = report
            .rules
            .iter()
            .find(|r| r.prefix == "docker-hub")
            .unwrap();
        assert_eq!(docker.credential_age_days.map(f64::round), Some(10.0));
        assert!(docker.findings.is_empty());
        assert_eq!(world.metric("RuleValid", Some("docker-hub")), Some(1.0));
        assert_eq!(world.metric("RuleValid", Some("quay")), Some(1.0));
        assert_eq!(
            world
                .metric("CredentialAgeDays", Some("docker-hub"))
                .map(f64::round),
            Some(10.0)
        );
        assert_eq!(world.metric("RulesInvalid", None), Some(0.0));
        assert_eq!(world.metric("RulesMissing", None), Some(0.0));
        assert_eq!(world.metric("CredentialsTooOld", None), Some(0.0));
        assert_eq!(
            report.metrics_published, 8,
            "5 as before, CredentialsTooOld, RunErrors and FullRuns"
        );
    }

    #[tokio::test]
    async fn ecr_failures_make_the_rule_invalid_with_its_text() {
        let world = World::new(vec![quay()]);
        world.ecr.state.lock().unwrap().validations.insert(
            "quay".into(),
            RuleValidation {
                prefix: "quay".into(),
                is_valid: false,
                failure: Some("Unable to reach quay.io".into()),
            },
        );
        let report = world.run(&options(), all()).await;
        let rule = &report.rules[0];
        assert!(!rule.valid);
        assert_eq!(rule.ecr_valid, Some(false));
        assert_eq!(rule.failure.as_deref(), Some("Unable to reach quay.io"));
        assert_eq!(codes(rule), ["ecr-validation-failed"]);
        assert_eq!(world.metric("RuleValid", Some("quay")), Some(0.0));
        assert_eq!(world.metric("RulesInvalid", None), Some(1.0));
    }

    #[tokio::test]
    async fn one_failing_call_does_not_stop_the_other_rules() {
        let world = World::new(vec![docker(), quay()]);
        world
            .secrets
            .insert(secret("ecr-pullthroughcache/docker-hub", 1), Some(GOOD));
        world
            .ecr
            .fail_next("ValidatePullThroughCacheRule", AwsErrorKind::Throttled);
        let report = world.run(&options(), all()).await;
        assert_eq!(report.rules.len(), 2);
        assert_eq!(report.summary.valid, 1);
        let failed = report.rules.iter().find(|r| !r.valid).unwrap();
        assert_eq!(codes(failed), ["ecr-validation-error"]);
        assert!(failed.findings[0].message.contains("throttled"));
    }

    #[tokio::test]
    async fn every_secret_problem_is_a_finding() {
        let cases: Vec<(SecretInfo, Option<&str>, Vec<&str>)> = vec![
            (
                secret("other/docker-hub", 1),
                Some(GOOD),
                vec!["secret-name"],
            ),
            (
                SecretInfo {
                    deleted_at: Some(now() + Duration::days(7)),
                    ..secret("ecr-pullthroughcache/docker-hub", 1)
                },
                Some(GOOD),
                vec!["secret-deletion-scheduled"],
            ),
            (
                secret("ecr-pullthroughcache/docker-hub", 1),
                Some(r#"{"user":"u","token":"t"}"#),
                vec!["secret-keys"],
            ),
            (
                secret("ecr-pullthroughcache/docker-hub", 1),
                Some(r#"{"username":"u","accessToken":""}"#),
                vec!["secret-keys"],
            ),
            (
                secret("ecr-pullthroughcache/docker-hub", 1),
                Some("plain-text-token"),
                vec!["secret-keys"],
            ),
            (
                secret("ecr-pullthroughcache/docker-hub", 1),
                None,
                vec!["secret-unreadable"],
            ),
        ];
        for (info, value, expected) in cases {
            let world = World::new(vec![docker()]);
            world.secrets.insert(info.clone(), value);
            let report = world.run(&options(), all()).await;
            let rule = &report.rules[0];
            assert_eq!(codes(rule), expected, "{info:?}");
            assert!(!rule.valid);
            let text = serde_json::to_string(&report).unwrap();
            assert!(
                !text.contains("dckr_pat_SECRET") && !text.contains("plain-text-token"),
                "value leaked: {text}"
            );
        }
    }

    #[tokio::test]
    async fn missing_and_denied_secrets_are_findings() {
        let world = World::new(vec![docker()]);
        let report = world.run(&options(), all()).await;
        assert_eq!(codes(&report.rules[0]), ["secret-not-found"]);

        let world = World::new(vec![docker()]);
        world
            .secrets
            .insert(secret("ecr-pullthroughcache/docker-hub", 1), Some(GOOD));
        world.secrets.denied.lock().unwrap().push(ARN.into());
        let report = world.run(&options(), all()).await;
        assert_eq!(codes(&report.rules[0]), ["secret-access-denied"]);
    }

    #[tokio::test]
    async fn an_old_credential_is_a_warning_not_a_failure() {
        let world = World::new(vec![docker()]);
        world
            .secrets
            .insert(secret("ecr-pullthroughcache/docker-hub", 120), Some(GOOD));
        let report = world.run(&options(), all()).await;
        let rule = &report.rules[0];
        assert!(rule.valid);
        assert_eq!(codes(rule), ["credential-age"]);
        assert_eq!(rule.findings[0].severity, Severity::Warning);
        assert!(rule.findings[0].message.contains("120 days"));
        // The total the CredentialTooOld alarm watches.
        assert_eq!(world.metric("CredentialsTooOld", None), Some(1.0));
    }

    #[tokio::test]
    async fn the_credential_age_is_the_age_of_the_value_not_of_the_last_edit() {
        // The token was stored 120 days ago; someone edited the secret's tags 2 days ago,
        // which moves DescribeSecret's LastChangedDate but not the value's version date.
        let world = World::new(vec![docker()]);
        let stored = now() - Duration::days(120);
        world.secrets.insert_version(
            secret("ecr-pullthroughcache/docker-hub", 2),
            Some(GOOD),
            Some(stored),
        );
        let report = world.run(&options(), all()).await;
        let rule = &report.rules[0];
        assert_eq!(codes(rule), ["credential-age"]);
        assert_eq!(rule.credential_changed_at, Some(stored));
        assert_eq!(rule.credential_age_days, Some(120.0));
        assert_eq!(
            world.metric("CredentialAgeDays", Some("docker-hub")),
            Some(120.0)
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["rules"][0]["credential_changed_at"],
            "2026-07-21T11:06:40Z"
        );

        // Without a version date (a secret scheduled for deletion is not read), the
        // secret's own last change stands in.
        let world = World::new(vec![docker()]);
        world.secrets.insert_version(
            SecretInfo {
                deleted_at: Some(now() + Duration::days(7)),
                ..secret("ecr-pullthroughcache/docker-hub", 30)
            },
            Some(GOOD),
            Some(stored),
        );
        let report = world.run(&options(), all()).await;
        assert_eq!(report.rules[0].credential_age_days, Some(30.0));
    }

    #[tokio::test]
    async fn a_prefix_that_cannot_exist_is_an_error_and_the_others_run() {
        let world = World::new(vec![docker(), quay()]);
        world
            .secrets
            .insert(secret("ecr-pullthroughcache/docker-hub", 1), Some(GOOD));
        let report = world
            .run(
                &options(),
                Trigger::Prefixes {
                    source: "test".into(),
                    prefixes: vec!["Quay Mirror".into(), "quay/".into(), "gone".into()],
                },
            )
            .await;
        assert_eq!(
            report
                .rules
                .iter()
                .map(|r| r.prefix.as_str())
                .collect::<Vec<_>>(),
            ["quay"]
        );
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        assert!(
            report.errors[0].contains("\"Quay Mirror\""),
            "{:?}",
            report.errors
        );
        assert_eq!(report.not_found, ["gone"]);
    }

    #[tokio::test]
    async fn an_upstream_that_needs_credentials_without_any_is_reported() {
        let world = World::new(vec![PtcRule::new("ghcr", "ghcr.io").unwrap()]);
        let report = world.run(&options(), all()).await;
        assert_eq!(codes(&report.rules[0]), ["credential-missing"]);
        assert!(!report.rules[0].valid);
    }

    #[tokio::test]
    async fn chainguard_needs_a_credential() {
        // The user guide lists Chainguard Registry with the upstreams that need a secret.
        let world = World::new(vec![PtcRule::new("chainguard", "cgr.dev").unwrap()]);
        let report = world.run(&options(), all()).await;
        assert_eq!(report.rules[0].upstream_kind, "chainguard");
        assert_eq!(codes(&report.rules[0]), ["credential-missing"]);
        assert!(!report.rules[0].valid);
    }

    #[tokio::test]
    async fn a_rule_of_a_kind_this_version_does_not_know_is_a_note_not_a_failure() {
        // ECR answers with an upstreamRegistry AWS added after this version: the rule is
        // checked as a generic registry (ECR's validation, its secret), with a note.
        let future = PtcRule {
            prefix: Prefix::parse("future").unwrap(),
            upstream_url: "registry.future-upstream.example".into(),
            kind: ptc_core::rules::UpstreamKind::parse("future-registry"),
            credential_arn: Some(ARN.into()),
            custom_role_arn: None,
            upstream_repository_prefix: None,
        };
        let world = World::new(vec![future.clone(), quay()]);
        world
            .secrets
            .insert(secret("ecr-pullthroughcache/docker-hub", 1), Some(GOOD));
        let mut opts = options();
        opts.expected = vec![
            // PTC_RULES names the same upstream by its URL alone: kept, with a note.
            ExpectedRule::parse("future=registry.future-upstream.example+credential").unwrap(),
            ExpectedRule::parse("quay=quay.io").unwrap(),
        ];
        let report = world.run(&opts, all()).await;
        let rule = report.rules.iter().find(|r| r.prefix == "future").unwrap();
        assert_eq!(rule.upstream_kind, "future-registry");
        assert_eq!(codes(rule), ["upstream-kind-unknown"]);
        assert_eq!(rule.findings[0].severity, Severity::Note);
        assert_eq!(
            rule.findings[0].message,
            "upstream kind \"future-registry\" (registry.future-upstream.example) is not known to this version; checked as a generic registry (no credential required of it, its credential sent to registry.future-upstream.example only)"
        );
        assert!(rule.valid && rule.credential_age_days.is_some());
        assert_eq!(
            report.notes,
            [
                "expected rule future: upstream registry.future-upstream.example is not one this version knows; checked as a generic registry (no credential required of it, its credential sent to registry.future-upstream.example only)"
            ]
        );
        assert!(report.healthy() && report.errors.is_empty());
        assert_eq!(world.metric("RuleValid", Some("future")), Some(1.0));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["rules"][0]["findings"][0]["severity"], "note");

        // Without a credential, an unknown kind is not held to one: ECR's validation decides.
        let world = World::new(vec![PtcRule {
            credential_arn: None,
            ..future
        }]);
        let report = world.run(&options(), all()).await;
        assert_eq!(codes(&report.rules[0]), ["upstream-kind-unknown"]);
        assert!(report.rules[0].valid);
        assert!(report.notes.is_empty());
    }

    #[tokio::test]
    async fn drift_missing_unexpected_and_different_rules() {
        let world = World::new(vec![
            docker(),
            quay(),
            PtcRule::new("k8s", "registry.k8s.io").unwrap(),
        ]);
        world
            .secrets
            .insert(secret("ecr-pullthroughcache/docker-hub", 1), Some(GOOD));
        let mut opts = options();
        opts.expected = vec![
            ExpectedRule::parse("docker-hub=registry-1.docker.io").unwrap(),
            ExpectedRule::parse("quay=public.ecr.aws").unwrap(),
            ExpectedRule::parse("ghcr=ghcr.io+credential").unwrap(),
        ];
        let report = world.run(&opts, all()).await;
        assert_eq!(
            report
                .missing
                .iter()
                .map(|m| m.prefix.as_str())
                .collect::<Vec<_>>(),
            ["ghcr"]
        );
        assert_eq!(report.unexpected, ["k8s"]);
        let docker = report
            .rules
            .iter()
            .find(|r| r.prefix == "docker-hub")
            .unwrap();
        assert_eq!(codes(docker), ["drift-credential"]);
        let quay = report.rules.iter().find(|r| r.prefix == "quay").unwrap();
        assert_eq!(codes(quay), ["drift-upstream"]);
        assert_eq!(report.summary.missing, 1);
        assert!(!report.healthy());
        assert_eq!(world.metric("RulesMissing", None), Some(1.0));
        assert_eq!(world.metric("RuleValid", Some("ghcr")), Some(0.0));
    }

    #[tokio::test]
    async fn a_scoped_run_checks_only_its_prefix_and_publishes_no_totals() {
        let world = World::new(vec![docker(), quay()]);
        let report = world
            .run(
                &options(),
                Trigger::Prefixes {
                    source: "event".into(),
                    prefixes: vec!["quay".into()],
                },
            )
            .await;
        assert_eq!(report.rules.len(), 1);
        assert_eq!(report.rules[0].prefix, "quay");
        assert_eq!(world.ecr.calls("ValidatePullThroughCacheRule"), 1);
        assert_eq!(world.metric("RulesInvalid", None), None);
        assert_eq!(world.metric("RuleValid", Some("quay")), Some(1.0));
    }

    #[tokio::test]
    async fn a_deleted_expected_rule_is_missing() {
        let world = World::new(vec![quay()]);
        let mut opts = options();
        opts.expected =
            vec![ExpectedRule::parse("docker-hub=registry-1.docker.io+credential").unwrap()];
        let report = world
            .run(
                &opts,
                Trigger::Prefixes {
                    source: "CloudTrail DeletePullThroughCacheRule".into(),
                    prefixes: vec!["docker-hub".into()],
                },
            )
            .await;
        assert!(report.rules.is_empty());
        assert_eq!(report.missing.len(), 1);
        assert_eq!(report.not_found, ["docker-hub"]);
        assert_eq!(world.metric("RuleValid", Some("docker-hub")), Some(0.0));
    }

    #[tokio::test]
    async fn publishing_failures_are_reported_and_results_kept() {
        let world = World::new(vec![quay()]);
        *world.metrics.fail.lock().unwrap() = Some(ptc_core::AwsError {
            operation: "PutMetricData",
            kind: AwsErrorKind::Throttled,
            message: "Rate exceeded".into(),
        });
        let report = world.run(&options(), all()).await;
        assert_eq!(report.summary.valid, 1);
        assert_eq!(report.metrics_published, 0);
        assert!(
            report.errors[0].contains("PutMetricData"),
            "{:?}",
            report.errors
        );
    }

    #[tokio::test]
    async fn listing_failure_is_a_run_error() {
        let world = World::new(vec![quay()]);
        world.ecr.fail_next(
            "DescribePullThroughCacheRules",
            AwsErrorKind::AccessDenied("AccessDeniedException".into()),
        );
        let report = world.run(&options(), all()).await;
        assert!(report.rules.is_empty());
        assert!(report.errors[0].contains("AccessDeniedException"));
        // Only the run's RunErrors point and its heartbeat: no totals it cannot know (a 0
        // would clear the alarms).
        let published = world.metrics.published.lock().unwrap();
        let names: Vec<&str> = published.iter().map(|(_, d)| d.name.as_str()).collect();
        assert_eq!(
            names,
            ["RunErrors", "FullRuns"],
            "and the heartbeat of a full run"
        );
        assert_eq!(published[0].1.value, 1.0);
        assert_eq!(
            published[0].1.dimensions,
            [("Job".to_owned(), "validate-rules".to_owned())]
        );
    }

    #[tokio::test]
    async fn a_rule_outside_the_deployment_prefixes_is_invalid() {
        let world = World::new(vec![
            quay(),
            PtcRule::new("gitlab", "registry.gitlab.com").unwrap(),
        ]);
        let mut options = options();
        options.rule_prefixes = vec![
            Prefix::parse("quay").unwrap(),
            Prefix::parse("docker-hub").unwrap(),
        ];
        let report = world.run(&options, all()).await;
        let gitlab = report.rules.iter().find(|r| r.prefix == "gitlab").unwrap();
        assert!(!gitlab.valid);
        assert!(
            gitlab
                .findings
                .iter()
                .any(|f| f.code == "prefix-out-of-scope" && f.message.contains("quay, docker-hub")),
            "{:?}",
            gitlab.findings
        );
        let quay = report.rules.iter().find(|r| r.prefix == "quay").unwrap();
        assert!(
            quay.findings
                .iter()
                .all(|f| f.code != "prefix-out-of-scope")
        );
        assert_eq!(world.metric("RulesInvalid", None), Some(1.0));
        assert_eq!(world.metric("RunErrors", None), Some(0.0));
        // A listed prefix covers the rule prefixes below it (IAM's repository/team/*).
        let nested = World::new(vec![PtcRule::new("team/quay", "quay.io").unwrap()]);
        let mut team = super::tests::options();
        team.rule_prefixes = vec![Prefix::parse("team").unwrap()];
        let report = nested.run(&team, all()).await;
        assert!(report.rules[0].valid, "{:?}", report.rules);
        // With ROOT listed, the policies reach every repository: every rule is in scope.
        options.rule_prefixes.push(Prefix::parse("ROOT").unwrap());
        let report = world.run(&options, all()).await;
        assert!(
            report
                .rules
                .iter()
                .flat_map(|r| &r.findings)
                .all(|f| f.code != "prefix-out-of-scope"),
            "{:?}",
            report.rules
        );
    }

    #[tokio::test]
    async fn a_successful_sync_needs_nothing() {
        let world = World::new(vec![quay()]);
        let report = world
            .run(
                &options(),
                Trigger::Nothing {
                    source: "sync SUCCESS".into(),
                },
            )
            .await;
        assert!(report.rules.is_empty() && report.errors.is_empty());
        assert_eq!(world.ecr.calls("DescribePullThroughCacheRules"), 0);
    }

    // -- cross-account readiness ---------------------------------------------------------

    /// Consumers: account 222233334444 everywhere, and for quay the organization instead.
    fn with_consumers() -> Options {
        let mut options = options();
        options.consumers = Consumers {
            default: vec![Consumer::principal("222233334444")],
            prefixes: std::collections::BTreeMap::from([(
                Prefix::parse("quay").unwrap(),
                vec![Consumer::organization("o-a1b2c3d4e5")],
            )]),
        };
        options
    }

    fn k8s() -> PtcRule {
        PtcRule::new("k8s", "registry.k8s.io").unwrap()
    }

    /// What lifecycle-fixer writes for those grants (the fakes' registry is 123456789012 in
    /// us-east-1): the registry policy's import statements, and a ROOT creation template
    /// whose repository policy grants pull to both.
    fn grant_everything(settings: &Settings) {
        let repos = |p: &str| format!("arn:aws:ecr:us-east-1:123456789012:repository/{p}/*");
        *settings.inner.registry_policy.lock().unwrap() = Some(
            serde_json::json!({"Version": "2012-10-17", "Statement": [
                {"Sid": "PtcImportPrincipals", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::222233334444:root"]},
                 "Action": ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"], "Resource": [repos("k8s")]},
                {"Sid": "PtcImportOrganization", "Effect": "Allow", "Principal": "*",
                 "Action": ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"], "Resource": [repos("quay")],
                 "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}}
            ]})
            .to_string(),
        );
        let pull = [
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchCheckLayerAvailability",
        ];
        settings.inner.templates.lock().unwrap().push(ptc_core::ecr::CreationTemplate {
            prefix: "ROOT".into(),
            applied_for: vec!["PULL_THROUGH_CACHE".into()],
            repository_policy: Some(
                serde_json::json!({"Version": "2012-10-17", "Statement": [
                    {"Sid": "PtcPullPrincipals", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::222233334444:root"]}, "Action": pull},
                    {"Sid": "PtcPullOrganization", "Effect": "Allow", "Principal": "*", "Action": pull,
                     "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}}
                ]})
                .to_string(),
            ),
            ..Default::default()
        });
    }

    fn readiness<'r>(
        report: &'r ValidationReport,
        prefix: &str,
    ) -> &'r crate::cross_account::PrefixReadiness {
        report
            .cross_account
            .iter()
            .find(|p| p.prefix == prefix)
            .unwrap_or_else(|| panic!("no cross-account readiness for {prefix}: {report:#?}"))
    }

    #[tokio::test]
    async fn without_consumers_nothing_is_read_nor_published() {
        let world = World::new(vec![quay(), k8s()]);
        let report = world.run(&options(), all()).await;
        assert!(report.cross_account.is_empty());
        assert!(
            world.settings.reads.lock().unwrap().is_empty(),
            "no call, no permission needed"
        );
        assert_eq!(world.total("CrossAccountReady"), None);
        assert_eq!(world.metric("CrossAccountReady", Some("quay")), None);
    }

    #[tokio::test]
    async fn consumers_are_denied_until_the_cache_side_grants_them() {
        let world = World::new(vec![quay(), k8s()]);
        let report = world.run(&with_consumers(), all()).await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let k8s = readiness(&report, "k8s");
        assert_eq!(
            k8s.repositories,
            "arn:aws:ecr:us-east-1:123456789012:repository/k8s/*"
        );
        assert_eq!(k8s.consumers[0].consumer, "222233334444");
        let first = &k8s.consumers[0].first_pull;
        assert_eq!(
            (first.outcome, first.action.as_deref()),
            (Outcome::Denied, Some("ecr:CreateRepository"))
        );
        assert!(
            first.reason.contains("registry policy (there is none)"),
            "{first:?}"
        );
        let cached = &k8s.consumers[0].cached_pull;
        assert_eq!(
            (cached.outcome, cached.action.as_deref()),
            (Outcome::Denied, Some("ecr:BatchGetImage"))
        );
        assert!(
            cached
                .reason
                .contains("no PULL_THROUGH_CACHE creation template"),
            "{cached:?}"
        );
        assert_eq!(
            readiness(&report, "quay").consumers[0].consumer,
            "any account of o-a1b2c3d4e5"
        );
        assert_eq!(
            (
                report.summary.cross_account_ready,
                report.summary.cross_account_not_ready
            ),
            (0, 2)
        );
        assert_eq!(report.not_ready_for_consumers(), ["quay", "k8s"]);
        assert!(report.healthy(), "the rules themselves are fine");
        assert_eq!(world.metric("CrossAccountReady", Some("k8s")), Some(0.0));
        assert_eq!(world.metric("CrossAccountReady", Some("quay")), Some(0.0));
        assert_eq!(world.total("CrossAccountReady"), Some(0.0));
        let mut reads = world.settings.reads.lock().unwrap().clone();
        reads.sort_unstable();
        assert_eq!(
            reads,
            [
                "DescribeRegistry",
                "DescribeRepositoryCreationTemplates",
                "GetRegistryPolicy"
            ],
            "three reads per run, whatever the number of prefixes"
        );

        grant_everything(&world.settings);
        let report = world.run(&with_consumers(), all()).await;
        for prefix in ["k8s", "quay"] {
            let p = readiness(&report, prefix);
            assert!(p.ready, "{p:#?}");
            assert_eq!(p.template.as_deref(), Some("ROOT"));
        }
        let first = &readiness(&report, "quay").consumers[0].first_pull;
        assert_eq!(
            first.statement.as_deref(),
            Some("registry policy, statement PtcImportOrganization")
        );
        assert_eq!(world.metric("CrossAccountReady", Some("k8s")), Some(1.0));
        assert_eq!(world.total("CrossAccountReady"), Some(1.0));
    }

    #[tokio::test]
    async fn an_unknown_verdict_is_not_ready_and_names_its_statement() {
        let world = World::new(vec![k8s()]);
        grant_everything(&world.settings);
        // A team's guardrail the evaluator cannot decide: only from a VPC endpoint.
        let mut doc: serde_json::Value = serde_json::from_str(
            world
                .settings
                .inner
                .registry_policy
                .lock()
                .unwrap()
                .as_deref()
                .unwrap(),
        )
        .unwrap();
        doc["Statement"].as_array_mut().unwrap().push(serde_json::json!({
            "Sid": "OnlyFromOurVpce", "Effect": "Deny", "Principal": "*", "Action": "ecr:*", "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}}));
        *world.settings.inner.registry_policy.lock().unwrap() = Some(doc.to_string());
        let report = world.run(&with_consumers(), all()).await;
        let k8s = readiness(&report, "k8s");
        assert!(!k8s.ready);
        let first = &k8s.consumers[0].first_pull;
        assert_eq!(first.outcome, Outcome::Unknown, "{first:?}");
        assert_eq!(
            first.statement.as_deref(),
            Some("registry policy, statement OnlyFromOurVpce")
        );
        assert!(first.reason.contains("aws:SourceVpce"), "{first:?}");
        assert!(report.errors.is_empty(), "a verdict, not a run error");
        assert_eq!(
            world.metric("CrossAccountReady", Some("k8s")),
            Some(0.0),
            "never a 1 it cannot show"
        );
    }

    #[tokio::test]
    async fn unreadable_policies_are_a_run_error_never_a_score() {
        let world = World::new(vec![k8s()]);
        *world.settings.fail.lock().unwrap() = Some((
            "GetRegistryPolicy",
            AwsErrorKind::AccessDenied("AccessDeniedException".into()),
        ));
        let report = world.run(&with_consumers(), all()).await;
        assert!(report.cross_account.is_empty());
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        assert!(
            report.errors[0].contains("cannot read the registry policy"),
            "{:?}",
            report.errors
        );
        assert_eq!(report.rules.len(), 1, "the rules are still checked");
        assert_eq!(world.total("CrossAccountReady"), None);
        assert_eq!(world.metric("CrossAccountReady", Some("k8s")), None);
        assert_eq!(world.metric("RunErrors", None), Some(1.0));
    }

    #[tokio::test]
    async fn a_scoped_run_judges_its_prefix_and_publishes_no_total() {
        let world = World::new(vec![quay(), k8s()]);
        grant_everything(&world.settings);
        let report = world
            .run(
                &with_consumers(),
                Trigger::Prefixes {
                    source: "CloudTrail CreatePullThroughCacheRule".into(),
                    prefixes: vec!["k8s".into()],
                },
            )
            .await;
        let prefixes: Vec<&str> = report
            .cross_account
            .iter()
            .map(|p| p.prefix.as_str())
            .collect();
        assert_eq!(prefixes, ["k8s"]);
        assert_eq!(world.metric("CrossAccountReady", Some("k8s")), Some(1.0));
        assert_eq!(world.total("CrossAccountReady"), None);
    }

    // -- pull-time update exclusions ------------------------------------------------------

    const PREWARM_ROLE: &str = "arn:aws:iam::123456789012:role/ptc-PrewarmFunctionRole-1A2B";
    const HEALTH_ROLE: &str = "arn:aws:iam::123456789012:role/ptc-HealthMetricsFunctionRole-3C4D";

    /// The template's two roles, as `PTC_PULL_TIME_EXCLUDED_ROLES` gives them.
    fn with_excluded_roles() -> Options {
        let mut options = options();
        options.pull_time_exclusions = [PREWARM_ROLE, HEALTH_ROLE]
            .iter()
            .map(|arn| {
                ptc_core::pull_time::ExpectedExclusion::exact(
                    ptc_core::pull_time::PrincipalArn::parse(arn).unwrap(),
                    "PTC_PULL_TIME_EXCLUDED_ROLES",
                )
            })
            .collect();
        options
    }

    fn register(world: &World, arns: &[&str]) {
        world.ecr.state.lock().unwrap().pull_time_update_exclusions =
            arns.iter().map(|a| (*a).to_owned()).collect();
    }

    #[tokio::test]
    async fn registered_roles_are_no_finding_and_publish_zero_missing() {
        let world = World::new(vec![quay()]);
        register(
            &world,
            &[
                HEALTH_ROLE,
                PREWARM_ROLE,
                "arn:aws:iam::123456789012:role/other",
            ],
        );
        let report = world.run(&with_excluded_roles(), all()).await;
        let check = report.pull_time_exclusions.as_ref().unwrap();
        assert!(check.listed && check.findings.is_empty(), "{check:#?}");
        assert_eq!(check.missing, 0);
        assert!(check.principals.iter().all(|p| p.excluded == Some(true)));
        assert_eq!(world.total("PullTimeExclusionsMissing"), Some(0.0));
        assert_eq!(world.ecr.calls("ListPullTimeUpdateExclusions"), 1);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    }

    #[tokio::test]
    async fn a_role_that_is_not_excluded_is_named_with_what_it_breaks() {
        let world = World::new(vec![quay()]);
        register(&world, &[HEALTH_ROLE]);
        let report = world.run(&with_excluded_roles(), all()).await;
        let check = report.pull_time_exclusions.as_ref().unwrap();
        assert_eq!(check.missing, 1);
        let [finding] = &check.findings[..] else {
            panic!("{:#?}", check.findings);
        };
        assert_eq!(
            (finding.code, finding.severity),
            ("pull-time-exclusion-missing", Severity::Error)
        );
        for needle in [
            PREWARM_ROLE,
            "PTC_PULL_TIME_EXCLUDED_ROLES",
            "discovery",
            "ImagesNotPulled",
            "register-pull-time-update-exclusion --principal-arn",
        ] {
            assert!(
                finding.message.contains(needle),
                "{needle}: {}",
                finding.message
            );
        }
        assert!(!finding.message.contains(HEALTH_ROLE));
        assert_eq!(world.total("PullTimeExclusionsMissing"), Some(1.0));
        assert!(report.errors.is_empty(), "a finding, not a run error");
    }

    #[tokio::test]
    async fn an_unreadable_list_is_a_finding_and_never_a_zero() {
        for kind in [
            AwsErrorKind::AccessDenied("AccessDeniedException".into()),
            AwsErrorKind::Service("UnknownOperationException".into()),
        ] {
            let world = World::new(vec![quay()]);
            register(&world, &[HEALTH_ROLE, PREWARM_ROLE]);
            world
                .ecr
                .fail_next("ListPullTimeUpdateExclusions", kind.clone());
            let report = world.run(&with_excluded_roles(), all()).await;
            let check = report.pull_time_exclusions.as_ref().unwrap();
            assert!(!check.listed);
            assert!(check.principals.iter().all(|p| p.excluded.is_none()));
            let codes: Vec<&str> = check.findings.iter().map(|f| f.code).collect();
            assert_eq!(codes, ["pull-time-exclusions-unknown"], "{kind:?}");
            assert!(
                check.findings[0].message.contains("could not run"),
                "{}",
                check.findings[0].message
            );
            assert_eq!(
                world.total("PullTimeExclusionsMissing"),
                Some(2.0),
                "{kind:?}: every role counts as missing"
            );
            assert_eq!(report.summary.valid, 1, "the rules are still checked");
        }
    }

    #[tokio::test]
    async fn without_expected_roles_nothing_is_asked_nor_published() {
        let world = World::new(vec![quay()]);
        let report = world.run(&options(), all()).await;
        assert!(report.pull_time_exclusions.is_none());
        assert_eq!(world.ecr.calls("ListPullTimeUpdateExclusions"), 0);
        assert_eq!(world.total("PullTimeExclusionsMissing"), None);
        // A run for some prefixes does not ask either: a registry-wide question.
        let world = World::new(vec![quay()]);
        let report = world
            .run(
                &with_excluded_roles(),
                Trigger::Prefixes {
                    source: "CloudTrail UpdatePullThroughCacheRule".into(),
                    prefixes: vec!["quay".into()],
                },
            )
            .await;
        assert!(report.pull_time_exclusions.is_none());
        assert_eq!(world.ecr.calls("ListPullTimeUpdateExclusions"), 0);
    }

    #[tokio::test]
    async fn the_callers_role_is_matched_by_name_warned_and_not_counted() {
        let caller = ptc_core::pull_time::ExpectedExclusion::from_caller(
            "arn:aws:sts::123456789012:assumed-role/ops/alice",
        )
        .unwrap();
        let mut options = with_excluded_roles();
        options.caller_exclusion = Some(caller.clone());
        let world = World::new(vec![quay()]);
        register(&world, &[PREWARM_ROLE, HEALTH_ROLE]);
        let report = world.run(&options, all()).await;
        let check = report.pull_time_exclusions.as_ref().unwrap();
        assert_eq!(check.missing, 0, "the caller is not the deployment");
        let [finding] = &check.findings[..] else {
            panic!("{:#?}", check.findings);
        };
        assert_eq!(finding.severity, Severity::Warning);
        assert!(
            finding
                .message
                .contains("arn:aws:iam::123456789012:role/ops")
                && finding.message.contains("role's path"),
            "{}",
            finding.message
        );
        assert_eq!(world.total("PullTimeExclusionsMissing"), Some(0.0));

        // An exclusion of the role's name with a path the session ARN does not show: it may
        // name no role at all (review of issue 18), so the caller's exclusion is unknown, a
        // warning naming the ARN to compare.
        register(
            &world,
            &[
                PREWARM_ROLE,
                HEALTH_ROLE,
                "arn:aws:iam::123456789012:role/team/ops",
            ],
        );
        let report = world.run(&options, all()).await;
        let check = report.pull_time_exclusions.as_ref().unwrap();
        let [finding] = &check.findings[..] else {
            panic!("{:#?}", check.findings);
        };
        assert_eq!(finding.code, "pull-time-exclusion-unknown");
        assert!(
            finding
                .message
                .contains("arn:aws:iam::123456789012:role/team/ops"),
            "{}",
            finding.message
        );
        assert!(
            check
                .principals
                .iter()
                .any(|p| p.matched_by_name && p.excluded.is_none())
        );
        assert_eq!(world.total("PullTimeExclusionsMissing"), Some(0.0));

        // The caller alone: checked and reported, nothing published for the deployment.
        let mut alone = super::tests::options();
        alone.caller_exclusion = Some(caller);
        let world = World::new(vec![quay()]);
        let report = world.run(&alone, all()).await;
        assert_eq!(report.pull_time_exclusions.unwrap().findings.len(), 1);
        assert_eq!(world.total("PullTimeExclusionsMissing"), None);
    }
}
