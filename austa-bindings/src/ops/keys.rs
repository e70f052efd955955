//! `keys.*`: key rotation and crypto-shredding for the scope's organization.

use austa_core::crypto::{RotationTarget, RunOptions, ShredReceipt};
use austa_core::{Result, Scope};
use serde::Deserialize;
use uuid::Uuid;

use super::ScopeOperation;

/// Starts rotating the organization's key, or one patient's key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRotation {
    /// The patient whose key rotates; the organization's key when absent.
    pub patient_id: Option<Uuid>,
}

impl ScopeOperation for StartRotation {
    const NAME: &'static str = "keys.start_rotation";
    type Output = austa_core::crypto::RotationStatus;
    async fn run(self, scope: &Scope) -> Result<Self::Output> {
        let target = match self.patient_id {
            Some(patient) => RotationTarget::Patient(patient),
            None => RotationTarget::Organization,
        };
        scope.keys().start_rotation(target).await
    }
}

/// Where a rotation stands.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationStatus {
    /// The rotation.
    pub id: Uuid,
}

impl ScopeOperation for RotationStatus {
    const NAME: &'static str = "keys.rotation_status";
    type Output = austa_core::crypto::RotationStatus;
    async fn run(self, scope: &Scope) -> Result<Self::Output> {
        scope.keys().rotation_status(self.id).await
    }
}

/// Re-encrypts rows under the new key, resumably: run it again until `completed` is true.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRotation {
    /// The rotation.
    pub id: Uuid,
    /// Rows per transaction.
    pub batch_size: Option<u32>,
    /// Stop after this many batches; run to completion when absent.
    pub max_batches: Option<u32>,
}

impl ScopeOperation for RunRotation {
    const NAME: &'static str = "keys.run_rotation";
    type Output = austa_core::crypto::RotationStatus;
    async fn run(self, scope: &Scope) -> Result<Self::Output> {
        let options = RunOptions {
            batch_size: self.batch_size.unwrap_or(RunOptions::default().batch_size),
            max_batches: self.max_batches,
        };
        scope.keys().run_rotation(self.id, options, |_| {}).await
    }
}

/// Destroys a patient's key: their encrypted data becomes unreadable everywhere (LGPD erasure).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShredPatient {
    /// The patient.
    pub patient_id: Uuid,
    /// Why (stored encrypted in the audit event).
    pub reason: String,
}

impl ScopeOperation for ShredPatient {
    const NAME: &'static str = "keys.shred_patient";
    type Output = ShredReceipt;
    async fn run(self, scope: &Scope) -> Result<ShredReceipt> {
        scope.keys().shred_patient(self.patient_id, &self.reason).await
    }
}
