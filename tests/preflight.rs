//! Preflight checks with real programs: a check's program gets its arguments as written (a
//! literal option included) and `FERRY_ENV`, `FERRY_REVISION`, `FERRY_SERVICES`, inside a
//! cleared environment that holds none of ferry's secrets; a URL check that redirects fails
//! without following, and its messages show the URL without credentials or query.

use ferry::domain::Name;
use ferry::engine::PreflightCheck;
use std::path::Path;
use tempfile::TempDir;

/// Writes an executable `sh` script through a child `sh` (see command_deployer.rs for why).
fn script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    let status = std::process::Command::new("/bin/sh")
        .args(["-c", r#"printf '%s' "$1" > "$2" && chmod 755 "$2""#, "sh"])
        .arg(format!("#!/bin/sh\n{body}\n"))
        .arg(&path)
        .status()
        .expect("run sh to write a script");
    assert!(status.success());
}

fn check(toml_text: &str) -> PreflightCheck {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("bad test check: {e}\n{toml_text}"))
}

#[tokio::test]
async fn a_check_program_gets_its_arguments_and_an_allowlisted_environment() {
    // SAFETY: only this test reads these variables; std serialises its environment access.
    unsafe {
        std::env::set_var("SLACK_APP_TOKEN", "xapp-secret-token");
        std::env::set_var("FERRY_LOG", "debug");
    }
    let dir = TempDir::new().unwrap();
    script(
        dir.path(),
        "check.sh",
        r#"printf '[%s]' "$@" > args.out
env > env.out"#,
    );
    let c = check(
        r#"name = "image exists"
program = "check.sh"
args = ["--env", "{env}", "--revision={revision}"]"#,
    );

    c.run(&Name::parse("staging").unwrap(), 12, &[], dir.path())
        .await
        .expect("the check passes");

    assert_eq!(
        std::fs::read_to_string(dir.path().join("args.out")).unwrap(),
        "[--env][staging][--revision=12]"
    );
    let env = std::fs::read_to_string(dir.path().join("env.out")).unwrap();
    assert!(!env.contains("xapp-secret-token"), "{env}");
    assert!(!env.lines().any(|l| l.starts_with("FERRY_LOG=")), "{env}");
    for expected in [
        format!("PATH={}", std::env::var("PATH").unwrap()),
        "FERRY_ENV=staging".to_string(),
        "FERRY_REVISION=12".to_string(),
    ] {
        assert!(
            env.lines().any(|l| l == expected),
            "lacks {expected}:\n{env}"
        );
    }
}

#[tokio::test]
async fn a_url_check_shows_its_url_redacted() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let c = check(&format!(
        r#"name = "ci green"
url = "http://ci-user:ci-pass@127.0.0.1:{port}/green?token=ci-token""#
    ));
    let err = c
        .run(&Name::parse("staging").unwrap(), 1, &[], Path::new("/tmp"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("cannot reach http://127.0.0.1:{port}/green")),
        "{err}"
    );
    for secret in ["ci-pass", "ci-user", "ci-token"] {
        assert!(!err.contains(secret), "{secret} in {err}");
    }
}
