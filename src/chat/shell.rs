//! The shell transport (hubot's Shell adapter): every line read is a command, with or without
//! the bot's name; each reply is printed as plain text. Works on a terminal (with a prompt) and
//! on piped input (one reply per line, exit at end of input).

use super::addressing::shell_command;
use super::text::render;
use crate::app::App;
use crate::domain::{Actor, Origin};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

/// Reads commands from `input` until it ends (or `exit`), writing replies to `output`.
pub async fn run_shell(
    app: &App,
    actor: &Actor,
    input: impl AsyncBufRead + Unpin,
    mut output: impl AsyncWrite + Unpin,
    prompt: bool,
) -> std::io::Result<()> {
    let origin = Origin::shell();
    let mut lines = input.lines();
    if prompt {
        let banner = format!(
            "ferry {} — type `help` for commands, `exit` to leave. You are {}.\n",
            env!("CARGO_PKG_VERSION"),
            actor.identity()
        );
        output.write_all(banner.as_bytes()).await?;
    }
    loop {
        if prompt {
            output
                .write_all(format!("{}> ", app.config.bot.name).as_bytes())
                .await?;
            output.flush().await?;
        }
        let Some(line) = lines.next_line().await? else {
            break;
        };
        let command = shell_command(&line, &app.config.bot.name, &app.config.bot.prefixes);
        if command.is_empty() {
            continue;
        }
        if matches!(command, "exit" | "quit") {
            break;
        }
        let reply = app.handle(actor, &origin, command).await;
        output.write_all(render(&reply).as_bytes()).await?;
        output.flush().await?;
    }
    Ok(())
}
