//! What every chat transport does with one command: claim the event so a redelivery never runs
//! it twice, run it, show deploy progress by editing one message (throttled to the platform's
//! rate limits, off the deploy's path), and post the reply in the asker's thread, split to fit
//! in at most `MAX_PIECES` messages, the last naming what was cut and how to narrow it.
//! Platform specifics sit behind `Thread`; this module knows no platform.

use super::ChatError;
use super::markdown::{Dialect, MAX_PIECES, code_block, render, split_capped};
use crate::app::App;
use crate::command::{Button, Reply};
use crate::domain::{Actor, Origin};
use std::sync::atomic::{AtomicU64, Ordering};
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
    async fn post(&self, text: &str) -> Result<String, ChatError>;
    /// Replaces the text of a message posted earlier.
    async fn edit(&self, id: &str, text: &str) -> Result<(), ChatError>;

    /// Posts a message carrying buttons; platforms without buttons post the text alone.
    async fn post_with_buttons(&self, text: &str, buttons: &[Button]) -> Result<String, ChatError> {
        let _ = buttons;
        self.post(text).await
    }
}

/// Posting to a channel by name or id, for alerts (`alert_channel = "slack:#alerts"`).
#[async_trait::async_trait]
pub trait Alerts: Send + Sync {
    /// The platform prefix of alert channels this poster serves (`slack`).
    fn platform(&self) -> &'static str;
    async fn alert(&self, channel: &str, text: &str) -> Result<(), ChatError>;
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
                .post(&super::markdown::escape_text(
                    &format!(
                        "The store is unavailable ({e}); nothing was run. Try again in a moment."
                    ),
                    format.dialect,
                ))
                .await;
            return false;
        }
    }
    // The engine publishes into an unbounded channel and never waits for chat; the progress
    // message is kept up to date beside the command, never in its way: a slow or hung edit
    // delays only the next edit (each chat call has a timeout), and the events that arrive
    // meanwhile are coalesced into the next one.
    let (sink, mut events) = tokio::sync::mpsc::unbounded_channel();
    let (done, finished) = tokio::sync::watch::channel(false);
    let running = async {
        let reply = app
            .handle_with_events(
                &incoming.actor,
                &incoming.origin,
                &incoming.text,
                Some(&sink),
            )
            .await;
        let _ = done.send(true);
        reply
    };
    let showing = show_progress(&mut events, thread, format, finished);
    let (reply, mut progress) = tokio::join!(running, showing);
    drop(sink);
    while let Ok(event) = events.try_recv() {
        progress.lines.push(event.line());
    }
    deliver(thread, format, &reply, progress, incoming).await;
    if let Some(alerts) = alerts {
        announce(app, incoming, &reply, alerts).await;
    }
    true
}

/// How long an edit still under way when the command finishes may go on before it is given up
/// (and the outcome posted as a new message rather than put into the progress message).
const LAST_EDIT_GRACE: Duration = Duration::from_secs(2);

/// Shows deploy progress until the command is `finished`: the first event posts the progress
/// message at once; later ones are gathered and shown by one edit at most every
/// `EDIT_INTERVAL`, after the previous edit has returned. Returns what it showed, for the
/// final reply. An edit still under way when the command finishes gets `LAST_EDIT_GRACE`;
/// one that takes longer is given up and the progress message counts as stuck.
async fn show_progress(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<crate::engine::DeployEvent>,
    thread: &dyn Thread,
    format: Format,
    mut finished: tokio::sync::watch::Receiver<bool>,
) -> Progress {
    let mut progress = Progress::default();
    loop {
        tokio::select! {
            biased;
            _ = super::stopped(&mut finished) => break,
            event = events.recv() => match event {
                Some(event) => progress.lines.push(event.line()),
                None => break,
            },
        }
        while let Ok(event) = events.try_recv() {
            progress.lines.push(event.line());
        }
        let mut ending = finished.clone();
        let given_up = tokio::select! {
            () = progress.flush(thread, format) => false,
            () = async {
                super::stopped(&mut ending).await;
                tokio::time::sleep(LAST_EDIT_GRACE).await;
            } => true,
        };
        if given_up {
            tracing::warn!("a progress update is still under way; posting the outcome instead");
            progress.stuck = true;
            break;
        }
        tokio::select! {
            _ = super::stopped(&mut finished) => break,
            () = tokio::time::sleep(EDIT_INTERVAL) => {}
        }
    }
    progress
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
    /// An edit of the message failed or hung: the outcome goes in a new message.
    stuck: bool,
}

impl Progress {
    fn text(&self, format: Format) -> String {
        // A line is one event; a failure's message can be long, the final reply has it all.
        let lines: Vec<String> = self
            .lines
            .iter()
            .map(|l| match l.char_indices().nth(300) {
                Some((at, _)) => format!("{}…", &l[..at]),
                None => l.clone(),
            })
            .collect();
        let text = code_block(&lines.join("\n"), format.dialect);
        if text.len() <= format.limit {
            return text;
        }
        // Keep the newest lines that fit: the full list is in the final reply.
        let tail =
            |keep: usize| code_block(&format!("…\n{}", lines[keep..].join("\n")), format.dialect);
        let mut keep = lines.len().saturating_sub(1);
        while keep > 0 && tail(keep - 1).len() <= format.limit {
            keep -= 1;
        }
        tail(keep)
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
                    self.stuck = true;
                }
            }
        }
        self.shown = self.lines.len();
    }
}

/// Posts the reply: into the progress message when there is one (so the thread ends with the
/// outcome), then any further pieces; at most `MAX_PIECES` messages, the last saying what was
/// left out and how to narrow `command`.
async fn deliver(
    thread: &dyn Thread,
    format: Format,
    reply: &Reply,
    progress: Progress,
    incoming: &Incoming,
) {
    let command = incoming.text.as_str();
    let pieces = split_capped(
        &render(reply, format.dialect),
        format.limit,
        MAX_PIECES,
        |hidden| more_lines(hidden, command, format),
    );
    let mut pieces = pieces.iter();
    // Only take the first piece when there is a progress message to put it in, and it can
    // still be edited.
    if let Some(id) = progress.message.as_ref().filter(|_| !progress.stuck)
        && let Some(first) = pieces.next()
        && let Err(e) = thread.edit(id, first).await
    {
        tracing::warn!(error = %e, "could not replace progress with the outcome; posting it");
        if let Err(e) = thread.post(first).await {
            dropped(incoming, &e);
        }
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
            dropped(incoming, &e);
        }
    }
}

/// Reply messages given up on (after the platform's retries), since start.
static REPLIES_DROPPED: AtomicU64 = AtomicU64::new(0);

/// How many reply messages were given up on since start.
pub fn replies_dropped() -> u64 {
    REPLIES_DROPPED.load(Ordering::Relaxed)
}

/// Chat API calls tried again after the platform rate-limited them, since start.
static REPLIES_RETRIED: AtomicU64 = AtomicU64::new(0);

/// How many chat API calls were tried again after a rate limit since start.
pub fn replies_retried() -> u64 {
    REPLIES_RETRIED.load(Ordering::Relaxed)
}

/// Counts one retry of a rate-limited chat API call.
pub(crate) fn count_retry() {
    REPLIES_RETRIED.fetch_add(1, Ordering::Relaxed);
}

/// Counts and logs a reply message that could not be delivered.
fn dropped(incoming: &Incoming, error: &ChatError) {
    let total = REPLIES_DROPPED.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::error!(
        event = %incoming.event_id,
        platform = %incoming.origin.platform,
        error = %error,
        total,
        "could not post a reply; it is dropped"
    );
}

/// The last line of a reply that was cut: how much is missing and what to type instead.
fn more_lines(hidden: usize, command: &str, format: Format) -> String {
    let word = command.split_whitespace().next().unwrap_or_default();
    let env = command
        .split_whitespace()
        .nth(1)
        .filter(|w| !w.starts_with('-'))
        .map(|w| w.split('.').next().unwrap_or(w))
        .unwrap_or("<env>");
    let narrow = match word {
        "audit" => format!("`audit --limit 20`, `audit {env}` or `audit --user <user>`"),
        "history" => format!("`history {env} <service>` or `history {env} --limit 20`"),
        "deploys" => format!("`deploys {env} --limit 20`"),
        "env" => format!("one service: `env {env}.<service>`"),
        "diff" => "a diff of fewer revisions, or `ferry run` in a shell for all of it".to_string(),
        _ => "`ferry run` in a shell shows all of it".to_string(),
    };
    let line = format!(
        "… {hidden} more line{} not shown; narrow it with {narrow}",
        if hidden == 1 { "" } else { "s" }
    );
    super::markdown::escape_text(&line, format.dialect)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::markdown::SLACK;

    #[test]
    fn long_progress_keeps_the_newest_lines_under_the_limit() {
        let format = Format {
            dialect: SLACK,
            limit: 400,
        };
        let progress = Progress {
            lines: (0..100)
                .map(|i| format!("  svc-{i:02} <&> healthy"))
                .collect(),
            ..Progress::default()
        };
        let text = progress.text(format);
        assert!(text.len() <= 400, "{}", text.len());
        assert!(text.starts_with("```\n…\n"), "{text}");
        assert!(
            text.ends_with("  svc-99 &lt;&amp;&gt; healthy\n```"),
            "{text}"
        );
        let long = Progress {
            lines: vec!["x".repeat(5000)],
            ..Progress::default()
        };
        assert!(long.text(format).len() <= 400);
    }
}
