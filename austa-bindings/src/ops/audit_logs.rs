//! `audit_logs.*`: the audit trail, read as rows.

use austa_core::model::{AuditLog, EntityType};
use austa_core::repo::Page;
use austa_core::{Result, Scope};
use serde::Deserialize;
use uuid::Uuid;

use super::{page, ScopeOperation};

table_ops!("audit_logs", AuditLog, (), (): get, list);

/// Events about one record.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForEntity {
    /// The record's kind.
    pub entity_type: EntityType,
    /// The record's id.
    pub entity_id: Uuid,
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for ForEntity {
    const NAME: &'static str = "audit_logs.for_entity";
    type Output = Page<AuditLog>;
    async fn run(self, scope: &Scope) -> Result<Page<AuditLog>> {
        scope.audit_logs().for_entity(self.entity_type, self.entity_id, page(self.limit, self.after)?).await
    }
}

/// Events that touched one patient's data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForPatient {
    /// The patient.
    pub patient_id: Uuid,
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for ForPatient {
    const NAME: &'static str = "audit_logs.for_patient";
    type Output = Page<AuditLog>;
    async fn run(self, scope: &Scope) -> Result<Page<AuditLog>> {
        scope.audit_logs().for_patient(self.patient_id, page(self.limit, self.after)?).await
    }
}
