//! Audit events: a minimal, append-only repository.
//!
//! [`AuditLogs::record`] is the only way to write an event: it takes the actor and the request
//! metadata (request id, IP address, user agent, and the purpose as default reason) from the scope,
//! derives `sensitive_data` from the entity type, and forces review of high-risk events. Events are
//! read with the generic `get`/`list` and by entity or patient; there is no update and no delete.
//! Request metadata comes from the caller's environment rather than from validated input, so it is
//! sanitized (control characters removed, length capped) instead of rejected: an odd user agent must
//! not make an audit event fail.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{table, Model, Page, PageRequest, Repo, Sealed};
use crate::crypto::RowCrypto;
use crate::db::{IntoValue, Row, Value};
use crate::error::{Error, Result};
use crate::model::{AuditAction, AuditEntry, AuditLog, EntityType, NewAuditLog, RiskLevel};
use crate::scope::{Role, Scope};
use crate::validate;

/// Repository of audit events.
pub type AuditLogs<'s> = Repo<'s, AuditLog>;

impl Scope {
    /// Audit events of this scope's organization.
    pub fn audit_logs(&self) -> AuditLogs<'_> {
        Repo::new(self)
    }
}

/// Largest accepted `metadata` (serialized JSON).
const MAX_METADATA_BYTES: usize = 16 * 1024;

fn role(s: &str) -> Result<Role> {
    [Role::Patient, Role::Provider, Role::Admin, Role::System]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| Error::CorruptData("column actor_kind: unknown enum value".into()))
}

/// Field names only: lower-case identifiers, optionally dotted (`emergency_contact.phone`).
fn field_names(input: &[String]) -> Result<Vec<String>> {
    if input.len() > 100 {
        return Err(Error::validation("changed_fields", "must have at most 100 entries"));
    }
    let mut out: Vec<String> = Vec::with_capacity(input.len());
    for name in input {
        let name = name.trim();
        let ok = (1..=64).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        if !ok {
            return Err(Error::validation("changed_fields", "must hold field names like first_name, never values"));
        }
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

/// Request metadata as stored: trimmed, without control characters, at most `max` characters.
fn context_text(v: Option<&str>, max: usize) -> Option<String> {
    let cleaned: String = v?.trim().chars().filter(|c| !c.is_control()).take(max).collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_string())
}

/// An IP address in canonical form, or the sanitized text when it does not parse.
fn ip_address(v: Option<&str>) -> Option<String> {
    let text = context_text(v, 64)?;
    Some(text.parse::<std::net::IpAddr>().map(|ip| ip.to_string()).unwrap_or(text))
}

fn patient_of(n: &NewAuditLog) -> Result<Option<Uuid>> {
    match (n.entity_type, n.entity_id, n.patient_id) {
        (EntityType::Patient, Some(entity), Some(patient)) if entity != patient => {
            Err(Error::validation("patient_id", "must equal entity_id when the entity is a patient"))
        }
        (EntityType::Patient, Some(entity), None) => Ok(Some(entity)),
        (_, _, patient) => Ok(patient),
    }
}

impl Sealed for AuditLog {}

impl Model for AuditLog {
    type New = AuditEntry;
    const TABLE: &'static str = "audit_logs";
    const ENTITY: &'static str = "audit_log";
    const SOFT_DELETE: bool = false;

    fn id(&self) -> Uuid {
        self.id
    }

    fn build(organization: Uuid, id: Uuid, now: DateTime<Utc>, entry: AuditEntry) -> Result<Self> {
        let AuditEntry { new: n, actor, request } = entry;
        if let Some(m) = &n.metadata {
            if !m.is_object() {
                return Err(Error::validation("metadata", "must be a JSON object"));
            }
            let len =
                serde_json::to_vec(m).map_err(|_| Error::validation("metadata", "is not serializable JSON"))?.len();
            if len > MAX_METADATA_BYTES {
                return Err(Error::validation(
                    "metadata",
                    format!("must be at most {MAX_METADATA_BYTES} bytes of JSON"),
                ));
            }
        }
        let reason = match n.reason.as_deref() {
            Some(r) => Some(validate::text("reason", r, 1, 1000)?),
            None => context_text(request.purpose.as_deref(), 1000),
        };
        let requires_review = n.requires_review
            || matches!(n.risk_level, RiskLevel::High | RiskLevel::Critical)
            || n.action == AuditAction::EmergencyAccess;
        Ok(AuditLog {
            id,
            organization_id: organization,
            actor_kind: actor.role(),
            actor_id: actor.id(),
            action: n.action,
            entity_type: n.entity_type,
            entity_id: n.entity_id,
            patient_id: patient_of(&n)?,
            changed_fields: field_names(&n.changed_fields)?,
            description: validate::opt_text("description", n.description.as_deref(), 1, 1000)?,
            reason,
            session_id: validate::opt_text("session_id", n.session_id.as_deref(), 1, 200)?,
            request_id: context_text(request.request_id.as_deref(), 200),
            ip_address: ip_address(request.ip_address.as_deref()),
            user_agent: context_text(request.user_agent.as_deref(), 512),
            risk_level: n.risk_level,
            sensitive_data: n.entity_type.is_sensitive(),
            requires_review,
            metadata: n.metadata,
            occurred_at: now,
            created_at: now,
        })
    }

    fn columns(&self, _c: &RowCrypto<'_>) -> Result<Vec<(&'static str, Value)>> {
        Ok(vec![
            ("id", self.id.into_value()),
            ("actor_kind", self.actor_kind.as_str().into_value()),
            ("actor_id", self.actor_id.into_value()),
            ("action", self.action.as_str().into_value()),
            ("entity_type", self.entity_type.as_str().into_value()),
            ("entity_id", self.entity_id.into_value()),
            ("patient_id", self.patient_id.into_value()),
            ("changed_fields", serde_json::json!(self.changed_fields).into_value()),
            ("description", self.description.clone().into_value()),
            ("reason", self.reason.clone().into_value()),
            ("session_id", self.session_id.clone().into_value()),
            ("request_id", self.request_id.clone().into_value()),
            ("ip_address", self.ip_address.clone().into_value()),
            ("user_agent", self.user_agent.clone().into_value()),
            ("risk_level", self.risk_level.as_str().into_value()),
            ("sensitive_data", self.sensitive_data.into_value()),
            ("requires_review", self.requires_review.into_value()),
            ("metadata", self.metadata.clone().into_value()),
            ("occurred_at", self.occurred_at.into_value()),
            ("created_at", self.created_at.into_value()),
        ])
    }

    fn from_row(row: &Row, _c: &RowCrypto<'_>) -> Result<Self> {
        Ok(AuditLog {
            id: row.uuid("id")?,
            organization_id: row.uuid("organization_id")?,
            actor_kind: role(&row.text("actor_kind")?)?,
            actor_id: row.opt_uuid("actor_id")?,
            action: row.enumeration("action")?,
            entity_type: row.enumeration("entity_type")?,
            entity_id: row.opt_uuid("entity_id")?,
            patient_id: row.opt_uuid("patient_id")?,
            changed_fields: row.string_list("changed_fields")?,
            description: row.opt_text("description")?,
            reason: row.opt_text("reason")?,
            session_id: row.opt_text("session_id")?,
            request_id: row.opt_text("request_id")?,
            ip_address: row.opt_text("ip_address")?,
            user_agent: row.opt_text("user_agent")?,
            risk_level: row.enumeration("risk_level")?,
            sensitive_data: row.bool("sensitive_data")?,
            requires_review: row.bool("requires_review")?,
            metadata: row.opt_json("metadata")?,
            occurred_at: row.time("occurred_at")?,
            created_at: row.time("created_at")?,
        })
    }
}

impl AuditLogs<'_> {
    /// Records an event on behalf of this scope's actor, with this scope's request metadata. Returns
    /// the event as stored. Validation failures write nothing.
    pub async fn record(&self, new: NewAuditLog) -> Result<AuditLog> {
        let scope = self.scope();
        self.create(AuditEntry { new, actor: scope.actor().clone(), request: scope.request().clone() }).await
    }

    /// A page of the events about one entity, newest first.
    pub async fn for_entity(
        &self,
        entity_type: EntityType,
        entity_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<AuditLog>> {
        table::list_where(
            self.scope(),
            " AND entity_type = $2 AND entity_id = $3",
            vec![entity_type.as_str().into_value(), entity_id.into_value()],
            &page,
        )
        .await
    }

    /// A page of the events involving one patient's data, newest first.
    pub async fn for_patient(&self, patient_id: Uuid, page: PageRequest) -> Result<Page<AuditLog>> {
        table::list_where(self.scope(), " AND patient_id = $2", vec![patient_id.into_value()], &page).await
    }
}
