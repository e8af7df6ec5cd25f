//! Revisions: immutable, numbered snapshots of one environment's desired state. Every write
//! makes exactly one; nothing is edited in place.

use super::{Actor, Change, Document, Millis, Name};

/// Everything about a revision except its document: what `history` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionMeta {
    pub env: Name,
    /// Numbered from 1 per environment, without gaps.
    pub number: u64,
    /// The head this revision was written on; `None` for the first.
    pub parent: Option<u64>,
    pub author: Actor,
    pub at: Millis,
    pub reason: Option<String>,
    /// The command text that made it, as typed.
    pub command: String,
    pub changes: Vec<Change>,
}

/// A revision with its full document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub meta: RevisionMeta,
    pub document: Document,
}

impl RevisionMeta {
    /// `staging@42`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.env, self.number)
    }
}

/// A revision about to be written: the store assigns `parent + 1` as its number, and refuses it
/// if `parent` is no longer the head (compare-and-set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevision {
    pub env: Name,
    pub parent: Option<u64>,
    pub author: Actor,
    pub at: Millis,
    pub reason: Option<String>,
    pub command: String,
    pub changes: Vec<Change>,
    pub document: Document,
}

impl NewRevision {
    /// The number this revision gets if it wins.
    pub fn number(&self) -> u64 {
        self.parent.map_or(1, |p| p + 1)
    }

    /// The revision as it is once stored.
    pub fn into_revision(self) -> Revision {
        let number = self.number();
        Revision {
            meta: RevisionMeta {
                env: self.env,
                number,
                parent: self.parent,
                author: self.author,
                at: self.at,
                reason: self.reason,
                command: self.command,
                changes: self.changes,
            },
            document: self.document,
        }
    }
}
