//! Reading rows and mapping database errors, shared by every part of the SQL store: the
//! column readers (`get`, `name`, `actor`, `to_u64`), what an error means (`unavailable`,
//! `corrupt`, `is_unique_violation`) and rolling back a transaction that failed.

use super::StoreError;
use crate::domain::{Actor, Name};
use sqlx::any::{Any, AnyRow};
use sqlx::{Row, Transaction};

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
