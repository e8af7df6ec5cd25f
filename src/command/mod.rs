//! Commands: one file per command, each with its grammar, a pure `parse`, and an `execute`
//! that checks policy first and then works through the `Context` (store, config, clock).
//!
//! This module is the registry: the `Command` enum and the one `match` that maps a command name
//! to its parser. Commands never know which chat platform asked; they return a `Reply`.

mod args;
mod context;
mod error;
mod lexer;
mod outcome;
mod render;
mod reply;
mod run;

mod approve;
mod audit;
mod converge;
pub mod custom;
mod deploys;
mod diff;
mod env;
mod envs;
mod help;
mod history;
mod lock;
mod plan;
mod promote;
mod rollback;
mod status;
mod unpin;
mod unset;
mod version;
mod whoami;

pub use context::{Context, Written};
pub use error::{CommandError, ParseError, UserError};
pub use lexer::MAX_LINE_BYTES;
pub use reply::{Block, Button, Reply, is_button_command};
pub use run::run;

use crate::domain::{Name, nearest};
use args::Args;

/// A command's name, grammar and help, as `help` shows them.
#[derive(Debug)]
pub struct Info {
    pub name: &'static str,
    /// The grammar: `env <env>.<service>.<key> <value> [-- reason]`.
    pub usage: &'static str,
    /// One line for the `help` list.
    pub summary: &'static str,
    /// More, for `help <command>`.
    pub detail: &'static str,
}

/// Every built-in command, in the order `help` lists them.
pub const COMMANDS: &[&Info] = &[
    &env::INFO,
    &unset::INFO,
    &envs::INFO,
    &history::INFO,
    &diff::INFO,
    &plan::INFO,
    &converge::INFO,
    &status::INFO,
    &deploys::INFO,
    &promote::INFO,
    &rollback::INFO,
    &unpin::INFO,
    &lock::LOCK,
    &lock::UNLOCK,
    &approve::PENDING,
    &approve::APPROVE,
    &approve::DENY,
    &audit::INFO,
    &whoami::INFO,
    &help::INFO,
    &version::INFO,
];

/// A parsed command, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Env(env::Env),
    Unset(unset::Unset),
    Envs,
    History(history::History),
    Diff(diff::Diff),
    Plan(plan::Plan),
    Converge(converge::Converge),
    Status(status::Status),
    Deploys(deploys::Deploys),
    Promote(promote::Promote),
    Rollback(rollback::Rollback),
    Unpin(unpin::Unpin),
    Lock(lock::LockEnv),
    Unlock(lock::Unlock),
    Pending(approve::Pending),
    Decide(approve::Decide),
    Audit(audit::Audit),
    Whoami,
    Help(help::Help),
    Version,
}

/// Turns a command line into a `Command`. Pure: no store, no config, no I/O.
pub fn parse(text: &str) -> Result<Command, ParseError> {
    let line = lexer::lex(text)?;
    let mut words = line.words.into_iter();
    let Some(first) = words.next() else {
        return Err(ParseError::with_usage("no command given", "help"));
    };
    let name = first.text.to_lowercase();
    let Some(info) = COMMANDS.iter().find(|i| i.name == name) else {
        let known = COMMANDS.iter().map(|i| i.name);
        return Err(match nearest(&name, known) {
            Some(best) => ParseError::with_usage(
                format!("unknown command `{}`: did you mean `{best}`?", first.text),
                format!("help {best}"),
            ),
            None => ParseError::with_usage(format!("unknown command `{}`", first.text), "help"),
        });
    };
    let args = Args::new(words.collect(), line.reason, info.usage);
    Ok(match info.name {
        "env" => Command::Env(env::parse(args)?),
        "unset" => Command::Unset(unset::parse(args)?),
        "envs" => no_args(args, Command::Envs, "envs")?,
        "history" => Command::History(history::parse(args)?),
        "diff" => Command::Diff(diff::parse(args)?),
        "plan" => Command::Plan(plan::parse(args)?),
        "converge" => Command::Converge(converge::parse(args)?),
        "status" => Command::Status(status::parse(args)?),
        "deploys" => Command::Deploys(deploys::parse(args)?),
        "promote" => Command::Promote(promote::parse(args)?),
        "rollback" => Command::Rollback(rollback::parse(args)?),
        "unpin" => Command::Unpin(unpin::parse(args)?),
        "lock" => Command::Lock(lock::parse_lock(args)?),
        "unlock" => Command::Unlock(lock::parse_unlock(args)?),
        "pending" => Command::Pending(approve::parse_pending(args)?),
        "approve" => Command::Decide(approve::parse_decide(args, true)?),
        "deny" => Command::Decide(approve::parse_decide(args, false)?),
        "audit" => Command::Audit(audit::parse(args)?),
        "whoami" => no_args(args, Command::Whoami, "whoami")?,
        "help" => Command::Help(help::parse(args)?),
        "version" => no_args(args, Command::Version, "version")?,
        other => unreachable!("command `{other}` is listed in COMMANDS but has no parser"),
    })
}

fn no_args(args: Args, command: Command, name: &str) -> Result<Command, ParseError> {
    match args.finish()? {
        None => Ok(command),
        Some(_) => Err(ParseError::with_usage(
            format!("`{name}` takes no reason"),
            name,
        )),
    }
}

impl Command {
    /// The environment the command is about, for the audit trail.
    pub fn env(&self) -> Option<&Name> {
        match self {
            Command::Env(c) => Some(&c.target.env),
            Command::Unset(c) => Some(&c.target.env),
            Command::History(c) => Some(&c.env),
            Command::Diff(c) => Some(c.env()),
            Command::Plan(c) => Some(&c.env),
            Command::Converge(c) => Some(&c.env),
            Command::Status(c) => Some(&c.env),
            Command::Deploys(c) => Some(&c.env),
            Command::Promote(c) => Some(&c.dst),
            Command::Rollback(c) => Some(&c.env),
            Command::Unpin(c) => Some(&c.env),
            Command::Lock(c) => Some(&c.env),
            Command::Unlock(c) => Some(&c.env),
            Command::Audit(c) => c.env.as_ref(),
            Command::Pending(c) => c.env.as_ref(),
            Command::Decide(_) => None,
            Command::Envs | Command::Whoami | Command::Help(_) | Command::Version => None,
        }
    }

    /// Whether the command deploys.
    pub fn deploys(&self) -> bool {
        matches!(
            self,
            Command::Converge(_) | Command::Rollback(_) | Command::Decide(_)
        )
    }

    /// The environment the audit trail records: the one named, or for `approve`/`deny` the
    /// request's.
    pub async fn audited_env(&self, store: &dyn crate::store::Store) -> Option<Name> {
        match self {
            Command::Decide(d) => store
                .approval(d.id)
                .await
                .ok()
                .flatten()
                .map(|r| r.request.env),
            other => other.env().cloned(),
        }
    }

    /// Runs the command: channel bindings and policy checks first, then the work.
    pub async fn execute(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        if let Some(env) = self.env() {
            ctx.ensure_channel(env)?;
        }
        match self {
            Command::Env(c) => c.execute(ctx).await,
            Command::Unset(c) => c.execute(ctx).await,
            Command::Envs => envs::execute(ctx).await,
            Command::History(c) => c.execute(ctx).await,
            Command::Diff(c) => c.execute(ctx).await,
            Command::Plan(c) => c.execute(ctx).await,
            Command::Converge(c) => c.execute(ctx).await,
            Command::Status(c) => c.execute(ctx).await,
            Command::Deploys(c) => c.execute(ctx).await,
            Command::Promote(c) => c.execute(ctx).await,
            Command::Rollback(c) => c.execute(ctx).await,
            Command::Unpin(c) => c.execute(ctx).await,
            Command::Lock(c) => c.execute(ctx).await,
            Command::Unlock(c) => c.execute(ctx).await,
            Command::Audit(c) => c.execute(ctx).await,
            Command::Pending(c) => c.execute(ctx).await,
            Command::Decide(c) => c.execute(ctx).await,
            Command::Whoami => whoami::execute(ctx),
            Command::Help(c) => c.execute(ctx),
            Command::Version => Ok(version::execute()),
        }
    }
}
