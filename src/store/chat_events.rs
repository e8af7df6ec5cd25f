//! Claimed chat events in `SqlStore`: the first process to insert an event's id runs it, so a
//! redelivered event never runs twice, across restarts and replicas. Claims are group-committed
//! (`group_commit.rs`). Portable SQL.

use super::group_commit::{Write, Written};
use super::rows::unavailable;
use super::sql::SqlStore;
use super::{ChatEventStore, StoreError};
use crate::domain::Millis;

#[async_trait::async_trait]
impl ChatEventStore for SqlStore {
    async fn claim_event(
        &self,
        platform: &str,
        event_id: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        // Shares a commit with the claims and audit rows of concurrent commands.
        let claim = Write::Claim {
            platform: platform.to_string(),
            event_id: event_id.to_string(),
            at: now,
        };
        match self.group.write(claim).await? {
            Written::Claimed(won) => Ok(won),
            other => Err(StoreError::Corrupt(format!(
                "a claim was answered with {other:?}"
            ))),
        }
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
