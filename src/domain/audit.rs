//! The audit trail: one entry for every command attempted, whatever its outcome.

use super::{Actor, Millis, Name};
use std::fmt;

/// How a command ended, as recorded and as the exit code of `ferry run` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did what it said.
    Ok,
    /// Policy said no: a missing permission, someone else's lock, a pin.
    Refused,
    /// It could not be done: bad input, an unknown name, a store or deployer error.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "ok" => Some(Outcome::Ok),
            "refused" => Some(Outcome::Refused),
            "failed" => Some(Outcome::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub at: Millis,
    pub actor: Actor,
    pub platform: String,
    pub channel: Option<String>,
    /// The environment the command touched, when it names one.
    pub env: Option<Name>,
    /// The command as typed (capped and with control characters escaped).
    pub text: String,
    pub outcome: Outcome,
    /// The reply's headline.
    pub detail: String,
}

/// A recorded entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub entry: NewAuditEntry,
}

/// Which entries `audit` lists, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    pub env: Option<Name>,
    /// Matches the identity (`shell:alice`) or the user id or display name.
    pub user: Option<String>,
    pub limit: u32,
}
