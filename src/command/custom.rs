//! User-defined commands (design §6): `commands/*.toml`, one command per file, declared without
//! Rust, like hubot scripts or StackStorm aliases.
//!
//! ```toml
//! # commands/ship.toml
//! pattern = "ship {service} {version} to {env}"
//! help = """
//! Set a service's version in an environment and deploy it.
//! (Further lines are shown by `help ship`.)"""
//! permission = "write:{env}"
//! steps = [
//!   "env {env}.{service}.version {version} -- {reason}",
//!   "converge {env}",
//! ]
//! ```
//!
//! ```toml
//! # commands/smoke.toml
//! pattern = "smoke {env}"
//! help = "Smoke-test an environment."
//! permission = "read"
//! program = "scripts/smoke.sh"    # relative to the commands folder, or absolute
//! args = ["{env}"]                # each template is exactly one argument
//! timeout = "2m"                  # default 60s
//! ```
//!
//! Keys (any other key is an error naming the nearest valid one):
//!
//! - `pattern`: the command's words. The first is the command's name: a literal, written like
//!   an environment name (`[a-z0-9][a-z0-9-]*`), and not the name of a built-in command or of
//!   another file's command. Every other word is either a literal that must be typed as written
//!   (case does not matter) or a `{param}` (`[a-z][a-z0-9_]*`) that matches exactly one word.
//! - `help`: the first line is the summary `help` lists; `help <name>` shows all of it.
//! - `permission`: what the user must hold before anything runs: `read`, or a verb (`write`,
//!   `converge`, `promote`, `rollback`, `approve`, `force`) with an environment, literal or a
//!   parameter: `write:staging`, `converge:{env}`.
//! - Either `steps`: built-in commands run in order as the same user, each checking its own
//!   permissions too (so a user-defined command never grants more than its steps would), stopping
//!   at the first that fails or is refused;
//! - or `program`, `args`, `timeout`: a program run directly (never through a shell) in the
//!   commands folder, with `args` as its argv, `FERRY_PARAM_<NAME>` for every parameter,
//!   `FERRY_COMMAND`, `FERRY_ACTOR` (`shell:alice`), `FERRY_REASON` and `FERRY_CONFIG_DIR` (the
//!   folder of `ferry.toml`) in its environment, killed with everything it started at the
//!   timeout. Exit status 0 is success; the reply shows the tail of its output. Its
//!   environment is cleared but for PATH, HOME, LANG, LC_ALL, TZ, TMPDIR, USER, the variables
//!   above and those `pass_env = ["AWS_PROFILE"]` names.
//!
//! Templates (steps and args) use `{param}` for a pattern parameter, `{reason}` for the text
//! typed after `--` (or, when none was typed, the command line itself, so that revisions made by
//! a step say which command made them), and `{{` / `}}` for literal braces. In a step, `{reason}`
//! may only appear after a standalone `--`, where it is free text and cannot become arguments. A
//! user may type a reason only for commands that use `{reason}`.
//!
//! Typed values are checked before anything runs: one word of letters, digits and
//! `. _ - + : / @ = ,` (no spaces, quotes or shell characters; not starting with `-`, so that it
//! cannot be taken for an option; no `..`), at most 256 bytes. Parameters named `env` or
//! `service`, and those used as the permission's environment, must be valid names
//! (`[a-z0-9][a-z0-9-]*`), and an `{env}` must be a configured environment.
//!
//! Every file is validated when ferry starts (and by `check-config`); an error names the file and
//! the line of the offending value.

use super::error::{CommandError, ParseError};
use super::{Block, COMMANDS, Context, Reply, lexer};
use crate::config::{ConfigError, HumanDuration};
use crate::domain::{Name, Outcome, nearest, render_duration};
use crate::policy::{Permission, Verb};
use crate::process::{Invocation as Process, SpawnHook, check_env_name, run as run_process, tail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

/// How long a program may run when its file gives no `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest typed parameter value: ample for versions, digests and image references.
const MAX_PARAM_BYTES: usize = 256;
/// Longest parameter name, so that `FERRY_PARAM_<NAME>` stays reasonable.
const MAX_PARAM_NAME: usize = 32;
/// The placeholder for the reason typed after `--`; not available as a parameter name.
const REASON: &str = "reason";
/// Parameters whose values are always environment or service names.
const NAME_PARAMS: &[&str] = &["env", "service"];
/// Stands in for `{reason}` when checking where a step puts it; a private-use character, so
/// that it never occurs in a step's own text and the lexer accepts it.
const REASON_MARK: &str = "\u{E000}";

/// The user-defined commands of one folder. Cheap to clone: the definitions are shared.
#[derive(Debug, Clone, Default)]
pub struct CustomCommands {
    commands: Arc<Vec<Definition>>,
}

impl CustomCommands {
    /// Loads every `*.toml` of `dir`, in file-name order. A missing folder is an empty set, so
    /// that configurations without user-defined commands need nothing; a bad file is an error
    /// naming the file and line.
    pub fn load(dir: &Path) -> Result<CustomCommands, ConfigError> {
        let folder = dir.display().to_string();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(CustomCommands::empty());
            }
            Err(e) => {
                return Err(ConfigError::new(
                    &folder,
                    None,
                    format!("cannot read the commands folder: {e}"),
                ));
            }
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| {
                ConfigError::new(
                    &folder,
                    None,
                    format!("cannot read the commands folder: {e}"),
                )
            })?;
            let path = entry.path();
            let visible = !entry.file_name().to_string_lossy().starts_with('.');
            if visible && path.extension().is_some_and(|x| x == "toml") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let base = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut commands: Vec<Definition> = Vec::new();
        for path in files {
            let label = path.display().to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::new(&label, None, format!("cannot read it: {e}")))?;
            let (definition, name_at) = Definition::parse(&label, &text, &base)?;
            if let Some(other) = commands.iter().find(|c| c.name == definition.name) {
                return Err(ConfigError::at(
                    &label,
                    &text,
                    name_at,
                    format!(
                        "the command `{}` is already defined in {}; give this one another name",
                        definition.name, other.file
                    ),
                ));
            }
            commands.push(definition);
        }
        Ok(CustomCommands {
            commands: Arc::new(commands),
        })
    }

    /// No user-defined commands.
    pub fn empty() -> CustomCommands {
        CustomCommands::default()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// The commands' names, in file order: for "did you mean" suggestions and summaries.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.commands.iter().map(|c| c.name.as_str())
    }

    /// `None` when the first word is not a user-defined command; `Some(Err)` when it is but the
    /// words don't fit (the error shows the pattern as usage).
    pub fn parse(&self, text: &str) -> Option<Result<Invocation, ParseError>> {
        let line = lexer::lex(text);
        let first = match &line {
            Ok(line) => line.words.first()?.text.to_lowercase(),
            Err(_) => text.split_whitespace().next()?.to_lowercase(),
        };
        let definition = self.find(&first)?;
        Some(line.and_then(|line| definition.invoke(line)))
    }

    /// (usage, summary) rows for `help`.
    pub fn help_rows(&self) -> Vec<(String, String)> {
        self.commands
            .iter()
            .map(|c| (c.usage(), c.summary().to_string()))
            .collect()
    }

    /// Long help for `help <name>`: usage, the whole help text, the permission, what it runs and
    /// where it is defined, one item a line.
    pub fn help_for(&self, name: &str) -> Option<String> {
        self.find(&name.to_lowercase()).map(Definition::long_help)
    }

    fn find(&self, name: &str) -> Option<&Definition> {
        self.commands.iter().find(|c| c.name == name)
    }
}

/// A user-defined command matched against a command line: the values typed and, already
/// expanded with them, exactly what will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    name: String,
    /// The command as matched, one space between words, without the reason.
    line: String,
    /// Parameter values in pattern order.
    params: Vec<(String, String)>,
    env: Option<Name>,
    permission: Permission,
    reason: Option<String>,
    run: Run,
}

/// What an invocation runs, with the values substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Run {
    Steps(Vec<String>),
    Program {
        program: PathBuf,
        /// The program as written in the file, for replies.
        shown: String,
        args: Vec<String>,
        pass_env: Vec<String>,
        cwd: PathBuf,
        timeout: Duration,
    },
}

impl Invocation {
    /// The `{env}` parameter, for the audit trail.
    pub fn env(&self) -> Option<&Name> {
        self.env.as_ref()
    }

    /// The command's name (the pattern's first word).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value typed for `param`.
    pub fn param(&self, param: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(p, _)| p == param)
            .map(|(_, v)| v.as_str())
    }

    /// The built-in command lines this runs, for a `steps` command.
    pub fn steps(&self) -> Option<&[String]> {
        match &self.run {
            Run::Steps(steps) => Some(steps),
            Run::Program { .. } => None,
        }
    }

    /// The argv (after the program) this runs, for a `program` command.
    pub fn args(&self) -> Option<&[String]> {
        match &self.run {
            Run::Program { args, .. } => Some(args),
            Run::Steps(_) => None,
        }
    }

    /// Checks the environment and the required permission, then runs the steps or the program.
    pub async fn execute(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        if let Some(env) = &self.env {
            ctx.environment(env)?;
        }
        ctx.require(self.permission.clone())?;
        match &self.run {
            Run::Steps(steps) => Ok(self.run_steps(steps, ctx).await),
            Run::Program {
                program,
                shown,
                args,
                pass_env,
                cwd,
                timeout,
            } => {
                let process = Process {
                    program: program.clone(),
                    args: args.clone(),
                    env: self.process_env(ctx),
                    pass_env: pass_env.clone(),
                    cwd: cwd.clone(),
                    timeout: *timeout,
                    on_spawn: SpawnHook::default(),
                };
                Ok(self.run_program(shown, &process).await)
            }
        }
    }

    /// Runs each step as its own built-in command with the same user, stopping at the first
    /// that does not end `Ok`. Earlier steps are not undone: the reply says which took effect.
    async fn run_steps(&self, steps: &[String], ctx: &Context<'_>) -> Reply {
        let total = steps.len();
        let mut done = Done::default();
        for (i, step) in steps.iter().enumerate() {
            let sub = Context { text: step, ..*ctx };
            let result = match super::parse(step) {
                Err(e) => Err(CommandError::from(e)),
                // Boxed: a step is a built-in command, which may one day route back here.
                Ok(command) => Box::pin(command.execute(&sub)).await,
            };
            let (reply, errored) = match result {
                Ok(reply) => (reply, false),
                Err(e) => {
                    if let CommandError::Store(store) = &e {
                        tracing::error!(error = %store, step = %step, "store failure in a step");
                    }
                    (Reply::from_error(&e), true)
                }
            };
            if reply.outcome != Outcome::Ok || errored {
                return self.step_failed(steps, i, reply, errored, done);
            }
            done.lines
                .push(format!("{}. {step}: {}", i + 1, reply.headline));
            done.alert = reply.alert.or(done.alert);
            if i + 1 == total {
                // The last step's detail is the command's (a converge's deploy table).
                done.actions.extend(reply.blocks);
            } else {
                // What an earlier step asks the user to do next (`approve 7`) must not be lost.
                done.actions
                    .extend(reply.blocks.into_iter().filter(is_action));
            }
        }
        let mut reply = Reply::ok(format!(
            "{}: {total} of {total} step{} done",
            self.name,
            plural(total)
        ));
        reply.alert = done.alert;
        for line in done.lines {
            reply = reply.text(line);
        }
        reply.blocks.extend(done.actions);
        reply
    }

    /// The reply for step `index` ending in `failed` (an error's reply when `errored`).
    fn step_failed(
        &self,
        steps: &[String],
        index: usize,
        failed: Reply,
        errored: bool,
        done: Done,
    ) -> Reply {
        let total = steps.len();
        let step = &steps[index];
        // A first step that was refused refused the whole command; once a step has taken
        // effect, a later refusal leaves a half-done command, which is a failure.
        let outcome = if index == 0 {
            failed.outcome
        } else {
            Outcome::Failed
        };
        let mut reply = Reply::failed(format!(
            "{}: step {} of {total} ({step}) failed: {}",
            self.name,
            index + 1,
            failed.headline
        ));
        reply.outcome = outcome;
        // A failed deploy's announcement for the alert channel must not be lost by wrapping.
        reply.alert = failed.alert.or(done.alert);
        for line in done.lines {
            reply = reply.text(line);
        }
        reply.blocks.extend(done.actions);
        let verb = if failed.outcome == Outcome::Refused {
            "refused"
        } else {
            "failed"
        };
        reply = reply.text(format!("{}. {step}: {verb}", index + 1));
        let nothing_changed = Block::Text("Nothing changed.".to_string());
        reply
            .blocks
            .extend(failed.blocks.into_iter().filter(|b| *b != nothing_changed));
        for (j, skipped) in steps.iter().enumerate().skip(index + 1) {
            reply = reply.text(format!("{}. {skipped}: not run", j + 1));
        }
        match index {
            0 if errored => reply.text("Nothing changed."),
            0 => reply,
            1 => reply.text("Step 1 took effect and was not undone."),
            n => reply.text(format!("Steps 1 to {n} took effect and were not undone.")),
        }
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

    async fn run_program(&self, shown: &str, process: &Process) -> Reply {
        let (mut reply, output) = match run_process(process).await {
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

    fn reason_text(&self) -> String {
        self.reason.clone().unwrap_or_else(|| self.line.clone())
    }
}

/// What the steps that succeeded so far contribute to the reply.
#[derive(Default)]
struct Done {
    /// `1. <step>: <its headline>`, one per step.
    lines: Vec<String>,
    /// Blocks carried into the reply: what to do next, and the last step's detail.
    actions: Vec<Block>,
    /// A step's announcement for the environment's alert channel.
    alert: Option<(Name, String)>,
}

/// Whether `block` asks the user to do something (a command to type, buttons to press).
fn is_action(block: &Block) -> bool {
    !matches!(block, Block::Text(_) | Block::Table { .. })
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

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// One file, validated.
#[derive(Debug)]
struct Definition {
    name: String,
    /// The pattern's words after the name.
    words: Vec<PatternWord>,
    help: String,
    permission: PermissionTemplate,
    action: Action,
    /// Whether a template uses `{reason}` (only then may the user type one).
    uses_reason: bool,
    /// The file it came from, for `help` and duplicate errors.
    file: String,
}

/// A word of a pattern after the name.
#[derive(Debug, PartialEq, Eq)]
enum PatternWord {
    /// Must be typed as written (stored lower-case; compared ignoring case).
    Literal(String),
    /// Matches exactly one typed word.
    Param(String),
}

/// The required permission, its environment possibly a parameter filled in when invoked.
#[derive(Debug)]
struct PermissionTemplate {
    verb: Verb,
    env: Option<EnvRef>,
}

/// `write:staging` or `write:{env}`.
#[derive(Debug)]
enum EnvRef {
    Literal(Name),
    Param(String),
}

/// What a definition runs, before the values are known.
#[derive(Debug)]
enum Action {
    Steps(Vec<Template>),
    Program {
        path: PathBuf,
        shown: String,
        args: Vec<Template>,
        pass_env: Vec<String>,
        cwd: PathBuf,
        timeout: Duration,
    },
}

/// The file as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    pattern: Spanned<String>,
    help: Spanned<String>,
    permission: Spanned<String>,
    steps: Option<Spanned<Vec<Spanned<String>>>>,
    program: Option<Spanned<String>>,
    args: Option<Spanned<Vec<Spanned<String>>>>,
    timeout: Option<Spanned<HumanDuration>>,
    pass_env: Option<Spanned<Vec<Spanned<String>>>>,
}

impl Definition {
    /// Parses and validates one file; also returns the byte offset of the pattern, where a
    /// clash with another file's command name is reported.
    fn parse(label: &str, text: &str, dir: &Path) -> Result<(Definition, usize), ConfigError> {
        let raw: RawCommand =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(label, text, &e))?;
        let at = |at: usize, message: String| ConfigError::at(label, text, at, message);
        let pattern_at = raw.pattern.span().start;
        let (name, words) = parse_pattern(raw.pattern.get_ref()).map_err(|m| at(pattern_at, m))?;
        let params: Vec<&str> = words
            .iter()
            .filter_map(|w| match w {
                PatternWord::Param(p) => Some(p.as_str()),
                PatternWord::Literal(_) => None,
            })
            .collect();

        let help = raw.help.get_ref().trim().to_string();
        if help.is_empty() {
            return Err(at(
                raw.help.span().start,
                "`help` is empty: say in one line what the command does".into(),
            ));
        }
        let permission = parse_permission(raw.permission.get_ref(), &params)
            .map_err(|m| at(raw.permission.span().start, m))?;

        let action = match (raw.steps, raw.program) {
            (Some(_), Some(program)) => {
                return Err(at(
                    program.span().start,
                    "give either `steps` (built-in commands to run in order) or `program` (a program to run), not both".into(),
                ));
            }
            (None, None) => {
                return Err(at(
                    pattern_at,
                    "nothing to run: add `steps` (built-in commands to run in order) or `program` (a program to run)".into(),
                ));
            }
            (Some(steps), None) => {
                for (key, span) in [
                    ("args", raw.args.as_ref().map(|a| a.span())),
                    ("timeout", raw.timeout.as_ref().map(|t| t.span())),
                    ("pass_env", raw.pass_env.as_ref().map(|p| p.span())),
                ] {
                    if let Some(span) = span {
                        return Err(at(
                            span.start,
                            format!("`{key}` only applies to a `program`, not to `steps`"),
                        ));
                    }
                }
                let steps_at = steps.span().start;
                let steps = steps.into_inner();
                if steps.is_empty() {
                    return Err(at(
                        steps_at,
                        "`steps` is empty: list at least one built-in command".into(),
                    ));
                }
                let mut templates = Vec::new();
                for step in steps {
                    let step_at = step.span().start;
                    let template =
                        parse_step(step.get_ref(), &params).map_err(|m| at(step_at, m))?;
                    templates.push(template);
                }
                Action::Steps(templates)
            }
            (None, Some(program)) => {
                let program_at = program.span().start;
                let shown = program.into_inner();
                let path = check_program(&shown, dir).map_err(|m| at(program_at, m))?;
                let mut args = Vec::new();
                for arg in raw.args.map(Spanned::into_inner).unwrap_or_default() {
                    let arg_at = arg.span().start;
                    let template = Template::parse(arg.get_ref(), &params)
                        .map_err(|m| at(arg_at, format!("argument `{}`: {m}", arg.get_ref())))?;
                    args.push(template);
                }
                let mut pass_env = Vec::new();
                for name in raw.pass_env.map(Spanned::into_inner).unwrap_or_default() {
                    check_env_name(name.get_ref())
                        .map_err(|m| at(name.span().start, format!("pass_env: {m}")))?;
                    pass_env.push(name.into_inner());
                }
                Action::Program {
                    path,
                    shown,
                    args,
                    pass_env,
                    cwd: dir.to_path_buf(),
                    timeout: raw.timeout.map_or(DEFAULT_TIMEOUT, |t| t.into_inner().0),
                }
            }
        };

        if let Action::Steps(steps) = &action {
            // A parameter no step or permission uses is almost certainly a typo in a step.
            for param in &params {
                let in_permission = matches!(&permission.env, Some(EnvRef::Param(p)) if p == param);
                if !in_permission && !steps.iter().any(|s| s.uses(param)) {
                    return Err(at(
                        pattern_at,
                        format!(
                            "parameter `{{{param}}}` is not used by any step or the permission"
                        ),
                    ));
                }
            }
        }
        let uses_reason = match &action {
            Action::Steps(templates)
            | Action::Program {
                args: templates, ..
            } => templates.iter().any(|t| t.uses(REASON)),
        };
        let definition = Definition {
            name,
            words,
            help,
            permission,
            action,
            uses_reason,
            file: label.to_string(),
        };
        Ok((definition, pattern_at))
    }

    /// Matches the lexed command line against the pattern and expands what will run.
    fn invoke(&self, line: lexer::Line) -> Result<Invocation, ParseError> {
        let usage = self.usage();
        let error = |message: String| ParseError::with_usage(message, usage.clone());
        let mut given = line.words.iter().skip(1);
        let mut params = Vec::new();
        let mut typed = vec![self.name.clone()];
        for word in &self.words {
            let Some(g) = given.next() else {
                let what = match word {
                    PatternWord::Param(p) => format!("<{p}>"),
                    PatternWord::Literal(l) => format!("`{l}`"),
                };
                return Err(error(format!("missing {what}")));
            };
            match word {
                PatternWord::Literal(l) if g.text.to_lowercase() != *l => {
                    return Err(error(format!("expected `{l}` where `{}` is", g.text)));
                }
                PatternWord::Literal(_) => {}
                PatternWord::Param(p) => {
                    let is_name = NAME_PARAMS.contains(&p.as_str())
                        || matches!(&self.permission.env, Some(EnvRef::Param(e)) if e == p);
                    check_value(&g.text, is_name).map_err(|why| {
                        error(format!("`{}` is not a valid <{p}>: {why}", g.text))
                    })?;
                    params.push((p.clone(), g.text.clone()));
                }
            }
            typed.push(g.text.clone());
        }
        if let Some(extra) = given.next() {
            let hint = if self.uses_reason {
                " (put a reason after `--`)"
            } else {
                ""
            };
            return Err(error(format!("unexpected `{}`{hint}", extra.text)));
        }
        if line.reason.is_some() && !self.uses_reason {
            return Err(error(format!(
                "`{}` takes no reason: remove the text after `--`",
                self.name
            )));
        }
        let value_of = |name: &str| params.iter().find(|(p, _)| p == name).map(|(_, v)| v);
        let env = value_of("env").and_then(|v| Name::parse(v).ok());
        let permission = Permission {
            verb: self.permission.verb,
            env: match &self.permission.env {
                None => None,
                Some(EnvRef::Literal(name)) => Some(name.clone()),
                Some(EnvRef::Param(p)) => value_of(p).and_then(|v| Name::parse(v).ok()),
            },
        };
        let line_text = typed.join(" ");
        let reason_value = line.reason.clone().unwrap_or_else(|| line_text.clone());
        let lookup = |name: &str| -> String {
            if name == REASON {
                reason_value.clone()
            } else {
                value_of(name).cloned().unwrap_or_default()
            }
        };
        let run = match &self.action {
            Action::Steps(steps) => Run::Steps(steps.iter().map(|s| s.expand(&lookup)).collect()),
            Action::Program {
                path,
                shown,
                args,
                pass_env,
                cwd,
                timeout,
            } => Run::Program {
                program: path.clone(),
                shown: shown.clone(),
                args: args
                    .iter()
                    .map(|a| a.expand_arg(&lookup))
                    .collect::<Result<_, _>>()
                    .map_err(error)?,
                pass_env: pass_env.clone(),
                cwd: cwd.clone(),
                timeout: *timeout,
            },
        };
        Ok(Invocation {
            name: self.name.clone(),
            line: line_text,
            params,
            env,
            permission,
            reason: line.reason,
            run,
        })
    }

    /// `ship <service> <version> to <env> [-- reason]`, in the style of the built-ins' usage.
    fn usage(&self) -> String {
        let mut usage = self.name.clone();
        for word in &self.words {
            match word {
                PatternWord::Literal(l) => write!(usage, " {l}"),
                PatternWord::Param(p) => write!(usage, " <{p}>"),
            }
            .expect("writing to a String cannot fail");
        }
        if self.uses_reason {
            usage.push_str(" [-- reason]");
        }
        usage
    }

    fn summary(&self) -> &str {
        self.help.lines().next().unwrap_or_default().trim()
    }

    fn long_help(&self) -> String {
        let mut out = format!("{}\n{}\n", self.usage(), self.help);
        let permission = match &self.permission.env {
            None => self.permission.verb.as_str().to_string(),
            Some(EnvRef::Literal(env)) => format!("{}:{env}", self.permission.verb.as_str()),
            Some(EnvRef::Param(p)) => format!("{}:<{p}>", self.permission.verb.as_str()),
        };
        let _ = writeln!(out, "Needs the `{permission}` permission.");
        match &self.action {
            Action::Steps(steps) => {
                let _ = writeln!(
                    out,
                    "Runs these built-in commands in order, as you, stopping at the first that fails:"
                );
                for (i, step) in steps.iter().enumerate() {
                    let _ = writeln!(out, "  {}. {}", i + 1, step.shown());
                }
            }
            Action::Program {
                shown,
                args,
                timeout,
                ..
            } => {
                let argv: Vec<String> = args.iter().map(Template::shown).collect();
                let _ = writeln!(
                    out,
                    "Runs `{shown}{}{}` (no shell; stopped after {}).",
                    if argv.is_empty() { "" } else { " " },
                    argv.join(" "),
                    render_duration(*timeout)
                );
            }
        }
        let _ = write!(out, "Defined in {}.", self.file);
        out
    }
}

/// Splits a pattern into its name and the words after it.
fn parse_pattern(pattern: &str) -> Result<(String, Vec<PatternWord>), String> {
    let mut parts = pattern.split_whitespace();
    let Some(first) = parts.next() else {
        return Err(
            "the pattern is empty: start it with the command's name, e.g. `smoke {env}`".into(),
        );
    };
    if first.contains('{') {
        return Err(format!(
            "the pattern `{pattern}` starts with a parameter: start it with the command's name"
        ));
    }
    let name = Name::parse(first).map_err(|_| {
        format!("`{first}` is not a valid command name: use lower-case letters, digits and `-`")
    })?;
    if COMMANDS.iter().any(|c| c.name == name.as_str()) {
        return Err(format!(
            "`{name}` is a built-in command; a user-defined command needs a name of its own"
        ));
    }
    let mut words = Vec::new();
    for word in parts {
        if let Some(inner) = word.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            check_param_name(inner)?;
            if inner == REASON {
                return Err(format!(
                    "`{{{REASON}}}` is the text typed after `--`, not a parameter: remove it from the pattern and use it in a step or an argument"
                ));
            }
            if words.contains(&PatternWord::Param(inner.to_string())) {
                return Err(format!(
                    "the parameter `{{{inner}}}` appears twice in the pattern"
                ));
            }
            words.push(PatternWord::Param(inner.to_string()));
        } else if word.contains(['{', '}']) {
            return Err(format!(
                "`{word}`: a parameter is a whole word, `{{name}}`, and matches one typed word"
            ));
        } else if word.starts_with('-') || !word.chars().all(value_char) {
            return Err(format!(
                "`{word}` cannot be a word of a pattern: use letters, digits and `. _ - + : / @ = ,`, not starting with `-`"
            ));
        } else {
            words.push(PatternWord::Literal(word.to_lowercase()));
        }
    }
    Ok((name.to_string(), words))
}

fn check_param_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= MAX_PARAM_NAME;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{{{name}}}` is not a valid parameter: use lower-case letters, digits and `_`, starting with a letter, at most {MAX_PARAM_NAME} characters"
        ))
    }
}

/// `read`, `write:staging` or `converge:{env}`.
fn parse_permission(text: &str, params: &[&str]) -> Result<PermissionTemplate, String> {
    let verbs: Vec<&str> = Verb::ALL.iter().map(|v| v.as_str()).collect();
    let bad = |why: String| {
        format!(
            "`{text}` is not a permission a command can require: {why} (e.g. `read`, `write:staging`, `converge:{{env}}`)"
        )
    };
    let (verb_text, env_text) = match text.split_once(':') {
        Some((v, e)) => (v, Some(e)),
        None => (text, None),
    };
    let verb = Verb::ALL
        .into_iter()
        .find(|v| v.as_str() == verb_text)
        .ok_or_else(|| {
            let hint = nearest(verb_text, verbs.iter().copied())
                .map(|n| format!("did you mean `{n}`? "))
                .unwrap_or_default();
            bad(format!("{hint}the verbs are {}", verbs.join(", ")))
        })?;
    let env = match env_text {
        None => None,
        Some("*") | Some("") => {
            return Err(bad(
                "name one environment, literally or as a parameter, not a pattern".into(),
            ));
        }
        Some(e) => match e.strip_prefix('{').and_then(|e| e.strip_suffix('}')) {
            Some(param) if params.contains(&param) => Some(EnvRef::Param(param.to_string())),
            Some(param) => return Err(undeclared(param, params)),
            None => Some(EnvRef::Literal(
                Name::parse(e).map_err(|e| bad(e.to_string()))?,
            )),
        },
    };
    Ok(PermissionTemplate { verb, env })
}

/// Parses a step and checks what can be checked before any value is known: its parameters, that
/// it starts with a built-in command, that it lexes, and where `{reason}` lands.
fn parse_step(text: &str, params: &[&str]) -> Result<Template, String> {
    let template = Template::parse(text, params).map_err(|m| format!("step `{text}`: {m}"))?;
    let first = text.split_whitespace().next().unwrap_or_default();
    if first.contains('{') {
        return Err(format!(
            "step `{text}` starts with a parameter: a step starts with a built-in command"
        ));
    }
    if !COMMANDS.iter().any(|c| c.name == first) {
        let hint = nearest(first, COMMANDS.iter().map(|c| c.name))
            .map(|n| format!(": did you mean `{n}`?"))
            .unwrap_or_else(|| " (see `help`)".into());
        return Err(format!(
            "step `{text}`: `{first}` is not a built-in command{hint}"
        ));
    }
    // Sample values are plain words like the ones users may type; the reason gets a marker so
    // that we can see where the lexer puts it.
    let sample = template.expand(&|name: &str| {
        if name == REASON {
            REASON_MARK.to_string()
        } else {
            "x".to_string()
        }
    });
    let line = lexer::lex(&sample).map_err(|e| format!("step `{text}`: {}", e.message))?;
    if line.words.iter().any(|w| w.text.contains(REASON_MARK)) {
        return Err(format!(
            "step `{text}`: `{{{REASON}}}` must come after a standalone `--`, where it is free text"
        ));
    }
    if template.is_literal() {
        super::parse(text).map_err(|e| {
            let usage = e
                .try_instead
                .map(|u| format!(" (usage: {u})"))
                .unwrap_or_default();
            format!("step `{text}`: {}{usage}", e.message)
        })?;
    }
    Ok(template)
}

/// Resolves `program` against the commands folder and checks it can be run.
fn check_program(program: &str, dir: &Path) -> Result<PathBuf, String> {
    if program.trim().is_empty() {
        return Err("`program` is empty".into());
    }
    let path = dir.join(program);
    let meta = std::fs::metadata(&path)
        .map_err(|e| format!("program `{program}` ({}): {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "program `{program}` ({}) is not a file",
            path.display()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(format!(
                "program `{program}` ({}) is not executable: `chmod +x` it",
                path.display()
            ));
        }
    }
    Ok(path)
}

fn undeclared(param: &str, params: &[&str]) -> String {
    let hint = match nearest(param, params.iter().copied()) {
        Some(best) => format!("did you mean `{{{best}}}`?"),
        None if params.is_empty() => "the pattern declares none".to_string(),
        None => format!(
            "the pattern declares {}",
            params
                .iter()
                .map(|p| format!("{{{p}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("`{{{param}}}` is not a parameter of the pattern: {hint}")
}

/// Whether `c` may appear in a typed value or a pattern literal: nothing a shell, the command
/// lexer or a key path would read specially.
fn value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ".-_+:/@=,".contains(c)
}

/// Why `value` cannot fill a parameter, if it cannot.
fn check_value(value: &str, is_name: bool) -> Result<(), String> {
    if value.is_empty() {
        return Err("it is empty".into());
    }
    if value.len() > MAX_PARAM_BYTES {
        return Err(format!("it is longer than {MAX_PARAM_BYTES} bytes"));
    }
    if value.starts_with('-') {
        return Err(
            "a value must not start with `-`, so that it cannot be taken for an option".into(),
        );
    }
    if let Some(c) = value.chars().find(|&c| !value_char(c)) {
        let shown = if c.is_whitespace() || c.is_control() {
            format!("U+{:04X}", c as u32)
        } else {
            format!("`{c}`")
        };
        return Err(format!(
            "{shown} is not allowed; use one word of letters, digits and `. _ - + : / @ = ,`"
        ));
    }
    if value.contains("..") {
        return Err(
            "`..` is not allowed, so that a value used in a path cannot climb out of it".into(),
        );
    }
    if is_name {
        Name::parse(value).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Text with `{param}` placeholders; `{{` and `}}` are literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Param(String),
}

impl Template {
    /// Parses `text`, whose placeholders must be among `params` or be `{reason}`.
    fn parse(text: &str, params: &[&str]) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err("a `}` without its `{` (write `}}` for a literal brace)".into()),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => {
                                return Err(
                                    "a `{` is not closed (write `{{` for a literal brace)".into()
                                );
                            }
                        }
                    }
                    if name != REASON && !params.contains(&name.as_str()) {
                        return Err(undeclared(&name, params));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Param(name));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template(parts))
    }

    fn uses(&self, param: &str) -> bool {
        self.0
            .iter()
            .any(|p| matches!(p, Part::Param(n) if n == param))
    }

    fn is_literal(&self) -> bool {
        self.0.iter().all(|p| matches!(p, Part::Text(_)))
    }

    fn expand(&self, value: &dyn Fn(&str) -> String) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Param(n) => value(n),
            })
            .collect()
    }

    /// One argument of a program's argv. Refused when a value (the reason, which is free text)
    /// would start it with `-`: the program would read it as an option. Literal text of the
    /// template may start with `-`, and a value after a literal prefix is part of one argument.
    fn expand_arg(&self, value: &dyn Fn(&str) -> String) -> Result<String, String> {
        let pieces: Vec<(&Part, String)> = self
            .0
            .iter()
            .map(|p| match p {
                Part::Text(t) => (p, t.clone()),
                Part::Param(n) => (p, value(n)),
            })
            .collect();
        if let Some((Part::Param(name), v)) = pieces.iter().find(|(_, v)| !v.is_empty())
            && v.starts_with('-')
        {
            let fix = if name == REASON {
                "type a reason that does not start with '-'"
            } else {
                "type a value that does not start with '-'"
            };
            return Err(crate::domain::refuse_option(
                &format!("{{{name}}}"),
                v,
                &format!(
                    "{fix}, or give the argument a literal prefix in the command's `args` (like `--{name}={{{name}}}`)"
                ),
            ));
        }
        Ok(pieces.into_iter().map(|(_, v)| v).collect())
    }

    /// The template in the style of usage lines: `converge <env>`.
    fn shown(&self) -> String {
        self.expand(&|name: &str| format!("<{name}>"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand_params_once_and_keep_escaped_braces() {
        let t = Template::parse("a {x}-{{y}}", &["x"]).unwrap();
        assert_eq!(t.expand(&|_: &str| "{x}".to_string()), "a {x}-{y}");
        assert!(
            Template::parse("{nope}", &["x"])
                .unwrap_err()
                .contains("not a parameter")
        );
        assert!(Template::parse("{x", &["x"]).is_err());
        assert!(Template::parse("x}", &["x"]).is_err());
    }

    #[test]
    fn values_are_single_plain_words() {
        for ok in ["3.5.7", "1.0.0-rc.1+build.5", "reg/x:1@sha256:ab", "a=b,c"] {
            assert!(check_value(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "", "$(x)", "a\"b", "--flag", "-x", "a b", "`x`", "a;b", "é", "a/../b",
        ] {
            assert!(check_value(bad, false).is_err(), "{bad}");
        }
        assert!(check_value("Staging", true).is_err());
    }

    #[test]
    fn the_reason_must_land_after_a_standalone_double_dash() {
        assert!(parse_step("env {e}.a.version 1 -- {reason}", &["e"]).is_ok());
        assert!(parse_step("env {e}.a.version {reason}", &["e"]).is_err());
        assert!(parse_step("env {e}.a.greeting \"x -- {reason}\"", &["e"]).is_err());
    }

    #[test]
    fn literal_steps_are_parsed_when_loaded() {
        assert!(parse_step("converge staging", &[]).is_ok());
        assert!(parse_step("converge staging --forse", &[]).is_err());
        let e = parse_step("conver {e}", &["e"]).unwrap_err();
        assert!(e.contains("did you mean `converge`"), "{e}");
    }
}
