//! The Runtime API harness itself: a function binary runs under the real emulator and
//! answers invocations, errors and deadlines as in Lambda.

use ptc_tests::lambda::Lambda;
use serde_json::json;

fn echo() -> Lambda {
    let env = vec![(
        "PTC_AWS_ENDPOINT_URL".to_owned(),
        "http://127.0.0.1:1".to_owned(),
    )];
    Lambda::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_ptc-echo-lambda")),
        &env,
        7,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_answers_through_the_runtime_api() {
    let lambda = echo();
    let event = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let answer = lambda.invoke(&event).await;
    assert_eq!(answer["echo"], event);
    assert!(!answer["request_id"].as_str().unwrap().is_empty());
    let left = answer["deadline_in_ms"].as_u64().unwrap();
    assert!(
        left > 5_000 && left <= 7_000,
        "deadline from the function timeout: {left} ms"
    );
    assert_eq!(answer["stack_endpoint"], "http://127.0.0.1:1");
    // A second invocation reuses the same process.
    let again = lambda.invoke(&json!({"n": 2})).await;
    assert_eq!(again["echo"]["n"], 2);
    assert!(
        lambda.logs().contains("\"echo\""),
        "JSON logs reach the log: {}",
        lambda.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_error_comes_back_as_an_error_document() {
    let lambda = echo();
    let answer = lambda.invoke(&json!({"fail": true})).await;
    assert_eq!(answer["errorMessage"], "asked to fail");
    assert!(answer["errorType"].is_string());
}
