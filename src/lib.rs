//! ferry: a ChatOps deploy bot. Engineers type deploy commands in a shell, Slack or Discord;
//! ferry records every change as a revision in a versioned environment-config store and
//! applies it through deployers.
//!
//! Layout (each module's first lines say what it owns and what it must not know):
//! - `domain`: names, key paths, values, documents, revisions, diffs, locks, audit entries.
//!   Pure: no I/O.
//! - `command`: one file per command; parse (pure), check policy, execute against a `Context`,
//!   return a `Reply`. Knows no chat platform.
//! - `policy`: roles, permissions and who holds them.
//! - `store`: the `Store` trait and its SQLite and PostgreSQL backends.
//! - `deploy`: deployers (deployment adapters) and their config.
//! - `chat`: transports (shell, Slack, Discord) and rendering a `Reply` for each.
//! - `process`: running a program with a timeout, its process group killed with it; used by
//!   deployers, preflight checks and user-defined commands. Knows only `domain`.
//! - `engine`: converge: plan, lease, waves, verify, roll back, progress events.
//! - `serve`, `http`: `ferry serve`: transports and the HTTP listener.
//! - `config`: loading and validating `ferry.toml` and seed files.
//! - `app`: config + store + clock wired together; what every transport calls.
//! - `check`: `ferry check-config`.
//! - `clock`: time as a dependency.
//! - `logging`: stderr log lines with secrets (tokens, Socket Mode tickets) redacted.

pub mod app;
pub mod chat;
pub mod check;
pub mod clock;
pub mod command;
pub mod config;
pub mod deploy;
pub mod domain;
pub mod engine;
pub mod http;
pub mod logging;
pub mod policy;
pub mod process;
pub mod serve;
pub mod store;
