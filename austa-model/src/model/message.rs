//! Messages: the WhatsApp messages of a conversation, inbound from the patient or outbound to them.
//!
//! Design decisions:
//! * Who wrote a message is explicit ([`SenderKind`], plus `sender_provider_id` for providers); the
//!   original had no sender and bot messages carried the patient's id. `is_bot` is derived from the
//!   sender kind, never taken as input.
//! * `patient_id` is not an input: it is copied from the conversation.
//! * Messages are created only with `scope.messages().append(NewMessage)`, which inserts the message and
//!   updates the conversation's `message_count` and `last_message_at` in one transaction. The generic
//!   `create` takes [`UseAppend`], a type with no values, so it cannot be called for messages.
//! * Content, media URL, metadata and every AI-derived field are encrypted; delivery status, read and
//!   processing times and the AI/urgency flags can be updated afterwards.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::record::Record;
use uuid::Uuid;

use super::enums::{MessageDirection, MessageStatus, MessageType, SenderKind, UrgencyLevel};
use austa_crypto::Sensitive;

/// A message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(table = "messages", soft_delete, owner = "patient_id")]
pub struct Message {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
    #[record(organization)]
    pub organization_id: Uuid,
    /// The conversation.
    pub conversation_id: Uuid,
    /// The conversation's patient.
    pub patient_id: Uuid,
    /// WhatsApp Business API message id (unique per organization).
    #[record(blind = "WhatsappMessageId")]
    pub whatsapp_message_id: Option<Sensitive<String>>,
    /// Inbound (from the patient) or outbound (to the patient).
    pub direction: MessageDirection,
    /// WhatsApp message type.
    #[record(column = "type")]
    pub message_type: MessageType,
    /// Who wrote the message.
    pub sender_kind: SenderKind,
    /// The provider who wrote it, when `sender_kind` is PROVIDER.
    pub sender_provider_id: Option<Uuid>,
    /// Text content (encrypted).
    pub content: Option<Sensitive<String>>,
    /// Media file URL (encrypted).
    pub media_url: Option<Sensitive<String>>,
    /// Media MIME type, e.g. `audio/ogg`.
    pub media_type: Option<String>,
    /// Additional WhatsApp metadata (encrypted JSON).
    pub metadata: Option<Sensitive<serde_json::Value>>,
    /// Whether the AI pipeline processed the message.
    pub ai_processed: bool,
    /// AI understanding confidence, 0 to 1.
    pub ai_confidence: Option<f64>,
    /// Detected intent (encrypted).
    pub ai_intent: Option<Sensitive<String>>,
    /// Extracted entities (encrypted JSON).
    pub ai_entities: Option<Sensitive<serde_json::Value>>,
    /// Detected health-related terms (encrypted).
    pub health_keywords: Option<Sensitive<Vec<String>>>,
    /// Clinical urgency.
    pub urgency_level: UrgencyLevel,
    /// Whether someone must answer.
    pub requires_response: bool,
    /// Whether the bot wrote it (`sender_kind == BOT`).
    pub is_bot: bool,
    /// Bot response time in seconds.
    pub bot_response_time_seconds: Option<f64>,
    /// Delivery status.
    pub status: MessageStatus,
    /// When it was read.
    pub read_at: Option<DateTime<Utc>>,
    /// When the AI pipeline processed it.
    pub processed_at: Option<DateTime<Utc>>,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Soft-deletion time.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The input type of the generic `create` for [`Message`]: it has no values, so
/// `scope.repo::<Message>().create(..)` cannot be called. Use `scope.messages().append(NewMessage)`,
/// which also keeps the conversation's `message_count` and `last_message_at` true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseAppend {}

/// Input of `scope.messages().append(...)`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// The conversation (must belong to the scope's organization); the patient is taken from it.
    pub conversation_id: Uuid,
    /// WhatsApp message id, 1 to 256 characters without spaces.
    pub whatsapp_message_id: Option<Sensitive<String>>,
    /// Direction: PATIENT messages are INBOUND, BOT and PROVIDER messages OUTBOUND.
    pub direction: MessageDirection,
    /// WhatsApp message type.
    pub message_type: MessageType,
    /// Who wrote it.
    pub sender_kind: SenderKind,
    /// Required when `sender_kind` is PROVIDER, refused otherwise.
    pub sender_provider_id: Option<Uuid>,
    /// Text content, 1 to 65,536 characters, not blank.
    pub content: Option<Sensitive<String>>,
    /// Media URL, 1 to 2,048 characters.
    pub media_url: Option<Sensitive<String>>,
    /// MIME type like `image/jpeg`.
    pub media_type: Option<String>,
    /// Additional WhatsApp metadata.
    pub metadata: Option<Sensitive<serde_json::Value>>,
    /// Whether the AI pipeline processed it; default false.
    #[serde(default)]
    pub ai_processed: bool,
    /// Confidence, 0 to 1.
    pub ai_confidence: Option<f64>,
    /// Intent, 1 to 200 characters.
    pub ai_intent: Option<Sensitive<String>>,
    /// Extracted entities.
    pub ai_entities: Option<Sensitive<serde_json::Value>>,
    /// Health keywords (labels).
    pub health_keywords: Option<Sensitive<Vec<String>>>,
    /// Urgency; default LOW.
    pub urgency_level: Option<UrgencyLevel>,
    /// Whether someone must answer; default false.
    #[serde(default)]
    pub requires_response: bool,
    /// Bot response time in seconds, not negative.
    pub bot_response_time_seconds: Option<f64>,
    /// Delivery status; default DELIVERED.
    pub status: Option<MessageStatus>,
    /// When it was read.
    pub read_at: Option<DateTime<Utc>>,
    /// When the AI pipeline processed it.
    pub processed_at: Option<DateTime<Utc>>,
    /// When it was sent; default now.
    pub sent_at: Option<DateTime<Utc>>,
}

impl NewMessage {
    /// A new message with the required fields and defaults elsewhere.
    pub fn new(
        conversation_id: Uuid,
        direction: MessageDirection,
        message_type: MessageType,
        sender_kind: SenderKind,
    ) -> Self {
        Self {
            conversation_id,
            whatsapp_message_id: None,
            direction,
            message_type,
            sender_kind,
            sender_provider_id: None,
            content: None,
            media_url: None,
            media_type: None,
            metadata: None,
            ai_processed: false,
            ai_confidence: None,
            ai_intent: None,
            ai_entities: None,
            health_keywords: None,
            urgency_level: None,
            requires_response: false,
            bot_response_time_seconds: None,
            status: None,
            read_at: None,
            processed_at: None,
            sent_at: None,
        }
    }
}

/// Input of `scope.messages().update(...)`: delivery status, read and processing times, and the AI
/// annotations. What was said (content, media, sender) never changes.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MessagePatch {
    /// New delivery status.
    pub status: Option<MessageStatus>,
    /// New read time (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub read_at: Option<Option<DateTime<Utc>>>,
    /// New processing time (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub processed_at: Option<Option<DateTime<Utc>>>,
    /// Mark processed or not.
    pub ai_processed: Option<bool>,
    /// New confidence (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub ai_confidence: Option<Option<f64>>,
    /// New intent (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub ai_intent: Option<Option<Sensitive<String>>>,
    /// New entities (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub ai_entities: Option<Option<Sensitive<serde_json::Value>>>,
    /// New health keywords (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub health_keywords: Option<Option<Sensitive<Vec<String>>>>,
    /// New urgency.
    pub urgency_level: Option<UrgencyLevel>,
    /// Whether someone must answer.
    pub requires_response: Option<bool>,
    /// New bot response time (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub bot_response_time_seconds: Option<Option<f64>>,
}
