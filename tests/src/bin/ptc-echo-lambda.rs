//! A minimal Lambda function for testing the Runtime API harness: echoes its event with the
//! invocation's request id and time left, and fails when asked to.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .init();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        if event.payload.get("fail").is_some() {
            return Err(Error::from("asked to fail"));
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as u64;
        tracing::info!(request_id = %event.context.request_id, "echo");
        Ok::<_, Error>(json!({
            "echo": event.payload,
            "request_id": event.context.request_id,
            "deadline_in_ms": event.context.deadline.saturating_sub(now_ms),
            "stack_endpoint": std::env::var("PTC_AWS_ENDPOINT_URL").ok(),
        }))
    }))
    .await
}
