//! What every chat transport does with one command: claim the event so a redelivery never runs
//! it twice, run it, show deploy progress by editing one message (throttled to the platform's
//! rate limits), and post the reply in the asker's thread, split to fit, never cut.
//! Platform specifics sit behind `Thread`; this module knows no platform.

use super::markdown::{Dialect, render, split};
use crate::app::App;
use crate::command::{Button, Reply};
use crate::domain::{Actor, Origin};
use std::time::Duration;

/// Least time between two edits of the progress message: Slack's chat.update and Discord's
/// message edits are both rate limited to about one per second per channel.
pub const EDIT_INTERVAL: Duration = Duration::from_millis(1000);

/// A command as a transport received it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The platform's id for this event, for dedupe (`Ev0123`, a message or interaction id).
    pub event_id: String,
    pub actor: Actor,
    pub origin: Origin,
    /// The command, already stripped of the bot's name or prefix.
    pub text: String,
}

/// Where replies to one command go: the thread (Slack), the reply chain (Discord).
#[async_trait::async_trait]
pub trait Thread: Send + Sync {
    /// Posts a message; returns its id for editing.
    async fn post(&self, text: &str) -> Result<String, String>;
    /// Replaces the text of a message posted earlier.
    async fn edit(&self, id: &str, text: &str) -> Result<(), String>;

    /// Posts a message carrying buttons; platforms without buttons post the text alone.
    async fn post_with_buttons(&self, text: &str, buttons: &[Button]) -> Result<String, String> {
        let _ = buttons;
        self.post(text).await
    }
}

/// Posting to a channel by name or id, for alerts (`alert_channel = "slack:#alerts"`).
#[async_trait::async_trait]
pub trait Alerts: Send + Sync {
    /// The platform prefix of alert channels this poster serves (`slack`).
    fn platform(&self) -> &'static str;
    async fn alert(&self, channel: &str, text: &str) -> Result<(), String>;
}

/// How a platform wants text.
#[derive(Debug, Clone, Copy)]
pub struct Format {
    pub dialect: Dialect,
    /// Longest message, in bytes, with room to spare.
    pub limit: usize,
}

/// Handles one incoming command end to end. Returns `false` when the event was a redelivery
/// and nothing ran.
pub async fn handle(
    app: &App,
    incoming: &Incoming,
    thread: &dyn Thread,
    format: Format,
    alerts: Option<&dyn Alerts>,
) -> bool {
    let platform = incoming.origin.platform.clone();
    match app
        .store
        .claim_event(&platform, &incoming.event_id, app.clock.now())
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(platform = %platform, event = %incoming.event_id, "redelivered event ignored");
            return false;
        }
        Err(e) => {
            // Without the dedupe record a redelivery could run the command twice: refuse.
            tracing::error!(error = %e, "cannot record the chat event; not running it");
            let _ = thread
                .post(&format!(
                    "The store is unavailable ({e}); nothing was run. Try again in a moment."
                ))
                .await;
            return false;
        }
    }
    let (sink, mut events) = tokio::sync::mpsc::unbounded_channel();
    let mut progress = Progress::default();
    let reply = {
        let running = app.handle_with_events(
            &incoming.actor,
            &incoming.origin,
            &incoming.text,
            Some(&sink),
        );
        tokio::pin!(running);
        // The interval paces the edits; the first event posts the progress message at once.
        let mut tick = tokio::time::interval(EDIT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                reply = &mut running => break reply,
                Some(event) = events.recv() => {
                    progress.lines.push(event.line());
                    if progress.message.is_none() {
                        progress.flush(thread, format).await;
                        tick.reset();
                    }
                }
                _ = tick.tick() => progress.flush(thread, format).await,
            }
        }
    };
    drop(sink);
    while let Ok(event) = events.try_recv() {
        progress.lines.push(event.line());
    }
    deliver(thread, format, &reply, progress).await;
    if let Some(alerts) = alerts {
        announce(app, incoming, &reply, alerts).await;
    }
    true
}

/// What a command wants announced (a failed or forced deploy, a rollback in a freeze) goes to
/// the environment's alert channel, when it has one on this platform.
async fn announce(app: &App, incoming: &Incoming, reply: &Reply, alerts: &dyn Alerts) {
    let Some((env, text)) = &reply.alert else {
        return;
    };
    let Some(target) = app
        .config
        .environment(env)
        .and_then(|e| e.alert_channel.as_deref())
    else {
        return;
    };
    let Some(channel) = target
        .strip_prefix(alerts.platform())
        .and_then(|t| t.strip_prefix(':'))
    else {
        return;
    };
    let place = incoming
        .origin
        .channel
        .as_deref()
        .unwrap_or("a direct message");
    let text = format!(
        "{text} (`{}` by {} in {place})",
        incoming.text, incoming.actor
    );
    if let Err(e) = alerts.alert(channel, &text).await {
        tracing::error!(env = %env, error = %e, "could not post the alert");
    }
}

/// The live progress message of a deploy.
#[derive(Default)]
struct Progress {
    lines: Vec<String>,
    /// The message showing progress, once posted.
    message: Option<String>,
    shown: usize,
}

impl Progress {
    fn text(&self, format: Format) -> String {
        let body = self.lines.join("\n");
        let mut text = format!("```\n{body}\n```");
        if text.len() > format.limit {
            // Keep the newest lines: the full list is in the final reply.
            let keep: Vec<&str> = body
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            text = format!("```\n…\n{}\n```", keep.join("\n"));
        }
        text
    }

    /// Shows the lines so far: posts the message the first time, edits it afterwards.
    async fn flush(&mut self, thread: &dyn Thread, format: Format) {
        if self.lines.len() == self.shown {
            return;
        }
        let text = self.text(format);
        match &self.message {
            None => match thread.post(&text).await {
                Ok(id) => self.message = Some(id),
                Err(e) => tracing::warn!(error = %e, "could not post progress"),
            },
            Some(id) => {
                if let Err(e) = thread.edit(id, &text).await {
                    tracing::warn!(error = %e, "could not update progress");
                }
            }
        }
        self.shown = self.lines.len();
    }
}

/// Posts the reply: into the progress message when there is one (so the thread ends with the
/// outcome), then any further pieces.
async fn deliver(thread: &dyn Thread, format: Format, reply: &Reply, progress: Progress) {
    let pieces = split(&render(reply, format.dialect), format.limit);
    let mut pieces = pieces.iter();
    // Only take the first piece when there is a progress message to put it in.
    if let Some(id) = &progress.message
        && let Some(first) = pieces.next()
        && let Err(e) = thread.edit(id, first).await
    {
        tracing::warn!(error = %e, "could not replace progress with the outcome; posting it");
        let _ = thread.post(first).await;
    }
    let buttons = reply.all_buttons();
    let mut pieces = pieces.peekable();
    while let Some(piece) = pieces.next() {
        let last = pieces.peek().is_none();
        let posted = if last && !buttons.is_empty() {
            thread.post_with_buttons(piece, &buttons).await
        } else {
            thread.post(piece).await
        };
        if let Err(e) = posted {
            tracing::error!(error = %e, "could not post a reply");
        }
    }
}
