//! Crypto-shredding: a patient's keys destroyed, their identifiers released.

use chrono::{DateTime, Utc};
use rand::RngCore;
use uuid::Uuid;

use crate::access::{Action, Resource};
use crate::classification::{self, KeyOwner};
use crate::db::{Query, TxMode};
use crate::error::{Error, Result};
use crate::kernel::{check, AuditTx, Event};
use crate::model::{AuditAction, RiskLevel};
use austa_sql::begin_on;

use super::{actor_label, KeyAdmin};

/// What crypto-shredding a patient did: the record the audit trail keeps.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShredReceipt {
    /// The organization.
    pub organization_id: Uuid,
    /// The erased patient.
    pub patient_id: Uuid,
    /// The key versions destroyed by this call (empty when the patient was already erased).
    pub destroyed_key_ids: Vec<Uuid>,
    /// When.
    pub shredded_at: DateTime<Utc>,
    /// Who (the scope's actor).
    pub shredded_by: String,
    /// Why (the stated reason, e.g. an LGPD erasure request id).
    pub reason: String,
}

impl KeyAdmin<'_> {
    /// Crypto-shreds a patient: destroys every version of their key in the key store, replaces the
    /// patient's blind indexes with random bytes (so their phone or CPF neither finds nor blocks anyone),
    /// and marks the patient erased. Every encrypted field of the patient, in every table, then reads as
    /// erased; so it does in any copy of the data opened with the current key store.
    pub async fn shred_patient(&self, patient_id: Uuid, reason: &str) -> Result<ShredReceipt> {
        let allowed = self.scope.authorize(Resource::Keys, Action::Delete);
        check(self.scope, "patients", Action::Delete, Some(patient_id), Some(patient_id), allowed).await?;
        let reason = crate::validate::text("reason", reason, 1, 500)?;
        let org = self.org();
        let db = self.db();
        if !crate::kernel::rows::exists::<crate::model::Patient>(self.scope, patient_id).await? {
            return Err(Error::not_found("patient"));
        }
        let now = self.scope.now();
        let by = actor_label(self.scope);
        let mut tx = begin_on(db.inner.keyring.store(), Some(org), TxMode::Write).await?;
        let destroyed: Vec<Uuid> = tx
            .fetch_all(
                Query::new(
                    "SELECT id FROM patient_keys WHERE organization_id = $1 AND patient_id = $2 AND state <> 'DESTROYED'",
                )
                .bind(org)
                .bind(patient_id),
            )
            .await?
            .iter()
            .map(|r| r.uuid("id"))
            .collect::<Result<_>>()?;
        tx.execute(
            Query::new(
                "UPDATE patient_keys SET wrapped_key = NULL, state = 'DESTROYED', destroyed_at = $1, destroyed_by = $2 \
                 WHERE organization_id = $3 AND patient_id = $4 AND state <> 'DESTROYED'",
            )
            .bind(now)
            .bind(by.clone())
            .bind(org)
            .bind(patient_id),
        )
        .await?;
        tx.commit().await?;
        db.inner.keyring.invalidate_patient(org, patient_id);
        self.release_identifiers(patient_id, now, &reason).await?;
        Ok(ShredReceipt {
            organization_id: org,
            patient_id,
            destroyed_key_ids: destroyed,
            shredded_at: now,
            shredded_by: by,
            reason,
        })
    }

    /// Overwrites an erased patient's blind indexes with random bytes and records the erasure time.
    /// Records the shredding (`DELETE` of the patient, critical risk) in the same transaction.
    async fn release_identifiers(&self, patient_id: Uuid, now: DateTime<Utc>, reason: &str) -> Result<()> {
        let org = self.org();
        let random = || {
            let mut b = vec![0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut b);
            b
        };
        let mut tx = AuditTx::begin(self.scope).await?;
        tx.execute(
            Query::new(
                "UPDATE patients SET erased_at = COALESCE(erased_at, $1), phone_bidx = $2, \
                 cpf_bidx = CASE WHEN cpf_bidx IS NULL THEN NULL ELSE $3 END, \
                 email_bidx = CASE WHEN email_bidx IS NULL THEN NULL ELSE $4 END, \
                 whatsapp_id_bidx = CASE WHEN whatsapp_id_bidx IS NULL THEN NULL ELSE $5 END \
                 WHERE organization_id = $6 AND id = $7",
            )
            .bind(now)
            .bind(random())
            .bind(random())
            .bind(random())
            .bind(random())
            .bind(org)
            .bind(patient_id),
        )
        .await?;
        // The blind indexes of the patient's other rows (conversation chat ids, WhatsApp message ids),
        // taken from the classification so that an identifier column added there is released too.
        let others =
            classification::ENCRYPTED_COLUMNS.iter().filter(|c| c.table != "patients" && c.blind_index().is_some());
        for c in others {
            let KeyOwner::Patient { column } = c.owner() else { continue };
            let (table, bidx) = (c.table, format!("{}_bidx", c.column));
            let rows = tx
                .fetch_all(
                    Query::new(format!(
                        "SELECT id FROM {table} WHERE organization_id = $1 AND {column} = $2 AND {bidx} IS NOT NULL"
                    ))
                    .bind(org)
                    .bind(patient_id),
                )
                .await?;
            for r in &rows {
                tx.execute(
                    Query::new(format!("UPDATE {table} SET {bidx} = $1 WHERE organization_id = $2 AND id = $3"))
                        .bind(random())
                        .bind(org)
                        .bind(r.uuid("id")?),
                )
                .await?;
            }
        }
        let event = Event::on(AuditAction::Delete, "patients")
            .entity(patient_id)
            .records([patient_id])
            .patient(Some(patient_id))
            .changed(["keys", "erased_at"])
            .reason(format!("crypto-shredding: {reason}"))
            .risk_at_least(RiskLevel::Critical);
        tx.record(event).await?;
        tx.commit().await
    }
}
