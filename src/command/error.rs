//! The two kinds of error a command can end in. `UserError` text is written for the person who
//! typed the command (what was wrong, what to type instead); store failures are reported
//! briefly and logged in full.

use crate::domain::Outcome;
use crate::store::StoreError;

/// A command line that is not a valid command. Pure: produced by the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    /// The usage line of the command being parsed, or a suggested command.
    pub try_instead: Option<String>,
}

impl ParseError {
    pub fn new(message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            try_instead: None,
        }
    }

    pub fn with_usage(message: impl Into<String>, usage: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            try_instead: Some(usage.into()),
        }
    }
}

/// Something the user can act on: what was wrong and what to type instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserError {
    pub message: String,
    pub try_instead: Option<String>,
}

impl UserError {
    pub fn new(message: impl Into<String>) -> UserError {
        UserError {
            message: message.into(),
            try_instead: None,
        }
    }

    pub fn try_instead(mut self, command: impl Into<String>) -> UserError {
        self.try_instead = Some(command.into());
        self
    }
}

/// How a command can end other than with its reply.
#[derive(Debug, Clone)]
pub enum CommandError {
    /// Bad input or an unknown name: the command failed, nothing changed.
    Invalid(UserError),
    /// Policy said no (permission, lock): nothing changed.
    Refused(UserError),
    /// The store failed: nothing changed.
    Store(StoreError),
    /// The work started and stopped partway (a deploy that lost its lease): the message says
    /// what took effect, so the reply does not claim that nothing changed.
    Interrupted(UserError),
}

impl CommandError {
    pub fn outcome(&self) -> Outcome {
        match self {
            CommandError::Refused(_) => Outcome::Refused,
            CommandError::Invalid(_) | CommandError::Store(_) | CommandError::Interrupted(_) => {
                Outcome::Failed
            }
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        CommandError::Store(e)
    }
}

impl From<ParseError> for CommandError {
    fn from(e: ParseError) -> Self {
        CommandError::Invalid(UserError {
            message: e.message,
            try_instead: e.try_instead,
        })
    }
}

/// Shorthand for failing with bad input.
pub fn invalid<T>(message: impl Into<String>) -> Result<T, CommandError> {
    Err(CommandError::Invalid(UserError::new(message)))
}
