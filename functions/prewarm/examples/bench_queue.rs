//! Benchmark of the work queue (issue 19) through the whole local stack: N watch-list entries
//! (`bench/app-R:tT` on quay.io, 50 tags of one small two-platform image per repository)
//! planned by the built `prewarm` binary under the Lambda Runtime API emulator into a moto SQS
//! queue, then drained by W workers of the same binary through the local event source mapping
//! (`ptc_tests::queue::drive`); then the same list, on a fresh stack, in ONE invocation with no
//! queue. Prints the planner's wall time and messages, the drain's invocations, messages,
//! failures and wall time, the outcomes in the run table, the one-process wall time and the
//! ratio, and each worker's peak RSS (VmHWM of its `prewarm` process). Asserts nothing.
//!
//!     cargo build --profile bench-fast -p prewarm
//!     cargo run --profile bench-fast -p prewarm --example bench_queue
//!
//! Settings (environment): PTC_BENCH_ENTRIES (20000), PTC_BENCH_PER_MESSAGE (10),
//! PTC_BENCH_WORKERS (MaximumConcurrency, 2), PTC_BENCH_BATCH (BatchSize, 5, the template's),
//! PTC_BENCH_TIMEOUT (the workers' function timeout, 120 s), PTC_BENCH_ONE_TIMEOUT (the one
//! invocation's, 900 s), PTC_BENCH_MAX_WALL (the drain's limit, 3600 s), PTC_BENCH_ONE=0 to
//! skip the one-process run, PTC_BENCH_BINARY (target/bench-fast/prewarm).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ptc_tests::lambda::Lambda;
use ptc_tests::queue::{DriverOptions, drive};
use ptc_tests::{Stack, repo_root};
use serde_json::{Value, json};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn schedule() -> Value {
    json!({"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012", "time": "2026-11-30T06:00:00Z", "region": "us-east-1", "resources": [], "detail": {}})
}

/// `(pid, ppid, comm)` of every process visible in /proc.
fn processes() -> Vec<(u32, u32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat[open + 1..close].to_owned();
        let ppid = stat[close + 2..].split_whitespace().nth(1)?.parse().ok()?;
        Some((pid, ppid, comm))
    })
    .collect()
}

/// This process's children now (each [`Lambda`] is one `unshare` child).
fn children() -> BTreeSet<u32> {
    let me = std::process::id();
    processes()
        .into_iter()
        .filter(|(_, ppid, _)| *ppid == me)
        .map(|(pid, _, _)| pid)
        .collect()
}

/// Start a Lambda and find its `unshare` child's PID (the one child that is new).
fn start(binary: &Path, env: &[(String, String)], timeout: u32) -> (Lambda, Option<u32>) {
    let before = children();
    let lambda = Lambda::start(binary, env, timeout);
    let new: Vec<u32> = children().difference(&before).copied().collect();
    (lambda, (new.len() == 1).then(|| new[0]))
}

/// VmHWM (KiB) of each `prewarm` process below `root` (walking the ppid chains).
fn prewarm_hwm_kib(root: u32) -> Vec<(u32, u64)> {
    let all = processes();
    let parent: HashMap<u32, u32> = all.iter().map(|(p, pp, _)| (*p, *pp)).collect();
    let below = |mut pid: u32| {
        for _ in 0..64 {
            match parent.get(&pid) {
                Some(&pp) if pp == root => return true,
                Some(&pp) if pp > 1 => pid = pp,
                _ => return false,
            }
        }
        false
    };
    all.iter()
        .filter(|(pid, _, comm)| comm == "prewarm" && below(*pid))
        .filter_map(|(pid, _, _)| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let kib = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((*pid, kib))
        })
        .collect()
}

fn rss_line(label: &str, pid: Option<u32>) -> String {
    let Some(root) = pid else {
        return format!("{label}: peak RSS not readable (its emulator's PID not found)");
    };
    match prewarm_hwm_kib(root).as_slice() {
        [] => format!("{label}: peak RSS not readable (no prewarm process below PID {root})"),
        found => found
            .iter()
            .map(|(pid, kib)| {
                format!(
                    "{label}: peak RSS (VmHWM of prewarm, PID {pid}) {:.1} MB (target < 40 MB)",
                    *kib as f64 * 1024.0 / 1e6
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// A fresh stack with the quay.io rule and `n` entries seeded; the list is written to a file
/// for `PTC_WATCH_LIST_URL` (20,000 entries do not fit in one environment variable).
async fn seeded_stack(n: usize, label: &str) -> (Stack, Vec<String>, PathBuf) {
    let stack = Stack::start();
    stack.create_rule("quay", "quay.io", None).await;
    let started = Instant::now();
    let images: Vec<String> = stack
        .seed_bench(n.div_ceil(50), 50)
        .await
        .into_iter()
        .take(n)
        .collect();
    println!(
        "[{label}] seeded {} entries ({} repositories of 50 tags) in {:.1} s (not counted)",
        images.len(),
        n.div_ceil(50),
        started.elapsed().as_secs_f64()
    );
    let list = std::env::temp_dir().join(format!(
        "ptc-bench-queue-{}-{label}.txt",
        std::process::id()
    ));
    std::fs::write(&list, images.join("\n") + "\n").expect("write the watch list");
    (stack, images, list)
}

fn base_env(stack: &Stack, list: &Path, namespace: &str) -> Vec<(String, String)> {
    let mut env = stack.env();
    env.extend([
        (
            "PTC_WATCH_LIST_URL".to_owned(),
            format!("file://{}", list.display()),
        ),
        ("PTC_DISCOVERY_DAYS".to_owned(), "0".to_owned()),
        ("PTC_METRICS_NAMESPACE".to_owned(), namespace.to_owned()),
    ]);
    env
}

/// Every terminal outcome of a run, counted by outcome (and the items seen), read through the
/// runs' store adapter (`RunStore::outcomes`, what `ptc runs` reads).
async fn outcomes(stack: &Stack, table: &str, run: &str) -> (BTreeMap<String, u64>, usize) {
    use ptc_core::queue::RunStore as _;
    let store = ptc_core::aws::SdkRunStore::new(stack.dynamodb().await, table);
    let run = ptc_core::queue::RunId::try_from(run.to_owned()).expect("a run id");
    let all = store
        .outcomes(&run, 1_000_000)
        .await
        .expect("the run's outcomes");
    let items: BTreeSet<&str> = all.iter().map(|o| o.item.as_str()).collect();
    let mut counts = BTreeMap::new();
    for outcome in &all {
        *counts.entry(outcome.outcome.clone()).or_insert(0) += 1;
    }
    (counts, items.len())
}

/// The worker reports the functions logged (one JSON line per invocation).
fn worker_reports(pool: &[Lambda]) -> Vec<Value> {
    pool.iter()
        .flat_map(|l| {
            l.logs()
                .lines()
                .filter(|line| line.starts_with("{\"job\":\"prewarm\",\"messages\""))
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let n = setting("PTC_BENCH_ENTRIES", 20_000) as usize;
    let per_message = setting("PTC_BENCH_PER_MESSAGE", 10);
    let workers = setting("PTC_BENCH_WORKERS", 2) as usize;
    let batch = setting("PTC_BENCH_BATCH", 5) as i32;
    let timeout = setting("PTC_BENCH_TIMEOUT", 120) as u32;
    let one_timeout = setting("PTC_BENCH_ONE_TIMEOUT", 900) as u32;
    let max_wall = Duration::from_secs(setting("PTC_BENCH_MAX_WALL", 3600));
    let binary = std::env::var("PTC_BENCH_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target/bench-fast/prewarm"));
    assert!(
        binary.exists(),
        "{} not built: cargo build --profile bench-fast -p prewarm",
        binary.display()
    );
    println!(
        "prewarm on the work queue through the local stack: {n} entries, {per_message} a message, BatchSize {batch}, MaximumConcurrency {workers}, function timeout {timeout} s; binary {}",
        binary.display()
    );

    // On the queue.
    let (stack, images, list) = seeded_stack(n, "queue").await;
    let queue = stack.create_work_queue(6 * timeout, 5).await;
    let table = stack.create_run_table().await;
    let mut env = base_env(&stack, &list, "PtcBenchQueue");
    env.extend([
        ("PTC_WORK_QUEUE_URL".to_owned(), queue.url.clone()),
        ("PTC_WORK_DLQ_URL".to_owned(), queue.dlq_url.clone()),
        ("PTC_RUN_TABLE".to_owned(), table.clone()),
        (
            "PTC_QUEUE_IMAGES_PER_MESSAGE".to_owned(),
            per_message.to_string(),
        ),
    ]);
    let (planner, planner_pid) = start(&binary, &env, timeout);
    let started = Instant::now();
    let plan = planner.invoke(&schedule()).await;
    let plan_wall = started.elapsed().as_secs_f64();
    let Some(run) = plan["run"].as_str().map(str::to_owned) else {
        println!("no run planned: {plan}");
        return;
    };
    println!("planner");
    println!("  wall time (one invocation)      {plan_wall:.2} s");
    println!(
        "  entries planned / messages sent / not queued   {} / {} / {}",
        plan["planned"], plan["messages"], plan["not_queued"]
    );
    println!("  {}", rss_line("planner", planner_pid));
    drop(planner);

    let pool: Vec<(Lambda, Option<u32>)> = (0..workers)
        .map(|_| start(&binary, &env, timeout))
        .collect();
    let lambdas: Vec<Lambda>;
    let pids: Vec<Option<u32>>;
    (lambdas, pids) = pool.into_iter().unzip();
    let sqs = stack.sqs().await;
    let stats = drive(
        &sqs,
        &queue,
        &lambdas,
        &DriverOptions {
            batch_size: batch,
            maximum_concurrency: workers,
            max_wall,
            idle_polls: 2,
        },
    )
    .await;
    let drain_wall = stats.elapsed.as_secs_f64();
    let reports = worker_reports(&lambdas);
    let settled = |field: &str| -> u64 {
        reports
            .iter()
            .map(|r| r["settled"][field].as_u64().unwrap_or(0))
            .sum()
    };
    let busy: Vec<f64> = stats
        .invocation_spans
        .iter()
        .filter_map(|s| s.end.map(|e| (e - s.start).as_secs_f64()))
        .collect();
    println!("queue (the local event source mapping)");
    println!(
        "  wall time of the drain          {drain_wall:.1} s{}",
        if stats.timed_out {
            " (stopped at PTC_BENCH_MAX_WALL)"
        } else {
            ""
        }
    );
    println!(
        "  invocations                     {} ({} reports logged; mean {:.1} s, max {:.1} s each; at most {} at once)",
        stats.invocations,
        reports.len(),
        busy.iter().sum::<f64>() / busy.len().max(1) as f64,
        busy.iter().cloned().fold(0.0, f64::max),
        stats.max_in_flight_invocations
    );
    println!(
        "  messages received / deleted     {} / {} ({} polls, {} empty)",
        stats.messages_received, stats.deleted, stats.polls, stats.empty_polls
    );
    println!(
        "  batch item failures / function errors / invalid answers   {} / {} / {}",
        stats.batch_item_failures, stats.function_errors, stats.invalid_responses
    );
    println!(
        "  settled: recorded {} duplicates {} deadline {} rate-limited {} retried {} dead-lettered {}",
        settled("recorded"),
        settled("duplicates"),
        settled("deadline"),
        settled("rate_limited"),
        settled("retried"),
        settled("dead_lettered")
    );
    let (counts, items) = outcomes(&stack, &table, &run).await;
    println!(
        "  run table: {items} of {} entries with an outcome; by outcome {counts:?}",
        images.len()
    );
    println!("  dead-letter queue: {:?}", queue.dlq_depth(&sqs).await);
    for (i, pid) in pids.iter().enumerate() {
        println!("  {}", rss_line(&format!("worker {}", i + 1), *pid));
    }
    let queue_wall = plan_wall + drain_wall;
    drop(lambdas);
    drop(stack);
    let _ = std::fs::remove_file(&list);

    if setting("PTC_BENCH_ONE", 1) == 0 {
        return;
    }
    // The same list in one process, on a fresh stack (an empty cache, as the queue had).
    let (stack, _, list) = seeded_stack(n, "one").await;
    let env = base_env(&stack, &list, "PtcBenchOne");
    let (one, one_pid) = start(&binary, &env, one_timeout);
    let started = Instant::now();
    let answer = one.invoke(&schedule()).await;
    let one_wall = started.elapsed().as_secs_f64();
    println!("one process (one invocation, no queue, function timeout {one_timeout} s)");
    println!("  wall time                       {one_wall:.1} s");
    if answer["summary"].is_object() {
        println!("  summary                         {}", answer["summary"]);
    } else {
        let text = answer.to_string();
        println!(
            "  answer (no summary)             {}",
            &text[..text.len().min(400)]
        );
    }
    println!("  {}", rss_line("one process", one_pid));
    println!(
        "queue / one process: {queue_wall:.1} s (plan + drain) / {one_wall:.1} s = {:.2}x",
        queue_wall / one_wall
    );
    drop(one);
    let _ = std::fs::remove_file(&list);
}
