//! The shell transport (hubot's Shell adapter): every line read is a command, with or without
//! the bot's name; each reply is printed as plain text. Works on a terminal (with a prompt) and
//! on piped input (one reply per line, exit at end of input).

use super::addressing::shell_command;
use super::text::render;
use crate::app::App;
use crate::command::Reply;
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
    let mut input = input;
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
        let mut bytes = Vec::new();
        if input.read_until(b'\n', &mut bytes).await? == 0 {
            break;
        }
        let Ok(line) = String::from_utf8(bytes) else {
            let error = crate::command::CommandError::Invalid(
                crate::command::UserError::new("the line is not valid UTF-8").try_instead("help"),
            );
            output
                .write_all(render(&Reply::from_error(&error)).as_bytes())
                .await?;
            continue;
        };
        let line = line.trim_end_matches(['\n', '\r']);
        let command = shell_command(line, &app.config.bot.name, &app.config.bot.prefixes);
        if command.is_empty() {
            continue;
        }
        if matches!(command, "exit" | "quit") {
            break;
        }
        let reply = handle_with_progress(app, actor, &origin, command, &mut output).await?;
        output.write_all(render(&reply).as_bytes()).await?;
        output.flush().await?;
    }
    Ok(())
}

/// Runs one command, writing each deploy progress event to `progress` as it happens, and
/// returns the reply (not yet written).
pub async fn handle_with_progress(
    app: &App,
    actor: &Actor,
    origin: &Origin,
    command: &str,
    mut progress: impl AsyncWrite + Unpin,
) -> std::io::Result<Reply> {
    let (sink, mut events) = tokio::sync::mpsc::unbounded_channel();
    let reply = {
        let handling = app.handle_with_events(actor, origin, command, Some(&sink));
        tokio::pin!(handling);
        loop {
            tokio::select! {
                reply = &mut handling => break reply,
                Some(event) = events.recv() => {
                    progress.write_all(format!("{}\n", event.line()).as_bytes()).await?;
                    progress.flush().await?;
                }
            }
        }
    };
    drop(sink);
    while let Ok(event) = events.try_recv() {
        progress
            .write_all(format!("{}\n", event.line()).as_bytes())
            .await?;
    }
    progress.flush().await?;
    Ok(reply)
}
