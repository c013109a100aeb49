//! `ptc health`: the inventory, coverage and outage readiness as tables.

use std::io::Write;

use health_metrics::inventory::PrefixInventory;
use health_metrics::readiness::{UpstreamReadiness, WatchItem, names_upstream};
use health_metrics::report::Coverage;
use health_metrics::{Deps, HealthReport, Options};

use crate::context::Context;
use crate::error::{CliError, Findings};
use crate::output;

/// `ptc health [--outage UPSTREAM] [--per-repository] [--no-metrics]`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print only what would fail to pull if this upstream went down now (quay.io,
    /// docker.io, ...); exit code 1 when anything would.
    #[arg(long, value_name = "UPSTREAM")]
    pub outage: Option<String>,
    /// Also list every repository's figures.
    #[arg(long)]
    pub per_repository: bool,
    /// Do not publish CloudWatch metrics.
    #[arg(long)]
    pub no_metrics: bool,
}

/// Take the inventory and print the [`HealthReport`], or with `--outage` only the watched
/// images that upstream's outage would break (JSON: that list). Errors: [`CliError::RunErrors`]
/// when the report has errors or warnings, [`Findings::ExposedImages`] when `--outage` finds
/// images that would fail, [`CliError::Output`].
pub async fn run(ctx: &Context, args: Args) -> Result<(), CliError> {
    let aws = ctx.aws().await?;
    let deps = Deps {
        ecr: aws.ecr.as_ref(),
        objects: &aws.objects,
        metrics: aws.metrics.as_ref(),
    };
    let mut options = Options::from_settings(ctx.settings());
    options.publish_metrics = !args.no_metrics;
    options.per_repository |= args.per_repository;
    let now = time::OffsetDateTime::now_utc();
    let report = health_metrics::run(&deps, &options, "ptc health", now).await;
    let exposed = match &args.outage {
        Some(upstream) => {
            let exposed = exposed_to(&report, upstream);
            ctx.print(&exposed, |out| print_outage(out, &report, upstream))?;
            exposed.len()
        }
        None => {
            ctx.print(&report, |out| print(out, &report))?;
            0
        }
    };
    if !report.errors.is_empty() || !report.warnings.is_empty() {
        return Err(CliError::RunErrors);
    }
    if exposed > 0 {
        return Err(CliError::Findings(Findings::ExposedImages(exposed)));
    }
    Ok(())
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn state(item: &WatchItem) -> String {
    serde_json::to_value(item.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The whole report: one line per prefix, the coverage, then per upstream what an outage
/// would break.
pub fn print(out: &mut impl Write, report: &HealthReport) -> std::io::Result<()> {
    print_prefixes(out, report)?;
    writeln!(out, "{}", coverage_line(&report.coverage))?;
    for upstream in &report.outage {
        print_upstream(out, upstream)?;
    }
    for warning in &report.warnings {
        writeln!(out, "warning: {warning}")?;
    }
    for error in &report.errors {
        writeln!(out, "error: {error}")?;
    }
    Ok(())
}

/// The table of prefixes, then each repository's figures when they were asked for. `IMAGES`,
/// `STORED` and `COST/MONTH` are the active images (standard storage); `ARCHIVED` (count and
/// bytes) and `ARCHIVE/MONTH` (USD at the archive storage price) the archived ones, which
/// cannot be pulled.
fn print_prefixes(out: &mut impl Write, report: &HealthReport) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = report.prefixes.iter().map(prefix_row).collect();
    output::table(
        out,
        &[
            "PREFIX",
            "UPSTREAM",
            "REPOS",
            "IMAGES",
            "STORED",
            "COST/MONTH",
            "ARCHIVED",
            "ARCHIVE/MONTH",
            "OLDEST",
            "NOT PULLED",
        ],
        &rows,
    )?;
    for r in report.prefixes.iter().flat_map(|p| &p.per_repository) {
        write!(
            out,
            "  {}: {} images, {}, {} not pulled",
            r.repository,
            r.images,
            bytes(r.stored_bytes),
            r.images_not_pulled
        )?;
        if r.archived_images > 0 {
            write!(
                out,
                ", {} archived ({})",
                r.archived_images,
                bytes(r.archived_bytes)
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn prefix_row(p: &PrefixInventory) -> Vec<String> {
    vec![
        p.prefix.clone(),
        p.upstream.clone(),
        p.repositories.to_string(),
        p.images.to_string(),
        bytes(p.stored_bytes),
        format!("${:.2}", p.estimated_monthly_cost_usd),
        format!("{} ({})", p.archived_images, bytes(p.archived_bytes)),
        format!("${:.2}", p.estimated_monthly_archive_cost_usd),
        p.oldest_image_age_days
            .map_or_else(|| "-".into(), |d| format!("{d:.1} d")),
        p.images_not_pulled.to_string(),
    ]
}

/// `watch list: N images, N cached (P%), N ready for an upstream outage[, N invalid entries]`.
fn coverage_line(c: &Coverage) -> String {
    format!(
        "watch list: {} images, {} cached ({}), {} ready for an upstream outage{}",
        c.watched,
        c.cached,
        c.coverage_percent
            .map_or_else(|| "no coverage".to_owned(), |p| format!("{p:.1}%")),
        c.ready,
        if c.invalid > 0 {
            format!(", {} invalid entries", c.invalid)
        } else {
            String::new()
        }
    )
}

/// What an outage of one upstream would break, with one line per exposed image.
fn print_upstream(out: &mut impl Write, upstream: &UpstreamReadiness) -> std::io::Result<()> {
    if upstream.exposed.is_empty() {
        return writeln!(
            out,
            "if {} went down: all {} watched images still pull",
            upstream.upstream, upstream.watched
        );
    }
    writeln!(
        out,
        "if {} went down: {} of {} watched images would fail",
        upstream.upstream,
        upstream.exposed.len(),
        upstream.watched
    )?;
    for item in &upstream.exposed {
        writeln!(
            out,
            "  {} ({}): {}",
            item.image,
            state(item),
            item.reason.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

/// The watch-list images that would fail to pull if `upstream` went down now.
pub fn exposed_to<'a>(report: &'a HealthReport, upstream: &str) -> Vec<&'a WatchItem> {
    report
        .outage
        .iter()
        .filter(|u| names_upstream(upstream, &u.upstream))
        .flat_map(|u| u.exposed.iter())
        .collect()
}

/// `ptc health --outage HOST`.
pub fn print_outage(
    out: &mut impl Write,
    report: &HealthReport,
    upstream: &str,
) -> std::io::Result<()> {
    let watched: usize = report
        .outage
        .iter()
        .filter(|u| names_upstream(upstream, &u.upstream))
        .map(|u| u.watched)
        .sum();
    let exposed = exposed_to(report, upstream);
    if watched == 0 {
        writeln!(out, "no watch-list image comes from {upstream}")?;
    } else if exposed.is_empty() {
        writeln!(
            out,
            "if {upstream} went down now, all {watched} watched images would still pull from the cache"
        )?;
    } else {
        writeln!(
            out,
            "if {upstream} went down now, {} of {watched} watched images would fail to pull:",
            exposed.len()
        )?;
        let rows: Vec<Vec<String>> = exposed
            .iter()
            .map(|i| {
                vec![
                    i.image.clone(),
                    state(i),
                    i.reason.clone().unwrap_or_default(),
                ]
            })
            .collect();
        output::table(out, &["IMAGE", "STATE", "REASON"], &rows)?;
    }
    for error in &report.errors {
        writeln!(out, "error: {error}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Archived images have their own columns (count, bytes, cost at the archive price), apart
    /// from the active images', and their own note per repository.
    #[test]
    fn archived_images_are_shown_apart() {
        let gib = 1024 * 1024 * 1024;
        let mut report = HealthReport::empty("test", time::OffsetDateTime::now_utc());
        let mut quay = PrefixInventory::new("quay", "quay.io");
        quay.images = 4;
        quay.stored_bytes = 2 * gib;
        quay.archived_images = 3;
        quay.archived_bytes = 30 * gib;
        quay.price(0.10, 0.07);
        quay.per_repository
            .push(health_metrics::inventory::RepositoryInventory {
                repository: "quay/a".into(),
                images: 4,
                stored_bytes: 2 * gib,
                archived_images: 3,
                archived_bytes: 30 * gib,
                ..Default::default()
            });
        report.prefixes.push(quay);
        let mut out = Vec::new();
        print(&mut out, &report).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let column = |name: &str| lines[0].find(name).unwrap();
        let cell = |name: &str, len: usize| &lines[1][column(name)..column(name) + len];
        assert_eq!(cell("STORED", 7), "2.0 GiB", "{text}");
        assert_eq!(cell("COST/MONTH", 5), "$0.20", "{text}");
        assert_eq!(cell("ARCHIVED", 12), "3 (30.0 GiB)", "{text}");
        assert_eq!(cell("ARCHIVE/MONTH", 5), "$2.10", "{text}");
        assert!(
            text.contains("quay/a: 4 images, 2.0 GiB, 0 not pulled, 3 archived (30.0 GiB)"),
            "{text}"
        );
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
