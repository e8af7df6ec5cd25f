//! Locks in `SqlStore`: one per environment, taken atomically by one conditional upsert,
//! renewed by their holder, replaced once lapsed. Portable SQL (see `sql.rs`).

use super::rows::{actor, get, name, unavailable};
use super::sql::SqlStore;
use super::{LockAttempt, LockStore, StoreError};
use crate::domain::{Lock, Millis, Name};
use sqlx::any::AnyRow;

/// The columns of `locks`, for every query that returns one.
macro_rules! lock_columns {
    () => {
        "env, holder_platform, holder_id, holder_display, reason, since, expires"
    };
}

/// How many times `acquire_lock` goes round when the lock it lost to vanished before it could be
/// read back (released between the two statements). Each round is a fresh transaction.
const LOCK_ATTEMPTS: usize = 5;

impl SqlStore {
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
impl LockStore for SqlStore {
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
