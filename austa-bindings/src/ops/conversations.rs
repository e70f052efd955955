//! `conversations.*`: WhatsApp conversations and the AI's analysis of them.

use austa_core::model::{Conversation, ConversationPatch, NewConversation};
use austa_core::repo::ai_work::ConversationAnalysis;
use austa_core::repo::Page;
use austa_core::{Result, Scope};
use serde::Deserialize;
use uuid::Uuid;

use super::{page, ScopeOperation};

table_ops!("conversations", Conversation, NewConversation, ConversationPatch: get, list, create, create_many, update, delete, restore);

/// The patient's active conversations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveForPatient {
    /// The patient.
    pub patient_id: Uuid,
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for ActiveForPatient {
    const NAME: &'static str = "conversations.active_for_patient";
    type Output = Page<Conversation>;
    async fn run(self, scope: &Scope) -> Result<Page<Conversation>> {
        scope.conversations().active_for_patient(self.patient_id, page(self.limit, self.after)?).await
    }
}

/// All the patient's conversations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListForPatient {
    /// The patient.
    pub patient_id: Uuid,
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for ListForPatient {
    const NAME: &'static str = "conversations.list_for_patient";
    type Output = Page<Conversation>;
    async fn run(self, scope: &Scope) -> Result<Page<Conversation>> {
        scope.conversations().list_for_patient(self.patient_id, page(self.limit, self.after)?).await
    }
}

/// The open conversation of a WhatsApp chat, if any.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenForChat {
    /// The WhatsApp chat id.
    pub chat_id: String,
}

impl ScopeOperation for OpenForChat {
    const NAME: &'static str = "conversations.open_for_chat";
    type Output = Option<Conversation>;
    async fn run(self, scope: &Scope) -> Result<Option<Conversation>> {
        scope.conversations().open_for_chat(&self.chat_id).await
    }
}

/// Stores the AI's analysis of a conversation (summary, sentiment, risk, ...).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordAiResult {
    /// The conversation.
    pub id: Uuid,
    /// The analysis; fields left out keep their value.
    pub analysis: ConversationAnalysis,
}

impl ScopeOperation for RecordAiResult {
    const NAME: &'static str = "conversations.record_ai_result";
    type Output = Conversation;
    async fn run(self, scope: &Scope) -> Result<Conversation> {
        scope.conversations().record_ai_result(self.id, self.analysis).await
    }
}
