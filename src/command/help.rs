//! `help`: the list of commands, or one command's grammar and explanation.

use super::args::Args;
use super::error::{CommandError, ParseError};
use super::{COMMANDS, Info, Reply};
use crate::domain::nearest;

pub const INFO: Info = Info {
    name: "help",
    usage: "help [<command>]",
    summary: "list commands, or explain one",
    detail: "`help env` shows how to use `env`.",
};

/// A parsed `help` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Help {
    pub command: Option<String>,
}

pub fn parse(mut args: Args) -> Result<Help, ParseError> {
    let command = args.next().map(|c| c.to_lowercase());
    args.finish()?;
    if let Some(name) = &command
        && !COMMANDS.iter().any(|i| i.name == name)
    {
        let hint = nearest(name, COMMANDS.iter().map(|i| i.name))
            .map(|best| format!("help {best}"))
            .unwrap_or_else(|| "help".to_string());
        return Err(ParseError::with_usage(
            format!("there is no command `{name}`"),
            hint,
        ));
    }
    Ok(Help { command })
}

impl Help {
    pub fn execute(self) -> Result<Reply, CommandError> {
        match self
            .command
            .and_then(|name| COMMANDS.iter().find(|i| i.name == name))
        {
            Some(info) => Ok(Reply::ok(info.usage).text(info.summary).text(info.detail)),
            None => {
                let rows = COMMANDS
                    .iter()
                    .map(|i: &&Info| vec![i.usage.to_string(), i.summary.to_string()])
                    .collect();
                Ok(Reply::ok("ferry commands")
                    .table(&["command", "what it does"], rows)
                    .next("More about one", "help <command>"))
            }
        }
    }
}
