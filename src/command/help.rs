//! `help`: the list of commands, or one command's grammar and explanation.

use super::args::Args;
use super::context::Context;
use super::error::{CommandError, ParseError, UserError};
use super::registry::Run;
use super::{COMMANDS, Info, Reply};
use crate::domain::nearest;

pub const INFO: Info = Info {
    name: "help",
    usage: "help [<command>]",
    summary: "list commands, or explain one",
    detail: "`help env` shows how to use `env`.",
    example: "help env",
    parse: |args| Ok(Box::new(parse(args)?)),
};

/// A parsed `help` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Help {
    pub command: Option<String>,
}

pub fn parse(mut args: Args) -> Result<Help, ParseError> {
    let command = args.next().map(|c| c.to_lowercase());
    args.finish()?;
    Ok(Help { command })
}

impl Help {
    /// Built-in commands first, then the user-defined ones of `commands/*.toml`.
    fn run(self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        let custom = &ctx.commands;
        let Some(name) = self.command else {
            let mut rows: Vec<Vec<String>> = COMMANDS
                .iter()
                .map(|i: &Info| vec![i.usage.to_string(), i.summary.to_string()])
                .collect();
            rows.extend(
                custom
                    .help_rows()
                    .into_iter()
                    .map(|(usage, summary)| vec![usage, summary]),
            );
            return Ok(Reply::ok("ferry commands")
                .table(&["command", "what it does"], rows)
                .next("More about one", "help <command>"));
        };
        if let Some(info) = COMMANDS.iter().find(|i| i.name == name) {
            return Ok(Reply::ok(info.usage).text(info.summary).text(info.detail));
        }
        if let Some(text) = custom.help_for(&name) {
            let mut lines = text.lines();
            let mut reply = Reply::ok(lines.next().unwrap_or_default());
            for line in lines {
                reply = reply.text(line);
            }
            return Ok(reply);
        }
        let known = COMMANDS.iter().map(|i| i.name).chain(custom.names());
        let hint = nearest(&name, known)
            .map(|best| format!("help {best}"))
            .unwrap_or_else(|| "help".to_string());
        Err(CommandError::Invalid(
            UserError::new(format!("there is no command `{name}`")).try_instead(hint),
        ))
    }
}

#[async_trait::async_trait]
impl Run for Help {
    async fn execute(&self, ctx: &Context<'_>) -> Result<Reply, CommandError> {
        self.clone().run(ctx)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
