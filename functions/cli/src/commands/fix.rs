//! `ptc fix`: bring the repositories the cache created to the desired settings.

use std::io::Write;

use lifecycle_fixer::plan::Change;
use lifecycle_fixer::templates::TemplateResult;
use lifecycle_fixer::{Deps, FixReport, Options};
use ptc_core::Settings;
use ptc_core::config::FixMode;

use super::Choices;
use crate::context::Context;
use crate::error::CliError;
use crate::output;

/// `ptc fix [--mode MODE] [--repository NAME]... [--no-metrics]`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// fill (add what is missing), enforce (replace what differs) or dry-run (print the
    /// changes enforce would make, write nothing). Default: PTC_FIX_MODE, else fill.
    #[arg(long, value_parser = Choices::new(&FixMode::CHOICES))]
    pub mode: Option<FixMode>,
    /// Only these repositories (repeatable); default: every repository under a rule prefix.
    #[arg(long = "repository", value_name = "NAME")]
    pub repositories: Vec<String>,
    /// Do not publish CloudWatch metrics.
    #[arg(long)]
    pub no_metrics: bool,
}

/// Sweep the repositories and print the [`FixReport`]. Errors: [`CliError::InvalidSettings`]
/// when the desired settings cannot be used (before any AWS call), [`CliError::RunErrors`]
/// when the report has errors, [`CliError::Output`].
pub async fn run(ctx: &Context, args: Args) -> Result<(), CliError> {
    let options = options(ctx.settings(), &args)?;
    let aws = ctx.aws().await?;
    let ecr = aws.ecr.as_ref();
    let deps = Deps {
        ecr,
        settings: ecr,
        templates: ecr,
        metrics: aws.metrics.as_ref(),
    };
    let only = (!args.repositories.is_empty()).then_some(args.repositories.as_slice());
    let report = lifecycle_fixer::sweep(&deps, &options, only, "ptc fix").await;
    ctx.print(&report, |out| print(out, &report))?;
    if !report.errors.is_empty() || report.summary.errors > 0 {
        return Err(CliError::RunErrors);
    }
    Ok(())
}

/// The sweep's options: the settings with `--mode` in place of `PTC_FIX_MODE`.
fn options(settings: &Settings, args: &Args) -> Result<Options, CliError> {
    let mut options = match args.mode {
        Some(mode) => {
            let mut settings = settings.clone();
            settings.fix.mode = mode;
            Options::from_settings(&settings)
        }
        None => Options::from_settings(settings),
    }
    .map_err(CliError::InvalidSettings)?;
    options.publish_metrics = !args.no_metrics;
    Ok(options)
}

/// The table (one line per change, finding or error of each repository), the templates,
/// warnings, errors and the summary line.
pub fn print(out: &mut impl Write, report: &FixReport) -> std::io::Result<()> {
    let verb = if report.dry_run { "would" } else { "did" };
    let rows: Vec<Vec<String>> = report
        .repositories
        .iter()
        .flat_map(|r| {
            let mut lines: Vec<String> = r.changes.iter().map(|c| change(verb, c)).collect();
            lines.extend(r.findings.iter().map(|f| format!("note: {f}")));
            lines.extend(r.errors.iter().map(|e| format!("error: {e}")));
            if lines.is_empty() {
                lines.push("compliant".into());
            }
            repository_rows(&r.repository, &r.prefix, lines)
        })
        .collect();
    output::table(out, &["REPOSITORY", "PREFIX", "CHANGE"], &rows)?;
    for t in &report.templates {
        writeln!(out, "{}", template_line(t))?;
    }
    if let Some(r) = &report.registry_policy {
        writeln!(out, "{}", registry_line(r, verb))?;
    }
    for warning in &report.warnings {
        writeln!(out, "warning: {warning}")?;
    }
    for error in &report.errors {
        writeln!(out, "error: {error}")?;
    }
    writeln!(out, "{}", summary_line(report))
}

/// One change as the CHANGE column says it: `did set the lifecycle policy {...}`.
fn change(verb: &str, change: &Change) -> String {
    let set = |replaces: bool| {
        if replaces {
            "rewrite the product's part of the"
        } else {
            "set the"
        }
    };
    match change {
        Change::PutLifecyclePolicy {
            replaces,
            text,
            kept,
            removed,
        } => format!(
            "{verb} {} lifecycle policy {text}{}{}",
            set(*replaces),
            keeping(kept),
            removing(removed)
        ),
        Change::SetRepositoryPolicy {
            replaces,
            text,
            kept,
            removed,
        } => format!(
            "{verb} {} repository policy {text}{}{}",
            set(*replaces),
            keeping(kept),
            removing(removed)
        ),
        Change::TagResource { tags } => format!(
            "{verb} tag {}",
            tags.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Change::EnableScanOnPush => format!("{verb} enable scan on push"),
    }
}

/// What a written policy keeps of the repository's own: ` (keeps the repository's own:
/// statement DenyContractor, ...)`, or nothing.
fn keeping(kept: &[String]) -> String {
    if kept.is_empty() {
        String::new()
    } else {
        format!(" (keeps the repository's own: {})", kept.join(", "))
    }
}

/// What a written policy no longer holds of the product's: ` (removes ...)`, or nothing.
fn removing(removed: &[String]) -> String {
    if removed.is_empty() {
        String::new()
    } else {
        format!(" (removes {})", removed.join(", "))
    }
}

/// A repository's lines: its name and prefix on the first only.
fn repository_rows(repository: &str, prefix: &str, lines: Vec<String>) -> Vec<Vec<String>> {
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| match i {
            0 => vec![repository.to_owned(), prefix.to_owned(), line],
            _ => vec![String::new(), String::new(), line],
        })
        .collect()
}

/// `template quay: created; finding; action; error: ...`.
fn template_line(t: &TemplateResult) -> String {
    let status = serde_json::to_value(t.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut line = format!("template {}: {status}", t.prefix);
    for finding in &t.findings {
        line.push_str(&format!("; {finding}"));
    }
    if let Some(action) = &t.action {
        line.push_str(&format!("; {action}"));
        if let Some(text) = &t.lifecycle_policy {
            line.push_str(&format!(" lifecycle policy {text}"));
        }
        if let Some(text) = &t.repository_policy {
            line.push_str(&format!(" repository policy {text}"));
        }
    }
    if !t.kept.is_empty() {
        line.push_str(&format!("; keeps: {}", t.kept.join(", ")));
    }
    if let Some(error) = &t.error {
        line.push_str(&format!("; error: {error}"));
    }
    line
}

/// The registry policy's line: `registry policy: <status>; <findings>; would write <text>
/// (keeps ...) (removes ...)`.
fn registry_line(r: &lifecycle_fixer::registry::RegistryPolicyResult, verb: &str) -> String {
    let mut line = format!("registry policy: {}", r.status);
    for finding in &r.findings {
        line.push_str(&format!("; {finding}"));
    }
    if let (Some(action), Some(text)) = (&r.action, &r.text) {
        let action = if action == "written" {
            format!("{verb} write")
        } else {
            action.clone()
        };
        line.push_str(&format!(
            "; {action} {text}{}{}",
            keeping(&r.kept),
            removing(&r.removed)
        ));
    }
    if let Some(error) = &r.error {
        line.push_str(&format!("; error: {error}"));
    }
    line
}

fn summary_line(report: &FixReport) -> String {
    let s = &report.summary;
    format!(
        "{} repositories scanned ({} outside rule prefixes ignored): {} non-compliant, {} fixed, {} with errors{}",
        s.scanned,
        s.ignored_outside_prefixes,
        s.non_compliant,
        s.fixed,
        s.errors,
        if report.dry_run {
            "; dry run, nothing written"
        } else {
            ""
        }
    )
}
