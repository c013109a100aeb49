//! `ptc prewarm`: pull the watch list through the cache, verify it in ECR, compare with
//! upstream.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use prewarm::queued::{PlanReport, QueueDeps};
use prewarm::{ImageResult, Options, PrewarmReport};
use ptc_core::Settings;
use ptc_core::aws::{AwsClients, SdkQueue, SdkRunStore};
use ptc_core::config::PrewarmMode;
use ptc_core::oci::RegistryClient;
use ptc_core::watchlist::WatchListSource;

use super::Choices;
use crate::context::Context;
use crate::error::CliError;
use crate::output;

/// `ptc prewarm [--image REF]... [--dry-run] [--mode MODE] [--no-metrics]
/// [--enqueue [--queue-url URL] [--dead-letter-url URL] [--run-table TABLE]]`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An image to warm (repeatable; `-` reads references from stdin, one per line, as `ptc scan
    /// --output watch-list` writes them). Given, these are warmed alone: not the settings' watch
    /// list nor discovery, and no metric is published (the run is not the watch list's).
    #[arg(long = "image", value_name = "REF")]
    pub images: Vec<String>,
    /// Resolve and print what would be pulled; pull nothing.
    #[arg(long, conflicts_with = "enqueue")]
    pub dry_run: bool,
    /// Plan the list into the work queue (a run the queue's workers do, `ptc runs` follows)
    /// instead of warming it here.
    #[arg(long)]
    pub enqueue: bool,
    /// With --enqueue: the work queue, its dead-letter queue and the runs' table.
    #[command(flatten)]
    pub queue: super::runs::QueueArgs,
    /// layers (default from PTC_PREWARM_MODE) or manifests.
    #[arg(long, value_parser = Choices::new(&PrewarmMode::CHOICES))]
    pub mode: Option<PrewarmMode>,
    /// Do not publish CloudWatch metrics.
    #[arg(long)]
    pub no_metrics: bool,
    /// Where to remember the manifests verified, so that the next run can skip what the
    /// cache already holds: `s3://BUCKET/KEY`, `file:///PATH` or a path. Default:
    /// PTC_PREWARM_STATE_URL, else `$XDG_CACHE_HOME/ptc/prewarm/<registry host>.json` (or
    /// `~/.cache/...`).
    #[arg(long, value_name = "URL", conflicts_with = "no_state")]
    pub state: Option<String>,
    /// Remember nothing: every image's manifests are pulled (blobs ECR holds still are not).
    #[arg(long)]
    pub no_state: bool,
}

/// Warm the images and print the [`PrewarmReport`], with a spinner on stderr when it is a
/// terminal. Errors: [`CliError::Stdin`], [`CliError::Usage`] (`--image -` with an empty stdin), [`CliError::HttpClient`], [`CliError::RegistryToken`] (before any pull),
/// [`CliError::RunErrors`] when an image failed or the run has errors, [`CliError::Output`].
pub async fn run(ctx: &Context, mut args: Args) -> Result<(), CliError> {
    let settings = ctx.settings();
    let from_stdin = args.images.iter().any(|i| i == "-");
    args.images = crate::routing::expand_stdin(std::mem::take(&mut args.images))?;
    if from_stdin && args.images.is_empty() {
        return Err(CliError::Usage(
            "--image -: stdin held no reference (is the command before the pipe finding none?)"
                .to_owned(),
        ));
    }
    if args.enqueue {
        // What is missing is told before any call.
        args.queue.places(settings).all(TRIGGER)?;
    }
    let aws = ctx
        .aws_for(
            "prewarm, which pulls through the cache (GetAuthorizationToken, DescribePullThroughCacheRules)",
            None,
        )
        .await?;
    let http = ptc_core::oci::http_client(settings.http_timeout).map_err(CliError::HttpClient)?;
    let endpoint = settings.registry_endpoint.as_ref().map(|e| e.as_str());
    let (cache, registry_host) = RegistryClient::for_ecr(http.clone(), aws.ecr.clone(), endpoint)
        .await
        .map_err(CliError::RegistryToken)?;
    let upstream_endpoints = upstream_endpoints(settings);
    let deps = prewarm::Deps {
        ecr: aws.ecr.as_ref(),
        secrets: &aws.secrets,
        objects: &aws.objects,
        metrics: aws.metrics.as_ref(),
        cache: &cache,
        registry_host: &registry_host,
        http: &http,
        upstream_endpoints: &upstream_endpoints,
    };
    let mut options = options(settings, &args)?;
    if options.state.is_none() && !args.no_state {
        options.state = default_state(&registry_host);
    }
    if args.enqueue {
        return enqueue(ctx, &deps, &options, &args).await;
    }
    let bar = progress_bar();
    options.progress = bar.clone().map(show_progress);
    let now = time::OffsetDateTime::now_utc();
    let report = prewarm::run(&deps, &options, "ptc prewarm", args.images, now).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    ctx.print(&report, |out| print(out, &report))?;
    if report.any_failed() {
        return Err(CliError::RunErrors);
    }
    Ok(())
}

/// `--enqueue`: plan the list into the work queue ([`prewarm::queued::plan`]) and print the
/// [`PlanReport`]. Errors: [`CliError::QueueNotConfigured`] (before any call),
/// [`CliError::RunErrors`] when the plan has errors, [`CliError::Output`].
async fn enqueue(
    ctx: &Context,
    deps: &prewarm::Deps<'_>,
    options: &Options,
    args: &Args,
) -> Result<(), CliError> {
    let settings = ctx.settings();
    let places = args.queue.places(settings);
    let (queue_url, dead_letter_url, table) = places.all(TRIGGER)?;
    let clients = AwsClients::new(&ctx.aws().await?.sdk);
    let queue = SdkQueue::new(clients.sqs());
    let store = SdkRunStore::new(clients.dynamodb(), table);
    let queue_deps = QueueDeps {
        queue: &queue,
        store: &store,
        queue_url,
        dead_letter_url,
        per_message: settings.queue.images_per_message,
        lease: settings.queue.run_lease,
        retry_backoff: settings.queue.retry_backoff,
    };
    let now = time::OffsetDateTime::now_utc();
    let report = prewarm::queued::plan(
        deps,
        &queue_deps,
        options,
        TRIGGER,
        args.images.clone(),
        now,
    )
    .await;
    ctx.print(&report, |out| print_plan(out, &report, queue_url, table))?;
    if !report.errors.is_empty() {
        return Err(CliError::RunErrors);
    }
    Ok(())
}

/// What started a run planned by `ptc prewarm --enqueue` (the run's `trigger`).
const TRIGGER: &str = "ptc prewarm --enqueue";

/// The run planned (id, entries, messages) or the run in flight, then warnings and errors.
pub fn print_plan(
    out: &mut impl Write,
    report: &PlanReport,
    queue_url: &str,
    table: &str,
) -> std::io::Result<()> {
    if let Some(run) = &report.run {
        writeln!(out, "run {run} planned")?;
        writeln!(
            out,
            "{} entries planned, {} messages sent to {queue_url}",
            report.planned, report.messages
        )?;
        if report.not_queued > 0 {
            writeln!(
                out,
                "{} entries could not be queued (recorded as deferred)",
                report.not_queued
            )?;
        }
        if let Some(old) = &report.abandoned {
            writeln!(
                out,
                "run {old} had outlived its lease: finished as abandoned"
            )?;
        }
        writeln!(out, "follow it: ptc runs {run} --run-table {table}")?;
    } else if let Some(other) = &report.in_flight {
        writeln!(
            out,
            "run {other} is in flight: nothing was enqueued (see ptc runs {other} --run-table {table})"
        )?;
    } else {
        writeln!(out, "no run was planned")?;
    }
    for warning in report
        .warnings
        .iter()
        .filter(|w| report.in_flight.is_none() || !w.contains("is in flight"))
    {
        writeln!(out, "warning: {warning}")?;
    }
    for error in &report.errors {
        writeln!(out, "error: {error}")?;
    }
    Ok(())
}

/// `PTC_UPSTREAM_ENDPOINTS`: upstream host → URL.
fn upstream_endpoints(settings: &Settings) -> BTreeMap<String, String> {
    settings
        .upstream_endpoints
        .iter()
        .map(|(host, endpoint)| (host.clone(), endpoint.as_str().to_owned()))
        .collect()
}

/// The run's options: the settings, then `--dry-run`, `--no-metrics`, `--mode`, `--state`
/// and `--no-state`. Errors: [`CliError::InvalidSettings`] for a `--state` that is not a location.
fn options(settings: &Settings, args: &Args) -> Result<Options, CliError> {
    let mut options = Options::from_settings(settings);
    options.dry_run = args.dry_run;
    options.publish_metrics = !args.no_metrics;
    if let Some(mode) = args.mode {
        options.mode = mode;
    }
    if let Some(state) = &args.state {
        options.state = Some(
            WatchListSource::parse(state)
                .map_err(|why| CliError::InvalidSettings(format!("--state {state}: {why}")))?,
        );
    }
    if args.no_state {
        options.state = None;
    }
    // An operator's list may not be the Lambda's, whose state this may be: forget nothing.
    options.forget_unused = false;
    if !args.images.is_empty() {
        // The images given, alone (as a queued on-demand run plans them): a run of a part of
        // the list publishes nothing, so that the alarms' coverage and heartbeat stay the
        // whole list's.
        options.settings_watch_list.clear();
        options.watch_list_source = None;
        options.discovery_days = 0;
        options.publish_metrics = false;
    }
    Ok(options)
}

/// The state file of an operator's runs against `registry_host`, in the user's cache
/// directory (XDG Base Directory: `$XDG_CACHE_HOME`, else `~/.cache`); `None` without either.
fn default_state(registry_host: &str) -> Option<WatchListSource> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| std::path::PathBuf::from(home).join(".cache"))
        })?;
    let name: String = registry_host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(WatchListSource::File(
        base.join("ptc")
            .join("prewarm")
            .join(format!("{name}.json")),
    ))
}

/// A spinner with the count of images done, when stderr is a terminal.
fn progress_bar() -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {pos} images  {elapsed}  {msg}")
                .expect("valid template"),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    })
}

/// The progress callback: one tick per image, its reference as the message.
fn show_progress(bar: ProgressBar) -> prewarm::Progress {
    Arc::new(move |image: &ImageResult| {
        bar.inc(1);
        bar.set_message(image.reference.clone());
    })
}

/// One line per image (reference, outcome, cached URI, details), the errors and the summary.
pub fn print(out: &mut impl Write, report: &PrewarmReport) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = report.images.iter().map(image_row).collect();
    output::table(
        out,
        &["REFERENCE", "OUTCOME", "CACHED IMAGE", "DETAILS"],
        &rows,
    )?;
    for warning in &report.warnings {
        writeln!(out, "warning: {warning}")?;
    }
    for error in &report.errors {
        writeln!(out, "error: {error}")?;
    }
    let t = &report.traffic;
    writeln!(
        out,
        "through the cache: {} manifest GETs, {} blob GETs ({} bytes); upstream: {} HEADs, {} tags-list pages",
        t.cache_manifest_gets,
        t.cache_blob_gets,
        t.cache_blob_bytes,
        t.upstream_heads,
        t.upstream_tag_pages
    )?;
    let s = &report.summary;
    writeln!(
        out,
        "{} images: {} warmed, {} already fresh, {} stale, {} failed, {} deferred; coverage {}; {:.1} s",
        s.images,
        s.warmed,
        s.already_fresh,
        s.stale,
        s.failed,
        s.deferred,
        s.coverage_percent
            .map_or_else(|| "none".to_owned(), |p| format!("{p}%")),
        report.duration_ms as f64 / 1000.0
    )
}

fn image_row(image: &ImageResult) -> Vec<String> {
    let outcome = serde_json::to_value(image.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut details = image.reason.clone().unwrap_or_default();
    if let Some(hours) = image.stale_age_hours {
        details = format!("cached copy {hours:.1} h old; {details}");
    }
    vec![
        image.reference.clone(),
        outcome,
        image.uri.clone().unwrap_or_default(),
        details,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(state: Option<&str>, no_state: bool) -> Args {
        Args {
            images: Vec::new(),
            dry_run: false,
            enqueue: false,
            queue: Default::default(),
            mode: None,
            no_metrics: false,
            state: state.map(str::to_owned),
            no_state,
        }
    }

    /// An operator's run forgets nothing of a state it may share with the Lambda (its list
    /// may be another); `--state` and `--no-state` choose where it remembers.
    #[test]
    fn an_operators_run_forgets_nothing_and_the_state_is_chosen_by_flags() {
        let settings = Settings::from_sources(|name| {
            (name == "PTC_PREWARM_STATE_URL").then(|| "s3://ptc-state/prewarm/state.json".into())
        })
        .unwrap();
        assert!(prewarm::Options::from_settings(&settings).forget_unused);
        let from_settings = options(&settings, &args(None, false)).unwrap();
        assert!(!from_settings.forget_unused);
        assert!(matches!(
            from_settings.state,
            Some(WatchListSource::S3 { .. })
        ));
        let flagged = options(&settings, &args(Some("/tmp/ptc-state.json"), false)).unwrap();
        assert_eq!(
            flagged.state,
            Some(WatchListSource::File("/tmp/ptc-state.json".into()))
        );
        assert_eq!(options(&settings, &args(None, true)).unwrap().state, None);
        assert!(options(&settings, &args(Some("ftp://x/y"), false)).is_err());
        assert!(
            default_state("123456789012.dkr.ecr.us-east-1.amazonaws.com:443").is_none_or(|s| s
                .to_string()
                .ends_with("123456789012.dkr.ecr.us-east-1.amazonaws.com_443.json"))
        );
    }
}
