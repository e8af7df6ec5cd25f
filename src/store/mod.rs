//! The versioned environment-config store: revisions, locks, the audit trail, deploys and
//! applied state, pins, approvals and claimed chat events.
//!
//! `Store` is the seam, the sum of one trait per concern (`RevisionStore`, `LockStore`, …),
//! each implemented by `SqlStore` in a file of its own; `open` picks a backend from the URL scheme: SQLite (`sqlite://…`, the
//! embedded default) or PostgreSQL (`postgres://…`, for several ferry processes or replicas
//! sharing one store). Both run the same SQL through sqlx's `Any` driver (`sql.rs`); each backend
//! module owns only its connection settings and migrations. The store knows nothing of chat
//! platforms or deployers.

mod approvals;
mod audit;
mod chat_events;
mod deploys;
mod group_commit;
mod locks;
mod pins;
mod postgres;
mod revisions;
mod rows;
mod sql;
mod sqlite;

use crate::domain::{
    Actor, AppliedService, ApprovalRequest, ApprovalStatus, AuditEntry, AuditFilter, Deploy,
    DeployStatus, Lock, Millis, Name, NewApproval, NewAuditEntry, NewDeploy, NewRevision, Pin,
    ProcessGroup, Revision, RevisionMeta, Step,
};
use std::path::Path;
use std::sync::Arc;

/// A failure of the store itself (not of the caller's request).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused the operation.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A row could not be read back into ferry's types.
    #[error("the store holds data ferry cannot read: {0}")]
    Corrupt(String),
    /// The deploy no longer holds its environment's lease: another process found it dead and
    /// marked it interrupted. Nothing was written.
    #[error("deploy #{0} lost its lease: another process marked it interrupted")]
    LeaseLost(i64),
    /// The URL names no backend ferry has.
    #[error("`{0}` is not a store URL: use sqlite://PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
}

/// Why an append did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// Another writer moved the head first; reload and try again on `head`.
    #[error("revision {attempted} lost a race: the head is now {head:?}")]
    Conflict { attempted: u64, head: Option<u64> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The result of trying to take a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockAttempt {
    /// The caller now holds this lock (new, renewed, or replacing an expired one).
    Acquired(Lock),
    /// Someone else holds an active lock.
    HeldBy(Lock),
}

/// The result of trying to start a deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployStart {
    /// The caller holds the environment's deploy lease as this deploy id.
    Started(i64),
    /// Another deploy of the environment is running.
    Busy(Box<Deploy>),
    /// The running deploy finished while this one tried to start; try again.
    Retry,
}

/// Revisions: immutable, numbered snapshots of an environment's desired state (`revisions.rs`).
#[async_trait::async_trait]
pub trait RevisionStore: Send + Sync {
    /// The newest revision of `env`, with its document; `None` before the first write.
    async fn head(&self, env: &Name) -> Result<Option<Revision>, StoreError>;

    /// One revision of `env` by number.
    async fn revision(&self, env: &Name, number: u64) -> Result<Option<Revision>, StoreError>;

    /// Writes `revision` as number `parent + 1` if and only if `parent` is still the head
    /// (compare-and-set). Atomic: on any error nothing is written.
    async fn append(&self, revision: NewRevision) -> Result<Revision, AppendError>;

    /// Revisions of `env`, newest first, at most `limit`; with `service`, only those whose
    /// change set touched that service.
    async fn history(
        &self,
        env: &Name,
        service: Option<&Name>,
        limit: u32,
    ) -> Result<Vec<RevisionMeta>, StoreError>;
}

/// Locks that keep others from changing or converging an environment (`locks.rs`).
#[async_trait::async_trait]
pub trait LockStore: Send + Sync {
    /// The lock on `env`, active or lapsed, if any is recorded.
    async fn lock(&self, env: &Name) -> Result<Option<Lock>, StoreError>;

    /// Takes `lock` unless another holder's lock is active at `now`. The holder may renew its
    /// own lock; a lapsed lock of anyone is replaced.
    async fn acquire_lock(&self, lock: Lock, now: Millis) -> Result<LockAttempt, StoreError>;

    /// Removes the lock on `env`, returning what was removed.
    async fn release_lock(&self, env: &Name) -> Result<Option<Lock>, StoreError>;

    /// Removes and returns the locks held by `identity` (`shell:alice`) that lapsed before
    /// `now`, so that the holder can be told.
    async fn take_lapsed_locks(&self, identity: &str, now: Millis)
    -> Result<Vec<Lock>, StoreError>;
}

/// The audit trail: every command attempted, with its outcome (`audit.rs`).
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// Records one attempted command.
    async fn record_audit(&self, entry: NewAuditEntry) -> Result<i64, StoreError>;

    /// Audit entries matching `filter`, newest first.
    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;
}

/// Deploys and applied state: the one-running-deploy-per-environment lease, what each
/// service last ran, and the record of each run (`deploys.rs`).
#[async_trait::async_trait]
pub trait DeployStore: Send + Sync {
    /// What each service of `env` last ran successfully.
    async fn applied(&self, env: &Name) -> Result<Vec<AppliedService>, StoreError>;

    /// Records that a service of `env` now runs `applied.spec`.
    async fn record_applied(&self, env: &Name, applied: &AppliedService) -> Result<(), StoreError> {
        self.record_applied_many(env, std::slice::from_ref(applied))
            .await
    }

    /// Records several services at once, atomically (one commit), only while every deploy
    /// they name is still running: a deploy that lost its lease (another process reaped it)
    /// must not record anything more, and gets `StoreError::LeaseLost`.
    async fn record_applied_many(
        &self,
        env: &Name,
        applied: &[AppliedService],
    ) -> Result<(), StoreError>;

    /// Records a running deploy unless one of the same environment is running already: the
    /// deploy lease, held across every process sharing the store.
    async fn start_deploy(&self, deploy: &NewDeploy) -> Result<DeployStart, StoreError>;

    /// Marks the running deploy `id` alive at `now`; `false` when it is no longer running
    /// (another process found it dead and marked it interrupted).
    async fn heartbeat_deploy(&self, id: i64, now: Millis) -> Result<bool, StoreError>;

    /// Records the steps so far, so that a crash leaves a trace of what was done; `false`
    /// (and nothing written) when the deploy is no longer running.
    async fn record_steps(&self, id: i64, steps: &[Step]) -> Result<bool, StoreError>;

    /// Adds a process group the running deploy `id` started; `false` when it is no longer
    /// running.
    async fn record_deploy_process(&self, id: i64, group: ProcessGroup)
    -> Result<bool, StoreError>;

    /// Ends deploy `id`, releasing the lease, if it is still running; `false` (and nothing
    /// written) when another process marked it interrupted meanwhile, whose record stands.
    async fn finish_deploy(
        &self,
        id: i64,
        status: DeployStatus,
        steps: &[Step],
        summary: &str,
        now: Millis,
    ) -> Result<bool, StoreError>;

    /// Marks running deploy `id` interrupted, if its heartbeat is still `heartbeat` (so a
    /// deploy that is alive after all is never taken from its owner).
    async fn interrupt_deploy(
        &self,
        id: i64,
        heartbeat: Millis,
        summary: &str,
        now: Millis,
    ) -> Result<bool, StoreError>;

    /// Deploys of `env`, newest first.
    async fn deploys(&self, env: &Name, limit: u32) -> Result<Vec<Deploy>, StoreError>;

    /// The running deploy of `env`, if any.
    async fn running_deploy(&self, env: &Name) -> Result<Option<Deploy>, StoreError>;
}

/// The pins rollbacks leave (`pins.rs`).
#[async_trait::async_trait]
pub trait PinStore: Send + Sync {
    /// The pin a rollback left on `env`.
    async fn pin(&self, env: &Name) -> Result<Option<Pin>, StoreError>;

    /// Pins an environment (replacing any pin).
    async fn set_pin(&self, pin: &Pin) -> Result<(), StoreError>;

    /// Lifts the pin, returning it.
    async fn clear_pin(&self, env: &Name) -> Result<Option<Pin>, StoreError>;
}

/// Approval requests and their distinct approvers (`approvals.rs`).
#[async_trait::async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Records an approval request; returns its id.
    async fn create_approval(&self, request: &NewApproval) -> Result<i64, StoreError>;

    /// One request with its approvers.
    async fn approval(&self, id: i64) -> Result<Option<ApprovalRequest>, StoreError>;

    /// Requests still pending (of `env`, or all), oldest first.
    async fn pending_approvals(
        &self,
        env: Option<&Name>,
    ) -> Result<Vec<ApprovalRequest>, StoreError>;

    /// Adds `approver` to request `id`; `false` when they had approved already (counts once).
    async fn add_approver(&self, id: i64, approver: &Actor, at: Millis)
    -> Result<bool, StoreError>;

    /// Closes a pending request; `false` when it was no longer pending (someone else closed it).
    async fn close_approval(
        &self,
        id: i64,
        status: ApprovalStatus,
        decided_by: Option<&str>,
        reason: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Moves a request that was already closed as `from` to `status` (an approved request
    /// whose converge could not start after all becomes stale); `false` when it was not `from`.
    async fn reclose_approval(
        &self,
        id: i64,
        from: ApprovalStatus,
        status: ApprovalStatus,
        reason: Option<&str>,
    ) -> Result<bool, StoreError>;
}

/// Chat events claimed so that a redelivery never runs twice (`chat_events.rs`).
#[async_trait::async_trait]
pub trait ChatEventStore: Send + Sync {
    /// Records that chat event `event_id` of `platform` is being handled; `false` when it
    /// already was (a redelivery), in this process or any other sharing the store.
    async fn claim_event(
        &self,
        platform: &str,
        event_id: &str,
        now: Millis,
    ) -> Result<bool, StoreError>;

    /// Forgets claimed events older than `before` (platforms stop redelivering after minutes).
    async fn forget_events(&self, before: Millis) -> Result<u64, StoreError>;
}

/// Everything ferry persists: the sum of the stores by concern. Implementations must be safe to
/// share between tasks and between processes using the same database.
pub trait Store:
    RevisionStore + LockStore + AuditStore + DeployStore + PinStore + ApprovalStore + ChatEventStore
{
}

impl<T> Store for T where
    T: RevisionStore
        + LockStore
        + AuditStore
        + DeployStore
        + PinStore
        + ApprovalStore
        + ChatEventStore
{
}

/// Opens (creating and migrating if needed) the store at `url`. Relative SQLite paths resolve
/// against `base_dir`, the folder of the config file.
pub async fn open(url: &str, base_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = sqlite::path_of(url) {
        Ok(Arc::new(sqlite::open(&base_dir.join(path)).await?))
    } else if postgres::is_postgres(url) {
        Ok(Arc::new(postgres::open(url).await?))
    } else {
        Err(StoreError::BadUrl(redact_url(url)))
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`: store URLs may carry a
/// password, which must never reach a reply or a log.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    // The last `@` ends the user info, even if a password (wrongly) contains an unencoded `@`.
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://ferry.db"), "sqlite://ferry.db");
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db?x=a@b"),
            "postgres://u:***@h/db?x=a@b"
        );
    }
}
