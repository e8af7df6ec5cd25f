//! Running a user-defined command's program: directly (never through a shell), in the commands
//! folder, with its values as argv and `FERRY_*` variables, killed with everything it started
//! at its timeout; the reply shows the tail of its output.

use super::Invocation;
use crate::command::{Context, Reply};
use crate::process::{Invocation as Process, SpawnHook, run, tail};
use std::path::PathBuf;
use std::time::Duration;

/// How long a program may run when its file gives no `timeout`.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The program an invocation runs, with the values substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Program {
    pub program: PathBuf,
    /// The program as written in the file, for replies.
    pub shown: String,
    pub args: Vec<String>,
    pub pass_env: Vec<String>,
    pub cwd: PathBuf,
    pub timeout: Duration,
}

impl Invocation {
    /// Runs `program` to its end or its timeout; a failure is a failed reply, not an error.
    pub(super) async fn run_program(&self, program: &Program, ctx: &Context<'_>) -> Reply {
        let process = Process {
            program: program.program.clone(),
            args: program.args.clone(),
            env: self.process_env(ctx),
            pass_env: program.pass_env.clone(),
            cwd: program.cwd.clone(),
            timeout: program.timeout,
            on_spawn: SpawnHook::default(),
        };
        let shown = program.shown.as_str();
        let (mut reply, output) = match run(&process).await {
            Ok(out) if out.success() => {
                let output = tail(&out.combined);
                let headline = format!("{}: done{}", self.line, last_line(&output));
                (Reply::ok(headline), output)
            }
            Ok(out) => {
                let status = match out.code {
                    Some(code) => format!("exit status {code}"),
                    None => "killed by a signal".to_string(),
                };
                let output = tail(&out.combined);
                let headline = format!(
                    "{}: {shown} failed ({status}){}",
                    self.line,
                    last_line(&output)
                );
                (Reply::failed(headline), output)
            }
            Err(e) => {
                // Name the program as the file does, not by the folder ferry happens to run in.
                let full = process.program.display().to_string();
                let message = e.message.replace(&full, shown);
                (Reply::failed(format!("{}: {message}", self.line)), e.output)
            }
        };
        if !output.is_empty() {
            reply = reply.text(format!("Output of {shown} (last lines):"));
            for line in output.lines() {
                reply = reply.text(format!("  {line}"));
            }
        }
        reply
    }

    /// `FERRY_PARAM_<NAME>` for each parameter, and who, what and where.
    fn process_env(&self, ctx: &Context<'_>) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .params
            .iter()
            .map(|(p, v)| (format!("FERRY_PARAM_{}", p.to_uppercase()), v.clone()))
            .collect();
        env.push(("FERRY_COMMAND".into(), self.name.clone()));
        env.push(("FERRY_ACTOR".into(), ctx.actor.identity()));
        env.push(("FERRY_REASON".into(), self.reason_text()));
        env.push((
            "FERRY_CONFIG_DIR".into(),
            ctx.config.base_dir.display().to_string(),
        ));
        env
    }
}

/// `: <last line>`, for a headline that says what the program concluded.
fn last_line(output: &str) -> String {
    match output.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) if line.chars().count() > 200 => {
            format!(": {}…", line.chars().take(200).collect::<String>())
        }
        Some(line) => format!(": {line}"),
        None => String::new(),
    }
}
