//! Messages: [`Messages::append`] (the only way to create one), the conversation history with a
//! `(sent_at, id)` cursor, the lookup by WhatsApp message id, and the generic get, update and delete.
//!
//! `append` runs in one transaction: it locks the conversation row (`FOR UPDATE` on PostgreSQL; SQLite
//! write transactions hold the database's write lock), inserts the message with the conversation's
//! patient, and increments the conversation's `message_count` and moves its `last_message_at` forward
//! to the message's `sent_at` if later. A conversation of another organization, a missing one and a
//! soft-deleted one are all `not_found`, and nothing is written. `message_count` counts every message
//! appended: soft-deleting a message hides it but does not un-send it, so the counters keep it.

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use super::{patch, rows, Cursor, Model, Page, PageRequest, Repo, SoftDeletable, Updatable};
use crate::access::{Action, Resource};
use crate::db::{Query, RowLock};
use crate::error::{Error, Result};
use crate::kernel::event::read_event;
use crate::kernel::AuditTx;
use crate::kernel::Sealed;
use crate::model::{
    Message, MessageDirection, MessagePatch, MessageStatus, MessageType, NewMessage, SenderKind, UrgencyLevel,
    UseAppend,
};
use crate::scope::Scope;
use crate::time::truncate;
use crate::validate;
use austa_crypto::{BlindIndexKind, Sensitive};

/// Repository of messages.
pub type Messages<'s> = Repo<'s, Message>;

impl Scope {
    /// Messages of this scope's organization. Create them with [`Messages::append`].
    pub fn messages(&self) -> Messages<'_> {
        Repo::new(self)
    }
}

pub(crate) fn wa_message_id(v: &str) -> Result<String> {
    let id = validate::text("whatsapp_message_id", v, 1, 256)?;
    if id.chars().any(char::is_whitespace) {
        return Err(Error::validation("whatsapp_message_id", "must not contain spaces"));
    }
    Ok(id)
}

/// Message text is kept exactly as sent (not trimmed): 1 to `max` characters, not blank, no control
/// characters other than line breaks and tabs.
fn body(field: &str, v: Option<&Sensitive<String>>, max: usize) -> Result<()> {
    if let Some(s) = v {
        let s = s.expose()?;
        let n = s.chars().count();
        if s.trim().is_empty() || n > max {
            return Err(Error::validation(field, format!("must be 1 to {max} characters and not blank")));
        }
        if s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(Error::validation(field, "must not contain control characters"));
        }
    }
    Ok(())
}

fn media_type(v: Option<&str>) -> Result<Option<String>> {
    v.map(|m| {
        let m = validate::text("media_type", m, 3, 255)?;
        if !m.contains('/') || m.chars().any(char::is_whitespace) {
            return Err(Error::validation("media_type", "must be a MIME type like image/jpeg"));
        }
        Ok(m)
    })
    .transpose()
}

fn ai_confidence(v: Option<f64>) -> Result<Option<f64>> {
    validate::opt_range("ai_confidence", v, 0.0, 1.0)
}

fn ai_intent(v: Option<&Sensitive<String>>) -> Result<Option<Sensitive<String>>> {
    v.map(|s| validate::text("ai_intent", s.expose()?, 1, 200).map(Sensitive::new)).transpose()
}

fn health_keywords(v: Option<&Sensitive<Vec<String>>>) -> Result<Option<Sensitive<Vec<String>>>> {
    v.map(|l| validate::labels("health_keywords", l.expose()?).map(Sensitive::new)).transpose()
}

fn bot_response_time(v: Option<f64>) -> Result<Option<f64>> {
    validate::opt_range("bot_response_time_seconds", v, 0.0, f64::MAX)
}

/// Who may send in which direction, and who needs a provider id.
fn sender(kind: SenderKind, provider: Option<Uuid>, direction: MessageDirection) -> Result<()> {
    match (kind, provider) {
        (SenderKind::Provider, None) => {
            return Err(Error::validation("sender_provider_id", "is required when the sender is a provider"))
        }
        (SenderKind::Patient | SenderKind::Bot | SenderKind::System, Some(_)) => {
            return Err(Error::validation("sender_provider_id", "is only allowed when the sender is a provider"))
        }
        _ => {}
    }
    match (kind, direction) {
        (SenderKind::Patient, MessageDirection::Outbound)
        | (SenderKind::Bot | SenderKind::Provider, MessageDirection::Inbound) => {
            Err(Error::validation("direction", "patients send INBOUND messages, bots and providers OUTBOUND ones"))
        }
        _ => Ok(()),
    }
}

/// Validates `new` into a message. `patient_id` is left nil: [`Messages::append`] sets it from the
/// conversation, under the conversation's lock. (Crate-visible for the WhatsApp ingest, which stores a
/// whole webhook body in one transaction.)
pub(crate) fn build_message(organization: Uuid, id: Uuid, now: DateTime<Utc>, new: NewMessage) -> Result<Message> {
    sender(new.sender_kind, new.sender_provider_id, new.direction)?;
    body("content", new.content.as_ref(), 65_536)?;
    if new.message_type == MessageType::Text && new.content.is_none() {
        return Err(Error::validation("content", "is required for TEXT messages"));
    }
    let media_url = new
        .media_url
        .as_ref()
        .map(|u| validate::text("media_url", u.expose()?, 1, 2048).map(Sensitive::new))
        .transpose()?;
    Ok(Message {
        id,
        organization_id: organization,
        conversation_id: new.conversation_id,
        patient_id: Uuid::nil(),
        whatsapp_message_id: new
            .whatsapp_message_id
            .as_ref()
            .map(|w| wa_message_id(w.expose()?).map(Sensitive::new))
            .transpose()?,
        direction: new.direction,
        message_type: new.message_type,
        sender_kind: new.sender_kind,
        sender_provider_id: new.sender_provider_id,
        content: new.content,
        media_url,
        media_type: media_type(new.media_type.as_deref())?,
        metadata: new.metadata,
        ai_processed: new.ai_processed,
        ai_confidence: ai_confidence(new.ai_confidence)?,
        ai_intent: ai_intent(new.ai_intent.as_ref())?,
        ai_entities: new.ai_entities,
        health_keywords: health_keywords(new.health_keywords.as_ref())?,
        urgency_level: new.urgency_level.unwrap_or(UrgencyLevel::Low),
        requires_response: new.requires_response,
        is_bot: new.sender_kind == SenderKind::Bot,
        bot_response_time_seconds: bot_response_time(new.bot_response_time_seconds)?,
        status: new.status.unwrap_or(MessageStatus::Delivered),
        read_at: new.read_at.map(truncate),
        processed_at: new.processed_at.map(truncate),
        sent_at: new.sent_at.map(truncate).unwrap_or(now),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    })
}

impl Sealed for Message {}

impl Model for Message {
    /// Uninhabited: messages are created with [`Messages::append`] only.
    type New = UseAppend;

    fn build(_organization: Uuid, _id: Uuid, _now: DateTime<Utc>, new: UseAppend) -> Result<Self> {
        match new {}
    }
}

impl Updatable for Message {
    type Patch = MessagePatch;

    fn apply(&mut self, p: MessagePatch, now: DateTime<Utc>) -> Result<()> {
        patch!(self.status, p.status);
        patch!(self.read_at, p.read_at, |v| v.map(truncate));
        patch!(self.processed_at, p.processed_at, |v| v.map(truncate));
        patch!(self.ai_processed, p.ai_processed);
        patch!(self.ai_confidence, p.ai_confidence, |v| ai_confidence(v)?);
        patch!(self.ai_intent, p.ai_intent, |v| ai_intent(v.as_ref())?);
        patch!(self.ai_entities, p.ai_entities);
        patch!(self.health_keywords, p.health_keywords, |v| health_keywords(v.as_ref())?);
        patch!(self.urgency_level, p.urgency_level);
        patch!(self.requires_response, p.requires_response);
        patch!(self.bot_response_time_seconds, p.bot_response_time_seconds, |v| bot_response_time(v)?);
        self.updated_at = now;
        Ok(())
    }
}

impl SoftDeletable for Message {}

fn encode_cursor(m: &Message) -> Cursor {
    Cursor::encode(&format!("{}|{}", m.sent_at.to_rfc3339_opts(SecondsFormat::Micros, true), m.id))
}

fn decode_cursor(c: &Cursor) -> Result<(DateTime<Utc>, Uuid)> {
    let invalid = Cursor::invalid;
    let raw = c.decode()?;
    let (sent_at, id) = raw.split_once('|').ok_or_else(invalid)?;
    let sent_at = DateTime::parse_from_rfc3339(sent_at).map_err(|_| invalid())?.with_timezone(&Utc);
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((sent_at, id))
}

/// The conversation side of appending a message, inside the caller's transaction: `message_count + 1`,
/// `last_message_at` moved forward to `sent_at` if later, `updated_at` now. Returns the number of rows
/// updated (1, or 0 when the conversation is not live). Shared by [`Messages::append`] and the WhatsApp
/// ingest so that the counters always equal the messages.
pub(crate) async fn count_in_conversation(
    tx: &mut crate::db::Tx,
    organization: Uuid,
    conversation_id: Uuid,
    sent_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64> {
    count_message(tx, organization, conversation_id, sent_at, now, false).await
}

/// [`count_in_conversation`]; for a bot reply (`bot`) also moves `last_bot_response_at` forward.
pub(crate) async fn count_message(
    tx: &mut crate::db::Tx,
    organization: Uuid,
    conversation_id: Uuid,
    sent_at: DateTime<Utc>,
    now: DateTime<Utc>,
    bot: bool,
) -> Result<u64> {
    let bot = if bot {
        ", last_bot_response_at = CASE WHEN last_bot_response_at IS NULL OR last_bot_response_at < $1 \
         THEN $1 ELSE last_bot_response_at END"
    } else {
        ""
    };
    tx.execute(
        Query::new(format!(
            "UPDATE conversations SET message_count = message_count + 1, \
             last_message_at = CASE WHEN last_message_at < $1 THEN $1 ELSE last_message_at END, \
             updated_at = $2{bot} \
             WHERE organization_id = $3 AND id = $4 AND deleted_at IS NULL"
        ))
        .bind(sent_at)
        .bind(now)
        .bind(organization)
        .bind(conversation_id),
    )
    .await
}

/// Locks the live conversation `conversation_id` (PostgreSQL row lock; SQLite's write transaction
/// holds the database) and returns its patient, which must be `expected` (the owner whose key was
/// loaded before the transaction); `not_found` otherwise.
pub(crate) async fn lock_conversation(
    tx: &mut crate::db::Tx,
    organization: Uuid,
    conversation_id: Uuid,
    expected: Uuid,
) -> Result<Uuid> {
    let lock = tx.lock(RowLock::Update);
    let row = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT patient_id FROM conversations \
                 WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL{lock}"
            ))
            .bind(organization)
            .bind(conversation_id),
        )
        .await?
        .ok_or_else(|| Error::not_found("conversation"))?;
    let patient = row.uuid("patient_id")?;
    if patient != expected {
        // Conversations never change patient: the row was replaced under us.
        return Err(Error::not_found("conversation"));
    }
    Ok(patient)
}

impl Messages<'_> {
    /// Validates `new` and, in one transaction, inserts the message with the conversation's patient and
    /// updates the conversation: `message_count + 1`, `last_message_at` moved forward to `sent_at` if
    /// later, `updated_at` now. This is the only way to create a message.
    ///
    /// Errors: `validation` before any I/O; `not_found` when the conversation is not a live
    /// conversation of this organization; `conflict` on a repeated `whatsapp_message_id`; `validation`
    /// on a `sender_provider_id` that is not a provider of this organization. Nothing is written on
    /// error.
    pub async fn append(&self, new: NewMessage) -> Result<Message> {
        self.append_with_id(Uuid::now_v7(), new).await
    }

    /// [`Messages::append`] with a caller-chosen id (the development seed's stable ids).
    pub(crate) async fn append_with_id(&self, id: Uuid, new: NewMessage) -> Result<Message> {
        let scope = self.scope();
        crate::kernel::check(
            scope,
            "messages",
            Action::Create,
            None,
            None,
            scope.authorize(Resource::Message, Action::Create),
        )
        .await?;
        let org = scope.organization_id();
        let now = self.scope().now();
        let mut message = build_message(org, id, now, new)?;
        // The conversation's patient owns the key; conversations never change patient.
        let (keys, owner) =
            rows::keys_for_row::<crate::model::Conversation>(scope, message.conversation_id, Action::Read).await?;
        let patient = owner.ok_or_else(|| Error::not_found("conversation"))?;
        keys.require_patient(patient, "conversation_id")?;
        let mut tx = AuditTx::begin(scope).await?;
        message.patient_id = lock_conversation(&mut tx, org, message.conversation_id, patient).await?;
        let event = rows::insert_in(&mut tx, &keys, org, &message).await?;
        let updated = count_in_conversation(&mut tx, org, message.conversation_id, message.sent_at, now).await?;
        if updated != 1 {
            // Unreachable while the row is locked; dropping `tx` rolls the insert back.
            return Err(Error::not_found("conversation"));
        }
        tx.record(event).await?;
        tx.commit().await?;
        Ok(message)
    }

    /// A page of the conversation's messages, newest first by `(sent_at, id)`. A conversation of
    /// another organization has no messages here.
    pub async fn history(&self, conversation_id: Uuid, page: PageRequest) -> Result<Page<Message>> {
        let limit = page.checked_limit()?;
        let after = page.after.as_ref().map(decode_cursor).transpose()?;
        let scope = self.scope();
        let org = scope.organization_id();
        let access = rows::access::<Message>(scope, Action::Read, None).await?;
        let base = format!(
            "SELECT * FROM messages WHERE organization_id = $1 AND conversation_id = $2 AND deleted_at IS NULL{access}"
        );
        let order = "ORDER BY sent_at DESC, id DESC";
        let query = match after {
            Some((sent_at, id)) => {
                Query::new(format!("{base} AND (sent_at < $3 OR (sent_at = $3 AND id < $4)) {order} LIMIT $5"))
                    .bind(org)
                    .bind(conversation_id)
                    .bind(sent_at)
                    .bind(id)
            }
            None => Query::new(format!("{base} {order} LIMIT $3")).bind(org).bind(conversation_id),
        }
        .bind(i64::from(limit) + 1);
        let mut tx = AuditTx::begin_read(scope).await?;
        let mut rows = tx.fetch_all(query).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        tx.record(read_event("messages", &rows, None)?).await?;
        tx.commit().await?;
        let items: Vec<Message> = rows::decode_rows(scope, &rows).await?;
        let next = if more { items.last().map(encode_cursor) } else { None };
        Ok(Page { items, next })
    }

    /// The message with this WhatsApp message id, if any.
    pub async fn find_by_whatsapp_message_id(&self, whatsapp_message_id: &str) -> Result<Option<Message>> {
        let normalized = wa_message_id(whatsapp_message_id)?;
        rows::find_by_blind(
            self.scope(),
            "whatsapp_message_id_bidx",
            BlindIndexKind::WhatsappMessageId,
            &normalized,
            "",
        )
        .await
    }
}
