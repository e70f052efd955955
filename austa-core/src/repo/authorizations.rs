//! Authorizations: the generic operations, a patient's authorizations by status, and document
//! attachments.
//!
//! Every reference (patient, providers, health record, attached documents) is a composite foreign key
//! `(organization_id, id)`: an id of another organization is a validation error naming the field,
//! exactly like a missing id. Attachments are rows of `authorization_attachments`; attaching also
//! checks, in the same transaction, that the document is live and belongs to the authorization's
//! patient (a document of another patient, or of another organization, is a validation error on
//! `document_id`), and the composite foreign key backs that check up in the database.
//!
//! Multi-line texts (description, justification, clinical notes) have their CRLF line endings (what
//! browsers submit from a textarea) normalized to LF before validation.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{table, Model, Page, PageRequest, Repo, Sealed, SoftDeletable, Updatable};
use crate::access::{Action, Resource};
use crate::audit::event::read_event;
use crate::audit::{check, AuditTx, Event};
use crate::crypto::{RowCrypto, Sensitive};
use crate::db::{IntoValue, Query, Row, Tx, Value};
use crate::error::{Error, Result};
use crate::model::{
    AuditAction, Authorization, AuthorizationPatch, AuthorizationStatus, NewAuthorization, Priority, UrgencyLevel,
};
use crate::scope::Scope;
use crate::time::truncate;
use crate::validate;

/// Repository of authorizations.
pub type Authorizations<'s> = Repo<'s, Authorization>;

impl Scope {
    /// Authorizations of this scope's organization.
    pub fn authorizations(&self) -> Authorizations<'_> {
        Repo::new(self)
    }
}

fn secret_text(field: &str, v: &Sensitive<String>, max: usize) -> Result<Sensitive<String>> {
    validate::text(field, v.expose()?, 1, max).map(Sensitive::new)
}

fn opt_secret_text(field: &str, v: Option<&Sensitive<String>>, max: usize) -> Result<Option<Sensitive<String>>> {
    v.map(|s| secret_text(field, s, max)).transpose()
}

/// Multi-line text: CRLF normalized to LF, then trimmed and bounded.
fn prose(field: &str, v: Option<&Sensitive<String>>, max: usize) -> Result<Option<Sensitive<String>>> {
    v.map(|s| {
        let normalized = zeroize::Zeroizing::new(s.expose()?.replace("\r\n", "\n"));
        validate::text(field, &normalized, 1, max).map(Sensitive::new)
    })
    .transpose()
}

fn related_conditions(v: Option<Sensitive<Vec<String>>>) -> Result<Option<Sensitive<Vec<String>>>> {
    v.map(|c| validate::labels("related_conditions", c.expose()?).map(Sensitive::new)).transpose()
}

fn external_id(field: &str, v: Option<&str>) -> Result<Option<String>> {
    validate::opt_text(field, v, 1, 100)
}

impl Authorization {
    /// Cross-field rules on the final state.
    fn check(&self) -> Result<()> {
        validate::ordered("valid_until", self.valid_from.as_ref(), self.valid_until.as_ref())
    }
}

impl Sealed for Authorization {}

impl Model for Authorization {
    type New = NewAuthorization;
    const TABLE: &'static str = "authorizations";
    const ENTITY: &'static str = "authorization";
    const SOFT_DELETE: bool = true;

    fn id(&self) -> Uuid {
        self.id
    }

    fn owner_patient(&self) -> Option<Uuid> {
        Some(self.patient_id)
    }

    fn build(organization: Uuid, id: Uuid, now: DateTime<Utc>, new: NewAuthorization) -> Result<Self> {
        let model = Authorization {
            id,
            organization_id: organization,
            authorization_type: new.authorization_type,
            procedure_name: secret_text("procedure_name", &new.procedure_name, 200)?,
            procedure_code: opt_secret_text("procedure_code", new.procedure_code.as_ref(), 50)?,
            description: prose("description", new.description.as_ref(), 2000)?,
            patient_id: new.patient_id,
            provider_id: new.provider_id,
            health_data_id: new.health_data_id,
            related_conditions: related_conditions(new.related_conditions)?,
            status: AuthorizationStatus::Pending,
            priority: new.priority.unwrap_or(Priority::Normal),
            urgency_level: new.urgency_level.unwrap_or(UrgencyLevel::Low),
            requested_by_provider_id: new.requested_by_provider_id,
            reviewed_by_provider_id: None,
            approved_by_provider_id: None,
            requested_at: new.requested_at.map(truncate).unwrap_or(now),
            reviewed_at: None,
            approved_at: None,
            valid_from: new.valid_from.map(truncate),
            valid_until: new.valid_until.map(truncate),
            justification: prose("justification", new.justification.as_ref(), 4000)?,
            clinical_notes: prose("clinical_notes", new.clinical_notes.as_ref(), 10_000)?,
            tasy_reference_id: external_id("tasy_reference_id", new.tasy_reference_id.as_deref())?,
            insurance_claim_id: external_id("insurance_claim_id", new.insurance_claim_id.as_deref())?,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        model.check()?;
        Ok(model)
    }

    fn columns(&self, c: &RowCrypto<'_>) -> Result<Vec<(&'static str, Value)>> {
        Ok(vec![
            ("id", self.id.into_value()),
            ("type", self.authorization_type.as_str().into_value()),
            ("procedure_name", c.text("procedure_name", &self.procedure_name)?),
            ("procedure_code", c.opt_text("procedure_code", self.procedure_code.as_ref())?),
            ("description", c.opt_text("description", self.description.as_ref())?),
            ("patient_id", self.patient_id.into_value()),
            ("provider_id", self.provider_id.into_value()),
            ("health_data_id", self.health_data_id.into_value()),
            ("related_conditions", c.opt_json("related_conditions", self.related_conditions.as_ref())?),
            ("status", self.status.as_str().into_value()),
            ("priority", self.priority.as_str().into_value()),
            ("urgency_level", self.urgency_level.as_str().into_value()),
            ("requested_by_provider_id", self.requested_by_provider_id.into_value()),
            ("reviewed_by_provider_id", self.reviewed_by_provider_id.into_value()),
            ("approved_by_provider_id", self.approved_by_provider_id.into_value()),
            ("requested_at", self.requested_at.into_value()),
            ("reviewed_at", self.reviewed_at.into_value()),
            ("approved_at", self.approved_at.into_value()),
            ("valid_from", self.valid_from.into_value()),
            ("valid_until", self.valid_until.into_value()),
            ("justification", c.opt_text("justification", self.justification.as_ref())?),
            ("clinical_notes", c.opt_text("clinical_notes", self.clinical_notes.as_ref())?),
            ("tasy_reference_id", self.tasy_reference_id.clone().into_value()),
            ("insurance_claim_id", self.insurance_claim_id.clone().into_value()),
            ("created_at", self.created_at.into_value()),
            ("updated_at", self.updated_at.into_value()),
            ("deleted_at", self.deleted_at.into_value()),
        ])
    }

    fn from_row(row: &Row, c: &RowCrypto<'_>) -> Result<Self> {
        Ok(Authorization {
            id: row.uuid("id")?,
            organization_id: row.uuid("organization_id")?,
            authorization_type: row.enumeration("type")?,
            procedure_name: c.open_text(row, "procedure_name")?,
            procedure_code: c.open_opt_text(row, "procedure_code")?,
            description: c.open_opt_text(row, "description")?,
            patient_id: row.uuid("patient_id")?,
            provider_id: row.opt_uuid("provider_id")?,
            health_data_id: row.opt_uuid("health_data_id")?,
            related_conditions: c.open_opt_json(row, "related_conditions")?,
            status: row.enumeration("status")?,
            priority: row.enumeration("priority")?,
            urgency_level: row.enumeration("urgency_level")?,
            requested_by_provider_id: row.uuid("requested_by_provider_id")?,
            reviewed_by_provider_id: row.opt_uuid("reviewed_by_provider_id")?,
            approved_by_provider_id: row.opt_uuid("approved_by_provider_id")?,
            requested_at: row.time("requested_at")?,
            reviewed_at: row.opt_time("reviewed_at")?,
            approved_at: row.opt_time("approved_at")?,
            valid_from: row.opt_time("valid_from")?,
            valid_until: row.opt_time("valid_until")?,
            justification: c.open_opt_text(row, "justification")?,
            clinical_notes: c.open_opt_text(row, "clinical_notes")?,
            tasy_reference_id: row.opt_text("tasy_reference_id")?,
            insurance_claim_id: row.opt_text("insurance_claim_id")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
            deleted_at: row.opt_time("deleted_at")?,
        })
    }
}

impl Updatable for Authorization {
    type Patch = AuthorizationPatch;

    fn apply(&mut self, p: AuthorizationPatch, now: DateTime<Utc>) -> Result<()> {
        if let Some(v) = p.authorization_type {
            self.authorization_type = v;
        }
        if let Some(v) = p.procedure_name {
            self.procedure_name = secret_text("procedure_name", &v, 200)?;
        }
        if let Some(v) = p.procedure_code {
            self.procedure_code = opt_secret_text("procedure_code", v.as_ref(), 50)?;
        }
        if let Some(v) = p.description {
            self.description = prose("description", v.as_ref(), 2000)?;
        }
        if let Some(v) = p.provider_id {
            self.provider_id = v;
        }
        if let Some(v) = p.health_data_id {
            self.health_data_id = v;
        }
        if let Some(v) = p.related_conditions {
            self.related_conditions = related_conditions(v)?;
        }
        if let Some(v) = p.priority {
            self.priority = v;
        }
        if let Some(v) = p.urgency_level {
            self.urgency_level = v;
        }
        if let Some(v) = p.valid_from {
            self.valid_from = v.map(truncate);
        }
        if let Some(v) = p.valid_until {
            self.valid_until = v.map(truncate);
        }
        if let Some(v) = p.justification {
            self.justification = prose("justification", v.as_ref(), 4000)?;
        }
        if let Some(v) = p.clinical_notes {
            self.clinical_notes = prose("clinical_notes", v.as_ref(), 10_000)?;
        }
        if let Some(v) = p.tasy_reference_id {
            self.tasy_reference_id = external_id("tasy_reference_id", v.as_deref())?;
        }
        if let Some(v) = p.insurance_claim_id {
            self.insurance_claim_id = external_id("insurance_claim_id", v.as_deref())?;
        }
        self.check()?;
        self.updated_at = now;
        Ok(())
    }
}

impl SoftDeletable for Authorization {}

/// The patient of the live authorization `id` inside `tx` (row locked when `lock`), if there is one.
async fn find_live_patient(tx: &mut Tx, organization: Uuid, id: Uuid, lock: bool) -> Result<Option<Uuid>> {
    let lock = if lock { table::lock_clause(tx) } else { "" };
    let sql = format!(
        "SELECT patient_id FROM authorizations \
         WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL{lock}"
    );
    tx.fetch_optional(Query::new(sql).bind(organization).bind(id)).await?.map(|r| r.uuid("patient_id")).transpose()
}

/// The patient of the live authorization `id` inside `tx` (row locked when `lock`), or `not_found`.
async fn live_patient(tx: &mut Tx, organization: Uuid, id: Uuid, lock: bool) -> Result<Uuid> {
    find_live_patient(tx, organization, id, lock).await?.ok_or_else(|| Error::not_found(Authorization::ENTITY))
}

/// The event of a change to an authorization's attachments.
fn attachments_changed(authorization_id: Uuid, patient: Uuid) -> Event {
    Event::on(AuditAction::Update, Authorization::TABLE)
        .entity(authorization_id)
        .records([authorization_id])
        .patient(Some(patient))
        .changed(["attachments"])
}

/// Bumps the authorization's `updated_at` after its attachments changed.
async fn touch(tx: &mut Tx, organization: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    tx.execute(
        Query::new("UPDATE authorizations SET updated_at = $1 WHERE organization_id = $2 AND id = $3")
            .bind(now)
            .bind(organization)
            .bind(id),
    )
    .await?;
    Ok(())
}

impl Authorizations<'_> {
    /// A page of the patient's authorizations, optionally in one status, newest first.
    pub async fn for_patient(
        &self,
        patient_id: Uuid,
        status: Option<AuthorizationStatus>,
        page: PageRequest,
    ) -> Result<Page<Authorization>> {
        let mut filter = String::from(" AND patient_id = $2");
        let mut args = vec![patient_id.into_value()];
        if let Some(s) = status {
            filter.push_str(" AND status = $3");
            args.push(s.as_str().into_value());
        }
        table::list_where(self.scope(), &filter, args, &page).await
    }

    /// Attaches a document to the authorization (idempotent). `not_found` when the authorization is not
    /// a live row of this organization; a validation error on `document_id` when the document is not a
    /// live document of this organization or belongs to another patient.
    pub async fn attach_document(&self, authorization_id: Uuid, document_id: Uuid) -> Result<()> {
        let scope = self.scope();
        check(
            scope,
            Authorization::TABLE,
            Action::Update,
            Some(authorization_id),
            None,
            scope.authorize(Resource::Authorization, Action::Update),
        )
        .await?;
        let org = scope.organization_id();
        let now = crate::time::now();
        let mut tx = AuditTx::begin(scope).await?;
        let patient = live_patient(&mut tx, org, authorization_id, true).await?;
        let document_patient = tx
            .fetch_optional(
                Query::new(
                    "SELECT patient_id FROM documents \
                     WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL",
                )
                .bind(org)
                .bind(document_id),
            )
            .await?
            .map(|r| r.uuid("patient_id"))
            .transpose()?;
        match document_patient {
            None => {
                return Err(Error::validation(
                    "document_id",
                    "refers to a row that does not exist in this organization",
                ))
            }
            Some(p) if p != patient => {
                return Err(Error::validation("document_id", "belongs to another patient than the authorization"))
            }
            Some(_) => {}
        }
        let inserted = tx
            .execute(
                Query::new(
                    "INSERT INTO authorization_attachments \
                     (organization_id, authorization_id, document_id, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (organization_id, authorization_id, document_id) DO NOTHING",
                )
                .bind(org)
                .bind(authorization_id)
                .bind(document_id)
                .bind(now),
            )
            .await?;
        if inserted > 0 {
            touch(&mut tx, org, authorization_id, now).await?;
            tx.record(attachments_changed(authorization_id, patient)).await?;
        } else {
            // Already attached: nothing written, but the check read the authorization and the
            // document (confirming they belong together), which is recorded as a read.
            tx.record(
                Event::on(AuditAction::Read, Authorization::TABLE)
                    .entity(authorization_id)
                    .records([document_id])
                    .patient(Some(patient)),
            )
            .await?;
        }
        tx.commit().await
    }

    /// Removes a document from the authorization. `not_found` when the authorization is not a live row
    /// of this organization or the document is not attached to it.
    pub async fn detach_document(&self, authorization_id: Uuid, document_id: Uuid) -> Result<()> {
        let scope = self.scope();
        check(
            scope,
            Authorization::TABLE,
            Action::Update,
            Some(authorization_id),
            None,
            scope.authorize(Resource::Authorization, Action::Update),
        )
        .await?;
        let org = scope.organization_id();
        let now = crate::time::now();
        let mut tx = AuditTx::begin(scope).await?;
        let patient = live_patient(&mut tx, org, authorization_id, true).await?;
        let removed = tx
            .execute(
                Query::new(
                    "DELETE FROM authorization_attachments \
                     WHERE organization_id = $1 AND authorization_id = $2 AND document_id = $3",
                )
                .bind(org)
                .bind(authorization_id)
                .bind(document_id),
            )
            .await?;
        if removed == 0 {
            return Err(Error::not_found("authorization_attachment"));
        }
        touch(&mut tx, org, authorization_id, now).await?;
        tx.record(attachments_changed(authorization_id, patient)).await?;
        tx.commit().await
    }

    /// Ids of the live documents attached to the authorization, in attachment order; `not_found` when
    /// the authorization is not a live row of this organization.
    pub async fn attachments(&self, authorization_id: Uuid) -> Result<Vec<Uuid>> {
        let scope = self.scope();
        let org = scope.organization_id();
        check(
            scope,
            Authorization::TABLE,
            Action::Read,
            Some(authorization_id),
            None,
            scope.authorize(Resource::Authorization, Action::Read),
        )
        .await?;
        let mut tx = AuditTx::begin(scope).await?;
        let Some(patient) = find_live_patient(&mut tx, org, authorization_id, false).await? else {
            // Like `get`: a read naming a missing authorization is recorded as NOT_FOUND.
            tx.record(read_event(Authorization::TABLE, &[], Some(authorization_id))?).await?;
            tx.commit().await?;
            return Err(Error::not_found(Authorization::ENTITY));
        };
        if let Err(refusal) = scope.authorize_patient(Resource::Authorization, Action::Read, patient) {
            // Another patient's authorization: recorded as ACCESS_DENIED (in a transaction of its own,
            // so this one is dropped first), answered as not_found so as not to reveal that it exists.
            drop(tx);
            let recorded = check(
                scope,
                Authorization::TABLE,
                Action::Read,
                Some(authorization_id),
                Some(patient),
                Err::<(), _>(refusal),
            )
            .await;
            return match recorded {
                Err(Error::PermissionDenied(_)) | Ok(()) => Err(Error::not_found(Authorization::ENTITY)),
                Err(e) => Err(e),
            };
        }
        let rows = tx
            .fetch_all(
                Query::new(
                    "SELECT a.document_id AS document_id FROM authorization_attachments a \
                     JOIN documents d ON d.organization_id = a.organization_id AND d.id = a.document_id \
                     WHERE a.organization_id = $1 AND a.authorization_id = $2 AND d.deleted_at IS NULL \
                     ORDER BY a.created_at, a.document_id",
                )
                .bind(org)
                .bind(authorization_id),
            )
            .await?;
        let ids = rows.iter().map(|r| r.uuid("document_id")).collect::<Result<Vec<_>>>()?;
        tx.record(
            Event::on(AuditAction::Read, Authorization::TABLE)
                .entity(authorization_id)
                .records(ids.iter().copied())
                .patient(Some(patient)),
        )
        .await?;
        tx.commit().await?;
        Ok(ids)
    }
}
