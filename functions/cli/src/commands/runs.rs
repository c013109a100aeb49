//! `ptc runs`: the queued runs of prewarm (issue 19) and one run's progress, read from the
//! runs' table; and [`QueueArgs`], the work queue's places that `ptc prewarm --enqueue` takes
//! too.

use std::collections::BTreeMap;
use std::io::Write;

use prewarm::queued::{JOB, run_summaries};
use ptc_core::Settings;
use ptc_core::aws::{AwsClients, SdkQueue, SdkRunStore};
use ptc_core::queue::{QueueApi as _, QueueDepth, RunId, RunRecord, RunStore as _};
use serde::Serialize;

use crate::context::Context;
use crate::error::CliError;
use crate::output;

/// The work queue's places: the flags, else the settings' variables.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct QueueArgs {
    /// The work queue's URL (default PTC_WORK_QUEUE_URL).
    #[arg(long, value_name = "URL")]
    pub queue_url: Option<String>,
    /// The work queue's dead-letter queue URL (default PTC_WORK_DLQ_URL).
    #[arg(long = "dead-letter-url", value_name = "URL")]
    pub dead_letter_url: Option<String>,
    /// The DynamoDB table of the runs (default PTC_RUN_TABLE).
    #[arg(long, value_name = "TABLE")]
    pub run_table: Option<String>,
}

/// The places as resolved: each flag, else its setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Places {
    /// `--queue-url` / PTC_WORK_QUEUE_URL.
    pub queue_url: Option<String>,
    /// `--dead-letter-url` / PTC_WORK_DLQ_URL.
    pub dead_letter_url: Option<String>,
    /// `--run-table` / PTC_RUN_TABLE.
    pub run_table: Option<String>,
}

impl QueueArgs {
    /// Each flag, else its setting (empty values count as unset).
    pub fn places(&self, settings: &Settings) -> Places {
        let given = |flag: &Option<String>, setting: Option<&str>| {
            flag.as_deref()
                .or(setting)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let q = &settings.queue;
        Places {
            queue_url: given(
                &self.queue_url,
                q.work_queue_url.as_ref().map(|e| e.as_str()),
            ),
            dead_letter_url: given(
                &self.dead_letter_url,
                q.dead_letter_url.as_ref().map(|e| e.as_str()),
            ),
            run_table: given(&self.run_table, q.run_table.as_deref()),
        }
    }
}

impl Places {
    /// The run table, or the one-line error naming what is missing.
    pub fn table(&self, command: &str) -> Result<&str, CliError> {
        self.run_table.as_deref().ok_or_else(|| {
            CliError::QueueNotConfigured(format!(
                "{command} needs the runs' table: missing --run-table (or PTC_RUN_TABLE)"
            ))
        })
    }

    /// All three places (queue, dead-letter queue, table), or the one-line error naming
    /// every one missing.
    pub fn all(&self, command: &str) -> Result<(&str, &str, &str), CliError> {
        let mut absent = Vec::new();
        if self.queue_url.is_none() {
            absent.push("--queue-url (or PTC_WORK_QUEUE_URL)");
        }
        if self.dead_letter_url.is_none() {
            absent.push("--dead-letter-url (or PTC_WORK_DLQ_URL)");
        }
        if self.run_table.is_none() {
            absent.push("--run-table (or PTC_RUN_TABLE)");
        }
        match (&self.queue_url, &self.dead_letter_url, &self.run_table) {
            (Some(q), Some(d), Some(t)) => Ok((q, d, t)),
            _ => Err(missing(command, &absent)),
        }
    }
}

fn missing(command: &str, absent: &[&str]) -> CliError {
    CliError::QueueNotConfigured(format!(
        "{command} needs the work queue: missing {}",
        absent.join(", ")
    ))
}

/// `ptc runs [RUN_ID] [--limit N]`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A run to show in detail (as `ptc prewarm --enqueue` printed it); without it, the latest
    /// runs.
    #[arg(value_name = "RUN_ID", value_parser = parse_run_id)]
    pub run: Option<RunId>,
    /// How many of the latest runs to list.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub limit: u16,
    /// `--run-table` (required, or PTC_RUN_TABLE); `--queue-url`, `--dead-letter-url`: the
    /// queues whose depth is shown with a run.
    #[command(flatten)]
    pub queue: QueueArgs,
}

fn parse_run_id(value: &str) -> Result<RunId, String> {
    RunId::try_from(value.to_owned())
}

/// One run as `ptc runs` prints it in JSON: the record, its progress and its counts.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// Always `prewarm`.
    pub job: String,
    /// The run's id.
    pub run: RunId,
    /// What started it.
    pub trigger: String,
    /// A run over the job's whole list.
    pub full: bool,
    /// When the planner started it (Unix seconds).
    pub started_at: i64,
    /// Entries planned.
    pub planned: u64,
    /// Messages the planner sent.
    pub messages: u64,
    /// The planner sent every message.
    pub queued: bool,
    /// Entries with their terminal outcome.
    pub done: u64,
    /// `done` of `planned`, in percent (100 for an empty run).
    pub percent: f64,
    /// Terminal outcomes: group (rule prefix, `-` for none) → outcome → count.
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
    /// When it finished (Unix seconds).
    pub finished_at: Option<i64>,
    /// Given up when its lease ran out.
    pub abandoned: bool,
    /// `finished`, `abandoned` or `in progress`.
    pub state: &'static str,
}

impl RunView {
    /// The view of a record.
    pub fn of(record: &RunRecord) -> Self {
        let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for ((group, outcome), n) in &record.counts {
            counts
                .entry(group.clone())
                .or_default()
                .insert(outcome.clone(), *n);
        }
        Self {
            job: record.job.clone(),
            run: record.run.clone(),
            trigger: record.trigger.clone(),
            full: record.full,
            started_at: record.started_at,
            planned: record.planned,
            messages: record.messages,
            queued: record.queued,
            done: record.done,
            percent: percent(record.done, record.planned),
            counts,
            finished_at: record.finished_at,
            abandoned: record.abandoned,
            state: state(record),
        }
    }
}

/// One run in detail: the view, the totals and the queues' depth.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    /// The record and its progress.
    #[serde(flatten)]
    pub view: RunView,
    /// The run's totals (entries without an outcome yet count as deferred).
    pub totals: prewarm::report::Summary,
    /// The work queue's depth now, when its URL is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueDepth>,
    /// The dead-letter queue's depth now, when its URL is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_queue: Option<QueueDepth>,
    /// The entries that are not cached and verified (failed, deferred, stale), with why: at
    /// most [`PROBLEMS`] of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ptc_core::queue::ItemOutcome>,
    /// Depth reads that failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The most outcomes a run's detail reads (`Query`), and the most problems it shows.
pub const PROBLEMS: usize = 100;
const OUTCOMES_READ: usize = 20_000;

/// The latest runs, as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct RunList {
    /// Always `prewarm`.
    pub job: &'static str,
    /// The runs' table.
    pub table: String,
    /// Newest first.
    pub runs: Vec<RunView>,
}

fn percent(done: u64, planned: u64) -> f64 {
    if planned == 0 {
        100.0
    } else {
        ((done as f64) * 1000.0 / planned as f64).round() / 10.0
    }
}

fn state(record: &RunRecord) -> &'static str {
    match (record.finished_at, record.abandoned) {
        (Some(_), true) => "abandoned",
        (Some(_), false) => "finished",
        (None, _) => "in progress",
    }
}

/// Unix seconds as `2026-11-30 05:25:00Z`.
pub fn when(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => unix.to_string(),
    }
}

/// List the latest runs, or show one. Errors: [`CliError::QueueNotConfigured`] without a
/// table, [`CliError::RunTable`], [`CliError::UnknownRun`], [`CliError::Output`].
pub async fn run(ctx: &Context, args: Args) -> Result<(), CliError> {
    let places = args.queue.places(ctx.settings());
    let table = places.table("ptc runs")?.to_owned();
    let aws = ctx.aws().await?;
    let clients = AwsClients::new(&aws.sdk);
    let store = SdkRunStore::new(clients.dynamodb(), table.clone());
    let read_error = |source| CliError::RunTable {
        table: table.clone(),
        source,
    };
    let Some(id) = args.run else {
        let records = store
            .runs(JOB, usize::from(args.limit))
            .await
            .map_err(read_error)?;
        let list = RunList {
            job: JOB,
            table: table.clone(),
            runs: records.iter().map(RunView::of).collect(),
        };
        return ctx.print(&list, |out| print_list(out, &list));
    };
    let record = store
        .run(JOB, &id)
        .await
        .map_err(read_error)?
        .ok_or_else(|| CliError::UnknownRun {
            run: id.to_string(),
            table: table.clone(),
        })?;
    let queue = SdkQueue::new(clients.sqs());
    let mut warnings = Vec::new();
    let work = depth(&queue, places.queue_url.as_deref(), &mut warnings).await;
    let dead = depth(&queue, places.dead_letter_url.as_deref(), &mut warnings).await;
    let (_, _, totals) = run_summaries(&record);
    // Only when some recorded entry is not cached and verified: a clean run reads no outcome.
    let recorded_problems: u64 = record
        .counts
        .iter()
        .filter(|((_, outcome), _)| !matches!(outcome.as_str(), "warmed" | "already-fresh"))
        .map(|(_, n)| n)
        .sum();
    let problems = if recorded_problems > 0 {
        match store.outcomes(&id, OUTCOMES_READ).await {
            Ok(outcomes) => outcomes
                .into_iter()
                .filter(|o| !matches!(o.outcome.as_str(), "warmed" | "already-fresh"))
                .take(PROBLEMS)
                .collect(),
            Err(err) => {
                warnings.push(format!("cannot read the run's outcomes: {err}"));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let detail = RunDetail {
        view: RunView::of(&record),
        totals,
        queue: work,
        dead_letter_queue: dead,
        problems,
        warnings,
    };
    ctx.print(&detail, |out| print_detail(out, &detail))
}

/// The depth of the queue at `url`, when known; a failed read is a warning.
async fn depth(
    queue: &SdkQueue,
    url: Option<&str>,
    warnings: &mut Vec<String>,
) -> Option<QueueDepth> {
    match queue.depth(url?).await {
        Ok(depth) => Some(depth),
        Err(err) => {
            warnings.push(format!("the depth of {}: {err}", url.unwrap_or_default()));
            None
        }
    }
}

/// One line per run: id, trigger, started, done/planned, state.
pub fn print_list(out: &mut impl Write, list: &RunList) -> std::io::Result<()> {
    if list.runs.is_empty() {
        return writeln!(out, "no {} runs in the table {}", list.job, list.table);
    }
    let rows: Vec<Vec<String>> = list
        .runs
        .iter()
        .map(|r| {
            vec![
                r.run.to_string(),
                r.trigger.clone(),
                when(r.started_at),
                format!("{}/{}", r.done, r.planned),
                match r.finished_at {
                    Some(at) if r.abandoned => format!("abandoned {}", when(at)),
                    Some(at) => format!("finished {}", when(at)),
                    None => format!("in progress ({}%)", r.percent),
                },
            ]
        })
        .collect();
    output::table(
        out,
        &["RUN", "TRIGGER", "STARTED", "DONE/PLANNED", "STATE"],
        &rows,
    )
}

/// The run's progress, its counts by prefix and outcome, its totals and the queues' depth.
pub fn print_detail(out: &mut impl Write, detail: &RunDetail) -> std::io::Result<()> {
    let v = &detail.view;
    writeln!(out, "run       {}", v.run)?;
    writeln!(
        out,
        "trigger   {}{}",
        v.trigger,
        if v.full { " (the whole list)" } else { "" }
    )?;
    writeln!(out, "started   {}", when(v.started_at))?;
    writeln!(
        out,
        "progress  {} of {} entries done ({}%), {} messages sent{}",
        v.done,
        v.planned,
        v.percent,
        v.messages,
        if v.queued {
            ""
        } else {
            " (the planner is still sending)"
        }
    )?;
    match v.finished_at {
        Some(at) => writeln!(
            out,
            "state     {} {} (after {} s)",
            v.state,
            when(at),
            (at - v.started_at).max(0)
        )?,
        None => writeln!(out, "state     in progress")?,
    }
    if let Some(d) = &detail.queue {
        writeln!(
            out,
            "queue     {} visible, {} in flight, {} delayed (the whole queue: every run's)",
            d.visible, d.in_flight, d.delayed
        )?;
    }
    if let Some(d) = &detail.dead_letter_queue {
        writeln!(
            out,
            "dead-letter queue  {} visible, {} in flight, {} delayed (every run's)",
            d.visible, d.in_flight, d.delayed
        )?;
    }
    let outcomes = ["warmed", "already-fresh", "stale", "failed", "deferred"];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (group, counts) in &v.counts {
        let mut row = vec![if group == "-" {
            "(no rule or invalid)".to_owned()
        } else {
            group.clone()
        }];
        row.extend(
            outcomes
                .iter()
                .map(|o| counts.get(*o).copied().unwrap_or(0).to_string()),
        );
        let other: u64 = counts
            .iter()
            .filter(|(o, _)| !outcomes.contains(&o.as_str()))
            .map(|(_, n)| n)
            .sum();
        row.push(other.to_string());
        rows.push(row);
    }
    if rows.is_empty() {
        writeln!(out, "no outcome recorded yet")?;
    } else {
        writeln!(out)?;
        output::table(
            out,
            &[
                "PREFIX",
                "WARMED",
                "ALREADY FRESH",
                "STALE",
                "FAILED",
                "DEFERRED",
                "OTHER",
            ],
            &rows,
        )?;
    }
    if !detail.problems.is_empty() {
        writeln!(out)?;
        let rows: Vec<Vec<String>> = detail
            .problems
            .iter()
            .map(|p| {
                vec![
                    p.item.clone(),
                    p.outcome.clone(),
                    p.reason.clone().unwrap_or_default(),
                ]
            })
            .collect();
        output::table(out, &["ENTRY", "OUTCOME", "REASON"], &rows)?;
    }
    for warning in &detail.warnings {
        writeln!(out, "warning: {warning}")?;
    }
    let t = &detail.totals;
    if v.finished_at.is_some() {
        writeln!(
            out,
            "{} entries: {} warmed, {} already fresh, {} stale, {} failed, {} deferred; coverage {}",
            t.images,
            t.warmed,
            t.already_fresh,
            t.stale,
            t.failed,
            t.deferred,
            t.coverage_percent
                .map_or_else(|| "none".to_owned(), |p| format!("{p}%"))
        )?;
    } else {
        writeln!(
            out,
            "{} entries without an outcome yet",
            v.planned.saturating_sub(v.done)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(done: u64, finished: Option<i64>) -> RunRecord {
        let mut counts = BTreeMap::new();
        counts.insert(("quay".to_owned(), "warmed".to_owned()), done);
        RunRecord {
            job: JOB.to_owned(),
            run: RunId::try_from("prewarm-20261130T052500Z-3fa2c1d0".to_owned()).unwrap(),
            trigger: "ptc prewarm --enqueue".into(),
            full: false,
            complete: true,
            updated_at: None,
            started_at: 1_796_016_300,
            planned: 3,
            messages: 1,
            queued: true,
            done,
            counts,
            finished_at: finished,
            abandoned: false,
        }
    }

    #[test]
    fn places_come_from_the_flags_then_the_settings_and_missing_ones_are_named() {
        let settings = Settings::from_sources(|name| {
            (name == "PTC_RUN_TABLE" || name == "PTC_WORK_QUEUE_URL" || name == "PTC_WORK_DLQ_URL")
                .then(|| match name {
                    "PTC_RUN_TABLE" => "ptc-runs".into(),
                    _ => "http://127.0.0.1:5000/123456789012/q".into(),
                })
        })
        .unwrap();
        let flags = QueueArgs {
            run_table: Some("other".into()),
            ..QueueArgs::default()
        };
        let places = flags.places(&settings);
        assert_eq!(places.run_table.as_deref(), Some("other"));
        assert!(places.all("x").is_ok());
        let none = QueueArgs::default().places(&Settings::from_sources(|_| None).unwrap());
        let err = none.all("ptc prewarm --enqueue").unwrap_err().to_string();
        assert_eq!(
            err,
            "ptc prewarm --enqueue needs the work queue: missing --queue-url (or PTC_WORK_QUEUE_URL), --dead-letter-url (or PTC_WORK_DLQ_URL), --run-table (or PTC_RUN_TABLE)"
        );
        assert_eq!(
            none.table("ptc runs").unwrap_err().to_string(),
            "ptc runs needs the runs' table: missing --run-table (or PTC_RUN_TABLE)"
        );
    }

    #[test]
    fn a_run_prints_its_progress_then_its_totals() {
        let detail = |r: &RunRecord| RunDetail {
            problems: Vec::new(),
            view: RunView::of(r),
            totals: run_summaries(r).2,
            queue: Some(QueueDepth {
                visible: 1,
                in_flight: 0,
                delayed: 0,
            }),
            dead_letter_queue: None,
            warnings: Vec::new(),
        };
        let mut buf = Vec::new();
        print_detail(&mut buf, &detail(&record(1, None))).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("1 of 3 entries done (33.3%)"), "{text}");
        assert!(text.contains("state     in progress"), "{text}");
        assert!(text.contains("queue     1 visible"), "{text}");
        let mut buf = Vec::new();
        print_detail(&mut buf, &detail(&record(3, Some(1_796_016_360)))).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.contains("finished 2026-11-30 05:26:00Z (after 60 s)"),
            "{text}"
        );
        assert!(text.contains("3 entries: 3 warmed"), "{text}");
        let json = serde_json::to_value(detail(&record(3, Some(1)))).unwrap();
        assert_eq!(json["counts"]["quay"]["warmed"], 3);
        assert_eq!(json["percent"], 100.0);
        // What is not cached is listed with why.
        let mut failed = detail(&record(3, Some(1)));
        failed.problems = vec![ptc_core::queue::ItemOutcome {
            item: "quay.io/coreos/etcd:v3.5.13".into(),
            group: "quay".into(),
            outcome: "failed".into(),
            reason: Some("manifest: not JSON".into()),
        }];
        let mut buf = Vec::new();
        print_detail(&mut buf, &failed).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("quay.io/coreos/etcd:v3.5.13")
                    && l.contains("failed")
                    && l.contains("manifest: not JSON")),
            "{text}"
        );
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(json["problems"][0]["reason"], "manifest: not JSON");
    }
}
