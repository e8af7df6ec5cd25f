//! The audit trail in `SqlStore`: every attempted command, appended, and listed by
//! environment and user with one index per filter. Portable SQL (see `sql.rs`).

use super::group_commit::{Write, Written};
use super::rows::{actor, corrupt, get, unavailable};
use super::sql::SqlStore;
use super::{AuditStore, StoreError};
use crate::domain::{AuditEntry, AuditFilter, Name, NewAuditEntry, Outcome};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

/// The columns of `audit`, for listing entries.
macro_rules! audit_columns {
    () => {
        "id, at, actor_platform, actor_id, actor_display, platform, channel, env, text, outcome, detail"
    };
}

#[async_trait::async_trait]
impl AuditStore for SqlStore {
    async fn record_audit(&self, entry: NewAuditEntry) -> Result<i64, StoreError> {
        // Shares a commit with the audit rows and claims of concurrent commands.
        match self.group.write(Write::Audit(Box::new(entry))).await? {
            Written::Audited(id) => Ok(id),
            other => Err(StoreError::Corrupt(format!(
                "an audit row was answered with {other:?}"
            ))),
        }
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
