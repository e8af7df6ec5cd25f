//! ferry: a ChatOps deploy bot. Engineers type deploy commands in a shell, Slack or Discord;
//! ferry records every change as a revision in a versioned environment-config store and
//! applies it through deployers.
//!
//! Layout (each module's first lines say what it owns and what it must not know):
//! - `domain`: names, key paths, values, documents, revisions, diffs, locks, audit entries.
//!   Pure: no I/O.
//! - `store`: the `Store` trait and its SQLite and PostgreSQL backends.

pub mod domain;
pub mod store;
