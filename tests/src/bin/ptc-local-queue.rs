//! `ptc-local-queue`: the work queue's event source on the local stack (issue 19), for the
//! demo and for working a queued run off by hand.
//!
//! ```text
//! ptc-local-queue --queue-url URL --dead-letter-url URL --function PATH [--run-table TABLE]
//!     [--concurrency N] [--batch-size N] [--timeout-secs N] [--max-wall-secs N]
//! ```
//!
//! It starts N Lambda Runtime Interface Emulators ([`Lambda`]) of the function binary, with
//! this process's environment (the stack's settings: `PTC_AWS_ENDPOINT_URL`, `PTC_REGION`,
//! `PTC_REGISTRY_ENDPOINT`, ...) plus `PTC_WORK_QUEUE_URL` and `PTC_WORK_DLQ_URL` from the
//! flags (and `PTC_RUN_TABLE` from `--run-table` when given), and plays Lambda's SQS event
//! source mapping ([`drive`]) until the queue is empty (visible, in flight and delayed all 0)
//! or `--max-wall-secs` passes. It prints the driver's summary. Exit code 0 when the queue
//! was emptied, 1 when the wall time ran out first, 2 for bad arguments.
//!
//! The SQS calls go to `PTC_AWS_ENDPOINT_URL` (required: this is a local-stack tool) in
//! `PTC_REGION` (else `AWS_REGION`), with `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`
//! (moto takes any).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aws_sdk_sqs::config::Credentials;
use aws_sdk_sqs::types::QueueAttributeName;
use ptc_tests::lambda::Lambda;
use ptc_tests::queue::{DriverOptions, WorkQueue, drive};

const USAGE: &str = "usage: ptc-local-queue --queue-url URL --dead-letter-url URL --function PATH [--run-table TABLE] [--concurrency N] [--batch-size N] [--timeout-secs N] [--max-wall-secs N]";

#[derive(Debug)]
struct Args {
    queue_url: String,
    dead_letter_url: String,
    function: PathBuf,
    run_table: Option<String>,
    concurrency: usize,
    batch_size: i32,
    timeout_secs: u32,
    max_wall_secs: u64,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut queue_url = None;
    let mut dead_letter_url = None;
    let mut function = None;
    let mut run_table = None;
    let mut concurrency = 2usize;
    let mut batch_size = 10i32;
    let mut timeout_secs = 60u32;
    let mut max_wall_secs = 600u64;
    while let Some(flag) = argv.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_owned());
        }
        let value = argv
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |min: u64, max: u64| -> Result<u64, String> {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| format!("{flag} {value}: not a number {min}-{max}"))
        };
        match flag.as_str() {
            "--queue-url" => queue_url = Some(value),
            "--dead-letter-url" => dead_letter_url = Some(value),
            "--function" => function = Some(value),
            "--run-table" => run_table = Some(value),
            "--concurrency" => concurrency = number(1, 100)? as usize,
            "--batch-size" => batch_size = number(1, 10)? as i32,
            "--timeout-secs" => timeout_secs = number(1, 900)? as u32,
            "--max-wall-secs" => max_wall_secs = number(1, 86_400)?,
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let need = |v: Option<_>, name: &str| v.ok_or_else(|| format!("{name} is required\n{USAGE}"));
    Ok(Args {
        queue_url: need(queue_url, "--queue-url")?,
        dead_letter_url: need(dead_letter_url, "--dead-letter-url")?,
        function: PathBuf::from(need(function, "--function")?),
        run_table,
        concurrency,
        batch_size,
        timeout_secs,
        max_wall_secs,
    })
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| {
            format!(
                "GetQueueAttributes {url}: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| format!("GetQueueAttributes {url}: no QueueArn"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(why) => {
            eprintln!("ptc-local-queue: {why}");
            return ExitCode::from(2);
        }
    };
    let Some(endpoint) = var("PTC_AWS_ENDPOINT_URL") else {
        eprintln!("ptc-local-queue: PTC_AWS_ENDPOINT_URL is not set (the local stack's AWS API)");
        return ExitCode::from(2);
    };
    let region = var("PTC_REGION")
        .or_else(|| var("AWS_REGION"))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let credentials = Credentials::new(
        var("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "testing".into()),
        var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "testing".into()),
        var("AWS_SESSION_TOKEN"),
        None,
        "ptc-local-queue",
    );
    let sdk = ptc_tests::sdk_config_with(&endpoint, &region, credentials).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (arn, dlq_arn) = match (
        queue_arn(&sqs, &args.queue_url).await,
        queue_arn(&sqs, &args.dead_letter_url).await,
    ) {
        (Ok(a), Ok(d)) => (a, d),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("ptc-local-queue: {e}");
            return ExitCode::from(2);
        }
    };
    let queue = WorkQueue {
        url: args.queue_url.clone(),
        arn,
        dlq_url: args.dead_letter_url.clone(),
        dlq_arn,
    };
    if !args.function.exists() {
        eprintln!(
            "ptc-local-queue: --function {}: no such file (build it: cargo build -p prewarm)",
            args.function.display()
        );
        return ExitCode::from(2);
    }
    // The process's environment is inherited by the emulators; the queue's places are the
    // flags'.
    let mut env = vec![
        ("PTC_WORK_QUEUE_URL".to_owned(), args.queue_url.clone()),
        ("PTC_WORK_DLQ_URL".to_owned(), args.dead_letter_url.clone()),
    ];
    if let Some(table) = &args.run_table {
        env.push(("PTC_RUN_TABLE".to_owned(), table.clone()));
    }
    let lambdas: Vec<Lambda> = (0..args.concurrency)
        .map(|_| Lambda::start(&args.function, &env, args.timeout_secs))
        .collect();
    println!(
        "ptc-local-queue: {} x {} under the Lambda Runtime Interface Emulator, batches of up to {}, working {}",
        args.concurrency,
        args.function.display(),
        args.batch_size,
        queue.url
    );
    let options = DriverOptions {
        batch_size: args.batch_size,
        maximum_concurrency: args.concurrency,
        max_wall: Duration::from_secs(args.max_wall_secs),
        ..DriverOptions::default()
    };
    let stats = drive(&sqs, &queue, &lambdas, &options).await;
    let dlq = queue.dlq_depth(&sqs).await;
    println!(
        "{} invocations, {} messages received, {} deleted, {} batch item failures, {} function errors, {} invalid answers; {:.1} s; dead-letter queue: {} messages",
        stats.invocations,
        stats.messages_received,
        stats.deleted,
        stats.batch_item_failures,
        stats.function_errors,
        stats.invalid_responses,
        stats.elapsed.as_secs_f64(),
        dlq.visible + dlq.in_flight + dlq.delayed
    );
    if stats.function_errors > 0 || stats.invalid_responses > 0 {
        for lambda in &lambdas {
            eprintln!("function log: {}", lambda.log_path.display());
        }
    }
    if stats.timed_out {
        let left = queue.depth(&sqs).await;
        eprintln!(
            "ptc-local-queue: stopped after --max-wall-secs {}: {} visible, {} in flight, {} delayed left",
            args.max_wall_secs, left.visible, left.in_flight, left.delayed
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn flags_parse_with_defaults_and_bad_ones_are_named() {
        let a = args(&[
            "--queue-url",
            "q",
            "--dead-letter-url",
            "d",
            "--function",
            "f",
            "--batch-size",
            "5",
        ])
        .unwrap();
        assert_eq!((a.concurrency, a.batch_size, a.timeout_secs), (2, 5, 60));
        assert!(
            args(&["--queue-url", "q"])
                .unwrap_err()
                .contains("--dead-letter-url is required")
        );
        assert!(
            args(&["--batch-size", "11"])
                .unwrap_err()
                .contains("--batch-size 11")
        );
        assert!(
            args(&["--what", "x"])
                .unwrap_err()
                .contains("unknown argument --what")
        );
    }
}
