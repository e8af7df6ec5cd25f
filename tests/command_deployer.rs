//! The `command` deployer against real processes: small `sh` scripts written into a temporary
//! folder. It proves that a failing program is an error naming its exit status and carrying the
//! tail of its output; that a timeout kills the program's whole process group (a background
//! child included) and returns promptly; that values reach the program as exact, single,
//! literal arguments and `FERRY_*` variables, never through a shell; that verification is
//! retried until it passes or its time runs out; what `observe` reports for each kind of
//! output; and that `hosts` fan out in rolling batches, the first a canary whose failure leaves
//! the remaining hosts untouched.

use ferry::deploy::{CommandConfig, CommandDeployer, DeployRequest, Deployer, Live};
use ferry::domain::{Actor, KeyPath, Name, ServiceSpec};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Writes an executable `sh` script `name` into `dir`.
///
/// The file is written by a child `sh`, never opened for writing by this (multi-threaded) test
/// process: otherwise another test forking at that moment could inherit the write descriptor,
/// and executing the script would fail with "Text file busy".
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let text = format!("#!/bin/sh\n{body}\n");
    let status = std::process::Command::new("/bin/sh")
        .args(["-c", r#"printf '%s' "$1" > "$2" && chmod 755 "$2""#, "sh"])
        .arg(&text)
        .arg(&path)
        .status()
        .expect("run sh to write a script");
    assert!(status.success(), "cannot write {}", path.display());
    path
}

fn config(toml_text: &str) -> CommandConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("bad test config: {e}\n{toml_text}"))
}

fn deployer(toml_text: &str, dir: &Path) -> CommandDeployer {
    CommandDeployer::new(&config(toml_text), dir).expect("valid command deployer")
}

fn request(pairs: &[(&str, &str)]) -> DeployRequest {
    let spec: ServiceSpec = pairs
        .iter()
        .map(|(k, v)| (KeyPath::parse(k).expect("key"), v.to_string()))
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

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn lines(path: &Path) -> Vec<String> {
    read(path).lines().map(str::to_string).collect()
}

/// True once `pid` is gone or a zombie (dead, only waiting to be reaped by whoever adopted it).
fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name: `123 (sleep) S …`.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

#[tokio::test]
async fn a_non_zero_exit_is_an_error_naming_the_status_with_the_output_tail() {
    let dir = TempDir::new().unwrap();
    script(
        dir.path(),
        "deploy.sh",
        "echo 'pulling image'\necho 'disk full on /var' >&2\nexit 3",
    );
    let d = deployer(r#"program = "deploy.sh""#, dir.path());

    let err = d.apply(&request(&[("version", "1.0")])).await.unwrap_err();

    assert_eq!(err.message, "the deploy program exited with status 3");
    assert_eq!(err.output, "pulling image\ndisk full on /var");
}

#[tokio::test]
async fn a_missing_program_is_an_error_naming_it() {
    let dir = TempDir::new().unwrap();
    let d = deployer(r#"program = "no-such-deploy.sh""#, dir.path());

    let err = d.apply(&request(&[])).await.unwrap_err();

    let expected = format!(
        "cannot start {}",
        dir.path().join("no-such-deploy.sh").display()
    );
    assert!(
        err.message.starts_with(&expected),
        "{:?} should start with {expected:?}",
        err.message
    );
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group_and_returns_promptly() {
    let dir = TempDir::new().unwrap();
    let program = script(
        dir.path(),
        "deploy.sh",
        "echo 'rolling out'\nsleep 30 &\necho $! > child.pid\nsleep 30\necho never",
    );
    let d = deployer("program = \"deploy.sh\"\ntimeout = \"1s\"", dir.path());

    let started = Instant::now();
    let err = d.apply(&request(&[])).await.unwrap_err();
    let took = started.elapsed();

    assert_eq!(
        err.message,
        format!("{} timed out after 1s and was killed", program.display())
    );
    assert_eq!(err.output, "rolling out");
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(5),
        "took {took:?}"
    );

    let child: i32 = read(&dir.path().join("child.pid"))
        .trim()
        .parse()
        .expect("the script wrote its background child's pid");
    // SIGKILL is delivered at once, but the orphan is reaped by whoever adopted it: allow a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !is_dead(child) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        is_dead(child),
        "the background `sleep 30` (pid {child}) outlived the timeout: {}",
        std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default()
    );
}

#[tokio::test]
async fn values_arrive_as_exact_literal_arguments_and_ferry_variables() {
    let dir = TempDir::new().unwrap();
    script(
        dir.path(),
        "deploy.sh",
        r#"for a in "$@"; do printf '[%s]\n' "$a"; done > args.txt
{
  echo "FERRY_ENV=$FERRY_ENV"
  echo "FERRY_SERVICE=$FERRY_SERVICE"
  echo "FERRY_VERSION=$FERRY_VERSION"
  echo "FERRY_REVISION=$FERRY_REVISION"
  echo "FERRY_DEPLOY=$FERRY_DEPLOY"
  echo "FERRY_ACTOR=$FERRY_ACTOR"
  echo "FERRY_KEY_CONFIG_LOG_LEVEL=$FERRY_KEY_CONFIG_LOG_LEVEL"
  echo "FERRY_KEY_NOTE=$FERRY_KEY_NOTE"
  echo "FERRY_KEY_VERSION=$FERRY_KEY_VERSION"
  echo "FERRY_HOST=${FERRY_HOST-unset}"
  echo "PWD=$(pwd -P)"
} > env.txt
echo "deployed $FERRY_SERVICE""#,
    );
    let d = deployer(
        r#"
program = "deploy.sh"
args = ["--env={env}", "{service}", "{version}", "{key.note}", "rev-{revision}", "deploy={deploy}", "--level", "{key.config.log_level}", "two words"]
"#,
        dir.path(),
    );
    let req = request(&[
        ("version", "1.0;touch pwned"),
        ("note", "$(touch pwned)"),
        ("config.log_level", "debug"),
    ]);

    let out = d.apply(&req).await.expect("the script succeeds");

    assert_eq!(out, "deployed ms-users");
    assert_eq!(
        lines(&dir.path().join("args.txt")),
        [
            "[--env=staging]",
            "[ms-users]",
            "[1.0;touch pwned]",
            "[$(touch pwned)]",
            "[rev-42]",
            "[deploy=7]",
            "[--level]",
            "[debug]",
            "[two words]",
        ]
    );
    let real_dir = dir.path().canonicalize().unwrap();
    assert_eq!(
        lines(&dir.path().join("env.txt")),
        [
            "FERRY_ENV=staging".to_string(),
            "FERRY_SERVICE=ms-users".to_string(),
            "FERRY_VERSION=1.0;touch pwned".to_string(),
            "FERRY_REVISION=42".to_string(),
            "FERRY_DEPLOY=7".to_string(),
            "FERRY_ACTOR=slack:U123".to_string(),
            "FERRY_KEY_CONFIG_LOG_LEVEL=debug".to_string(),
            "FERRY_KEY_NOTE=$(touch pwned)".to_string(),
            "FERRY_KEY_VERSION=1.0;touch pwned".to_string(),
            "FERRY_HOST=unset".to_string(),
            format!("PWD={}", real_dir.display()),
        ]
    );
    assert!(
        !dir.path().join("pwned").exists(),
        "a value was run by a shell: `pwned` exists"
    );
}

#[tokio::test]
async fn a_template_naming_a_missing_key_fails_before_running_anything() {
    let dir = TempDir::new().unwrap();
    script(dir.path(), "deploy.sh", "touch ran");
    let d = deployer(
        r#"program = "deploy.sh"
args = ["{key.replicas}"]"#,
        dir.path(),
    );

    let err = d.apply(&request(&[("version", "1.0")])).await.unwrap_err();

    assert_eq!(err.message, "staging.ms-users has no key `replicas`");
    assert!(!dir.path().join("ran").exists());
}

#[tokio::test]
async fn verify_that_never_passes_fails_not_healthy_in_time_after_the_timeout() {
    let dir = TempDir::new().unwrap();
    script(dir.path(), "deploy.sh", "exit 0");
    script(
        dir.path(),
        "health.sh",
        "echo x >> attempts\necho 'GET /healthz: 503'\nexit 1",
    );
    let d = deployer(
        r#"program = "deploy.sh"
verify_program = "health.sh""#,
        dir.path(),
    );

    let started = Instant::now();
    let err = d
        .verify(&request(&[]), Duration::from_millis(1500))
        .await
        .unwrap_err();
    let took = started.elapsed();

    assert_eq!(
        err.message,
        "not healthy in time: the health check exited with status 1"
    );
    assert_eq!(err.output, "GET /healthz: 503");
    // Checks every 500 ms and gives up when the next check would start past the deadline.
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    let attempts = lines(&dir.path().join("attempts")).len();
    assert!((2..=4).contains(&attempts), "{attempts} attempts");
}

#[tokio::test]
async fn verify_passes_once_the_health_check_does() {
    let dir = TempDir::new().unwrap();
    script(dir.path(), "deploy.sh", "exit 0");
    script(
        dir.path(),
        "health.sh",
        r#"n=$(cat attempts 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > attempts
echo "$1 $FERRY_VERSION" >> seen
[ "$n" -ge 2 ]"#,
    );
    let d = deployer(
        r#"program = "deploy.sh"
verify_program = "health.sh"
verify_args = ["{service}"]"#,
        dir.path(),
    );

    let started = Instant::now();
    d.verify(&request(&[("version", "2.0.1")]), Duration::from_secs(10))
        .await
        .expect("healthy on the second check");

    assert_eq!(read(&dir.path().join("attempts")).trim(), "2");
    assert_eq!(
        lines(&dir.path().join("seen")),
        ["ms-users 2.0.1", "ms-users 2.0.1"]
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn verify_without_a_verify_program_passes_at_once() {
    let dir = TempDir::new().unwrap();
    let d = deployer(r#"program = "deploy.sh""#, dir.path());
    let started = Instant::now();
    d.verify(&request(&[]), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "it did not wait for its timeout"
    );
}

#[tokio::test]
async fn observe_reports_the_printed_version_nothing_or_unknown() {
    let dir = TempDir::new().unwrap();
    script(
        dir.path(),
        "running.sh",
        "echo \"$1 $2 $FERRY_ENV $FERRY_SERVICE\" > observed\necho '  3.1.0  '\necho 'second line ignored'",
    );
    script(dir.path(), "stopped.sh", "echo 'nothing here' >&2");
    script(dir.path(), "broken.sh", "echo 'no kubeconfig' >&2\nexit 2");
    let env = Name::parse("prod").unwrap();
    let service = Name::parse("billing").unwrap();

    let running = deployer(
        r#"program = "deploy.sh"
observe_program = "running.sh"
observe_args = ["{env}", "{service}"]"#,
        dir.path(),
    );
    assert_eq!(
        running.observe(&env, &service).await.unwrap(),
        Live::Running {
            version: "3.1.0".to_string()
        }
    );
    assert_eq!(
        read(&dir.path().join("observed")).trim(),
        "prod billing prod billing"
    );

    let stopped = deployer(
        r#"program = "deploy.sh"
observe_program = "stopped.sh""#,
        dir.path(),
    );
    assert_eq!(
        stopped.observe(&env, &service).await.unwrap(),
        Live::NotRunning
    );

    let blind = deployer(r#"program = "deploy.sh""#, dir.path());
    assert_eq!(blind.observe(&env, &service).await.unwrap(), Live::Unknown);

    let broken = deployer(
        r#"program = "deploy.sh"
observe_program = "broken.sh""#,
        dir.path(),
    );
    let err = broken.observe(&env, &service).await.unwrap_err();
    assert_eq!(err.message, "the observe program failed");
    assert_eq!(err.output, "no kubeconfig");
}

const FAN_OUT: &str = r#"
program = "deploy.sh"
args = ["{host}"]
hosts = ["h1", "h2", "h3", "h4"]
batch_size = 2
"#;

#[tokio::test]
async fn a_failing_canary_batch_stops_the_rollout() {
    let dir = TempDir::new().unwrap();
    script(
        dir.path(),
        "deploy.sh",
        r#"echo "$1 $FERRY_HOST" >> runs.log
if [ "$1" = h1 ]; then echo 'h1: connection refused' >&2; exit 4; fi
echo "ok on $1""#,
    );
    let d = deployer(FAN_OUT, dir.path());

    let err = d.apply(&request(&[])).await.unwrap_err();

    assert_eq!(
        err.message,
        "on h1: the deploy program exited with status 4 \
         (the canary batch failed; 2 remaining hosts not deployed)"
    );
    assert_eq!(err.output, "h1: connection refused");
    let mut runs = lines(&dir.path().join("runs.log"));
    runs.sort();
    assert_eq!(runs, ["h1 h1", "h2 h2"], "h3 and h4 must never run");
}

#[tokio::test]
async fn a_failing_later_batch_stops_the_rest_and_counts_them() {
    let dir = TempDir::new().unwrap();
    script(
        dir.path(),
        "deploy.sh",
        r#"echo "$1" >> runs.log
[ "$1" != h3 ]"#,
    );
    let d = deployer(
        r#"
program = "deploy.sh"
args = ["{host}"]
hosts = ["h1", "h2", "h3", "h4", "h5"]
batch_size = 2
"#,
        dir.path(),
    );

    let err = d.apply(&request(&[])).await.unwrap_err();

    assert_eq!(
        err.message,
        "on h3: the deploy program exited with status 1 \
         (a batch failed; 1 remaining host not deployed)"
    );
    let mut runs = lines(&dir.path().join("runs.log"));
    runs.sort();
    assert_eq!(runs, ["h1", "h2", "h3", "h4"], "h5 must never run");
}

#[tokio::test]
async fn every_host_runs_once_in_rolling_batches() {
    let dir = TempDir::new().unwrap();
    script(
        dir.path(),
        "deploy.sh",
        r#"echo "start $1 $FERRY_HOST" >> runs.log
sleep 0.3
echo "end $1" >> runs.log
echo "ok on $FERRY_HOST""#,
    );
    script(
        dir.path(),
        "health.sh",
        r#"echo "$1 $FERRY_HOST" >> verified.log"#,
    );
    let d = deployer(
        &format!("{FAN_OUT}verify_program = \"health.sh\"\nverify_args = [\"{{host}}\"]\n"),
        dir.path(),
    );

    let out = d.apply(&request(&[])).await.expect("all hosts succeed");

    assert_eq!(out, "ok on h1\nok on h2\nok on h3\nok on h4");
    let runs = lines(&dir.path().join("runs.log"));
    assert_eq!(runs.len(), 8, "{runs:?}");
    let mut starts: Vec<&str> = runs
        .iter()
        .filter(|l| l.starts_with("start"))
        .map(String::as_str)
        .collect();
    starts.sort();
    assert_eq!(
        starts,
        ["start h1 h1", "start h2 h2", "start h3 h3", "start h4 h4"]
    );
    // Batch one (h1, h2) runs side by side and ends before batch two (h3, h4) begins.
    let mut first: Vec<&str> = runs[..4].iter().map(String::as_str).collect();
    first.sort();
    assert_eq!(first, ["end h1", "end h2", "start h1 h1", "start h2 h2"]);
    let mut head: Vec<&str> = runs[..2].iter().map(String::as_str).collect();
    head.sort();
    assert_eq!(
        head,
        ["start h1 h1", "start h2 h2"],
        "batch one in parallel"
    );
    let mut second_head: Vec<&str> = runs[4..6].iter().map(String::as_str).collect();
    second_head.sort();
    assert_eq!(
        second_head,
        ["start h3 h3", "start h4 h4"],
        "batch two in parallel"
    );

    d.verify(&request(&[]), Duration::from_secs(10))
        .await
        .expect("every host healthy");
    assert_eq!(
        lines(&dir.path().join("verified.log")),
        ["h1 h1", "h2 h2", "h3 h3", "h4 h4"]
    );
}

#[test]
fn a_zero_batch_size_is_refused() {
    let err = CommandDeployer::new(
        &config("program = \"deploy.sh\"\nhosts = [\"h1\"]\nbatch_size = 0"),
        Path::new("/tmp"),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "batch_size must be at least 1");
}

/// A cancelled deploy (its future dropped) kills the program's whole process group, as a
/// timeout does, not only the program itself.
#[tokio::test]
async fn cancelling_apply_kills_the_whole_process_group() {
    let dir = TempDir::new().unwrap();
    script(
        dir.path(),
        "deploy.sh",
        "echo $$ > group.pid\nsleep 30 &\necho $! > child.pid\nsleep 30",
    );
    let d = deployer(r#"program = "deploy.sh""#, dir.path());

    let cancelled = tokio::time::timeout(Duration::from_millis(700), d.apply(&request(&[]))).await;
    assert!(cancelled.is_err(), "the deploy should still be running");

    let child: i32 = read(&dir.path().join("child.pid")).trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !is_dead(child) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = is_dead(child);
    if !dead {
        // Do not leave the survivors behind: the script leads their process group.
        let group: i32 = read(&dir.path().join("group.pid")).trim().parse().unwrap();
        // SAFETY: kill(2) on the process group this test's own script leads.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
    assert!(
        dead,
        "the background child (pid {child}) outlived the cancelled deploy"
    );
}

/// The message for a value of `key` that would start an argument with `-`.
fn option_refusal(key: &str, value: &str) -> String {
    format!(
        "value of staging.ms-users.{key} (`{value}`) starts with '-', which the program would \
         read as an option, so nothing was run; set a value that does not start with '-' \
         (`env staging.ms-users.{key} <value>`), or give the argument a literal prefix in the \
         deployer's config (like `--<option>={{key.{key}}}`)"
    )
}

const OPTION_VALUE: &str = "--upload-pack=touch pwned";

/// A value set in chat that starts with `-` never becomes an option of the deploy program:
/// the deploy is refused before the program runs, naming the key and how to fix it. After a
/// literal prefix the same value is one harmless argument, and literal options pass.
#[tokio::test]
async fn a_value_that_would_be_read_as_an_option_is_refused_in_args() {
    let dir = TempDir::new().unwrap();
    script(
        dir.path(),
        "deploy.sh",
        r#"for a in "$@"; do printf '[%s]\n' "$a"; done >> args.txt"#,
    );
    let req = request(&[("version", "1.0"), ("image", OPTION_VALUE)]);

    for args in [
        r#"["--verbose", "{key.image}"]"#,
        r#"["{key.image}:{version}"]"#,
    ] {
        let d = deployer(
            &format!("program = \"deploy.sh\"\nargs = {args}"),
            dir.path(),
        );
        let err = d.apply(&req).await.unwrap_err();
        assert_eq!(err.message, option_refusal("image", OPTION_VALUE), "{args}");
        assert!(
            !dir.path().join("args.txt").exists(),
            "the program ran with {args}"
        );
    }

    let d = deployer(
        r#"program = "deploy.sh"
args = ["--verbose", "--image={key.image}", "-v"]"#,
        dir.path(),
    );
    d.apply(&req).await.expect("a prefixed value is safe");
    assert_eq!(
        lines(&dir.path().join("args.txt")),
        ["[--verbose]", "[--image=--upload-pack=touch pwned]", "[-v]"]
    );
    assert!(!dir.path().join("pwned").exists());
}

/// The health check's argv follows the same rule: refused at once (not retried until the
/// verify timeout), the check never runs.
#[tokio::test]
async fn a_value_that_would_be_read_as_an_option_is_refused_in_verify_args() {
    let dir = TempDir::new().unwrap();
    script(dir.path(), "deploy.sh", "exit 0");
    script(dir.path(), "healthy.sh", r#"echo "$@" >> verified"#);
    let d = deployer(
        r#"program = "deploy.sh"
verify_program = "healthy.sh"
verify_args = ["{key.image}"]"#,
        dir.path(),
    );
    let req = request(&[("version", "1.0"), ("image", "-oProxyCommand=touch pwned")]);

    let err = d.verify(&req, Duration::from_secs(20)).await.unwrap_err();

    assert_eq!(
        err.message,
        option_refusal("image", "-oProxyCommand=touch pwned")
    );
    // Refused, not retried until the timeout (that would say "not healthy in time").
    assert!(!dir.path().join("verified").exists());
}

/// `{host}` takes its values from the config only, and a host starting with `-` is refused
/// when the config is read, so fan-out can never pass an option; literal options written in
/// `observe_args` reach the observe program as written.
#[tokio::test]
async fn hosts_cannot_start_with_a_dash_and_observe_args_keep_literal_options() {
    let text = "program = \"deploy.sh\"\nargs = [\"{host}\"]\nhosts = [\"web1\", \"-oProxyCommand=touch pwned\"]";
    let err = toml::from_str::<CommandConfig>(text)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "hosts: host `-oProxyCommand=touch pwned` starts with '-', which the programs would \
             read as an option: write the host's name, like `web1.internal`"
        ),
        "{err}"
    );
    // Built without the config file (a config assembled in code) it is refused all the same.
    let mut config = config("program = \"deploy.sh\"\nhosts = [\"web1\"]");
    config.hosts.push("-x".into());
    let err = CommandDeployer::new(&config, Path::new("/tmp"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("hosts: host `-x` starts with '-'"), "{err}");

    let dir = TempDir::new().unwrap();
    script(
        dir.path(),
        "observe.sh",
        r#"printf '[%s]' "$@" > observed; echo 2.0"#,
    );
    let d = deployer(
        r#"program = "deploy.sh"
observe_program = "observe.sh"
observe_args = ["--format=short", "-q", "{host}"]
hosts = ["web1"]"#,
        dir.path(),
    );
    let env = Name::parse("prod").unwrap();
    let service = Name::parse("billing").unwrap();
    assert_eq!(
        d.observe(&env, &service).await.unwrap(),
        Live::Running {
            version: "2.0".into()
        }
    );
    assert_eq!(
        read(&dir.path().join("observed")),
        "[--format=short][-q][web1]"
    );
}

/// Sets a variable of this test process (which every program ferry starts would inherit
/// without the allowlist).
fn set_env(name: &str, value: &str) {
    // SAFETY: only the environment test reads these variables, and std serialises its own
    // environment reads and writes (spawning a child reads the environment under that lock).
    unsafe { std::env::set_var(name, value) };
}

/// Deploy and health-check programs start with a cleared environment: ferry's secrets (a chat
/// token here) and its own inherited `FERRY_*` variables are absent, PATH and the `FERRY_*`
/// variables of the deploy are present, and `pass_env` adds exactly what it names.
#[tokio::test]
async fn programs_get_an_allowlisted_environment_not_ferrys_secrets() {
    set_env("SLACK_BOT_TOKEN", "xoxb-secret-token");
    set_env("FERRY_CONFIG", "/etc/ferry/secret-location.toml");
    set_env("FERRY_TEST_PASSED_PROFILE", "deploy-profile");
    set_env("FERRY_TEST_UNLISTED", "unlisted-value");
    let dir = TempDir::new().unwrap();
    script(dir.path(), "deploy.sh", "env > deploy.env");
    script(dir.path(), "healthy.sh", "env > verify.env");
    let d = deployer(
        r#"program = "deploy.sh"
verify_program = "healthy.sh"
pass_env = ["FERRY_TEST_PASSED_PROFILE", "FERRY_TEST_NOT_SET_ANYWHERE"]"#,
        dir.path(),
    );
    let req = request(&[("version", "1.0")]);

    d.apply(&req).await.expect("deploys");
    d.verify(&req, Duration::from_secs(10))
        .await
        .expect("healthy");

    for file in ["deploy.env", "verify.env"] {
        let env = read(&dir.path().join(file));
        let names: Vec<&str> = env
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, _)| k)
            .collect();
        assert!(!env.contains("xoxb-secret-token"), "{file}:\n{env}");
        assert!(!names.contains(&"SLACK_BOT_TOKEN"), "{file}:\n{env}");
        assert!(!names.contains(&"FERRY_CONFIG"), "{file}:\n{env}");
        assert!(!names.contains(&"FERRY_TEST_UNLISTED"), "{file}:\n{env}");
        assert!(
            !names.contains(&"FERRY_TEST_NOT_SET_ANYWHERE"),
            "{file}:\n{env}"
        );
        let path = std::env::var("PATH").unwrap();
        for expected in [
            format!("PATH={path}"),
            "FERRY_ENV=staging".to_string(),
            "FERRY_VERSION=1.0".to_string(),
            "FERRY_TEST_PASSED_PROFILE=deploy-profile".to_string(),
        ] {
            assert!(
                env.lines().any(|l| l == expected),
                "{file} lacks {expected}:\n{env}"
            );
        }
    }
}

#[test]
fn pass_env_names_must_be_variable_names() {
    let err = toml::from_str::<CommandConfig>("program = \"d.sh\"\npass_env = [\"AWS-PROFILE\"]")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "pass_env: `AWS-PROFILE` is not an environment variable name: use letters, digits \
             and `_`, not starting with a digit (e.g. `AWS_PROFILE`)"
        ),
        "{err}"
    );
}

/// The deployer tells its caller the process group of every program it starts, right after
/// starting it.
#[tokio::test]
async fn the_spawn_hook_is_told_each_programs_process_group() {
    let dir = TempDir::new().unwrap();
    script(
        dir.path(),
        "deploy.sh",
        "read -r _ _ _ _ pgid _ < /proc/$$/stat\necho $pgid >> groups",
    );
    let d = deployer(
        "program = \"deploy.sh\"\nhosts = [\"h1\", \"h2\"]",
        dir.path(),
    );
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut req = request(&[("version", "1.0")]);
    req.on_spawn = ferry::deploy::SpawnHook::new({
        let seen = seen.clone();
        move |pgid| seen.lock().unwrap().push(pgid.to_string())
    });

    d.apply(&req).await.expect("deploys");

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, lines(&dir.path().join("groups")));
    assert_eq!(seen.len(), 2);
}
