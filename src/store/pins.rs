//! Pins in `SqlStore`: a rollback pins its environment at the restored revision until
//! `unpin`. Portable SQL (see `sql.rs`).

use super::rows::{actor, get, name, to_u64, unavailable};
use super::sql::SqlStore;
use super::{PinStore, StoreError};
use crate::domain::{Name, Pin};
use sqlx::any::AnyRow;

#[async_trait::async_trait]
impl PinStore for SqlStore {
    async fn pin(&self, env: &Name) -> Result<Option<Pin>, StoreError> {
        let row = sqlx::query("SELECT env, revision, by_platform, by_id, by_display, at, reason FROM pins WHERE env = $1")
            .bind(env.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(pin_from_row).transpose()
    }

    async fn set_pin(&self, pin: &Pin) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO pins (env, revision, by_platform, by_id, by_display, at, reason) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (env) DO UPDATE SET revision = excluded.revision, by_platform = excluded.by_platform, \
             by_id = excluded.by_id, by_display = excluded.by_display, at = excluded.at, reason = excluded.reason",
        )
        .bind(pin.env.as_str())
        .bind(pin.revision as i64)
        .bind(&pin.by.platform)
        .bind(&pin.by.id)
        .bind(&pin.by.display)
        .bind(pin.at)
        .bind(&pin.reason)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn clear_pin(&self, env: &Name) -> Result<Option<Pin>, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("DELETE FROM pins WHERE env = $1 RETURNING env, revision, by_platform, by_id, by_display, at, reason")
            .bind(env.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        row.as_ref().map(pin_from_row).transpose()
    }
}

fn pin_from_row(row: &AnyRow) -> Result<Pin, StoreError> {
    Ok(Pin {
        env: name(row, "env")?,
        revision: to_u64(get(row, "revision")?)?,
        by: actor(row, "by")?,
        at: get(row, "at")?,
        reason: get(row, "reason")?,
    })
}
