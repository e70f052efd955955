//! Outbound messages and AI annotations (issue 6, part 2).
//!
//! * [`Messages::record_outbound`]: a message the bot or a provider sends to the patient. Like
//!   [`Messages::append`] it locks the conversation, inserts the message and moves the conversation's
//!   counters in one transaction with one `CREATE` event; a bot message also moves the conversation's
//!   `last_bot_response_at`. Its response time (`bot_response_time_seconds`, kept for provider replies
//!   too) is the caller's figure when given, otherwise computed under the lock: the time since the
//!   latest inbound message of the conversation sent at or before it, when no outbound message was sent
//!   in between (a follow-up answers nothing and gets none), and none when the patient never wrote.
//! * [`Messages::claim_for_ai`]: the AI worker's queue. Inbound, live, unprocessed messages, oldest
//!   first by `(created_at, id)` (arrival order), claimed for a worker until a lease ends (columns
//!   `ai_claimed_by`, `ai_claimed_until` of migration 0010). Concurrent workers never claim the same
//!   message (PostgreSQL `FOR UPDATE SKIP LOCKED`; SQLite write transactions are serialized); a lease
//!   that expired (a crashed worker) can be claimed again, so processing is at least once. One `READ`
//!   event lists the claimed ids. [`Messages::pending_for_ai`] lists the same queue without claiming.
//! * [`Messages::record_ai_result`]: the AI result of one message (intent, entities, confidence,
//!   health keywords, urgency), encrypted under the patient's key where classified; sets
//!   `ai_processed` and `processed_at` and clears the claim in the same transaction, with one `UPDATE`
//!   event naming the fields that changed.
//! * [`Conversations::record_ai_result`]: health topics, medications, symptoms, AI context and summary
//!   of a conversation, all encrypted; one `UPDATE` event.
//!
//! Access follows the matrix: outbound messages need `create` on messages (providers, the
//! `whatsapp-webhook`, the platform), and a provider sends as themself only; AI results and claims need
//! `update` on messages or conversations (the `ai-annotator`, providers, the platform). Refusals are
//! recorded as `ACCESS_DENIED`; a row out of reach is `not_found`, recorded as such.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::conversations::Conversations;
use super::messages::{build_message, Messages};
use super::{table, Updatable};
use crate::access::{Action, Resource};
use crate::audit::event::read_event;
use crate::audit::{check, AuditTx};
use crate::crypto::Sensitive;
use crate::db::{Query, Row, RowLock, Tx};
use crate::error::{Error, Result};
use crate::model::{
    Conversation, ConversationPatch, Message, MessageDirection, MessagePatch, MessageStatus, MessageType, NewMessage,
    SenderKind, UrgencyLevel,
};
use crate::scope::Role;
use crate::time::truncate;

/// Most messages one claim may take.
pub const MAX_AI_CLAIM: u32 = 500;
/// Longest lease a worker may take.
pub const MAX_AI_LEASE: Duration = Duration::from_secs(3600);

/// Who sends an outbound message. As input data: `"BOT"` or `{"PROVIDER": "<provider id>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundSender {
    /// The organization's bot (`sender_kind` BOT).
    Bot,
    /// A provider of the scope's organization (`sender_kind` PROVIDER); an active, live provider. A
    /// provider actor may only name themself.
    Provider(Uuid),
}

/// Input of [`Messages::record_outbound`]: a message to the patient.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOutboundMessage {
    /// The conversation (a live conversation of the scope's organization).
    pub conversation_id: Uuid,
    /// Bot or provider.
    pub sender: OutboundSender,
    /// WhatsApp message type; TEXT needs `content`.
    pub message_type: MessageType,
    /// Text, 1 to 65,536 characters, not blank.
    pub content: Option<Sensitive<String>>,
    /// Media URL, 1 to 2,048 characters.
    pub media_url: Option<Sensitive<String>>,
    /// MIME type like `image/jpeg`.
    pub media_type: Option<String>,
    /// Additional WhatsApp metadata.
    pub metadata: Option<Sensitive<serde_json::Value>>,
    /// The id WhatsApp gave the message, when it has accepted it already.
    pub whatsapp_message_id: Option<Sensitive<String>>,
    /// SENT or PENDING only; default SENT with a WhatsApp message id, PENDING without one.
    pub status: Option<MessageStatus>,
    /// Response time in seconds (not negative); computed when absent (see the module docs).
    pub response_time_seconds: Option<f64>,
    /// Whether someone must answer (e.g. a question the bot asked); default false.
    #[serde(default)]
    pub requires_response: bool,
    /// When it was sent; default now.
    pub sent_at: Option<DateTime<Utc>>,
}

impl NewOutboundMessage {
    /// A TEXT message from `sender` with defaults elsewhere.
    pub fn text(conversation_id: Uuid, sender: OutboundSender, content: impl Into<Sensitive<String>>) -> Self {
        Self {
            conversation_id,
            sender,
            message_type: MessageType::Text,
            content: Some(content.into()),
            media_url: None,
            media_type: None,
            metadata: None,
            whatsapp_message_id: None,
            status: None,
            response_time_seconds: None,
            requires_response: false,
            sent_at: None,
        }
    }
}

/// Input of [`Messages::record_ai_result`]: the whole AI result of one message. It replaces the
/// previous result: `None` in `intent`, `entities`, `confidence` or `health_keywords` clears that field;
/// `urgency` and `requires_response` left `None` keep their value.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MessageAnalysis {
    /// Detected intent, 1 to 200 characters (encrypted).
    pub intent: Option<Sensitive<String>>,
    /// Extracted entities (encrypted JSON).
    pub entities: Option<Sensitive<serde_json::Value>>,
    /// Confidence, 0 to 1.
    pub confidence: Option<f64>,
    /// Detected health terms (encrypted labels).
    pub health_keywords: Option<Sensitive<Vec<String>>>,
    /// Clinical urgency.
    pub urgency: Option<UrgencyLevel>,
    /// Whether someone must answer.
    pub requires_response: Option<bool>,
    /// When the AI processed it; default now.
    pub processed_at: Option<DateTime<Utc>>,
}

/// Input of [`Conversations::record_ai_result`]: each field left `None` keeps its value, `Some`
/// replaces it (send the full list, not the additions).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConversationAnalysis {
    /// Health conditions discussed (encrypted labels).
    pub health_topics: Option<Sensitive<Vec<String>>>,
    /// Medications mentioned (encrypted labels).
    pub medications_mentioned: Option<Sensitive<Vec<String>>>,
    /// Symptoms reported (encrypted labels).
    pub symptoms_reported: Option<Sensitive<Vec<String>>>,
    /// AI conversation context (encrypted JSON).
    pub ai_context: Option<Sensitive<serde_json::Value>>,
    /// AI summary, 1 to 10,000 characters (encrypted).
    pub summary: Option<Sensitive<String>>,
}

fn outbound_status(v: Option<MessageStatus>, has_wamid: bool) -> Result<MessageStatus> {
    match v {
        None if has_wamid => Ok(MessageStatus::Sent),
        None => Ok(MessageStatus::Pending),
        Some(s @ (MessageStatus::Sent | MessageStatus::Pending)) => Ok(s),
        Some(_) => Err(Error::validation("status", "an outbound message starts SENT or PENDING")),
    }
}

fn claim_args(worker: &str, limit: u32, lease: Duration) -> Result<(String, chrono::Duration)> {
    let worker = crate::validate::text("worker", worker, 1, 200)?;
    if !(1..=MAX_AI_CLAIM).contains(&limit) {
        return Err(Error::validation("limit", format!("must be between 1 and {MAX_AI_CLAIM}")));
    }
    if lease < Duration::from_secs(1) || lease > MAX_AI_LEASE {
        return Err(Error::validation("lease", "must be between 1 second and 1 hour"));
    }
    let lease = chrono::Duration::from_std(lease).map_err(|_| Error::validation("lease", "is too long"))?;
    Ok((worker, lease))
}

/// `$from, $from+1, ...` for `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The queue: live inbound messages not processed yet (placeholders `$1` organization, `$2` false).
const QUEUE: &str = "organization_id = $1 AND direction = 'INBOUND' AND ai_processed = $2 AND deleted_at IS NULL";

/// The response time of an outbound message sent at `sent_at` in `conversation` (see the module docs).
async fn response_time(tx: &mut Tx, org: Uuid, conversation: Uuid, sent_at: DateTime<Utc>) -> Result<Option<f64>> {
    // Soft-deleted messages count: deleting a message hides it but does not un-send it.
    let inbound = tx
        .fetch_optional(
            Query::new(
                "SELECT sent_at FROM messages WHERE organization_id = $1 AND conversation_id = $2 \
                 AND direction = 'INBOUND' AND sent_at <= $3 ORDER BY sent_at DESC, id DESC LIMIT 1",
            )
            .bind(org)
            .bind(conversation)
            .bind(sent_at),
        )
        .await?;
    let Some(inbound) = inbound else { return Ok(None) };
    let asked = inbound.time("sent_at")?;
    let answered = tx
        .fetch_optional(
            Query::new(
                "SELECT id FROM messages WHERE organization_id = $1 AND conversation_id = $2 \
                 AND direction = 'OUTBOUND' AND sent_at > $3 AND sent_at <= $4 LIMIT 1",
            )
            .bind(org)
            .bind(conversation)
            .bind(asked)
            .bind(sent_at),
        )
        .await?;
    if answered.is_some() {
        return Ok(None);
    }
    let micros = (sent_at - asked).num_microseconds().ok_or_else(|| Error::validation("sent_at", "is out of range"))?;
    Ok(Some(micros as f64 / 1_000_000.0))
}

impl Messages<'_> {
    /// Records a message the bot or a provider sends to the patient: validates it, then in one
    /// transaction locks the conversation, checks the provider (an active, live provider of this
    /// organization), computes the response time when not given, inserts the message (OUTBOUND, status
    /// SENT or PENDING, not for AI processing) and moves the conversation's `message_count`,
    /// `last_message_at` and, for the bot, `last_bot_response_at`. One `CREATE` event.
    ///
    /// Errors: `validation` before any I/O (status other than SENT/PENDING, text rules, negative
    /// response time), and on a provider that is not an active provider of this organization;
    /// `permission_denied` for actors that may not create messages and for a provider naming another
    /// provider; `not_found` when the conversation is not a live conversation of this organization;
    /// `conflict` on a repeated `whatsapp_message_id`. Nothing is written on error.
    pub async fn record_outbound(&self, out: NewOutboundMessage) -> Result<Message> {
        let scope = self.scope();
        let allowed = scope.authorize(Resource::Message, Action::Create).and_then(|_| match out.sender {
            OutboundSender::Provider(p) if scope.actor().role() == Role::Provider && scope.actor().id() != Some(p) => {
                Err(Error::PermissionDenied("a provider may only send messages as themself".into()))
            }
            _ => Ok(()),
        });
        check(scope, "messages", Action::Create, None, None, allowed).await?;
        let org = scope.organization_id();
        let now = self.scope().now();
        let (sender_kind, provider) = match out.sender {
            OutboundSender::Bot => (SenderKind::Bot, None),
            OutboundSender::Provider(p) => (SenderKind::Provider, Some(p)),
        };
        let status = outbound_status(out.status, out.whatsapp_message_id.is_some())?;
        let new = NewMessage {
            whatsapp_message_id: out.whatsapp_message_id,
            sender_provider_id: provider,
            content: out.content,
            media_url: out.media_url,
            media_type: out.media_type,
            metadata: out.metadata,
            requires_response: out.requires_response,
            bot_response_time_seconds: out.response_time_seconds,
            status: Some(status),
            sent_at: out.sent_at.map(truncate),
            ..NewMessage::new(out.conversation_id, MessageDirection::Outbound, out.message_type, sender_kind)
        };
        let mut message = build_message(org, Uuid::now_v7(), now, new)?;
        let (keys, owner) = table::keys_for_row::<Conversation>(scope, message.conversation_id, Action::Read).await?;
        let patient = owner.ok_or_else(|| Error::not_found("conversation"))?;
        keys.require_patient(patient, "conversation_id")?;
        let mut tx = AuditTx::begin(scope).await?;
        message.patient_id =
            crate::repo::messages::lock_conversation(&mut tx, org, message.conversation_id, patient).await?;
        if let Some(p) = provider {
            let active = tx
                .fetch_optional(
                    Query::new(
                        "SELECT id FROM providers WHERE organization_id = $1 AND id = $2 AND is_active \
                         AND deleted_at IS NULL",
                    )
                    .bind(org)
                    .bind(p),
                )
                .await?;
            if active.is_none() {
                return Err(Error::validation("sender_provider_id", "is not an active provider of this organization"));
            }
        }
        if message.bot_response_time_seconds.is_none() {
            message.bot_response_time_seconds =
                response_time(&mut tx, org, message.conversation_id, message.sent_at).await?;
        }
        let event = table::insert_in(&mut tx, &keys, org, &message).await?;
        let updated = crate::repo::messages::count_message(
            &mut tx,
            org,
            message.conversation_id,
            message.sent_at,
            now,
            sender_kind == SenderKind::Bot,
        )
        .await?;
        if updated != 1 {
            // Unreachable while the row is locked; dropping `tx` rolls the insert back.
            return Err(Error::not_found("conversation"));
        }
        tx.record(event).await?;
        // Statuses WhatsApp reported before this message was recorded (webhook ingest keeps them).
        if let Some(wamid) = &message.whatsapp_message_id {
            let applied =
                crate::whatsapp::apply_pending_statuses(&mut tx, &keys, org, message.id, wamid.expose()?, now).await?;
            if !applied.is_empty() {
                for e in applied {
                    tx.record(e).await?;
                }
                message = table::get_in(&mut tx, &keys, org, message.id, "", false).await?;
            }
        }
        tx.commit().await?;
        Ok(message)
    }

    /// Up to `limit` (1 to [`MAX_AI_CLAIM`]) messages waiting for AI processing, oldest first by
    /// `(created_at, id)`: live INBOUND messages with `ai_processed` false, claimed or not. One `READ`
    /// event. Workers should use [`Messages::claim_for_ai`], which also takes a lease.
    pub async fn pending_for_ai(&self, limit: u32) -> Result<Vec<Message>> {
        if !(1..=MAX_AI_CLAIM).contains(&limit) {
            return Err(Error::validation("limit", format!("must be between 1 and {MAX_AI_CLAIM}")));
        }
        let scope = self.scope();
        let access = table::access::<Message>(scope, Action::Read, None).await?;
        let mut tx = AuditTx::begin(scope).await?;
        let rows = tx
            .fetch_all(
                Query::new(format!("SELECT * FROM messages WHERE {QUEUE}{access} ORDER BY created_at, id LIMIT $3"))
                    .bind(scope.organization_id())
                    .bind(false)
                    .bind(i64::from(limit)),
            )
            .await?;
        tx.record(read_event("messages", &rows, None)?).await?;
        tx.commit().await?;
        table::decode_rows(scope, &rows).await
    }

    /// Claims up to `limit` (1 to [`MAX_AI_CLAIM`]) messages waiting for AI processing for `worker`
    /// (1 to 200 characters) until `lease` (1 second to 1 hour) ends, oldest first by
    /// `(created_at, id)`: live INBOUND messages with `ai_processed` false that no one holds, or whose
    /// lease has expired. Two workers never hold the same message at once; a message whose lease
    /// expired before its result was recorded is handed out again (at least once). Record each result
    /// with [`Messages::record_ai_result`], which releases the claim. One `READ` event listing the
    /// claimed ids (and naming the claim columns written).
    ///
    /// Needs `read` and `update` on messages (the `ai-annotator`, providers, the platform).
    pub async fn claim_for_ai(&self, worker: &str, limit: u32, lease: Duration) -> Result<Vec<Message>> {
        let (worker, lease) = claim_args(worker, limit, lease)?;
        let scope = self.scope();
        let org = scope.organization_id();
        let read = table::access::<Message>(scope, Action::Read, None).await?;
        let update = table::access::<Message>(scope, Action::Update, None).await?;
        let now = self.scope().now();
        let until = now + lease;
        let mut tx = AuditTx::begin(scope).await?;
        let skip = tx.lock(RowLock::SkipLocked);
        let due = tx
            .fetch_all(
                Query::new(format!(
                    "SELECT id FROM messages WHERE {QUEUE} AND (ai_claimed_until IS NULL OR ai_claimed_until <= $3)\
                     {read}{update} ORDER BY created_at, id LIMIT $4{skip}"
                ))
                .bind(org)
                .bind(false)
                .bind(now)
                .bind(i64::from(limit)),
            )
            .await?;
        let ids = due.iter().map(|r| r.uuid("id")).collect::<Result<Vec<_>>>()?;
        let rows: Vec<Row> = if ids.is_empty() {
            Vec::new()
        } else {
            let update = ids.iter().fold(
                Query::new(format!(
                    "UPDATE messages SET ai_claimed_by = $1, ai_claimed_until = $2 \
                     WHERE organization_id = $3 AND id IN ({})",
                    placeholders(4, ids.len())
                ))
                .bind(worker)
                .bind(until)
                .bind(org),
                |q, id| q.bind(*id),
            );
            let claimed = tx.execute(update).await?;
            if claimed != ids.len() as u64 {
                // Unreachable: the rows are locked (PostgreSQL) or the database is (SQLite).
                return Err(Error::CorruptData("messages claimed for AI changed under the lock".into()));
            }
            let select = ids.iter().fold(
                Query::new(format!(
                    "SELECT * FROM messages WHERE organization_id = $1 AND id IN ({}) ORDER BY created_at, id",
                    placeholders(2, ids.len())
                ))
                .bind(org),
                |q, id| q.bind(*id),
            );
            tx.fetch_all(select).await?
        };
        tx.record(read_event("messages", &rows, None)?.changed(["ai_claimed_by", "ai_claimed_until"])).await?;
        tx.commit().await?;
        table::decode_rows(scope, &rows).await
    }

    /// Records the AI result of message `id` (see [`MessageAnalysis`]): in one transaction, with the
    /// row locked, sets the AI fields (encrypted under the patient's key), `ai_processed` true and
    /// `processed_at`, and releases any claim on it. One `UPDATE` event naming the fields that changed.
    /// Recording again (a re-analysis, or a late worker whose lease expired) replaces the result.
    ///
    /// Errors: `validation` (confidence outside 0..1, intent over 200 characters, blank keywords) and
    /// nothing written; `permission_denied` without `update` on messages; `not_found` when the message
    /// is not a live message of this organization within the actor's reach.
    pub async fn record_ai_result(&self, id: Uuid, analysis: MessageAnalysis) -> Result<Message> {
        let scope = self.scope();
        let org = scope.organization_id();
        let now = self.scope().now();
        let patch = MessagePatch {
            ai_processed: Some(true),
            processed_at: Some(Some(analysis.processed_at.map(truncate).unwrap_or(now))),
            ai_intent: Some(analysis.intent),
            ai_entities: Some(analysis.entities),
            ai_confidence: Some(analysis.confidence),
            health_keywords: Some(analysis.health_keywords),
            urgency_level: analysis.urgency,
            requires_response: analysis.requires_response,
            ..Default::default()
        };
        let (mut keys, owner) = table::keys_for_row::<Message>(scope, id, Action::Update).await?;
        let access = scope.row_filter("messages", Action::Update)?;
        let mut tx = AuditTx::begin(scope).await?;
        let found = match table::get_in::<Message>(&mut tx, &keys, org, id, &access, true).await {
            Err(e) if table::is_unknown_key(&e) => {
                drop(tx); // never wait for the key store while holding a transaction
                keys = scope.db().refresh_key_set(&keys).await?.ok_or(e)?;
                tx = AuditTx::begin(scope).await?;
                table::get_in::<Message>(&mut tx, &keys, org, id, &access, true).await
            }
            got => got,
        };
        let mut message = match found {
            Err(Error::NotFound { .. }) => {
                drop(tx);
                return Err(table::missing::<Message>(scope, Action::Update, id).await);
            }
            other => other?,
        };
        if Some(message.patient_id) != owner {
            // A message never changes patient; a mismatch means the row was replaced under us.
            return Err(Error::not_found("message"));
        }
        let before = table::fingerprints(&keys, &message)?;
        message.apply(patch, now)?;
        let mut changed = table::changed_fields(&keys, &before, &message)?;
        table::write_in(&mut tx, &keys, org, &message).await?;
        let released = tx
            .execute(
                Query::new(
                    "UPDATE messages SET ai_claimed_by = NULL, ai_claimed_until = NULL \
                     WHERE organization_id = $1 AND id = $2 AND ai_claimed_by IS NOT NULL",
                )
                .bind(org)
                .bind(id),
            )
            .await?;
        if released > 0 {
            changed.extend(["ai_claimed_by", "ai_claimed_until"]);
        }
        tx.record(table::update_event(&message, changed, owner)).await?;
        tx.commit().await?;
        Ok(message)
    }
}

impl Conversations<'_> {
    /// Records the AI results of conversation `id` (see [`ConversationAnalysis`]), encrypted under the
    /// patient's key, in one transaction with the row locked. One `UPDATE` event naming the fields that
    /// changed.
    ///
    /// Errors: `validation` (blank or over-long labels, a summary over 10,000 characters) and nothing
    /// written; `permission_denied` without `update` on conversations; `not_found` when the conversation
    /// is not a live conversation of this organization.
    pub async fn record_ai_result(&self, id: Uuid, analysis: ConversationAnalysis) -> Result<Conversation> {
        let patch = ConversationPatch {
            health_topics: analysis.health_topics.map(Some),
            medications_mentioned: analysis.medications_mentioned.map(Some),
            symptoms_reported: analysis.symptoms_reported.map(Some),
            ai_context: analysis.ai_context.map(Some),
            summary: analysis.summary.map(Some),
            ..Default::default()
        };
        table::update::<Conversation>(self.scope(), id, patch).await
    }
}
