//! A user-defined command matched against a typed line: the values typed and, expanded with
//! them, exactly what will run; `execute` checks the environment and the permission first.

use super::REASON;
use super::definition::{Action, Definition, EnvRef};
use super::pattern::{Matched, match_words};
use super::program::Program;
use crate::command::error::{CommandError, ParseError};
use crate::command::{Context, Reply, lexer};
use crate::domain::{LooksLikeOption, Name, Template, refuse_option};
use crate::policy::Permission;

/// A user-defined command matched against a command line: the values typed and, already
/// expanded with them, exactly what will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub(super) name: String,
    /// The command as matched, one space between words, without the reason.
    pub(super) line: String,
    /// Parameter values in pattern order.
    pub(super) params: Vec<(String, String)>,
    pub(super) env: Option<Name>,
    pub(super) permission: Permission,
    pub(super) reason: Option<String>,
    run: Run,
}

/// What an invocation runs, with the values substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Run {
    Steps(Vec<String>),
    Program(Program),
}

impl Invocation {
    /// The environment it touches, for channel bindings and the audit trail: the `{env}`
    /// parameter, else the environment its permission names (`converge:{target}`).
    pub fn env(&self) -> Option<&Name> {
        self.env.as_ref().or(self.permission.env.as_ref())
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
            Run::Program(_) => None,
        }
    }

    /// The argv (after the program) this runs, for a `program` command.
    pub fn args(&self) -> Option<&[String]> {
        match &self.run {
            Run::Program(program) => Some(&program.args),
            Run::Steps(_) => None,
        }
    }

    /// Checks the environment and the required permission, then runs the steps or the program.
    pub async fn execute(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        if let Some(env) = &self.env {
            ctx.environment(env)?;
        }
        // Both environments it may touch obey their channel bindings.
        for env in [&self.env, &self.permission.env].into_iter().flatten() {
            ctx.ensure_channel(env)?;
        }
        ctx.require(self.permission.clone())?;
        match &self.run {
            Run::Steps(steps) => Ok(self.run_steps(steps, ctx).await),
            Run::Program(program) => Ok(self.run_program(program, ctx).await),
        }
    }

    /// The reason typed after `--` or, when none was, the command line itself.
    pub(super) fn reason_text(&self) -> String {
        self.reason.clone().unwrap_or_else(|| self.line.clone())
    }
}

impl Definition {
    /// Matches the lexed command line against the pattern and expands what will run.
    pub(super) fn invoke(&self, line: lexer::Line) -> Result<Invocation, ParseError> {
        let usage = self.usage();
        let error = |message: String| ParseError::with_usage(message, usage.clone());
        let is_permission_env =
            |p: &str| matches!(&self.permission.env, Some(EnvRef::Param(e)) if e == p);
        let Matched {
            params,
            line: line_text,
        } = match_words(
            &self.name,
            &self.words,
            line.words.iter().skip(1).map(|w| w.text.as_str()),
            is_permission_env,
            self.uses_reason,
        )
        .map_err(|e| error(e.to_string()))?;
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
        let reason_value = line.reason.clone().unwrap_or_else(|| line_text.clone());
        let lookup = |name: &str| -> String {
            if name == REASON {
                reason_value.clone()
            } else {
                value_of(name).cloned().unwrap_or_default()
            }
        };
        let run = match &self.action {
            Action::Steps(steps) => Run::Steps(steps.iter().map(|s| s.render(&lookup)).collect()),
            Action::Program {
                path,
                shown,
                args,
                pass_env,
                cwd,
                timeout,
            } => Run::Program(Program {
                program: path.clone(),
                shown: shown.clone(),
                args: args
                    .iter()
                    .map(|a| program_arg(a, &lookup))
                    .collect::<Result<_, _>>()
                    .map_err(|e: ProgramArgError| error(e.to_string()))?,
                pass_env: pass_env.clone(),
                cwd: cwd.clone(),
                timeout: *timeout,
            }),
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
}

/// A value that would start a program's argument with `-`; its message says what to type or
/// write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", refusal(.0))]
struct ProgramArgError(LooksLikeOption);

fn refusal(option: &LooksLikeOption) -> String {
    let name = &option.placeholder;
    let fix = if name == REASON {
        "type a reason that does not start with '-'"
    } else {
        "type a value that does not start with '-'"
    };
    refuse_option(
        &format!("{{{name}}}"),
        &option.value,
        &format!(
            "{fix}, or give the argument a literal prefix in the command's `args` (like `--{name}={{{name}}}`)"
        ),
    )
}

/// One argument of a program's argv. Refused when a value (the reason, which is free text)
/// would start it with `-`: the program would read it as an option. Literal text of the
/// template may start with `-`, and a value after a literal prefix is part of one argument.
fn program_arg(
    template: &Template,
    value: &dyn Fn(&str) -> String,
) -> Result<String, ProgramArgError> {
    template.render_arg(value).map_err(ProgramArgError)
}
