//! Conversations: the generic operations plus a patient's active and complete conversation lists and
//! the open conversation of a WhatsApp chat (looked up through the chat id's blind index).
//!
//! A partial unique index keeps at most one open (ACTIVE, PAUSED, ESCALATED) conversation per chat in
//! an organization: creating or reopening a second one is `conflict` on `whatsapp_chat_id`.
//! `message_count` and `last_message_at` are written by `scope.messages().append` only; `update`
//! rewrites them with the values read under the row lock, so it never loses an append.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{patch, rows, Model, Page, PageRequest, Repo, SoftDeletable, Updatable};
use crate::db::Filter;
use crate::error::{Error, Result};
use crate::kernel::Sealed;
use crate::model::{Conversation, ConversationPatch, ConversationStatus, ConversationType, NewConversation, Priority};
use crate::scope::Scope;
use crate::time::truncate;
use crate::validate;
use austa_crypto::{BlindIndexKind, Sensitive};

/// Repository of conversations.
pub type Conversations<'s> = Repo<'s, Conversation>;

impl Scope {
    /// Conversations of this scope's organization.
    pub fn conversations(&self) -> Conversations<'_> {
        Repo::new(self)
    }
}

fn chat_id(v: &str) -> Result<String> {
    validate::whatsapp_id("whatsapp_chat_id", v)
}

fn secret_text(field: &str, v: Option<&Sensitive<String>>, max: usize) -> Result<Option<Sensitive<String>>> {
    v.map(|s| validate::text(field, s.expose()?, 1, max).map(Sensitive::new)).transpose()
}

fn secret_labels(field: &str, v: Option<&Sensitive<Vec<String>>>) -> Result<Option<Sensitive<Vec<String>>>> {
    v.map(|l| validate::labels(field, l.expose()?).map(Sensitive::new)).transpose()
}

fn avg_response(v: Option<f64>) -> Result<Option<f64>> {
    validate::opt_range("avg_response_time_minutes", v, 0.0, f64::MAX)
}

fn satisfaction(v: Option<f64>) -> Result<Option<f64>> {
    validate::opt_range("satisfaction_score", v, 1.0, 5.0)
}

fn ended_at(started_at: DateTime<Utc>, v: Option<DateTime<Utc>>) -> Result<Option<DateTime<Utc>>> {
    let v = v.map(truncate);
    validate::ordered("ended_at", Some(&started_at), v.as_ref())?;
    Ok(v)
}

impl Sealed for Conversation {}

impl Model for Conversation {
    type New = NewConversation;

    fn build(organization: Uuid, id: Uuid, now: DateTime<Utc>, new: NewConversation) -> Result<Self> {
        if new.patient_id.is_nil() {
            return Err(Error::validation("patient_id", "is required"));
        }
        let started_at = new.started_at.map(truncate).unwrap_or(now);
        Ok(Conversation {
            id,
            organization_id: organization,
            patient_id: new.patient_id,
            whatsapp_chat_id: Sensitive::new(chat_id(new.whatsapp_chat_id.expose()?)?),
            status: new.status.unwrap_or(ConversationStatus::Active),
            conversation_type: new.conversation_type.unwrap_or(ConversationType::Support),
            title: secret_text("title", new.title.as_ref(), 200)?,
            summary: secret_text("summary", new.summary.as_ref(), 10_000)?,
            tags: validate::labels("tags", &new.tags)?,
            priority: new.priority.unwrap_or(Priority::Normal),
            bot_enabled: new.bot_enabled.unwrap_or(true),
            ai_context: new.ai_context,
            last_bot_response_at: new.last_bot_response_at.map(truncate),
            health_topics: secret_labels("health_topics", new.health_topics.as_ref())?,
            medications_mentioned: secret_labels("medications_mentioned", new.medications_mentioned.as_ref())?,
            symptoms_reported: secret_labels("symptoms_reported", new.symptoms_reported.as_ref())?,
            message_count: 0,
            avg_response_time_minutes: avg_response(new.avg_response_time_minutes)?,
            satisfaction_score: satisfaction(new.satisfaction_score)?,
            started_at,
            last_message_at: started_at,
            ended_at: ended_at(started_at, new.ended_at)?,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        })
    }
}

impl Updatable for Conversation {
    type Patch = ConversationPatch;

    fn apply(&mut self, p: ConversationPatch, now: DateTime<Utc>) -> Result<()> {
        patch!(self.status, p.status);
        patch!(self.conversation_type, p.conversation_type);
        patch!(self.title, p.title, |v| secret_text("title", v.as_ref(), 200)?);
        patch!(self.summary, p.summary, |v| secret_text("summary", v.as_ref(), 10_000)?);
        patch!(self.tags, p.tags, |v| validate::labels("tags", &v)?);
        patch!(self.priority, p.priority);
        patch!(self.bot_enabled, p.bot_enabled);
        patch!(self.ai_context, p.ai_context);
        patch!(self.last_bot_response_at, p.last_bot_response_at, |v| v.map(truncate));
        patch!(self.health_topics, p.health_topics, |v| secret_labels("health_topics", v.as_ref())?);
        patch!(self.medications_mentioned, p.medications_mentioned, |v| secret_labels(
            "medications_mentioned",
            v.as_ref()
        )?);
        patch!(self.symptoms_reported, p.symptoms_reported, |v| secret_labels("symptoms_reported", v.as_ref())?);
        patch!(self.avg_response_time_minutes, p.avg_response_time_minutes, |v| avg_response(v)?);
        patch!(self.satisfaction_score, p.satisfaction_score, |v| satisfaction(v)?);
        patch!(self.ended_at, p.ended_at, |v| ended_at(self.started_at, v)?);
        self.updated_at = now;
        Ok(())
    }
}

impl SoftDeletable for Conversation {}

impl Conversations<'_> {
    /// A page of the patient's ACTIVE conversations, newest first.
    pub async fn active_for_patient(&self, patient_id: Uuid, page: PageRequest) -> Result<Page<Conversation>> {
        let filter =
            Filter::new().and_eq("patient_id", patient_id).and_eq("status", ConversationStatus::Active.as_str());
        rows::list_where(self.scope(), filter, &page).await
    }

    /// A page of all the patient's conversations (any status), newest first.
    pub async fn list_for_patient(&self, patient_id: Uuid, page: PageRequest) -> Result<Page<Conversation>> {
        rows::list_where(self.scope(), Filter::new().and_eq("patient_id", patient_id), &page).await
    }

    /// The open (ACTIVE, PAUSED or ESCALATED) conversation of this WhatsApp chat, if any.
    pub async fn open_for_chat(&self, whatsapp_chat_id: &str) -> Result<Option<Conversation>> {
        let normalized = chat_id(whatsapp_chat_id)?;
        rows::find_by_blind(
            self.scope(),
            "whatsapp_chat_id_bidx",
            BlindIndexKind::WhatsappChatId,
            &normalized,
            " AND status IN ('ACTIVE','PAUSED','ESCALATED')",
        )
        .await
    }
}
