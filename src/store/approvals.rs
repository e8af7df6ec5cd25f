//! Approvals in `SqlStore`: requests and their distinct approvers. Portable SQL (see
//! `sql.rs`).

use super::rows::{actor, get, name, to_u64, unavailable};
use super::sql::SqlStore;
use super::{ApprovalStore, StoreError};
use crate::domain::{Actor, ApprovalRequest, ApprovalStatus, Millis, Name, NewApproval};
use sqlx::any::AnyRow;

macro_rules! request_columns {
    () => {
        "id, env, revision, plan, plan_digest, force, requester_platform, requester_id, requester_display, \
         created, expires, needed, status, decided_by, reason"
    };
}

#[async_trait::async_trait]
impl ApprovalStore for SqlStore {
    async fn create_approval(&self, request: &NewApproval) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO approval_requests (env, revision, plan, force, requester_platform, requester_id, \
             requester_display, created, expires, needed, status, plan_digest) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11) RETURNING id",
        )
        .bind(request.env.as_str())
        .bind(request.revision as i64)
        .bind(&request.plan)
        .bind(i64::from(request.force))
        .bind(&request.requester.platform)
        .bind(&request.requester.id)
        .bind(&request.requester.display)
        .bind(request.created)
        .bind(request.expires)
        .bind(i64::from(request.needed))
        .bind(&request.digest)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        let id: i64 = get(&row, "id")?;
        tx.commit().await.map_err(unavailable)?;
        Ok(id)
    }

    async fn approval(&self, id: i64) -> Result<Option<ApprovalRequest>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            request_columns!(),
            " FROM approval_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some(self.with_approvers(request_from_row(&row)?).await?)),
        }
    }

    async fn pending_approvals(
        &self,
        env: Option<&Name>,
    ) -> Result<Vec<ApprovalRequest>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            request_columns!(),
            " FROM approval_requests WHERE status = 'pending' AND ($1 = '' OR env = $1) ORDER BY id"
        ))
        .bind(env.map(Name::as_str).unwrap_or_default())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut out = Vec::new();
        for row in &rows {
            out.push(self.with_approvers(request_from_row(row)?).await?);
        }
        Ok(out)
    }

    async fn add_approver(
        &self,
        id: i64,
        approver: &Actor,
        at: Millis,
    ) -> Result<bool, StoreError> {
        self.insert_once(
            sqlx::query("INSERT INTO approvals (request_id, platform, user_id, display, at) VALUES ($1, $2, $3, $4, $5)")
                .bind(id)
                .bind(&approver.platform)
                .bind(&approver.id)
                .bind(&approver.display)
                .bind(at),
        )
        .await
    }

    async fn close_approval(
        &self,
        id: i64,
        status: ApprovalStatus,
        decided_by: Option<&str>,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.move_request(id, ApprovalStatus::Pending, status, decided_by, reason)
            .await
    }

    async fn reclose_approval(
        &self,
        id: i64,
        from: ApprovalStatus,
        status: ApprovalStatus,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let decided_by = self.approval(id).await?.and_then(|r| r.decided_by);
        self.move_request(id, from, status, decided_by.as_deref(), reason)
            .await
    }
}

impl SqlStore {
    /// Moves request `id` from `from` to `status`; `false` when it was not in `from`.
    async fn move_request(
        &self,
        id: i64,
        from: ApprovalStatus,
        status: ApprovalStatus,
        decided_by: Option<&str>,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE approval_requests SET status = $2, decided_by = $3, reason = $4 WHERE id = $1 AND status = $5",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(decided_by)
        .bind(reason)
        .bind(from.as_str())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn with_approvers(
        &self,
        mut request: ApprovalRequest,
    ) -> Result<ApprovalRequest, StoreError> {
        let rows = sqlx::query(
            "SELECT platform, user_id, display FROM approvals WHERE request_id = $1 ORDER BY at",
        )
        .bind(request.id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        request.approvers = rows
            .iter()
            .map(|r| {
                Ok(Actor {
                    platform: get(r, "platform")?,
                    id: get(r, "user_id")?,
                    display: get(r, "display")?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(request)
    }
}

fn request_from_row(row: &AnyRow) -> Result<ApprovalRequest, StoreError> {
    let status: String = get(row, "status")?;
    let needed: i64 = get(row, "needed")?;
    Ok(ApprovalRequest {
        id: get(row, "id")?,
        request: NewApproval {
            env: name(row, "env")?,
            revision: to_u64(get(row, "revision")?)?,
            plan: get(row, "plan")?,
            digest: get(row, "plan_digest")?,
            force: get::<i64>(row, "force")? != 0,
            requester: actor(row, "requester")?,
            created: get(row, "created")?,
            expires: get(row, "expires")?,
            needed: u32::try_from(needed).unwrap_or(u32::MAX),
        },
        status: ApprovalStatus::parse(&status)
            .ok_or_else(|| super::rows::corrupt("status", &status))?,
        approvers: Vec::new(),
        decided_by: get(row, "decided_by")?,
        reason: get(row, "reason")?,
    })
}
