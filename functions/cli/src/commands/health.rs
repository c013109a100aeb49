//! `ptc health`: the inventory, coverage and outage readiness as tables.
//!
//! With `--outage`, an image counts as ready only when its consumers can pull it too: for
//! a cached image under a prefix with consumers (the settings' pull grants,
//! `PTC_PULL_PRINCIPALS`, `PTC_PULL_ORG_ID`, a prefix's own), the cached repository's policy
//! and the registry policy are read and each consumer's cached pull
//! (`ecr:BatchGetImage`, `ecr:GetDownloadUrlForLayer`) is judged by
//! [`ptc_core::access`]. During an upstream outage a consumer can only make a cached pull
//! (a first pull or a new tag needs the upstream), so that is the pull judged here; the
//! other two are `ptc validate`'s. These reads are `ptc`'s alone: the health-metrics Lambda
//! never reads a policy (its role cannot), and its `OutageExposedImages` counts what the
//! cache account itself could not pull.

use std::collections::BTreeMap;
use std::io::Write;

use futures::StreamExt as _;
use health_metrics::inventory::PrefixInventory;
use health_metrics::readiness::{Readiness, UpstreamReadiness, WatchItem, names_upstream};
use health_metrics::report::Coverage;
use health_metrics::{Deps, HealthReport, Options};
use ptc_core::access::{CacheSide, Outcome, Policy, PullKind, Resource};
use ptc_core::ecr::{EcrApi, EcrSettingsApi, EcrTemplatesApi};
use ptc_core::rules::Prefix;
use validate_rules::cross_account::Consumers;

use crate::context::Context;
use crate::error::{CliError, Findings};
use crate::output;

/// `ptc health [--outage UPSTREAM] [--per-repository] [--no-metrics]`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print only what would fail to pull if this upstream went down now (quay.io,
    /// docker.io, ...), for this account or for the consumers the settings grant pull;
    /// exit code 1 when anything would.
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
/// images that upstream's outage would break, for this account or for its consumers
/// ([`not_ready_for_consumers`]; JSON: that list). Errors: [`CliError::RunErrors`] when the
/// report has errors or warnings, or a policy could not be read; [`Findings::ExposedImages`]
/// when `--outage` finds images that would fail, [`CliError::Output`].
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
    let mut consumer_errors = Vec::new();
    let exposed = match &args.outage {
        Some(upstream) => {
            let ports = Ports {
                ecr: aws.ecr.as_ref(),
                settings: aws.ecr.as_ref(),
                templates: aws.ecr.as_ref(),
            };
            let consumers = Consumers::from_settings(&ctx.settings().fix);
            let (blocked, errors) =
                not_ready_for_consumers(&ports, &report, upstream, &consumers, options.concurrency)
                    .await;
            consumer_errors = errors;
            let mut exposed: Vec<WatchItem> =
                exposed_to(&report, upstream).into_iter().cloned().collect();
            exposed.extend(blocked);
            ctx.print(&exposed, |out| {
                print_outage(out, &report, upstream, &exposed, &consumer_errors)
            })?;
            exposed.len()
        }
        None => {
            ctx.print(&report, |out| print(out, &report))?;
            0
        }
    };
    if !report.errors.is_empty() || !report.warnings.is_empty() || !consumer_errors.is_empty() {
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

/// The ECR ports the consumers' check reads through.
pub struct Ports<'a> {
    /// `DescribeRepositories` (one repository by name: its ARN).
    pub ecr: &'a dyn EcrApi,
    /// The repository's policy (`GetRepositoryPolicy`, with the other settings
    /// `repository_settings` reads).
    pub settings: &'a dyn EcrSettingsApi,
    /// `DescribeRegistry` and `GetRegistryPolicy`.
    pub templates: &'a dyn EcrTemplatesApi,
}

/// The watched images of `upstream` that the cache account could pull during its outage
/// (the report's ready ones) but a consumer of their prefix could not: each consumer's
/// cached pull of the cached repository, judged from the repository's own policy and the
/// registry policy ([`ptc_core::access::pull`]). Returned as copies of the items, in
/// [`Readiness::ConsumersCannotPull`], the reason naming each consumer, the action and the
/// statement; and the reads that failed. An image whose policies could not be read, or
/// whose verdict is unknown, counts as not ready (never as ready). Reads nothing when no
/// such image's prefix has consumers: `DescribeRegistry` and `GetRegistryPolicy` once, then
/// per repository `DescribeRepositories` and its settings, `concurrency` at a time.
pub async fn not_ready_for_consumers(
    ports: &Ports<'_>,
    report: &HealthReport,
    upstream: &str,
    consumers: &Consumers,
    concurrency: usize,
) -> (Vec<WatchItem>, Vec<String>) {
    let consumers_of = |item: &WatchItem| {
        item.prefix
            .as_deref()
            .and_then(|p| Prefix::parse(p).ok())
            .map(|p| consumers.for_prefix(&p).to_vec())
            .unwrap_or_default()
    };
    let candidates: Vec<&WatchItem> = report
        .watch_list
        .iter()
        .filter(|i| {
            i.state == Readiness::Ready
                && i.upstream
                    .as_deref()
                    .is_some_and(|u| names_upstream(upstream, u))
                && !consumers_of(i).is_empty()
        })
        .collect();
    let mut errors = Vec::new();
    if candidates.is_empty() {
        return (Vec::new(), errors);
    }
    let blocked = |item: &WatchItem, reason: String| WatchItem {
        state: Readiness::ConsumersCannotPull,
        reason: Some(reason),
        ..item.clone()
    };
    let (registry, registry_policy) = tokio::join!(
        ports.templates.registry(),
        ports.templates.registry_policy()
    );
    let (registry, registry_policy) = match (registry, registry_policy) {
        (Ok(r), Ok(p)) => (r, Policy::parse("registry policy", p.as_deref())),
        (r, p) => {
            let why: Vec<String> = [r.err(), p.err()]
                .into_iter()
                .flatten()
                .map(|e| format!("consumers' pulls not known: {e}"))
                .collect();
            errors.extend(why.iter().cloned());
            let reason = format!(
                "cached; whether its consumers may pull it is not known: {}",
                why.join("; ")
            );
            return (
                candidates
                    .iter()
                    .map(|i| blocked(i, reason.clone()))
                    .collect(),
                errors,
            );
        }
    };
    // Each repository's policy, read once.
    let mut names: Vec<&str> = candidates
        .iter()
        .filter_map(|i| i.repository.as_deref())
        .collect();
    names.sort_unstable();
    names.dedup();
    let read: BTreeMap<&str, Result<(String, Option<String>), String>> =
        futures::stream::iter(names)
            .map(|name| async move {
                let answer = match ports.ecr.describe_repository(name).await {
                    Ok(Some(repo)) => match ports.settings.repository_settings(&repo).await {
                        Ok(settings) => Ok((repo.arn.clone(), settings.repository_policy)),
                        Err(e) => Err(format!("cannot read the policy of repository {name}: {e}")),
                    },
                    Ok(None) => Err(format!("repository {name} no longer exists")),
                    Err(e) => Err(format!("cannot describe repository {name}: {e}")),
                };
                (name, answer)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    let mut out = Vec::new();
    for item in candidates {
        let name = item.repository.as_deref().unwrap_or_default();
        let (arn, policy) = match &read[name] {
            Ok(found) => found,
            Err(why) => {
                if !errors.contains(why) {
                    errors.push(why.clone());
                }
                out.push(blocked(
                    item,
                    format!("cached; whether its consumers may pull it is not known: {why}"),
                ));
                continue;
            }
        };
        let repository_policy =
            Policy::parse(format!("repository {name}'s policy"), policy.as_deref());
        let resource = Resource::Arn(arn.clone());
        let side = CacheSide {
            account: &registry.id,
            registry_policy: &registry_policy,
            repository_policy: &repository_policy,
            resource: &resource,
        };
        let refused: Vec<String> = consumers_of(item)
            .iter()
            .filter_map(|c| {
                let v = ptc_core::access::pull(PullKind::CachedPull, c, &side);
                (v.outcome != Outcome::Allowed).then(|| {
                    let outcome = if v.outcome == Outcome::Denied {
                        "denied"
                    } else {
                        "unknown"
                    };
                    format!(
                        "{}: {outcome} {}: {}",
                        c.name,
                        v.action.as_deref().unwrap_or(""),
                        v.reason
                    )
                })
            })
            .collect();
        if !refused.is_empty() {
            out.push(blocked(
                item,
                format!(
                    "cached, but not every consumer may pull it from the cache: {}",
                    refused.join("; ")
                ),
            ));
        }
    }
    (out, errors)
}

/// `ptc health --outage HOST`: `exposed` is what would fail, for this account
/// ([`exposed_to`]) or for its consumers ([`not_ready_for_consumers`]).
pub fn print_outage(
    out: &mut impl Write,
    report: &HealthReport,
    upstream: &str,
    exposed: &[WatchItem],
    consumer_errors: &[String],
) -> std::io::Result<()> {
    let watched: usize = report
        .outage
        .iter()
        .filter(|u| names_upstream(upstream, &u.upstream))
        .map(|u| u.watched)
        .sum();
    let for_consumers = exposed
        .iter()
        .filter(|i| i.state == Readiness::ConsumersCannotPull)
        .count();
    if watched == 0 {
        writeln!(out, "no watch-list image comes from {upstream}")?;
    } else if exposed.is_empty() {
        writeln!(
            out,
            "if {upstream} went down now, all {watched} watched images would still pull from the cache"
        )?;
    } else {
        let consumers = if for_consumers > 0 {
            format!(
                " ({for_consumers} of them cached, but not pullable by every consumer the settings grant pull)"
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "if {upstream} went down now, {} of {watched} watched images would fail to pull{consumers}:",
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
    for error in report.errors.iter().chain(consumer_errors) {
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

    // -- --outage, for the consumers -------------------------------------------------------

    fn watched(image: &str, repository: &str, state: Readiness) -> WatchItem {
        WatchItem {
            image: image.into(),
            repository: Some(repository.into()),
            prefix: Some("quay".into()),
            upstream: Some("quay.io".into()),
            state,
            reason: None,
            notes: Vec::new(),
        }
    }

    fn repository(name: &str) -> ptc_core::ecr::Repository {
        ptc_core::ecr::Repository {
            name: name.into(),
            arn: format!("arn:aws:ecr:us-east-1:123456789012:repository/{name}"),
            uri: String::new(),
            created_at: None,
            tag_mutability: "MUTABLE".into(),
            tag_mutability_exclusions: Vec::new(),
            scan_on_push: false,
        }
    }

    struct Fakes {
        ecr: ptc_core::fakes::FakeEcr,
        settings: ptc_core::fakes::FakeEcrSettings,
        templates: ptc_core::fakes::FakeTemplates,
    }

    impl Fakes {
        /// quay/granted holds the product's pull grant for 222233334444; quay/bare has no
        /// policy.
        fn new() -> Self {
            let ecr = ptc_core::fakes::FakeEcr::default();
            ecr.state.lock().unwrap().repositories =
                vec![repository("quay/granted"), repository("quay/bare")];
            let settings = ptc_core::fakes::FakeEcrSettings::default();
            settings.settings.lock().unwrap().insert(
                "quay/granted".into(),
                ptc_core::ecr::RepositorySettings {
                    repository_policy: Some(
                        serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "PtcPullPrincipals", "Effect": "Allow",
                            "Principal": {"AWS": ["arn:aws:iam::222233334444:root"]},
                            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]}]})
                        .to_string(),
                    ),
                    ..Default::default()
                },
            );
            Self {
                ecr,
                settings,
                templates: ptc_core::fakes::FakeTemplates::default(),
            }
        }

        fn ports(&self) -> Ports<'_> {
            Ports {
                ecr: &self.ecr,
                settings: &self.settings,
                templates: &self.templates,
            }
        }
    }

    fn outage_report() -> HealthReport {
        let mut report = HealthReport::empty("test", time::OffsetDateTime::now_utc());
        report.watch_list = vec![
            watched("quay.io/granted:v1", "quay/granted", Readiness::Ready),
            watched("quay.io/bare:v1", "quay/bare", Readiness::Ready),
            watched("quay.io/missing:v1", "quay/missing", Readiness::NotCached),
        ];
        report.outage = health_metrics::readiness::by_upstream(&report.watch_list);
        report
    }

    fn consumers(principals: &[&str]) -> Consumers {
        Consumers {
            default: ptc_core::access::Consumer::from_grants(
                &principals
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect::<Vec<_>>(),
                None,
            ),
            prefixes: BTreeMap::new(),
        }
    }

    /// A cached image counts as ready for an outage only when every consumer may pull it
    /// from its repository; the one whose repository grants nobody is listed, naming the
    /// consumer, the action and why.
    #[tokio::test]
    async fn an_outage_counts_an_image_ready_only_when_consumers_can_pull_it() {
        let fakes = Fakes::new();
        let report = outage_report();
        let (blocked, errors) = not_ready_for_consumers(
            &fakes.ports(),
            &report,
            "quay.io",
            &consumers(&["222233334444"]),
            4,
        )
        .await;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(blocked.len(), 1, "{blocked:#?}");
        assert_eq!(blocked[0].image, "quay.io/bare:v1");
        assert_eq!(blocked[0].state, Readiness::ConsumersCannotPull);
        let reason = blocked[0].reason.as_deref().unwrap();
        assert!(
            reason.contains("222233334444: denied ecr:BatchGetImage")
                && reason.contains("repository quay/bare's policy (there is none)"),
            "{reason}"
        );
        // The table says so, and counts it with what the cache itself lacks.
        let mut exposed: Vec<WatchItem> = exposed_to(&report, "quay.io")
            .into_iter()
            .cloned()
            .collect();
        exposed.extend(blocked);
        let mut out = Vec::new();
        print_outage(&mut out, &report, "quay.io", &exposed, &[]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("2 of 3 watched images would fail to pull (1 of them cached, but not pullable by every consumer"),
            "{text}"
        );
        assert!(text.contains("consumers-cannot-pull"), "{text}");
        // Another consumer, granted nowhere: both cached images are out of its reach.
        let (blocked, _) = not_ready_for_consumers(
            &fakes.ports(),
            &report,
            "quay.io",
            &consumers(&["222233334444", "333344445555"]),
            4,
        )
        .await;
        assert_eq!(blocked.len(), 2, "{blocked:#?}");
    }

    #[tokio::test]
    async fn without_consumers_nothing_is_read() {
        let fakes = Fakes::new();
        let (blocked, errors) = not_ready_for_consumers(
            &fakes.ports(),
            &outage_report(),
            "quay.io",
            &Consumers::default(),
            4,
        )
        .await;
        assert!(blocked.is_empty() && errors.is_empty());
        assert_eq!(fakes.ecr.calls("DescribeRepositories"), 0);
        // Nor for another upstream's outage.
        let (blocked, _) = not_ready_for_consumers(
            &fakes.ports(),
            &outage_report(),
            "ghcr.io",
            &consumers(&["222233334444"]),
            4,
        )
        .await;
        assert!(blocked.is_empty());
        assert_eq!(fakes.ecr.calls("DescribeRepositories"), 0);
    }

    /// A policy that cannot be read makes its images not ready (never ready), with the error.
    #[tokio::test]
    async fn an_unreadable_repository_is_not_ready_and_an_error() {
        let fakes = Fakes::new();
        fakes.ecr.fail_next(
            "DescribeRepositories",
            ptc_core::AwsErrorKind::AccessDenied("AccessDeniedException".into()),
        );
        let (blocked, errors) = not_ready_for_consumers(
            &fakes.ports(),
            &outage_report(),
            "quay.io",
            &consumers(&["222233334444"]),
            1,
        )
        .await;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("AccessDeniedException"), "{errors:?}");
        // quay/bare is read first (and fails); quay/granted is read and granted.
        assert_eq!(blocked.len(), 1, "{blocked:#?}");
        assert_eq!(blocked[0].image, "quay.io/bare:v1");
        assert!(
            blocked[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("is not known"),
            "{blocked:#?}"
        );
    }
}
