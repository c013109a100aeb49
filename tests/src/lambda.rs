//! A real Lambda Runtime API for function tests: the AWS Lambda Runtime Interface Emulator
//! (from the aws-sam-cli wheel, installed by scripts/setup.sh) runs a function binary as its
//! bootstrap, bound to 127.0.0.1, and takes invocations over HTTP as Lambda would.
//!
//! The emulator behaves as the init of a Lambda sandbox: when it resets a runtime it kills
//! every process it can see. Run as root on a shared machine that would be every process
//! there, so it always runs in its own PID namespace (`unshare --pid`), where it can only
//! see itself and the function. Dropping the harness kills `unshare`, which takes the
//! namespace down with it.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::repo_root;

pub struct Lambda {
    child: Child,
    invoke_url: String,
    http: reqwest::Client,
    pub log_path: std::path::PathBuf,
}

/// A port free now for the emulator to bind, outside the kernel's ephemeral range
/// (32768-60999) so that no outgoing connection of the tests can take it before the emulator
/// binds it (the stack's `ports.py` does the same for its servers).
fn free_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new();
    (0u64..500)
        .map(|i| 20_000 + (random.hash_one(i) % 12_000) as u16)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free loopback port between 20000 and 32000")
}

impl Lambda {
    /// Start `binary` under the emulator with `env` and a function timeout in seconds.
    pub fn start(binary: &Path, env: &[(String, String)], timeout_secs: u32) -> Self {
        let rie = repo_root().join(".venv/bin/aws-lambda-rie");
        assert!(
            rie.exists(),
            "Lambda Runtime API: {} not found; run scripts/setup.sh (the README's test command does)",
            rie.display()
        );
        assert!(
            binary.exists(),
            "function binary {} not built",
            binary.display()
        );
        let invoke_port = free_port();
        let api_port = free_port();
        let log_path = std::env::temp_dir().join(format!(
            "ptc-lambda-{}-{invoke_port}.log",
            std::process::id()
        ));
        let log = std::fs::File::create(&log_path).expect("lambda log file");
        let name = binary
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("function")
            .to_owned();
        let mut command = Command::new("unshare");
        command
            .args(["--pid", "--fork", "--kill-child", "--mount-proc"])
            .arg(&rie)
            .arg("--runtime-interface-emulator-address")
            .arg(format!("127.0.0.1:{invoke_port}"))
            .arg("--runtime-api-address")
            .arg(format!("127.0.0.1:{api_port}"))
            .arg(binary)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_FUNCTION_TIMEOUT", timeout_secs.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("LOG_LEVEL", "error")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        let mut child = command
            .spawn()
            .expect("start aws-lambda-rie in its own PID namespace (unshare from util-linux)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", invoke_port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "aws-lambda-rie exited with {status} (unshare --pid needs root or user namespaces): {}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "aws-lambda-rie did not listen within 20 s; log {}",
                log_path.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            invoke_url: format!(
                "http://127.0.0.1:{invoke_port}/2015-03-31/functions/function/invocations"
            ),
            http: reqwest::Client::new(),
            log_path,
        }
    }

    /// Invoke with an event; returns the function's JSON answer (or its error document).
    pub async fn invoke(&self, event: &serde_json::Value) -> serde_json::Value {
        let response = self
            .http
            .post(&self.invoke_url)
            .json(event)
            .timeout(Duration::from_secs(900))
            .send()
            .await
            .expect("invoke through the Runtime API");
        let text = response.text().await.expect("invocation answer");
        serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("invocation answer is not JSON: {text}"))
    }

    /// What the function logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Lambda {
    fn drop(&mut self) {
        // SIGKILL to unshare: --kill-child then ends the namespace's init, and with it the
        // function.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

/// The error document of an invocation whose run had run-level errors
/// (`ptc_core::RunFailed`): its message, after checking the stable `errorType`.
pub fn run_failed(answer: &serde_json::Value) -> &str {
    assert_eq!(
        answer["errorType"],
        ptc_core::RunFailed::ERROR_TYPE,
        "the invocation fails with a RunFailed error: {answer}"
    );
    answer["errorMessage"]
        .as_str()
        .unwrap_or_else(|| panic!("an errorMessage: {answer}"))
}
