//! Claimed chat events in `SqlStore`: the first process to insert an event's id runs it, so a
//! redelivered event never runs twice, across restarts and replicas. Portable SQL.

use super::sql::{SqlStore, unavailable};
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
        self.insert_once(
            sqlx::query("INSERT INTO chat_events (platform, event_id, at) VALUES ($1, $2, $3)")
                .bind(platform)
                .bind(event_id)
                .bind(now),
        )
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
