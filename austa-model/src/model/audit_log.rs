//! Audit events: who did what to which data, when, from where and why.
//!
//! Events are written by the library itself (see `austa_core::audit`), in the transaction of the
//! operation they describe; callers add only what happens outside the library (logins, logouts,
//! exports made by the application) through [`AppEvent`]. Design decisions (the original's problems
//! are in the reference, section 9.2):
//! * The entity is a typed `(entity_type, entity_id)` pair without foreign keys; events outlive the
//!   rows they describe. A read lists the ids it returned (`record_ids`) and the patients whose data
//!   they were (`patient_ids`) in one event per operation.
//! * Events hold ids and field names, never values: no description or metadata free text, the
//!   request context is sanitized, and the one free-text field (`reason`) is encrypted.
//! * Risk level and sensitivity are derived from the action and the data classification, never passed
//!   in by callers.
//! * The table is append-only (trigger on both backends) and every event carries a MAC; the chain that
//!   links events in order is in `audit_chain`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::record::Record;
use uuid::Uuid;

use super::enums::{AuditAction, AuditOutcome, EntityType, RiskLevel, Sensitivity};
use crate::identity::Role;
use austa_crypto::Sensitive;

/// One audit event, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(table = "audit_logs")]
pub struct AuditLog {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Organization the event belongs to.
    #[record(organization)]
    pub organization_id: Uuid,
    /// When the operation ran.
    pub occurred_at: DateTime<Utc>,
    /// Kind (role) of the actor, from the recording scope.
    pub actor_kind: Role,
    /// The actor's id, when it has one.
    pub actor_id: Option<Uuid>,
    /// The integration's name for system actors (`whatsapp-webhook`, `platform`, ...).
    pub actor_name: Option<String>,
    /// What happened.
    pub action: AuditAction,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// Kind of entity the operation was about.
    pub entity_type: EntityType,
    /// The entity's id, when the operation named one row.
    pub entity_id: Option<Uuid>,
    /// Ids of the rows returned or written (at most [`MAX_LISTED_IDS`]; `record_count` has the total).
    pub record_ids: Vec<Uuid>,
    /// How many rows the operation returned or wrote.
    pub record_count: i64,
    /// The patient whose data it was, when exactly one.
    pub patient_id: Option<Uuid>,
    /// Every patient whose data the operation touched. An operation on more than [`MAX_LISTED_IDS`]
    /// patients records one event per share of that many, so every patient is listed in one of them.
    pub patient_ids: Vec<Uuid>,
    /// Names (never values) of the fields written.
    pub changed_fields: Vec<String>,
    /// The purpose stated by the scope (`treatment`, `billing`, ...).
    pub purpose: Option<String>,
    /// The written reason of an emergency grant or a shredding. Free text that may name a
    /// condition, so it is encrypted under the organization's key.
    pub reason: Option<Sensitive<String>>,
    /// Session id from the scope.
    pub session_id: Option<String>,
    /// Correlation id from the scope.
    pub request_id: Option<String>,
    /// Client IP address from the scope.
    pub ip_address: Option<String>,
    /// Client user agent from the scope.
    pub user_agent: Option<String>,
    /// Whether the operation ran under an emergency (break-glass) grant.
    pub emergency: bool,
    /// Sensitivity of the data, from the classification.
    pub sensitivity: Sensitivity,
    /// Whether the data is personal, health or secret (`sensitivity` is not `OPERATIONAL`).
    pub sensitive_data: bool,
    /// Risk, derived from action, outcome, sensitivity and emergency.
    pub risk_level: RiskLevel,
    /// Whether a person must review the event (risk `HIGH` or `CRITICAL`).
    pub requires_review: bool,
}

/// Most ids an event lists in `record_ids` and `patient_ids`. An operation on more patients records
/// one event per share of this many, each with the operation's `record_count` and no `record_ids`;
/// one on more records lists the first ones and gives the total in `record_count`.
pub const MAX_LISTED_IDS: usize = 1000;

/// Application events the library cannot see itself: what happens around it (a login to the provider
/// portal, an export the application produced). Recorded with
/// `scope.audit().record(...)` under the scope's actor and request.
///
/// As data (the bindings, a service receiving JSON) it is an object tagged by `action`:
/// `{"action": "LOGIN"}`, `{"action": "EXPORT", "entity_type": "PATIENT", "patient_id": "..."}`. A member
/// the action does not have is a `validation` error for every action alike.
///
/// ```
/// use austa_model::{input, model::AppEvent};
/// let e: AppEvent = input::from_json(serde_json::json!({"action": "PERMISSION_CHANGE"}))?;
/// assert_eq!(e, AppEvent::PermissionChange { provider_id: None });
/// let bad = input::from_json::<AppEvent>(serde_json::json!({"action": "LOGIN", "user": "x"})).unwrap_err();
/// assert_eq!(bad.field(), Some("user"));
/// # Ok::<(), austa_error::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "AppEventSpec")]
pub enum AppEvent {
    /// The scope's actor signed in.
    Login,
    /// The scope's actor signed out.
    Logout,
    /// The application exported data about an entity (or a whole kind of entity).
    Export {
        /// Kind of entity exported.
        entity_type: EntityType,
        /// The entity, when one.
        entity_id: Option<Uuid>,
        /// The patient whose data it was, when one.
        patient_id: Option<Uuid>,
    },
    /// Permissions of a user were changed in the application's identity system.
    PermissionChange {
        /// The provider whose permissions changed, when it is one.
        provider_id: Option<Uuid>,
    },
}

/// The data form of [`AppEvent`]. Every variant is a struct variant, even those without members:
/// serde ignores `deny_unknown_fields` on the unit variants of an internally tagged enum, which let
/// `{"action": "LOGIN", "anything": ...}` through while the other actions refused unknown members.
#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
enum AppEventSpec {
    Login {},
    Logout {},
    Export {
        entity_type: EntityType,
        #[serde(default)]
        entity_id: Option<Uuid>,
        #[serde(default)]
        patient_id: Option<Uuid>,
    },
    PermissionChange {
        #[serde(default)]
        provider_id: Option<Uuid>,
    },
}

impl From<AppEventSpec> for AppEvent {
    fn from(spec: AppEventSpec) -> Self {
        match spec {
            AppEventSpec::Login {} => AppEvent::Login,
            AppEventSpec::Logout {} => AppEvent::Logout,
            AppEventSpec::Export { entity_type, entity_id, patient_id } => {
                AppEvent::Export { entity_type, entity_id, patient_id }
            }
            AppEventSpec::PermissionChange { provider_id } => AppEvent::PermissionChange { provider_id },
        }
    }
}
