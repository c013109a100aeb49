//! Every alarm of the template fires from what the code publishes, and only then.
//!
//! Each test runs a job on the local stack under the fault its alarm is for (the job's own
//! code, through the SDK adapters, as the Lambda does), then puts that alarm, as the
//! template defines it (resolved for the test's namespace), into the stack's CloudWatch and
//! reads its state back: ALARM. A healthy run of every job leaves every alarm OK. A metric
//! or dimension renamed in the code, or in the template, fails these tests.
//!
//! Alarms that look at more than one period (coverage for two hours, deferrals in two runs
//! in a row, heartbeats) are reached by moving the test's data points back in time
//! (`/_stack/cloudwatch` `age`), the stand-in's view of time passing between runs.
//!
//! Two stacks: the faults share the binary's stack (each test has its own namespace, and
//! each fault is its test's own: a rule, a secret, an image or a repository nobody else
//! touches); the healthy run has a stack of its own, where no fault exists.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{DOCKER, StackHandle, World, seed_rules};
use lifecycle_fixer::desired::{Desired, default_lifecycle, pull_policy};
use lifecycle_fixer::plan::Mode;
use ptc_core::config::ExpectedRule;
use ptc_core::rules::Prefix;
use ptc_core::watchlist::WatchListSource;
use ptc_tests::template::{alarm_state, alarms, put_alarm, resolved};
use ptc_tests::{Stack, repo_root, unique};
use serde_json::{Value, json};

/// The binary's stack for the faults, with the three seed rules.
async fn fault_world() -> World {
    static SEEDED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let stack = Stack::shared();
    SEEDED.get_or_init(|| seed_rules(stack)).await;
    World::on(StackHandle::Shared(stack), "PtcAlarm").await
}

/// The template's alarms resolved for the world's namespace, put into the stack's
/// CloudWatch under names of the world's own.
struct Alarms {
    cw: aws_sdk_cloudwatch::Client,
    names: BTreeMap<String, String>,
}

impl Alarms {
    async fn put(world: &World) -> Self {
        let template = resolved(&[("MetricsNamespace", world.namespace.as_str())]);
        let cw = aws_sdk_cloudwatch::Client::new(&world.sdk);
        let mut names = BTreeMap::new();
        for (id, props) in alarms(&template) {
            let name = format!("{}-{id}", world.namespace);
            put_alarm(&cw, &name, &props)
                .await
                .unwrap_or_else(|e| panic!("{id} refused: {e}"));
            names.insert(id, name);
        }
        Self { cw, names }
    }

    async fn state(&self, id: &str) -> (String, String) {
        let name = self
            .names
            .get(id)
            .unwrap_or_else(|| panic!("the template has no alarm {id}"));
        alarm_state(&self.cw, name).await
    }

    /// Assert `id` is in `want`, with its reason in the message.
    async fn expect(&self, id: &str, want: &str) {
        let (state, reason) = self.state(id).await;
        assert_eq!(state, want, "{id}: {reason}");
    }
}

/// Move the world's data points `seconds` back in time.
async fn age(world: &World, seconds: u64) {
    let answer = world
        .stack
        .control(
            "cloudwatch",
            json!({"age": {"namespace": world.namespace, "seconds": seconds}}),
        )
        .await;
    assert!(
        answer["moved"].as_u64().unwrap() > 0,
        "nothing to age: {answer}"
    );
}

fn fixture(function: &str, name: &str) -> Value {
    let path = repo_root()
        .join("functions")
        .join(function)
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const DAY: u64 = 86_400;
const HOUR: u64 = 3_600;

// -- validate-rules ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_that_fails_validation_fires_rule_invalid() {
    let world = fault_world().await;
    let id = unique();
    let revoked = world
        .stack
        .create_secret(
            &format!("ecr-pullthroughcache/revoked-{id}"),
            json!({"username": world.stack.upstream(DOCKER).username, "accessToken": "revoked"}),
        )
        .await;
    world
        .stack
        .create_rule(&format!("hub-revoked-{id}"), DOCKER, Some(&revoked))
        .await;
    let report = world.validate().await;
    assert!(report.summary.invalid >= 1, "{report:#?}");
    Alarms::put(&world)
        .await
        .expect("RuleInvalidAlarm", "ALARM")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expected_rule_that_is_gone_fires_rule_missing() {
    let world = fault_world().await;
    let mut options = world.validate_options();
    options.expected = vec![ExpectedRule::parse(&format!("gone-{}=quay.io", unique())).unwrap()];
    let report = world.validate_with(&options).await;
    assert_eq!(report.summary.missing, 1);
    Alarms::put(&world)
        .await
        .expect("RuleMissingAlarm", "ALARM")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_credential_past_its_maximum_age_fires_credential_too_old() {
    let world = fault_world().await;
    let id = unique();
    let old = world
        .stack
        .upstream_secret(&format!("ecr-pullthroughcache/old-{id}"), DOCKER)
        .await;
    world
        .stack
        .control("secrets/age", json!({"name": old, "value_days_ago": 120}))
        .await;
    world
        .stack
        .create_rule(&format!("hub-old-{id}"), DOCKER, Some(&old))
        .await;
    world.validate().await;
    Alarms::put(&world)
        .await
        .expect("CredentialTooOldAlarm", "ALARM")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_the_cache_side_refuses_fires_cross_account_not_ready() {
    let world = fault_world().await;
    let mut options = world.validate_options();
    // An account nothing on this stack grants (the fixer's tests grant 111122223333).
    options.consumers = validate_rules::cross_account::Consumers {
        default: vec![ptc_core::access::Consumer::principal(
            ptc_tests::CONSUMER_OUTSIDE_ORG,
        )],
        prefixes: Default::default(),
    };
    let report = world.validate_with(&options).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(
        !report.cross_account.is_empty()
            && report.not_ready_for_consumers().len() == report.cross_account.len(),
        "{:#?}",
        report.cross_account
    );
    Alarms::put(&world)
        .await
        .expect("CrossAccountNotReadyAlarm", "ALARM")
        .await;
}

/// Issue 18: a pulling role of the deployment that is not a pull-time update exclusion (a
/// stack deployed before, or one deregistered by hand) pages, and clears once registered.
#[tokio::test(flavor = "multi_thread")]
async fn a_pulling_role_not_excluded_fires_pull_time_exclusions_missing() {
    let world = fault_world().await;
    let arn = format!(
        "arn:aws:iam::{}:role/ptc-prewarm-{}",
        world.stack.info.account,
        unique()
    );
    let mut options = world.validate_options();
    options.pull_time_exclusions = vec![ptc_core::pull_time::ExpectedExclusion::exact(
        ptc_core::pull_time::PrincipalArn::parse(&arn).unwrap(),
        "PTC_PULL_TIME_EXCLUDED_ROLES",
    )];
    let report = world.validate_with(&options).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let alarms = Alarms::put(&world).await;
    alarms
        .expect("PullTimeExclusionsMissingAlarm", "ALARM")
        .await;
    world.stack.exclude_from_pull_time(&arn).await;
    age(&world, 2 * HOUR).await;
    let report = world.validate_with(&options).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let alarms = Alarms::put(&world).await;
    alarms.expect("PullTimeExclusionsMissingAlarm", "OK").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_validate_rules_cannot_read_fires_its_run_errors() {
    let world = fault_world().await;
    let report = validate_rules::handle(
        &world.validate_deps(),
        &world.validate_options(),
        &json!({"detail-type": "Object Created", "source": "aws.s3", "detail": {}}),
        time::OffsetDateTime::now_utc(),
    )
    .await;
    assert_eq!(report.errors.len(), 1);
    let alarms = Alarms::put(&world).await;
    alarms.expect("ValidateRulesRunErrorsAlarm", "ALARM").await;
    // Another job's alarm does not fire for it.
    alarms.expect("PrewarmRunErrorsAlarm", "OK").await;
}

// -- prewarm -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_image_that_cannot_be_pulled_fires_prewarm_failures() {
    let world = fault_world().await;
    let report = world
        .prewarm(&[
            "quay.io/coreos/etcd:no-such-tag",
            "registry.k8s.io/pause:3.9",
        ])
        .await;
    assert_eq!(report.summary.failed, 1, "{report:#?}");
    Alarms::put(&world)
        .await
        .expect("PrewarmFailuresAlarm", "ALARM")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_stale_in_two_runs_in_a_row_fires_stale_images() {
    let world = fault_world().await;
    let reference = "registry.k8s.io/coredns/coredns:v1.11.1";
    world.prewarm(&[reference]).await;
    // That first warm was days ago.
    age(&world, 3 * DAY).await;
    // The upstream moves the tag: one more annotation, a new digest.
    let url = format!(
        "{}/v2/coredns/coredns/manifests/v1.11.1",
        world.stack.upstream("registry.k8s.io").url
    );
    let http = reqwest::Client::new();
    let oci = "application/vnd.oci.image.manifest.v1+json";
    let mut manifest: Value = http
        .get(&url)
        .header("Accept", oci)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    manifest["annotations"] = json!({"org.opencontainers.image.revision": unique()});
    let put = http
        .put(&url)
        .header("Content-Type", oci)
        .body(serde_json::to_vec(&manifest).unwrap())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let report = world.prewarm(&[reference]).await;
    assert_eq!(report.summary.stale, 1, "{report:#?}");
    let alarms = Alarms::put(&world).await;
    // An upstream rebuild seen once is what ECR's next refresh fixes: no page yet.
    alarms.expect("StaleImagesAlarm", "OK").await;
    // Twelve hours later (the schedule), still stale.
    age(&world, 43_200).await;
    let again = world.prewarm(&[reference]).await;
    assert_eq!(again.summary.stale, 1, "{again:#?}");
    alarms.expect("StaleImagesAlarm", "ALARM").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn images_deferred_in_two_runs_in_a_row_fire_deferred_images() {
    let world = fault_world().await;
    let client = world.registry(Duration::from_secs(10)).await;
    let mut options = world.prewarm_options();
    // The deadline is already behind: every image is deferred.
    options.stop_at = Some(std::time::Instant::now());
    let images = ["quay.io/coreos/etcd:v3.5.13"];
    let first = world.prewarm_with(&options, &client, &images).await;
    assert_eq!(first.summary.deferred, 1, "{first:#?}");
    let alarms = Alarms::put(&world).await;
    alarms.expect("DeferredImagesAlarm", "OK").await;
    // Twelve hours later (the schedule), deferred again.
    age(&world, 43_200).await;
    let second = world.prewarm_with(&options, &client, &images).await;
    assert_eq!(second.summary.deferred, 1);
    alarms.expect("DeferredImagesAlarm", "ALARM").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_list_prewarm_cannot_read_fires_its_run_errors() {
    let world = fault_world().await;
    let client = world.registry(Duration::from_secs(10)).await;
    let mut options = world.prewarm_options();
    options.watch_list_source =
        Some(WatchListSource::parse(&format!("s3://ptc-no-bucket-{}/list.txt", unique())).unwrap());
    let report = world
        .prewarm_with(&options, &client, &["registry.k8s.io/pause:3.9"])
        .await;
    assert_eq!(report.errors.len(), 1, "{report:#?}");
    assert_eq!(report.summary.failed, 0);
    Alarms::put(&world)
        .await
        .expect("PrewarmRunErrorsAlarm", "ALARM")
        .await;
    // The list was read in part: no total (a 0 would clear the failure and deferral
    // alarms), the per-prefix figures of what was done are there.
    for total in [
        "ImagesFailed",
        "ImagesStale",
        "ImagesDeferred",
        "ImagesWarmed",
    ] {
        assert!(world.metric(total, &[]).await.is_none(), "{total}");
    }
    assert!(
        world
            .metric("ImagesWarmed", &[("Prefix", "k8s")])
            .await
            .is_some()
    );
}

// -- lifecycle-fixer ---------------------------------------------------------------------

/// The fixer's options with a pull grant wanted, in `mode`.
fn fix_options(world: &World, mode: Mode) -> lifecycle_fixer::Options {
    let mut options = world.fix_options();
    options.desired = Desired {
        lifecycle_policy: Some(default_lifecycle(30).canonical()),
        repository_policy: pull_policy(&["111122223333".into()], None),
        tags: BTreeMap::from([("managed-by".into(), "ptc".into())]),
        scan_on_push: false,
    }
    .into();
    options.mode = mode;
    options
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repository_left_non_compliant_fires_non_compliant_repositories() {
    let world = fault_world().await;
    let ecr = aws_sdk_ecr::Client::new(&world.sdk);
    let name = format!("quay/team-{}", unique());
    ecr.create_repository()
        .repository_name(&name)
        .send()
        .await
        .unwrap();
    // The product's own grant, as an older setting wrote it (another account): fill mode
    // keeps it, so the repository stays non-compliant. (A team's own statement would not:
    // fill adds the product's grant next to it.)
    let foreign = json!({"Version": "2012-10-17", "Statement": [{"Sid": "PtcPullPrincipals", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": ["ecr:BatchGetImage"]}]});
    ecr.set_repository_policy()
        .repository_name(&name)
        .policy_text(foreign.to_string())
        .send()
        .await
        .unwrap();
    let report = world
        .sweep_with(&fix_options(&world, Mode::Fill), None)
        .await;
    let mine = report
        .repositories
        .iter()
        .find(|r| r.repository == name)
        .unwrap();
    assert!(!mine.findings.is_empty(), "{mine:#?}");
    Alarms::put(&world)
        .await
        .expect("NonCompliantRepositoriesAlarm", "ALARM")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_lifecycle_fixer_cannot_read_fires_its_run_errors() {
    let world = fault_world().await;
    let report = lifecycle_fixer::handle(
        &world.fix_deps(),
        &fix_options(&world, Mode::Fill),
        &json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.ecr",
            "detail": {"eventName": "DeleteRepository"}}),
    )
    .await;
    assert_eq!(report.errors.len(), 1);
    Alarms::put(&world)
        .await
        .expect("LifecycleFixerRunErrorsAlarm", "ALARM")
        .await;
}

// -- health-metrics ----------------------------------------------------------------------

/// A watch-list image no fault test warms on this stack.
const NEVER_WARMED: &str = "quay.io/argoproj/argocd:v2.10.0";

#[tokio::test(flavor = "multi_thread")]
async fn an_uncached_watch_list_image_for_two_hours_fires_coverage_and_exposure() {
    let world = fault_world().await;
    let first = world.health(&[NEVER_WARMED]).await;
    assert_eq!(
        first.coverage.coverage_percent,
        Some(0.0),
        "{:#?}",
        first.coverage
    );
    let alarms = Alarms::put(&world).await;
    // One hour below 100% is not yet two.
    alarms.expect("WatchListCoverageAlarm", "OK").await;
    alarms.expect("OutageExposedImagesAlarm", "OK").await;
    age(&world, HOUR).await;
    world.health(&[NEVER_WARMED]).await;
    alarms.expect("WatchListCoverageAlarm", "ALARM").await;
    alarms.expect("OutageExposedImagesAlarm", "ALARM").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_sync_failure_event_fires_cache_sync_failures() {
    let world = fault_world().await;
    let report = health_metrics::handle(
        &world.health_deps(),
        &world.health_options(&[]),
        &fixture("health-metrics", "ptc-action-failure.json"),
        time::OffsetDateTime::now_utc(),
    )
    .await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let alarms = Alarms::put(&world).await;
    alarms.expect("CacheSyncFailuresAlarm", "ALARM").await;
    // Events keep coming while no inventory runs: the heartbeat is not fooled by them.
    alarms.expect("HealthMetricsHeartbeatAlarm", "ALARM").await;
    alarms.expect("HealthMetricsRunErrorsAlarm", "OK").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_watch_list_pages_instead_of_a_perfect_score() {
    let world = fault_world().await;
    let mut options = world.health_options(&[]);
    options.watch_list_source =
        Some(WatchListSource::parse(&format!("s3://ptc-no-bucket-{}/list.txt", unique())).unwrap());
    let report = world.health_with(&options).await;
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_eq!(report.coverage.coverage_percent, None);
    let alarms = Alarms::put(&world).await;
    alarms.expect("HealthMetricsRunErrorsAlarm", "ALARM").await;
    assert!(
        world.metric("WatchListCoverage", &[]).await.is_none(),
        "no coverage is published from a list that could not be read"
    );
}

// -- a healthy run, and the heartbeats -----------------------------------------------------

/// What the README lists as informational (no alarm), from its "Metrics without an alarm"
/// table.
fn informational_metrics() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("### Metrics without an alarm")
        .nth(1)
        .expect("README has a \"Metrics without an alarm\" section");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .collect()
}

/// The metric names the template's alarms watch.
fn alarmed_metrics(template: &Value) -> BTreeSet<String> {
    alarms(template)
        .into_iter()
        .flat_map(|(_, props)| {
            let mut names: Vec<String> = props["MetricName"]
                .as_str()
                .map(str::to_owned)
                .into_iter()
                .collect();
            for query in props["Metrics"].as_array().into_iter().flatten() {
                if let Some(name) = query["MetricStat"]["Metric"]["MetricName"].as_str() {
                    names.push(name.to_owned());
                }
            }
            names
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_runs_leave_every_alarm_ok_and_silence_fires_the_heartbeats() {
    let stack = Stack::start();
    seed_rules(&stack).await;
    let world = World::on(StackHandle::Owned(Box::new(stack)), "PtcHealthy").await;
    let watch = [
        "registry.k8s.io/pause:3.9",
        "quay.io/prometheus/prometheus:v2.51.0",
    ];

    let mut validate = world.validate_options();
    validate.expected = [
        "docker-hub=registry-1.docker.io+credential",
        "quay=quay.io",
        "k8s=registry.k8s.io",
    ]
    .iter()
    .map(|e| ExpectedRule::parse(e).unwrap())
    .collect();
    validate.rule_prefixes = ["docker-hub", "quay", "k8s"]
        .iter()
        .map(|p| Prefix::parse(p).unwrap())
        .collect();
    let validated = world.validate_with(&validate).await;
    assert!(
        validated.healthy() && validated.errors.is_empty(),
        "{validated:#?}"
    );
    let warmed = world.prewarm(&watch).await;
    assert_eq!(
        warmed.summary.failed + warmed.summary.deferred,
        0,
        "{warmed:#?}"
    );
    assert!(warmed.errors.is_empty(), "{:?}", warmed.errors);
    // The template's default mode.
    let fixed = world
        .sweep_with(&fix_options(&world, Mode::Fill), None)
        .await;
    assert!(
        fixed.errors.is_empty() && fixed.summary.errors == 0,
        "{fixed:#?}"
    );
    let health = world.health(&watch).await;
    assert_eq!(
        health.coverage.coverage_percent,
        Some(100.0),
        "{:#?}",
        health.coverage
    );
    assert!(health.errors.is_empty(), "{:?}", health.errors);
    health_metrics::handle(
        &world.health_deps(),
        &world.health_options(&[]),
        &fixture("health-metrics", "ptc-action-success.json"),
        time::OffsetDateTime::now_utc(),
    )
    .await;

    let alarms = Alarms::put(&world).await;
    let mut not_ok = Vec::new();
    for id in alarms.names.keys() {
        let (state, reason) = alarms.state(id).await;
        if state != "OK" {
            not_ok.push(format!("{id}: {state} ({reason})"));
        }
    }
    assert!(
        not_ok.is_empty(),
        "after healthy runs:\n{}",
        not_ok.join("\n")
    );

    // Every metric the jobs published is watched by an alarm or listed as informational.
    let template = resolved(&[("MetricsNamespace", world.namespace.as_str())]);
    let (alarmed, informational) = (alarmed_metrics(&template), informational_metrics());
    let listed = aws_sdk_cloudwatch::Client::new(&world.sdk)
        .list_metrics()
        .namespace(&world.namespace)
        .send()
        .await
        .unwrap();
    let published: BTreeSet<String> = listed
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name().map(str::to_owned))
        .collect();
    let orphans: Vec<&String> = published
        .iter()
        .filter(|m| !alarmed.contains(*m) && !informational.contains(*m))
        .collect();
    assert!(
        orphans.is_empty(),
        "published with no alarm and not listed in the README's \"Metrics without an alarm\": {orphans:?}"
    );
    let stale: Vec<&String> = informational.intersection(&alarmed).collect();
    assert!(
        stale.is_empty(),
        "listed as informational but alarmed: {stale:?}"
    );

    // Three days without a run: every job's heartbeat fires, nothing else does.
    age(&world, 3 * DAY).await;
    for job in [
        "ValidateRules",
        "Prewarm",
        "LifecycleFixer",
        "HealthMetrics",
    ] {
        alarms
            .expect(&format!("{job}HeartbeatAlarm"), "ALARM")
            .await;
        alarms.expect(&format!("{job}RunErrorsAlarm"), "OK").await;
    }
    alarms.expect("RuleInvalidAlarm", "OK").await;
}
