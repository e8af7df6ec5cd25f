//! Commands: one file per command, each with its grammar, a pure `parse`, and an `execute`
//! that checks policy first and then works through the `Context` (store, config, clock).
//!
//! This module is the registry: the `Command` enum and the one `match` that maps a command name
//! to its parser. Commands never know which chat platform asked; they return a `Reply`.

mod args;
mod context;
mod error;
mod lexer;
mod render;
mod reply;
mod run;

mod audit;
mod diff;
mod env;
mod envs;
mod help;
mod history;
mod lock;
mod promote;
mod unset;
mod version;
mod whoami;

pub use context::{Context, Written};
pub use error::{CommandError, ParseError, UserError};
pub use lexer::MAX_LINE_BYTES;
pub use reply::{Block, Reply};
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
    &promote::INFO,
    &lock::LOCK,
    &lock::UNLOCK,
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
    Promote(promote::Promote),
    Lock(lock::LockEnv),
    Unlock(lock::Unlock),
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
        "envs" => no_args(args, Command::Envs)?,
        "history" => Command::History(history::parse(args)?),
        "diff" => Command::Diff(diff::parse(args)?),
        "promote" => Command::Promote(promote::parse(args)?),
        "lock" => Command::Lock(lock::parse_lock(args)?),
        "unlock" => Command::Unlock(lock::parse_unlock(args)?),
        "audit" => Command::Audit(audit::parse(args)?),
        "whoami" => no_args(args, Command::Whoami)?,
        "help" => Command::Help(help::parse(args)?),
        "version" => no_args(args, Command::Version)?,
        other => unreachable!("command `{other}` is listed in COMMANDS but has no parser"),
    })
}

fn no_args(args: Args, command: Command) -> Result<Command, ParseError> {
    match args.finish()? {
        None => Ok(command),
        Some(_) => Err(ParseError::new("this command takes no reason")),
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
            Command::Promote(c) => Some(&c.dst),
            Command::Lock(c) => Some(&c.env),
            Command::Unlock(c) => Some(&c.env),
            Command::Audit(c) => c.env.as_ref(),
            Command::Envs | Command::Whoami | Command::Help(_) | Command::Version => None,
        }
    }

    /// Runs the command: policy checks first, then the work.
    pub async fn execute(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        match self {
            Command::Env(c) => c.execute(ctx).await,
            Command::Unset(c) => c.execute(ctx).await,
            Command::Envs => envs::execute(ctx).await,
            Command::History(c) => c.execute(ctx).await,
            Command::Diff(c) => c.execute(ctx).await,
            Command::Promote(c) => c.execute(ctx).await,
            Command::Lock(c) => c.execute(ctx).await,
            Command::Unlock(c) => c.execute(ctx).await,
            Command::Audit(c) => c.execute(ctx).await,
            Command::Whoami => whoami::execute(ctx),
            Command::Help(c) => c.execute(),
            Command::Version => Ok(version::execute()),
        }
    }
}
