//! `ptc health`: the inventory, coverage and outage readiness as tables.

use std::io::Write;

use health_metrics::HealthReport;
use health_metrics::readiness::{WatchItem, names_upstream};

use crate::output;

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
    let rows: Vec<Vec<String>> = report
        .prefixes
        .iter()
        .map(|p| {
            vec![
                p.prefix.clone(),
                p.upstream.clone(),
                p.repositories.to_string(),
                p.images.to_string(),
                bytes(p.stored_bytes),
                format!("${:.2}", p.estimated_monthly_cost_usd),
                p.oldest_image_age_days
                    .map_or_else(|| "-".into(), |d| format!("{d:.1} d")),
                p.images_not_pulled.to_string(),
            ]
        })
        .collect();
    output::table(
        out,
        &[
            "PREFIX",
            "UPSTREAM",
            "REPOS",
            "IMAGES",
            "STORED",
            "COST/MONTH",
            "OLDEST",
            "NOT PULLED",
        ],
        &rows,
    )?;
    for p in report
        .prefixes
        .iter()
        .filter(|p| !p.per_repository.is_empty())
    {
        for r in &p.per_repository {
            writeln!(
                out,
                "  {}: {} images, {}, {} not pulled",
                r.repository,
                r.images,
                bytes(r.stored_bytes),
                r.images_not_pulled
            )?;
        }
    }
    let c = &report.coverage;
    writeln!(
        out,
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
    )?;
    for upstream in &report.outage {
        if upstream.exposed.is_empty() {
            writeln!(
                out,
                "if {} went down: all {} watched images still pull",
                upstream.upstream, upstream.watched
            )?;
        } else {
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
        }
    }
    for warning in &report.warnings {
        writeln!(out, "warning: {warning}")?;
    }
    for error in &report.errors {
        writeln!(out, "error: {error}")?;
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

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
