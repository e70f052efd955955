//! Delivery statuses of outbound messages (sent, delivered, read, failed), as WhatsApp reports them:
//! applied forward only, kept until their message is recorded when they arrive first, and never
//! applied to an inbound message. Used by the webhook ingest and by the outbound recorder.

use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};
use uuid::Uuid;

use crate::db::{Query, QueryBuilder, Row, RowLock, Tx};
use crate::error::{Error, Result};
use crate::kernel::Event;
use crate::model::{AuditAction, MessageDirection, MessageStatus};
use austa_crypto::{BlindIndexKind, KeySet, Sensitive};

/// Serializes, per WhatsApp message id, the two sides of an early status: a status looking for its
/// message and a message looking for statuses kept before it. Without it (PostgreSQL, READ COMMITTED)
/// each could miss the other's uncommitted row and the status would stay kept forever. The key is the
/// message id's blind index under the oldest live key version (never the id itself); SQLite writers
/// are serialized already.
pub(crate) async fn lock_wamid(tx: &mut Tx, keys: &KeySet, org: Uuid, wamid: &str) -> Result<()> {
    let digest = keys.blinds(BlindIndexKind::WhatsappMessageId, wamid).into_iter().next().unwrap_or_default();
    let key: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    tx.advisory_lock("austa:wamid", &format!("{org}:{key}"), false).await
}

/// The message with this wamid (live or soft-deleted), with the columns a status update needs.
pub(crate) async fn find_message(
    tx: &mut Tx,
    keys: &KeySet,
    org: Uuid,
    wamid: &str,
    lock: bool,
) -> Result<Option<Row>> {
    let lock = if lock { tx.lock(RowLock::Update) } else { "" };
    let mut q = QueryBuilder::new(
        "SELECT id, patient_id, direction, status, read_at, metadata FROM messages WHERE organization_id = ",
    );
    q.push_bind(org).push(" AND whatsapp_message_id_bidx IN (");
    q.push_binds(keys.blinds(BlindIndexKind::WhatsappMessageId, wamid)).push(") LIMIT 1").push(lock);
    tx.fetch_optional(q.build()).await
}

/// Whether a row from [`find_message`] is an outbound message: delivery statuses describe what the
/// business sent, so a status naming an inbound message's wamid is never applied to it.
pub(crate) fn is_outbound(row: &Row) -> Result<bool> {
    Ok(row.enumeration::<MessageDirection>("direction")? == MessageDirection::Outbound)
}

fn rank(s: MessageStatus) -> u8 {
    match s {
        MessageStatus::Pending => 0,
        MessageStatus::Sent => 1,
        MessageStatus::Delivered => 2,
        MessageStatus::Read => 3,
        MessageStatus::Failed => 4,
    }
}

/// The status a message moves to on `new`, or `None` when it would not move forward: PENDING < SENT <
/// DELIVERED < READ; FAILED replaces anything but READ (a read message was delivered) and is final.
fn advance(current: MessageStatus, new: MessageStatus) -> Option<MessageStatus> {
    match (current, new) {
        (MessageStatus::Failed, _) | (MessageStatus::Read, MessageStatus::Failed) => None,
        (_, MessageStatus::Failed) => Some(MessageStatus::Failed),
        (c, n) if rank(n) > rank(c) => Some(n),
        _ => None,
    }
}

/// A status as WhatsApp reported it: the new status, when, and the errors of a failure.
#[derive(Clone, Copy)]
pub(crate) struct Reported<'a> {
    /// The reported status.
    pub(crate) status: MessageStatus,
    /// When it happened.
    pub(crate) at: DateTime<Utc>,
    /// A failure's error codes and titles.
    pub(crate) errors: &'a [(Option<i64>, Option<String>)],
}

/// Applies one status to the message `row` (from [`find_message`]) inside `tx`; returns the UPDATE
/// event when the message moved, `None` when the status was stale. `keys` must hold the message's
/// patient key when the status carries errors.
pub(crate) async fn apply_status(
    tx: &mut Tx,
    keys: &KeySet,
    org: Uuid,
    row: &Row,
    reported: Reported<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Event>> {
    let Reported { status: new, at, errors } = reported;
    let id = row.uuid("id")?;
    let patient = row.uuid("patient_id")?;
    let current: MessageStatus = row.enumeration("status")?;
    let Some(next) = advance(current, new) else {
        return Ok(None);
    };
    let mut changed = vec!["status"];
    let read_at = match (next, row.opt_time("read_at")?) {
        (MessageStatus::Read, None) => {
            changed.push("read_at");
            Some(crate::time::truncate(at))
        }
        (_, r) => r,
    };
    let metadata = if next == MessageStatus::Failed && !errors.is_empty() {
        let crypto = keys.row("messages", id, Some(patient))?;
        let mut meta = match crypto.open_opt_json::<Json>(row, "metadata")? {
            Some(m) => m.expose()?.clone(),
            None => json!({}),
        };
        if !meta.is_object() {
            meta = json!({ "previous": meta });
        }
        let list: Vec<Json> = errors.iter().map(|(code, title)| json!({ "code": code, "title": title })).collect();
        if let Some(o) = meta.as_object_mut() {
            match o.get_mut("whatsapp_errors").and_then(Json::as_array_mut) {
                Some(existing) => existing.extend(list),
                None => {
                    o.insert("whatsapp_errors".into(), Json::Array(list));
                }
            }
        }
        changed.push("metadata");
        Some(crypto.json("metadata", &Sensitive::new(meta))?)
    } else {
        None
    };
    let query = match metadata {
        Some(m) => Query::new(
            "UPDATE messages SET status = $1, read_at = $2, metadata = $3, updated_at = $4 \
             WHERE organization_id = $5 AND id = $6",
        )
        .bind(next.as_str())
        .bind(read_at)
        .bind(m)
        .bind(now)
        .bind(org)
        .bind(id),
        None => Query::new(
            "UPDATE messages SET status = $1, read_at = $2, updated_at = $3 WHERE organization_id = $4 AND id = $5",
        )
        .bind(next.as_str())
        .bind(read_at)
        .bind(now)
        .bind(org)
        .bind(id),
    };
    tx.execute(query).await?;
    Ok(Some(
        Event::on(AuditAction::Update, "messages").entity(id).records([id]).patient(Some(patient)).changed(changed),
    ))
}

/// Applies the statuses kept in `whatsapp_pending_statuses` for `whatsapp_message_id` to the message
/// `message_id` just recorded in `tx`, oldest first and never backwards, and deletes them. Returns the
/// UPDATE events for the caller to record in the same transaction (empty when nothing was pending).
/// `keys` must hold the message's patient key (a kept FAILED status writes its errors into the
/// encrypted metadata). Any recorder of messages with a wamid (this ingest, the outbound recorder)
/// should call it in its transaction.
pub(crate) async fn apply_pending_statuses(
    tx: &mut Tx,
    keys: &KeySet,
    organization: Uuid,
    message_id: Uuid,
    whatsapp_message_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Event>> {
    let wamid = crate::repo::messages::wa_message_id(whatsapp_message_id)?;
    lock_wamid(tx, keys, organization, &wamid).await?;
    let mut q = QueryBuilder::new(
        "SELECT id, status, occurred_at, error_code, error_title FROM whatsapp_pending_statuses \
         WHERE organization_id = ",
    );
    q.push_bind(organization).push(" AND whatsapp_message_id_bidx IN (");
    q.push_binds(keys.blinds(BlindIndexKind::WhatsappMessageId, &wamid)).push(") ORDER BY occurred_at, id");
    let pending = tx.fetch_all(q.build()).await?;
    let mut events = Vec::new();
    if pending.is_empty() {
        return Ok(events);
    }
    let lock = tx.lock(RowLock::Update);
    let delete = "DELETE FROM whatsapp_pending_statuses WHERE organization_id = $1 AND id = $2";
    let message = tx
        .fetch_optional(
            Query::new(format!("SELECT direction FROM messages WHERE organization_id = $1 AND id = $2{lock}"))
                .bind(organization)
                .bind(message_id),
        )
        .await?
        .ok_or_else(|| Error::not_found("message"))?;
    if !is_outbound(&message)? {
        // Kept statuses naming an inbound message's wamid describe nothing the business sent: dropped.
        for p in &pending {
            tx.execute(Query::new(delete).bind(organization).bind(p.uuid("id")?)).await?;
        }
        return Ok(events);
    }
    for p in &pending {
        let status: MessageStatus = p.enumeration("status")?;
        let errors = match (p.opt_int("error_code")?, p.opt_text("error_title")?) {
            (None, None) => vec![],
            (code, title) => vec![(code, title)],
        };
        let row = tx
            .fetch_optional(
                Query::new(format!(
                    "SELECT id, patient_id, status, read_at, metadata FROM messages \
                     WHERE organization_id = $1 AND id = $2{lock}"
                ))
                .bind(organization)
                .bind(message_id),
            )
            .await?
            .ok_or_else(|| Error::not_found("message"))?;
        if let Some(event) = apply_status(
            tx,
            keys,
            organization,
            &row,
            Reported { status, at: p.time("occurred_at")?, errors: &errors },
            now,
        )
        .await?
        {
            events.push(event);
        }
        tx.execute(Query::new(delete).bind(organization).bind(p.uuid("id")?)).await?;
    }
    Ok(events)
}

/// Keeps a status of a message not stored yet (once per wamid and status).
pub(crate) async fn keep_pending(
    tx: &mut Tx,
    keys: &KeySet,
    org: Uuid,
    wamid: &str,
    reported: Reported<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    let id = Uuid::now_v7();
    let bidx = keys.row("whatsapp_pending_statuses", id, None)?.blind(BlindIndexKind::WhatsappMessageId, wamid)?;
    let (code, title) = reported.errors.first().cloned().unwrap_or((None, None));
    tx.execute(
        Query::new(
            "INSERT INTO whatsapp_pending_statuses \
             (organization_id, id, whatsapp_message_id_bidx, status, occurred_at, error_code, error_title, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(org)
        .bind(id)
        .bind(bidx)
        .bind(reported.status.as_str())
        .bind(crate::time::truncate(reported.at))
        .bind(code)
        .bind(title)
        .bind(now),
    )
    .await?;
    Ok(())
}
