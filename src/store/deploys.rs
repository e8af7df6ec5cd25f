//! Deploys in `SqlStore`: applied state per service and deploy records with the
//! one-running-deploy-per-environment lease, whose writes hold only while the deploy still
//! owns it. Portable SQL (see `sql.rs`).

use super::rows::{actor, corrupt, get, is_unique_violation, name, to_u64, unavailable};
use super::sql::SqlStore;
use super::{DeployStart, DeployStore, StoreError};
use crate::domain::{
    AppliedService, Deploy, DeployKind, DeployStatus, Millis, Name, NewDeploy, ProcessGroup, Step,
};
use sqlx::any::AnyRow;

/// The columns of `deploys`, in every query that returns one.
macro_rules! deploy_columns {
    () => {
        "id, env, revision, kind, actor_platform, actor_id, actor_display, status, started, \
         finished, owner, heartbeat, planned, steps, summary, processes"
    };
}

#[async_trait::async_trait]
impl DeployStore for SqlStore {
    async fn applied(&self, env: &Name) -> Result<Vec<AppliedService>, StoreError> {
        let rows = sqlx::query(
            "SELECT service, spec, revision, deploy_id, at FROM applied WHERE env = $1 ORDER BY service",
        )
        .bind(env.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                Ok(AppliedService {
                    service: name(row, "service")?,
                    spec: serde_json::from_str(&get::<String>(row, "spec")?)
                        .map_err(|e| corrupt("spec", e))?,
                    revision: to_u64(get(row, "revision")?)?,
                    deploy_id: get(row, "deploy_id")?,
                    at: get(row, "at")?,
                })
            })
            .collect()
    }

    /// Records what several services now run, in one transaction (one commit for a whole
    /// batch of services that became healthy together).
    async fn record_applied_many(
        &self,
        env: &Name,
        applied: &[AppliedService],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let mut deploys: Vec<i64> = applied.iter().map(|a| a.deploy_id).collect();
        deploys.dedup();
        for deploy in deploys {
            // Touching the row takes its lock (PostgreSQL) inside this transaction, so a reaper
            // marking the deploy interrupted waits for this commit or comes first and wins.
            let owned = sqlx::query(
                "UPDATE deploys SET heartbeat = heartbeat WHERE id = $1 AND status = 'running'",
            )
            .bind(deploy)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            if owned.rows_affected() != 1 {
                super::rows::rollback(tx).await;
                return Err(StoreError::LeaseLost(deploy));
            }
        }
        for one in applied {
            let spec = serde_json::to_string(&one.spec).map_err(|e| corrupt("spec", e))?;
            sqlx::query(
                "INSERT INTO applied (env, service, spec, revision, deploy_id, at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (env, service) DO UPDATE SET spec = excluded.spec, revision = excluded.revision, \
                 deploy_id = excluded.deploy_id, at = excluded.at",
            )
            .bind(env.as_str())
            .bind(one.service.as_str())
            .bind(spec)
            .bind(one.revision as i64)
            .bind(one.deploy_id)
            .bind(one.at)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn start_deploy(&self, deploy: &NewDeploy) -> Result<DeployStart, StoreError> {
        let planned: Vec<&str> = deploy.planned.iter().map(Name::as_str).collect();
        let planned = serde_json::to_string(&planned).map_err(|e| corrupt("planned", e))?;
        // Look first: a refused attempt must not consume a deploy number (PostgreSQL's
        // sequence moves on even when the INSERT then fails on the unique index).
        if let Some(running) = self.running_deploy(&deploy.env).await? {
            return Ok(DeployStart::Busy(Box::new(running)));
        }
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO deploys (env, revision, kind, actor_platform, actor_id, actor_display, status, \
             started, finished, owner, heartbeat, planned, steps, summary) \
             VALUES ($1, $2, $3, $4, $5, $6, 'running', $7, NULL, $8, $7, $9, '[]', '') RETURNING id",
        )
        .bind(deploy.env.as_str())
        .bind(deploy.revision as i64)
        .bind(deploy.kind.as_str())
        .bind(&deploy.actor.platform)
        .bind(&deploy.actor.id)
        .bind(&deploy.actor.display)
        .bind(deploy.started)
        .bind(&deploy.owner)
        .bind(planned)
        .fetch_one(&mut *tx)
        .await;
        match inserted {
            Ok(row) => {
                let id: i64 = get(&row, "id")?;
                tx.commit().await.map_err(unavailable)?;
                Ok(DeployStart::Started(id))
            }
            Err(e) if is_unique_violation(&e) => {
                super::rows::rollback(tx).await;
                match self.running_deploy(&deploy.env).await? {
                    Some(running) => Ok(DeployStart::Busy(Box::new(running))),
                    // It finished between the two statements: the caller may simply try again.
                    None => Ok(DeployStart::Retry),
                }
            }
            Err(e) => {
                super::rows::rollback(tx).await;
                Err(unavailable(e))
            }
        }
    }

    async fn heartbeat_deploy(&self, id: i64, now: Millis) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE deploys SET heartbeat = $2 WHERE id = $1 AND status = 'running'")
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_steps(&self, id: i64, steps: &[Step]) -> Result<bool, StoreError> {
        let steps = serde_json::to_string(steps).map_err(|e| corrupt("steps", e))?;
        let done =
            sqlx::query("UPDATE deploys SET steps = $2 WHERE id = $1 AND status = 'running'")
                .bind(id)
                .bind(steps)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    /// Appends `group` to the running deploy's process groups, in one transaction so that
    /// concurrent steps of one deploy never lose each other's entries.
    async fn record_deploy_process(
        &self,
        id: i64,
        group: ProcessGroup,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        // Touch the row first: on PostgreSQL that locks it, so concurrent steps of one deploy
        // append one after another instead of overwriting each other's read.
        let owned = sqlx::query(
            "UPDATE deploys SET processes = processes WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if owned.rows_affected() != 1 {
            super::rows::rollback(tx).await;
            return Ok(false);
        }
        let row = sqlx::query("SELECT processes FROM deploys WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
        let mut groups: Vec<ProcessGroup> =
            serde_json::from_str(&get::<String>(&row, "processes")?)
                .map_err(|e| corrupt("processes", e))?;
        groups.push(group);
        let groups = serde_json::to_string(&groups).map_err(|e| corrupt("processes", e))?;
        sqlx::query("UPDATE deploys SET processes = $2 WHERE id = $1")
            .bind(id)
            .bind(groups)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn finish_deploy(
        &self,
        id: i64,
        status: DeployStatus,
        steps: &[Step],
        summary: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let steps = serde_json::to_string(steps).map_err(|e| corrupt("steps", e))?;
        let done = sqlx::query(
            "UPDATE deploys SET status = $2, steps = $3, summary = $4, finished = $5 \
             WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(steps)
        .bind(summary)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn interrupt_deploy(
        &self,
        id: i64,
        heartbeat: Millis,
        summary: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE deploys SET status = 'interrupted', summary = $3, finished = $4 \
             WHERE id = $1 AND status = 'running' AND heartbeat = $2",
        )
        .bind(id)
        .bind(heartbeat)
        .bind(summary)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn deploys(&self, env: &Name, limit: u32) -> Result<Vec<Deploy>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            deploy_columns!(),
            " FROM deploys WHERE env = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(env.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(deploy_from_row).collect()
    }

    async fn running_deploy(&self, env: &Name) -> Result<Option<Deploy>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            deploy_columns!(),
            " FROM deploys WHERE env = $1 AND status = 'running'"
        ))
        .bind(env.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(deploy_from_row).transpose()
    }
}

fn deploy_from_row(row: &AnyRow) -> Result<Deploy, StoreError> {
    let planned: Vec<String> =
        serde_json::from_str(&get::<String>(row, "planned")?).map_err(|e| corrupt("planned", e))?;
    let planned = planned
        .iter()
        .map(|p| Name::parse(p).map_err(|e| corrupt("planned", e)))
        .collect::<Result<_, _>>()?;
    let status: String = get(row, "status")?;
    let kind: String = get(row, "kind")?;
    Ok(Deploy {
        id: get(row, "id")?,
        env: name(row, "env")?,
        revision: to_u64(get(row, "revision")?)?,
        kind: DeployKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
        actor: actor(row, "actor")?,
        status: DeployStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        started: get(row, "started")?,
        finished: get(row, "finished")?,
        owner: get(row, "owner")?,
        heartbeat: get(row, "heartbeat")?,
        planned,
        steps: serde_json::from_str(&get::<String>(row, "steps")?)
            .map_err(|e| corrupt("steps", e))?,
        summary: get(row, "summary")?,
        processes: serde_json::from_str(&get::<String>(row, "processes")?)
            .map_err(|e| corrupt("processes", e))?,
    })
}
