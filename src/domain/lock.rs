//! Environment locks: a person holds an environment so that others cannot write to it or
//! converge it, optionally until a given time.

use super::{Actor, Millis, Name};

/// A lock on one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub env: Name,
    pub holder: Actor,
    pub reason: Option<String>,
    pub since: Millis,
    /// When the lock lapses by itself; `None` holds until `unlock`.
    pub expires: Option<Millis>,
}

impl Lock {
    /// Whether the lock still holds at `now`.
    pub fn is_active(&self, now: Millis) -> bool {
        self.expires.is_none_or(|e| now < e)
    }

    /// Whether `actor` is the one holding it (same platform identity).
    pub fn is_held_by(&self, actor: &Actor) -> bool {
        self.holder.identity() == actor.identity()
    }
}
