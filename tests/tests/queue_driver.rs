//! The local SQS event source mapping driver (issue 19) against the stack's moto SQS, with a
//! real function binary (ptc-sqs-test-lambda) under the Runtime Interface Emulator.
//!
//! The test function checks every event against the SqsEvent shape and errors otherwise, so
//! `function_errors == 0` in a run proves the events deserialised.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::MessageAttributeValue;
use ptc_tests::Stack;
use ptc_tests::lambda::Lambda;
use ptc_tests::queue::{DriverOptions, DriverStats, Judgement, WorkQueue, drive};

fn test_lambda() -> Lambda {
    Lambda::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_ptc-sqs-test-lambda")),
        &[],
        10,
    )
}

/// Send `bodies` (each with a String message attribute `n`); returns their message ids.
async fn send(sqs: &aws_sdk_sqs::Client, queue: &WorkQueue, bodies: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for (n, body) in bodies.iter().enumerate() {
        let id = sqs
            .send_message()
            .queue_url(&queue.url)
            .message_body(*body)
            .message_attributes(
                "n",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(n.to_string())
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("SendMessage")
            .message_id
            .expect("a message id");
        ids.push(id);
    }
    ids
}

fn options(batch_size: i32, maximum_concurrency: usize) -> DriverOptions {
    DriverOptions {
        batch_size,
        maximum_concurrency,
        max_wall: Duration::from_secs(40),
        idle_polls: 2,
    }
}

fn no_errors(stats: &DriverStats) {
    assert_eq!(
        stats.function_errors, 0,
        "every event was an SqsEvent: {stats:#?}"
    );
    assert_eq!(stats.invalid_responses, 0, "{stats:#?}");
    assert_eq!(stats.delete_failures, 0, "{stats:#?}");
    assert!(!stats.timed_out, "stopped on an idle queue: {stats:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn all_succeed_every_message_deleted_once() {
    let stack = Stack::shared();
    let sqs = stack.sqs().await;
    let queue = stack.create_work_queue(2, 3).await;
    let bodies: Vec<String> = (0..12).map(|i| format!("ok-{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let ids = send(&sqs, &queue, &refs).await;
    let lambdas = [test_lambda()];
    let stats = drive(&sqs, &queue, &lambdas, &options(5, 2)).await;
    no_errors(&stats);
    assert_eq!(stats.messages_received, 12, "{stats:#?}");
    assert_eq!(stats.deleted, 12);
    assert!(stats.invocations >= 3, "batches of at most 5: {stats:#?}");
    assert!(stats.invocation_spans.iter().all(|s| s.messages <= 5));
    let deletes = stats.deletes_by_id();
    let receives = stats.receives_by_id();
    for id in &ids {
        assert_eq!(deletes.get(id), Some(&1), "{id} deleted once");
        assert_eq!(receives.get(id), Some(&1), "{id} received once");
    }
    assert!(queue.depth(&sqs).await.is_empty());
    assert!(queue.dead_letters(&sqs).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_item_ends_in_the_dlq_after_max_receive_count_and_the_others_are_deleted_once() {
    let stack = Stack::shared();
    let sqs = stack.sqs().await;
    let queue = stack.create_work_queue(1, 2).await;
    let ids = send(&sqs, &queue, &["ok-a", "fail", "ok-b", "ok-c"]).await;
    let fail_id = &ids[1];
    let lambdas = [test_lambda()];
    let stats = drive(&sqs, &queue, &lambdas, &options(10, 2)).await;
    no_errors(&stats);
    let receives = stats.receives_by_id();
    let deletes = stats.deletes_by_id();
    assert_eq!(
        receives.get(fail_id),
        Some(&2),
        "received maxReceiveCount times: {stats:#?}"
    );
    assert_eq!(stats.batch_item_failures, 2);
    assert_eq!(deletes.get(fail_id), None, "never deleted by the driver");
    for id in ids.iter().filter(|id| *id != fail_id) {
        assert_eq!(receives.get(id), Some(&1), "{id}");
        assert_eq!(deletes.get(id), Some(&1), "{id}");
    }
    // The second receive came after the visibility timeout (1 s).
    let times: Vec<Instant> = stats
        .receipts
        .iter()
        .filter(|r| &r.message_id == fail_id)
        .map(|r| r.at)
        .collect();
    assert!(
        times[1] - times[0] >= Duration::from_millis(900),
        "{times:?}"
    );
    let counts: Vec<u32> = stats
        .receipts
        .iter()
        .filter(|r| &r.message_id == fail_id)
        .map(|r| r.receive_count)
        .collect();
    assert_eq!(counts, [1, 2], "SQS's ApproximateReceiveCount");
    assert!(queue.depth(&sqs).await.is_empty());
    assert_eq!(queue.dead_letters(&sqs).await, ["fail"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_batch_comes_back_after_the_visibility_timeout() {
    let stack = Stack::shared();
    let sqs = stack.sqs().await;
    let queue = stack.create_work_queue(2, 2).await;
    let ids = send(&sqs, &queue, &["crash", "ok"]).await;
    let lambdas = [test_lambda()];
    let stats = drive(&sqs, &queue, &lambdas, &options(10, 1)).await;
    assert!(!stats.timed_out, "{stats:#?}");
    assert_eq!(
        stats.invocations, 2,
        "both sent before the first poll, one batch each time: {stats:#?}"
    );
    assert_eq!(stats.function_errors, 2);
    assert!(stats.invocation_spans.iter().all(|s| matches!(
        &s.outcome,
        Some(Judgement::FunctionError(m)) if m.contains("Crash")
    )));
    assert_eq!(stats.deleted, 0, "a function error leaves the whole batch");
    let receives = stats.receives_by_id();
    for id in &ids {
        assert_eq!(receives.get(id), Some(&2), "{id}: {stats:#?}");
    }
    let first = stats.invocation_spans[0].end.unwrap();
    let second = stats.invocation_spans[1].start;
    assert!(
        second - first >= Duration::from_millis(1500),
        "back after the 2 s visibility timeout, not before: {:?}",
        second - first
    );
    assert!(queue.depth(&sqs).await.is_empty());
    let mut dead = queue.dead_letters(&sqs).await;
    dead.sort();
    assert_eq!(
        dead,
        ["crash", "ok"],
        "the whole batch after maxReceiveCount 2"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delayed_message_is_not_delivered_before_its_delay() {
    let stack = Stack::shared();
    let sqs = stack.sqs().await;
    let queue = stack.create_work_queue(2, 3).await;
    let sent = Instant::now();
    let delayed = sqs
        .send_message()
        .queue_url(&queue.url)
        .message_body("delayed")
        .delay_seconds(3)
        .send()
        .await
        .expect("SendMessage with DelaySeconds")
        .message_id
        .unwrap();
    let now = send(&sqs, &queue, &["now"]).await.remove(0);
    let lambdas = [test_lambda()];
    let stats = drive(&sqs, &queue, &lambdas, &options(10, 2)).await;
    no_errors(&stats);
    let at = |id: &str| {
        stats
            .receipts
            .iter()
            .find(|r| r.message_id == id)
            .unwrap_or_else(|| panic!("{id} received: {stats:#?}"))
            .at
            - sent
    };
    assert!(at(&now) < Duration::from_millis(2500), "{:?}", at(&now));
    assert!(
        at(&delayed) >= Duration::from_millis(2900),
        "not before ~3 s: {:?}",
        at(&delayed)
    );
    assert!(at(&delayed) < Duration::from_secs(8), "{:?}", at(&delayed));
    assert_eq!(stats.deleted, 2);
    assert!(queue.depth(&sqs).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn maximum_concurrency_bounds_the_invocations_at_once() {
    let stack = Stack::shared();
    let sqs = stack.sqs().await;
    let lambdas = [test_lambda(), test_lambda(), test_lambda()];

    // maximum_concurrency 2 with a pool of 3: never more than 2, and 2 are reached.
    let queue = stack.create_work_queue(3, 3).await;
    send(&sqs, &queue, &["sleep:600"; 6]).await;
    let stats = drive(&sqs, &queue, &lambdas, &options(1, 2)).await;
    no_errors(&stats);
    assert_eq!(stats.deleted, 6);
    assert_eq!(stats.max_in_flight_invocations, 2, "{stats:#?}");
    assert_eq!(overlap(&stats), 2, "measured from the spans");
    assert!(stats.invocation_spans.iter().all(|s| s.lambda < 2));

    // With 2 Lambdas and maximum_concurrency 8: bounded by the pool.
    let queue = stack.create_work_queue(3, 3).await;
    send(&sqs, &queue, &["sleep:600"; 4]).await;
    let stats = drive(&sqs, &queue, &lambdas[..2], &options(1, 8)).await;
    no_errors(&stats);
    assert_eq!(stats.deleted, 4);
    assert_eq!(stats.max_in_flight_invocations, 2, "{stats:#?}");
    assert!(overlap(&stats) <= 2);
    // No Lambda ran two invocations at once.
    for lambda in 0..2 {
        let mut spans: Vec<_> = stats
            .invocation_spans
            .iter()
            .filter(|s| s.lambda == lambda)
            .collect();
        spans.sort_by_key(|s| s.start);
        for pair in spans.windows(2) {
            assert!(pair[0].end.unwrap() <= pair[1].start);
        }
    }
}

/// The most invocation spans open at one instant.
fn overlap(stats: &DriverStats) -> usize {
    let mut edges: Vec<(Instant, i32)> = Vec::new();
    for s in &stats.invocation_spans {
        edges.push((s.start, 1));
        edges.push((s.end.expect("every invocation answered"), -1));
    }
    // Ends before starts at the same instant.
    edges.sort();
    let (mut open, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        open += d;
        most = most.max(open);
    }
    most as usize
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_are_judged_by_the_documented_partial_batch_rules() {
    let stack = Stack::shared();
    let sqs = stack.sqs().await;
    // maxReceiveCount 1: a batch judged a failure goes to the DLQ on the next receive.
    let queue = stack.create_work_queue(1, 1).await;
    let bodies = [
        "answer:null",
        "answer:empty",
        "answer:bad-id",
        "answer:empty-id",
        "answer:null-id",
        "answer:bad-key",
    ];
    send(&sqs, &queue, &bodies).await;
    let lambdas = [test_lambda()];
    let stats = drive(&sqs, &queue, &lambdas, &options(1, 1)).await;
    assert!(!stats.timed_out, "{stats:#?}");
    assert_eq!(stats.function_errors, 0, "{stats:#?}");
    assert_eq!(stats.invocations, 6, "{stats:#?}");
    assert_eq!(stats.invalid_responses, 4, "{stats:#?}");
    assert_eq!(stats.deleted, 2, "null and {{}} delete the whole batch");
    let mut deleted: Vec<&str> = stats
        .receipts
        .iter()
        .filter(|r| stats.deleted_ids.contains(&r.message_id))
        .map(|r| r.body.as_str())
        .collect();
    deleted.sort();
    assert_eq!(deleted, ["answer:empty", "answer:null"]);
    let mut dead = queue.dead_letters(&sqs).await;
    dead.sort();
    assert_eq!(
        dead,
        [
            "answer:bad-id",
            "answer:bad-key",
            "answer:empty-id",
            "answer:null-id"
        ]
    );
    assert!(queue.depth(&sqs).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_run_table_has_the_documented_keys() {
    let stack = Stack::shared();
    let table = stack.create_run_table().await;
    let described = stack
        .dynamodb()
        .await
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys: Vec<(String, String)> = described
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_owned(),
                k.key_type().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("pk".to_owned(), "HASH".to_owned()),
            ("sk".to_owned(), "RANGE".to_owned())
        ]
    );
    assert_eq!(
        described
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str()),
        Some("PAY_PER_REQUEST")
    );
    assert_ne!(table, stack.create_run_table().await, "unique names");
}
