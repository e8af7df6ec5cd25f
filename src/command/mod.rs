//! Commands: one file per command, each with its grammar, a pure `parse`, and an `execute`
//! that checks policy first and then works through the `Context` (store, config, clock).
//!
//! This module holds the registry: `COMMANDS`, one line per command, which `help`, `parse` and
//! dispatch all read (`registry.rs` has the types). Commands never know which chat platform
//! asked; they return a `Reply`.

mod args;
mod context;
mod error;
mod gates;
mod lexer;
mod outcome;
mod registry;
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
pub use env::Env;
pub use error::{CommandError, ParseError, UserError};
pub use lexer::MAX_LINE_BYTES;
pub use registry::{Command, Info, Run};
pub use reply::{Block, Button, Reply, is_button_command};
pub use run::run;

use crate::domain::nearest;
use args::Args;

/// Every built-in command, in the order `help` lists them: one line per command. To add one,
/// write `src/command/<name>.rs` with its `INFO` (grammar, help, example, parser) and a type
/// implementing `Run`, and add its line here.
pub const COMMANDS: &[Info] = &[
    env::INFO,
    unset::INFO,
    envs::INFO,
    history::INFO,
    diff::INFO,
    plan::INFO,
    converge::INFO,
    status::INFO,
    deploys::INFO,
    promote::INFO,
    rollback::INFO,
    unpin::INFO,
    lock::LOCK,
    lock::UNLOCK,
    approve::PENDING,
    approve::APPROVE,
    approve::DENY,
    audit::INFO,
    whoami::INFO,
    help::INFO,
    version::INFO,
];

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
    Ok(Command::new(info.name, (info.parse)(args)?))
}

#[cfg(test)]
mod tests {
    use super::{COMMANDS, parse};

    /// A command cannot be half-registered: every line of the table parses its own example
    /// back into itself, and names are unique.
    #[test]
    fn every_registered_command_parses_its_own_example() {
        for info in COMMANDS {
            let parsed = parse(info.example)
                .unwrap_or_else(|e| panic!("{}: `{}`: {}", info.name, info.example, e.message));
            assert_eq!(parsed.name(), info.name, "`{}`", info.example);
            assert!(info.usage.starts_with(info.name), "{}", info.usage);
            let same = COMMANDS.iter().filter(|i| i.name == info.name).count();
            assert_eq!(same, 1, "{} is registered twice", info.name);
        }
    }
}
