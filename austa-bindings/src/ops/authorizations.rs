//! `authorizations.*`: procedure authorizations, their documents and their review workflow.

use austa_core::model::{
    Authorization, AuthorizationPatch, AuthorizationStatus, AuthorizationTransition, NewAuthorization,
};
use austa_core::repo::Page;
use austa_core::{Result, Scope};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::{page, ScopeOperation};

table_ops!("authorizations", Authorization, NewAuthorization, AuthorizationPatch: get, list, create, create_many, update, delete, restore);

/// The patient's authorizations, optionally in one status.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForPatient {
    /// The patient.
    pub patient_id: Uuid,
    /// Only authorizations in this status.
    pub status: Option<AuthorizationStatus>,
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for ForPatient {
    const NAME: &'static str = "authorizations.for_patient";
    type Output = Page<Authorization>;
    async fn run(self, scope: &Scope) -> Result<Page<Authorization>> {
        scope.authorizations().for_patient(self.patient_id, self.status, page(self.limit, self.after)?).await
    }
}

/// Attaches a document of the same patient.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachDocument {
    /// The authorization.
    pub authorization_id: Uuid,
    /// The document.
    pub document_id: Uuid,
}

impl ScopeOperation for AttachDocument {
    const NAME: &'static str = "authorizations.attach_document";
    type Output = ();
    async fn run(self, scope: &Scope) -> Result<()> {
        scope.authorizations().attach_document(self.authorization_id, self.document_id).await
    }
}

/// Detaches a document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetachDocument {
    /// The authorization.
    pub authorization_id: Uuid,
    /// The document.
    pub document_id: Uuid,
}

impl ScopeOperation for DetachDocument {
    const NAME: &'static str = "authorizations.detach_document";
    type Output = ();
    async fn run(self, scope: &Scope) -> Result<()> {
        scope.authorizations().detach_document(self.authorization_id, self.document_id).await
    }
}

/// The ids of the attached documents.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachments {
    /// The authorization.
    pub authorization_id: Uuid,
}

impl ScopeOperation for Attachments {
    const NAME: &'static str = "authorizations.attachments";
    type Output = Vec<Uuid>;
    async fn run(self, scope: &Scope) -> Result<Vec<Uuid>> {
        scope.authorizations().attachments(self.authorization_id).await
    }
}

/// Starts the review: PENDING to UNDER_REVIEW.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartReview {
    /// The authorization.
    pub id: Uuid,
    /// The reviewing provider.
    pub reviewer_provider_id: Uuid,
}

impl ScopeOperation for StartReview {
    const NAME: &'static str = "authorizations.start_review";
    type Output = Authorization;
    async fn run(self, scope: &Scope) -> Result<Authorization> {
        scope.authorizations().start_review(self.id, self.reviewer_provider_id).await
    }
}

/// Approves for a validity window.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    /// The authorization.
    pub id: Uuid,
    /// The approving provider.
    pub approver_provider_id: Uuid,
    /// Valid from.
    pub valid_from: DateTime<Utc>,
    /// Valid until.
    pub valid_until: DateTime<Utc>,
}

impl ScopeOperation for Approve {
    const NAME: &'static str = "authorizations.approve";
    type Output = Authorization;
    async fn run(self, scope: &Scope) -> Result<Authorization> {
        scope.authorizations().approve(self.id, self.approver_provider_id, self.valid_from, self.valid_until).await
    }
}

/// Denies with a reason (stored encrypted).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deny {
    /// The authorization.
    pub id: Uuid,
    /// The reviewing provider.
    pub reviewer_provider_id: Uuid,
    /// Why.
    pub reason: String,
}

impl ScopeOperation for Deny {
    const NAME: &'static str = "authorizations.deny";
    type Output = Authorization;
    async fn run(self, scope: &Scope) -> Result<Authorization> {
        scope.authorizations().deny(self.id, self.reviewer_provider_id, self.reason).await
    }
}

/// Cancels with a reason (stored encrypted).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    /// The authorization.
    pub id: Uuid,
    /// Why.
    pub reason: String,
}

impl ScopeOperation for Cancel {
    const NAME: &'static str = "authorizations.cancel";
    type Output = Authorization;
    async fn run(self, scope: &Scope) -> Result<Authorization> {
        scope.authorizations().cancel(self.id, self.reason).await
    }
}

/// Expires the approved authorizations past their validity; how many.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpireDue {
    /// The moment; now when absent.
    pub now: Option<DateTime<Utc>>,
}

impl ScopeOperation for ExpireDue {
    const NAME: &'static str = "authorizations.expire_due";
    type Output = u64;
    async fn run(self, scope: &Scope) -> Result<u64> {
        scope.authorizations().expire_due(self.now.unwrap_or_else(|| scope.now())).await
    }
}

/// Every status transition, oldest first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// The authorization.
    pub authorization_id: Uuid,
}

impl ScopeOperation for History {
    const NAME: &'static str = "authorizations.history";
    type Output = Vec<AuthorizationTransition>;
    async fn run(self, scope: &Scope) -> Result<Vec<AuthorizationTransition>> {
        scope.authorizations().history(self.authorization_id).await
    }
}
