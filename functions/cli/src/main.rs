//! `ptc`: the operator CLI. Wiring only: arguments, settings, AWS clients, output.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use ptc_cli::map::map_references;
use ptc_cli::output::{self, OutputFormat};
use ptc_core::aws::AwsClients;
use ptc_core::aws::SdkEcr;
use ptc_core::aws::SdkObjects;
use ptc_core::aws::SdkSecrets;
use ptc_core::aws::{AwsOptions, load_sdk_config};
use ptc_core::config::PrewarmMode;
use ptc_core::config::{ExpectedRule, Settings};
use ptc_core::ecr::EcrApi;
use ptc_core::oci::RegistryClient;
use ptc_core::rules::RuleSet;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use validate_rules::job::Severity;
use validate_rules::trigger::Trigger;

#[derive(Parser)]
#[command(
    name = "ptc",
    version,
    about = "Keeps an Amazon ECR pull-through cache healthy"
)]
struct Cli {
    /// Settings file (TOML); same as PTC_CONFIG_FILE.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<String>,
    /// table for people, json for machines.
    #[arg(long, global = true, value_enum, default_value = "table")]
    output: OutputFormat,
    /// More log lines on stderr (-v: info, ptc's own debug; -vv: debug). PTC_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bring the repositories the cache created to the desired settings.
    Fix {
        /// fill (add what is missing), enforce (replace what differs) or dry-run (print the
        /// changes enforce would make, write nothing). Default: PTC_FIX_MODE, else fill.
        #[arg(long, value_parser = ["fill", "enforce", "dry-run"])]
        mode: Option<String>,
        /// Only these repositories (repeatable); default: every repository under a rule prefix.
        #[arg(long = "repository", value_name = "NAME")]
        repositories: Vec<String>,
        /// Do not publish CloudWatch metrics.
        #[arg(long)]
        no_metrics: bool,
    },
    /// Pull the watch list through the cache, verify it in ECR, compare with upstream.
    Prewarm {
        /// An image to warm (repeatable), before the settings' watch list and discovery.
        #[arg(long = "image", value_name = "REF")]
        images: Vec<String>,
        /// Resolve and print what would be pulled; pull nothing.
        #[arg(long)]
        dry_run: bool,
        /// layers (default from PTC_PREWARM_MODE) or manifests.
        #[arg(long, value_parser = ["layers", "manifests"])]
        mode: Option<String>,
        /// Do not publish CloudWatch metrics.
        #[arg(long)]
        no_metrics: bool,
    },
    /// Inventory of the cache per prefix, watch-list coverage and outage readiness; publish the metrics.
    Health {
        /// Print only what would fail to pull if this upstream went down now (quay.io,
        /// docker.io, ...); exit code 1 when anything would.
        #[arg(long, value_name = "UPSTREAM")]
        outage: Option<String>,
        /// Also list every repository's figures.
        #[arg(long)]
        per_repository: bool,
        /// Do not publish CloudWatch metrics.
        #[arg(long)]
        no_metrics: bool,
    },
    /// Validate every pull-through cache rule and its credential secret; publish the metrics.
    Validate {
        /// Only these rule prefixes (repeatable); default: every rule.
        #[arg(long = "prefix", value_name = "PREFIX")]
        prefixes: Vec<String>,
        /// Do not publish CloudWatch metrics.
        #[arg(long)]
        no_metrics: bool,
    },
    /// Print the cached image URI of each upstream reference.
    Map {
        /// A rule PREFIX=UPSTREAM_URL (repeatable). Without it: the config's rules, else the registry's.
        #[arg(long = "rule", value_name = "PREFIX=UPSTREAM_URL")]
        rules: Vec<String>,
        /// Registry host for the URIs; default: the account's, from GetAuthorizationToken.
        #[arg(long, env = "PTC_REGISTRY_HOST", value_name = "HOST")]
        registry: Option<String>,
        /// References as people write them (nginx:1.25, quay.io/x/y:v1); `-` reads them from stdin.
        #[arg(required = true, value_name = "REF")]
        references: Vec<String>,
    },
}

/// Logs on stderr: `PTC_LOG` (from the settings) when set, else the level `-v` asks for.
fn init_logs(verbose: u8, filter_spec: Option<&str>) {
    let default = match verbose {
        0 => "warn",
        1 => "info,ptc_core=debug",
        _ => "debug",
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(ptc_core::logging::filter(filter_spec, default)),
        )
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    // Before clap reads PTC_* variables into arguments: a value that is not text is named.
    if let Err(err) = Settings::check_environment() {
        eprintln!("ptc: {err}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    let settings = match Settings::load_with(cli.config.clone()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("ptc: {err}");
            return ExitCode::from(2);
        }
    };
    init_logs(cli.verbose, settings.log_filter.as_deref());
    match run(cli, settings).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("ptc: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli, mut settings: Settings) -> Result<ExitCode, String> {
    match cli.command {
        Command::Fix {
            mode,
            repositories,
            no_metrics,
        } => {
            if let Some(mode) = mode {
                settings.fix.mode = mode.parse().expect("clap checked the mode");
            }
            let mut options = lifecycle_fixer::sweep::Options::from_settings(&settings)?;
            options.publish_metrics = !no_metrics;
            let sdk = load_sdk_config(&AwsOptions::from_settings(&settings)).await;
            let clients = AwsClients::new(&sdk);
            let ecr = SdkEcr::new(clients.ecr);
            let metrics = ptc_core::aws::for_sink(settings.metrics_sink, clients.cloudwatch, true);
            let deps = lifecycle_fixer::sweep::Deps {
                ecr: &ecr,
                settings: &ecr,
                templates: &ecr,
                metrics: metrics.as_ref(),
            };
            let only = (!repositories.is_empty()).then_some(repositories.as_slice());
            let report = lifecycle_fixer::sweep::sweep(&deps, &options, only, "ptc fix").await;
            let mut stdout = std::io::stdout().lock();
            match cli.output {
                OutputFormat::Json => output::json(&mut stdout, &report),
                OutputFormat::Table => print_fix(&mut stdout, &report),
            }
            .map_err(|e| format!("writing output: {e}"))?;
            let failed = !report.errors.is_empty() || report.summary.errors > 0;
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Prewarm {
            images,
            dry_run,
            mode,
            no_metrics,
        } => {
            let sdk = load_sdk_config(&AwsOptions::from_settings(&settings)).await;
            let clients = AwsClients::new(&sdk);
            let ecr: Arc<dyn EcrApi> = Arc::new(SdkEcr::new(clients.ecr));
            let (secrets, metrics, objects) = (
                SdkSecrets::new(clients.secrets),
                ptc_core::aws::for_sink(settings.metrics_sink, clients.cloudwatch, true),
                SdkObjects::new(clients.s3),
            );
            let http =
                ptc_core::oci::http_client(settings.http_timeout).map_err(|e| e.to_string())?;
            let registry_endpoint = settings
                .registry_endpoint
                .as_ref()
                .map(|e| e.as_str().to_owned());
            let (cache, host) =
                RegistryClient::for_ecr(http.clone(), ecr.clone(), registry_endpoint.as_deref())
                    .await
                    .map_err(|e| format!("registry token: {e}"))?;
            let upstream_endpoints = settings
                .upstream_endpoints
                .iter()
                .map(|(h, e)| (h.clone(), e.as_str().to_owned()))
                .collect();
            let deps = prewarm::Deps {
                ecr: ecr.as_ref(),
                secrets: &secrets,
                objects: &objects,
                metrics: metrics.as_ref(),
                cache: &cache,
                registry_host: &host,
                http: &http,
                upstream_endpoints: &upstream_endpoints,
            };
            let mut options = prewarm::Options::from_settings(&settings);
            options.dry_run = dry_run;
            options.publish_metrics = !no_metrics;
            if let Some(mode) = mode {
                options.mode = if mode == "manifests" {
                    PrewarmMode::Manifests
                } else {
                    PrewarmMode::Layers
                };
            }
            let bar = std::io::stderr().is_terminal().then(|| {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} {pos} images  {elapsed}  {msg}",
                    )
                    .expect("valid template"),
                );
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bar
            });
            if let Some(bar) = &bar {
                let bar = bar.clone();
                options.progress = Some(Arc::new(move |image: &prewarm::ImageResult| {
                    bar.inc(1);
                    bar.set_message(image.reference.clone());
                }));
            }
            let report = prewarm::run(
                &deps,
                &options,
                "ptc prewarm",
                images,
                time::OffsetDateTime::now_utc(),
            )
            .await;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let mut stdout = std::io::stdout().lock();
            match cli.output {
                OutputFormat::Json => output::json(&mut stdout, &report),
                OutputFormat::Table => print_prewarm(&mut stdout, &report),
            }
            .map_err(|e| format!("writing output: {e}"))?;
            Ok(if report.any_failed() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Health {
            outage,
            per_repository,
            no_metrics,
        } => {
            let sdk = load_sdk_config(&AwsOptions::from_settings(&settings)).await;
            let clients = AwsClients::new(&sdk);
            let (ecr, objects, metrics) = (
                SdkEcr::new(clients.ecr),
                SdkObjects::new(clients.s3),
                ptc_core::aws::for_sink(settings.metrics_sink, clients.cloudwatch, true),
            );
            let deps = health_metrics::Deps {
                ecr: &ecr,
                objects: &objects,
                metrics: metrics.as_ref(),
            };
            let mut options = health_metrics::Options::from_settings(&settings);
            options.publish_metrics = !no_metrics;
            options.per_repository |= per_repository;
            let report = health_metrics::run(
                &deps,
                &options,
                "ptc health",
                time::OffsetDateTime::now_utc(),
            )
            .await;
            let mut stdout = std::io::stdout().lock();
            let exposed = match &outage {
                Some(upstream) => {
                    let exposed = ptc_cli::health::exposed_to(&report, upstream);
                    match cli.output {
                        OutputFormat::Json => output::json(&mut stdout, &exposed),
                        OutputFormat::Table => {
                            ptc_cli::health::print_outage(&mut stdout, &report, upstream)
                        }
                    }
                    .map_err(|e| format!("writing output: {e}"))?;
                    exposed.len()
                }
                None => {
                    match cli.output {
                        OutputFormat::Json => output::json(&mut stdout, &report),
                        OutputFormat::Table => ptc_cli::health::print(&mut stdout, &report),
                    }
                    .map_err(|e| format!("writing output: {e}"))?;
                    0
                }
            };
            Ok(
                if report.errors.is_empty() && report.warnings.is_empty() && exposed == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                },
            )
        }
        Command::Validate {
            prefixes,
            no_metrics,
        } => {
            let sdk = load_sdk_config(&AwsOptions::from_settings(&settings)).await;
            let clients = AwsClients::new(&sdk);
            let (ecr, secrets, metrics) = (
                SdkEcr::new(clients.ecr),
                SdkSecrets::new(clients.secrets),
                ptc_core::aws::for_sink(settings.metrics_sink, clients.cloudwatch, true),
            );
            let deps = validate_rules::Deps {
                ecr: &ecr,
                secrets: &secrets,
                metrics: metrics.as_ref(),
            };
            let mut options = validate_rules::Options::from_settings(&settings);
            options.publish_metrics = !no_metrics;
            let trigger = if prefixes.is_empty() {
                Trigger::All {
                    source: "ptc validate".into(),
                }
            } else {
                Trigger::Prefixes {
                    source: "ptc validate".into(),
                    prefixes,
                }
            };
            let report =
                validate_rules::run(&deps, &options, &trigger, time::OffsetDateTime::now_utc())
                    .await;
            let mut stdout = std::io::stdout().lock();
            match cli.output {
                OutputFormat::Json => output::json(&mut stdout, &report),
                OutputFormat::Table => print_validation(&mut stdout, &report),
            }
            .map_err(|e| format!("writing output: {e}"))?;
            // A `--prefix` that names no rule is a failure here (an operator asked for it);
            // in the Lambda it is the normal aftermath of a DeletePullThroughCacheRule event.
            Ok(
                if report.healthy() && report.errors.is_empty() && report.not_found.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                },
            )
        }
        Command::Map {
            rules,
            registry,
            references,
        } => {
            let local_rules = if rules.is_empty() {
                settings.expected_rule_set()
            } else {
                RuleSet::new(
                    rules
                        .iter()
                        .map(|spec| {
                            ExpectedRule::parse(spec)
                                .map(|r| r.to_rule())
                                .map_err(|e| format!("--rule {spec}: {e}"))
                        })
                        .collect::<Result<_, _>>()?,
                )
            };
            // AWS is reached only for what the command line and config did not give.
            let ecr: Option<Arc<dyn EcrApi>> = if local_rules.is_empty() || registry.is_none() {
                let sdk = load_sdk_config(&AwsOptions::from_settings(&settings)).await;
                Some(Arc::new(SdkEcr::new(aws_sdk_ecr::Client::new(&sdk))))
            } else {
                None
            };
            let rule_set = match (&ecr, local_rules.is_empty()) {
                (Some(ecr), true) => RuleSet::new(
                    ecr.describe_rules()
                        .await
                        .map_err(|e| format!("reading the registry's rules: {e}"))?,
                ),
                _ => local_rules,
            };
            let registry = match (registry, &ecr) {
                (Some(host), _) => host,
                (None, Some(ecr)) => ecr
                    .authorization_token()
                    .await
                    .map_err(|e| {
                        format!(
                            "finding the registry host (pass --registry to skip this call): {e}"
                        )
                    })?
                    .registry_host()
                    .to_owned(),
                (None, None) => unreachable!("ecr is built whenever --registry is missing"),
            };
            let inputs = expand_stdin(references)?;
            let mappings = map_references(&rule_set, &registry, inputs.iter().map(String::as_str));
            let mut stdout = std::io::stdout().lock();
            let written = match cli.output {
                OutputFormat::Json => output::json(&mut stdout, &mappings),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = mappings
                        .iter()
                        .map(|m| match (&m.uri, &m.error) {
                            (Some(uri), _) => vec![m.reference.clone(), uri.clone()],
                            (None, error) => vec![
                                m.reference.clone(),
                                format!("error: {}", error.as_deref().unwrap_or_default()),
                            ],
                        })
                        .collect();
                    output::table(&mut stdout, &["REFERENCE", "CACHED IMAGE"], &rows)
                }
            };
            written.map_err(|e| format!("writing output: {e}"))?;
            Ok(if mappings.iter().any(|m| m.failed()) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

fn print_fix(
    out: &mut impl std::io::Write,
    report: &lifecycle_fixer::sweep::FixReport,
) -> std::io::Result<()> {
    use lifecycle_fixer::plan::Change;
    let verb = if report.dry_run { "would" } else { "did" };
    let mut rows = Vec::new();
    for r in &report.repositories {
        let mut lines: Vec<String> = r
            .changes
            .iter()
            .map(|c| match c {
                Change::PutLifecyclePolicy { replaces, text } => {
                    format!(
                        "{verb} {} lifecycle policy {text}",
                        if *replaces { "replace the" } else { "set the" }
                    )
                }
                Change::SetRepositoryPolicy { replaces, text } => {
                    format!(
                        "{verb} {} repository policy {text}",
                        if *replaces { "replace the" } else { "set the" }
                    )
                }
                Change::TagResource { tags } => format!(
                    "{verb} tag {}",
                    tags.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Change::EnableScanOnPush => format!("{verb} enable scan on push"),
            })
            .collect();
        lines.extend(r.findings.iter().map(|f| format!("note: {f}")));
        lines.extend(r.errors.iter().map(|e| format!("error: {e}")));
        if lines.is_empty() {
            lines.push("compliant".into());
        }
        for (i, line) in lines.into_iter().enumerate() {
            let (name, prefix) = if i == 0 {
                (r.repository.clone(), r.prefix.clone())
            } else {
                (String::new(), String::new())
            };
            rows.push(vec![name, prefix, line]);
        }
    }
    output::table(out, &["REPOSITORY", "PREFIX", "CHANGE"], &rows)?;
    for t in &report.templates {
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
        }
        if let Some(error) = &t.error {
            line.push_str(&format!("; error: {error}"));
        }
        writeln!(out, "{line}")?;
    }
    for warning in &report.warnings {
        writeln!(out, "warning: {warning}")?;
    }
    for error in &report.errors {
        writeln!(out, "error: {error}")?;
    }
    let s = &report.summary;
    writeln!(
        out,
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

fn print_prewarm(
    out: &mut impl std::io::Write,
    report: &prewarm::PrewarmReport,
) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = report
        .images
        .iter()
        .map(|i| {
            let outcome = serde_json::to_value(i.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let mut details = i.reason.clone().unwrap_or_default();
            if let Some(hours) = i.stale_age_hours {
                details = format!("cached copy {hours:.1} h old; {details}");
            }
            vec![
                i.reference.clone(),
                outcome,
                i.uri.clone().unwrap_or_default(),
                details,
            ]
        })
        .collect();
    output::table(
        out,
        &["REFERENCE", "OUTCOME", "CACHED IMAGE", "DETAILS"],
        &rows,
    )?;
    for error in &report.errors {
        writeln!(out, "error: {error}")?;
    }
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

fn print_validation(
    out: &mut impl std::io::Write,
    report: &validate_rules::ValidationReport,
) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = report
        .rules
        .iter()
        .map(|r| {
            let details = if r.findings.is_empty() {
                "ok".to_owned()
            } else {
                r.findings
                    .iter()
                    .map(|f| match f.severity {
                        Severity::Error => format!("error: {}", f.message),
                        Severity::Warning => format!("warning: {}", f.message),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            vec![
                r.prefix.clone(),
                r.upstream.clone(),
                if r.valid { "yes".into() } else { "NO".into() },
                details,
            ]
        })
        .collect();
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

/// `-` stands for the references on stdin, one per line (blank lines and `#` comments skipped).
fn expand_stdin(references: Vec<String>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for reference in references {
        if reference == "-" {
            for line in std::io::stdin().lock().lines() {
                let line = line.map_err(|e| format!("reading stdin: {e}"))?;
                let line = line.trim();
                if !line.is_empty() && !line.starts_with('#') {
                    out.push(line.to_owned());
                }
            }
        } else {
            out.push(reference);
        }
    }
    Ok(out)
}
