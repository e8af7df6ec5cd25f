//! `SqlStore`: the one implementation of `Store`, as portable SQL over sqlx's `Any` driver, shared
//! by the SQLite and PostgreSQL backends.
//!
//! It must not know which database it talks to: no connection settings, no dialect branches.
//! The only backend-specific input is the statement that opens a write transaction, handed in by
//! the backend module. Queries are built at run time (`sqlx::query`, `$n` placeholders, which
//! both drivers accept); timestamps are `i64` milliseconds and documents and change sets are JSON
//! text, because `Any` maps only basic types.

use super::{AppendError, DeployStart, LockAttempt, Store, StoreError};
use crate::domain::{
    Actor, AppliedService, ApprovalRequest, ApprovalStatus, AuditEntry, AuditFilter, Change,
    Deploy, DeployStatus, Document, Lock, Millis, Name, NewApproval, NewAuditEntry, NewDeploy,
    NewRevision, Outcome, Pin, ProcessGroup, Revision, RevisionMeta, Step,
};
use sqlx::AnyPool;
use sqlx::any::{Any, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr, Transaction};
use std::collections::BTreeSet;

/// The columns of `revisions` that make a `RevisionMeta`, in the order `meta_from_row` reads
/// them by name. A macro so that `concat!` can build `'static` queries from it.
macro_rules! meta_columns {
    () => {
        "env, number, parent, author_platform, author_id, author_display, at, reason, command, changes"
    };
}

/// The columns of `locks`, for every query that returns one.
macro_rules! lock_columns {
    () => {
        "env, holder_platform, holder_id, holder_display, reason, since, expires"
    };
}

/// The columns of `audit`, for listing entries.
macro_rules! audit_columns {
    () => {
        "id, at, actor_platform, actor_id, actor_display, platform, channel, env, text, outcome, detail"
    };
}

/// How many times `acquire_lock` goes round when the lock it lost to vanished before it could be
/// read back (released between the two statements). Each round is a fresh transaction.
const LOCK_ATTEMPTS: usize = 5;

/// Registers the SQLite and PostgreSQL drivers with `Any`, which otherwise knows none and panics
/// on the first connection ("No drivers installed"). sqlx guards it with its own `Once`, so each
/// backend simply calls it before connecting.
pub(super) fn install_drivers() {
    sqlx::any::install_default_drivers();
}

/// A migrator over one backend's embedded scripts, given as `(version, description, sql)`.
/// Built by hand rather than with `sqlx::migrate!`, which would need the `macros` feature and
/// compile the drivers a second time; the checksums are the same.
pub(super) fn migrator(scripts: &[(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        scripts
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// The store over one connection pool, SQLite or PostgreSQL alike.
pub(super) struct SqlStore {
    pub(super) pool: AnyPool,
    /// The statement that opens a transaction that will write. SQLite needs `BEGIN IMMEDIATE`:
    /// a deferred transaction that reads first and then writes fails at once with SQLITE_BUSY
    /// (the busy timeout does not apply) when another connection wrote in between, whereas
    /// taking the write lock up front waits for it. PostgreSQL's plain `BEGIN` is enough, since
    /// its row locks and unique index already serialize the writes that matter.
    begin_write: &'static str,
}

/// What the append transaction found.
enum AppendStep {
    Written,
    /// `parent` was not the head; nothing was written.
    Stale,
}

impl SqlStore {
    /// Wraps a pool whose schema is already migrated.
    pub(super) fn new(pool: AnyPool, begin_write: &'static str) -> SqlStore {
        SqlStore { pool, begin_write }
    }

    pub(super) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        self.pool
            .begin_with(self.begin_write)
            .await
            .map_err(unavailable)
    }

    /// Runs one INSERT in a write transaction: `true` when it inserted, `false` when the row
    /// already existed (a unique violation), which is how "first one wins" is decided across
    /// processes (claimed chat events, distinct approvers).
    pub(super) async fn insert_once(
        &self,
        insert: sqlx::query::Query<'_, Any, sqlx::any::AnyArguments>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        match insert.execute(&mut *tx).await {
            Ok(_) => {
                tx.commit().await.map_err(unavailable)?;
                Ok(true)
            }
            Err(e) if is_unique_violation(&e) => {
                rollback(tx).await;
                Ok(false)
            }
            Err(e) => {
                rollback(tx).await;
                Err(unavailable(e))
            }
        }
    }

    /// The head's number, read outside any transaction: what a losing appender is told.
    async fn head_number(&self, env: &Name) -> Result<Option<u64>, StoreError> {
        let row = sqlx::query("SELECT MAX(number) AS head FROM revisions WHERE env = $1")
            .bind(env.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        get::<Option<i64>>(&row, "head")?.map(to_u64).transpose()
    }

    /// The compare-and-set itself: checks `parent` against the head and writes the revision
    /// and its service index rows, all inside `tx`. The caller commits or rolls back.
    async fn write_revision(
        tx: &mut Transaction<'static, Any>,
        revision: &NewRevision,
        number: i64,
        parent: Option<i64>,
    ) -> Result<AppendStep, sqlx::Error> {
        let head: Option<i64> =
            sqlx::query_scalar("SELECT MAX(number) FROM revisions WHERE env = $1")
                .bind(revision.env.as_str())
                .fetch_one(&mut **tx)
                .await?;
        // Equal heads only: a stale parent would overwrite nothing (the key exists) but a parent
        // ahead of the head would leave a gap, and both mean the caller's view is wrong.
        if head != parent {
            return Ok(AppendStep::Stale);
        }
        let changes = serde_json::to_string(&revision.changes)
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let document = serde_json::to_string(&revision.document)
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(concat!(
            "INSERT INTO revisions (",
            meta_columns!(),
            ", document) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(revision.env.as_str())
        .bind(number)
        .bind(parent)
        .bind(&revision.author.platform)
        .bind(&revision.author.id)
        .bind(&revision.author.display)
        .bind(revision.at)
        .bind(revision.reason.as_deref())
        .bind(&revision.command)
        .bind(changes)
        .bind(document)
        .execute(&mut **tx)
        .await?;
        let services: BTreeSet<&str> = revision
            .changes
            .iter()
            .map(|c| c.service.as_str())
            .collect();
        for service in services {
            sqlx::query("INSERT INTO revision_services (env, service, number) VALUES ($1, $2, $3)")
                .bind(revision.env.as_str())
                .bind(service)
                .bind(number)
                .execute(&mut **tx)
                .await?;
        }
        Ok(AppendStep::Written)
    }

    /// One round of `acquire_lock`; `None` when the lock that blocked it disappeared before it
    /// could be read, so the caller should go round again.
    async fn try_acquire_lock(
        &self,
        lock: &Lock,
        now: Millis,
    ) -> Result<Option<LockAttempt>, StoreError> {
        let mut tx = self.begin_write().await?;
        // One conditional upsert decides atomically: insert when there is no lock, replace it
        // when it is the caller's own or has lapsed, and leave it alone otherwise (0 rows).
        // PostgreSQL locks the conflicting row even when the WHERE fails, and SQLite's
        // IMMEDIATE transaction holds the write lock, so the read below sees the winner.
        let written = sqlx::query(concat!(
            "INSERT INTO locks (",
            lock_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (env) DO UPDATE SET \
               holder_platform = excluded.holder_platform, holder_id = excluded.holder_id, \
               holder_display = excluded.holder_display, reason = excluded.reason, \
               since = excluded.since, expires = excluded.expires \
             WHERE (locks.holder_platform = excluded.holder_platform \
                    AND locks.holder_id = excluded.holder_id) \
                OR (locks.expires IS NOT NULL AND locks.expires <= $8)"
        ))
        .bind(lock.env.as_str())
        .bind(&lock.holder.platform)
        .bind(&lock.holder.id)
        .bind(&lock.holder.display)
        .bind(lock.reason.as_deref())
        .bind(lock.since)
        .bind(lock.expires)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        let outcome = if written == 1 {
            Some(LockAttempt::Acquired(lock.clone()))
        } else {
            let row = sqlx::query(concat!(
                "SELECT ",
                lock_columns!(),
                " FROM locks WHERE env = $1"
            ))
            .bind(lock.env.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
            row.as_ref()
                .map(lock_from_row)
                .transpose()?
                .map(LockAttempt::HeldBy)
        };
        tx.commit().await.map_err(unavailable)?;
        Ok(outcome)
    }
}

#[async_trait::async_trait]
impl Store for SqlStore {
    async fn head(&self, env: &Name) -> Result<Option<Revision>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            meta_columns!(),
            ", document FROM revisions WHERE env = $1 ORDER BY number DESC LIMIT 1"
        ))
        .bind(env.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(revision_from_row).transpose()
    }

    async fn revision(&self, env: &Name, number: u64) -> Result<Option<Revision>, StoreError> {
        // A number past i64::MAX cannot have been stored.
        let Ok(number) = i64::try_from(number) else {
            return Ok(None);
        };
        let row = sqlx::query(concat!(
            "SELECT ",
            meta_columns!(),
            ", document FROM revisions WHERE env = $1 AND number = $2"
        ))
        .bind(env.as_str())
        .bind(number)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(revision_from_row).transpose()
    }

    async fn append(&self, revision: NewRevision) -> Result<Revision, AppendError> {
        let attempted = revision.parent.map_or(1, |p| p.saturating_add(1));
        let conflict = |head| AppendError::Conflict { attempted, head };
        // A parent too large for the column (or whose successor would be) cannot be the head.
        let (Ok(parent), Ok(number)) = (
            revision.parent.map(i64::try_from).transpose(),
            i64::try_from(attempted),
        ) else {
            return Err(conflict(self.head_number(&revision.env).await?));
        };
        let mut tx = self.begin_write().await?;
        let step = Self::write_revision(&mut tx, &revision, number, parent).await;
        match step {
            Ok(AppendStep::Written) => match tx.commit().await {
                Ok(()) => Ok(revision.into_revision()),
                Err(e) if is_unique_violation(&e) => {
                    Err(conflict(self.head_number(&revision.env).await?))
                }
                Err(e) => Err(unavailable(e).into()),
            },
            Ok(AppendStep::Stale) => {
                rollback(tx).await;
                Err(conflict(self.head_number(&revision.env).await?))
            }
            // Another writer inserted the same number between our read and our insert (on
            // PostgreSQL, where the read takes no lock): it won.
            Err(e) if is_unique_violation(&e) => {
                rollback(tx).await;
                Err(conflict(self.head_number(&revision.env).await?))
            }
            Err(e) => {
                rollback(tx).await;
                Err(unavailable(e).into())
            }
        }
    }

    async fn history(
        &self,
        env: &Name,
        service: Option<&Name>,
        limit: u32,
    ) -> Result<Vec<RevisionMeta>, StoreError> {
        let rows = match service {
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    meta_columns!(),
                    " FROM revisions WHERE env = $1 ORDER BY number DESC LIMIT $2"
                ))
                .bind(env.as_str())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
            }
            // Driven by revision_services' primary key (env, service, number), read backwards.
            Some(service) => {
                sqlx::query(concat!(
                    "SELECT ",
                    meta_columns!(),
                    " FROM revision_services s JOIN revisions r USING (env, number) \
                     WHERE s.env = $1 AND s.service = $2 ORDER BY s.number DESC LIMIT $3"
                ))
                .bind(env.as_str())
                .bind(service.as_str())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(unavailable)?;
        rows.iter().map(meta_from_row).collect()
    }

    async fn lock(&self, env: &Name) -> Result<Option<Lock>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            lock_columns!(),
            " FROM locks WHERE env = $1"
        ))
        .bind(env.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(lock_from_row).transpose()
    }

    async fn acquire_lock(&self, lock: Lock, now: Millis) -> Result<LockAttempt, StoreError> {
        for _ in 0..LOCK_ATTEMPTS {
            if let Some(attempt) = self.try_acquire_lock(&lock, now).await? {
                return Ok(attempt);
            }
        }
        Err(StoreError::Unavailable(format!(
            "the lock on {} kept changing hands; try again",
            lock.env
        )))
    }

    async fn release_lock(&self, env: &Name) -> Result<Option<Lock>, StoreError> {
        let row = sqlx::query(concat!(
            "DELETE FROM locks WHERE env = $1 RETURNING ",
            lock_columns!()
        ))
        .bind(env.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(lock_from_row).transpose()
    }

    async fn take_lapsed_locks(
        &self,
        identity: &str,
        now: Millis,
    ) -> Result<Vec<Lock>, StoreError> {
        // `platform:id`, split at the first `:` (platforms never contain one, ids may), and
        // compared column by column so that locks_by_holder serves it.
        let Some((platform, id)) = identity.split_once(':') else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(concat!(
            "DELETE FROM locks WHERE holder_platform = $1 AND holder_id = $2 \
             AND expires IS NOT NULL AND expires <= $3 RETURNING ",
            lock_columns!()
        ))
        .bind(platform)
        .bind(id)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut locks = rows
            .iter()
            .map(lock_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING promises no order; callers tell people about them, so make it stable.
        locks.sort_by(|a, b| a.env.cmp(&b.env));
        Ok(locks)
    }

    async fn record_audit(&self, entry: NewAuditEntry) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO audit (at, actor_platform, actor_id, actor_display, platform, channel, \
             env, text, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             RETURNING id",
        )
        .bind(entry.at)
        .bind(&entry.actor.platform)
        .bind(&entry.actor.id)
        .bind(&entry.actor.display)
        .bind(&entry.platform)
        .bind(entry.channel.as_deref())
        .bind(entry.env.as_ref().map(Name::as_str))
        .bind(&entry.text)
        .bind(entry.outcome.as_str())
        .bind(&entry.detail)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        get::<i64>(&row, "id")
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        // Only the conditions asked for are in the query, so that each can use its index
        // (audit_by_env, audit_by_actor_id, audit_by_actor_display); placeholders are numbered
        // by the argument list, and no caller text ever goes into the SQL itself.
        let mut args: Vec<&str> = Vec::new();
        let mut conditions: Vec<String> = Vec::new();
        if let Some(env) = &filter.env {
            args.push(env.as_str());
            conditions.push(format!("env = ${}", args.len()));
        }
        if let Some(user) = &filter.user {
            args.push(user);
            let n = args.len();
            let mut any_of = vec![format!("actor_id = ${n}"), format!("actor_display = ${n}")];
            if let Some((platform, id)) = user.split_once(':') {
                args.push(platform);
                args.push(id);
                any_of.push(format!(
                    "(actor_platform = ${} AND actor_id = ${})",
                    n + 1,
                    n + 2
                ));
            }
            conditions.push(format!("({})", any_of.join(" OR ")));
        }
        let mut sql = String::from(concat!("SELECT ", audit_columns!(), " FROM audit"));
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", args.len() + 1));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for arg in args {
            query = query.bind(arg);
        }
        let rows = query
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn applied(&self, env: &Name) -> Result<Vec<AppliedService>, StoreError> {
        self.applied_of(env).await
    }

    async fn record_applied_many(
        &self,
        env: &Name,
        applied: &[AppliedService],
    ) -> Result<(), StoreError> {
        self.put_applied(env, applied).await
    }

    async fn start_deploy(&self, deploy: &NewDeploy) -> Result<DeployStart, StoreError> {
        self.insert_deploy(deploy).await
    }

    async fn heartbeat_deploy(&self, id: i64, now: Millis) -> Result<bool, StoreError> {
        self.beat(id, now).await
    }

    async fn record_steps(&self, id: i64, steps: &[Step]) -> Result<bool, StoreError> {
        self.put_steps(id, steps).await
    }

    async fn record_deploy_process(
        &self,
        id: i64,
        group: ProcessGroup,
    ) -> Result<bool, StoreError> {
        self.add_process(id, group).await
    }

    async fn finish_deploy(
        &self,
        id: i64,
        status: DeployStatus,
        steps: &[Step],
        summary: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.end_deploy(id, status, steps, summary, now).await
    }

    async fn interrupt_deploy(
        &self,
        id: i64,
        heartbeat: Millis,
        summary: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.interrupt(id, heartbeat, summary, now).await
    }

    async fn deploys(&self, env: &Name, limit: u32) -> Result<Vec<Deploy>, StoreError> {
        self.list_deploys(env, limit).await
    }

    async fn running_deploy(&self, env: &Name) -> Result<Option<Deploy>, StoreError> {
        self.running(env).await
    }

    async fn pin(&self, env: &Name) -> Result<Option<Pin>, StoreError> {
        self.pin_of(env).await
    }

    async fn set_pin(&self, pin: &Pin) -> Result<(), StoreError> {
        self.put_pin(pin).await
    }

    async fn clear_pin(&self, env: &Name) -> Result<Option<Pin>, StoreError> {
        self.remove_pin(env).await
    }

    async fn claim_event(
        &self,
        platform: &str,
        event_id: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.insert_once(
            sqlx::query("INSERT INTO chat_events (platform, event_id, at) VALUES ($1, $2, $3)")
                .bind(platform)
                .bind(event_id)
                .bind(now),
        )
        .await
    }

    async fn create_approval(&self, request: &NewApproval) -> Result<i64, StoreError> {
        self.insert_approval(request).await
    }

    async fn approval(&self, id: i64) -> Result<Option<ApprovalRequest>, StoreError> {
        self.approval_by_id(id).await
    }

    async fn pending_approvals(
        &self,
        env: Option<&Name>,
    ) -> Result<Vec<ApprovalRequest>, StoreError> {
        self.pending(env).await
    }

    async fn add_approver(
        &self,
        id: i64,
        approver: &Actor,
        at: Millis,
    ) -> Result<bool, StoreError> {
        self.insert_approver(id, approver, at).await
    }

    async fn close_approval(
        &self,
        id: i64,
        status: ApprovalStatus,
        decided_by: Option<&str>,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.close_request(id, ApprovalStatus::Pending, status, decided_by, reason)
            .await
    }

    async fn reclose_approval(
        &self,
        id: i64,
        from: ApprovalStatus,
        status: ApprovalStatus,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let request = self.approval_by_id(id).await?;
        let decided_by = request.and_then(|r| r.decided_by);
        self.close_request(id, from, status, decided_by.as_deref(), reason)
            .await
    }

    async fn forget_events(&self, before: Millis) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM chat_events WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected())
    }
}

/// Ends a transaction that must leave no trace. A failed rollback is not reported: the
/// connection drops the transaction anyway, and the caller already has the error that matters.
pub(super) async fn rollback(tx: Transaction<'static, Any>) {
    if let Err(e) = tx.rollback().await {
        tracing::warn!(error = %e, "rollback failed");
    }
}

/// Whether `e` is a duplicate key, which in an append means another writer took the number.
/// Both drivers classify their own codes (SQLite's extended SQLITE_CONSTRAINT_PRIMARYKEY /
/// _UNIQUE, PostgreSQL's 23505) and `Any` passes the driver's error through unchanged.
pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

/// A database error as the store reports it.
pub(super) fn unavailable(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(e.to_string())
        }
        e => StoreError::Unavailable(e.to_string()),
    }
}

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// The actor stored in columns `<prefix>_platform`, `<prefix>_id` and `<prefix>_display`.
pub(super) fn actor(row: &AnyRow, prefix: &str) -> Result<Actor, StoreError> {
    Ok(Actor {
        platform: get(row, &format!("{prefix}_platform"))?,
        id: get(row, &format!("{prefix}_id"))?,
        display: get(row, &format!("{prefix}_display"))?,
    })
}

/// Reads column `column`, naming it in the error.
pub(super) fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(column).map_err(|e| corrupt(column, e))
}

pub(super) fn to_u64(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|e| corrupt("revision number", e))
}

pub(super) fn name(row: &AnyRow, column: &str) -> Result<Name, StoreError> {
    Name::parse(&get::<String>(row, column)?).map_err(|e| corrupt(column, e))
}

fn meta_from_row(row: &AnyRow) -> Result<RevisionMeta, StoreError> {
    let changes: Vec<Change> =
        serde_json::from_str(&get::<String>(row, "changes")?).map_err(|e| corrupt("changes", e))?;
    Ok(RevisionMeta {
        env: name(row, "env")?,
        number: to_u64(get(row, "number")?)?,
        parent: get::<Option<i64>>(row, "parent")?.map(to_u64).transpose()?,
        author: actor(row, "author")?,
        at: get(row, "at")?,
        reason: get(row, "reason")?,
        command: get(row, "command")?,
        changes,
    })
}

fn revision_from_row(row: &AnyRow) -> Result<Revision, StoreError> {
    let document: Document = serde_json::from_str(&get::<String>(row, "document")?)
        .map_err(|e| corrupt("document", e))?;
    Ok(Revision {
        meta: meta_from_row(row)?,
        document,
    })
}

fn lock_from_row(row: &AnyRow) -> Result<Lock, StoreError> {
    Ok(Lock {
        env: name(row, "env")?,
        holder: actor(row, "holder")?,
        reason: get(row, "reason")?,
        since: get(row, "since")?,
        expires: get(row, "expires")?,
    })
}

fn audit_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    let outcome: String = get(row, "outcome")?;
    let env: Option<String> = get(row, "env")?;
    Ok(AuditEntry {
        id: get(row, "id")?,
        entry: NewAuditEntry {
            at: get(row, "at")?,
            actor: actor(row, "actor")?,
            platform: get(row, "platform")?,
            channel: get(row, "channel")?,
            env: env
                .map(|e| Name::parse(&e))
                .transpose()
                .map_err(|e| corrupt("env", e))?,
            text: get(row, "text")?,
            outcome: Outcome::parse(&outcome)
                .ok_or_else(|| corrupt("outcome", format!("`{outcome}` is not an outcome")))?,
            detail: get(row, "detail")?,
        },
    })
}
