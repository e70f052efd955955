//! Conversations: WhatsApp chats between a patient and the organization (bot or staff).
//!
//! Design decisions: the WhatsApp chat id is encrypted and blind-indexed; at most one conversation per
//! chat is open (ACTIVE, PAUSED or ESCALATED) at a time in an organization, while closed ones stay as
//! history. Everything said about the patient's health (title, summary, AI context, topics,
//! medications, symptoms) is encrypted. `message_count` and `last_message_at` are maintained by
//! `scope.messages().append(...)` only: callers can neither set nor patch them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::record::Record;
use uuid::Uuid;

use super::enums::{ConversationStatus, ConversationType, Priority};
use austa_crypto::Sensitive;

/// A WhatsApp conversation of one patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(table = "conversations", soft_delete, owner = "patient_id")]
pub struct Conversation {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
    #[record(organization)]
    pub organization_id: Uuid,
    /// The patient talking.
    pub patient_id: Uuid,
    /// WhatsApp Business API chat id (encrypted, blind-indexed).
    #[record(blind = "WhatsappChatId")]
    pub whatsapp_chat_id: Sensitive<String>,
    /// Lifecycle state.
    pub status: ConversationStatus,
    /// What the conversation is about.
    #[record(column = "type")]
    pub conversation_type: ConversationType,
    /// Title (encrypted).
    pub title: Option<Sensitive<String>>,
    /// Summary (encrypted).
    pub summary: Option<Sensitive<String>>,
    /// Non-clinical labels for routing and search.
    pub tags: Vec<String>,
    /// Priority.
    pub priority: Priority,
    /// Whether the bot answers.
    pub bot_enabled: bool,
    /// AI conversation context (encrypted JSON).
    pub ai_context: Option<Sensitive<serde_json::Value>>,
    /// Last time the bot answered.
    pub last_bot_response_at: Option<DateTime<Utc>>,
    /// Health conditions discussed (encrypted).
    pub health_topics: Option<Sensitive<Vec<String>>>,
    /// Medications mentioned (encrypted).
    pub medications_mentioned: Option<Sensitive<Vec<String>>>,
    /// Symptoms reported (encrypted).
    pub symptoms_reported: Option<Sensitive<Vec<String>>>,
    /// Number of messages appended (maintained by `scope.messages().append`).
    pub message_count: i64,
    /// Average response time in minutes.
    pub avg_response_time_minutes: Option<f64>,
    /// Patient satisfaction, 1 to 5.
    pub satisfaction_score: Option<f64>,
    /// When the conversation started.
    pub started_at: DateTime<Utc>,
    /// Latest `sent_at` of its messages (`started_at` until the first message arrives).
    pub last_message_at: DateTime<Utc>,
    /// When the conversation ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Soft-deletion time.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Input of `scope.conversations().create(...)`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewConversation {
    /// The patient (must belong to the scope's organization).
    pub patient_id: Uuid,
    /// WhatsApp chat id, 1 to 128 characters without spaces.
    pub whatsapp_chat_id: Sensitive<String>,
    /// Initial state; default ACTIVE.
    pub status: Option<ConversationStatus>,
    /// Kind; default SUPPORT.
    pub conversation_type: Option<ConversationType>,
    /// Title, 1 to 200 characters.
    pub title: Option<Sensitive<String>>,
    /// Summary, 1 to 10,000 characters.
    pub summary: Option<Sensitive<String>>,
    /// Labels (each 1 to 100 characters, at most 100).
    pub tags: Vec<String>,
    /// Priority; default NORMAL.
    pub priority: Option<Priority>,
    /// Whether the bot answers; default true.
    pub bot_enabled: Option<bool>,
    /// AI context.
    pub ai_context: Option<Sensitive<serde_json::Value>>,
    /// Last bot response time.
    pub last_bot_response_at: Option<DateTime<Utc>>,
    /// Health topics (labels).
    pub health_topics: Option<Sensitive<Vec<String>>>,
    /// Medications mentioned (labels).
    pub medications_mentioned: Option<Sensitive<Vec<String>>>,
    /// Symptoms reported (labels).
    pub symptoms_reported: Option<Sensitive<Vec<String>>>,
    /// Average response time in minutes, not negative.
    pub avg_response_time_minutes: Option<f64>,
    /// Satisfaction, 1 to 5.
    pub satisfaction_score: Option<f64>,
    /// Start time; default now.
    pub started_at: Option<DateTime<Utc>>,
    /// End time, not before `started_at`.
    pub ended_at: Option<DateTime<Utc>>,
}

/// Input of `scope.conversations().update(...)`. The message counters are not here: only
/// `scope.messages().append` changes them.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConversationPatch {
    /// New state (reopening fails with `conflict` if the chat already has an open conversation).
    pub status: Option<ConversationStatus>,
    /// New kind.
    pub conversation_type: Option<ConversationType>,
    /// New title (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub title: Option<Option<Sensitive<String>>>,
    /// New summary (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub summary: Option<Option<Sensitive<String>>>,
    /// New labels.
    pub tags: Option<Vec<String>>,
    /// New priority.
    pub priority: Option<Priority>,
    /// Turn the bot on or off.
    pub bot_enabled: Option<bool>,
    /// New AI context (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub ai_context: Option<Option<Sensitive<serde_json::Value>>>,
    /// New last bot response time (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub last_bot_response_at: Option<Option<DateTime<Utc>>>,
    /// New health topics (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub health_topics: Option<Option<Sensitive<Vec<String>>>>,
    /// New medications mentioned (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub medications_mentioned: Option<Option<Sensitive<Vec<String>>>>,
    /// New symptoms reported (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub symptoms_reported: Option<Option<Sensitive<Vec<String>>>>,
    /// New average response time (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub avg_response_time_minutes: Option<Option<f64>>,
    /// New satisfaction score (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub satisfaction_score: Option<Option<f64>>,
    /// New end time (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub ended_at: Option<Option<DateTime<Utc>>>,
}
