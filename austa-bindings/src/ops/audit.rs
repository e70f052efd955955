//! `audit.*`: the organization's audit chain: verification, access reports, FHIR export and the
//! application's own events.

use std::path::PathBuf;

use austa_core::audit::transparency::{CheckpointVerifier, Ed25519Signer};
use austa_core::audit::{ChainReport, ConsistencyProof, InclusionProof};
use austa_core::model::{AppEvent, AuditLog};
use austa_core::repo::Page;
use austa_core::{Error, Result, Scope};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::{page, ScopeOperation};

/// Records an application event (`LOGIN`, `LOGOUT`, `EXPORT`, `PERMISSION_CHANGE`); the event id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The event: `{"action": ..., ...}` with the fields of that action.
    pub event: AppEvent,
}

impl ScopeOperation for Record {
    const NAME: &'static str = "audit.record";
    type Output = Uuid;
    async fn run(self, scope: &Scope) -> Result<Uuid> {
        scope.audit().record(self.event).await
    }
}

/// Verifies the whole chain; `broken` is null when it is intact.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {}

impl ScopeOperation for Verify {
    const NAME: &'static str = "audit.verify";
    type Output = ChainReport;
    async fn run(self, scope: &Scope) -> Result<ChainReport> {
        scope.audit().verify().await
    }
}

/// Verifies the events numbered `from_seq` to `to_seq`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRange {
    /// The first event's number.
    pub from_seq: i64,
    /// The last event's number.
    pub to_seq: i64,
}

impl ScopeOperation for VerifyRange {
    const NAME: &'static str = "audit.verify_range";
    type Output = ChainReport;
    async fn run(self, scope: &Scope) -> Result<ChainReport> {
        scope.audit().verify_range(self.from_seq, self.to_seq).await
    }
}

/// Who accessed a patient's data between `start` and `end` (the LGPD art. 18 report).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessReport {
    /// The patient.
    pub patient_id: Uuid,
    /// From this moment.
    pub start: DateTime<Utc>,
    /// Until this moment.
    pub end: DateTime<Utc>,
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for AccessReport {
    const NAME: &'static str = "audit.access_report";
    type Output = Page<AuditLog>;
    async fn run(self, scope: &Scope) -> Result<Page<AuditLog>> {
        scope.audit().access_report(self.patient_id, self.start, self.end, page(self.limit, self.after)?).await
    }
}

/// Writes the events between `start` and `end` to `path` as FHIR AuditEvent JSON lines; how many.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFhir {
    /// The file to write (created or truncated).
    pub path: PathBuf,
    /// From this moment.
    pub start: DateTime<Utc>,
    /// Until this moment.
    pub end: DateTime<Utc>,
}

impl ScopeOperation for ExportFhir {
    const NAME: &'static str = "audit.export_fhir";
    type Output = u64;
    async fn run(self, scope: &Scope) -> Result<u64> {
        let mut out = std::io::BufWriter::new(austa_core::ops::create_private_file(&self.path)?);
        let n = scope.audit().export_fhir(&mut out, self.start, self.end).await?;
        std::io::Write::flush(&mut out)?;
        Ok(n)
    }
}

/// Verifies the whole chain and signs a checkpoint of it with the key of `AUSTA_AUDIT_SIGNING_KEY`
/// or `AUSTA_AUDIT_SIGNING_KEY_FILE`; the signed note, to keep outside the database.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {}

impl ScopeOperation for Checkpoint {
    const NAME: &'static str = "audit.checkpoint";
    type Output = String;
    async fn run(self, scope: &Scope) -> Result<String> {
        let signer = Ed25519Signer::from_env()?.ok_or_else(|| {
            Error::Config(
                "no checkpoint signing key: set AUSTA_AUDIT_SIGNING_KEY or AUSTA_AUDIT_SIGNING_KEY_FILE".into(),
            )
        })?;
        scope.audit().checkpoint(&signer).await
    }
}

/// Verifies the whole chain and that it extends the signed `checkpoint`: `broken.kind` is
/// `TRUNCATED` when the log is smaller than the checkpoint, `REWRITTEN` when its first events differ.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyAgainst {
    /// The signed checkpoint note.
    pub checkpoint: String,
    /// The verifier key (`name+hash+base64`); default: `AUSTA_AUDIT_VERIFIER_KEY`, else the signing key's.
    pub verifier_key: Option<String>,
}

impl ScopeOperation for VerifyAgainst {
    const NAME: &'static str = "audit.verify_against";
    type Output = ChainReport;
    async fn run(self, scope: &Scope) -> Result<ChainReport> {
        let verifier = match self.verifier_key {
            Some(key) => CheckpointVerifier::parse(&key)?,
            None => CheckpointVerifier::from_env()?.ok_or_else(|| {
                Error::Config("no checkpoint verifier key: pass verifier_key or set AUSTA_AUDIT_VERIFIER_KEY".into())
            })?,
        };
        scope.audit().verify_against(&self.checkpoint, &verifier).await
    }
}

/// The proof that an event is in the log's Merkle tree of `tree_size` events (default: all).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProveInclusion {
    /// The event.
    pub event_id: Uuid,
    /// A checkpoint's tree size.
    pub tree_size: Option<u64>,
}

impl ScopeOperation for ProveInclusion {
    const NAME: &'static str = "audit.inclusion_proof";
    type Output = InclusionProof;
    async fn run(self, scope: &Scope) -> Result<InclusionProof> {
        scope.audit().inclusion_proof(self.event_id, self.tree_size).await
    }
}

/// The proof that the log's tree of `new_size` events (default: all) extends its tree of `old_size`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProveConsistency {
    /// The older checkpoint's tree size.
    pub old_size: u64,
    /// The newer tree size.
    pub new_size: Option<u64>,
}

impl ScopeOperation for ProveConsistency {
    const NAME: &'static str = "audit.consistency_proof";
    type Output = ConsistencyProof;
    async fn run(self, scope: &Scope) -> Result<ConsistencyProof> {
        scope.audit().consistency_proof(self.old_size, self.new_size).await
    }
}
