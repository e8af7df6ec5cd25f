//! The one reply type every command returns and every transport renders: a headline stating
//! the outcome, then detail. Platform formatting lives in the transports, not here.

use super::error::CommandError;
use crate::domain::Outcome;

/// A button: its label and the command it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub label: String,
    pub command: String,
    /// Shown as the affirmative choice (green on Discord, primary on Slack); otherwise danger.
    pub primary: bool,
}

/// The commands a button may run: clicks arrive from chat platforms as data, so only these
/// exact shapes are accepted.
pub fn is_button_command(command: &str) -> bool {
    let mut words = command.split(' ');
    matches!(words.next(), Some("approve" | "deny"))
        && words
            .next()
            .is_some_and(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()))
        && words.next().is_none()
}

/// A reply to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub outcome: Outcome,
    /// One line that states what happened (`staging@43: ms-users.version 3.5.6 → 3.5.7`).
    pub headline: String,
    pub blocks: Vec<Block>,
    /// Something to announce in the environment's alert channel (a failed or forced deploy);
    /// chat transports deliver it.
    pub alert: Option<(crate::domain::Name, String)>,
}

/// A piece of detail under the headline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A line of prose.
    Text(String),
    /// Aligned columns: history, envs, diffs, audit.
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// Buttons that run a command as whoever clicks them (`Approve` → `approve 7`). Chat
    /// platforms show buttons; text transports rely on the `Next` line that accompanies them.
    Buttons(Vec<Button>),
    /// A command to type next, after a label (`Try`, `Next`): rendered as code where the
    /// platform can.
    Next {
        label: &'static str,
        command: String,
    },
}

impl Reply {
    fn with(outcome: Outcome, headline: impl Into<String>) -> Reply {
        Reply {
            outcome,
            headline: headline.into(),
            blocks: Vec::new(),
            alert: None,
        }
    }

    pub fn ok(headline: impl Into<String>) -> Reply {
        Reply::with(Outcome::Ok, headline)
    }

    /// A reply for a command that ran but did not succeed (e.g. a failed deploy).
    pub fn failed(headline: impl Into<String>) -> Reply {
        Reply::with(Outcome::Failed, headline)
    }

    /// Another reply's headline and blocks under a new headline (with the other's outcome).
    pub fn wrapping(headline: impl Into<String>, inner: Reply) -> Reply {
        let mut reply = Reply::with(inner.outcome, headline).text(inner.headline);
        reply.blocks.extend(inner.blocks);
        reply.alert = inner.alert;
        reply
    }

    pub fn text(mut self, line: impl Into<String>) -> Reply {
        self.blocks.push(Block::Text(line.into()));
        self
    }

    pub fn table(mut self, header: &[&str], rows: Vec<Vec<String>>) -> Reply {
        let header = header.iter().map(|h| h.to_string()).collect();
        self.blocks.push(Block::Table { header, rows });
        self
    }

    /// Adds buttons.
    pub fn buttons(mut self, buttons: Vec<Button>) -> Reply {
        self.blocks.push(Block::Buttons(buttons));
        self
    }

    /// The buttons of this reply, if any.
    pub fn all_buttons(&self) -> Vec<Button> {
        self.blocks
            .iter()
            .flat_map(|b| match b {
                Block::Buttons(buttons) => buttons.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// Suggests what to type next.
    pub fn next(mut self, label: &'static str, command: impl Into<String>) -> Reply {
        self.blocks.push(Block::Next {
            label,
            command: command.into(),
        });
        self
    }

    /// The reply for a command that ended in `error`: says that nothing changed, except after
    /// an interrupted deploy, whose message says what took effect.
    pub fn from_error(error: &CommandError) -> Reply {
        let user = |e: &super::error::UserError| {
            let reply = Reply::with(error.outcome(), e.message.clone());
            match &e.try_instead {
                Some(command) => reply.next("Try", command.clone()),
                None => reply,
            }
        };
        let mut reply = match error {
            CommandError::Invalid(e) | CommandError::Refused(e) => user(e),
            CommandError::Store(e) => Reply::with(error.outcome(), e.to_string())
                .text("Try again once the store is back."),
            // Its message says what took effect.
            CommandError::Interrupted(e) => return user(e),
        };
        reply
            .blocks
            .push(Block::Text("Nothing changed.".to_string()));
        reply
    }
}
