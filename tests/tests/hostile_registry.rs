//! The registry client against hostile servers: small HTTP/1.1 servers on 127.0.0.1 and
//! 127.0.0.2 (two origins on loopback) that answer what an attacker, or a very bad day,
//! would. Each test asserts what must not happen: no secret byte at a foreign listener, a
//! bounded number of bytes read and requests made, an error that names the cause.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use ptc_core::Digest;
use ptc_core::oci::{
    CredentialSource, Credentials, Descriptor, MAX_MANIFEST_DESCRIPTORS, Manifest, RegistryClient,
    RegistryError, RetryPolicy, http_client, known_token_hosts,
};
use ptc_core::secret::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECRET: &str = "dckr_pat_hostile_test_secret";
const MIB: u64 = 1024 * 1024;

/// What a hostile server answers to one request.
#[derive(Clone)]
enum Reply {
    Fixed {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `bytes` bytes of body, sent until the client stops reading (no Content-Length).
    Stream {
        status: u16,
        headers: Vec<(String, String)>,
        bytes: u64,
    },
}

fn fixed(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
    Reply::Fixed {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

struct Server {
    base: String,
    /// Each request's head (request line and headers), as received.
    requests: Arc<Mutex<Vec<String>>>,
    /// Body bytes the server managed to send.
    sent: Arc<AtomicU64>,
}

impl Server {
    /// Serve on `ip` (a loopback address) with `reply(head, base)` for each request.
    async fn start(ip: &str, reply: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind on loopback");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let (reply, base_for, requests_for, sent_for) = (
            Arc::new(reply),
            base.clone(),
            requests.clone(),
            sent.clone(),
        );
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (reply, base, requests, sent) = (
                    reply.clone(),
                    base_for.clone(),
                    requests_for.clone(),
                    sent_for.clone(),
                );
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    requests.lock().unwrap().push(head.clone());
                    let write_head =
                        |status: u16, headers: &[(String, String)], len: Option<usize>| {
                            let mut text = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
                            for (k, v) in headers {
                                text.push_str(&format!("{k}: {v}\r\n"));
                            }
                            if let Some(len) = len {
                                text.push_str(&format!("Content-Length: {len}\r\n"));
                            }
                            text.push_str("\r\n");
                            text
                        };
                    match reply(&head, &base) {
                        Reply::Fixed {
                            status,
                            headers,
                            body,
                        } => {
                            let text = write_head(status, &headers, Some(body.len()));
                            let _ = socket.write_all(text.as_bytes()).await;
                            if socket.write_all(&body).await.is_ok() {
                                sent.fetch_add(body.len() as u64, Ordering::Relaxed);
                            }
                        }
                        Reply::Stream {
                            status,
                            headers,
                            bytes,
                        } => {
                            let text = write_head(status, &headers, None);
                            if socket.write_all(text.as_bytes()).await.is_err() {
                                return;
                            }
                            let chunk = vec![b'x'; 64 * 1024];
                            let mut left = bytes;
                            while left > 0 {
                                let n = left.min(chunk.len() as u64) as usize;
                                if socket.write_all(&chunk[..n]).await.is_err() {
                                    break;
                                }
                                sent.fetch_add(n as u64, Ordering::Relaxed);
                                left -= n as u64;
                            }
                        }
                    }
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self {
            base,
            requests,
            sent,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// The binary's stack, with the seed rules created once.
async fn seeded_stack() -> &'static ptc_tests::Stack {
    static SEEDED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let stack = ptc_tests::Stack::shared();
    SEEDED.get_or_init(|| common::seed_rules(stack)).await;
    stack
}

/// The descriptor of a layer whose content is `content`, claiming `size` bytes.
fn layer_of(content: &[u8], size: u64) -> Descriptor {
    Descriptor {
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        digest: Digest::sha256_of(content),
        size,
        platform: None,
    }
}

/// A 401 whose Bearer challenge names `realm`.
fn challenge(realm: &str) -> Reply {
    fixed(
        401,
        &[("WWW-Authenticate", &format!(r#"Bearer realm="{realm}""#))],
        "",
    )
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_retries: 4,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

fn basic(username: &str, password: &str) -> Arc<dyn CredentialSource> {
    Arc::new(Credentials::Basic {
        username: username.into(),
        password: Secret::new(password.into()),
    })
}

fn client(base: &str, credentials: Arc<dyn CredentialSource>) -> RegistryClient {
    RegistryClient::new(
        http_client(Duration::from_secs(20)).unwrap(),
        base,
        credentials,
    )
    .with_retry(quick())
}

/// No trace of the secret in what a listener received: the text, its Basic encoding.
fn assert_no_secret(requests: &[String], user: &str) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{SECRET}"));
    for request in requests {
        assert!(
            !request.contains(SECRET) && !request.contains(&encoded),
            "the secret reached a foreign host:\n{request}"
        );
        assert!(
            !request
                .to_ascii_lowercase()
                .contains("authorization: basic"),
            "Basic credentials reached a foreign host:\n{request}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_realm_on_another_host_never_receives_a_credential() {
    // The upstream credential (Docker Hub shape) and the ECR registry token (`AWS:<token>`,
    // a client with no token services): neither goes to a realm the registry names elsewhere.
    for (user, token_hosts) in [
        ("dockeruser", known_token_hosts("quay.io")),
        ("AWS", &[][..]),
    ] {
        let foreign = Server::start("127.0.0.2", |_, _| {
            fixed(
                200,
                &[("Content-Type", "application/json")],
                r#"{"token":"anonymous"}"#,
            )
        })
        .await;
        let realm = format!("{}/token", foreign.base);
        let upstream = Server::start("127.0.0.1", move |_, _| {
            fixed(
                401,
                &[(
                    "WWW-Authenticate",
                    &format!(r#"Bearer realm="{realm}",service="registry""#),
                )],
                "",
            )
        })
        .await;
        let client = client(&upstream.base, basic(user, SECRET)).with_token_hosts(token_hosts);
        let err = client
            .get_manifest("library/nginx", "1.25")
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
        let at_foreign = foreign.requests();
        assert_eq!(
            at_foreign.len(),
            1,
            "one anonymous token request: {at_foreign:?}"
        );
        assert_no_secret(&at_foreign, user);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_registry_s_own_token_service_receives_it() {
    let registry = Server::start("127.0.0.1", |head, base| {
        if head.starts_with("GET /token") {
            fixed(200, &[], r#"{"token":"granted"}"#)
        } else if head.contains("Bearer granted") {
            fixed(
                404,
                &[],
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}"#,
            )
        } else {
            fixed(
                401,
                &[(
                    "WWW-Authenticate",
                    &format!(r#"Bearer realm="{base}/token",service="registry""#),
                )],
                "",
            )
        }
    })
    .await;
    let err = client(&registry.base, basic("u", SECRET))
        .get_manifest("a/b", "1")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    let token_request = registry
        .requests()
        .into_iter()
        .find(|r| r.starts_with("GET /token"))
        .expect("a token request");
    assert!(
        token_request
            .to_ascii_lowercase()
            .contains("authorization: basic"),
        "same origin: the credential is used\n{token_request}"
    );
    // Docker Hub's documented token service is the one host besides its own.
    assert_eq!(
        known_token_hosts("registry-1.docker.io"),
        ["auth.docker.io"]
    );
    assert!(known_token_hosts("ghcr.io").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_realm_that_is_not_https_off_loopback_or_not_http_is_refused_once() {
    for realm in ["http://registry.example.com/token", "ftp://127.0.0.2/token"] {
        let realm_for = realm.to_owned();
        let upstream = Server::start("127.0.0.1", move |_, _| {
            fixed(
                401,
                &[(
                    "WWW-Authenticate",
                    &format!(r#"Bearer realm="{realm_for}""#),
                )],
                "",
            )
        })
        .await;
        let err = client(&upstream.base, basic("u", SECRET))
            .get_manifest("a/b", "1")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RegistryError::Refused { message, .. } if message.contains(realm)),
            "{realm}: {err}"
        );
        assert_eq!(upstream.requests().len(), 1, "{realm}: not retried");
    }
}

/// Start measuring this process's peak resident memory from now (Linux: writing 5 to
/// `/proc/self/clear_refs` resets `VmHWM`).
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_error_body_is_read_a_few_kib_per_attempt() {
    let upstream = Server::start("127.0.0.1", |_, _| Reply::Stream {
        status: 500,
        headers: Vec::new(),
        bytes: 300 * MIB,
    })
    .await;
    reset_peak_rss();
    let err = client(&upstream.base, basic("u", SECRET))
        .get_manifest("a/b", "1")
        .await
        .unwrap_err();
    let peak_mib = ptc_tests::peak_rss_kib() / 1024;
    println!("peak RSS of the test process during the run: {peak_mib} MiB");
    // Generous: the other tests of this binary run at the same time. Reading the bodies
    // whole took 300 MiB and more.
    assert!(peak_mib < 200, "peak RSS {peak_mib} MiB");
    assert!(
        matches!(err, RegistryError::Status { status: 500, .. }),
        "{err}"
    );
    assert_eq!(upstream.requests().len(), 5, "the first try and 4 retries");
    let sent = upstream.sent.load(Ordering::Relaxed);
    println!(
        "500 with 300 MiB bodies, 5 attempts: {} KiB sent before the client let go",
        sent / 1024
    );
    assert!(
        sent < 64 * MIB,
        "{sent} bytes sent: the client read the bodies"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_token_answer_is_refused() {
    let registry = Server::start("127.0.0.1", |head, base| {
        if head.starts_with("GET /token") {
            Reply::Stream {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                bytes: 300 * MIB,
            }
        } else {
            challenge(&format!("{base}/token"))
        }
    })
    .await;
    let err = client(&registry.base, basic("u", SECRET))
        .get_manifest("a/b", "1")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::Refused { message, .. } if message.contains("larger than")),
        "{err}"
    );
    let sent = registry.sent.load(Ordering::Relaxed);
    println!("token answer of 300 MiB: {} KiB sent", sent / 1024);
    assert!(sent < 64 * MIB, "{sent} bytes sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_longer_than_its_descriptor_is_cut_off() {
    let upstream = Server::start("127.0.0.1", |_, _| Reply::Stream {
        status: 200,
        headers: Vec::new(),
        bytes: 200 * MIB,
    })
    .await;
    let descriptor = layer_of(b"x", 100);
    let err = client(&upstream.base, basic("u", SECRET))
        .get_blob("a/b", &descriptor)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::Refused { message, .. } if message.contains("100 bytes")),
        "{err}"
    );
    assert_eq!(upstream.requests().len(), 1, "not retried");
    let sent = upstream.sent.load(Ordering::Relaxed);
    println!(
        "blob of 200 MiB for a 100-byte descriptor: {} KiB sent",
        sent / 1024
    );
    assert!(sent < 64 * MIB, "{sent} bytes sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_loop_fails_once_without_retries() {
    let upstream = Server::start("127.0.0.1", |head, _| {
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        fixed(302, &[("Location", &path)], "")
    })
    .await;
    let err = client(&upstream.base, basic("u", SECRET))
        .get_manifest("a/b", "1")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::Refused { message, .. } if message.contains("redirect")),
        "{err}"
    );
    let requests = upstream.requests().len();
    assert!(
        requests <= 11,
        "{requests} requests: one try of at most 10 redirects"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_another_origin_drops_the_credential() {
    let storage = Server::start("127.0.0.2", |_, _| fixed(200, &[], "x")).await;
    let target = format!("{}/blob", storage.base);
    let registry = Server::start("127.0.0.1", move |_, _| {
        fixed(307, &[("Location", &target)], "")
    })
    .await;
    let descriptor = layer_of(b"x", 1);
    let read = client(&registry.base, basic("u", SECRET))
        .get_blob("a/b", &descriptor)
        .await
        .unwrap();
    assert_eq!(read, 1);
    assert!(
        registry.requests()[0]
            .to_ascii_lowercase()
            .contains("authorization: basic"),
        "the registry itself gets the credential"
    );
    let at_storage = storage.requests();
    assert_eq!(at_storage.len(), 1);
    assert_no_secret(&at_storage, "u");
    assert!(!at_storage[0].to_ascii_lowercase().contains("authorization"));
}

#[test]
fn a_manifest_listing_thousands_of_blobs_is_refused() {
    let layer = serde_json::json!({
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": Digest::sha256_of(b"layer").to_string(),
        "size": 5,
    });
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::sha256_of(b"c").to_string(), "size": 1},
        "layers": vec![layer; 26_902],
    });
    let body = serde_json::to_vec(&manifest).unwrap();
    assert!(body.len() < 4 * 1024 * 1024, "within the manifest size cap");
    let err = Manifest::parse("http://r/v2/a/manifests/1", None, body, None).unwrap_err();
    assert!(
        err.to_string()
            .contains(&MAX_MANIFEST_DESCRIPTORS.to_string()),
        "{err}"
    );
}

/// A whole prewarm run with Docker Hub's upstream replaced by a hostile server whose
/// challenge names a foreign realm: the rule's Docker Hub credential never reaches the
/// foreign host, and the run's other images are warmed as usual.
#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_upstream_fails_its_image_only_and_gets_no_credential() {
    let stack = seeded_stack().await;
    let mut world = common::World::on(common::StackHandle::Shared(stack), "PtcHostile").await;
    let foreign = Server::start("127.0.0.2", |_, _| fixed(200, &[], r#"{"token":"t"}"#)).await;
    let realm = format!("{}/token", foreign.base);
    let hostile = Server::start("127.0.0.1", move |_, _| {
        fixed(
            401,
            &[(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="registry.docker.io""#),
            )],
            "",
        )
    })
    .await;
    world
        .upstreams
        .insert(common::DOCKER.to_owned(), hostile.base.clone());
    let report = world
        .prewarm(&["grafana/grafana:10.4.0", "registry.k8s.io/pause:3.9"])
        .await;
    let pause = report
        .images
        .iter()
        .find(|i| i.reference.contains("pause"))
        .unwrap();
    assert!(
        matches!(
            pause.outcome,
            prewarm::Outcome::Warmed | prewarm::Outcome::AlreadyFresh
        ),
        "{pause:#?}"
    );
    assert!(
        !hostile.requests().is_empty(),
        "the hostile upstream was asked"
    );
    assert!(
        !foreign.requests().is_empty(),
        "the token request went to the foreign realm, anonymously"
    );
    let password = stack.upstream(common::DOCKER).password.clone().unwrap();
    for request in foreign.requests() {
        assert!(!request.contains(&password), "{request}");
        assert!(
            !request
                .to_ascii_lowercase()
                .contains("authorization: basic"),
            "{request}"
        );
    }
}

/// Two hops on the foreign origin after the registry's redirect: reqwest rebuilds each hop
/// from the first request's headers, so a credential dropped at the first cross-origin hop
/// came back at the second. For the registry's Basic credential (the ECR token's shape), a
/// Bearer token from the registry's own realm, and a token request redirected away.
#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_chain_on_another_origin_never_gets_a_credential() {
    let storage = Server::start("127.0.0.2", |head, base| {
        if head.starts_with("GET /a") {
            fixed(307, &[("Location", &format!("{base}/b"))], "")
        } else {
            fixed(200, &[("Content-Type", "application/json")], "x")
        }
    })
    .await;
    let to_storage = format!("{}/a", storage.base);
    let descriptor = layer_of(b"x", 1);

    // Basic (the ECR registry token is sent this way).
    let target = to_storage.clone();
    let registry = Server::start("127.0.0.1", move |_, _| {
        fixed(307, &[("Location", &target)], "")
    })
    .await;
    let read = client(&registry.base, basic("AWS", SECRET))
        .get_blob("a/b", &descriptor)
        .await
        .unwrap();
    assert_eq!(read, 1);

    // Bearer, from the registry's own token service.
    let target = to_storage.clone();
    let bearer_registry = Server::start("127.0.0.1", move |head, base| {
        if head.starts_with("GET /token") {
            fixed(200, &[], r#"{"token":"BEARER_TOKEN_FOR_THE_REGISTRY"}"#)
        } else if head.contains("Bearer BEARER_TOKEN_FOR_THE_REGISTRY") {
            fixed(307, &[("Location", &target)], "")
        } else {
            challenge(&format!("{base}/token"))
        }
    })
    .await;
    let read = client(&bearer_registry.base, basic("u", SECRET))
        .get_blob("a/b", &descriptor)
        .await
        .unwrap();
    assert_eq!(read, 1);

    // A token service of the registry's own origin that redirects away: not followed with
    // the credential.
    let target = to_storage.clone();
    let token_away = Server::start("127.0.0.1", move |head, base| {
        if head.starts_with("GET /token") {
            fixed(302, &[("Location", &target)], "")
        } else {
            challenge(&format!("{base}/token"))
        }
    })
    .await;
    let _ = client(&token_away.base, basic("u", SECRET))
        .get_manifest("a/b", "1")
        .await;

    let at_storage = storage.requests();
    assert!(at_storage.len() >= 4, "{at_storage:?}");
    for request in &at_storage {
        assert!(
            !request.to_ascii_lowercase().contains("authorization"),
            "a credential reached the storage origin:\n{request}"
        );
    }
}

/// A registry off this machine cannot send the client to a service on it (the Lambda
/// Runtime API listens on loopback): a loopback realm is refused unless the registry itself
/// is on loopback (the local stack).
#[tokio::test(flavor = "multi_thread")]
async fn a_remote_registry_cannot_point_the_token_request_at_loopback() {
    let internal = Server::start("127.0.0.2", |_, _| {
        fixed(200, &[], r#"{"token":"internal"}"#)
    })
    .await;
    let realm = format!("{}/token", internal.base);
    // The base is not on loopback; the request to it is never made (the challenge is
    // checked first), so an unroutable documentation address serves.
    let remote = RegistryClient::new(
        http_client(Duration::from_secs(2)).unwrap(),
        "https://registry.example.com",
        basic("u", SECRET),
    )
    .with_retry(quick());
    let challenge = format!(r#"realm="{realm}",service="x""#);
    let fields = ptc_core::oci::parse_challenge(&challenge);
    assert_eq!(fields.get("realm"), Some(&realm));
    let err = remote
        .fetch_bearer(&challenge, Some("a/b"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::Refused { message, .. } if message.contains("on this machine")),
        "{err}"
    );
    assert!(internal.requests().is_empty());
}

/// A registry token whose expiry is at the edge of the date range (an absurd answer from
/// `GetAuthorizationToken`) is used or refreshed, never a panic that would end every
/// invocation of the execution environment holding it.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_expiring_at_the_edge_of_time_does_not_panic() {
    use ptc_core::aws::EcrTokenSource;
    use ptc_core::ecr::{EcrApi, RegistryToken};
    use ptc_core::fakes::FakeEcr;
    for expires_at in [
        time::PrimitiveDateTime::MIN.assume_utc(),
        time::PrimitiveDateTime::MAX.assume_utc(),
    ] {
        let ecr = FakeEcr::default();
        ecr.state.lock().unwrap().token = Some(RegistryToken {
            username: "AWS".into(),
            password: Secret::new(SECRET.into()),
            expires_at,
            proxy_endpoint: "https://111122223333.dkr.ecr.eu-west-1.amazonaws.com".into(),
        });
        let ecr: Arc<dyn EcrApi> = Arc::new(ecr);
        let source = EcrTokenSource::new(ecr);
        source.token(false).await.unwrap();
        // The second call judges the kept token's freshness.
        source.token(false).await.unwrap();
    }
}

/// The S3 watch-list reader stops at its limit when the answer has no length: 300 MiB are
/// offered, a few MiB are read.
#[tokio::test(flavor = "multi_thread")]
async fn a_huge_watch_list_object_is_cut_off_at_the_limit() {
    use ptc_core::aws::SdkObjects;
    use ptc_core::objects::ObjectsApi;
    let s3 = Server::start("127.0.0.1", |_, _| Reply::Stream {
        status: 200,
        headers: vec![("Content-Type".into(), "text/plain".into())],
        bytes: 300 * MIB,
    })
    .await;
    let sdk = ptc_tests::sdk_config_for(&s3.base, "us-east-1").await;
    let objects = SdkObjects::new(ptc_core::aws::AwsClients::new(&sdk).s3());
    let err = objects
        .get_text("bucket", "watch-list.txt")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
    let request = &s3.requests()[0];
    assert!(
        request.to_ascii_lowercase().contains("range: bytes=0-"),
        "the request asks for no more than the limit:\n{request}"
    );
    let sent = s3.sent.load(Ordering::Relaxed);
    println!(
        "S3 object of 300 MiB without a length: {} KiB sent",
        sent / 1024
    );
    assert!(sent < 64 * MIB, "{sent} bytes sent");
}

#[test]
fn an_index_listing_thousands_of_manifests_is_refused() {
    let entry = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": Digest::sha256_of(b"m").to_string(),
        "size": 1,
        "platform": {"os": "linux", "architecture": "amd64"},
    });
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": vec![entry; MAX_MANIFEST_DESCRIPTORS + 1],
    });
    let err = Manifest::parse(
        "http://r/v2/a/manifests/1",
        None,
        serde_json::to_vec(&index).unwrap(),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("index entries"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_408_is_retried_and_other_4xx_are_not() {
    for (status, attempts) in [(408, 5), (400, 1), (403, 1)] {
        let upstream = Server::start("127.0.0.1", move |_, _| fixed(status, &[], "")).await;
        let err = client(&upstream.base, basic("u", SECRET))
            .get_manifest("a/b", "1")
            .await
            .unwrap_err();
        assert!(
            matches!(err, RegistryError::Status { .. }),
            "{status}: {err}"
        );
        assert_eq!(upstream.requests().len(), attempts, "HTTP {status}");
    }
}

/// RFC 9110 10.2.3: "When sent with a 503 (Service Unavailable) response, Retry-After
/// indicates how long the service is expected to be unavailable to the client." A short one
/// is waited for (not the backoff's few milliseconds) before the request is made again; a
/// longer one than the client sleeps through is returned at once, with the wait, as for 429.
#[tokio::test(flavor = "multi_thread")]
async fn a_503_s_retry_after_is_waited_for_or_returned_with_the_wait() {
    let answered = Arc::new(AtomicU64::new(0));
    let counter = answered.clone();
    let registry = Server::start("127.0.0.1", move |_, _| {
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            fixed(503, &[("Retry-After", "1")], "")
        } else {
            fixed(200, &[], "{}")
        }
    })
    .await;
    let started = std::time::Instant::now();
    client(&registry.base, basic("u", SECRET))
        .ping()
        .await
        .expect("up again after the wait it asked for");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "retried after {:?}, not after the 1 s the 503 asked for",
        started.elapsed()
    );
    assert_eq!(registry.requests().len(), 2);

    let down = Server::start("127.0.0.1", |_, _| {
        fixed(
            503,
            &[("Retry-After", "3600")],
            r#"{"errors":[{"code":"UNAVAILABLE","message":"down for maintenance"}]}"#,
        )
    })
    .await;
    let err = client(&down.base, basic("u", SECRET))
        .get_manifest("a/b", "1")
        .await
        .unwrap_err();
    assert_eq!(down.requests().len(), 1, "a long wait is not slept through");
    assert!(
        matches!(
            &err,
            RegistryError::Unavailable { retry_after: Some(wait), message, .. }
                if *wait == Duration::from_secs(3600) && message == "down for maintenance"
        ),
        "{err:?}"
    );
    assert!(err.asks_to_wait(), "{err}");
    assert!(err.to_string().contains("retry after 3600s"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_host_on_another_port_is_another_origin() {
    let other_port = Server::start("127.0.0.1", |_, _| fixed(200, &[], r#"{"token":"t"}"#)).await;
    let realm = format!("{}/token", other_port.base);
    let registry = Server::start("127.0.0.1", move |_, _| {
        fixed(
            401,
            &[("WWW-Authenticate", &format!(r#"Bearer realm="{realm}""#))],
            "",
        )
    })
    .await;
    let _ = client(&registry.base, basic("u", SECRET))
        .get_manifest("a/b", "1")
        .await;
    let requests = other_port.requests();
    assert_eq!(requests.len(), 1);
    assert_no_secret(&requests, "u");
}

/// A registry endpoint serving a manifest whose layers are `layers` (content, repeated as
/// listed); counts blob requests.
async fn layered_registry(layers: Vec<Vec<u8>>) -> (Server, Arc<AtomicU64>) {
    let descriptor = |content: &[u8], media: &str| serde_json::json!({"mediaType": media, "digest": Digest::sha256_of(content).to_string(), "size": content.len()});
    let config = b"{}".to_vec();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor(&config, "application/vnd.oci.image.config.v1+json"),
        "layers": layers.iter().map(|l| descriptor(l, "application/vnd.oci.image.layer.v1.tar+gzip")).collect::<Vec<_>>(),
    })
    .to_string();
    let mut blobs: std::collections::HashMap<String, Vec<u8>> = layers
        .iter()
        .map(|l| (Digest::sha256_of(l).to_string(), l.clone()))
        .collect();
    blobs.insert(Digest::sha256_of(&config).to_string(), config);
    let blob_gets = Arc::new(AtomicU64::new(0));
    let counter = blob_gets.clone();
    let server = Server::start("127.0.0.1", move |head, _| {
        let path = head
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        if let Some((_, digest)) = path.split_once("/blobs/") {
            counter.fetch_add(1, Ordering::Relaxed);
            return Reply::Fixed {
                status: 200,
                headers: Vec::new(),
                body: blobs.get(digest).cloned().unwrap_or_default(),
            };
        }
        fixed(
            200,
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            &manifest,
        )
    })
    .await;
    (server, blob_gets)
}

/// Prewarm in layers mode against a registry endpoint whose manifest lists one layer 500
/// times: the layer is fetched once.
#[tokio::test(flavor = "multi_thread")]
async fn prewarm_fetches_a_repeated_layer_once() {
    let stack = seeded_stack().await;
    let world = common::World::on(common::StackHandle::Shared(stack), "PtcLayers").await;
    let mut options = world.prewarm_options();
    options.mode = ptc_core::config::PrewarmMode::Layers;
    options.publish_metrics = false;
    let image = "quay.io/coreos/etcd:v3.5.13";

    let (endpoint, blob_gets) = layered_registry(vec![b"one layer".to_vec(); 500]).await;
    let cache = (
        client(&endpoint.base, basic("AWS", SECRET)),
        "registry".to_owned(),
    );
    world.prewarm_with(&options, &cache, &[image]).await;
    assert_eq!(
        blob_gets.load(Ordering::Relaxed),
        2,
        "the config and the one layer"
    );
}

/// A sha512 digest (OCI allows it) is checked in its own algorithm, not waved through.
#[tokio::test(flavor = "multi_thread")]
async fn a_sha512_blob_is_checked_against_its_digest() {
    let storage = Server::start("127.0.0.1", |_, _| fixed(200, &[], "x")).await;
    let sha512 = |content: &[u8]| {
        let mut hasher = Digest::parse(&format!("sha512:{}", "0".repeat(128)))
            .unwrap()
            .hasher();
        hasher.update(content);
        hasher.finish()
    };
    let mut good = layer_of(b"x", 1);
    good.digest = sha512(b"x");
    let client = client(&storage.base, basic("u", SECRET));
    assert_eq!(client.get_blob("a/b", &good).await.unwrap(), 1);
    let mut bad = layer_of(b"x", 1);
    bad.digest = sha512(b"y");
    let err = client.get_blob("a/b", &bad).await.unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
}
