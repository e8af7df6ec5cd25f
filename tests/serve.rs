//! `ferry serve` as a process: a configured transport whose token variable is missing is named
//! and exits 2; a config with nothing to serve exits 2; the HTTP listener answers health,
//! readiness and metrics, and SIGTERM stops it cleanly.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("ferry.toml");
    let text = format!(
        "[deployers.none]\nkind = \"noop\"\n\n[environments.staging]\ndeployer = \"none\"\n\n{extra}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn serve(path: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--config"])
        .arg(path)
        .env_remove("FERRY_TEST_UNSET_TOKEN")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn a_missing_token_variable_is_named_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let slack = config(
        dir.path(),
        "[slack]\napp_token_env = \"FERRY_TEST_UNSET_TOKEN\"\nbot_token_env = \"FERRY_TEST_UNSET_TOKEN\"",
    );
    let (code, err) = serve(&slack);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("environment variable FERRY_TEST_UNSET_TOKEN is not set"),
        "{err}"
    );
    let discord = config(
        dir.path(),
        "[discord]\ntoken_env = \"FERRY_TEST_UNSET_TOKEN\"",
    );
    let (code, err) = serve(&discord);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("FERRY_TEST_UNSET_TOKEN"), "{err}");
}

#[test]
fn nothing_to_serve_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = serve(&config(dir.path(), ""));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nothing to serve"), "{err}");
}

fn get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn the_http_listener_answers_and_sigterm_stops_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        &format!("[http]\nlisten = \"127.0.0.1:{port}\""),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let health = loop {
        if let Some(answer) = get(port, "/healthz") {
            break answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve never listened"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );
    assert!(get(port, "/readyz").unwrap().starts_with("HTTP/1.1 200"));
    let metrics = get(port, "/metrics").unwrap();
    assert!(
        metrics.contains("ferry_revision{env=\"staging\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "# TYPE ferry_chat_replies_dropped_total counter\nferry_chat_replies_dropped_total 0\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferry_chat_replies_retried_total 0\n"),
        "{metrics}"
    );
    // SAFETY: sends SIGTERM to the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[cfg(feature = "slack")]
#[path = "support/fake_slack.rs"]
mod fake_slack;

/// slack-morphism logs the Socket Mode URL, ticket included, at ERROR when a connection fails;
/// no line ferry writes may carry the ticket or a token, even with every log level on.
#[cfg(feature = "slack")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_socket_mode_connection_logs_no_ticket_and_no_token() {
    let fake = fake_slack::FakeSlack::start().await;
    fake.refuse_sockets(true).await;
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        &format!(
            "[slack]\napp_token_env = \"FERRY_TEST_APP\"\nbot_token_env = \"FERRY_TEST_BOT\"\napi_url = \"{}\"",
            fake.api_url()
        ),
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("FERRY_TEST_APP", fake.app_token())
        .env("FERRY_TEST_BOT", fake.bot_token())
        .env("FERRY_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reading = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut text = String::new();
        let _ = tokio::io::BufReader::new(stderr)
            .read_to_string(&mut text)
            .await;
        text
    });
    fake.wait_until(
        "a Socket Mode connection attempt",
        |rec| {
            rec.calls
                .iter()
                .any(|c| c.method == "apps.connections.open")
        },
        Duration::from_secs(30),
    )
    .await;
    // The refusal is logged right after it; give the process a moment to write it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // SAFETY: sends SIGTERM to the child we spawned.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
    let _ = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
    let _ = child.start_kill();
    let log = reading.await.unwrap();
    assert!(
        log.contains("ticket=[redacted]"),
        "the failed connection is still logged, redacted: {log}"
    );
    for secret in [
        "fake-ticket-",
        fake.app_token(),
        fake.bot_token(),
        "xapp-",
        "xoxb-",
    ] {
        assert!(!log.contains(secret), "`{secret}` in the log:\n{log}");
    }
}

/// `/readyz` says "not ready" while a configured transport has no live connection (here Slack
/// refuses the Socket Mode upgrade, as for a revoked app token), and "ready" once it connects.
#[cfg(feature = "slack")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_chat_connection() {
    let fake = fake_slack::FakeSlack::start().await;
    fake.refuse_sockets(true).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        &format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\n[slack]\napp_token_env = \"FERRY_TEST_APP\"\nbot_token_env = \"FERRY_TEST_BOT\"\napi_url = \"{}\"",
            fake.api_url()
        ),
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("FERRY_TEST_APP", fake.app_token())
        .env("FERRY_TEST_BOT", fake.bot_token())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ready = |port| async move {
        tokio::task::spawn_blocking(move || get(port, "/readyz"))
            .await
            .unwrap()
    };
    let started = Instant::now();
    let refused = loop {
        if let Some(answer) = ready(port).await {
            break answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve never listened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        refused.starts_with("HTTP/1.1 503") && refused.contains("not connected to slack"),
        "{refused}"
    );
    fake.refuse_sockets(false).await;
    let started = Instant::now();
    loop {
        let answer = ready(port).await.unwrap_or_default();
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never ready after Slack accepted the connection: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.start_kill();
}
