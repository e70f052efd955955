//! Authorizations: the generic operations, a patient's authorizations by status, document
//! attachments, and the workflow's state machine.
//!
//! **Workflow.** `PENDING -> UNDER_REVIEW -> APPROVED | DENIED`, `PENDING | UNDER_REVIEW -> CANCELLED`,
//! `APPROVED -> EXPIRED` ([`AuthorizationStatus::can_become`]); only [`Authorizations::start_review`],
//! [`Authorizations::approve`], [`Authorizations::deny`], [`Authorizations::cancel`] and
//! [`Authorizations::expire_due`] move the status. Each is one transaction: the row is locked, its
//! status checked (any other move is a `conflict` on `status` that writes nothing), the reviewer or
//! approver checked to be a live, active provider of the same organization (else a validation error
//! naming the parameter), the row updated, one `authorization_transitions` row written (who, when,
//! from, to, and the encrypted reason of a denial or cancellation), and one `UPDATE` audit event
//! recorded. A provider acts only as themself: a provider scope naming another provider as reviewer or
//! approver is refused (`permission_denied`, recorded as `ACCESS_DENIED`). The generic `update` cannot
//! touch the status or the review fields, and once an authorization is decided its content is frozen
//! (only the external references may change).
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

use chrono::{DateTime, Datelike, Utc};
use uuid::Uuid;

use super::{patch, rows, Model, Page, PageRequest, Repo, SoftDeletable, Updatable};
use crate::access::{Action, Resource};
use crate::db::{Filter, IntoValue, Query, QueryBuilder, Row, RowLock, Tx, TxMode, Value};
use crate::error::{Error, Result};
use crate::kernel::event::read_event;
use crate::kernel::outbox::OutboxOperation;
use crate::kernel::Record;
use crate::kernel::Sealed;
use crate::kernel::{check, denied, enqueue_in, AuditTx, Event};
use crate::model::{
    AuditAction, Authorization, AuthorizationPatch, AuthorizationStatus, AuthorizationTransition, EntityType,
    NewAuthorization, Priority, UrgencyLevel,
};
use crate::scope::{Role, Scope};
use crate::time::truncate;
use crate::validate;
use austa_crypto::{KeySet, Sensitive};

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

impl Sealed for Authorization {}

impl Model for Authorization {
    type New = NewAuthorization;

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
}

impl Updatable for Authorization {
    type Patch = AuthorizationPatch;

    fn apply(&mut self, p: AuthorizationPatch, now: DateTime<Utc>) -> Result<()> {
        if !self.status.is_open() && touches_decided_content(&p) {
            // What was approved or denied stays what was approved or denied.
            return Err(Error::Conflict { field: "status".into() });
        }
        patch!(self.authorization_type, p.authorization_type);
        patch!(self.procedure_name, p.procedure_name, |v| secret_text("procedure_name", &v, 200)?);
        patch!(self.procedure_code, p.procedure_code, |v| opt_secret_text("procedure_code", v.as_ref(), 50)?);
        patch!(self.description, p.description, |v| prose("description", v.as_ref(), 2000)?);
        patch!(self.provider_id, p.provider_id);
        patch!(self.health_data_id, p.health_data_id);
        patch!(self.related_conditions, p.related_conditions, |v| related_conditions(v)?);
        patch!(self.priority, p.priority);
        patch!(self.urgency_level, p.urgency_level);
        patch!(self.valid_from, p.valid_from, |v| v.map(truncate));
        patch!(self.valid_until, p.valid_until, |v| v.map(truncate));
        patch!(self.justification, p.justification, |v| prose("justification", v.as_ref(), 4000)?);
        patch!(self.clinical_notes, p.clinical_notes, |v| prose("clinical_notes", v.as_ref(), 10_000)?);
        patch!(self.tasy_reference_id, p.tasy_reference_id, |v| external_id("tasy_reference_id", v.as_deref())?);
        patch!(self.insurance_claim_id, p.insurance_claim_id, |v| external_id("insurance_claim_id", v.as_deref())?);
        self.check()?;
        self.updated_at = now;
        Ok(())
    }
}

impl SoftDeletable for Authorization {}

/// Whether a patch sets anything but the external references, which alone may change once an
/// authorization is decided.
fn touches_decided_content(p: &AuthorizationPatch) -> bool {
    p.authorization_type.is_some()
        || p.procedure_name.is_some()
        || p.procedure_code.is_some()
        || p.description.is_some()
        || p.provider_id.is_some()
        || p.health_data_id.is_some()
        || p.related_conditions.is_some()
        || p.priority.is_some()
        || p.urgency_level.is_some()
        || p.valid_from.is_some()
        || p.valid_until.is_some()
        || p.justification.is_some()
        || p.clinical_notes.is_some()
}

/// The patient of the live authorization `id` inside `tx` (row locked when `lock`), if there is one.
async fn find_live_patient(tx: &mut Tx, organization: Uuid, id: Uuid, lock: bool) -> Result<Option<Uuid>> {
    let lock = if lock { tx.lock(RowLock::Update) } else { "" };
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
        let mut filter = Filter::new().and_eq("patient_id", patient_id);
        if let Some(s) = status {
            filter = filter.and_eq("status", s.as_str());
        }
        rows::list_where(self.scope(), filter, &page).await
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
        let now = self.scope().now();
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
        let now = self.scope().now();
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
        let mut tx = AuditTx::begin_read(scope).await?;
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

// ---------------------------------------------------------------------------------------------------
// Workflow

/// The table of workflow transitions, one row per status change.
const TRANSITIONS: &str = "authorization_transitions";

/// Longest denial or cancellation reason, in characters.
const MAX_REASON: usize = 2000;

/// Most expired authorizations written per statement by `expire_due` (bounded bind lists).
const EXPIRE_BATCH: usize = 500;

/// One move of the state machine, with what it needs; validated before any I/O.
enum Step {
    StartReview { reviewer: Uuid },
    Approve { approver: Uuid, valid_from: DateTime<Utc>, valid_until: DateTime<Utc> },
    Deny { reviewer: Uuid, reason: Sensitive<String> },
    Cancel { reason: Sensitive<String> },
}

impl Step {
    /// The status the step moves to.
    fn target(&self) -> AuthorizationStatus {
        match self {
            Step::StartReview { .. } => AuthorizationStatus::UnderReview,
            Step::Approve { .. } => AuthorizationStatus::Approved,
            Step::Deny { .. } => AuthorizationStatus::Denied,
            Step::Cancel { .. } => AuthorizationStatus::Cancelled,
        }
    }

    /// The provider the step names, and the parameter naming it (for errors).
    fn provider(&self) -> Option<(Uuid, &'static str)> {
        match self {
            Step::StartReview { reviewer } | Step::Deny { reviewer, .. } => Some((*reviewer, "reviewer_provider_id")),
            Step::Approve { approver, .. } => Some((*approver, "approver_provider_id")),
            Step::Cancel { .. } => None,
        }
    }

    /// The written reason of a denial or cancellation.
    fn reason(&self) -> Option<&Sensitive<String>> {
        match self {
            Step::Deny { reason, .. } | Step::Cancel { reason } => Some(reason),
            Step::StartReview { .. } | Step::Approve { .. } => None,
        }
    }

    /// The step with its input checked and normalized (times truncated and in range, validity
    /// ordered, reasons trimmed and bounded), before any I/O.
    fn checked(self) -> Result<Step> {
        Ok(match self {
            Step::Approve { approver, valid_from, valid_until } => {
                let (valid_from, valid_until) = (truncate(valid_from), truncate(valid_until));
                within_years("valid_from", &valid_from)?;
                within_years("valid_until", &valid_until)?;
                validate::ordered("valid_until", Some(&valid_from), Some(&valid_until))?;
                Step::Approve { approver, valid_from, valid_until }
            }
            Step::Deny { reviewer, reason } => Step::Deny { reviewer, reason: reason_text(&reason)? },
            Step::Cancel { reason } => Step::Cancel { reason: reason_text(&reason)? },
            other => other,
        })
    }

    /// The columns the step writes into the locked row `row` at `now`, and the names of the fields
    /// that change (for the audit event).
    fn assignments(&self, row: &Row, now: DateTime<Utc>) -> Result<(Assignments, Vec<&'static str>)> {
        let mut sets: Vec<(&'static str, Value)> = vec![("status", self.target().as_str().into_value())];
        let mut changed = vec!["status"];
        match self {
            Step::StartReview { reviewer } => {
                sets.push(("reviewed_by_provider_id", reviewer.into_value()));
                sets.push(("reviewed_at", now.into_value()));
                changed.extend(["reviewed_by_provider_id", "reviewed_at"]);
            }
            Step::Approve { approver, valid_from, valid_until } => {
                sets.push(("approved_by_provider_id", approver.into_value()));
                sets.push(("approved_at", now.into_value()));
                sets.push(("valid_from", valid_from.into_value()));
                sets.push(("valid_until", valid_until.into_value()));
                changed.extend(["approved_by_provider_id", "approved_at"]);
                if row.opt_time("valid_from")? != Some(*valid_from) {
                    changed.push("valid_from");
                }
                if row.opt_time("valid_until")? != Some(*valid_until) {
                    changed.push("valid_until");
                }
            }
            Step::Deny { .. } | Step::Cancel { .. } => {}
        }
        changed.push("transitions");
        sets.push(("updated_at", now.into_value()));
        Ok((sets, changed))
    }

    /// Applies the step to the decoded model, as the UPDATE did to its row.
    fn apply_to(self, model: &mut Authorization, now: DateTime<Utc>) {
        model.status = self.target();
        model.updated_at = now;
        match self {
            Step::StartReview { reviewer } => {
                model.reviewed_by_provider_id = Some(reviewer);
                model.reviewed_at = Some(now);
            }
            Step::Approve { approver, valid_from, valid_until } => {
                model.approved_by_provider_id = Some(approver);
                model.approved_at = Some(now);
                model.valid_from = Some(valid_from);
                model.valid_until = Some(valid_until);
            }
            Step::Deny { .. } | Step::Cancel { .. } => {}
        }
    }
}

/// Columns and the values an UPDATE writes into them.
type Assignments = Vec<(&'static str, Value)>;

/// A denial or cancellation reason: CRLF normalized to LF, trimmed, 1 to [`MAX_REASON`] characters.
fn reason_text(reason: &Sensitive<String>) -> Result<Sensitive<String>> {
    prose("reason", Some(reason), MAX_REASON)?.ok_or_else(|| Error::validation("reason", "is required"))
}

/// Timestamps must fall in years 1900 to 9999 (see `kernel::rows::check_times`).
fn within_years(field: &str, t: &DateTime<Utc>) -> Result<()> {
    if (1900..=9999).contains(&t.year()) {
        Ok(())
    } else {
        Err(Error::validation(field, "must be between the years 1900 and 9999"))
    }
}

/// A provider scope may name only itself as reviewer or approver: a decision is signed by whoever
/// makes it. Integrations (`tasy-sync`) and the platform may name any provider of the organization.
fn acting_as(scope: &Scope, provider: Uuid) -> Result<()> {
    let actor = scope.actor();
    if actor.role() == Role::Provider && actor.id() != Some(provider) {
        return Err(Error::PermissionDenied("a provider may review, approve or deny only as themself".into()));
    }
    Ok(())
}

/// The provider id of a provider scope's actor.
fn acting_provider(scope: &Scope) -> Option<Uuid> {
    let actor = scope.actor();
    if actor.role() == Role::Provider {
        actor.id()
    } else {
        None
    }
}

/// A system actor's name as stored: without control characters, trimmed, at most 100 characters.
fn actor_name(scope: &Scope) -> Option<String> {
    let cleaned: String = scope.actor().name()?.chars().filter(|c| !c.is_control()).collect();
    let cleaned: String = cleaned.trim().chars().take(100).collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_string())
}

/// Checks, inside `tx`, that `provider` is a live, active provider of the organization, holding a share
/// lock on PostgreSQL so that it cannot be deactivated or deleted before the transition commits (SQLite
/// writers are serialized anyway). A validation error on `field` otherwise.
async fn check_provider(tx: &mut Tx, organization: Uuid, provider: Uuid, field: &str) -> Result<()> {
    let share = tx.lock(RowLock::Share);
    let row = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT is_active FROM providers WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL{share}"
            ))
            .bind(organization)
            .bind(provider),
        )
        .await?;
    match row {
        None => Err(Error::validation(field, "refers to no live provider of this organization")),
        Some(r) if !r.bool("is_active")? => Err(Error::validation(field, "refers to an inactive provider")),
        Some(_) => Ok(()),
    }
}

/// One `authorization_transitions` row, ready to bind.
struct TransitionRow {
    id: Uuid,
    authorization: Uuid,
    patient: Uuid,
    from: AuthorizationStatus,
    to: AuthorizationStatus,
    provider: Option<Uuid>,
    reason: Value,
    at: DateTime<Utc>,
}

/// The multi-row INSERT of `rows` (at least one), with the scope's actor as who.
fn insert_transitions(scope: &Scope, rows: &[TransitionRow]) -> Query {
    let mut q = QueryBuilder::new(format!(
        "INSERT INTO {TRANSITIONS} (organization_id, id, authorization_id, patient_id, from_status, to_status, \
         provider_id, actor_kind, actor_name, reason, occurred_at) VALUES "
    ));
    let (org, kind, name) = (scope.organization_id(), scope.actor().role().as_str(), actor_name(scope));
    for (i, t) in rows.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push_tuple([
            org.into_value(),
            t.id.into_value(),
            t.authorization.into_value(),
            t.patient.into_value(),
            t.from.as_str().into_value(),
            t.to.as_str().into_value(),
            t.provider.into_value(),
            kind.into_value(),
            name.clone().into_value(),
            t.reason.clone().into_value(),
            t.at.into_value(),
        ]);
    }
    q.build()
}

/// Decodes an `authorization_transitions` row, decrypting its reason with the patient's key.
fn decode_transition(keys: &KeySet, row: &Row) -> Result<AuthorizationTransition> {
    let id = row.uuid("id")?;
    let patient_id = row.uuid("patient_id")?;
    let crypto = keys.row(TRANSITIONS, id, Some(patient_id))?;
    let kind = row.text("actor_kind")?;
    let actor_kind = [Role::Patient, Role::Provider, Role::Admin, Role::System]
        .into_iter()
        .find(|r| r.as_str() == kind)
        .ok_or_else(|| Error::CorruptData(format!("{TRANSITIONS}.actor_kind: unknown value")))?;
    Ok(AuthorizationTransition {
        id,
        organization_id: row.uuid("organization_id")?,
        authorization_id: row.uuid("authorization_id")?,
        patient_id,
        from_status: row.enumeration("from_status")?,
        to_status: row.enumeration("to_status")?,
        provider_id: row.opt_uuid("provider_id")?,
        actor_kind,
        actor_name: row.opt_text("actor_name")?,
        reason: crypto.open_opt_text(row, "reason")?,
        occurred_at: row.time("occurred_at")?,
    })
}

impl Authorizations<'_> {
    /// Takes a `PENDING` authorization into review: `UNDER_REVIEW`, with `reviewed_by_provider_id` and
    /// `reviewed_at` (now) set. Returns the updated authorization.
    ///
    /// Errors, each writing nothing: `not_found` (no live authorization `id` in this organization),
    /// `conflict` on `status` (not `PENDING`), `validation` on `reviewer_provider_id` (not a live,
    /// active provider of this organization), `permission_denied` (the actor may not update
    /// authorizations, or is a provider naming another provider).
    pub async fn start_review(&self, id: Uuid, reviewer_provider_id: Uuid) -> Result<Authorization> {
        self.transition(id, Step::StartReview { reviewer: reviewer_provider_id }).await
    }

    /// Approves an authorization `UNDER_REVIEW`: `APPROVED`, with `approved_by_provider_id`,
    /// `approved_at` (now) and the approved validity window `valid_from..=valid_until` (replacing any
    /// requested window). The window may lie in the past (a retroactive approval); `expire_due` expires
    /// the authorization once `valid_until` has passed. Returns the updated authorization.
    ///
    /// Errors as [`Authorizations::start_review`] (on `approver_provider_id`), plus `validation` on
    /// `valid_until` (before `valid_from`) or on either bound (outside the years 1900 to 9999).
    pub async fn approve(
        &self,
        id: Uuid,
        approver_provider_id: Uuid,
        valid_from: DateTime<Utc>,
        valid_until: DateTime<Utc>,
    ) -> Result<Authorization> {
        self.transition(id, Step::Approve { approver: approver_provider_id, valid_from, valid_until }).await
    }

    /// Denies an authorization `UNDER_REVIEW`: `DENIED`. Who denied it, when and why (the reason, 1 to
    /// 2000 characters, stored encrypted with the patient's key) are kept in its
    /// [`history`](Authorizations::history); `reviewed_by_provider_id` keeps the provider who took it
    /// into review. Returns the updated authorization.
    ///
    /// Errors as [`Authorizations::start_review`], plus `validation` on `reason`.
    pub async fn deny(
        &self,
        id: Uuid,
        reviewer_provider_id: Uuid,
        reason: impl Into<Sensitive<String>>,
    ) -> Result<Authorization> {
        self.transition(id, Step::Deny { reviewer: reviewer_provider_id, reason: reason.into() }).await
    }

    /// Cancels an authorization that is `PENDING` or `UNDER_REVIEW`: `CANCELLED`. The reason (1 to 2000
    /// characters, encrypted), the time and the actor (the provider, for a provider scope; the
    /// integration's name otherwise) are kept in its [`history`](Authorizations::history). Returns the
    /// updated authorization.
    ///
    /// Errors, each writing nothing: `not_found`, `conflict` on `status` (already decided),
    /// `validation` on `reason`, `permission_denied`.
    pub async fn cancel(&self, id: Uuid, reason: impl Into<Sensitive<String>>) -> Result<Authorization> {
        self.transition(id, Step::Cancel { reason: reason.into() }).await
    }

    /// Expires, in one transaction, every live `APPROVED` authorization of the organization whose
    /// `valid_until` is before `now`; returns how many. Each gets its `EXPIRED` transition; one audit
    /// event lists them all (and their patients). `now` may not be later than the current time (a
    /// validation error on `now`), so that nothing is expired before its validity has really ended.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Result<u64> {
        let scope = self.scope();
        let access = check(
            scope,
            Authorization::TABLE,
            Action::Update,
            None,
            None,
            scope.row_filter(Authorization::TABLE, Action::Update),
        )
        .await?;
        let cutoff = truncate(now);
        within_years("now", &cutoff)?;
        let at = self.scope().now();
        if cutoff > at {
            return Err(Error::validation("now", "must not be in the future"));
        }
        let org = scope.organization_id();
        let mut tx = AuditTx::begin(scope).await?;
        let lock = tx.lock(RowLock::Update);
        let rows = tx
            .fetch_all(
                Query::new(format!(
                    "SELECT id, patient_id FROM authorizations \
                     WHERE organization_id = $1 AND status = 'APPROVED' AND deleted_at IS NULL \
                     AND valid_until < $2{access} ORDER BY id{lock}"
                ))
                .bind(org)
                .bind(cutoff),
            )
            .await?;
        let due = rows.iter().map(|r| Ok((r.uuid("id")?, r.uuid("patient_id")?))).collect::<Result<Vec<_>>>()?;
        for chunk in due.chunks(EXPIRE_BATCH) {
            let mut update = QueryBuilder::new("UPDATE authorizations SET status = 'EXPIRED', updated_at = ");
            update.push_bind(at).push(" WHERE organization_id = ").push_bind(org);
            update.push(" AND status = 'APPROVED' AND id IN (").push_binds(chunk.iter().map(|(id, _)| *id)).push(")");
            if tx.execute(update.build()).await? != chunk.len() as u64 {
                // The rows are locked: anything else means they changed under us; write nothing.
                return Err(Error::Conflict { field: "status".into() });
            }
            let history: Vec<TransitionRow> = chunk
                .iter()
                .map(|&(authorization, patient)| TransitionRow {
                    id: Uuid::now_v7(),
                    authorization,
                    patient,
                    from: AuthorizationStatus::Approved,
                    to: AuthorizationStatus::Expired,
                    provider: None,
                    reason: Value::Bytes(None),
                    at,
                })
                .collect();
            tx.execute(insert_transitions(scope, &history)).await?;
            for (id, _) in chunk {
                crate::kernel::outbox::enqueue_in(
                    &mut tx,
                    org,
                    crate::model::EntityType::Authorization,
                    *id,
                    OutboxOperation::Upsert,
                )
                .await?;
            }
        }
        let mut patients: Vec<Uuid> = due.iter().map(|(_, p)| *p).collect();
        patients.sort_unstable();
        patients.dedup();
        tx.record(
            Event::on(AuditAction::Update, Authorization::TABLE)
                .records(due.iter().map(|(id, _)| *id))
                .count(due.len() as i64)
                .patients(patients)
                .changed(["status", "transitions"]),
        )
        .await?;
        tx.commit().await?;
        Ok(due.len() as u64)
    }

    /// The workflow history of a live authorization: every transition, oldest first, with its reason
    /// decrypted. Readable by whoever may read the authorization (a patient their own); `not_found`
    /// otherwise. Recorded as one `READ` of the authorization.
    pub async fn history(&self, authorization_id: Uuid) -> Result<Vec<AuthorizationTransition>> {
        let scope = self.scope();
        let org = scope.organization_id();
        let access = check(
            scope,
            Authorization::TABLE,
            Action::Read,
            Some(authorization_id),
            None,
            scope.row_filter(Authorization::TABLE, Action::Read),
        )
        .await?;
        let (mut keys, patient) = self.row_keys(authorization_id, &access, Action::Read).await?;
        let mut tx = AuditTx::begin(scope).await?;
        let live = tx
            .fetch_optional(
                Query::new(format!(
                    "SELECT patient_id FROM authorizations \
                     WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL{access}"
                ))
                .bind(org)
                .bind(authorization_id),
            )
            .await?;
        if live.map(|r| r.uuid("patient_id")).transpose()? != Some(patient) {
            drop(tx);
            return Err(rows::missing::<Authorization>(scope, Action::Read, authorization_id).await);
        }
        let rows = tx
            .fetch_all(
                Query::new(format!(
                    "SELECT * FROM {TRANSITIONS} WHERE organization_id = $1 AND authorization_id = $2 \
                     ORDER BY occurred_at, id"
                ))
                .bind(org)
                .bind(authorization_id),
            )
            .await?;
        tx.record(
            Event::on(AuditAction::Read, Authorization::TABLE)
                .entity(authorization_id)
                .records([authorization_id])
                .patient(Some(patient)),
        )
        .await?;
        tx.commit().await?;
        let decoded: Result<Vec<_>> = rows.iter().map(|r| decode_transition(&keys, r)).collect();
        match decoded {
            Err(e) if rows::is_unknown_key(&e) => {
                // A key version created by another process's rotation: reload once.
                keys = scope.db().refresh_key_set(&keys).await?.ok_or(e)?;
                rows.iter().map(|r| decode_transition(&keys, r)).collect()
            }
            decoded => decoded,
        }
    }

    /// The patient of the live authorization `id` (within `access`), read outside any audited
    /// transaction, and the keys to encrypt and decrypt their rows; `not_found` (recorded) otherwise.
    async fn row_keys(&self, id: Uuid, access: &str, action: Action) -> Result<(KeySet, Uuid)> {
        let scope = self.scope();
        let org = scope.organization_id();
        let mut tx = scope.db().begin(Some(org), TxMode::Read).await?;
        let row = tx
            .fetch_optional(
                Query::new(format!(
                    "SELECT patient_id FROM authorizations \
                     WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL{access}"
                ))
                .bind(org)
                .bind(id),
            )
            .await?;
        tx.commit().await?;
        let Some(row) = row else {
            return Err(rows::missing::<Authorization>(scope, action, id).await);
        };
        let patient = row.uuid("patient_id")?;
        Ok((scope.db().key_set(org, Some(patient)).await?, patient))
    }

    /// Runs one step of the state machine on authorization `id` (see the module documentation).
    async fn transition(&self, id: Uuid, step: Step) -> Result<Authorization> {
        let scope = self.scope();
        let org = scope.organization_id();
        let named = step.provider();
        // Who may: the access matrix, and a provider only as themself. Refusals are recorded.
        let allowed = scope.row_filter(Authorization::TABLE, Action::Update).and_then(|filter| {
            if let Some((provider, _)) = named {
                acting_as(scope, provider)?;
            }
            Ok(filter)
        });
        let access = check(scope, Authorization::TABLE, Action::Update, Some(id), None, allowed).await?;
        let step = step.checked()?;
        let (keys, patient) = self.row_keys(id, &access, Action::Update).await?;
        keys.require_patient(patient, "patient_id")?;
        let transition_id = Uuid::now_v7();
        let reason = keys.row(TRANSITIONS, transition_id, Some(patient))?.opt_text("reason", step.reason())?;

        let mut tx = AuditTx::begin(scope).await?;
        let Some(row) = self.lock_row(&mut tx, id, patient, &access).await? else {
            drop(tx);
            return Err(rows::missing::<Authorization>(scope, Action::Update, id).await);
        };
        let (from, to, now) = (row.enumeration::<AuthorizationStatus>("status")?, step.target(), scope.now());
        if !from.can_become(to) {
            return Err(Error::Conflict { field: "status".into() });
        }
        if now < row.time("requested_at")? {
            // The database requires review and approval times not before the request.
            return Err(Error::Conflict { field: "requested_at".into() });
        }
        let provider = named.map(|(p, _)| p).or_else(|| acting_provider(scope));
        if let Some(p) = provider {
            if let Err(e) = check_provider(&mut tx, org, p, named.map_or("provider_id", |(_, f)| f)).await {
                if acting_provider(scope) != Some(p) || !matches!(e, Error::Validation { .. }) {
                    return Err(e);
                }
                // The scope's own provider is not a live, active provider here: a refusal, recorded.
                drop(tx);
                let refusal = Error::PermissionDenied("the acting provider is not an active provider here".into());
                return Err(denied(scope, Authorization::TABLE, Action::Update, Some(id), Some(patient), refusal).await);
            }
        }
        let (sets, changed) = step.assignments(&row, now)?;
        let mut update = QueryBuilder::new("UPDATE authorizations SET ");
        update.push_assignments(sets).push(" WHERE organization_id = ").push_bind(org);
        update.push(" AND id = ").push_bind(id).push(" AND status = ").push_bind(from.as_str());
        update.push(" AND deleted_at IS NULL");
        if tx.execute(update.build()).await? != 1 {
            // The row is locked: anything else means it changed under us; write nothing.
            return Err(Error::Conflict { field: "status".into() });
        }
        let history =
            TransitionRow { id: transition_id, authorization: id, patient, from, to, provider, reason, at: now };
        tx.execute(insert_transitions(scope, std::slice::from_ref(&history))).await?;
        enqueue_in(&mut tx, org, EntityType::Authorization, id, OutboxOperation::Upsert).await?;
        let event = Event::on(AuditAction::Update, Authorization::TABLE).entity(id).records([id]);
        tx.record(event.patient(Some(patient)).changed(changed)).await?;
        tx.commit().await?;

        let mut model: Authorization = rows::decode_rows(scope, std::slice::from_ref(&row))
            .await?
            .pop()
            .ok_or_else(|| Error::not_found(Authorization::ENTITY))?;
        step.apply_to(&mut model, now);
        Ok(model)
    }

    /// The live authorization `id` of `patient` within `access`, locked in `tx`; `None` when it is
    /// not there (or belongs to another patient than the one its keys were loaded for).
    async fn lock_row(&self, tx: &mut AuditTx<'_>, id: Uuid, patient: Uuid, access: &str) -> Result<Option<Row>> {
        let lock = tx.lock(RowLock::Update);
        let sql = format!(
            "SELECT * FROM authorizations WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL{access}{lock}"
        );
        let row = tx.fetch_optional(Query::new(sql).bind(self.scope().organization_id()).bind(id)).await?;
        match row {
            Some(row) if row.uuid("patient_id")? == patient => Ok(Some(row)),
            _ => Ok(None),
        }
    }
}
