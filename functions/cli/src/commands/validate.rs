//! `ptc validate`: validate every pull-through cache rule and its credential secret, and
//! whether each rule prefix's consumers (the settings' pull grants) may pull through it as
//! far as the cache account decides.

use std::io::Write;

use ptc_core::access::{Outcome, PullVerdict};
use ptc_core::pull_time::ExpectedExclusion;
use validate_rules::cross_account::PrefixReadiness;
use validate_rules::event::Trigger;
use validate_rules::pull_time::ExclusionCheck;
use validate_rules::report::{RuleResult, Severity};
use validate_rules::{Deps, Options, ValidationReport};

use crate::context::Context;
use crate::error::{CliError, Findings};
use crate::output;

/// `ptc validate [--prefix PREFIX]... [--no-metrics]`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these rule prefixes (repeatable); default: every rule.
    #[arg(long = "prefix", value_name = "PREFIX")]
    pub prefixes: Vec<String>,
    /// Do not publish CloudWatch metrics.
    #[arg(long)]
    pub no_metrics: bool,
}

/// Validate the rules and print the [`ValidationReport`]. Errors: [`CliError::RunErrors`]
/// when the report has errors, [`Findings::InvalidRules`] for invalid or missing rules,
/// [`Findings::ConsumersCannotPull`] for prefixes some consumer cannot pull through (a
/// verdict denied or unknown), [`Findings::UnknownPrefixes`] for a `--prefix` that names no
/// rule, [`Findings::PullTimeExclusionsMissing`] for roles of the deployment not known to be
/// pull-time update exclusions (the caller's own is a warning only), [`CliError::Output`].
pub async fn run(ctx: &Context, args: Args) -> Result<(), CliError> {
    let aws = ctx.aws().await?;
    let deps = Deps {
        ecr: aws.ecr.as_ref(),
        secrets: &aws.secrets,
        metrics: aws.metrics.as_ref(),
        templates: aws.ecr.as_ref(),
    };
    let mut options = Options::from_settings(ctx.settings());
    options.publish_metrics = !args.no_metrics;
    let trigger = trigger(args.prefixes);
    if matches!(trigger, Trigger::All { .. }) {
        options.caller_exclusion = caller_exclusion(aws).await;
    }
    let now = time::OffsetDateTime::now_utc();
    let report = validate_rules::run(&deps, &options, &trigger, now).await;
    ctx.print(&report, |out| print(out, &report))?;
    verdict(&report)
}

/// The caller, when STS tells who it is and ECR could exclude it (a role, known from its
/// session, or a user): an operator's own pulls (`ptc prewarm`) move `lastRecordedPullTime`
/// too unless it is a pull-time update exclusion. `None` (and an info line) when STS does
/// not answer: the check is for the deployment's roles first.
async fn caller_exclusion(aws: &crate::context::Aws) -> Option<ExpectedExclusion> {
    match aws.caller_identity().await {
        Ok(caller) => ExpectedExclusion::from_caller(&caller.arn),
        Err(err) => {
            tracing::info!(error = %err, "the caller is not known: its pull-time exclusion is not checked");
            None
        }
    }
}

/// Every rule, or the `--prefix` ones.
fn trigger(prefixes: Vec<String>) -> Trigger {
    let source = "ptc validate".to_owned();
    if prefixes.is_empty() {
        Trigger::All { source }
    } else {
        Trigger::Prefixes { source, prefixes }
    }
}

/// A `--prefix` that names no rule is a failure here (an operator asked for it); in the
/// Lambda it is the normal aftermath of a DeletePullThroughCacheRule event.
fn verdict(report: &ValidationReport) -> Result<(), CliError> {
    if !report.errors.is_empty() {
        Err(CliError::RunErrors)
    } else if !report.healthy() {
        Err(CliError::Findings(Findings::InvalidRules))
    } else if !report.not_ready_for_consumers().is_empty() {
        Err(CliError::Findings(Findings::ConsumersCannotPull(
            report.not_ready_for_consumers().len(),
        )))
    } else if let Some(missing) = report
        .pull_time_exclusions
        .as_ref()
        .map(|c| c.missing)
        .filter(|n| *n > 0)
    {
        Err(CliError::Findings(Findings::PullTimeExclusionsMissing(
            missing,
        )))
    } else if !report.not_found.is_empty() {
        Err(CliError::Findings(Findings::UnknownPrefixes(
            report.not_found.len(),
        )))
    } else {
        Ok(())
    }
}

/// One line per rule (prefix, upstream, valid, findings), then the missing, unexpected and
/// unknown rules, the cross-account readiness, the notes, the errors and the summary line.
pub fn print(out: &mut impl Write, report: &ValidationReport) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = report.rules.iter().map(rule_row).collect();
    output::table(out, &["PREFIX", "UPSTREAM", "VALID", "DETAILS"], &rows)?;
    print_cross_account(out, &report.cross_account)?;
    for missing in &report.missing {
        let credential = if missing.credential {
            " with a credential"
        } else {
            ""
        };
        writeln!(
            out,
            "missing: rule {} -> {}{credential} is expected by the config but not in the registry",
            missing.prefix, missing.upstream_url
        )?;
    }
    for prefix in &report.unexpected {
        writeln!(
            out,
            "unexpected: rule {prefix} is in the registry but not in the config"
        )?;
    }
    for prefix in &report.not_found {
        writeln!(out, "not found: no rule {prefix} in the registry")?;
    }
    if let Some(check) = &report.pull_time_exclusions {
        print_pull_time(out, check)?;
    }
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
    for error in &report.errors {
        writeln!(out, "error: {error}")?;
    }
    let s = &report.summary;
    let consumers = if report.cross_account.is_empty() {
        String::new()
    } else {
        format!(
            "; {} of {} prefixes ready for their consumers",
            s.cross_account_ready,
            s.cross_account_ready + s.cross_account_not_ready
        )
    };
    writeln!(
        out,
        "{} rules: {} valid, {} invalid, {} missing{consumers}; {} metric values published",
        s.rules, s.valid, s.invalid, s.missing, report.metrics_published
    )
}

/// One line per principal expected to be a pull-time update exclusion, then the findings.
fn print_pull_time(out: &mut impl Write, check: &ExclusionCheck) -> std::io::Result<()> {
    for p in &check.principals {
        let state = match p.excluded {
            Some(true) => "excluded",
            Some(false) => "NOT EXCLUDED",
            None => "UNKNOWN",
        };
        writeln!(
            out,
            "pull-time update exclusion: {} ({}): {state}",
            p.principal, p.source
        )?;
    }
    for f in &check.findings {
        let severity = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        writeln!(out, "  {severity}: {}", f.message)?;
    }
    Ok(())
}

fn outcome(verdict: &PullVerdict) -> &'static str {
    match verdict.outcome {
        Outcome::Allowed => "allowed",
        Outcome::Denied => "DENIED",
        Outcome::Unknown => "UNKNOWN",
    }
}

/// Per prefix and consumer, the three kinds of pull as the cache account allows them; then,
/// for each verdict that is not `allowed`, the action and the statement that decided it.
fn print_cross_account(out: &mut impl Write, prefixes: &[PrefixReadiness]) -> std::io::Result<()> {
    if prefixes.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\ncross-account pulls, as the cache account's registry policy and creation templates allow them (each consumer's own IAM policy must allow them too: ptc iam consumer-policy):"
    )?;
    let rows: Vec<Vec<String>> = prefixes
        .iter()
        .flat_map(|p| {
            p.consumers.iter().map(move |c| {
                vec![
                    p.prefix.clone(),
                    c.consumer.clone(),
                    outcome(&c.first_pull).to_owned(),
                    outcome(&c.new_tag).to_owned(),
                    outcome(&c.cached_pull).to_owned(),
                    p.template.clone().unwrap_or_else(|| "none".into()),
                ]
            })
        })
        .collect();
    output::table(
        out,
        &[
            "PREFIX",
            "CONSUMER",
            "FIRST PULL",
            "NEW TAG",
            "CACHED PULL",
            "TEMPLATE",
        ],
        &rows,
    )?;
    for p in prefixes {
        for c in &p.consumers {
            for (kind, v) in c.verdicts() {
                if v.outcome == Outcome::Allowed {
                    continue;
                }
                writeln!(
                    out,
                    "  {} {} {}: {} {}: {}",
                    p.prefix,
                    c.consumer,
                    kind.label(),
                    outcome(v).to_lowercase(),
                    v.action.as_deref().unwrap_or(""),
                    v.reason
                )?;
            }
        }
        for note in &p.notes {
            writeln!(out, "  {}: note: {note}", p.prefix)?;
        }
    }
    writeln!(out)
}

fn rule_row(rule: &RuleResult) -> Vec<String> {
    let details = if rule.findings.is_empty() {
        "ok".to_owned()
    } else {
        rule.findings
            .iter()
            .map(|f| match f.severity {
                Severity::Error => format!("error: {}", f.message),
                Severity::Warning => format!("warning: {}", f.message),
                Severity::Note => format!("note: {}", f.message),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    vec![
        rule.prefix.clone(),
        rule.upstream.clone(),
        if rule.valid {
            "yes".into()
        } else {
            "NO".into()
        },
        details,
    ]
}
