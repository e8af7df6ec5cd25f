//! Revisions in `SqlStore`: the newest, one by number, history, and the compare-and-set append
//! that makes revision numbers the guard against lost writes. Portable SQL (see `sql.rs`).

use super::rows::{actor, corrupt, get, is_unique_violation, name, rollback, to_u64, unavailable};
use super::sql::SqlStore;
use super::{AppendError, RevisionStore, StoreError};
use crate::domain::{Change, Document, Name, NewRevision, Revision, RevisionMeta};
use sqlx::Transaction;
use sqlx::any::{Any, AnyRow};
use std::collections::BTreeSet;

/// The columns of `revisions` that make a `RevisionMeta`, in the order `meta_from_row` reads
/// them by name. A macro so that `concat!` can build `'static` queries from it.
macro_rules! meta_columns {
    () => {
        "env, number, parent, author_platform, author_id, author_display, at, reason, command, changes"
    };
}

/// What the append transaction found.
enum AppendStep {
    Written,
    /// `parent` was not the head; nothing was written.
    Stale,
}

impl SqlStore {
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
}

#[async_trait::async_trait]
impl RevisionStore for SqlStore {
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
