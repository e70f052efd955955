//! The enqueue side of the transactional outbox towards the Tasy ERP: a change that must reach Tasy
//! writes its outbox row in the same transaction as the change (see the repository side in
//! `repo::tasy_outbox`).

use uuid::Uuid;

use super::AuditTx;
use crate::db::{Query, QueryBuilder};
use crate::error::Result;
use crate::model::EntityType;

/// What the change was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboxOperation {
    /// Created or changed: Tasy should hold the current state.
    Upsert,
    /// Deleted (soft): Tasy should drop or deactivate it.
    Delete,
}

impl OutboxOperation {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxOperation::Upsert => "UPSERT",
            OutboxOperation::Delete => "DELETE",
        }
    }
}

/// The outbox entity of a table, if changes to it must reach Tasy.
pub(crate) fn entity_of(table: &str) -> Option<EntityType> {
    match table {
        "authorizations" => Some(EntityType::Authorization),
        "health_data" => Some(EntityType::HealthData),
        _ => None,
    }
}

/// Queues a change of `entity_id` inside the transaction that makes it, when the organization has an
/// active Tasy integration and the entity has no delivery already pending (which will read the latest
/// state anyway; a row already retried does not absorb new changes, since it may die). Returns whether
/// a row was written.
pub(crate) async fn enqueue_in(
    tx: &mut AuditTx<'_>,
    organization: Uuid,
    entity: EntityType,
    entity_id: Uuid,
    operation: OutboxOperation,
) -> Result<bool> {
    let now = tx.now();
    let written = tx
        .execute(
            Query::new(
                "INSERT INTO tasy_outbox (organization_id, id, entity_type, entity_id, operation, status, attempts, \
                 available_at, created_at, updated_at) \
                 SELECT $1, $2, $3, $4, $5, 'PENDING', 0, $6, $6, $6 \
                 WHERE EXISTS (SELECT 1 FROM tasy_integrations WHERE organization_id = $1 AND is_active \
                               AND deleted_at IS NULL) \
                 AND NOT EXISTS (SELECT 1 FROM tasy_outbox WHERE organization_id = $1 AND entity_type = $3 \
                                 AND entity_id = $4 AND operation = $5 AND status = 'PENDING' AND attempts = 0)",
            )
            .bind(organization)
            .bind(Uuid::now_v7())
            .bind(entity.as_str())
            .bind(entity_id)
            .bind(operation.as_str())
            .bind(now),
        )
        .await?;
    Ok(written > 0)
}

/// Queues the creation of freshly inserted entities (`ids`, which no pending row can name yet) inside
/// the transaction that inserts them: one check for an active integration, then multi-row INSERTs, so
/// a bulk import costs a few statements rather than one per row.
pub(crate) async fn enqueue_created_in(
    tx: &mut AuditTx<'_>,
    organization: Uuid,
    entity: EntityType,
    ids: &[Uuid],
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let active = tx
        .fetch_optional(
            Query::new(
                "SELECT 1 AS one FROM tasy_integrations WHERE organization_id = $1 AND is_active \
                 AND deleted_at IS NULL LIMIT 1",
            )
            .bind(organization),
        )
        .await?;
    if active.is_none() {
        return Ok(());
    }
    let now = tx.now();
    // Six parameters per row; 500 rows stay far below both backends' parameter limits.
    for chunk in ids.chunks(500) {
        let mut q = QueryBuilder::new(
            "INSERT INTO tasy_outbox (organization_id, id, entity_type, entity_id, operation, status, attempts, \
             available_at, created_at, updated_at) VALUES ",
        );
        let mut rows = q.separated(", ");
        for id in chunk {
            rows.push("(").push_bind_unseparated(organization).push_unseparated(", ");
            rows.push_bind_unseparated(Uuid::now_v7()).push_unseparated(", ").push_bind_unseparated(entity.as_str());
            rows.push_unseparated(", ").push_bind_unseparated(*id).push_unseparated(", 'UPSERT', 'PENDING', 0, ");
            rows.push_bind_unseparated(now).push_unseparated(", ").push_bind_unseparated(now);
            rows.push_unseparated(", ").push_bind_unseparated(now).push_unseparated(")");
        }
        tx.execute(q.build()).await?;
    }
    Ok(())
}
