//! `SqlStore`: the one implementation of `Store`, as portable SQL over sqlx's `Any` driver, shared
//! by the SQLite and PostgreSQL backends. This file holds the pool and write transactions (the
//! row helpers are in `rows.rs`); each concern's queries live in a file of its own (`revisions.rs`, `locks.rs`,
//! `audit.rs`, `deploys.rs`, `pins.rs`, `approvals.rs`, `chat_events.rs`).
//!
//! It must not know which database it talks to: no connection settings, no dialect branches.
//! The only backend-specific input is the statement that opens a write transaction, handed in by
//! the backend module. Queries are built at run time (`sqlx::query`, `$n` placeholders, which
//! both drivers accept); timestamps are `i64` milliseconds and documents and change sets are JSON
//! text, because `Any` maps only basic types.

use super::StoreError;
use super::rows::{is_unique_violation, rollback, unavailable};
use sqlx::AnyPool;
use sqlx::any::Any;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{SqlSafeStr, Transaction};

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
