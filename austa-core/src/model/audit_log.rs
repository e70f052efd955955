//! Audit events: who did what to which entity, when, from where.
//!
//! Design decisions (the original's problems are in the reference, section 9.2):
//! * The entity is a typed `(entity_type, entity_id)` pair without foreign keys, instead of five
//!   foreign keys sharing one column; events outlive the rows they describe.
//! * Events never hold values, only the names of the fields that changed (`changed_fields` accepts
//!   identifiers like `first_name` or `emergency_contact.phone`, so `cpf=...` is rejected).
//! * The actor and the request metadata come from the [`Scope`](crate::Scope) that records the event,
//!   never from the caller; `sensitive_data` is derived from the entity type
//!   ([`EntityType::is_sensitive`]).
//! * The table is append-only: the model is neither `Updatable` nor `SoftDeletable`, and no method
//!   edits or deletes an event. Tamper evidence (hash chain, trigger) is a later addition.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::enums::{AuditAction, EntityType, RiskLevel};
use crate::scope::{Actor, RequestContext, Role};

/// One audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLog {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Organization the event belongs to.
    pub organization_id: Uuid,
    /// Kind of actor (from the recording scope).
    pub actor_kind: Role,
    /// Actor's id, when it has one (from the recording scope).
    pub actor_id: Option<Uuid>,
    /// What happened.
    pub action: AuditAction,
    /// Kind of entity the event is about.
    pub entity_type: EntityType,
    /// The entity's id, when the event is about one row.
    pub entity_id: Option<Uuid>,
    /// The patient whose data was involved, if any.
    pub patient_id: Option<Uuid>,
    /// Names (never values) of the fields that changed.
    pub changed_fields: Vec<String>,
    /// Human-readable description.
    pub description: Option<String>,
    /// Why (defaults to the scope's request purpose).
    pub reason: Option<String>,
    /// Session id of the caller.
    pub session_id: Option<String>,
    /// Correlation id (from the recording scope).
    pub request_id: Option<String>,
    /// Client IP address (from the recording scope).
    pub ip_address: Option<String>,
    /// Client user agent (from the recording scope).
    pub user_agent: Option<String>,
    /// Risk of the operation.
    pub risk_level: RiskLevel,
    /// Whether the entity holds personal or health data (derived from `entity_type`).
    pub sensitive_data: bool,
    /// Whether a person must review the event.
    pub requires_review: bool,
    /// Extra non-sensitive context (a JSON object).
    pub metadata: Option<serde_json::Value>,
    /// When the event happened.
    pub occurred_at: DateTime<Utc>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// Input of `scope.audit_logs().record(...)`: what the caller knows about the event. The actor,
/// request id, IP address and user agent are taken from the scope.
#[derive(Debug, Clone)]
pub struct NewAuditLog {
    /// What happened.
    pub action: AuditAction,
    /// Kind of entity.
    pub entity_type: EntityType,
    /// The entity's id.
    pub entity_id: Option<Uuid>,
    /// The patient whose data was involved; for `PATIENT` entities it defaults to `entity_id`.
    pub patient_id: Option<Uuid>,
    /// Names of the changed fields: identifiers (`[a-z][a-z0-9_.]*`, at most 64 characters), at most
    /// 100; duplicates are removed.
    pub changed_fields: Vec<String>,
    /// Description, 1 to 1000 characters, without patient data.
    pub description: Option<String>,
    /// Reason, 1 to 1000 characters; default the scope's request purpose.
    pub reason: Option<String>,
    /// Session id, 1 to 200 characters.
    pub session_id: Option<String>,
    /// Risk; default `LOW`.
    pub risk_level: RiskLevel,
    /// Whether a person must review the event; always true for `HIGH` and `CRITICAL` risk and for
    /// `EMERGENCY_ACCESS`.
    pub requires_review: bool,
    /// Extra non-sensitive context: a JSON object, at most 16 KiB.
    pub metadata: Option<serde_json::Value>,
}

impl NewAuditLog {
    /// An event with the given action and entity, `LOW` risk and nothing else.
    pub fn new(action: AuditAction, entity_type: EntityType, entity_id: Option<Uuid>) -> Self {
        Self {
            action,
            entity_type,
            entity_id,
            patient_id: None,
            changed_fields: Vec::new(),
            description: None,
            reason: None,
            session_id: None,
            risk_level: RiskLevel::Low,
            requires_review: false,
            metadata: None,
        }
    }
}

/// What the generic `create` of [`AuditLog`] takes: the caller's input plus the recording scope's
/// actor and request. It can only be built inside this crate (by `scope.audit_logs().record(...)`),
/// so the actor of an event cannot be chosen by the caller.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub(crate) new: NewAuditLog,
    pub(crate) actor: Actor,
    pub(crate) request: RequestContext,
}

impl EntityType {
    /// Whether rows of this entity hold personal or health data (`PATIENT`, `MESSAGE`, `CONVERSATION`,
    /// `HEALTH_DATA`, `DOCUMENT`, `AUTHORIZATION`); audit events about them are marked
    /// `sensitive_data`.
    pub fn is_sensitive(self) -> bool {
        matches!(
            self,
            EntityType::Patient
                | EntityType::Message
                | EntityType::Conversation
                | EntityType::HealthData
                | EntityType::Document
                | EntityType::Authorization
        )
    }
}
