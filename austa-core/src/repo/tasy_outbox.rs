//! The transactional outbox towards the Tasy ERP.
//!
//! A change that must reach Tasy (an authorization, a health data record) writes an outbox row in the
//! same transaction as the change (the kernel's outbox enqueue), so a committed change is never forgotten and a
//! rolled-back one never sent. Rows hold ids only: the worker reads the entity's current state through
//! the library when it delivers, so several pending changes of one entity collapse into one delivery.
//! Nothing is queued while the organization has no active Tasy integration.
//!
//! The `tasy-sync` worker [`claim`](TasyOutbox::claim)s a batch with a lease, delivers, and marks each
//! row [`complete`](TasyOutbox::complete) or [`fail`](TasyOutbox::fail)ed. Delivery is at least once:
//! a worker that crashes holding a lease leaves its rows `IN_FLIGHT` until the lease expires, and the
//! next claim takes them again (Tasy must treat deliveries as upserts). A failure retries with
//! exponential backoff (10 s, 20 s, 40 s, ... at most one hour) and after [`MAX_ATTEMPTS`] the row is
//! `DEAD`, kept for an operator.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use crate::kernel::OutboxOperation;

use crate::access::{Action, Resource};
use crate::db::{Query, Row, RowLock};
use crate::error::{Error, Result};
use crate::kernel::{check, AuditTx, Event};
use crate::model::{AuditAction, EntityType};
use crate::scope::Scope;

/// Delivery attempts before a row is given up (`DEAD`).
pub const MAX_ATTEMPTS: i64 = 10;
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Longest lease a worker may take.
const MAX_LEASE: Duration = Duration::from_secs(3600);

/// Where a row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboxStatus {
    /// Waiting for delivery (or for its next attempt).
    Pending,
    /// Claimed by a worker until its lease ends.
    InFlight,
    /// Delivered.
    Done,
    /// Given up after [`MAX_ATTEMPTS`] attempts.
    Dead,
}

/// One change waiting for (or past) delivery.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OutboxItem {
    /// The row's id.
    pub id: Uuid,
    /// The kind of entity that changed (`AUTHORIZATION` or `HEALTH_DATA`).
    pub entity_type: EntityType,
    /// The entity; read its current state through the library to deliver it.
    pub entity_id: Uuid,
    /// Upsert or delete.
    pub operation: OutboxOperation,
    /// Where the row stands.
    pub status: OutboxStatus,
    /// Delivery attempts so far (a claim counts as one).
    pub attempts: i64,
    /// When the next attempt may start.
    pub available_at: DateTime<Utc>,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// When the change was queued.
    pub created_at: DateTime<Utc>,
}

fn decode(row: &Row) -> Result<OutboxItem> {
    let operation = match row.text("operation")?.as_str() {
        "UPSERT" => OutboxOperation::Upsert,
        "DELETE" => OutboxOperation::Delete,
        _ => return Err(Error::CorruptData("tasy_outbox.operation".into())),
    };
    let status = match row.text("status")?.as_str() {
        "PENDING" => OutboxStatus::Pending,
        "IN_FLIGHT" => OutboxStatus::InFlight,
        "DONE" => OutboxStatus::Done,
        "DEAD" => OutboxStatus::Dead,
        _ => return Err(Error::CorruptData("tasy_outbox.status".into())),
    };
    Ok(OutboxItem {
        id: row.uuid("id")?,
        entity_type: row.enumeration("entity_type")?,
        entity_id: row.uuid("entity_id")?,
        operation,
        status,
        attempts: row.int("attempts")?,
        available_at: row.time("available_at")?,
        last_error: row.opt_text("last_error")?,
        created_at: row.time("created_at")?,
    })
}

/// The outbox of a scope's organization: what the `tasy-sync` worker drains.
#[derive(Debug, Clone, Copy)]
pub struct TasyOutbox<'s> {
    scope: &'s Scope,
}

impl Scope {
    /// The Tasy outbox of this scope's organization.
    pub fn tasy_outbox(&self) -> TasyOutbox<'_> {
        TasyOutbox { scope: self }
    }
}

fn chrono_duration(d: Duration) -> Result<chrono::Duration> {
    chrono::Duration::from_std(d).map_err(|_| Error::validation("lease", "is too long"))
}

/// The wait before attempt `attempts + 1`: 10 s doubled per attempt, at most an hour.
pub fn backoff(attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    Duration::from_secs(10u64.saturating_mul(1u64 << exponent)).min(MAX_BACKOFF)
}

impl TasyOutbox<'_> {
    async fn authorize(&self, action: Action) -> Result<()> {
        let scope = self.scope;
        check(scope, "tasy_outbox", action, None, None, scope.authorize(Resource::TasySyncLog, action).map(|_| ()))
            .await
    }

    /// Claims up to `limit` rows due for delivery (pending and available, or in flight with an expired
    /// lease), oldest first, for `worker`, until `lease` ends. Concurrent workers never claim the same
    /// row (PostgreSQL `SKIP LOCKED`; SQLite serializes writers).
    pub async fn claim(&self, worker: &str, limit: u32, lease: Duration) -> Result<Vec<OutboxItem>> {
        let worker = crate::validate::text("worker", worker, 1, 200)?;
        if !(1..=500).contains(&limit) {
            return Err(Error::validation("limit", "must be between 1 and 500"));
        }
        if lease.is_zero() || lease > MAX_LEASE {
            return Err(Error::validation("lease", "must be between 1 second and 1 hour"));
        }
        self.authorize(Action::Update).await?;
        let scope = self.scope;
        let org = scope.organization_id();
        let now = self.scope.now();
        let until = now + chrono_duration(lease)?;
        let mut tx = AuditTx::begin(scope).await?;
        let skip = tx.lock(RowLock::SkipLocked);
        let due = tx
            .fetch_all(
                Query::new(format!(
                    "SELECT id FROM tasy_outbox WHERE organization_id = $1 \
                     AND ((status = 'PENDING' AND available_at <= $2) OR (status = 'IN_FLIGHT' AND claimed_until < $2)) \
                     ORDER BY created_at, id LIMIT $3{skip}"
                ))
                .bind(org)
                .bind(now)
                .bind(i64::from(limit)),
            )
            .await?;
        let ids = due.iter().map(|r| r.uuid("id")).collect::<Result<Vec<_>>>()?;
        let mut items = Vec::with_capacity(ids.len());
        for id in &ids {
            let row = tx
                .fetch_optional(
                    Query::new(
                        "UPDATE tasy_outbox SET status = 'IN_FLIGHT', claimed_by = $1, claimed_until = $2, \
                         attempts = attempts + 1, updated_at = $3 WHERE organization_id = $4 AND id = $5 RETURNING *",
                    )
                    .bind(worker.clone())
                    .bind(until)
                    .bind(now)
                    .bind(org)
                    .bind(*id),
                )
                .await?
                .ok_or_else(|| Error::not_found("outbox row"))?;
            items.push(decode(&row)?);
        }
        tx.record(Event::on(AuditAction::Sync, "tasy_outbox").records(ids).changed([
            "status",
            "claimed_by",
            "claimed_until",
        ]))
        .await?;
        tx.commit().await?;
        Ok(items)
    }

    /// Marks a claimed row delivered. `conflict` on `status` unless it is in flight (a late completion
    /// after the lease expired and another worker took the row is still accepted: at least once).
    pub async fn complete(&self, id: Uuid) -> Result<OutboxItem> {
        self.authorize(Action::Update).await?;
        let now = self.scope.now();
        self.finish(
            id,
            "status = 'DONE', claimed_by = NULL, claimed_until = NULL, completed_at = $1, updated_at = $1",
            now,
            None,
            &["status", "completed_at"],
        )
        .await
    }

    /// Records a failed delivery: the row waits [`backoff`] before its next attempt, or becomes `DEAD`
    /// after [`MAX_ATTEMPTS`]. `error` is an error *code* (1 to 100 characters of letters, digits and
    /// `_.:-`, e.g. `HTTP_503` or `tasy:E1042`), never the ERP's message: those often echo the rejected
    /// payload, and outbox rows are stored in plain text.
    pub async fn fail(&self, id: Uuid, error: &str) -> Result<OutboxItem> {
        let error = error.trim();
        let code = (1..=100).contains(&error.len())
            && error.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        if !code {
            return Err(Error::validation("error", "must be an error code like HTTP_503, not a message"));
        }
        let error = error.to_string();
        self.authorize(Action::Update).await?;
        let now = self.scope.now();
        self.finish(
            id,
            "status = CASE WHEN attempts >= $3 THEN 'DEAD' ELSE 'PENDING' END, claimed_by = NULL, \
             claimed_until = NULL, last_error = $4, available_at = $5, updated_at = $1",
            now,
            Some(error),
            &["status", "available_at", "last_error"],
        )
        .await
    }

    /// Applies `set` to an in-flight row and records it.
    async fn finish(
        &self,
        id: Uuid,
        set: &str,
        now: DateTime<Utc>,
        error: Option<String>,
        changed: &[&'static str],
    ) -> Result<OutboxItem> {
        let scope = self.scope;
        let org = scope.organization_id();
        let mut tx = AuditTx::begin(scope).await?;
        let lock = tx.lock(RowLock::Update);
        let current = tx
            .fetch_optional(
                Query::new(format!("SELECT * FROM tasy_outbox WHERE organization_id = $1 AND id = $2{lock}"))
                    .bind(org)
                    .bind(id),
            )
            .await?
            .ok_or_else(|| Error::not_found("outbox row"))?;
        let current = decode(&current)?;
        if current.status != OutboxStatus::InFlight {
            return Err(Error::Conflict { field: "status".into() });
        }
        // Placeholders of `set`: $1 now, $3 the attempt limit, $4 the error, $5 the next attempt's time
        // (backoff from the attempts already made).
        let next = now + chrono_duration(backoff(current.attempts))?;
        let row = tx
            .fetch_optional(
                Query::new(format!("UPDATE tasy_outbox SET {set} WHERE organization_id = $6 AND id = $2 RETURNING *"))
                    .bind(now)
                    .bind(id)
                    .bind(MAX_ATTEMPTS)
                    .bind(error)
                    .bind(next)
                    .bind(org),
            )
            .await?
            .ok_or_else(|| Error::not_found("outbox row"))?;
        tx.record(
            Event::on(AuditAction::Sync, "tasy_outbox").entity(id).records([id]).changed(changed.iter().copied()),
        )
        .await?;
        tx.commit().await?;
        decode(&row)
    }

    /// The rows of one status, oldest first (at most `limit`, up to 500), for monitoring.
    pub async fn list(&self, status: OutboxStatus, limit: u32) -> Result<Vec<OutboxItem>> {
        if !(1..=500).contains(&limit) {
            return Err(Error::validation("limit", "must be between 1 and 500"));
        }
        self.authorize(Action::Read).await?;
        let status = match status {
            OutboxStatus::Pending => "PENDING",
            OutboxStatus::InFlight => "IN_FLIGHT",
            OutboxStatus::Done => "DONE",
            OutboxStatus::Dead => "DEAD",
        };
        let scope = self.scope;
        let mut tx = AuditTx::begin(scope).await?;
        let rows = tx
            .fetch_all(
                Query::new(
                    "SELECT * FROM tasy_outbox WHERE organization_id = $1 AND status = $2 ORDER BY created_at, id LIMIT $3",
                )
                .bind(scope.organization_id())
                .bind(status)
                .bind(i64::from(limit)),
            )
            .await?;
        let ids = rows.iter().map(|r| r.uuid("id")).collect::<Result<Vec<_>>>()?;
        tx.record(Event::on(AuditAction::Read, "tasy_outbox").records(ids)).await?;
        tx.commit().await?;
        rows.iter().map(decode).collect()
    }
}
