//! What a built-in command is to the rest of ferry: its `Info` (name, grammar, help, an example
//! and its parser) in the one `COMMANDS` table, and, once parsed, a `Command` that runs. `help`,
//! parsing and dispatch all read that table, so a command is registered by one line there and
//! cannot be half-registered.

use super::args::Args;
use super::context::Context;
use super::error::{CommandError, ParseError};
use super::reply::Reply;
use crate::domain::Name;
use crate::store::Store;
use std::any::Any;

/// A command's name, grammar, help and parser: its line in `COMMANDS`.
#[derive(Debug)]
pub struct Info {
    pub name: &'static str,
    /// The grammar: `env <env>.<service>.<key> <value> [-- reason]`.
    pub usage: &'static str,
    /// One line for the `help` list.
    pub summary: &'static str,
    /// More, for `help <command>`.
    pub detail: &'static str,
    /// A line that parses as this command (a test parses every one).
    pub example: &'static str,
    /// Turns the words after the name into the command. Pure.
    pub parse: fn(Args) -> Result<Box<dyn Run>, ParseError>,
}

/// A parsed built-in command, as the registry runs it.
#[async_trait::async_trait]
pub trait Run: std::fmt::Debug + Send + Sync + 'static {
    /// The environment the command touches: its channel bindings apply, and the audit trail
    /// records it.
    fn env(&self) -> Option<&Name> {
        None
    }

    /// The environment the audit trail records; commands that name theirs only indirectly
    /// (`approve 7`) look it up.
    async fn audited_env(&self, _store: &dyn Store) -> Option<Name> {
        self.env().cloned()
    }

    /// Policy checks first, then the work.
    async fn execute(&self, ctx: &Context<'_>) -> Result<Reply, CommandError>;

    /// For tests and callers that need the concrete command.
    fn as_any(&self) -> &dyn Any;
}

/// A parsed command line, ready to run.
#[derive(Debug)]
pub struct Command {
    name: &'static str,
    run: Box<dyn Run>,
}

impl Command {
    pub(super) fn new(name: &'static str, run: Box<dyn Run>) -> Command {
        Command { name, run }
    }

    /// The command's name as registered (`approve` and `deny` are two commands).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The environment the command touches, if it names one.
    pub fn env(&self) -> Option<&Name> {
        self.run.env()
    }

    /// The environment the audit trail records.
    pub async fn audited_env(&self, store: &dyn Store) -> Option<Name> {
        self.run.audited_env(store).await
    }

    /// The concrete command, when it is a `T`.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.run.as_any().downcast_ref()
    }

    /// Runs the command: channel bindings and policy checks first, then the work.
    pub async fn execute(&self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        if let Some(env) = self.run.env() {
            ctx.ensure_channel(env)?;
        }
        self.run.execute(ctx).await
    }
}

/// The parser of a command that takes no arguments and no reason.
pub fn no_args<T: Run + Default>(args: Args) -> Result<Box<dyn Run>, ParseError> {
    let name = args
        .usage()
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    match args.finish()? {
        None => Ok(Box::new(T::default())),
        Some(_) => Err(ParseError::with_usage(
            format!("`{name}` takes no reason"),
            name,
        )),
    }
}
