//! Converge: plan, then deploy through deployers in waves with bounded concurrency, verify
//! health, record applied state, and on failure stop and (optionally) roll back what was
//! touched. Progress is published as events a transport renders.
//!
//! The engine talks to the `Store` and `Deployer` traits only: it knows no chat platform and
//! no SQL. One deploy per environment at a time is guaranteed by the store's deploy lease;
//! a deploy whose process died is found by `reap` and marked interrupted, before any answer
//! about deploys (`answers.rs`) or any converge, so callers never reap on their own.

mod answers;
mod converge;
mod events;
mod heartbeat;
mod lease;
mod preflight;
mod request;
mod run;

pub use answers::Activity;
pub use events::{DeployEvent, EventSink};
pub use lease::{owner_id, short_owner};
pub use preflight::PreflightCheck;
pub use request::{ConvergeOutcome, ConvergeRequest, DeployReport, Expected, Failure, Rollout};

use crate::clock::Clock;
use crate::deploy::Deployers;
use crate::domain::{Deploy, Name};
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// How long a running deploy may go without a heartbeat before another process treats it as
/// dead (its process crashed or lost the store).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// Why a converge did not run (a deploy that ran and failed is a `DeployReport`, not this).
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("{} is already being deployed (deploy #{} by {})", .0.env, .0.id, .0.actor)]
    Busy(Box<Deploy>),
    #[error("environment {0} uses deployer `{1}`, which is not configured")]
    NoDeployer(Name, Name),
    #[error("{0} has no revisions to converge")]
    NoRevision(Name),
    /// The converge was bound to a revision and plan (an approval, a rollback) and what
    /// converging would deploy now is no longer that: nothing was deployed.
    #[error("{env}@{expected} is no longer what would deploy ({why})")]
    Stale {
        env: Name,
        expected: u64,
        why: String,
    },
    /// Another process found this deploy dead and marked it interrupted: it was stopped at
    /// once, and nothing more of it was recorded.
    #[error("deploy #{0} was stopped: another process marked it interrupted")]
    LeaseLost(i64),
    #[error("preflight check `{name}` failed: {message}")]
    Preflight {
        name: String,
        message: String,
        output: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The converge engine, shared by every command and transport of one process.
pub struct Engine {
    store: Arc<dyn Store>,
    deployers: Deployers,
    clock: Arc<dyn Clock>,
    /// This process, as recorded on the deploys it runs.
    identity: lease::Owner,
    owner: String,
    lease: Duration,
    /// One writer per environment at a time within this process, so that a burst of writes
    /// queues instead of racing the store's compare-and-set (which still guards across
    /// processes). Without it, N concurrent writers cost O(N²) lost races.
    writers: std::sync::Mutex<std::collections::HashMap<Name, Arc<tokio::sync::Mutex<()>>>>,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, deployers: Deployers, clock: Arc<dyn Clock>) -> Engine {
        Engine {
            store,
            deployers,
            clock,
            identity: lease::Owner::current(),
            owner: owner_id(),
            lease: DEFAULT_LEASE,
            writers: Default::default(),
        }
    }

    /// Sets how long a deploy may go silent before it counts as dead.
    pub fn with_lease(mut self, lease: Duration) -> Engine {
        self.lease = lease;
        self
    }

    /// The lock a writer of `env` holds while it reads the head, edits and appends.
    pub fn writer(&self, env: &Name) -> Arc<tokio::sync::Mutex<()>> {
        let mut writers = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        writers.entry(env.clone()).or_default().clone()
    }
}
