//! prewarm on the work queue (issue 19), end to end: the built `prewarm` binary plans into a
//! moto SQS queue and a DynamoDB table through a real Lambda Runtime API, and the local event
//! source mapping (`ptc_tests::queue::drive`) delivers the messages to workers of the same
//! binary as Lambda would (batches, partial batch failures, delays, the redrive policy).
//! Each test has its own stack where it sets faults.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use aws_sdk_cloudwatch::types::Statistic;
use aws_sdk_dynamodb::types::AttributeValue;
use ptc_tests::Stack;
use ptc_tests::lambda::Lambda;
use ptc_tests::queue::{DriverOptions, DriverStats, WorkQueue, drive};
use serde_json::{Value, json};

fn schedule() -> Value {
    json!({"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012", "time": "2026-11-30T06:00:00Z", "region": "us-east-1", "resources": [], "detail": {}})
}

/// A queue, a table and the environment of a prewarm function that uses them.
struct Queued {
    queue: WorkQueue,
    table: String,
    env: Vec<(String, String)>,
}

async fn queued(stack: &Stack, watch_list: &[String], extra: &[(&str, &str)]) -> Queued {
    let queue = stack.create_work_queue(30, 5).await;
    let table = stack.create_run_table().await;
    let mut env = stack.env();
    env.extend([
        ("PTC_WORK_QUEUE_URL".to_owned(), queue.url.clone()),
        ("PTC_WORK_DLQ_URL".to_owned(), queue.dlq_url.clone()),
        ("PTC_RUN_TABLE".to_owned(), table.clone()),
        ("PTC_WATCH_LIST".to_owned(), watch_list.join(",")),
        ("PTC_DISCOVERY_DAYS".to_owned(), "0".to_owned()),
        ("PTC_METRICS_NAMESPACE".to_owned(), "PtcQueue".to_owned()),
    ]);
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    Queued { queue, table, env }
}

fn lambdas(env: &[(String, String)], n: usize, timeout_secs: u32) -> Vec<Lambda> {
    (0..n)
        .map(|_| Lambda::start(Path::new(env!("CARGO_BIN_EXE_prewarm")), env, timeout_secs))
        .collect()
}

/// Every terminal outcome of a run: item → outcome (a query on the run's partition).
async fn outcomes(stack: &Stack, table: &str, run: &str) -> BTreeMap<String, String> {
    let ddb = stack.dynamodb().await;
    let mut out = BTreeMap::new();
    let mut start: Option<std::collections::HashMap<String, AttributeValue>> = None;
    for _ in 0..1000 {
        let page = ddb
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("run#{run}")))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("Query the run's outcomes");
        for item in page.items() {
            let name = item["item"].as_s().unwrap().clone();
            let outcome = item["outcome"].as_s().unwrap().clone();
            assert!(
                out.insert(name.clone(), outcome).is_none(),
                "one outcome per item: {name}"
            );
        }
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return out,
        }
    }
    panic!("the run's outcomes did not end within 1000 pages");
}

/// The run's record: (planned, done, finished).
async fn record(stack: &Stack, table: &str, run: &str) -> (u64, u64, bool) {
    let item = stack
        .dynamodb()
        .await
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S("job#prewarm".into()))
        .key("sk", AttributeValue::S(format!("run#{run}")))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem the run")
        .item
        .expect("the run's record");
    let number = |k: &str| item[k].as_n().unwrap().parse::<u64>().unwrap();
    (
        number("planned"),
        number("done"),
        item.contains_key("finished_at"),
    )
}

/// The worker reports the functions logged (one JSON line per invocation).
fn worker_reports(pool: &[Lambda]) -> Vec<Value> {
    pool.iter()
        .flat_map(|l| {
            l.logs()
                .lines()
                .filter(|line| line.starts_with("{\"job\":\"prewarm\",\"messages\""))
                .map(|line| serde_json::from_str::<Value>(line).expect("a worker report"))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn settled(reports: &[Value], field: &str) -> u64 {
    reports
        .iter()
        .map(|r| r["settled"][field].as_u64().unwrap_or(0))
        .sum()
}

async fn plan(stack: &Stack, q: &Queued) -> Value {
    let planner = Lambda::start(Path::new(env!("CARGO_BIN_EXE_prewarm")), &q.env, 60);
    let answer = planner.invoke(&schedule()).await;
    assert!(answer["run"].is_string(), "a run was planned: {answer}");
    let _ = stack;
    answer
}

async fn drain(stack: &Stack, q: &Queued, pool: &[Lambda], max_wall: Duration) -> DriverStats {
    let stats = drive(
        &stack.sqs().await,
        &q.queue,
        pool,
        &DriverOptions {
            batch_size: 10,
            maximum_concurrency: pool.len(),
            max_wall,
            idle_polls: 2,
        },
    )
    .await;
    assert!(
        !stats.timed_out,
        "the queue drained within {max_wall:?}: {stats:?}"
    );
    stats
}

/// 300 images with a deadline that fits about 100 per invocation. In one process, the run
/// stops at its deadline and leaves the tail deferred, in the same fixed order every run. On
/// the queue, what the deadline cuts is sent again at once, and all 300 end warmed, each with
/// exactly one terminal outcome, over several invocations.
#[tokio::test(flavor = "multi_thread")]
async fn three_hundred_images_all_end_warmed_each_once() {
    let stack = Stack::start();
    stack.create_rule("quay", "quay.io", None).await;
    let images = stack.seed_bench(6, 50).await;
    assert_eq!(images.len(), 300);
    // Each upstream request waits, so that an invocation of 10 s (its stop 5 s before the
    // deadline) warms about a third of the list.
    stack
        .control("upstreams/quay.io", json!({"latency_ms": 60}))
        .await;
    let settings = [
        ("PTC_CONCURRENCY", "4"),
        ("PTC_QUEUE_IMAGES_PER_MESSAGE", "10"),
    ];
    let q = queued(&stack, &images, &settings).await;

    // Today, in one invocation: the deadline leaves the tail of the list deferred.
    let mut direct_env: Vec<(String, String)> = q
        .env
        .iter()
        .filter(|(k, _)| !k.starts_with("PTC_WORK_") && k != "PTC_RUN_TABLE")
        .cloned()
        .collect();
    direct_env.push(("PTC_METRICS_NAMESPACE".into(), "PtcQueueDirect".into()));
    let direct = Lambda::start(Path::new(env!("CARGO_BIN_EXE_prewarm")), &direct_env, 10);
    let one = direct.invoke(&schedule()).await;
    let deferred = one["summary"]["deferred"].as_u64().expect("a run report");
    assert!(
        deferred >= 100,
        "one invocation cannot do 300 images here: {}",
        one["summary"]
    );
    let tail: Vec<&str> = one["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["outcome"] == "deferred")
        .map(|i| i["reference"].as_str().unwrap())
        .collect();
    assert_eq!(
        tail,
        images[images.len() - tail.len()..]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "what is deferred is the tail of the list, in its fixed order"
    );
    drop(direct);

    // On the queue.
    let planned = plan(&stack, &q).await;
    let run = planned["run"].as_str().unwrap().to_owned();
    assert_eq!(planned["planned"], 300, "{planned}");
    assert_eq!(
        planned["messages"], 30,
        "6 repositories of 50, 10 a message: {planned}"
    );
    let pool = lambdas(&q.env, 2, 10);
    let stats = drain(&stack, &q, &pool, Duration::from_secs(400)).await;
    let reports = worker_reports(&pool);
    let outcomes = outcomes(&stack, &q.table, &run).await;
    assert_eq!(outcomes.len(), 300, "every item has its outcome");
    let counts = outcomes.values().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(o.as_str()).or_insert(0) += 1;
        m
    });
    // The first direct run warmed what it reached: those are already fresh now.
    assert_eq!(
        counts.get("warmed").unwrap_or(&0) + counts.get("already-fresh").unwrap_or(&0),
        300,
        "{counts:?}"
    );
    // Every image of the tail the direct run left is cached and verified now: warmed by the
    // queue (or already fresh, for those the direct run cut mid-pull after the cache had them;
    // how many depends on the machine's load).
    for reference in &tail {
        let outcome = outcomes[*reference].as_str();
        assert!(
            outcome == "warmed" || outcome == "already-fresh",
            "{reference}: {outcome}"
        );
    }
    assert!(
        *counts.get("warmed").unwrap_or(&0) > 0,
        "the queue pulled what the direct run did not reach: {counts:?}, {deferred} deferred"
    );
    assert_eq!(
        settled(&reports, "recorded"),
        300,
        "each outcome written once"
    );
    assert!(
        settled(&reports, "deadline") > 0,
        "the deadline cut some messages, sent again: {reports:?}"
    );
    assert!(stats.invocations >= 3, "{stats:?}");
    assert_eq!(stats.function_errors, 0, "{stats:?}");
    assert_eq!(record(&stack, &q.table, &run).await, (300, 300, true));
    assert!(q.queue.dlq_depth(&stack.sqs().await).await.is_empty());
    // The run's totals were published once, when it finished: the alarms' series.
    let metric = |name: &'static str, dims: &'static [(&'static str, &'static str)], statistic| {
        stack.metric("PtcQueue", name, dims, statistic)
    };
    assert_eq!(
        metric("ImagesWarmed", &[], Statistic::Sum).await,
        Some(300.0)
    );
    assert_eq!(
        metric("ImagesWarmed", &[], Statistic::SampleCount).await,
        Some(1.0),
        "the run's total, published once"
    );
    assert_eq!(
        metric("FullRuns", &[("Job", "prewarm")], Statistic::Sum).await,
        Some(1.0)
    );
}

/// Docker Hub's stand-in rate-limits with `Retry-After: 120`: its images go back to the queue
/// delayed by 120 s (an SQS delay), are not delivered before, and complete once the limit
/// lifts; none fails, and the other upstream's images are done at once.
#[tokio::test(flavor = "multi_thread")]
async fn rate_limited_images_come_back_after_the_upstreams_wait() {
    let stack = Stack::start();
    stack.create_docker_hub_rule().await;
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    // Over its budget, every request answers 429 with Retry-After: 120.
    stack
        .control(
            "upstreams/registry-1.docker.io",
            json!({"ratelimit_remaining": 0, "retry_after": 120, "limit_all": true}),
        )
        .await;
    let list: Vec<String> = [
        "nginx:1.25",
        "nats:2.10.12-alpine",
        "busybox:latest",
        "grafana/grafana:10.4.0",
        "registry.k8s.io/pause:3.9",
        "registry.k8s.io/coredns/coredns:v1.11.1",
    ]
    .map(String::from)
    .to_vec();
    let q = queued(&stack, &list, &[]).await;
    let planned = plan(&stack, &q).await;
    let run = planned["run"].as_str().unwrap().to_owned();
    let pool = lambdas(&q.env, 2, 60);
    let lift = {
        let control = format!(
            "{}/_stack/upstreams/registry-1.docker.io",
            stack.info.aws_endpoint
        );
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            reqwest::Client::new()
                .post(control)
                .json(&json!({"ratelimit_remaining": 200, "limit_all": false}))
                .send()
                .await
                .expect("lift the rate limit");
        })
    };
    let stats = drain(&stack, &q, &pool, Duration::from_secs(300)).await;
    lift.await.unwrap();
    // The Docker Hub images were received twice: at once, then 120 s later.
    let nginx: Vec<_> = stats
        .receipts
        .iter()
        .filter(|r| r.body.contains("\"nginx:1.25\""))
        .collect();
    assert_eq!(nginx.len(), 2, "{nginx:?}");
    let waited = nginx[1].at - nginx[0].at;
    assert!(
        waited >= Duration::from_secs(118),
        "delivered again only after the Retry-After: {waited:?}"
    );
    assert!(
        nginx[1].body.contains("\"attempt\":1"),
        "a wait is not an attempt"
    );
    let outcomes = outcomes(&stack, &q.table, &run).await;
    assert_eq!(outcomes.len(), 6);
    assert!(
        outcomes.values().all(|o| o == "warmed"),
        "none failed: {outcomes:?}"
    );
    let reports = worker_reports(&pool);
    assert_eq!(settled(&reports, "rate_limited"), 4, "{reports:?}");
    assert!(q.queue.dlq_depth(&stack.sqs().await).await.is_empty());
    assert_eq!(record(&stack, &q.table, &run).await, (6, 6, true));
}

/// An image whose manifest is corrupt fails every attempt: after the third it is recorded as
/// failed and sent to the dead-letter queue with the reason; the other images (another
/// upstream, other messages) are warmed once and the run finishes.
#[tokio::test(flavor = "multi_thread")]
async fn a_poison_image_ends_in_the_dead_letter_queue_with_its_reason() {
    let stack = Stack::start();
    stack.create_rule("quay", "quay.io", None).await;
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    stack
        .control(
            "upstreams/quay.io",
            json!({"corrupt_manifests": "not-json"}),
        )
        .await;
    let list: Vec<String> = [
        "quay.io/coreos/etcd:v3.5.13",
        "registry.k8s.io/pause:3.9",
        "registry.k8s.io/coredns/coredns:v1.11.1",
        "gcr.io/distroless/static:nonroot",
    ]
    .map(String::from)
    .to_vec();
    let q = queued(&stack, &list, &[("PTC_QUEUE_RETRY_SECS", "20")]).await;
    let planned = plan(&stack, &q).await;
    let run = planned["run"].as_str().unwrap().to_owned();
    let pool = lambdas(&q.env, 2, 60);
    // Attempts 1, 2 and 3, 20 s then 60 s apart (PTC_QUEUE_RETRY_SECS; 5 and 15 minutes by
    // default).
    drain(&stack, &q, &pool, Duration::from_secs(200)).await;
    let letters = q.queue.dead_letters(&stack.sqs().await).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter: Value = serde_json::from_str(&letters[0]).unwrap();
    assert_eq!(
        letter["message"]["items"][0]["reference"],
        "quay.io/coreos/etcd:v3.5.13"
    );
    assert_eq!(letter["message"]["attempt"], 3);
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .contains("quay.io/coreos/etcd:v3.5.13: "),
        "{letter}"
    );
    let outcomes = outcomes(&stack, &q.table, &run).await;
    assert_eq!(outcomes["quay.io/coreos/etcd:v3.5.13"], "failed");
    assert_eq!(outcomes["registry.k8s.io/pause:3.9"], "warmed");
    assert_eq!(
        outcomes["registry.k8s.io/coredns/coredns:v1.11.1"],
        "warmed"
    );
    // No rule for gcr.io: a watch-list error, failed at once, not poison.
    assert_eq!(outcomes["gcr.io/distroless/static:nonroot"], "failed");
    // The store's adapter lists them with their reasons (what `ptc runs ID` shows).
    let store = ptc_core::aws::SdkRunStore::new(stack.dynamodb().await, q.table.clone());
    let listed = ptc_core::queue::RunStore::outcomes(
        &store,
        &ptc_core::queue::RunId::try_from(run.clone()).unwrap(),
        3,
    )
    .await
    .unwrap();
    assert_eq!(listed.len(), 3, "at most the limit");
    let all = ptc_core::queue::RunStore::outcomes(
        &store,
        &ptc_core::queue::RunId::try_from(run.clone()).unwrap(),
        100,
    )
    .await
    .unwrap();
    let etcd = all
        .iter()
        .find(|o| o.item == "quay.io/coreos/etcd:v3.5.13")
        .unwrap();
    assert_eq!(
        (etcd.outcome.as_str(), etcd.group.as_str()),
        ("failed", "quay")
    );
    assert!(
        etcd.reason
            .as_deref()
            .unwrap_or_default()
            .contains("manifest"),
        "{etcd:?}"
    );
    let reports = worker_reports(&pool);
    assert_eq!(settled(&reports, "retried"), 2, "{reports:?}");
    assert_eq!(settled(&reports, "dead_lettered"), 1);
    assert_eq!(record(&stack, &q.table, &run).await, (4, 4, true));
    assert_eq!(
        stack
            .metric("PtcQueue", "ImagesFailed", &[], Statistic::Sum)
            .await,
        Some(2.0)
    );
}

/// A second planner while a run is in flight enqueues nothing; a message delivered twice
/// (SQS delivers at least once) is warmed twice but its outcomes are written once.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_planner_and_a_duplicate_delivery_leave_one_outcome_per_item() {
    let stack = Stack::shared();
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    let list: Vec<String> = [
        "registry.k8s.io/pause:3.9",
        "registry.k8s.io/coredns/coredns:v1.11.1",
    ]
    .map(String::from)
    .to_vec();
    let q = queued(stack, &list, &[]).await;
    let first = plan(stack, &q).await;
    let run = first["run"].as_str().unwrap().to_owned();
    let sqs = stack.sqs().await;
    assert_eq!(q.queue.depth(&sqs).await.visible, 1);
    let planner = Lambda::start(Path::new(env!("CARGO_BIN_EXE_prewarm")), &q.env, 60);
    let second = planner.invoke(&schedule()).await;
    assert_eq!(second["in_flight"], run.as_str(), "{second}");
    assert!(second.get("run").is_none(), "{second}");
    assert_eq!(
        q.queue.depth(&sqs).await.visible,
        1,
        "nothing enqueued twice"
    );
    // The same message delivered twice.
    let message = sqs
        .receive_message()
        .queue_url(&q.queue.url)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap()
        .remove(0);
    for _ in 0..2 {
        sqs.send_message()
            .queue_url(&q.queue.url)
            .message_body(message.body().unwrap())
            .send()
            .await
            .unwrap();
    }
    sqs.delete_message()
        .queue_url(&q.queue.url)
        .receipt_handle(message.receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    // Both deliveries in one batch: both are warmed, the second's outcomes are already there.
    let pool = lambdas(&q.env, 1, 60);
    let stats = drive(
        &sqs,
        &q.queue,
        &pool,
        &DriverOptions {
            batch_size: 2,
            maximum_concurrency: 1,
            max_wall: Duration::from_secs(120),
            idle_polls: 2,
        },
    )
    .await;
    assert_eq!(stats.invocations, 1, "{stats:?}");
    let reports = worker_reports(&pool);
    assert_eq!(settled(&reports, "recorded"), 2, "{reports:?}");
    assert_eq!(settled(&reports, "duplicates"), 2, "{reports:?}");
    // A third copy after the run finished is acknowledged without work.
    sqs.send_message()
        .queue_url(&q.queue.url)
        .message_body(message.body().unwrap())
        .send()
        .await
        .unwrap();
    let late = drive(
        &sqs,
        &q.queue,
        &pool,
        &DriverOptions {
            batch_size: 1,
            maximum_concurrency: 1,
            max_wall: Duration::from_secs(60),
            idle_polls: 2,
        },
    )
    .await;
    assert_eq!((late.invocations, late.deleted), (1, 1), "{late:?}");
    let reports = worker_reports(&pool);
    assert_eq!(settled(&reports, "finished_runs"), 1, "{reports:?}");
    assert_eq!(settled(&reports, "recorded"), 2, "{reports:?}");
    let outcomes = outcomes(stack, &q.table, &run).await;
    assert_eq!(outcomes.len(), 2);
    assert_eq!(record(stack, &q.table, &run).await, (2, 2, true));
    // The run is finished: the lease is free, and a new planner starts a new run.
    let third = planner.invoke(&schedule()).await;
    assert!(
        third["run"].is_string() && third["run"] != run.as_str(),
        "{third}"
    );
}
