//! `ptc prewarm --enqueue` and `ptc runs` against the local stack (issue 19): a run planned
//! into the work queue, a second planner that enqueues nothing while it is in flight, the run
//! followed, then worked off by the prewarm function binary under the Lambda Runtime
//! Interface Emulator (driven by `ptc_tests::queue::drive`, Lambda's SQS event source mapping
//! played against moto), and shown finished.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use ptc_tests::lambda::Lambda;
use ptc_tests::queue::{DriverOptions, drive};
use ptc_tests::{Stack, repo_root, unique};

const IMAGES: [&str; 3] = [
    "quay.io/coreos/etcd:v3.5.13",
    "quay.io/jetstack/cert-manager-controller:v1.14.4",
    "registry.k8s.io/pause:3.9",
];

/// The prewarm function binary, built in this target directory (the test's own executable is
/// `<target>/debug/deps/queue_cli-*`): `cargo test -p ptc-cli` does not build another
/// package's binaries, so it is built here (cargo does not hold the build lock while tests
/// run).
fn prewarm_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("<target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("<target>");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "prewarm", "--bin", "prewarm"])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(repo_root())
        .status()
        .expect("run cargo build -p prewarm");
    assert!(status.success(), "cargo build -p prewarm: {status}");
    let binary = profile_dir.join("prewarm");
    assert!(binary.exists(), "{} not built", binary.display());
    binary
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

/// `ptc` with `env` on a blocking thread (the stack's runtime keeps running).
async fn ptc(args: Vec<String>, env: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        common::ptc(Stack::shared(), &args, &env)
    })
    .await
    .unwrap()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_is_enqueued_followed_and_worked_off() {
    let stack = Stack::shared();
    stack.create_rule("quay", "quay.io", None).await;
    stack.create_rule("k8s", "registry.k8s.io", None).await;
    let queue = stack.create_work_queue(60, 3).await;
    let table = stack.create_run_table().await;
    let sqs = stack.sqs().await;
    let namespace = format!("PtcCliQueue{}", unique());
    let env = vec![
        ("PTC_WORK_QUEUE_URL".to_owned(), queue.url.clone()),
        ("PTC_WORK_DLQ_URL".to_owned(), queue.dlq_url.clone()),
        ("PTC_RUN_TABLE".to_owned(), table.clone()),
        ("PTC_QUEUE_IMAGES_PER_MESSAGE".to_owned(), "1".to_owned()),
        ("PTC_METRICS_NAMESPACE".to_owned(), namespace.clone()),
        // A full run (the settings' list, no payload) holds the job's lease.
        ("PTC_WATCH_LIST".to_owned(), IMAGES.join(",")),
        ("PTC_DISCOVERY_DAYS".to_owned(), "0".to_owned()),
    ];
    let enqueue = strings(&["prewarm", "--enqueue"]);

    // Planned: one message per image (1 per message), nothing warmed here.
    let planned = ptc(enqueue, env.clone()).await;
    assert_eq!(planned.status.code(), Some(0), "{}", text(&planned));
    let out = stdout(&planned);
    let run = out
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("run "))
        .and_then(|l| l.strip_suffix(" planned"))
        .unwrap_or_else(|| panic!("no run id: {out}"))
        .to_owned();
    assert!(run.starts_with("prewarm-"), "{out}");
    assert!(
        out.contains(&format!(
            "3 entries planned, 3 messages sent to {}",
            queue.url
        )),
        "{out}"
    );
    let depth = queue.depth(&sqs).await;
    assert_eq!(depth.visible, 3, "{depth:?}");

    // A second planner of the whole list while the run is in flight enqueues nothing and
    // names the run (an `--image` list would plan its images alone, beside it).
    let second = ptc(strings(&["prewarm", "--enqueue"]), env.clone()).await;
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert!(
        stdout(&second).contains(&format!("run {run} is in flight: nothing was enqueued")),
        "{}",
        text(&second)
    );
    let second_json = ptc(
        strings(&["prewarm", "--enqueue", "--output", "json"]),
        env.clone(),
    )
    .await;
    let report = json(&second_json);
    assert_eq!(report["in_flight"], run.as_str(), "{report:#}");
    assert!(report.get("run").is_none(), "{report:#}");
    assert_eq!(report["messages"], 0, "{report:#}");
    assert_eq!(queue.depth(&sqs).await.visible, 3);

    // The run in the list and in detail, human and JSON.
    let list = ptc(strings(&["runs"]), env.clone()).await;
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    let line = stdout(&list)
        .lines()
        .find(|l| l.starts_with(&run))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{}", text(&list)));
    assert!(
        line.contains("ptc prewarm --enqueue")
            && line.contains("0/3")
            && line.contains("in progress"),
        "{line}"
    );
    let list = json(
        &ptc(
            strings(&["runs", "--output", "json", "--limit", "5"]),
            env.clone(),
        )
        .await,
    );
    assert_eq!(list["runs"][0]["run"], run.as_str(), "{list:#}");
    assert_eq!(list["runs"][0]["planned"], 3, "{list:#}");

    let detail = ptc(strings(&["runs", &run]), env.clone()).await;
    assert_eq!(detail.status.code(), Some(0), "{}", text(&detail));
    let out = stdout(&detail);
    for want in [
        "progress  0 of 3 entries done (0%), 3 messages sent",
        "state     in progress",
        "queue     3 visible, 0 in flight, 0 delayed",
        "3 entries without an outcome yet",
    ] {
        assert!(out.contains(want), "{want:?} in\n{out}");
    }
    let record = json(&ptc(strings(&["runs", &run, "--output", "json"]), env.clone()).await);
    assert_eq!(record["planned"], 3, "{record:#}");
    assert_eq!(record["done"], 0, "{record:#}");
    assert_eq!(record["state"], "in progress", "{record:#}");
    assert_eq!(record["queue"]["visible"], 3, "{record:#}");

    // The workers: the prewarm binary, two at once, batches of 10, as the template maps it.
    let binary = tokio::task::spawn_blocking(prewarm_binary).await.unwrap();
    let mut lambda_env = stack.env();
    lambda_env.extend(env.iter().cloned());
    let lambdas: Vec<Lambda> = (0..2)
        .map(|_| Lambda::start(&binary, &lambda_env, 60))
        .collect();
    let stats = drive(
        &sqs,
        &queue,
        &lambdas,
        &DriverOptions {
            max_wall: Duration::from_secs(240),
            ..DriverOptions::default()
        },
    )
    .await;
    assert!(
        !stats.timed_out && stats.function_errors == 0,
        "{stats:?}\n{}",
        lambdas.iter().map(Lambda::logs).collect::<String>()
    );
    assert!(queue.depth(&sqs).await.is_empty());
    assert!(queue.dlq_depth(&sqs).await.is_empty());

    // Finished: every entry has its outcome.
    let detail = ptc(strings(&["runs", &run]), env.clone()).await;
    assert_eq!(detail.status.code(), Some(0), "{}", text(&detail));
    let out = stdout(&detail);
    for want in [
        "progress  3 of 3 entries done (100%)",
        "state     finished ",
        "queue     0 visible, 0 in flight, 0 delayed",
        "3 entries: 3 warmed",
    ] {
        assert!(out.contains(want), "{want:?} in\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("quay ") && l.contains(" 2 ")),
        "{out}"
    );
    let record = json(&ptc(strings(&["runs", &run, "--output", "json"]), env.clone()).await);
    assert_eq!(record["done"], record["planned"], "{record:#}");
    assert_eq!(record["state"], "finished", "{record:#}");
    assert!(record["finished_at"].is_i64(), "{record:#}");
    assert_eq!(record["counts"]["quay"]["warmed"], 2, "{record:#}");
    assert_eq!(record["counts"]["k8s"]["warmed"], 1, "{record:#}");
    assert_eq!(record["totals"]["coverage_percent"], 100.0, "{record:#}");
    let list = ptc(strings(&["runs"]), env.clone()).await;
    assert!(
        stdout(&list)
            .lines()
            .any(|l| l.starts_with(&run) && l.contains("3/3") && l.contains("finished")),
        "{}",
        text(&list)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_run_table_the_missing_place_is_named_in_one_line() {
    let no_table = |args: &[&str]| {
        let args = strings(args);
        async move {
            tokio::task::spawn_blocking(move || {
                Command::new(env!("CARGO_BIN_EXE_ptc"))
                    .args(&args)
                    .env_remove("PTC_CONFIG_FILE")
                    .env_remove("PTC_RUN_TABLE")
                    .env_remove("PTC_WORK_QUEUE_URL")
                    .env_remove("PTC_WORK_DLQ_URL")
                    .env_remove("AWS_PROFILE")
                    .env("AWS_EC2_METADATA_DISABLED", "true")
                    .envs(Stack::shared().env())
                    .output()
                    .expect("run ptc")
            })
            .await
            .unwrap()
        }
    };
    let runs = no_table(&["runs"]).await;
    assert_eq!(runs.status.code(), Some(2), "{}", text(&runs));
    assert_eq!(
        String::from_utf8_lossy(&runs.stderr),
        "ptc: ptc runs needs the runs' table: missing --run-table (or PTC_RUN_TABLE)\n"
    );
    assert!(runs.stdout.is_empty());
    let enqueue = no_table(&[
        "prewarm",
        "--enqueue",
        "--image",
        "quay.io/coreos/etcd:v3.5.13",
        "--queue-url",
        "http://127.0.0.1:9/123456789012/q",
        "--dead-letter-url",
        "http://127.0.0.1:9/123456789012/d",
    ])
    .await;
    assert_eq!(enqueue.status.code(), Some(2), "{}", text(&enqueue));
    assert_eq!(
        String::from_utf8_lossy(&enqueue.stderr),
        "ptc: ptc prewarm --enqueue needs the work queue: missing --run-table (or PTC_RUN_TABLE)\n"
    );
}
