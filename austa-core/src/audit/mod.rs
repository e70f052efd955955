//! The audit trail: every access recorded in the same transaction, a tamper-evident chain, access
//! reports and a FHIR export.
//!
//! HIPAA (45 CFR 164.312(b), 164.528) and LGPD (Art. 37, Art. 18) require the platform to say who touched
//! which patient's data, when and why, and to keep anyone, database administrators included, from
//! quietly rewriting that history. The design, one concern per module:
//!
//! The writing side lives in the [`kernel`](crate::kernel), because every operation records its event
//! in its own transaction:
//!
//! * `kernel::event`: what an event holds. Operations describe what they did (action, entity, the ids
//!   returned or written, the patients involved, the names of changed fields); actor, purpose and
//!   request context come from the [`Scope`]; sensitivity and risk are derived from the data
//!   classification, never passed in. Each event carries an HMAC-SHA-256 under the organization's
//!   audit key (HKDF of the organization key, so it rotates with it and old versions keep verifying).
//! * `kernel::record`: the transaction audited operations run in. The event is inserted with the work, so a
//!   rolled-back operation leaves none and a committed one always has its event. A read is one event
//!   listing the ids it returned. Refused operations record `ACCESS_DENIED` on their own.
//! * `kernel::chain`: linking committed events, in order, into the organization's chain (each link:
//!   HMAC over the event's MAC and the previous link's), and `kernel::sequencer`, the background task
//!   that does it
//!   after commit on PostgreSQL so that a hospital's writers never queue on a chain lock (measured
//!   there: why this design and not a lock held until commit).
//!
//! This module is the reading side:
//!
//! * [`verify`](AuditTrail::verify): walks the chain and names the first break: modified, deleted, inserted or reordered.
//! * [`access_report`](AuditTrail::access_report): the access report of one patient ("who looked at my record"), itself audited.
//! * [`export_fhir`](AuditTrail::export_fhir): FHIR R4 `AuditEvent` export, streamed.
//! * [`transparency`]: the chain as a transparency log: [`checkpoint`](AuditTrail::checkpoint)
//!   signs its Merkle root, [`verify_against`](AuditTrail::verify_against) proves the log still
//!   extends a checkpoint kept elsewhere, and inclusion and consistency proofs let anyone check with
//!   hashes only.
//!
//! Storage is append-only: triggers reject UPDATE and DELETE of events and links on both backends, the
//! PostgreSQL runtime role may only SELECT and INSERT them, and this crate has no API that edits or
//! deletes an event.

mod fhir;
mod report;
pub mod transparency;
mod verify;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use fhir::to_fhir;
pub use transparency::{witness, ConsistencyProof, InclusionProof};
pub use verify::{ChainBreak, ChainReport, TamperKind};

use austa_crypto::checkpoint::{CheckpointSigner, CheckpointVerifier};

use crate::kernel::{check, record_alone, Event};

use crate::access::{Action, Resource, Rule};
use crate::error::{Error, Result};
use crate::model::{AppEvent, AuditAction, AuditLog, EntityType};
use crate::page::{Page, PageRequest};
use crate::scope::Scope;

/// The audit trail of a scope's organization: application events, verification, reports, export.
#[derive(Debug, Clone, Copy)]
pub struct AuditTrail<'s> {
    scope: &'s Scope,
}

impl Scope {
    /// The audit trail of this scope's organization.
    pub fn audit(&self) -> AuditTrail<'_> {
        AuditTrail { scope: self }
    }
}

impl AuditTrail<'_> {
    /// Records an application event (login, logout, an export the application made, a permission
    /// change in its identity system) under the scope's actor and request context; returns the
    /// event's id. Everything the library does itself is recorded without this call.
    pub async fn record(&self, event: AppEvent) -> Result<Uuid> {
        let scope = self.scope;
        check(scope, "audit_logs", Action::Create, None, None, scope.authorize(Resource::AuditLog, Action::Create))
            .await?;
        let e = match event {
            AppEvent::Login => Event::new(AuditAction::Login, EntityType::Organization).entity(scope.organization_id()),
            AppEvent::Logout => {
                Event::new(AuditAction::Logout, EntityType::Organization).entity(scope.organization_id())
            }
            AppEvent::Export { entity_type, entity_id, patient_id } => {
                let e = Event::new(AuditAction::Export, entity_type).patient(patient_id);
                match entity_id {
                    Some(id) => e.entity(id),
                    None => e,
                }
            }
            AppEvent::PermissionChange { provider_id } => {
                let e = Event::new(AuditAction::PermissionChange, EntityType::Provider);
                match provider_id {
                    Some(id) => e.entity(id),
                    None => e,
                }
            }
        };
        record_alone(scope, e).await
    }

    /// Verifies the organization's whole chain (after linking every pending event): every event's and
    /// link's MAC, the links' order, the head, and that no event sits outside the chain. Needs full
    /// read access to the audit log (administrators, the platform).
    pub async fn verify(&self) -> Result<ChainReport> {
        self.authorize_full().await?;
        verify::verify(self.scope, 1, None).await
    }

    /// Verifies links `from..=to` of the chain (sequence numbers), trusting link `from - 1`.
    pub async fn verify_range(&self, from: i64, to: i64) -> Result<ChainReport> {
        if from < 1 || to < from {
            return Err(Error::validation("from", "must be at least 1 and at most to"));
        }
        self.authorize_full().await?;
        verify::verify(self.scope, from, Some(to)).await
    }

    /// Verifies the whole chain and signs a checkpoint of it (size, Merkle root, time) with `signer`:
    /// the note to hand to whoever keeps checkpoints outside the database. Fails, signing nothing,
    /// when the chain does not verify.
    ///
    /// ```no_run
    /// # async fn demo(scope: &austa_core::Scope) -> austa_core::Result<()> {
    /// use austa_core::audit::transparency::{CheckpointVerifier, Ed25519Signer};
    /// let signer = Ed25519Signer::from_env()?.expect("AUSTA_AUDIT_SIGNING_KEY is set");
    /// let note = scope.audit().checkpoint(&signer).await?;
    /// // Later, or elsewhere: the log must still extend it.
    /// let report = scope.audit().verify_against(&note, &CheckpointVerifier::of(&signer)?).await?;
    /// assert!(report.is_intact());
    /// # Ok(()) }
    /// ```
    pub async fn checkpoint(&self, signer: &dyn CheckpointSigner) -> Result<String> {
        self.authorize_full().await?;
        transparency::checkpoint(self.scope, signer).await
    }

    /// Verifies the whole chain, as [`verify`](Self::verify) does, and that it extends the signed
    /// checkpoint `note`: a log smaller than the checkpoint is [`TamperKind::Truncated`] (cut, or an
    /// older copy restored), other first events than it signed [`TamperKind::Rewritten`]. A note
    /// that is malformed, of another organization or not signed by `verifier`'s key is a validation
    /// error.
    pub async fn verify_against(&self, note: &str, verifier: &CheckpointVerifier) -> Result<ChainReport> {
        self.authorize_full().await?;
        transparency::verify_against(self.scope, note, verifier).await
    }

    /// The proof that `event_id` is in the log's Merkle tree of `tree_size` events (default: all
    /// of them), to check with [`InclusionProof::verify_against`] a checkpoint of that size. Whoever
    /// may see the event in an access report may have its proof: a patient for the events of their
    /// own record (next to their report), providers with a stated purpose, administrators. The proof
    /// holds hashes and the event's id and position only.
    pub async fn inclusion_proof(&self, event_id: Uuid, tree_size: Option<u64>) -> Result<InclusionProof> {
        let scope = self.scope;
        let allowed = report::may_see_event(scope, event_id).await;
        check(scope, "audit_logs", Action::Read, Some(event_id), None, allowed).await?;
        transparency::inclusion_proof(scope, event_id, tree_size).await
    }

    /// The proof that the log's tree of `new_size` events (default: all of them) extends its tree
    /// of `old_size`, for a witness holding a checkpoint of `old_size` ([`witness`]).
    pub async fn consistency_proof(&self, old_size: u64, new_size: Option<u64>) -> Result<ConsistencyProof> {
        self.authorize_full().await?;
        transparency::consistency_proof(self.scope, old_size, new_size).await
    }

    /// Who accessed `patient_id`'s data between `from` (inclusive) and `to` (exclusive): a page of
    /// events in time order. A patient may run it on their own record; providers with a stated
    /// purpose and administrators on any patient of the organization. Running it is recorded.
    pub async fn access_report(
        &self,
        patient_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Page<AuditLog>> {
        report::access_report(self.scope, patient_id, from, to, &page).await
    }

    /// Writes the events of `[from, to)` to `out` as FHIR R4 `AuditEvent` resources, one JSON object
    /// per line, in time order, reading them in batches (memory stays flat). Returns how many were
    /// written. The export is recorded (`EXPORT`) before the first line.
    pub async fn export_fhir<W: std::io::Write>(
        &self,
        out: &mut W,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64> {
        fhir::export(self.scope, out, from, to).await
    }

    async fn authorize_full(&self) -> Result<()> {
        let scope = self.scope;
        let allowed = match scope.authorize(Resource::AuditLog, Action::Read) {
            Ok(Rule::Allow) => Ok(()),
            Ok(_) => Err(Error::PermissionDenied("verifying the audit chain needs full read access to it".into())),
            Err(e) => Err(e),
        };
        check(scope, "audit_logs", Action::Read, None, None, allowed).await
    }
}
