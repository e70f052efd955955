//! Crypto-shredding: a patient's keys destroyed, their identifiers released.

use chrono::{DateTime, Utc};
use rand::RngCore;
use uuid::Uuid;

use crate::access::{Action, Resource};
use crate::classification::{self, KeyOwner};
use crate::db::{Pool, Query, Tx, TxMode};
use crate::error::{Error, Result};
use crate::kernel::{check, AuditTx, Event};
use crate::model::{AuditAction, Document, RiskLevel};
use austa_crypto::Sensitive;
use austa_sql::begin_on;

use super::{actor_label, KeyAdmin};

/// What crypto-shredding a patient did: the record the audit trail keeps, and what is left to do
/// outside the database.
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
    /// Whether the database files no longer hold the destroyed keys' old bytes: on SQLite, freed
    /// space is zeroed (`secure_delete`) and the write-ahead log was checkpointed and truncated. False
    /// when a reader kept a log from being truncated or the checkpoint failed (call again later), and
    /// on PostgreSQL, where dead row versions and the WAL keep them until `VACUUM` and WAL recycling;
    /// `outstanding` says which database and what to do.
    pub storage_scrubbed: bool,
    /// The patient's document files, which live outside the database: their locations were readable
    /// only with the destroyed key, so they are listed here, read just before it was destroyed.
    pub documents: Vec<DocumentToDelete>,
    /// What must still be done outside the database, in words.
    pub outstanding: Vec<String>,
}

/// A document file of an erased patient, to delete from its storage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DocumentToDelete {
    /// The document's row.
    pub document_id: Uuid,
    /// Where the file is stored.
    pub storage_provider: crate::model::StorageProvider,
    /// The file's path in that storage: it may carry the patient's name, so it stays wrapped. Erased
    /// when the patient already was: only the receipt of the call that destroyed the key lists it,
    /// so keep that receipt until the files are deleted.
    pub storage_path: Sensitive<String>,
    /// The storage-level key of an encrypted file (destroying it shreds the file too).
    pub storage_key_ref: Option<String>,
}

impl KeyAdmin<'_> {
    /// Crypto-shreds a patient: destroys every version of their key in the key store, replaces the
    /// patient's blind indexes with random bytes (so their phone or CPF neither finds nor blocks anyone),
    /// and marks the patient erased. Every encrypted field of the patient, in every table, then reads as
    /// erased; so it does in any copy of the data opened with the current key store.
    ///
    /// With the key store in the data database (the default) all of it, the audit event included, is
    /// one transaction. With a key store of its own no transaction spans both: an intent event is
    /// committed first, so a crash after the keys are gone still leaves the shredding in the trail, and
    /// calling again completes it. Afterwards the database files are scrubbed where the backend
    /// allows ([`ShredReceipt::storage_scrubbed`]), and the receipt lists what is left outside.
    pub async fn shred_patient(&self, patient_id: Uuid, reason: &str) -> Result<ShredReceipt> {
        let allowed = self.scope.authorize(Resource::Keys, Action::Delete);
        check(self.scope, "patients", Action::Delete, Some(patient_id), Some(patient_id), allowed).await?;
        let reason = crate::validate::text("reason", reason, 1, 500)?;
        let org = self.org();
        let db = self.db();
        if !crate::kernel::rows::exists::<crate::model::Patient>(self.scope, patient_id).await? {
            return Err(Error::not_found("patient"));
        }
        let documents = self.documents_of(patient_id).await?;
        let now = self.scope.now();
        let by = actor_label(self.scope);
        let destroyed = if db.inner.keystore_shared {
            let mut tx = AuditTx::begin(self.scope).await?;
            let destroyed = destroy_keys(&mut tx, org, patient_id, now, &by).await?;
            release_identifiers(&mut tx, org, patient_id, now).await?;
            tx.record(shred_event(patient_id, format!("crypto-shredding: {reason}"))).await?;
            tx.commit().await?;
            destroyed
        } else {
            let mut intent = AuditTx::begin(self.scope).await?;
            intent.record(shred_event(patient_id, format!("crypto-shredding started: {reason}"))).await?;
            intent.commit().await?;
            let mut tx = begin_on(db.inner.keyring.store(), Some(org), TxMode::Write).await?;
            let destroyed = destroy_keys(&mut tx, org, patient_id, now, &by).await?;
            tx.commit().await?;
            let mut tx = AuditTx::begin(self.scope).await?;
            release_identifiers(&mut tx, org, patient_id, now).await?;
            tx.record(shred_event(patient_id, format!("crypto-shredding: {reason}"))).await?;
            tx.commit().await?;
            destroyed
        };
        db.inner.keyring.invalidate_patient(org, patient_id);
        // The keys are gone: from here on nothing may fail the call, or the receipt (the only list
        // of the document files) would be lost. What could not be scrubbed is reported instead.
        let mut outstanding = outstanding_outside(&documents, now);
        let mut storage_scrubbed = true;
        let mut pools = vec![("data", &db.inner.pool, "patients")];
        if !db.inner.keystore_shared {
            pools.push(("key store", db.inner.keyring.store(), "patient_keys"));
        }
        for (name, pool, table) in pools {
            if let Some(left) = scrub(name, pool, table).await {
                storage_scrubbed = false;
                outstanding.push(left);
            }
        }
        Ok(ShredReceipt {
            organization_id: org,
            patient_id,
            destroyed_key_ids: destroyed,
            shredded_at: now,
            shredded_by: by,
            reason,
            storage_scrubbed,
            outstanding,
            documents,
        })
    }

    /// Every document of the patient (active, archived or deleted: the files exist whatever the row's
    /// state), with the file's location, read while the key still exists. The read is part of the
    /// shred, authorized by it, and recorded as a `READ` of the documents with the shred's purpose.
    async fn documents_of(&self, patient_id: Uuid) -> Result<Vec<DocumentToDelete>> {
        let query = Query::new("SELECT * FROM documents WHERE organization_id = $1 AND patient_id = $2 ORDER BY id")
            .bind(self.org())
            .bind(patient_id);
        let mut tx = AuditTx::begin_read(self.scope).await?;
        let rows = tx.fetch_all(query).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let event = crate::kernel::event::read_event("documents", &rows, None)?
            .reason("crypto-shredding: the document files to delete");
        tx.record(event).await?;
        tx.commit().await?;
        let documents: Vec<Document> = crate::kernel::rows::decode_rows(self.scope, &rows).await?;
        Ok(documents
            .into_iter()
            .map(|d| DocumentToDelete {
                document_id: d.id,
                storage_provider: d.storage_provider,
                storage_path: d.storage_path,
                storage_key_ref: d.storage_key_ref,
            })
            .collect())
    }
}

/// The `DELETE` of the patient that records the shredding (critical risk).
fn shred_event(patient_id: Uuid, reason: String) -> Event {
    Event::on(AuditAction::Delete, "patients")
        .entity(patient_id)
        .records([patient_id])
        .patient(Some(patient_id))
        .changed(["keys", "erased_at"])
        .reason(reason)
        .risk_at_least(RiskLevel::Critical)
}

/// Destroys every live version of the patient's key; returns their ids.
async fn destroy_keys(tx: &mut Tx, org: Uuid, patient_id: Uuid, now: DateTime<Utc>, by: &str) -> Result<Vec<Uuid>> {
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
        .bind(by.to_string())
        .bind(org)
        .bind(patient_id),
    )
    .await?;
    Ok(destroyed)
}

/// Overwrites an erased patient's blind indexes with random bytes and records the erasure time.
async fn release_identifiers(tx: &mut Tx, org: Uuid, patient_id: Uuid, now: DateTime<Utc>) -> Result<()> {
    let random = || {
        let mut b = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        b
    };
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
    Ok(())
}

/// Removes the old bytes of what was just overwritten from the database files of `pool` (the
/// `name`d database), where the backend allows it from the library: on SQLite the connections zero
/// freed space (`secure_delete`), and a `TRUNCATE` checkpoint copies the write-ahead log into the
/// database and empties it, so the log's older page images (which held the wrapped keys) are gone.
/// Returns what is left to do, if anything: a reader on an older snapshot keeps the log from being
/// truncated; PostgreSQL keeps dead row versions of `table` until a `VACUUM` by the owner.
async fn scrub(name: &str, pool: &Pool, table: &str) -> Option<String> {
    match pool {
        Pool::Sqlite(p) => {
            match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(p).await {
                Ok((0, _, _)) => None,
                Ok(_) => Some(format!(
                    "the {name} database's write-ahead log could not be truncated (a reader was busy): shred the \
                 patient again when it is idle"
                )),
                Err(e) => {
                    Some(format!("the {name} database's write-ahead log could not be checkpointed ({e}): shred again"))
                }
            }
        }
        Pool::Postgres(_) => Some(format!(
            "in the {name} database, as its owner, run VACUUM (FULL) {table} to drop the old row versions; WAL \
             segments and base backups from before the shred keep them until they expire"
        )),
    }
}

/// What is left outside the database after a shred, whatever the backend.
fn outstanding_outside(documents: &[DocumentToDelete], at: DateTime<Utc>) -> Vec<String> {
    let mut out = Vec::new();
    if !documents.is_empty() {
        out.push(format!(
            "delete the {} document file(s) listed in `documents` from their storage (or destroy their storage keys)",
            documents.len()
        ));
    }
    out.push(format!(
        "backups taken before {at} hold the destroyed keys' wrapped copies: delete them, or shred the patient \
         again after restoring one"
    ));
    out
}
