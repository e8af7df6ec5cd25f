//! Helpers shared by the process-level tests (`race.rs`, `bad_input.rs`): a self-contained
//! fixture (ferry.toml + seed files in a tempdir, noop deployer), running the real `ferry`
//! binary against it. The scratch PostgreSQL database is `tests/support/pg.rs`.
//!
//! Each test binary uses only part of this module.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The ferry binary built by cargo for this test run.
pub const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// The seed of `staging`: two services, so that "did you mean" has something to choose from.
pub const STAGING_SEED: &str = r#"[services.ms-users]
version = "3.5.6"
image = "registry.example.com/ms-users"

[services.ms-billing]
version = "1.2.0"
image = "registry.example.com/ms-billing"
"#;

pub const PRODUCTION_SEED: &str = r#"[services.ms-users]
version = "3.5.5"
image = "registry.example.com/ms-users"

[services.ms-billing]
version = "1.2.0"
image = "registry.example.com/ms-billing"
"#;

/// ferry.toml for the fixture; `{url}` is replaced by the store URL.
const CONFIG: &str = r#"# Test fixture: two environments, a deployer that touches nothing.
[bot]
name = "ferry"
prefixes = ["!"]

[store]
url = "{url}"
seed = "environments"

[deployers.none]
kind = "noop"

[environments.staging]
deployer = "none"
concurrency = 4
promote_to = ["production"]

[environments.production]
deployer = "none"
protected = true
approvals = 1

[roles]
viewer   = ["read"]
deployer = ["read", "write:staging", "converge:staging", "promote:staging", "rollback:staging"]
releaser = ["read", "write:*", "converge:*", "promote:*", "approve:*", "rollback:*"]

[users]
"shell:alice" = ["deployer"]
"shell:bob"   = ["releaser"]
"shell:dana"  = ["releaser"]
default = ["viewer"]
"#;

/// A working folder holding ferry.toml and `environments/*.toml`. Deleted on drop.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store_url: String,
}

impl Fixture {
    /// A fixture whose store is the SQLite file `ferry.db` in the folder (not created yet).
    pub fn sqlite() -> Fixture {
        Fixture::with_store("sqlite://ferry.db")
    }

    /// A fixture whose store is at `url`.
    pub fn with_store(url: &str) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("ferry-test-")
            .tempdir()
            .expect("create a temp dir");
        let root = dir.path();
        std::fs::write(root.join("ferry.toml"), CONFIG.replace("{url}", url))
            .expect("write ferry.toml");
        std::fs::create_dir(root.join("environments")).expect("create environments/");
        std::fs::write(root.join("environments/staging.toml"), STAGING_SEED)
            .expect("write staging seed");
        std::fs::write(root.join("environments/production.toml"), PRODUCTION_SEED)
            .expect("write production seed");
        Fixture {
            dir,
            store_url: url.to_string(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("ferry.toml")
    }

    /// The SQLite file of a `sqlite://ferry.db` fixture.
    pub fn db_file(&self) -> PathBuf {
        self.path().join("ferry.db")
    }

    /// `ferry run --config … --user USER COMMAND`, as one argv word, from the fixture folder.
    fn run_command(&self, user: &str, command: &str) -> Command {
        let mut cmd = Command::new(FERRY);
        cmd.arg("run")
            .arg("--config")
            .arg(self.config())
            .arg("--user")
            .arg(user)
            .arg(command)
            .current_dir(self.path())
            .env_remove("FERRY_CONFIG")
            .env_remove("FERRY_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs one command to completion.
    pub fn run(&self, user: &str, command: &str) -> Run {
        let child = self
            .run_command(user, command)
            .spawn()
            .expect("start ferry run");
        Run::wait(child, command, Duration::from_secs(60))
    }

    /// Runs one command that must succeed, returning its stdout.
    pub fn ok(&self, user: &str, command: &str) -> String {
        let run = self.run(user, command);
        assert_eq!(run.code, 0, "`{command}` as {user} failed:\n{run}");
        run.stdout
    }

    /// Starts one command without waiting for it.
    pub fn spawn(&self, user: &str, command: &str) -> Child {
        self.run_command(user, command)
            .spawn()
            .expect("start ferry run")
    }

    /// `ferry shell` with `input` piped to its stdin.
    pub fn shell(&self, user: &str, input: &[u8]) -> Run {
        let mut child = Command::new(FERRY)
            .arg("shell")
            .arg("--config")
            .arg(self.config())
            .arg("--user")
            .arg(user)
            .current_dir(self.path())
            .env_remove("FERRY_CONFIG")
            .env_remove("FERRY_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ferry shell");
        let mut stdin = child.stdin.take().expect("shell stdin");
        let input = input.to_vec();
        // Write from another thread so that a full stdout pipe cannot deadlock us.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let run = Run::wait(child, "ferry shell", Duration::from_secs(60));
        writer.join().expect("stdin writer");
        run
    }
}

/// A finished `ferry` process.
#[derive(Debug, Clone)]
pub struct Run {
    pub command: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Waits for `child`, killing it (and failing) after `limit`.
    pub fn wait(mut child: Child, command: &str, limit: Duration) -> Run {
        let deadline = Instant::now() + limit;
        // Drain the pipes on threads so that a chatty child never blocks on a full pipe.
        let mut out = child.stdout.take().expect("stdout piped");
        let mut err = child.stderr.take().expect("stderr piped");
        let out = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut out, &mut buf);
            buf
        });
        let err = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut err, &mut buf);
            buf
        });
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for ferry") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{command}` did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let output = Output {
            status,
            stdout: out.join().expect("stdout reader"),
            stderr: err.join().expect("stderr reader"),
        };
        Run {
            command: command.to_string(),
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The first line of stdout: the reply's headline.
    pub fn headline(&self) -> &str {
        self.stdout.lines().next().unwrap_or_default()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The data rows of a rendered table (lines indented by two spaces), header excluded, each
/// split into its whitespace-separated words.
pub fn table_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with("  "))
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// A current-thread tokio runtime for the few in-process store reads the tests make.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A reply as the shell prints it.
pub fn shown(reply: &ferry::command::Reply) -> String {
    ferry::chat::text::render(reply)
}

/// The id of the approval request a reply asks for (`approve 7` → `7`).
pub fn request_id(reply: &ferry::command::Reply) -> String {
    let text = shown(reply);
    let at = text
        .find("approve ")
        .unwrap_or_else(|| panic!("no approve command in: {text}"));
    text[at + 8..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}
