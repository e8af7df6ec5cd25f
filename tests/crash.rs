//! Crash safety and the deploy lease with real `ferry run` processes and the `command`
//! deployer running a shell script: a converge killed with SIGKILL
//! mid-deploy is reported `interrupted` by the next process that looks, `status` still works,
//! and the next converge is not blocked and deploys only what was not applied; two processes
//! converging one environment at once deploy each service exactly once, one of them refused
//! with the running deploy's id (on SQLite and on PostgreSQL); another environment converges
//! in parallel while one is busy; the deploy program of a killed ferry dies with it.

#[path = "support/pg.rs"]
mod pg;

use pg::TestDatabase;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// ferry.toml; `{url}` is the store.
const CONFIG: &str = r#"# crash.rs fixture: both environments deploy through deploy.sh.
[store]
url = "{url}"
seed = "environments"

[deployers.script]
kind = "command"
program = "deploy.sh"
args = ["{env}", "{service}", "{version}"]
timeout = "120s"

[environments.staging]
deployer = "script"
concurrency = 4

[environments.production]
deployer = "script"
concurrency = 4

[roles]
releaser = ["*"]

[users]
"shell:*" = ["releaser"]
default = []
"#;

/// The deploy program: sleeps for the seconds in `delay.<env>.<service>` or `delay.<env>`
/// (none when the file `fast` exists), noting its process group in `sleepers` first so that
/// the test can kill what a killed ferry leaves behind; then appends one line to deploy.log.
const SCRIPT: &str = r#"#!/bin/sh
set -eu
env="$1" service="$2" version="$3"
delay=0
if [ -f "delay.$env" ]; then delay=$(cat "delay.$env"); fi
if [ -f "delay.$env.$service" ]; then delay=$(cat "delay.$env.$service"); fi
if [ -f fast ]; then delay=0; fi
if [ "$delay" != 0 ]; then
  echo "$$" >> sleepers
  echo "$service: deploying for ${delay}s"
  sleep "$delay"
fi
printf '%s %s %s\n' "$env" "$service" "$version" >> deploy.log
echo "deployed $service $version to $env"
"#;

const SEED: &str = r#"[services.ms-a]
version = "1.0"

[services.ms-slow]
version = "1.0"
"#;

/// A folder with ferry.toml, deploy.sh and seeds. On drop, kills every process group the
/// script recorded, so that no orphaned `sleep` outlives the test.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(url: &str) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("ferry-crash-")
            .tempdir()
            .unwrap();
        let root = dir.path();
        std::fs::write(root.join("ferry.toml"), CONFIG.replace("{url}", url)).unwrap();
        let script = root.join("deploy.sh");
        std::fs::write(&script, SCRIPT).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(root.join("environments")).unwrap();
        for env in ["staging", "production"] {
            std::fs::write(root.join(format!("environments/{env}.toml")), SEED).unwrap();
        }
        Fixture { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.file(name), text).unwrap();
    }

    fn command(&self, text: &str) -> Command {
        let mut cmd = Command::new(FERRY);
        cmd.arg("run")
            .arg("--config")
            .arg(self.file("ferry.toml"))
            .arg("--user")
            .arg("dana")
            .arg(text)
            .current_dir(self.path())
            .env_remove("FERRY_CONFIG")
            .env_remove("FERRY_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn spawn(&self, text: &str) -> Running {
        Running(Some(self.command(text).spawn().unwrap()), text.to_string())
    }

    fn run(&self, text: &str) -> Done {
        self.spawn(text).finish(Duration::from_secs(60))
    }

    /// Runs a command that must exit 0; returns its stdout.
    fn ok(&self, text: &str) -> String {
        let done = self.run(text);
        assert_eq!(done.code, 0, "{done}");
        done.stdout
    }

    /// deploy.log, one `env service version` per line, sorted.
    fn log(&self) -> Vec<String> {
        let mut lines: Vec<String> = std::fs::read_to_string(self.file("deploy.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    }

    /// The process groups of deploy scripts that slept.
    fn sleepers(&self) -> Vec<i32> {
        std::fs::read_to_string(self.file("sleepers"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    fn kill_sleepers(&self) {
        for pgid in self.sleepers() {
            if pgid > 1 {
                // SAFETY: kill(2) with a negative pid signals that process group; no memory
                // is involved. A group that is already gone gives ESRCH, which is fine.
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.kill_sleepers();
    }
}

/// A `ferry run` still going; killed (SIGKILL) if dropped unfinished.
struct Running(Option<Child>, String);

/// A finished `ferry run`.
struct Done {
    command: String,
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}`: exit {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

impl Running {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }

    fn pid(&mut self) -> u32 {
        self.child().id()
    }

    fn is_running(&mut self) -> bool {
        self.child().try_wait().unwrap().is_none()
    }

    /// Waits (reading its output as it comes) at most `limit`.
    fn finish(mut self, limit: Duration) -> Done {
        let mut child = self.0.take().unwrap();
        let out_reader = read_all(child.stdout.take().unwrap());
        let err_reader = read_all(child.stderr.take().unwrap());
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{}` did not finish within {limit:?}", self.1);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Done {
            command: self.1.clone(),
            code: status.code().unwrap_or(-1),
            stdout: out_reader.join().unwrap(),
            stderr: err_reader.join().unwrap(),
        }
    }

    /// SIGKILL without reaping it: the process stays a zombie of this test, as a ferry whose
    /// parent never waits for it does.
    fn kill_9_leaving_a_zombie(&mut self) {
        // SAFETY: kill(2) only sends a signal to the child's PID.
        unsafe {
            libc::kill(self.child().id() as i32, libc::SIGKILL);
        }
    }

    /// SIGKILL, then reap it.
    fn kill_9(mut self) {
        let mut child = self.0.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads a pipe to its end on a thread, so that a chatty child never blocks on a full pipe.
fn read_all(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// True once `pid` is gone or a zombie (dead, only waiting to be reaped by whoever adopted it).
fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name: `123 (sh) S …`.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// Live (not zombie) processes of process group `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some((_, rest)) = stat.rsplit_once(") ") else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            !matches!(fields.first(), Some(&"Z") | Some(&"X"))
                && fields.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid)
        })
        .collect()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The deploy id in `… deploy #N …`.
fn deploy_id(text: &str) -> u64 {
    let at = text
        .find("deploy #")
        .unwrap_or_else(|| panic!("no deploy id: {text}"));
    text[at + "deploy #".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// `(deploy id, status)` of each row of a rendered `deploys` table, read from the `status`
/// column (the summary after it may say "running" too).
fn statuses(deploys: &str) -> Vec<(u64, String)> {
    let Some(header) = deploys
        .lines()
        .find(|l| l.trim_start().starts_with("deploy "))
    else {
        return Vec::new();
    };
    let column = header.find(" status ").expect("a status column") + 1;
    deploys
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .map(|l| {
            let id = l.trim_start()[1..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let status = l[column..].split_whitespace().next().unwrap_or_default();
            (id, status.to_string())
        })
        .collect()
}

fn is_running(deploys: &str) -> bool {
    statuses(deploys).iter().any(|(_, s)| s == "running")
}

/// The status of deploy `#id`.
fn status_of(deploys: &str, id: u64) -> String {
    statuses(deploys)
        .into_iter()
        .find(|(i, _)| *i == id)
        .unwrap_or_else(|| panic!("no deploy #{id}:\n{deploys}"))
        .1
}

/// The row of deploy `#id`.
fn deploy_row(text: &str, id: u64) -> String {
    let tag = format!("#{id} ");
    text.lines()
        .find(|l| l.trim_start().starts_with(&tag))
        .unwrap_or_else(|| panic!("no row for deploy #{id}:\n{text}"))
        .to_string()
}

/// Starts `converge staging` with ms-slow sleeping 30 s, waits until ms-a is applied and
/// ms-slow's script sleeps, kills ferry with SIGKILL and returns its pid.
/// Returns ferry's PID and the deploy script's process group, which still has a member.
fn converge_and_kill(fx: &Fixture) -> (u32, i32) {
    fx.write("delay.staging.ms-slow", "30");
    fx.ok("status staging"); // creates and seeds the store before the converge starts
    let mut converge = fx.spawn("converge staging");
    let pid = converge.pid();
    wait_until("the deploy to run", Duration::from_secs(20), || {
        assert!(converge.is_running(), "converge ended early");
        is_running(&fx.ok("deploys staging")) && !fx.sleepers().is_empty()
    });
    wait_until("ms-a to be applied", Duration::from_secs(20), || {
        fx.ok("status staging")
            .lines()
            .any(|l| l.trim_start().starts_with("ms-a ") && l.contains("1.0 (@1)"))
    });
    // ms-a's step is saved right after its applied state; give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    assert!(converge.is_running());
    let sleepers = fx.sleepers();
    assert_eq!(sleepers.len(), 1, "{sleepers:?}");
    // The deploy script is running mid-deploy when ferry is killed…
    assert!(!is_dead(sleepers[0]), "the deploy script ended too early");
    converge.kill_9();
    // …and dies with ferry (the kernel kills it when its parent goes), instead of deploying
    // on unsupervised. Its own children (the `sleep`) stay in its process group…
    wait_until(
        "the deploy script to die with ferry",
        Duration::from_secs(5),
        || is_dead(sleepers[0]),
    );
    assert!(
        !group_members(sleepers[0]).is_empty(),
        "the script's `sleep` outlives it"
    );
    // …until the next ferry process that looks reaps the deploy (see the callers).
    assert_eq!(fx.log(), ["staging ms-a 1.0"]);
    (pid, sleepers[0])
}

/// The reaper ended the group the dead deploy recorded, before anything could deploy the
/// service again.
fn assert_group_ended(pgid: i32) {
    let left = group_members(pgid);
    assert!(left.is_empty(), "still running after the reap: {left:?}");
}

#[test]
fn a_deploy_killed_mid_way_is_interrupted_and_blocks_nothing() {
    let fx = Fixture::new("sqlite://ferry.db");
    let (pid, group) = converge_and_kill(&fx);

    // The next process that looks marks it interrupted, saying how far it got.
    let deploys = fx.ok("deploys staging");
    assert_group_ended(group);
    let row = deploy_row(&deploys, 1);
    assert_eq!(status_of(&deploys, 1), "interrupted", "{deploys}");
    assert!(
        row.contains(&format!("/{pid}) stopped; 1 of 2 services had finished")),
        "{deploys}"
    );
    assert!(!is_running(&deploys), "{deploys}");

    let status = fx.ok("status staging");
    assert!(
        status.starts_with("staging@1: 1 not yet applied, 0 drifted"),
        "{status}"
    );
    assert!(!status.contains("Deploying now"), "{status}");

    // The next converge is not blocked, and deploys only what was not applied.
    fx.write("fast", "");
    let converge = fx.run("converge staging");
    assert_eq!(converge.code, 0, "{converge}");
    assert!(
        converge
            .stdout
            .starts_with("staging@1 deployed (deploy #2): 1 service deployed"),
        "{converge}"
    );
    assert_eq!(fx.log(), ["staging ms-a 1.0", "staging ms-slow 1.0"]);
    let deploys = fx.ok("deploys staging");
    assert_eq!(status_of(&deploys, 2), "succeeded", "{deploys}");
    assert_eq!(status_of(&deploys, 1), "interrupted", "{deploys}");
    let status = fx.ok("status staging");
    assert!(
        status.starts_with("staging@1: 2 services applied, no drift"),
        "{status}"
    );
}

#[test]
fn a_converge_right_after_the_kill_reaps_the_dead_deploy_itself() {
    let fx = Fixture::new("sqlite://ferry.db");
    let (pid, group) = converge_and_kill(&fx);
    fx.write("fast", "");
    // Nothing looked at the deploys in between: the converge finds the dead lease holder.
    let converge = fx.run("converge staging");
    assert_group_ended(group);
    assert_eq!(converge.code, 0, "{converge}");
    assert_eq!(deploy_id(&converge.stdout), 2, "{converge}");
    assert_eq!(fx.log(), ["staging ms-a 1.0", "staging ms-slow 1.0"]);
    let deploys = fx.ok("deploys staging");
    assert_eq!(status_of(&deploys, 1), "interrupted", "{deploys}");
    assert_eq!(status_of(&deploys, 2), "succeeded", "{deploys}");
    assert!(
        deploy_row(&deploys, 1).contains(&format!("/{pid}) stopped")),
        "{deploys}"
    );
}

/// A deploy whose owner was killed but not reaped by its parent (a zombie, which still has a
/// /proc entry) is dead at once: the next process does not wait for the lease to run out.
#[test]
fn a_deploy_owned_by_a_zombie_is_reaped_at_once() {
    let fx = Fixture::new("sqlite://ferry.db");
    fx.write("delay.staging.ms-slow", "30");
    fx.ok("status staging");
    let mut converge = fx.spawn("converge staging");
    let pid = converge.pid();
    wait_until("the deploy to run", Duration::from_secs(20), || {
        !fx.sleepers().is_empty()
    });
    converge.kill_9_leaving_a_zombie();
    wait_until("ferry to be a zombie", Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
    });
    let started = Instant::now();
    let deploys = fx.ok("deploys staging");
    assert_eq!(status_of(&deploys, 1), "interrupted", "{deploys}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited for the 30 s lease instead"
    );
}

/// A live deploy is never reaped by a ferry in another PID namespace (a container on the same
/// host name), where its PID is absent or names another process: only heartbeat staleness
/// can end it there.
#[test]
fn a_ferry_in_another_pid_namespace_does_not_reap_a_live_deploy() {
    let fx = Fixture::new("sqlite://ferry.db");
    fx.write("delay.staging.ms-slow", "30");
    fx.ok("status staging");
    let mut converge = fx.spawn("converge staging");
    wait_until("the deploy to run", Duration::from_secs(20), || {
        assert!(converge.is_running(), "converge ended early");
        !fx.sleepers().is_empty()
    });
    let mut inner = Command::new("unshare");
    inner
        .args(["--pid", "--fork", "--mount-proc", FERRY, "run", "--config"])
        .arg(fx.file("ferry.toml"))
        .args(["--user", "erin", "converge staging"])
        .current_dir(fx.path())
        .env_remove("FERRY_CONFIG")
        .stdin(Stdio::null());
    let out = inner
        .output()
        .expect("unshare (util-linux) runs as root here");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("unshare failed"),
        "this test needs PID namespaces (root): {stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("is already being deployed: deploy #1"),
        "{stdout}{stderr}"
    );
    assert!(converge.is_running());
    let deploys = fx.ok("deploys staging");
    assert!(is_running(&deploys), "{deploys}");
    assert_eq!(fx.log(), ["staging ms-a 1.0"], "nothing deployed twice");
    converge.kill_9();
}

/// Two `converge staging` at once: one deploys every service once, the other is refused with
/// the running deploy's id.
fn two_converges_at_once(fx: &Fixture) {
    fx.write("delay.staging", "1.5");
    fx.ok("status staging"); // the store exists and is seeded before the race
    let first = fx.spawn("converge staging");
    let second = fx.spawn("converge staging");
    let runs = [
        first.finish(Duration::from_secs(30)),
        second.finish(Duration::from_secs(30)),
    ];
    let mut codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
    codes.sort();
    assert_eq!(codes, [0, 1], "{}\n{}", runs[0], runs[1]);
    let winner = runs.iter().find(|r| r.code == 0).unwrap();
    let loser = runs.iter().find(|r| r.code == 1).unwrap();
    assert!(
        winner.stdout.starts_with("staging@1 deployed (deploy #"),
        "{winner}"
    );
    assert!(winner.stdout.contains("2 services deployed"), "{winner}");
    let id = deploy_id(&winner.stdout);
    assert!(
        loser.stdout.starts_with(&format!(
            "staging is already being deployed: deploy #{id} of staging@1 by dana"
        )),
        "{loser}"
    );
    assert!(loser.stdout.contains("Nothing changed."), "{loser}");
    assert_eq!(fx.log(), ["staging ms-a 1.0", "staging ms-slow 1.0"]);
    let deploys = fx.ok("deploys staging");
    assert!(
        deploys.starts_with("staging: 1 deploy, newest first"),
        "{deploys}"
    );
}

#[test]
fn two_processes_converging_one_environment_on_sqlite_deploy_once() {
    let fx = Fixture::new("sqlite://ferry.db");
    two_converges_at_once(&fx);
}

#[test]
fn two_processes_converging_one_environment_on_postgres_deploy_once() {
    let db = TestDatabase::create_blocking();
    let fx = Fixture::new(db.url());
    two_converges_at_once(&fx);
}

#[test]
fn another_environment_converges_while_one_is_busy() {
    let fx = Fixture::new("sqlite://ferry.db");
    fx.write("delay.staging", "4");
    fx.ok("status staging");
    let mut staging = fx.spawn("converge staging");
    wait_until("staging to be deploying", Duration::from_secs(20), || {
        is_running(&fx.ok("deploys staging"))
    });

    let production = fx.run("converge production");
    assert_eq!(production.code, 0, "{production}");
    assert!(
        production
            .stdout
            .starts_with("production@1 deployed (deploy #"),
        "{production}"
    );
    // It neither waited for staging nor was refused: staging is still deploying.
    assert!(staging.is_running(), "staging finished first");
    assert!(is_running(&fx.ok("deploys staging")));
    assert_eq!(fx.log(), ["production ms-a 1.0", "production ms-slow 1.0"]);

    let staging = staging.finish(Duration::from_secs(30));
    assert_eq!(staging.code, 0, "{staging}");
    assert_eq!(
        fx.log(),
        [
            "production ms-a 1.0",
            "production ms-slow 1.0",
            "staging ms-a 1.0",
            "staging ms-slow 1.0"
        ]
    );
}
