//! The `webhook` deployer against a real HTTP server (axum on 127.0.0.1, an ephemeral port).
//! It proves that the POST carries the deploy as JSON with a `sha256=<hex>` HMAC-SHA256 of the
//! exact body that a receiver holding the secret can check; that 5xx and unreachable receivers
//! are retried with backoff up to `retries` times and 4xx never; that a missing secret stops the
//! deploy before anything is sent; and that verification polls a status URL (returned by the
//! receiver, or configured as a template) until it reports success or failure, or time runs out.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use ferry::deploy::{DeployRequest, Deployer, Live, WebhookConfig, WebhookDeployer};
use ferry::domain::{Actor, KeyPath, Name, ServiceSpec};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the server received.
#[derive(Debug, Clone)]
struct Hit {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Hit {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// Decides the answer to a hit, given the hit and how many hits that path has had (1 for the
/// first). The answer's body is sent as JSON.
type Responder = dyn Fn(&Hit, usize) -> (StatusCode, String) + Send + Sync;

#[derive(Clone)]
struct ServerState {
    hits: Arc<Mutex<Vec<Hit>>>,
    respond: Arc<Responder>,
}

/// A local HTTP server recording every request; stopped when dropped.
struct Server {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(
        respond: impl Fn(&Hit, usize) -> (StatusCode, String) + Send + Sync + 'static,
    ) -> Server {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let state = ServerState {
            hits: hits.clone(),
            respond: Arc::new(respond),
        };
        let app = Router::new().fallback(record).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Server { addr, hits, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn hits_on(&self, path: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.path == path).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(state): State<ServerState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
    let hit = Hit {
        method,
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
    };
    let nth = {
        let mut hits = state.hits.lock().unwrap();
        hits.push(hit.clone());
        hits.iter().filter(|h| h.path == hit.path).count()
    };
    let (status, body) = (state.respond)(&hit, nth);
    (status, [(header::CONTENT_TYPE, "application/json")], body)
}

fn ok(_: &Hit, _: usize) -> (StatusCode, String) {
    (StatusCode::OK, "{}".to_string())
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body), computed here independently of ferry.
fn expected_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sets an environment variable that only the calling test uses.
fn set_env(name: &str, value: &str) {
    // SAFETY: every test uses its own variable name, and the variable is set before that test
    // builds anything that reads it; std serialises its own environment reads and writes.
    unsafe { std::env::set_var(name, value) };
}

fn deployer(toml_text: &str) -> WebhookDeployer {
    let config: WebhookConfig =
        toml::from_str(toml_text).unwrap_or_else(|e| panic!("bad test config: {e}\n{toml_text}"));
    WebhookDeployer::new(&config).expect("valid webhook deployer")
}

fn request() -> DeployRequest {
    let spec: ServiceSpec = [
        ("version", "2.4.1"),
        ("image", "registry.local/users"),
        ("config.log_level", "debug"),
    ]
    .into_iter()
    .map(|(k, v)| (KeyPath::parse(k).unwrap(), v.to_string()))
    .collect();
    DeployRequest {
        env: Name::parse("staging").unwrap(),
        service: Name::parse("ms-users").unwrap(),
        spec,
        revision: 42,
        deploy_id: 7,
        actor: Actor::new("slack", "U123", "alice"),
        on_spawn: Default::default(),
    }
}

#[tokio::test]
async fn the_post_is_signed_with_hmac_sha256_of_the_exact_body() {
    const SECRET_VAR: &str = "FERRY_TEST_SECRET_1";
    const SECRET: &str = "s3cret-shared-with-the-receiver";
    set_env(SECRET_VAR, SECRET);
    let server = Server::start(|hit, _| {
        let valid = hit.header("x-ferry-signature-256")
            == Some(expected_signature(SECRET, &hit.body).as_str());
        if valid {
            (StatusCode::OK, r#"{"accepted": true}"#.to_string())
        } else {
            (StatusCode::UNAUTHORIZED, "bad signature".to_string())
        }
    })
    .await;
    let d = deployer(&format!(
        "url = \"{}\"\nsecret_env = \"{SECRET_VAR}\"",
        server.url("/deploy")
    ));

    let out = d.apply(&request()).await.expect("the receiver accepts");

    assert_eq!(
        out,
        format!("{} accepted the deploy (200 OK)", server.url("/deploy"))
    );
    let hits = server.hits();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit.method, Method::POST);
    assert_eq!(hit.path, "/deploy");
    assert_eq!(
        hit.header("x-ferry-signature-256").unwrap(),
        expected_signature(SECRET, &hit.body)
    );
    assert_eq!(hit.header("content-type"), Some("application/json"));
    assert_eq!(hit.header("x-ferry-deploy"), Some("7"));
    assert_eq!(
        hit.json(),
        json!({
            "env": "staging",
            "service": "ms-users",
            "version": "2.4.1",
            "revision": 42,
            "deploy_id": 7,
            "actor": "slack:U123",
            "spec": {
                "config.log_level": "debug",
                "image": "registry.local/users",
                "version": "2.4.1",
            },
        })
    );
    // The secret itself never travels.
    assert!(!String::from_utf8_lossy(&hit.body).contains(SECRET));
    assert!(
        hit.headers
            .values()
            .all(|v| v.as_bytes() != SECRET.as_bytes())
    );
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_by_the_receiver_and_not_retried() {
    const SECRET_VAR: &str = "FERRY_TEST_SECRET_2";
    set_env(SECRET_VAR, "not-the-receivers-secret");
    let server = Server::start(|hit, _| {
        if hit.header("x-hub-signature-256")
            == Some(expected_signature("the-receivers-secret", &hit.body).as_str())
        {
            (StatusCode::OK, "{}".to_string())
        } else {
            (StatusCode::UNAUTHORIZED, "signature mismatch".to_string())
        }
    })
    .await;
    let d = deployer(&format!(
        "url = \"{}\"\nsecret_env = \"{SECRET_VAR}\"\nsignature_header = \"X-Hub-Signature-256\"",
        server.url("/deploy")
    ));

    let err = d.apply(&request()).await.unwrap_err();

    assert_eq!(
        err.message,
        format!(
            "{} answered 401 Unauthorized; not retried",
            server.url("/deploy")
        )
    );
    assert_eq!(err.output, "signature mismatch");
    let hits = server.hits();
    assert_eq!(hits.len(), 1);
    // The configured header carries a well-formed signature (by the wrong secret), the default
    // header is absent.
    assert_eq!(
        hits[0].header("x-hub-signature-256").unwrap(),
        expected_signature("not-the-receivers-secret", &hits[0].body)
    );
    assert_eq!(hits[0].header("x-ferry-signature-256"), None);
}

#[tokio::test]
async fn without_secret_env_nothing_is_signed() {
    let server = Server::start(ok).await;
    let d = deployer(&format!("url = \"{}\"", server.url("/deploy")));

    d.apply(&request()).await.unwrap();

    let hits = server.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].header("x-ferry-signature-256"), None);
}

#[tokio::test]
async fn a_missing_or_empty_secret_variable_stops_the_deploy_before_sending() {
    let server = Server::start(ok).await;

    let unset = "FERRY_TEST_SECRET_3_NEVER_SET";
    let d = deployer(&format!(
        "url = \"{}\"\nsecret_env = \"{unset}\"",
        server.url("/deploy")
    ));
    let err = d.apply(&request()).await.unwrap_err();
    assert_eq!(
        err.message,
        format!("the webhook secret variable {unset} is not set")
    );

    let empty = "FERRY_TEST_SECRET_4";
    set_env(empty, "");
    let d = deployer(&format!(
        "url = \"{}\"\nsecret_env = \"{empty}\"",
        server.url("/deploy")
    ));
    let err = d.apply(&request()).await.unwrap_err();
    assert_eq!(
        err.message,
        format!("the webhook secret variable {empty} is not set")
    );

    assert_eq!(server.hits().len(), 0, "nothing may be sent unsigned");
}

#[tokio::test]
async fn a_5xx_is_retried_after_a_backoff() {
    let server = Server::start(|_, nth| {
        if nth == 1 {
            (StatusCode::INTERNAL_SERVER_ERROR, "{}".to_string())
        } else {
            (StatusCode::OK, "{}".to_string())
        }
    })
    .await;
    let d = deployer(&format!("url = \"{}\"", server.url("/deploy")));

    let started = Instant::now();
    let out = d.apply(&request()).await.expect("the retry succeeds");

    assert_eq!(
        out,
        format!("{} accepted the deploy (200 OK)", server.url("/deploy"))
    );
    let hits = server.hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].body, hits[1].body, "the same payload is resent");
    // First backoff: 200 ms plus up to 100 ms of jitter.
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_4xx_is_not_retried() {
    let server = Server::start(|_, _| {
        (
            StatusCode::BAD_REQUEST,
            r#"{"error": "unknown service ms-users"}"#.to_string(),
        )
    })
    .await;
    let d = deployer(&format!("url = \"{}\"\nretries = 5", server.url("/deploy")));

    let err = d.apply(&request()).await.unwrap_err();

    assert_eq!(
        err.message,
        format!(
            "{} answered 400 Bad Request; not retried",
            server.url("/deploy")
        )
    );
    assert_eq!(err.output, r#"{"error": "unknown service ms-users"}"#);
    assert_eq!(server.hits().len(), 1);
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_gets_exactly_retries_plus_one_attempts() {
    let server = Server::start(|_, _| (StatusCode::SERVICE_UNAVAILABLE, "{}".to_string())).await;
    let d = deployer(&format!("url = \"{}\"\nretries = 2", server.url("/deploy")));

    let started = Instant::now();
    let err = d.apply(&request()).await.unwrap_err();
    let took = started.elapsed();

    assert_eq!(
        err.message,
        format!(
            "{} answered 503 Service Unavailable (after 3 attempts)",
            server.url("/deploy")
        )
    );
    assert_eq!(server.hits().len(), 3);
    // Backoffs of 200 ms and 400 ms, each plus under 100 ms of jitter.
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(3),
        "took {took:?}"
    );
}

#[tokio::test]
async fn an_unreachable_receiver_is_retried_then_reported() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/deploy");
    let d = deployer(&format!("url = \"{url}\"\nretries = 1"));

    let started = Instant::now();
    let err = d.apply(&request()).await.unwrap_err();

    assert!(
        err.message.starts_with(&format!("cannot reach {url}: ")),
        "{}",
        err.message
    );
    assert!(
        err.message.ends_with("(after 2 attempts)"),
        "{}",
        err.message
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}

/// The POST answers with where to poll: `status_url` on this same server.
fn returned_status_url(hit: &Hit) -> String {
    let host = hit.header("host").expect("a Host header");
    json!({ "status_url": format!("http://{host}/status/7") }).to_string()
}

#[tokio::test]
async fn verify_polls_the_returned_status_url_until_success() {
    let server = Server::start(|hit, nth| match hit.path.as_str() {
        "/deploy" => (StatusCode::ACCEPTED, returned_status_url(hit)),
        "/status/7" if nth <= 2 => (StatusCode::OK, r#"{"status": "pending"}"#.to_string()),
        "/status/7" => (StatusCode::OK, r#"{"status": "success"}"#.to_string()),
        _ => (StatusCode::NOT_FOUND, "{}".to_string()),
    })
    .await;
    let d = deployer(&format!(
        "url = \"{}\"\npoll_interval = \"1s\"",
        server.url("/deploy")
    ));

    d.apply(&request()).await.unwrap();
    let started = Instant::now();
    d.verify(&request(), Duration::from_secs(10))
        .await
        .expect("the receiver reports success");
    let took = started.elapsed();

    let polls = server.hits_on("/status/7");
    assert_eq!(polls.len(), 3);
    assert!(polls.iter().all(|h| h.method == Method::GET));
    // Two pauses of one poll interval between three polls.
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "took {took:?}"
    );
    assert_eq!(server.hits().len(), 4, "one POST and three polls");
    assert_eq!(
        d.observe(&request().env, &request().service).await.unwrap(),
        Live::Unknown
    );
}

#[tokio::test]
async fn verify_reports_the_receivers_failure_message() {
    let server = Server::start(|hit, _| match hit.path.as_str() {
        "/deploy" => (StatusCode::OK, returned_status_url(hit)),
        _ => (
            StatusCode::OK,
            r#"{"status": "failure", "message": "migration 0042 failed: column exists"}"#
                .to_string(),
        ),
    })
    .await;
    let d = deployer(&format!(
        "url = \"{}\"\npoll_interval = \"1s\"",
        server.url("/deploy")
    ));

    d.apply(&request()).await.unwrap();
    let err = d
        .verify(&request(), Duration::from_secs(10))
        .await
        .unwrap_err();

    assert_eq!(
        err.message,
        "the receiver reports failure: migration 0042 failed: column exists"
    );
    assert_eq!(err.output, "migration 0042 failed: column exists");
    assert_eq!(server.hits_on("/status/7").len(), 1);
}

#[tokio::test]
async fn verify_polls_the_configured_status_template_until_its_timeout() {
    let server = Server::start(|hit, _| match hit.path.as_str() {
        "/deploy" => (StatusCode::OK, "{}".to_string()),
        _ => (StatusCode::OK, r#"{"status": "pending"}"#.to_string()),
    })
    .await;
    let d = deployer(&format!(
        "url = \"{}\"\nstatus_url = \"{}\"\npoll_interval = \"1s\"",
        server.url("/deploy"),
        server.url("/status/{env}/{service}/{deploy}"),
    ));

    d.apply(&request()).await.unwrap();
    let started = Instant::now();
    let err = d
        .verify(&request(), Duration::from_millis(1500))
        .await
        .unwrap_err();
    let took = started.elapsed();

    assert_eq!(
        err.message,
        "not healthy in time (last status: 200 OK: pending)"
    );
    // Polls at 0 s and 1 s; a third poll would start past the 1.5 s deadline.
    let polls = server.hits_on("/status/staging/ms-users/7");
    assert_eq!(polls.len(), 2, "{:?}", server.hits());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "took {took:?}"
    );
}

#[tokio::test]
async fn verify_without_any_status_url_passes_without_polling() {
    let server = Server::start(ok).await;
    let d = deployer(&format!(
        "url = \"{}\"\npoll_interval = \"1s\"",
        server.url("/deploy")
    ));

    d.apply(&request()).await.unwrap();
    let started = Instant::now();
    d.verify(&request(), Duration::from_secs(10)).await.unwrap();

    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it did not poll until the timeout"
    );
    assert_eq!(server.hits().len(), 1, "only the POST");
}

#[tokio::test]
async fn a_status_url_answering_4xx_fails_verification_at_once() {
    let server = Server::start(|hit, _| match hit.path.as_str() {
        "/deploy" => (StatusCode::OK, returned_status_url(hit)),
        _ => (StatusCode::NOT_FOUND, "{}".to_string()),
    })
    .await;
    let d = deployer(&format!(
        "url = \"{}\"\npoll_interval = \"1s\"",
        server.url("/deploy")
    ));

    d.apply(&request()).await.unwrap();
    let err = d
        .verify(&request(), Duration::from_secs(10))
        .await
        .unwrap_err();

    assert_eq!(
        err.message,
        format!(
            "status URL {} answered 404 Not Found",
            server.url("/status/7")
        )
    );
    assert_eq!(server.hits_on("/status/7").len(), 1);
}

#[test]
fn a_url_that_is_not_http_is_refused() {
    let config: WebhookConfig = toml::from_str(r#"url = "ftp://127.0.0.1/deploy""#).unwrap();
    let err = WebhookDeployer::new(&config)
        .err()
        .expect("refused")
        .to_string();
    assert_eq!(
        err,
        "url `ftp://127.0.0.1/deploy` must start with http:// or https://"
    );
}

/// A status request that hangs cannot stretch `verify` past the timeout it was given: each
/// poll is bounded by the time left.
#[tokio::test]
async fn verify_against_a_hanging_status_url_keeps_its_timeout() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let d = deployer(&format!(
        "url = \"http://{addr}/deploy\"\nstatus_url = \"http://{addr}/status/{{deploy}}\"\n\
         timeout = \"5s\"\npoll_interval = \"1s\""
    ));

    let started = Instant::now();
    let err = d
        .verify(&request(), Duration::from_millis(1500))
        .await
        .unwrap_err();
    let took = started.elapsed();
    hold.abort();

    assert!(
        err.message.starts_with("not healthy in time"),
        "{}",
        err.message
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

/// A server answering each request through `router`, for answers the recording server cannot
/// give (redirects, streamed bodies); stopped when dropped.
struct RawServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RawServer {
    async fn start(router: Router) -> RawServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        RawServer { addr, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server that answers every request with `status` and a `Location` of `location`.
async fn redirecting(status: StatusCode, location: String) -> RawServer {
    RawServer::start(Router::new().fallback(move || {
        let location = location.clone();
        async move { (status, [(header::LOCATION, location)], "") }
    }))
    .await
}

/// A 307 would re-POST the signed body to wherever the receiver points, a 302 would turn the
/// deploy into a body-less GET that looks like success: neither is followed, the deploy fails
/// naming the status and the redirect's origin (not its query), and is not retried.
#[tokio::test]
async fn redirects_are_not_followed_and_fail_the_deploy() {
    const SECRET_VAR: &str = "FERRY_TEST_SECRET_REDIRECT";
    set_env(SECRET_VAR, "redirect-secret");
    let elsewhere = Server::start(ok).await;
    for status in [StatusCode::TEMPORARY_REDIRECT, StatusCode::FOUND] {
        let receiver = redirecting(status, elsewhere.url("/steal?token=stolen-token")).await;
        let d = deployer(&format!(
            "url = \"{}\"\nsecret_env = \"{SECRET_VAR}\"\nretries = 2",
            receiver.url("/deploy")
        ));

        let err = d.apply(&request()).await.unwrap_err();

        assert_eq!(
            err.message,
            format!(
                "{} answered {status}, a redirect to http://{}; ferry does not follow redirects \
                 (they would send the request elsewhere): set `url` to the address that answers \
                 directly; not retried",
                receiver.url("/deploy"),
                elsewhere.addr
            )
        );
        assert!(
            elsewhere.hits().is_empty(),
            "{status}: {:?}",
            elsewhere.hits()
        );
    }
}

/// A status URL that redirects fails verification without following it.
#[tokio::test]
async fn a_redirecting_status_url_fails_verification() {
    let elsewhere = Server::start(ok).await;
    let status = redirecting(StatusCode::FOUND, elsewhere.url("/ok?token=t")).await;
    let d = deployer(&format!(
        "url = \"{}\"\nstatus_url = \"{}\"",
        elsewhere.url("/deploy"),
        status.url("/status/{deploy}")
    ));

    let err = d
        .verify(&request(), Duration::from_secs(5))
        .await
        .unwrap_err();

    assert!(
        err.message.starts_with(&format!(
            "status URL {} answered 302 Found, a redirect to http://{}; ferry does not follow",
            status.url("/status/7"),
            elsewhere.addr
        )),
        "{}",
        err.message
    );
    assert!(elsewhere.hits().is_empty());
}

/// Webhook URLs carry credentials (`user:pass@`) and tokens (`?token=`): no message, error
/// or summary shows them, whether the receiver is unreachable, fails or accepts.
#[tokio::test]
async fn messages_never_show_the_urls_credentials_or_token() {
    let secrets = ["hunter2-pass", "hook-user", "tok-98765", "token="];
    let assert_clean = |text: &str| {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} in: {text}");
        }
    };

    // Unreachable.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let d = deployer(&format!(
        "url = \"http://hook-user:hunter2-pass@127.0.0.1:{port}/deploy?token=tok-98765\"\nretries = 0"
    ));
    let err = d.apply(&request()).await.unwrap_err();
    assert!(
        err.message
            .starts_with(&format!("cannot reach http://127.0.0.1:{port}/deploy: ")),
        "{}",
        err.message
    );
    assert_clean(&err.message);
    assert_clean(&err.output);

    // Failing (5xx), then accepting.
    let server = Server::start(|_, nth| {
        if nth == 1 {
            (StatusCode::INTERNAL_SERVER_ERROR, "{}".to_string())
        } else {
            (StatusCode::OK, "{}".to_string())
        }
    })
    .await;
    let url = format!(
        "http://hook-user:hunter2-pass@{}/deploy?token=tok-98765",
        server.addr
    );
    let d = deployer(&format!("url = \"{url}\"\nretries = 0"));
    let err = d.apply(&request()).await.unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "{} answered 500 Internal Server Error (after 1 attempts)",
            server.url("/deploy")
        )
    );
    assert_clean(&err.message);
    let out = d.apply(&request()).await.expect("accepted");
    assert_eq!(
        out,
        format!("{} accepted the deploy (200 OK)", server.url("/deploy"))
    );
    assert_clean(&out);

    // A config error names the URL redacted too.
    let config: WebhookConfig =
        toml::from_str("url = \"ftp://hook-user:hunter2-pass@h/x?token=tok-98765\"").unwrap();
    let err = WebhookDeployer::new(&config)
        .err()
        .expect("refused")
        .to_string();
    assert_eq!(err, "url `ftp://h/x` must start with http:// or https://");
}

/// 50 MB of response body streamed in 64 KiB chunks, counting the chunks the server produced.
fn huge_body(produced: Arc<std::sync::atomic::AtomicUsize>) -> axum::body::Body {
    let chunks = (0..800).map(move |_| {
        produced.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 64 * 1024]))
    });
    axum::body::Body::from_stream(futures_util::stream::iter(chunks))
}

/// A receiver cannot make ferry read more than 1 MiB: a streamed 50 MB answer fails with the
/// cap named after reading little more than the cap (the server produced only part of it), and
/// so does one announcing its size; a status URL's body is capped the same way.
#[tokio::test]
async fn response_bodies_larger_than_1_mib_are_refused() {
    let produced = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = RawServer::start(
        Router::new()
            .route(
                "/streamed",
                axum::routing::post({
                    let produced = produced.clone();
                    move || {
                        let produced = produced.clone();
                        async move { huge_body(produced) }
                    }
                }),
            )
            .route(
                "/sized",
                axum::routing::post(|| async { vec![b'x'; 2 * 1024 * 1024] }),
            )
            .route(
                "/status",
                axum::routing::get({
                    let produced = produced.clone();
                    move || {
                        let produced = produced.clone();
                        async move { huge_body(produced) }
                    }
                }),
            ),
    )
    .await;

    let d = deployer(&format!("url = \"{}\"", server.url("/streamed")));
    let err = d.apply(&request()).await.unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "{} answered 200 OK with a response body larger than 1 MiB",
            server.url("/streamed")
        )
    );
    // Give the server a moment to notice the closed connection, then check it stopped early.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = produced.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        sent < 800,
        "the whole 50 MB body was produced ({sent} chunks)"
    );

    let d = deployer(&format!("url = \"{}\"", server.url("/sized")));
    let err = d.apply(&request()).await.unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "{} answered 200 OK with a response body larger than 1 MiB",
            server.url("/sized")
        )
    );

    let d = deployer(&format!(
        "url = \"{}\"\nstatus_url = \"{}\"",
        server.url("/sized"),
        server.url("/status")
    ));
    let err = d
        .verify(&request(), Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "status URL {} answered 200 OK with a response body larger than 1 MiB",
            server.url("/status")
        )
    );
}

/// A `status_url` returned by the receiver is polled only on the webhook's own origin or one
/// listed in `status_origins`: another server is never contacted unless listed.
#[tokio::test]
async fn a_returned_status_url_on_another_origin_is_refused_unless_listed() {
    let status =
        Server::start(|_, _| (StatusCode::OK, r#"{"status": "success"}"#.to_string())).await;
    let status_url = status.url("/status/7?token=abc");
    let receiver = Server::start(move |_, _| {
        (
            StatusCode::ACCEPTED,
            json!({ "status_url": status_url }).to_string(),
        )
    })
    .await;

    let d = deployer(&format!("url = \"{}\"", receiver.url("/deploy")));
    d.apply(&request()).await.expect("accepted");
    let err = d
        .verify(&request(), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "the receiver returned a status_url on http://{0}, which is not the webhook's origin; \
             it was not polled: if that host is trusted, add it to the deployer's \
             `status_origins` (like `status_origins = [\"http://{0}\"]`)",
            status.addr
        )
    );
    assert!(status.hits().is_empty(), "{:?}", status.hits());

    let d = deployer(&format!(
        "url = \"{}\"\nstatus_origins = [\"http://{}\"]",
        receiver.url("/deploy"),
        status.addr
    ));
    d.apply(&request()).await.expect("accepted");
    d.verify(&request(), Duration::from_secs(5))
        .await
        .expect("the listed origin is polled");
    assert_eq!(status.hits_on("/status/7").len(), 1);

    let config: WebhookConfig = toml::from_str(&format!(
        "url = \"{}\"\nstatus_origins = [\"status.example.com\"]",
        receiver.url("/deploy")
    ))
    .unwrap();
    let err = WebhookDeployer::new(&config)
        .err()
        .expect("refused")
        .to_string();
    assert_eq!(
        err,
        "status_origins: `status.example.com` is not an origin: write scheme and host (and port), like `https://status.example.com`"
    );
}

/// Values typed in chat reach a configured status URL percent-encoded, so they cannot add
/// path steps, a query or a fragment; a value of `.` or `..` (which URL parsing would still
/// read as a path step) is refused; and the URL's origin is fixed by the config.
#[tokio::test]
async fn a_configured_status_url_cannot_be_reshaped_by_a_value() {
    let server = Server::start(|hit, _| match hit.path.as_str() {
        "/deploy" => (StatusCode::OK, "{}".to_string()),
        _ => (StatusCode::OK, r#"{"status": "success"}"#.to_string()),
    })
    .await;
    let d = deployer(&format!(
        "url = \"{}\"\nstatus_url = \"{}\"",
        server.url("/deploy"),
        server.url("/status/{service}/{key.image}"),
    ));
    let mut hostile = request();
    hostile.spec.insert(
        KeyPath::parse("image").unwrap(),
        "x/../../../admin/drop-all?confirm=yes#".into(),
    );
    d.verify(&hostile, Duration::from_secs(5)).await.unwrap();
    let paths: Vec<String> = server.hits().iter().map(|h| h.path.clone()).collect();
    assert_eq!(
        paths,
        ["/status/ms-users/x%2F..%2F..%2F..%2Fadmin%2Fdrop-all%3Fconfirm%3Dyes%23"],
        "one poll, of one path segment"
    );

    for dots in ["..", "."] {
        let mut request = request();
        request
            .spec
            .insert(KeyPath::parse("image").unwrap(), dots.into());
        let err = d
            .verify(&request, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            err.message.contains("cannot go into a URL"),
            "{}",
            err.message
        );
    }
    assert_eq!(server.hits().len(), 1, "nothing more was polled");

    let config: WebhookConfig = toml::from_str(&format!(
        "url = \"{}\"\nstatus_url = \"http://{{key.host}}/status\"",
        server.url("/deploy")
    ))
    .unwrap();
    let err = WebhookDeployer::new(&config)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("fixed http:// or https:// origin"), "{err}");
}
