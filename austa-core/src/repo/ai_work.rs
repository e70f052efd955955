//! The AI worker's side of messages and conversations: the queue of messages to analyse, claims with
//! a lease, and the results.
//!
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
//! Access follows the matrix: AI results and claims need `update` on messages or conversations (the
//! `ai-annotator`, providers, the platform). Refusals are recorded as `ACCESS_DENIED`; a row out of reach
//! is `not_found`, recorded as such.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::conversations::Conversations;
use super::messages::Messages;
use super::{rows, Updatable};
use crate::access::Action;
use crate::db::{Query, QueryBuilder, Row, RowLock};
use crate::error::{Error, Result};
use crate::kernel::event::read_event;
use crate::kernel::AuditTx;
use crate::model::{Conversation, ConversationPatch, Message, MessagePatch, UrgencyLevel};
use crate::time::truncate;
use austa_crypto::Sensitive;

/// Most messages one claim may take.
pub const MAX_AI_CLAIM: u32 = 500;
/// Longest lease a worker may take.
pub const MAX_AI_LEASE: Duration = Duration::from_secs(3600);

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

/// The queue: live inbound messages not processed yet (placeholders `$1` organization, `$2` false).
const QUEUE: &str = "organization_id = $1 AND direction = 'INBOUND' AND ai_processed = $2 AND deleted_at IS NULL";

impl Messages<'_> {
    /// Up to `limit` (1 to [`MAX_AI_CLAIM`]) messages waiting for AI processing, oldest first by
    /// `(created_at, id)`: live INBOUND messages with `ai_processed` false, claimed or not. One `READ`
    /// event. Workers should use [`Messages::claim_for_ai`], which also takes a lease.
    pub async fn pending_for_ai(&self, limit: u32) -> Result<Vec<Message>> {
        if !(1..=MAX_AI_CLAIM).contains(&limit) {
            return Err(Error::validation("limit", format!("must be between 1 and {MAX_AI_CLAIM}")));
        }
        let scope = self.scope();
        let access = rows::access::<Message>(scope, Action::Read, None).await?;
        let mut tx = AuditTx::begin_read(scope).await?;
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
        rows::decode_rows(scope, &rows).await
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
        let read = rows::access::<Message>(scope, Action::Read, None).await?;
        let update = rows::access::<Message>(scope, Action::Update, None).await?;
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
            let mut update = QueryBuilder::new("UPDATE messages SET ai_claimed_by = ");
            update.push_bind(worker).push(", ai_claimed_until = ").push_bind(until);
            update
                .push(" WHERE organization_id = ")
                .push_bind(org)
                .push(" AND id IN (")
                .push_binds(ids.iter().copied());
            update.push(")");
            let claimed = tx.execute(update.build()).await?;
            if claimed != ids.len() as u64 {
                // Unreachable: the rows are locked (PostgreSQL) or the database is (SQLite).
                return Err(Error::CorruptData("messages claimed for AI changed under the lock".into()));
            }
            let mut select = QueryBuilder::new("SELECT * FROM messages WHERE organization_id = ");
            select
                .push_bind(org)
                .push(" AND id IN (")
                .push_binds(ids.iter().copied())
                .push(") ORDER BY created_at, id");
            let select = select.build();
            tx.fetch_all(select).await?
        };
        tx.record(read_event("messages", &rows, None)?.changed(["ai_claimed_by", "ai_claimed_until"])).await?;
        tx.commit().await?;
        rows::decode_rows(scope, &rows).await
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
        let (mut keys, owner) = rows::keys_for_row::<Message>(scope, id, Action::Update).await?;
        let access = scope.row_filter("messages", Action::Update)?;
        let mut tx = AuditTx::begin(scope).await?;
        let found = match rows::get_in::<Message>(&mut tx, &keys, org, id, &access, true).await {
            Err(e) if rows::is_unknown_key(&e) => {
                drop(tx); // never wait for the key store while holding a transaction
                keys = scope.db().refresh_key_set(&keys).await?.ok_or(e)?;
                tx = AuditTx::begin(scope).await?;
                rows::get_in::<Message>(&mut tx, &keys, org, id, &access, true).await
            }
            got => got,
        };
        let mut message = match found {
            Err(Error::NotFound { .. }) => {
                drop(tx);
                return Err(rows::missing::<Message>(scope, Action::Update, id).await);
            }
            other => other?,
        };
        if Some(message.patient_id) != owner {
            // A message never changes patient; a mismatch means the row was replaced under us.
            return Err(Error::not_found("message"));
        }
        let before = rows::fingerprints(&keys, &message)?;
        message.apply(patch, now)?;
        let mut changed = rows::changed_fields(&keys, &before, &message)?;
        rows::write_in(&mut tx, &keys, org, &message).await?;
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
        tx.record(rows::update_event(&message, changed, owner)).await?;
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
        rows::update::<Conversation>(self.scope(), id, patch).await
    }
}
