//! The one reply type every command returns and every transport renders: a headline stating
//! the outcome, then detail. Platform formatting lives in the transports, not here.

use super::error::CommandError;
use crate::domain::Outcome;

/// A reply to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub outcome: Outcome,
    /// One line that states what happened (`staging@43: ms-users.version 3.5.6 → 3.5.7`).
    pub headline: String,
    pub blocks: Vec<Block>,
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
    /// A command to type next, after a label (`Try`, `Next`): rendered as code where the
    /// platform can.
    Next {
        label: &'static str,
        command: String,
    },
}

impl Reply {
    pub fn ok(headline: impl Into<String>) -> Reply {
        Reply {
            outcome: Outcome::Ok,
            headline: headline.into(),
            blocks: Vec::new(),
        }
    }

    /// A reply for a command that ran but did not succeed (e.g. a failed deploy).
    pub fn failed(headline: impl Into<String>) -> Reply {
        Reply {
            outcome: Outcome::Failed,
            headline: headline.into(),
            blocks: Vec::new(),
        }
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

    /// Suggests what to type next.
    pub fn next(mut self, label: &'static str, command: impl Into<String>) -> Reply {
        self.blocks.push(Block::Next {
            label,
            command: command.into(),
        });
        self
    }

    /// The reply for a command that ended in `error`. Always says that nothing changed.
    pub fn from_error(error: &CommandError) -> Reply {
        let (message, try_instead) = match error {
            CommandError::Invalid(e) | CommandError::Refused(e) => {
                (e.message.clone(), e.try_instead.clone())
            }
            CommandError::Store(e) => (
                e.to_string(),
                Some("the same command again once the store is back".to_string()),
            ),
        };
        let mut reply = Reply {
            outcome: error.outcome(),
            headline: message,
            blocks: Vec::new(),
        };
        if let Some(command) = try_instead {
            reply.blocks.push(Block::Next {
                label: "Try",
                command,
            });
        }
        reply
            .blocks
            .push(Block::Text("Nothing changed.".to_string()));
        reply
    }
}
