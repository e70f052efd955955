//! Audit events as a read-only repository: `get`, `list`, and lookups by entity or patient.
//!
//! Events are written only by the library (see [`audit`](crate::audit)): the generic `create` cannot
//! be called (its input type has no values) and there is no update or delete. Reading events is
//! itself an audited read.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{rows, Model, Page, PageRequest, Repo};
use crate::db::Filter;
use crate::error::Result;
use crate::kernel::Sealed;
use crate::model::{AuditLog, EntityType};
use crate::scope::Scope;

/// Repository of audit events.
pub type AuditLogs<'s> = Repo<'s, AuditLog>;

/// The input of `create` for audit events: it has no values, so events cannot be created through the
/// generic repository. The library records them itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCreatable {}

impl Scope {
    /// Audit events of this scope's organization.
    pub fn audit_logs(&self) -> AuditLogs<'_> {
        Repo::new(self)
    }
}

impl Sealed for AuditLog {}

impl Model for AuditLog {
    type New = NotCreatable;

    fn build(_: Uuid, _: Uuid, _: DateTime<Utc>, new: NotCreatable) -> Result<Self> {
        match new {}
    }
}

impl AuditLogs<'_> {
    /// A page of the events about one entity, newest first.
    pub async fn for_entity(
        &self,
        entity_type: EntityType,
        entity_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<AuditLog>> {
        let filter = Filter::new().and_eq("entity_type", entity_type.as_str()).and_eq("entity_id", entity_id);
        rows::list_where(self.scope(), filter, &page).await
    }

    /// A page of the events whose single patient is `patient_id`, newest first (for every event
    /// involving a patient, listings included, see
    /// [`AuditTrail::access_report`](crate::audit::AuditTrail::access_report)).
    pub async fn for_patient(&self, patient_id: Uuid, page: PageRequest) -> Result<Page<AuditLog>> {
        rows::list_where(self.scope(), Filter::new().and_eq("patient_id", patient_id), &page).await
    }
}
