//! `messages.*`: messages, appended to their conversation, and the AI worker's queue over them.

use austa_core::model::{Message, MessagePatch, NewMessage};
use austa_core::repo::ai_work::MessageAnalysis;
use austa_core::repo::outbound::NewOutboundMessage;
use austa_core::repo::Page;
use austa_core::{Result, Scope};
use serde::Deserialize;
use uuid::Uuid;

use super::{page, seconds, ScopeOperation};

table_ops!("messages", Message, (), MessagePatch: get, list, update, delete, restore);

/// Appends a message to its conversation, updating the conversation's counters in the same
/// transaction.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Append {
    /// The message.
    pub data: NewMessage,
}

impl ScopeOperation for Append {
    const NAME: &'static str = "messages.append";
    type Output = Message;
    async fn run(self, scope: &Scope) -> Result<Message> {
        scope.messages().append(self.data).await
    }
}

/// Records a message sent by the bot or a provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordOutbound {
    /// The outbound message.
    pub data: NewOutboundMessage,
}

impl ScopeOperation for RecordOutbound {
    const NAME: &'static str = "messages.record_outbound";
    type Output = Message;
    async fn run(self, scope: &Scope) -> Result<Message> {
        scope.messages().record_outbound(self.data).await
    }
}

/// A conversation's messages, latest first, decrypted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// The conversation.
    pub conversation_id: Uuid,
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for History {
    const NAME: &'static str = "messages.history";
    type Output = Page<Message>;
    async fn run(self, scope: &Scope) -> Result<Page<Message>> {
        scope.messages().history(self.conversation_id, page(self.limit, self.after)?).await
    }
}

/// The message with this WhatsApp message id, if any.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindByWhatsappMessageId {
    /// The WhatsApp message id (`wamid....`).
    pub wamid: String,
}

impl ScopeOperation for FindByWhatsappMessageId {
    const NAME: &'static str = "messages.find_by_whatsapp_message_id";
    type Output = Option<Message>;
    async fn run(self, scope: &Scope) -> Result<Option<Message>> {
        scope.messages().find_by_whatsapp_message_id(&self.wamid).await
    }
}

/// Inbound messages not yet analysed, oldest first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingForAi {
    /// At most this many.
    pub limit: u32,
}

impl ScopeOperation for PendingForAi {
    const NAME: &'static str = "messages.pending_for_ai";
    type Output = Vec<Message>;
    async fn run(self, scope: &Scope) -> Result<Vec<Message>> {
        scope.messages().pending_for_ai(self.limit).await
    }
}

/// Claims up to `limit` messages for analysis by `worker` for `lease_seconds`; another worker
/// claims them again once the lease ends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimForAi {
    /// The claiming worker's name.
    pub worker: String,
    /// At most this many.
    pub limit: u32,
    /// How long the claim holds, in seconds.
    pub lease_seconds: f64,
}

impl ScopeOperation for ClaimForAi {
    const NAME: &'static str = "messages.claim_for_ai";
    type Output = Vec<Message>;
    async fn run(self, scope: &Scope) -> Result<Vec<Message>> {
        let lease = seconds("lease_seconds", self.lease_seconds)?;
        scope.messages().claim_for_ai(&self.worker, self.limit, lease).await
    }
}

/// Stores the AI's analysis of one message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordAiResult {
    /// The message.
    pub id: Uuid,
    /// The whole result; it replaces the previous one.
    pub analysis: MessageAnalysis,
}

impl ScopeOperation for RecordAiResult {
    const NAME: &'static str = "messages.record_ai_result";
    type Output = Message;
    async fn run(self, scope: &Scope) -> Result<Message> {
        scope.messages().record_ai_result(self.id, self.analysis).await
    }
}
