//! `ptc validate`: validate every pull-through cache rule and its credential secret.

use std::io::Write;

use validate_rules::event::Trigger;
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
/// [`Findings::UnknownPrefixes`] for a `--prefix` that names no rule, [`CliError::Output`].
pub async fn run(ctx: &Context, args: Args) -> Result<(), CliError> {
    let aws = ctx.aws().await?;
    let deps = Deps {
        ecr: aws.ecr.as_ref(),
        secrets: &aws.secrets,
        metrics: aws.metrics.as_ref(),
    };
    let mut options = Options::from_settings(ctx.settings());
    options.publish_metrics = !args.no_metrics;
    let trigger = trigger(args.prefixes);
    let now = time::OffsetDateTime::now_utc();
    let report = validate_rules::run(&deps, &options, &trigger, now).await;
    ctx.print(&report, |out| print(out, &report))?;
    verdict(&report)
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
    } else if !report.not_found.is_empty() {
        Err(CliError::Findings(Findings::UnknownPrefixes(
            report.not_found.len(),
        )))
    } else {
        Ok(())
    }
}

/// One line per rule (prefix, upstream, valid, findings), then the missing, unexpected and
/// unknown rules, the notes, the errors and the summary line.
pub fn print(out: &mut impl Write, report: &ValidationReport) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = report.rules.iter().map(rule_row).collect();
    output::table(out, &["PREFIX", "UPSTREAM", "VALID", "DETAILS"], &rows)?;
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
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
    for error in &report.errors {
        writeln!(out, "error: {error}")?;
    }
    let s = &report.summary;
    writeln!(
        out,
        "{} rules: {} valid, {} invalid, {} missing; {} metric values published",
        s.rules, s.valid, s.invalid, s.missing, report.metrics_published
    )
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
