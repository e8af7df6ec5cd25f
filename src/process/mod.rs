//! Running a program: no shell, its own process group (so a timeout kills
//! everything it started), stdin closed, stdout and stderr captured together with only the
//! tail kept for replies. Every program ferry starts (deploy, verify, observe, preflight,
//! user-defined commands) starts here, with a cleared environment plus an allowlist, and on
//! Linux dies with ferry.

mod env;
mod group;

pub use env::{EnvNameError, INHERITED_ENV, check_env_name};
pub use group::SpawnHook;

use group::{GroupGuard, die_with_parent, kill_group};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// Output kept per run: enough for a useful tail, bounded for memory.
const KEEP_BYTES: usize = 64 * 1024;
/// Lines shown from the tail in replies.
const TAIL_LINES: usize = 12;

/// Why a program could not be run to its end: it did not start, could not be waited for, or
/// timed out (then `output` holds the tail of what it printed before it was killed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProcessError {
    pub message: String,
    /// The last lines the program printed.
    pub output: String,
}

impl ProcessError {
    fn new(message: String) -> ProcessError {
        ProcessError {
            message,
            output: String::new(),
        }
    }
}

/// How a program ended.
#[derive(Debug, Clone)]
pub struct ProcessOutput {
    /// `Some(0)` is success; `None` when killed by a signal.
    pub code: Option<i32>,
    /// stdout and stderr interleaved as they arrived (the last 64 KiB).
    pub combined: String,
    /// stdout alone (the last 64 KiB), for observers.
    pub stdout: String,
}

impl ProcessOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Variables ferry sets for this run (`FERRY_ENV`, …); they win over inherited ones.
    pub env: Vec<(String, String)>,
    /// Variables inherited from ferry's environment beyond `INHERITED_ENV`, as the config
    /// names them (`pass_env`); one that is not set is left out.
    pub pass_env: Vec<String>,
    pub cwd: PathBuf,
    pub timeout: Duration,
    /// Told the process group id once the program runs.
    pub on_spawn: SpawnHook,
}

/// Runs `inv` to completion or until its timeout, when its whole process group is killed.
///
/// The program is started from the calling task's thread (tokio forks there), never from a
/// `spawn_blocking` thread: on Linux the child is told to die when the thread that forked it
/// ends (`PR_SET_PDEATHSIG`), and a blocking-pool thread ends after a few idle seconds while a
/// runtime's worker threads (and ferry's single-threaded runtime's main thread) live as long as
/// ferry does.
pub async fn run(inv: &Invocation) -> Result<ProcessOutput, ProcessError> {
    let mut command = Command::new(&inv.program);
    command.env_clear();
    for name in INHERITED_ENV
        .iter()
        .copied()
        .chain(inv.pass_env.iter().map(String::as_str))
    {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
        .args(&inv.args)
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&inv.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    die_with_parent(&mut command);
    let mut child = command
        .spawn()
        .map_err(|e| ProcessError::new(format!("cannot start {}: {e}", display(&inv.program))))?;
    let pid = child.id();
    // The child leads its own group (`process_group(0)`), so its pid is the group id.
    if let Some(pgid) = pid {
        inv.on_spawn.call(pgid);
    }
    // If this future is dropped (the deploy was cancelled), the whole group goes with it, not
    // only the direct child that `kill_on_drop` covers.
    let mut guard = GroupGuard(pid);
    let combined = Arc::new(Mutex::new(Vec::new()));
    let stdout_only = Arc::new(Mutex::new(Vec::new()));
    let out = child
        .stdout
        .take()
        .map(|s| tokio::spawn(pump(s, vec![combined.clone(), stdout_only.clone()])));
    let err = child
        .stderr
        .take()
        .map(|s| tokio::spawn(pump(s, vec![combined.clone()])));
    let waited = tokio::time::timeout(inv.timeout, child.wait()).await;
    let status = match waited {
        Ok(status) => status.map_err(|e| {
            ProcessError::new(format!("waiting for {}: {e}", display(&inv.program)))
        })?,
        Err(_) => {
            kill_group(pid);
            guard.0 = None;
            let _ = child.wait().await;
            for task in [out, err].into_iter().flatten() {
                let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
            }
            return Err(ProcessError {
                message: format!(
                    "{} timed out after {}s and was killed",
                    display(&inv.program),
                    inv.timeout.as_secs_f32()
                ),
                output: tail(&text(&combined)),
            });
        }
    };
    // The program may have left children holding the pipes open; do not wait for them forever.
    for task in [out, err].into_iter().flatten() {
        if tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .is_err()
        {
            kill_group(pid);
        }
    }
    Ok(ProcessOutput {
        code: status.code(),
        combined: text(&combined),
        stdout: text(&stdout_only),
    })
}

async fn pump(mut source: impl AsyncRead + Unpin, sinks: Vec<Arc<Mutex<Vec<u8>>>>) {
    let mut buf = [0u8; 8192];
    loop {
        match source.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                for sink in &sinks {
                    let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
                    sink.extend_from_slice(&buf[..n]);
                    if sink.len() > KEEP_BYTES {
                        let excess = sink.len() - KEEP_BYTES;
                        sink.drain(..excess);
                    }
                }
            }
        }
    }
}

fn text(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

fn display(program: &Path) -> String {
    program.display().to_string()
}

/// The last lines of `output`, trimmed, for showing in chat.
pub fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.trim_end().lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout_ms: u64) -> Invocation {
        Invocation {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![],
            pass_env: vec![],
            cwd: std::env::temp_dir(),
            timeout: Duration::from_millis(timeout_ms),
            on_spawn: SpawnHook::default(),
        }
    }

    #[tokio::test]
    async fn captures_exit_code_and_both_streams() {
        let out = run(&sh("echo out; echo err >&2; exit 3", 5000))
            .await
            .unwrap();
        assert_eq!(out.code, Some(3));
        assert!(out.combined.contains("out") && out.combined.contains("err"));
        assert_eq!(out.stdout.trim(), "out");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group() {
        let started = std::time::Instant::now();
        let err = run(&sh("echo begun; sleep 30 & sleep 30; echo never", 300))
            .await
            .unwrap_err();
        assert!(err.message.contains("timed out"), "{}", err.message);
        assert!(err.output.contains("begun"));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn the_spawn_hook_gets_the_process_group_id() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut inv = sh("read -r _ _ _ _ pgid _ < /proc/$$/stat; echo $pgid", 5000);
        inv.on_spawn = SpawnHook::new({
            let seen = seen.clone();
            move |pgid| seen.lock().unwrap().push(pgid)
        });
        let out = run(&inv).await.unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{seen:?}");
        // The group the program reports for itself is the one the hook was told.
        assert_eq!(out.stdout.trim(), seen[0].to_string());
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let many: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let t = tail(&many);
        assert!(t.starts_with("line 88") && t.ends_with("line 99"));
    }
}
