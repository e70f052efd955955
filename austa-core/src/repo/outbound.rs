//! Outbound messages: what the bot or a provider sends to the patient.
//!
//! * [`Messages::record_outbound`]: a message the bot or a provider sends to the patient. Like
//!   [`Messages::append`] it locks the conversation, inserts the message and moves the conversation's
//!   counters in one transaction with one `CREATE` event; a bot message also moves the conversation's
//!   `last_bot_response_at`. Its response time (`bot_response_time_seconds`, kept for provider replies
//!   too) is the caller's figure when given, otherwise computed under the lock: the time since the
//!   latest inbound message of the conversation sent at or before it, when no outbound message was sent
//!   in between (a follow-up answers nothing and gets none), and none when the patient never wrote.
//!
//! Access follows the matrix: outbound messages need `create` on messages (providers, the
//! `whatsapp-webhook`, the platform), and a provider sends as themself only. Refusals are recorded as
//! `ACCESS_DENIED`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::messages::{build_message, Messages};
use super::rows;
use crate::access::{Action, Resource};
use crate::db::{Query, Tx};
use crate::error::{Error, Result};
use crate::kernel::{check, AuditTx};
use crate::model::{Conversation, Message, MessageDirection, MessageStatus, MessageType, NewMessage, SenderKind};
use crate::scope::Role;
use crate::time::truncate;
use austa_crypto::Sensitive;

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
    /// The message to store, sent by `sender_kind` (the provider `provider` when one).
    fn into_new_message(self, sender_kind: SenderKind, provider: Option<Uuid>) -> Result<NewMessage> {
        let status = outbound_status(self.status, self.whatsapp_message_id.is_some())?;
        Ok(NewMessage {
            whatsapp_message_id: self.whatsapp_message_id,
            sender_provider_id: provider,
            content: self.content,
            media_url: self.media_url,
            media_type: self.media_type,
            metadata: self.metadata,
            requires_response: self.requires_response,
            bot_response_time_seconds: self.response_time_seconds,
            status: Some(status),
            sent_at: self.sent_at.map(truncate),
            ..NewMessage::new(self.conversation_id, MessageDirection::Outbound, self.message_type, sender_kind)
        })
    }

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

fn outbound_status(v: Option<MessageStatus>, has_wamid: bool) -> Result<MessageStatus> {
    match v {
        None if has_wamid => Ok(MessageStatus::Sent),
        None => Ok(MessageStatus::Pending),
        Some(s @ (MessageStatus::Sent | MessageStatus::Pending)) => Ok(s),
        Some(_) => Err(Error::validation("status", "an outbound message starts SENT or PENDING")),
    }
}

/// Fails with a validation error on `sender_provider_id` unless `provider` is a live, active provider
/// of the organization.
async fn require_active_provider(tx: &mut Tx, org: Uuid, provider: Uuid) -> Result<()> {
    let sql = "SELECT id FROM providers WHERE organization_id = $1 AND id = $2 AND is_active AND deleted_at IS NULL";
    match tx.fetch_optional(Query::new(sql).bind(org).bind(provider)).await? {
        Some(_) => Ok(()),
        None => Err(Error::validation("sender_provider_id", "is not an active provider of this organization")),
    }
}

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
        let new = out.into_new_message(sender_kind, provider)?;
        let mut message = build_message(org, Uuid::now_v7(), now, new)?;
        let (keys, owner) = rows::keys_for_row::<Conversation>(scope, message.conversation_id, Action::Read).await?;
        let patient = owner.ok_or_else(|| Error::not_found("conversation"))?;
        keys.require_patient(patient, "conversation_id")?;
        let mut tx = AuditTx::begin(scope).await?;
        message.patient_id =
            crate::repo::messages::lock_conversation(&mut tx, org, message.conversation_id, patient).await?;
        if let Some(p) = provider {
            require_active_provider(&mut tx, org, p).await?;
        }
        if message.bot_response_time_seconds.is_none() {
            message.bot_response_time_seconds =
                response_time(&mut tx, org, message.conversation_id, message.sent_at).await?;
        }
        let event = rows::insert_in(&mut tx, &keys, org, &message).await?;
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
                super::delivery_status::apply_pending_statuses(&mut tx, &keys, org, message.id, wamid.expose()?, now)
                    .await?;
            if !applied.is_empty() {
                for e in applied {
                    tx.record(e).await?;
                }
                message = rows::get_in(&mut tx, &keys, org, message.id, "", false).await?;
            }
        }
        tx.commit().await?;
        Ok(message)
    }
}
