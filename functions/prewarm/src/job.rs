//! The prewarm job: every watch-list image is pulled through the cache the way a container
//! runtime pulls it, verified in ECR, and compared with the upstream digest.
//!
//! Per image: a HEAD on the upstream (free on Docker Hub) gives the upstream digest and the
//! rate-limit budget; below the floor the upstream's remaining images are deferred. Then the
//! pull through the cache: the manifest by tag with the full `Accept` list, each wanted
//! platform's manifest by digest for an index, and in `layers` mode every blob. Then
//! `DescribeImages` must show the tag and each platform's manifest. Work stops starting
//! before the deadline; what is left is deferred, nothing is half-reported.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt as _;
use ptc_core::ImageReference;
use ptc_core::config::PrewarmMode;
use ptc_core::ecr::{EcrApi, ImageDetail};
use ptc_core::metrics::MetricsApi;
use ptc_core::objects::ObjectsApi;
use ptc_core::oci::{
    Credentials, Descriptor, Manifest, ManifestKind, RegistryClient, RegistryError, RetryPolicy,
};
use ptc_core::reference::Digest;
use ptc_core::rules::{CachedImage, PtcRule, RuleSet};
use ptc_core::secret::UpstreamCredential;
use ptc_core::secrets::SecretsApi;
use time::OffsetDateTime;

use crate::memory::{Blob, IndexEntry, Known, Memory, Store};
use crate::options::Options;
use crate::report::{ImageResult, Outcome, PrewarmReport, Traffic, metric_data, summarise};
use crate::sources::{self, Entry, Origin};
use crate::survey::{Cached, Survey, Want};

/// The ports and clients a run uses. The Lambda builds the clients behind them once per
/// execution environment (the registry client and its token on the first invocation);
/// `ptc prewarm` builds them per command.
pub struct Deps<'a> {
    /// ECR's API: `DescribePullThroughCacheRules` (routing), `DescribeRepositories` and
    /// `DescribeImages` (discovery), and `DescribeImages` by image id (each pull's
    /// confirmation, at most 100 ids per call).
    pub ecr: &'a dyn EcrApi,
    /// Secrets Manager: `GetSecretValue` of a rule's credential secret, so that the
    /// upstream HEAD spends the same account's budget as ECR's pulls. Read once per
    /// upstream per run; unreadable (logged as a warning) or not in the
    /// `username`/`accessToken` shape, the HEADs go anonymous.
    pub secrets: &'a dyn SecretsApi,
    /// Reads a long watch list from S3.
    pub objects: &'a dyn ObjectsApi,
    /// Where the run's data points go: `PutMetricData`, or Embedded Metric Format log
    /// lines (`PTC_METRICS_SINK`).
    pub metrics: &'a dyn MetricsApi,
    /// The registry endpoint of the account (ECR token), shared by every pull of the run.
    pub cache: &'a RegistryClient,
    /// `<account>.dkr.ecr.<region>.amazonaws.com`, for URIs.
    pub registry_host: &'a str,
    /// Shared HTTP client for the upstream registries.
    pub http: &'a reqwest::Client,
    /// Where to reach an upstream registry directly (`quay.io` → URL); default `https://<host>`.
    pub upstream_endpoints: &'a BTreeMap<String, String>,
}

/// Rate-limit budget and clients per upstream, shared by the run's tasks.
struct Upstreams<'a> {
    deps: &'a Deps<'a>,
    floor: u64,
    clients: tokio::sync::Mutex<HashMap<String, Arc<RegistryClient>>>,
    exhausted: Mutex<HashMap<String, (String, u64)>>,
}

impl Upstreams<'_> {
    async fn client(&self, rule: &PtcRule) -> Arc<RegistryClient> {
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(&rule.upstream_url) {
            return client.clone();
        }
        let base = self
            .deps
            .upstream_endpoints
            .get(&rule.upstream_url)
            .cloned()
            .unwrap_or_else(|| format!("https://{}", rule.upstream_url));
        let credentials = match &rule.credential_arn {
            // The rule's own credential: the same account whose pull budget ECR spends.
            Some(arn) => match self.deps.secrets.secret_value(arn).await {
                Ok(value) => parse_credentials(value.expose()).unwrap_or(Credentials::Anonymous),
                Err(err) => {
                    tracing::warn!(upstream = %rule.upstream_url, error = %err, "rule credential unreadable; upstream checks are anonymous");
                    Credentials::Anonymous
                }
            },
            None => Credentials::Anonymous,
        };
        let client = Arc::new(
            RegistryClient::new(self.deps.http.clone(), &base, Arc::new(credentials))
                .with_token_hosts(token_hosts(rule))
                .with_retry(RetryPolicy {
                    max_retries: 2,
                    ..RetryPolicy::default()
                }),
        );
        clients.insert(rule.upstream_url.clone(), client.clone());
        client
    }

    /// Why the upstream's images are deferred for the rest of the run, and how long to wait
    /// before trying again (seconds).
    fn exhausted(&self, upstream: &str) -> Option<(String, u64)> {
        self.exhausted.lock().unwrap().get(upstream).cloned()
    }

    fn exhaust(&self, upstream: &str, why: String, wait_secs: u64) {
        self.exhausted
            .lock()
            .unwrap()
            .entry(upstream.to_owned())
            .or_insert((why, wait_secs));
    }
}

/// The token services besides the upstream's own origin that may receive the rule's
/// credential: the documented ones of its host ([`ptc_core::oci::known_token_hosts`]) for a
/// kind this version knows; none for a kind it does not know (checked as a generic registry:
/// the credential goes to the rule's own upstream origin only, whatever realm it names).
fn token_hosts(rule: &PtcRule) -> &'static [&'static str] {
    if rule.kind.is_known() {
        ptc_core::oci::known_token_hosts(&rule.upstream_url)
    } else {
        &[]
    }
}

fn parse_credentials(value: &str) -> Option<Credentials> {
    let credential = UpstreamCredential::parse(value).ok()?;
    Some(Credentials::Basic {
        username: credential.username,
        password: credential.access_token,
    })
}

/// Run the job over the payload's images plus the settings' watch list and discovery.
pub async fn run(
    deps: &Deps<'_>,
    options: &Options,
    trigger: &str,
    payload_images: Vec<String>,
    now: OffsetDateTime,
) -> PrewarmReport {
    let started = Instant::now();
    let (mut report, totals_known, save) =
        warm_all(deps, options, trigger, payload_images, now).await;
    report.duration_ms = started.elapsed().as_millis() as u64;
    // Every path publishes, early returns included: RunErrors pages for a run that could
    // not do its work. Before the state is saved: the heartbeat and the counts matter more
    // than what a next run may skip.
    if options.publish_metrics && !options.dry_run {
        publish(deps, options, &mut report, totals_known).await;
    }
    if let Some(save) = save {
        save.run(options, &mut report).await;
    }
    report
}

/// The state to save once the run has published: what it remembers, where, and whether
/// what it did not use may be forgotten.
pub(crate) struct PendingSave<'a> {
    memory: Memory,
    store: Store<'a>,
    forget: bool,
}

/// The longest a Lambda run waits for its state to be written (`PutObject` of at most 8 MiB)
/// after it has published: within the half of the stop margin left after `finish_by`.
const SAVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl PendingSave<'_> {
    pub(crate) async fn run(self, options: &Options, report: &mut PrewarmReport) {
        let save = self.memory.save(&self.store, self.forget);
        let saved = match options.finish_by {
            Some(_) => tokio::time::timeout(SAVE_TIMEOUT, save)
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "the prewarm state was not saved within {} s",
                        SAVE_TIMEOUT.as_secs()
                    ))
                }),
            None => save.await,
        };
        match saved {
            Ok((_, warning)) => report.warnings.extend(warning),
            Err(err) => {
                tracing::warn!(error = %err, "prewarm state not saved");
                report.warnings.push(err);
            }
        }
    }
}

/// The run without publishing; and whether its totals mean something (the rules could be
/// listed and every source of the watch list read, so every entry has an outcome).
async fn warm_all<'a>(
    deps: &Deps<'a>,
    options: &Options,
    trigger: &str,
    payload_images: Vec<String>,
    now: OffsetDateTime,
) -> (PrewarmReport, bool, Option<PendingSave<'a>>) {
    let mut report = PrewarmReport::new(trigger, options.mode);
    let gathered = match gather(deps, options, payload_images, now).await {
        Ok(gathered) => gathered,
        Err(err) => {
            report.errors.push(err);
            return (report, false, None);
        }
    };
    report.errors.extend(gathered.errors);
    // Totals of a run whose list could not be read whole (the long list, discovery) would
    // be partial: the run pages through RunErrors instead.
    let complete = report.errors.is_empty();
    let save = warm_entries(
        deps,
        options,
        &gathered.rules,
        gathered.entries,
        gathered.listings,
        &mut report,
        complete,
        now,
    )
    .await;
    (report, complete, save)
}

/// A run's watch list, read: the rules, the merged entries, discovery's listings of the
/// repositories it read, and what could not be read (run-level errors).
pub struct Gathered {
    /// The registry's rules (`DescribePullThroughCacheRules`).
    pub rules: RuleSet,
    /// The merged entries, in list order (payload, settings, long list, discovery).
    pub entries: Vec<Entry>,
    /// Repository → its images, as discovery listed them (the survey reuses them).
    pub listings: HashMap<String, Vec<ImageDetail>>,
    /// Discovery's repositories that could not be read, a long list that could not be read.
    pub errors: Vec<String>,
}

/// Read the watch list: the rules, then every source (the payload's images, the settings'
/// list, the long list, discovery), merged. `Err` when the rules cannot be listed (nothing
/// can be routed); a source that cannot be read is one of [`Gathered::errors`] and the others
/// go on.
pub async fn gather(
    deps: &Deps<'_>,
    options: &Options,
    payload_images: Vec<String>,
    now: OffsetDateTime,
) -> Result<Gathered, String> {
    let rules = match deps.ecr.describe_rules().await {
        Ok(rules) => RuleSet::new(rules),
        Err(err) => return Err(format!("cannot list the pull-through cache rules: {err}")),
    };
    let discovery = sources::discover(
        deps.ecr,
        &rules,
        options.discovery_days,
        now,
        options.concurrency,
    )
    .await;
    let mut errors = discovery.errors;
    let long_list = match &options.watch_list_source {
        Some(source) => match ptc_core::watchlist::load(deps.objects, source).await {
            Ok(list) => list,
            Err(err) => {
                tracing::error!(error = %err, "watch list source unreadable; the other sources go on");
                errors.push(err);
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let entries = sources::merge([
        (Origin::Payload, payload_images),
        (Origin::Settings, options.settings_watch_list.clone()),
        (Origin::Source, long_list),
        (Origin::Discovery, discovery.references),
    ]);
    Ok(Gathered {
        rules,
        entries,
        listings: discovery.listings,
        errors,
    })
}

/// The rules and a payload's entries alone (no other source): what a queued on-demand run
/// plans. `Err` when the rules cannot be listed.
pub async fn gather_payload(
    deps: &Deps<'_>,
    payload_images: Vec<String>,
) -> Result<Gathered, String> {
    let rules = deps
        .ecr
        .describe_rules()
        .await
        .map_err(|err| format!("cannot list the pull-through cache rules: {err}"))?;
    Ok(Gathered {
        rules: RuleSet::new(rules),
        entries: sources::merge([(Origin::Payload, payload_images)]),
        listings: HashMap::new(),
        errors: Vec::new(),
    })
}

/// Warm given entries (a worker's messages): the rules, then the entries as a run warms its
/// list, without reading any source. The report is not published; the state to save is
/// returned (it forgets nothing: the entries are a part of the list). A run that cannot list
/// the rules has that error and no image.
pub(crate) async fn warm_given<'a>(
    deps: &Deps<'a>,
    options: &Options,
    trigger: &str,
    entries: Vec<Entry>,
    now: OffsetDateTime,
) -> (PrewarmReport, Option<PendingSave<'a>>) {
    let mut report = PrewarmReport::new(trigger, options.mode);
    let rules = match deps.ecr.describe_rules().await {
        Ok(rules) => RuleSet::new(rules),
        Err(err) => {
            report
                .errors
                .push(format!("cannot list the pull-through cache rules: {err}"));
            return (report, None);
        }
    };
    let started = Instant::now();
    let save = warm_entries(
        deps,
        options,
        &rules,
        entries,
        HashMap::new(),
        &mut report,
        false,
        now,
    )
    .await;
    report.duration_ms = started.elapsed().as_millis() as u64;
    (report, save)
}

/// Warm the entries into `report` (images, summary, traffic, warnings); the state to save
/// (`forget`: only for a run over the whole list, `complete`, every repository surveyed).
#[allow(clippy::too_many_arguments)]
async fn warm_entries<'a>(
    deps: &Deps<'a>,
    options: &Options,
    rules: &RuleSet,
    entries: Vec<Entry>,
    listings: HashMap<String, Vec<ImageDetail>>,
    report: &mut PrewarmReport,
    complete: bool,
    now: OffsetDateTime,
) -> Option<PendingSave<'a>> {
    let upstreams = Upstreams {
        deps,
        floor: options.ratelimit_floor,
        clients: tokio::sync::Mutex::new(HashMap::new()),
        exhausted: Mutex::new(HashMap::new()),
    };
    // What the cache holds, before any pull: ECR's API, batched by repository, and what
    // earlier runs remember of the manifests (see `memory` and `survey`).
    let store = Store::at(options.state.as_ref(), deps.objects);
    let (memory, warning) = if options.dry_run {
        (Memory::default(), None)
    } else {
        Memory::load(&store).await
    };
    report.warnings.extend(warning);
    let survey = if options.dry_run {
        Survey::default()
    } else {
        Survey::read(
            deps.ecr,
            &memory,
            wants(rules, &entries),
            listings,
            options.mode,
            &options.platforms,
            options.concurrency,
        )
        .await
    };
    let unsurveyed = survey.unreadable().len();
    report
        .warnings
        .extend(survey.unreadable().into_iter().map(|(repo, why)| {
            format!("cannot read what the cache holds in {repo} ({why}): its images are pulled")
        }));
    let warmth = Warmth {
        survey,
        memory: &memory,
        fetches: Mutex::new(HashMap::new()),
        traffic: Counters::default(),
        unchecked: Mutex::new(BTreeMap::new()),
    };
    let run_start = now;
    report.images = futures::stream::iter(entries)
        .map(|entry| {
            let (upstreams, warmth) = (&upstreams, &warmth);
            async move {
                let result = warm(deps, options, rules, upstreams, warmth, entry, run_start).await;
                if let Some(progress) = &options.progress {
                    progress(&result);
                }
                result
            }
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    report.summary = summarise(&report.images);
    report.traffic = warmth.traffic.snapshot();
    report.warnings.extend(
        std::mem::take(&mut *warmth.unchecked.lock().unwrap())
            .into_iter()
            .map(|(repo, why)| {
                format!("cannot check which blobs the cache holds in {repo} ({why}): every blob of its pulled images was fetched")
            }),
    );
    drop(warmth);
    // A run that could not read every source, or what the cache holds in every repository,
    // keeps what it did not see; so does an operator's run (`ptc prewarm`: its list may not
    // be the Lambda's).
    (!options.dry_run).then_some(PendingSave {
        memory,
        store,
        forget: options.forget_unused && complete && unsurveyed == 0,
    })
}

/// The watched tags of each repository, for the survey (entries that do not route, or have
/// no tag, are left to the run to report).
fn wants(rules: &RuleSet, entries: &[Entry]) -> BTreeMap<String, Vec<Want>> {
    let mut out: BTreeMap<String, Vec<Want>> = BTreeMap::new();
    for entry in entries {
        let Ok(reference) = &entry.reference else {
            continue;
        };
        let Ok(cached) = rules.route(reference) else {
            continue;
        };
        out.entry(cached.repository).or_default().push(Want {
            tag: cached.tag,
            pin: cached.digest,
        });
    }
    out
}

/// What the run's images share: the survey of the cache, the memory of manifests, the blob
/// downloads in flight or done (each blob of a repository is fetched at most once a run),
/// and the traffic counts.
struct Warmth<'a> {
    survey: Survey,
    memory: &'a Memory,
    fetches: Mutex<HashMap<(String, String), Arc<BlobFetch>>>,
    traffic: Counters,
    /// Repository → why its blobs could not be checked during a pull (they were fetched).
    unchecked: Mutex<BTreeMap<String, String>>,
}

/// One blob download of the run, shared by every image that needs it.
type BlobFetch = tokio::sync::OnceCell<Result<(), PullError>>;

/// The run's requests, counted as they are made.
#[derive(Default)]
struct Counters {
    upstream_heads: AtomicU64,
    tag_pages: AtomicU64,
    manifest_gets: AtomicU64,
    blob_gets: AtomicU64,
    blob_bytes: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> Traffic {
        Traffic {
            upstream_heads: self.upstream_heads.load(Ordering::Relaxed),
            upstream_tag_pages: self.tag_pages.load(Ordering::Relaxed),
            cache_manifest_gets: self.manifest_gets.load(Ordering::Relaxed),
            cache_blob_gets: self.blob_gets.load(Ordering::Relaxed),
            cache_blob_bytes: self.blob_bytes.load(Ordering::Relaxed),
        }
    }
}

impl Warmth<'_> {
    /// GET a blob through the cache, once per repository per run: a second image that needs
    /// it waits for the first download and shares its result.
    async fn fetch_blob(
        &self,
        cache: &RegistryClient,
        repository: &str,
        blob: &Descriptor,
    ) -> Result<(), PullError> {
        let cell = self
            .fetches
            .lock()
            .unwrap()
            .entry((repository.to_owned(), blob.digest.to_string()))
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            self.traffic.blob_gets.fetch_add(1, Ordering::Relaxed);
            match cache.get_blob(repository, blob).await {
                Ok(bytes) => {
                    self.traffic.blob_bytes.fetch_add(bytes, Ordering::Relaxed);
                    Ok(())
                }
                Err(e) => Err(pull_error(&format!("layer {}", blob.digest), e)),
            }
        })
        .await
        .clone()
    }

    async fn get_manifest(
        &self,
        cache: &RegistryClient,
        repository: &str,
        reference: &str,
    ) -> Result<Manifest, RegistryError> {
        self.traffic.manifest_gets.fetch_add(1, Ordering::Relaxed);
        cache.get_manifest(repository, reference).await
    }
}

fn result(entry: &Entry, started: Instant) -> ImageResult {
    ImageResult {
        reference: entry.input.clone(),
        origin: entry.origin,
        prefix: None,
        uri: None,
        outcome: Outcome::Failed,
        digest: None,
        upstream_digest: None,
        platforms: Vec::new(),
        stale_age_hours: None,
        duration_ms: 0,
        retry_after_secs: None,
        cut: false,
        reason: None,
    }
    .timed(started)
}

/// An image's warming ends early: its outcome, the reason, and for an image the upstream
/// deferred, the wait it asked for (seconds).
struct Stop(Outcome, Option<String>, Option<u64>);

impl Stop {
    fn new(outcome: Outcome, reason: impl Into<Option<String>>) -> Self {
        Self(outcome, reason.into(), None)
    }

    fn waiting(mut self, wait_secs: u64) -> Self {
        self.2 = Some(wait_secs);
        self
    }
}

/// One step of warming an image: its result, or where the image's warming ends.
type Step<T> = Result<T, Stop>;

async fn warm(
    deps: &Deps<'_>,
    options: &Options,
    rules: &RuleSet,
    upstreams: &Upstreams<'_>,
    warmth: &Warmth<'_>,
    entry: Entry,
    run_start: OffsetDateTime,
) -> ImageResult {
    let started = Instant::now();
    let mut out = result(&entry, started);
    let steps = warm_steps(
        deps, options, rules, upstreams, warmth, &entry, run_start, &mut out,
    );
    // Work in flight ends by `finish_by`: an image still pulling then is left for the next
    // run, and the run still reports, saves its state and publishes.
    let done = match options.finish_by {
        Some(finish_by) => tokio::time::timeout_at(finish_by.into(), steps)
            .await
            .unwrap_or_else(|_| {
                out.cut = true;
                Err(Stop::new(
                    Outcome::Deferred,
                    "the invocation's deadline came before the image was done: left for the next run"
                        .to_owned(),
                ))
            }),
        None => steps.await,
    };
    let (outcome, reason) = match done {
        Ok(done) => done,
        Err(Stop(outcome, reason, wait)) => {
            out.retry_after_secs = wait;
            (outcome, reason)
        }
    };
    out.with(outcome, reason).timed(started)
}

/// The steps of [`warm`], in order: route, check the run may pull, the upstream's digest and
/// budget; then either what the cache already holds (complete and at the upstream's digest:
/// no request to the registry endpoint), or the pull through the cache, ECR's confirmation,
/// fresh or stale.
#[allow(clippy::too_many_arguments)]
async fn warm_steps(
    deps: &Deps<'_>,
    options: &Options,
    rules: &RuleSet,
    upstreams: &Upstreams<'_>,
    warmth: &Warmth<'_>,
    entry: &Entry,
    run_start: OffsetDateTime,
    out: &mut ImageResult,
) -> Step<(Outcome, Option<String>)> {
    let (reference, mut cached, rule) = route(deps, rules, entry, out)?;
    // A digest-only entry the cache holds complete needs no request at all, whatever the
    // upstream's budget.
    if cached.tag.is_none()
        && !options.dry_run
        && let Some(done) = digest_from_cache(options, warmth, &cached, out)
    {
        return Ok(done);
    }
    let tag = match may_pull(options, upstreams, &cached, &rule)? {
        Some(tag) => tag,
        None => resolve_tag(upstreams, warmth, &rule, &reference, &mut cached, out).await?,
    };
    let resolved = reference
        .tag
        .is_none()
        .then(|| format!("warmed by tag {tag}, which points at the entry's digest upstream"));
    warmth
        .traffic
        .upstream_heads
        .fetch_add(1, Ordering::Relaxed);
    let Checked { note, below_floor } =
        check_upstream(upstreams, &rule, &reference, &tag, out).await?;
    if let Some(why) = below_floor {
        // No pull from this upstream now; an image the cache holds complete at the upstream's
        // digest needs none.
        return match from_cache(deps, options, warmth, &cached, &tag, out, false).await? {
            Some((Outcome::AlreadyFresh, fresh_note, missing_platforms)) => Ok((
                Outcome::AlreadyFresh,
                join_notes([
                    resolved,
                    fresh_note,
                    not_published(&missing_platforms),
                    rule.unknown_kind_note(),
                ]),
            )),
            _ => Err(Stop::new(Outcome::Deferred, why).waiting(
                upstreams
                    .exhausted(&rule.upstream_url)
                    .map_or(DEFAULT_WAIT_SECS, |(_, wait)| wait),
            )),
        };
    }
    let (outcome, note, missing_platforms) =
        match from_cache(deps, options, warmth, &cached, &tag, out, true).await? {
            Some(done) => done,
            None => {
                let (pulled, pin_note) =
                    pull_through(deps, options, warmth, &cached, &tag, out).await?;
                let tagged = verify_in_ecr(deps, &cached, &tag, &pulled).await?;
                for (digest, known) in &pulled.learned {
                    warmth.memory.learn(digest.clone(), known.clone());
                }
                let (outcome, stale_note) = freshness(out, &tagged, &pulled, run_start);
                (
                    outcome,
                    join_notes([stale_note, pin_note, note]),
                    pulled.missing_platforms,
                )
            }
        };
    // A rule of a kind this version does not know was warmed as a generic registry: said.
    Ok((
        outcome,
        join_notes([
            resolved,
            note,
            not_published(&missing_platforms),
            rule.unknown_kind_note(),
        ]),
    ))
}

/// An index not published for a wanted platform is what a node of that platform would meet
/// too: a note, as health-metrics says it, not a failure of the image.
fn not_published(missing_platforms: &[String]) -> Option<String> {
    (!missing_platforms.is_empty()).then(|| {
        format!(
            "the image is not published for {}",
            missing_platforms.join(", ")
        )
    })
}

/// The notes that are there, joined with `; `.
fn join_notes(notes: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    let notes: Vec<String> = notes.into_iter().flatten().collect();
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// The entry's reference, where the cache serves it, and its rule.
fn route(
    deps: &Deps<'_>,
    rules: &RuleSet,
    entry: &Entry,
    out: &mut ImageResult,
) -> Step<(ImageReference, CachedImage, PtcRule)> {
    let reference = entry
        .reference
        .clone()
        .map_err(|err| Stop::new(Outcome::Failed, err.to_string()))?;
    let cached = rules
        .route(&reference)
        .map_err(|err| Stop::new(Outcome::Failed, err.to_string()))?;
    let rule = rules
        .get(cached.prefix.as_str())
        .expect("routed to an existing rule")
        .clone();
    out.prefix = Some(cached.prefix.to_string());
    out.uri = Some(cached.uri(deps.registry_host));
    Ok((reference, cached, rule))
}

/// The tag to pull (`None` for a digest-only entry, resolved next), unless this run must not
/// pull it: a dry run, the deadline near, or its upstream's budget spent.
fn may_pull(
    options: &Options,
    upstreams: &Upstreams<'_>,
    cached: &CachedImage,
    rule: &PtcRule,
) -> Step<Option<String>> {
    if options.dry_run {
        return Err(Stop::new(Outcome::Planned, None));
    }
    if options.stop_at.is_some_and(|stop| Instant::now() >= stop) {
        return Err(Stop::new(
            Outcome::Deferred,
            "the run's deadline is near: left for the next run".to_owned(),
        ));
    }
    if let Some((why, wait)) = upstreams.exhausted(&rule.upstream_url) {
        return Err(Stop::new(Outcome::Deferred, why).waiting(wait));
    }
    Ok(cached.tag.clone())
}

/// A digest-only entry the cache holds complete: already fresh, with no request to the upstream
/// or the registry endpoint (a digest's content never changes). `None` otherwise, and for a
/// copy that lacks blobs (warmed by its tag, which fetches only those).
fn digest_from_cache(
    options: &Options,
    warmth: &Warmth<'_>,
    cached: &CachedImage,
    out: &mut ImageResult,
) -> Option<(Outcome, Option<String>)> {
    let digest = cached.digest.as_ref()?;
    let Cached::Complete(found) = warmth.survey.cached_digest(
        warmth.memory,
        &cached.repository,
        digest,
        options.mode,
        &options.platforms,
    ) else {
        return None;
    };
    out.digest = Some(found.digest.to_string());
    out.platforms = found.platforms.iter().map(|(p, _)| p.clone()).collect();
    Some((
        Outcome::AlreadyFresh,
        not_published(&found.missing_platforms),
    ))
}

/// A digest-only entry (`image@sha256:...`, as Helm charts pin): ECR does not cache a first
/// pull by digest, so the tag that points at the digest upstream is found
/// ([`crate::resolve::tag_for_digest`]: the tags list and at most 50 HEADs, neither a pull on
/// Docker Hub) and the image is warmed by that tag, the digest pinned. Not found within the
/// bounds: the entry fails with why; a rate-limited search defers it.
async fn resolve_tag(
    upstreams: &Upstreams<'_>,
    warmth: &Warmth<'_>,
    rule: &PtcRule,
    reference: &ImageReference,
    cached: &mut CachedImage,
    out: &mut ImageResult,
) -> Step<String> {
    let Some(digest) = cached.digest.clone() else {
        return Err(Stop::new(
            Outcome::Failed,
            "the entry has neither a tag nor a digest".to_owned(),
        ));
    };
    let client = upstreams.client(rule).await;
    let search = crate::resolve::tag_for_digest(
        &client,
        &reference.repository,
        &digest,
        crate::resolve::ResolveLimits::default(),
    )
    .await
    .map_err(|err| match upstream_deferral(&rule.upstream_url, &err) {
        Some(why) => {
            let wait = wait_secs(err.retry_after());
            upstreams.exhaust(&rule.upstream_url, why.clone(), wait);
            Stop::new(Outcome::Deferred, why).waiting(wait)
        }
        None => Stop::new(
            Outcome::Failed,
            format!(
                "a digest-only entry is warmed by a tag that points at it (ECR does not cache a first pull by digest), and the upstream's tags could not be read: {err}"
            ),
        ),
    })?;
    warmth
        .traffic
        .upstream_heads
        .fetch_add(search.heads as u64, Ordering::Relaxed);
    warmth
        .traffic
        .tag_pages
        .fetch_add(search.pages as u64, Ordering::Relaxed);
    match search.tag {
        Some(tag) => {
            cached.tag = Some(tag.clone());
            out.uri = Some(format!(
                "{}:{tag}@{digest}",
                out.uri
                    .as_deref()
                    .and_then(|u| u.split_once('@').map(|(base, _)| base))
                    .unwrap_or_default()
            ));
            Ok(tag)
        }
        None => Err(Stop::new(
            Outcome::Failed,
            search.not_found_reason(&digest).unwrap_or_else(|| {
                format!("no upstream tag points at {digest}: add the entry's tag")
            }),
        )),
    }
}

/// Step 1: The upstream's digest and budget, with a HEAD (not a pull on Docker Hub). A budget
/// below the floor, or a rate-limited answer, defers this image and the rest of its
/// upstream; any other failure leaves freshness unknown (the note says so).
async fn check_upstream(
    upstreams: &Upstreams<'_>,
    rule: &PtcRule,
    reference: &ImageReference,
    tag: &str,
    out: &mut ImageResult,
) -> Step<Checked> {
    let upstream_client = upstreams.client(rule).await;
    match upstream_client
        .head_manifest(&reference.repository, tag)
        .await
    {
        Ok(head) => {
            out.upstream_digest = head.digest.map(|d| d.to_string());
            let no_digest = out.upstream_digest.is_none().then(|| {
                "the upstream's HEAD gave no Docker-Content-Digest: freshness unknown".to_owned()
            });
            if let Some(remaining) = head.rate_limit.remaining
                && remaining < upstreams.floor
            {
                let why = format!(
                    "{} rate-limit budget is {remaining}, below the floor of {}: left for the next run",
                    rule.upstream_url, upstreams.floor
                );
                upstreams.exhaust(
                    &rule.upstream_url,
                    why.clone(),
                    budget_wait_secs(&head.rate_limit, upstreams.floor),
                );
                return Ok(Checked {
                    note: no_digest,
                    below_floor: Some(why),
                });
            }
            Ok(Checked {
                note: no_digest,
                below_floor: None,
            })
        }
        Err(err) => match upstream_deferral(&rule.upstream_url, &err) {
            Some(why) => {
                let wait = wait_secs(err.retry_after());
                upstreams.exhaust(&rule.upstream_url, why.clone(), wait);
                Err(Stop::new(Outcome::Deferred, why).waiting(wait))
            }
            None => Ok(Checked {
                note: Some(format!("upstream not checked, freshness unknown: {err}")),
                below_floor: None,
            }),
        },
    }
}

/// What the upstream's HEAD said, for the steps after it.
struct Checked {
    /// Freshness unknown, and why.
    note: Option<String>,
    /// The upstream's budget is below the floor (why): nothing more is pulled from it this
    /// run; this image only if the cache already holds it complete.
    below_floor: Option<String>,
}

/// Why an upstream that answered `err` to the HEAD is left for the next run, with the wait it
/// asked for: rate limiting (429), or unavailable (503) for longer than the client waits
/// (RFC 9110 10.2.3). `None` for any other failure (the image goes on, freshness unknown).
/// The wait before an upstream that deferred work is tried again when it did not say
/// (`Retry-After` absent): 15 minutes, SQS's longest delay.
pub const DEFAULT_WAIT_SECS: u64 = 900;

/// The wait an upstream asked for (`Retry-After`), at least 1 s; [`DEFAULT_WAIT_SECS`] when it
/// gave none.
fn wait_secs(retry_after: Option<std::time::Duration>) -> u64 {
    retry_after.map_or(DEFAULT_WAIT_SECS, |d| d.as_secs().max(1))
}

/// How long until an upstream's budget is back at the floor, for a budget below it: the
/// window spreads `limit` pulls, so each pull comes back after `window / limit` (a rolling
/// window, as Docker Hub's: 100 pulls per 6 hours is one every 216 s); at least 60 s, at most
/// the window. [`DEFAULT_WAIT_SECS`] when the headers do not give the window and the limit.
fn budget_wait_secs(rate: &ptc_core::oci::RateLimit, floor: u64) -> u64 {
    match (rate.window_secs, rate.limit, rate.remaining) {
        (Some(window), Some(limit), Some(remaining)) if limit > 0 && window > 0 => {
            let missing = floor.saturating_sub(remaining).max(1);
            (window.saturating_mul(missing) / limit).clamp(60, window.max(60))
        }
        _ => DEFAULT_WAIT_SECS,
    }
}

fn upstream_deferral(upstream: &str, err: &RegistryError) -> Option<String> {
    let what = match err {
        RegistryError::RateLimited { .. } => "is rate limiting",
        RegistryError::Unavailable { .. } if err.asks_to_wait() => "is unavailable (HTTP 503)",
        _ => return None,
    };
    let wait = err
        .retry_after()
        .map(|d| format!(" (retry after {} s)", d.as_secs()))
        .unwrap_or_default();
    Some(format!("{upstream} {what}{wait}: left for the next run"))
}

/// Step 2a: What the cache already holds, from the survey: an image whose cached tag is at the
/// upstream's digest, with every wanted platform's manifest (and, in `layers` mode, every
/// blob) there, is already fresh with no request to the registry endpoint; one that lacks
/// only blobs gets those blobs, nothing else. `None`: the image is pulled (not cached, stale,
/// incomplete, not remembered, a pin the cache lacks, or the upstream's digest unknown).
async fn from_cache(
    deps: &Deps<'_>,
    options: &Options,
    warmth: &Warmth<'_>,
    cached: &CachedImage,
    tag: &str,
    out: &mut ImageResult,
    may_fetch: bool,
) -> Step<Option<(Outcome, Option<String>, Vec<String>)>> {
    let Some(upstream) = out.upstream_digest.clone() else {
        return Ok(None);
    };
    let survey = &warmth.survey;
    let (found, mut missing) = match survey.cached(
        warmth.memory,
        &cached.repository,
        tag,
        options.mode,
        &options.platforms,
    ) {
        Cached::Complete(found) => (found, Vec::new()),
        Cached::MissingBlobs(found, missing) => (found, missing),
        Cached::Unknown => return Ok(None),
    };
    if found.digest.as_str() != upstream {
        return Ok(None);
    }
    // A pin the tag no longer points to is what a node of this entry pulls: it must be held
    // as completely as the tag (its platform manifests and blobs too; a lifecycle rule on
    // untagged images may have taken them).
    let pin_note = match &cached.digest {
        Some(pin) if *pin != found.digest => {
            match survey.cached_digest(
                warmth.memory,
                &cached.repository,
                pin,
                options.mode,
                &options.platforms,
            ) {
                Cached::Complete(_) => {}
                Cached::MissingBlobs(_, lacking) => missing.extend(lacking),
                Cached::Unknown => return Ok(None),
            }
            Some(format!(
                "tag {tag} now points to {}; the pinned {pin} is cached too",
                found.digest
            ))
        }
        _ => None,
    };
    missing.sort();
    missing.dedup();
    if !missing.is_empty() && !may_fetch {
        return Ok(None);
    }
    out.digest = Some(found.digest.to_string());
    out.platforms = found.platforms.iter().map(|(p, _)| p.clone()).collect();
    if missing.is_empty() {
        return Ok(Some((
            Outcome::AlreadyFresh,
            pin_note,
            found.missing_platforms,
        )));
    }
    for blob in &missing {
        let descriptor = descriptor_of(blob);
        warmth
            .fetch_blob(deps.cache, &cached.repository, &descriptor)
            .await
            .map_err(PullError::stop)?;
    }
    // Blobs a manifests-mode run never fetched, or that the cache lost since.
    let fetched = format!(
        "cached, but {} blob{} the cache did not hold {} fetched",
        missing.len(),
        if missing.len() == 1 { "" } else { "s" },
        if missing.len() == 1 { "was" } else { "were" }
    );
    Ok(Some((
        Outcome::Warmed,
        join_notes([pin_note, Some(fetched)]),
        found.missing_platforms,
    )))
}

fn descriptor_of(blob: &Blob) -> Descriptor {
    Descriptor {
        media_type: String::new(),
        digest: blob.digest.clone(),
        size: blob.size,
        platform: None,
    }
}

/// Step 2: The pull through the cache, and a pinned digest that the tag no longer points to
/// (which must still be available); the note says when the tag moved.
async fn pull_through(
    deps: &Deps<'_>,
    options: &Options,
    warmth: &Warmth<'_>,
    cached: &CachedImage,
    tag: &str,
    out: &mut ImageResult,
) -> Step<(Pulled, Option<String>)> {
    let mut pulled = pull(deps, warmth, options, &cached.repository, tag)
        .await
        .map_err(PullError::stop)?;
    out.digest = Some(pulled.digest.to_string());
    out.platforms = pulled.platforms.iter().map(|(p, _)| p.clone()).collect();
    let mut note = None;
    // The pin is what a node of this entry pulls (by digest): pulled as a runtime pulls it,
    // each wanted platform's manifest and, in `layers` mode, the blobs the cache lacks; then
    // verified with the tag, and remembered.
    if let Some(pin) = &cached.digest
        && *pin != pulled.digest
    {
        match pull(deps, warmth, options, &cached.repository, pin.as_str()).await {
            Ok(pinned) => {
                note = Some(format!(
                    "tag {tag} now points to {}; the pinned {pin} is cached too",
                    pulled.digest
                ));
                pulled.also.push(pinned.digest.to_string());
                pulled
                    .also
                    .extend(pinned.platforms.iter().map(|(_, d)| d.to_string()));
                pulled.learned.extend(pinned.learned);
            }
            Err(PullError::Deferred(why, wait)) => {
                return Err(Stop::new(Outcome::Deferred, why).waiting(wait));
            }
            Err(PullError::Failed(why)) => {
                return Err(Stop::new(
                    Outcome::Failed,
                    format!("pinned digest {pin} is not available: {why}"),
                ));
            }
        }
    }
    Ok((pulled, note))
}

/// Step 3: ECR must show what was pulled: the tag and each platform's manifest, asked for by id
/// (a repository may hold thousands of images), active (see [`not_pullable`]). The tagged
/// image's detail.
async fn verify_in_ecr(
    deps: &Deps<'_>,
    cached: &CachedImage,
    tag: &str,
    pulled: &Pulled,
) -> Step<ImageDetail> {
    let mut children: Vec<String> = pulled
        .platforms
        .iter()
        .map(|(_, d)| d.to_string())
        .chain(pulled.also.iter().cloned())
        .filter(|d| *d != pulled.digest.as_str())
        .collect();
    children.sort();
    children.dedup();
    let images = match deps
        .ecr
        .describe_image_ids(&cached.repository, &[tag.to_owned()], &children)
        .await
    {
        Ok(images) => images,
        Err(err) if err.is_not_found() => {
            return Err(Stop::new(
                Outcome::Failed,
                format!("ECR does not show what was pulled: {err}"),
            ));
        }
        Err(err) => {
            return Err(Stop::new(
                Outcome::Failed,
                format!("cannot verify in ECR: {err}"),
            ));
        }
    };
    if let Some(why) = not_pullable(&images) {
        return Err(Stop::new(Outcome::Failed, why));
    }
    let Some(tagged) = images.into_iter().find(|i| i.tags.iter().any(|t| t == tag)) else {
        return Err(Stop::new(
            Outcome::Failed,
            format!("ECR does not show tag {tag} after the pull"),
        ));
    };
    if tagged.digest != pulled.digest.as_str() {
        return Err(Stop::new(
            Outcome::Failed,
            format!(
                "ECR has tag {tag} at {}, the pull returned {}",
                tagged.digest, pulled.digest
            ),
        ));
    }
    Ok(tagged)
}

/// Why ECR's answer does not show a warm image: one of the images is not active (`ARCHIVED`,
/// `ACTIVATING`, or a status this version does not know). An archived image is held but
/// cannot be pulled ("Requests to pull the archived image will fail with a 404 error",
/// <https://docs.aws.amazon.com/AmazonECR/latest/userguide/archive-image.html>), so it is never
/// warm, whatever the pull through the cache answered. `None` when every image is active.
fn not_pullable(images: &[ImageDetail]) -> Option<String> {
    let archived: Vec<String> = images
        .iter()
        .filter(|i| !i.status.is_pullable())
        .map(|i| format!("{} ({})", i.digest, i.status))
        .collect();
    (!archived.is_empty()).then(|| {
        format!(
            "ECR holds {} in the archive storage class: an archived image cannot be pulled until it is restored",
            archived.join(", ")
        )
    })
}

/// Step 4: Fresh or stale: stale when the upstream's digest differs from what the cache gave
/// (ECR refreshes a cached tag about once a day on pull); already fresh when ECR had it
/// before this run started (2 s of slack: some answers carry whole seconds only).
fn freshness(
    out: &mut ImageResult,
    tagged: &ImageDetail,
    pulled: &Pulled,
    run_start: OffsetDateTime,
) -> (Outcome, Option<String>) {
    let cached_before = tagged
        .pushed_at
        // (A difference of two dates cannot overflow; a date plus a duration can, for the
        // extreme dates an answer may carry.)
        .is_some_and(|t| run_start - t > time::Duration::seconds(2));
    match &out.upstream_digest {
        Some(up) if *up != pulled.digest.as_str() => {
            out.stale_age_hours = tagged
                .pushed_at
                .map(|t| ((OffsetDateTime::now_utc() - t).as_seconds_f64() / 36.0).round() / 100.0);
            let note = format!(
                "the upstream tag now points to {up}; ECR refreshes a cached tag about once a day on pull"
            );
            (Outcome::Stale, Some(note))
        }
        _ if cached_before => (Outcome::AlreadyFresh, None),
        _ => (Outcome::Warmed, None),
    }
}

struct Pulled {
    digest: Digest,
    /// (platform, manifest digest) of each wanted platform found; for a single-platform
    /// image, the image's own manifest.
    platforms: Vec<(String, Digest)>,
    missing_platforms: Vec<String>,
    /// What the manifests pulled list, to remember once ECR confirms the pull.
    learned: Vec<(Digest, Known)>,
    /// Other manifests ECR must show: a pin the tag left, and its platforms' manifests.
    also: Vec<String>,
}

#[derive(Clone)]
enum PullError {
    Failed(String),
    /// Deferred, and the wait asked for (seconds).
    Deferred(String, u64),
}

impl PullError {
    fn stop(self) -> Stop {
        match self {
            PullError::Deferred(why, wait) => Stop::new(Outcome::Deferred, why).waiting(wait),
            PullError::Failed(why) => Stop::new(Outcome::Failed, why),
        }
    }
}

/// What to remember of a manifest.
fn known(manifest: &Manifest) -> Known {
    match &manifest.kind {
        ManifestKind::Index(entries) => Known::Index {
            entries: entries
                .iter()
                .map(|d| IndexEntry {
                    platform: d.platform.clone(),
                    digest: d.digest.clone(),
                })
                .collect(),
        },
        ManifestKind::Image { config, layers } => {
            let mut seen = std::collections::HashSet::new();
            Known::Image {
                blobs: std::iter::once(config)
                    .chain(layers)
                    .filter(|b| seen.insert(&b.digest))
                    .map(|b| Blob {
                        digest: b.digest.clone(),
                        size: b.size,
                    })
                    .collect(),
            }
        }
    }
}

/// A rate-limited pull, or one the registry asked to retry later than the client waits (a
/// 503's Retry-After), is deferred, its wait in the reason; any other failure fails the image.
fn pull_error(what: &str, err: RegistryError) -> PullError {
    if matches!(err, RegistryError::RateLimited { .. }) || err.asks_to_wait() {
        PullError::Deferred(format!("{what}: {err}"), wait_secs(err.retry_after()))
    } else {
        PullError::Failed(format!("{what}: {err}"))
    }
}

/// What a container runtime does, for the wanted platforms; in `layers` mode, the blobs ECR
/// does not hold yet.
async fn pull(
    deps: &Deps<'_>,
    warmth: &Warmth<'_>,
    options: &Options,
    repository: &str,
    tag: &str,
) -> Result<Pulled, PullError> {
    let cache = deps.cache;
    let top = warmth
        .get_manifest(cache, repository, tag)
        .await
        .map_err(|e| pull_error("pull through the cache", e))?;
    let mut pulled = Pulled {
        digest: top.digest.clone(),
        platforms: Vec::new(),
        missing_platforms: Vec::new(),
        learned: vec![(top.digest.clone(), known(&top))],
        also: Vec::new(),
    };
    match &top.kind {
        ManifestKind::Index(_) => {
            for platform in &options.platforms {
                let Some(entry) = top.platform_entry(platform) else {
                    pulled.missing_platforms.push(platform.to_string());
                    continue;
                };
                let child = warmth
                    .get_manifest(cache, repository, entry.digest.as_str())
                    .await
                    .map_err(|e| pull_error(&format!("pull of the {platform} manifest"), e))?;
                fetch_layers(deps, warmth, options, repository, &child).await?;
                pulled
                    .platforms
                    .push((platform.to_string(), child.digest.clone()));
                pulled.learned.push((child.digest.clone(), known(&child)));
            }
        }
        ManifestKind::Image { .. } => {
            fetch_layers(deps, warmth, options, repository, &top).await?;
            pulled
                .platforms
                .push(("single-platform".to_owned(), top.digest.clone()));
        }
    }
    Ok(pulled)
}

/// The config and layers of an image that ECR does not hold yet, each fetched once a run
/// (see [`Warmth::fetch_blob`]). What ECR holds is known from the survey, else asked with one
/// `BatchCheckLayerAvailability` for the image (not when the repository was empty before the
/// run); if that cannot be asked, every blob is fetched.
async fn fetch_layers(
    deps: &Deps<'_>,
    warmth: &Warmth<'_>,
    options: &Options,
    repository: &str,
    manifest: &Manifest,
) -> Result<(), PullError> {
    if options.mode != PrewarmMode::Layers {
        return Ok(());
    }
    let ManifestKind::Image { config, layers } = &manifest.kind else {
        return Ok(());
    };
    // A blob listed twice (a hostile manifest can list one layer thousands of times) is
    // fetched once.
    let mut seen = std::collections::HashSet::new();
    let blobs: Vec<&Descriptor> = std::iter::once(config)
        .chain(layers)
        .filter(|b| seen.insert(&b.digest))
        .filter(|b| !warmth.survey.holds_blob(repository, b.digest.as_str()))
        .collect();
    let held = if blobs.is_empty() || warmth.survey.was_empty(repository) {
        Default::default()
    } else {
        let digests: Vec<String> = blobs.iter().map(|b| b.digest.to_string()).collect();
        match deps.ecr.layer_availability(repository, &digests).await {
            Ok(answer) => answer,
            Err(err) => {
                tracing::warn!(repository, error = %err, "cannot check the cached layers; fetching every one");
                warmth
                    .unchecked
                    .lock()
                    .unwrap()
                    .entry(repository.to_owned())
                    .or_insert_with(|| err.to_string());
                Default::default()
            }
        }
    };
    for blob in blobs.into_iter().filter(|b| !held.holds(b.digest.as_str())) {
        warmth.fetch_blob(deps.cache, repository, blob).await?;
    }
    Ok(())
}

async fn publish(
    deps: &Deps<'_>,
    options: &Options,
    report: &mut PrewarmReport,
    totals_known: bool,
) {
    let data = metric_data(report, totals_known);
    report.metrics_published = ptc_core::metrics::publish_run(
        deps.metrics,
        &options.namespace,
        // Every run covers the whole watch list: each is a heartbeat.
        ptc_core::metrics::Run::new(report.job).full(true),
        data,
        &mut report.errors,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(outcome: Outcome, prefix: Option<&str>) -> ImageResult {
        ImageResult {
            reference: "x".into(),
            origin: Origin::Settings,
            prefix: prefix.map(str::to_owned),
            uri: None,
            outcome,
            digest: None,
            upstream_digest: None,
            platforms: Vec::new(),
            stale_age_hours: None,
            duration_ms: 0,
            retry_after_secs: None,
            cut: false,
            reason: None,
        }
    }

    #[test]
    fn coverage_counts_cached_images_in_the_whole_list() {
        let s = summarise(&[
            image(Outcome::Warmed, Some("q")),
            image(Outcome::AlreadyFresh, Some("q")),
            image(Outcome::Stale, Some("q")),
            image(Outcome::Failed, Some("q")),
            image(Outcome::Failed, None),
        ]);
        assert_eq!(
            (s.images, s.warmed, s.already_fresh, s.stale, s.failed),
            (5, 1, 1, 1, 2)
        );
        assert_eq!(s.coverage_percent, Some(60.0));
        assert_eq!(
            summarise(&[]).coverage_percent,
            None,
            "no image is no score"
        );
    }

    #[test]
    fn a_credential_of_an_unknown_kind_goes_to_its_own_upstream_only() {
        let docker = PtcRule::new("docker-hub", "registry-1.docker.io").unwrap();
        assert_eq!(token_hosts(&docker), ["auth.docker.io"]);
        // The same host under a kind this version does not know: no token service is trusted
        // for it, the credential stays with the rule's own origin.
        let unknown = PtcRule {
            kind: ptc_core::rules::UpstreamKind::parse("docker-hub-v2"),
            ..docker
        };
        assert!(token_hosts(&unknown).is_empty());
        let future = PtcRule::new("future", "registry.future-upstream.example").unwrap();
        assert!(token_hosts(&future).is_empty());
        assert!(
            join_notes([None, Some("a".into()), future.unknown_kind_note()])
                .unwrap()
                .starts_with(
                    "a; upstream registry.future-upstream.example is not one this version knows; checked as a generic registry"
                )
        );
        assert_eq!(join_notes([None, None]), None);
    }

    /// A 503 whose Retry-After is longer than the client waits defers the upstream's images
    /// with that wait in the reason, as a 429 does (RFC 9110 10.2.3); a 503 without one is
    /// a failure of the HEAD only, and fails a pull.
    #[test]
    fn a_long_503_defers_with_its_wait_and_a_bare_503_does_not() {
        let unavailable = |secs: Option<u64>| RegistryError::Unavailable {
            url: "https://quay.io/v2/a/manifests/1".into(),
            retry_after: secs.map(std::time::Duration::from_secs),
            message: "maintenance".into(),
        };
        assert_eq!(
            upstream_deferral("quay.io", &unavailable(Some(3600))).as_deref(),
            Some("quay.io is unavailable (HTTP 503) (retry after 3600 s): left for the next run")
        );
        assert_eq!(upstream_deferral("quay.io", &unavailable(None)), None);
        assert_eq!(upstream_deferral("quay.io", &unavailable(Some(2))), None);
        let limited = RegistryError::RateLimited {
            url: "u".into(),
            retry_after: Some(std::time::Duration::from_secs(60)),
            rate_limit: Default::default(),
        };
        assert_eq!(
            upstream_deferral("registry-1.docker.io", &limited).as_deref(),
            Some("registry-1.docker.io is rate limiting (retry after 60 s): left for the next run")
        );
        match pull_error("manifest", unavailable(Some(3600))) {
            PullError::Deferred(why, wait) => {
                assert!(why.contains("retry after 3600s"), "{why}");
                assert_eq!(wait, 3600);
            }
            PullError::Failed(why) => panic!("failed: {why}"),
        }
        assert!(matches!(
            pull_error("manifest", unavailable(None)),
            PullError::Failed(_)
        ));
    }

    #[test]
    fn credentials_come_from_the_secret_json() {
        assert!(matches!(
            parse_credentials(r#"{"username":"u","accessToken":"t"}"#),
            Some(Credentials::Basic { .. })
        ));
        assert!(parse_credentials("nope").is_none());
        assert!(parse_credentials(r#"{"username":"u"}"#).is_none());
    }

    /// ECR showing the tag or a platform's manifest archived after the pull: never warm (the
    /// confirmation step fails the image, naming the archived digest).
    #[tokio::test]
    async fn an_archived_image_is_never_warm() {
        use ptc_core::ecr::ImageStatus;
        use ptc_core::fakes::{FakeEcr, FakeMetrics, FakeObjects, FakeSecrets};
        let digest = |n: u8| format!("sha256:{}", format!("{n:02x}").repeat(32));
        let detail = |n: u8, tags: &[&str], status: ImageStatus| {
            ptc_tests::fixtures::image(&digest(n), tags, status)
        };
        let rules = RuleSet::new(vec![PtcRule::new("quay", "quay.io").unwrap()]);
        let cached = rules
            .route(&ImageReference::parse("quay.io/a:v1").unwrap())
            .unwrap();
        let (secrets, objects, metrics) = (
            FakeSecrets::default(),
            FakeObjects::default(),
            FakeMetrics::default(),
        );
        let http = reqwest::Client::new();
        let cache = RegistryClient::new(
            http.clone(),
            "http://127.0.0.1:9",
            Arc::new(Credentials::Anonymous),
        );
        let endpoints = BTreeMap::new();
        // The tag (a single-platform image), then an index whose platform manifest is held.
        let pulled = |top: u8, child: Option<u8>| Pulled {
            digest: Digest::parse(&digest(top)).unwrap(),
            platforms: child
                .map(|c| ("linux/amd64".to_owned(), Digest::parse(&digest(c)).unwrap()))
                .into_iter()
                .collect(),
            missing_platforms: Vec::new(),
            learned: Vec::new(),
            also: Vec::new(),
        };
        for (images, child, archived) in [
            (vec![detail(1, &["v1"], ImageStatus::Active)], None, None),
            (
                vec![detail(1, &["v1"], ImageStatus::Archived)],
                None,
                Some(1),
            ),
            (
                vec![detail(1, &["v1"], ImageStatus::Activating)],
                None,
                Some(1),
            ),
            (
                vec![
                    detail(1, &["v1"], ImageStatus::Active),
                    detail(2, &[], ImageStatus::Archived),
                ],
                Some(2),
                Some(2),
            ),
        ] {
            let ecr = FakeEcr::default();
            ecr.state
                .lock()
                .unwrap()
                .images
                .insert("quay/a".into(), images);
            let deps = Deps {
                ecr: &ecr,
                secrets: &secrets,
                objects: &objects,
                metrics: &metrics,
                cache: &cache,
                registry_host: "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                http: &http,
                upstream_endpoints: &endpoints,
            };
            let verified = verify_in_ecr(&deps, &cached, "v1", &pulled(1, child)).await;
            match archived {
                None => assert_eq!(verified.ok().map(|t| t.digest), Some(digest(1))),
                Some(n) => {
                    let Err(Stop(outcome, reason, _)) = verified else {
                        panic!("an archived image was confirmed warm");
                    };
                    let reason = reason.unwrap_or_default();
                    assert_eq!(outcome, Outcome::Failed, "{reason}");
                    assert!(
                        reason.contains(&digest(n)) && reason.contains("cannot be pulled"),
                        "{reason}"
                    );
                }
            }
        }
    }
}
