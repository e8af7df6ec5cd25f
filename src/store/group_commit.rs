//! Group commit for the small, independent writes every chat event makes: claiming the event
//! and recording the command's audit row. Without it a burst of commands queues behind one
//! disk sync per row; with it, the rows of every caller waiting at that moment share one
//! transaction, and each caller still returns only once its own row is committed: an event is
//! claimed durably before its command can change anything, and an audit row is durable
//! before the reply that follows it is sent.
//!
//! One task per store owns the writes; it takes the first waiting row, then every row queued
//! meanwhile (up to `MAX_BATCH`), writes them in one transaction and answers each caller. A
//! batch that fails as a whole is retried row by row, so one bad row fails only its caller.

use super::StoreError;
use super::rows::{get, unavailable};
use crate::domain::{Millis, Name, NewAuditEntry};
use sqlx::any::Any;
use sqlx::{AnyPool, Transaction};
use tokio::sync::{mpsc, oneshot};

/// Most rows in one transaction: enough to absorb a burst, small enough to keep a commit short.
const MAX_BATCH: usize = 256;

/// A row to write.
pub(super) enum Write {
    /// Claims chat event `event_id` of `platform`.
    Claim {
        platform: String,
        event_id: String,
        at: Millis,
    },
    /// Records one attempted command.
    Audit(Box<NewAuditEntry>),
}

/// What a written row answers.
#[derive(Debug)]
pub(super) enum Written {
    /// `true` when this claim won, `false` when the event was claimed before.
    Claimed(bool),
    /// The audit row's id.
    Audited(i64),
}

type Reply = oneshot::Sender<Result<Written, StoreError>>;

/// The handle callers write through; the task ends when the store is dropped.
pub(super) struct GroupCommit {
    queue: mpsc::UnboundedSender<(Write, Reply)>,
}

impl GroupCommit {
    /// Starts the writer task for `pool`, opening transactions with `begin_write`.
    pub(super) fn start(pool: AnyPool, begin_write: &'static str) -> GroupCommit {
        let (queue, rows) = mpsc::unbounded_channel();
        tokio::spawn(writer(pool, begin_write, rows));
        GroupCommit { queue }
    }

    /// Writes `row` with whatever else is waiting, and returns once it is committed.
    pub(super) async fn write(&self, row: Write) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((row, reply))
            .map_err(|_| StoreError::Unavailable("the store's writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the store's writer has stopped".into()))?
    }
}

async fn writer(
    pool: AnyPool,
    begin_write: &'static str,
    mut rows: mpsc::UnboundedReceiver<(Write, Reply)>,
) {
    while let Some(first) = rows.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rows.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let all: Vec<&Write> = batch.iter().map(|(row, _)| row).collect();
        match write_all(&pool, begin_write, &all).await {
            Ok(written) => {
                for ((_, reply), result) in batch.into_iter().zip(written) {
                    let _ = reply.send(Ok(result));
                }
            }
            // Each alone, so that one bad row fails only its own caller.
            Err(_) if batch.len() > 1 => {
                for (row, reply) in batch {
                    let result = write_all(&pool, begin_write, &[&row])
                        .await
                        .map(|mut w| w.remove(0));
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                for (_, reply) in batch {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Writes every row of `batch` in one transaction.
async fn write_all(
    pool: &AnyPool,
    begin_write: &'static str,
    batch: &[&Write],
) -> Result<Vec<Written>, StoreError> {
    let mut tx = pool.begin_with(begin_write).await.map_err(unavailable)?;
    let mut written = Vec::with_capacity(batch.len());
    for row in batch {
        match write_one(&mut tx, row).await {
            Ok(w) => written.push(w),
            Err(e) => {
                super::rows::rollback(tx).await;
                return Err(e);
            }
        }
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(written)
}

async fn write_one(tx: &mut Transaction<'static, Any>, row: &Write) -> Result<Written, StoreError> {
    match row {
        Write::Claim {
            platform,
            event_id,
            at,
        } => {
            // No error on a duplicate (which would abort a PostgreSQL transaction): the row
            // count says whether this claim won.
            let done = sqlx::query(
                "INSERT INTO chat_events (platform, event_id, at) VALUES ($1, $2, $3) \
                 ON CONFLICT (platform, event_id) DO NOTHING",
            )
            .bind(platform)
            .bind(event_id)
            .bind(*at)
            .execute(&mut **tx)
            .await
            .map_err(unavailable)?;
            Ok(Written::Claimed(done.rows_affected() == 1))
        }
        Write::Audit(entry) => {
            let row = sqlx::query(
                "INSERT INTO audit (at, actor_platform, actor_id, actor_display, platform, channel, \
                 env, text, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 RETURNING id",
            )
            .bind(entry.at)
            .bind(&entry.actor.platform)
            .bind(&entry.actor.id)
            .bind(&entry.actor.display)
            .bind(&entry.platform)
            .bind(entry.channel.as_deref())
            .bind(entry.env.as_ref().map(Name::as_str))
            .bind(&entry.text)
            .bind(entry.outcome.as_str())
            .bind(&entry.detail)
            .fetch_one(&mut **tx)
            .await
            .map_err(unavailable)?;
            Ok(Written::Audited(get::<i64>(&row, "id")?))
        }
    }
}
