//! `SqlStore`: the one implementation of `Store`, as portable SQL over sqlx's `Any` driver, shared
//! by the SQLite and PostgreSQL backends. This file holds the pool, write transactions and the
//! row helpers; each concern's queries live in a file of its own (`revisions.rs`, `locks.rs`,
//! `audit.rs`, `deploys.rs`, `pins.rs`, `approvals.rs`, `chat_events.rs`).
//!
//! It must not know which database it talks to: no connection settings, no dialect branches.
//! The only backend-specific input is the statement that opens a write transaction, handed in by
//! the backend module. Queries are built at run time (`sqlx::query`, `$n` placeholders, which
//! both drivers accept); timestamps are `i64` milliseconds and documents and change sets are JSON
//! text, because `Any` maps only basic types.

use super::StoreError;
use crate::domain::{Actor, Name};
use sqlx::AnyPool;
use sqlx::any::{Any, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Row, SqlSafeStr, Transaction};

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
    /// Where chat event claims and audit rows are written, sharing commits under load.
    pub(super) group: super::group_commit::GroupCommit,
}

impl SqlStore {
    /// Wraps a pool whose schema is already migrated.
    pub(super) fn new(pool: AnyPool, begin_write: &'static str) -> SqlStore {
        let group = super::group_commit::GroupCommit::start(pool.clone(), begin_write);
        SqlStore {
            pool,
            begin_write,
            group,
        }
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
