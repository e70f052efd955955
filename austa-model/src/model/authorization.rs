//! Authorizations (the reference's `Authorization`): requests for an insurer's or the organization's
//! approval of a procedure, medication, exam, referral or hospitalization.
//!
//! Design decisions:
//! * The procedure (name, code), description, justification, clinical notes and related conditions
//!   are encrypted: together they disclose the patient's diagnosis.
//! * Every provider reference (`requested_by_provider_id`, ...) is a real, same-organization foreign
//!   key instead of the original free string.
//! * The workflow is not freely editable: a new authorization is always `PENDING`, and neither
//!   [`NewAuthorization`] nor [`AuthorizationPatch`] carries `status` or the review/approval fields
//!   (`reviewed_by_provider_id`, `approved_by_provider_id`, `reviewed_at`, `approved_at`). They change
//!   only through the state transitions of the repository (`start_review`, `approve`, `deny`, `cancel`,
//!   `expire_due`), so that an approval always has its approver. The state machine is
//!   [`AuthorizationStatus::can_become`]: `PENDING -> UNDER_REVIEW -> APPROVED | DENIED`,
//!   `PENDING | UNDER_REVIEW -> CANCELLED`, `APPROVED -> EXPIRED`.
//! * Once decided (any status but `PENDING` and `UNDER_REVIEW`), an authorization's content is frozen:
//!   what was approved or denied stays what was approved or denied. `update` may then change only the
//!   external references (`tasy_reference_id`, `insurance_claim_id`).
//! * Every transition is kept as an [`AuthorizationTransition`] (table `authorization_transitions`): who
//!   (the provider, and the actor's kind and integration name), when, from which status to which, and
//!   why (the denial or cancellation reason, encrypted with the patient's key). The row itself keeps only
//!   the current state, so the history is never overwritten by a later step.
//! * Attachments are real references to documents (table `authorization_attachments`), managed with
//!   `attach_document`, `detach_document` and `attachments` on the repository.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::record::Record;
use uuid::Uuid;

use super::enums::{AuthorizationStatus, AuthorizationType, Priority, UrgencyLevel};
use austa_crypto::Sensitive;
use austa_error::Result;

use crate::identity::Role;
use crate::validate;

/// An authorization request for one patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(table = "authorizations", soft_delete, owner = "patient_id")]
pub struct Authorization {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
    #[record(organization)]
    pub organization_id: Uuid,
    /// What is being authorized (stored in column `type`).
    #[record(column = "type")]
    pub authorization_type: AuthorizationType,
    /// Name of the procedure (encrypted).
    pub procedure_name: Sensitive<String>,
    /// Procedure code, e.g. TUSS (encrypted).
    pub procedure_code: Option<Sensitive<String>>,
    /// Description (encrypted).
    pub description: Option<Sensitive<String>>,
    /// The patient.
    pub patient_id: Uuid,
    /// The provider who will perform it.
    pub provider_id: Option<Uuid>,
    /// The health record it is based on.
    pub health_data_id: Option<Uuid>,
    /// Related conditions, e.g. ICD-10 codes (encrypted).
    pub related_conditions: Option<Sensitive<Vec<String>>>,
    /// Workflow state; `PENDING` on creation, changed only by the repository's transitions.
    pub status: AuthorizationStatus,
    /// Priority.
    pub priority: Priority,
    /// Clinical urgency.
    pub urgency_level: UrgencyLevel,
    /// The provider who requested it.
    pub requested_by_provider_id: Uuid,
    /// The provider who took it into review (`start_review`).
    pub reviewed_by_provider_id: Option<Uuid>,
    /// The provider who approved it (`approve`).
    pub approved_by_provider_id: Option<Uuid>,
    /// Request time.
    pub requested_at: DateTime<Utc>,
    /// When the review started.
    pub reviewed_at: Option<DateTime<Utc>>,
    /// Approval time.
    pub approved_at: Option<DateTime<Utc>>,
    /// Start of validity: the requested window until approval, then the approved one.
    pub valid_from: Option<DateTime<Utc>>,
    /// End of validity (not before `valid_from`); an approved authorization expires once it has passed.
    pub valid_until: Option<DateTime<Utc>>,
    /// Justification (encrypted).
    pub justification: Option<Sensitive<String>>,
    /// Clinical notes (encrypted).
    pub clinical_notes: Option<Sensitive<String>>,
    /// Reference in the Tasy ERP.
    pub tasy_reference_id: Option<String>,
    /// Insurance claim id.
    pub insurance_claim_id: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Soft-deletion time.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Input of `scope.authorizations().create(...)`. Start from [`NewAuthorization::new`]. The status is
/// always `PENDING`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAuthorization {
    /// What is being authorized.
    pub authorization_type: AuthorizationType,
    /// Procedure name, 1 to 200 characters.
    pub procedure_name: Sensitive<String>,
    /// Procedure code, 1 to 50 characters.
    pub procedure_code: Option<Sensitive<String>>,
    /// Description, 1 to 2000 characters.
    pub description: Option<Sensitive<String>>,
    /// The patient (must exist in the scope's organization).
    pub patient_id: Uuid,
    /// The performing provider (same organization).
    pub provider_id: Option<Uuid>,
    /// The underlying health record (same organization).
    pub health_data_id: Option<Uuid>,
    /// Related conditions (each 1 to 100 characters, at most 100).
    pub related_conditions: Option<Sensitive<Vec<String>>>,
    /// Priority; default `NORMAL`.
    pub priority: Option<Priority>,
    /// Urgency; default `LOW`.
    pub urgency_level: Option<UrgencyLevel>,
    /// The requesting provider (same organization).
    pub requested_by_provider_id: Uuid,
    /// Request time; default now.
    pub requested_at: Option<DateTime<Utc>>,
    /// Start of validity.
    pub valid_from: Option<DateTime<Utc>>,
    /// End of validity; not before `valid_from`.
    pub valid_until: Option<DateTime<Utc>>,
    /// Justification, 1 to 4000 characters.
    pub justification: Option<Sensitive<String>>,
    /// Clinical notes, 1 to 10000 characters.
    pub clinical_notes: Option<Sensitive<String>>,
    /// Tasy reference, 1 to 100 characters.
    pub tasy_reference_id: Option<String>,
    /// Insurance claim id, 1 to 100 characters.
    pub insurance_claim_id: Option<String>,
}

impl NewAuthorization {
    /// An authorization with the required fields, every other field at its default.
    pub fn new(
        authorization_type: AuthorizationType,
        procedure_name: impl Into<Sensitive<String>>,
        patient_id: Uuid,
        requested_by_provider_id: Uuid,
    ) -> Self {
        Self {
            authorization_type,
            procedure_name: procedure_name.into(),
            procedure_code: None,
            description: None,
            patient_id,
            provider_id: None,
            health_data_id: None,
            related_conditions: None,
            priority: None,
            urgency_level: None,
            requested_by_provider_id,
            requested_at: None,
            valid_from: None,
            valid_until: None,
            justification: None,
            clinical_notes: None,
            tasy_reference_id: None,
            insurance_claim_id: None,
        }
    }
}

/// Input of `scope.authorizations().update(...)`. Deliberately without `status` and the review and
/// approval fields (state transitions), and without the patient and the requester (immutable). Once the
/// authorization is decided (neither `PENDING` nor `UNDER_REVIEW`), only `tasy_reference_id` and
/// `insurance_claim_id` may be set; any other field is a `conflict` on `status` that writes nothing.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthorizationPatch {
    /// New kind.
    pub authorization_type: Option<AuthorizationType>,
    /// New procedure name.
    pub procedure_name: Option<Sensitive<String>>,
    /// New procedure code (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub procedure_code: Option<Option<Sensitive<String>>>,
    /// New description (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub description: Option<Option<Sensitive<String>>>,
    /// New performing provider (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub provider_id: Option<Option<Uuid>>,
    /// New underlying health record (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub health_data_id: Option<Option<Uuid>>,
    /// New related conditions (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub related_conditions: Option<Option<Sensitive<Vec<String>>>>,
    /// New priority.
    pub priority: Option<Priority>,
    /// New urgency.
    pub urgency_level: Option<UrgencyLevel>,
    /// New start of validity (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub valid_from: Option<Option<DateTime<Utc>>>,
    /// New end of validity (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub valid_until: Option<Option<DateTime<Utc>>>,
    /// New justification (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub justification: Option<Option<Sensitive<String>>>,
    /// New clinical notes (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub clinical_notes: Option<Option<Sensitive<String>>>,
    /// New Tasy reference (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub tasy_reference_id: Option<Option<String>>,
    /// New insurance claim id (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub insurance_claim_id: Option<Option<String>>,
}

impl AuthorizationStatus {
    /// Whether the workflow allows moving from `self` to `next`: `PENDING -> UNDER_REVIEW`,
    /// `UNDER_REVIEW -> APPROVED | DENIED`, `PENDING | UNDER_REVIEW -> CANCELLED`, `APPROVED -> EXPIRED`.
    /// Nothing else, and never to the same status.
    pub fn can_become(self, next: AuthorizationStatus) -> bool {
        use AuthorizationStatus as S;
        matches!(
            (self, next),
            (S::Pending, S::UnderReview)
                | (S::UnderReview, S::Approved | S::Denied)
                | (S::Pending | S::UnderReview, S::Cancelled)
                | (S::Approved, S::Expired)
        )
    }

    /// Whether the authorization is still open (`PENDING` or `UNDER_REVIEW`): its content may be edited
    /// and it may still be decided or cancelled.
    pub fn is_open(self) -> bool {
        matches!(self, AuthorizationStatus::Pending | AuthorizationStatus::UnderReview)
    }
}

/// One step of an authorization's workflow, as recorded by the transition that made it (read with
/// `scope.authorizations().history(id)`). Rows are written only by the transitions, never edited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationTransition {
    /// UUIDv7 id (time-ordered).
    pub id: Uuid,
    /// Owning organization.
    pub organization_id: Uuid,
    /// The authorization.
    pub authorization_id: Uuid,
    /// The authorization's patient (whose key encrypts `reason`).
    pub patient_id: Uuid,
    /// Status before the transition.
    pub from_status: AuthorizationStatus,
    /// Status after the transition.
    pub to_status: AuthorizationStatus,
    /// The provider who reviewed, approved, denied or cancelled (a cancellation by an integration and
    /// an expiry have none).
    pub provider_id: Option<Uuid>,
    /// Kind of actor that made the transition.
    pub actor_kind: Role,
    /// The integration's name when the actor was a system (`tasy-sync`, `platform`).
    pub actor_name: Option<String>,
    /// Why: the denial or cancellation reason (encrypted); `None` for the other transitions.
    pub reason: Option<Sensitive<String>>,
    /// When.
    pub occurred_at: DateTime<Utc>,
}

impl Authorization {
    /// Checks the cross-field rules on the final state (after defaults on create, after a patch on
    /// update).
    pub fn check(&self) -> Result<()> {
        validate::ordered("valid_until", self.valid_from.as_ref(), self.valid_until.as_ref())
    }
}
