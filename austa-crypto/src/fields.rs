//! What an operation encrypts and decrypts with: a [`KeySet`] (its organization's keys and those of
//! the patients its rows belong to) and, for one row, a [`RowCrypto`] that seals and opens its columns
//! under the right key with the row's associated data (organization, table, column, row id).

use std::collections::HashMap;
use std::sync::Arc;

use austa_error::{CryptoErrorKind, Error, Result};
use austa_sql::{Row, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::blind_index::{self, BlindIndexKind};
use crate::envelope::{self, Header, KeyKind};
use crate::material::{OrgKeys, PatientKeyState, PatientKeys};
use crate::sensitive::Sensitive;

/// The keys an operation needs: its organization's and some of its patients'.
pub struct KeySet {
    /// The organization's keys.
    pub org: Arc<OrgKeys>,
    /// The patients' keys, by patient id (absent: the patient has no keys here).
    pub patients: HashMap<Uuid, Arc<PatientKeys>>,
}

impl KeySet {
    /// The encryption context of one row, under the patient's key when `patient` is given.
    pub fn row(&self, table: &'static str, row: Uuid, patient: Option<Uuid>) -> Result<RowCrypto<'_>> {
        let source = match patient {
            None => Source::Org(&self.org),
            Some(p) => Source::Patient(self.patients.get(&p).ok_or_else(|| {
                Error::crypto(CryptoErrorKind::UnknownKey, format!("patient key for {table} row {row}"))
            })?),
        };
        Ok(RowCrypto { source, org: &self.org, table, row, recorded: None, fingerprint: false })
    }

    /// Like [`KeySet::row`], but "sealing" yields a SHA-256 fingerprint of the plaintext instead of a
    /// ciphertext: deterministic, so two versions of a row can be compared column by column (the audit
    /// trail's changed-field names). Fingerprints never leave memory.
    pub fn fingerprint_row(&self, table: &'static str, row: Uuid, patient: Option<Uuid>) -> Result<RowCrypto<'_>> {
        let mut crypto = self.row(table, row, patient)?;
        crypto.fingerprint = true;
        Ok(crypto)
    }

    /// Like [`KeySet::row`], recording the normalized values the row's blind indexes are computed from.
    pub fn recording_row<'a>(
        &'a self,
        table: &'static str,
        row: Uuid,
        patient: Option<Uuid>,
        recorded: &'a std::cell::RefCell<Vec<(BlindIndexKind, String)>>,
    ) -> Result<RowCrypto<'a>> {
        let mut crypto = self.row(table, row, patient)?;
        crypto.recorded = Some(recorded);
        Ok(crypto)
    }

    /// Whether the organization has more than one key version, i.e. blind indexes may exist under
    /// several versions at once.
    pub fn several_org_versions(&self) -> bool {
        self.org.versions.len() > 1
    }

    /// Fails with a validation error on `field` unless `patient` has keys in this organization (used
    /// before writing a row that references the patient).
    pub fn require_patient(&self, patient: Uuid, field: &str) -> Result<()> {
        match self.patients.get(&patient) {
            Some(k) if k.destroyed() => Err(Error::Erased),
            Some(_) => Ok(()),
            None => Err(Error::validation(field, "refers to a row that does not exist in this organization")),
        }
    }

    /// Blind indexes of a normalized value under every live organization key version: what a lookup
    /// must match while a rotation re-indexes rows.
    pub fn blinds(&self, kind: BlindIndexKind, normalized: &str) -> Vec<Vec<u8>> {
        self.org.versions.iter().map(|v| blind_index::compute(&v.blind, kind, normalized)).collect()
    }
}

enum Source<'a> {
    Org(&'a OrgKeys),
    Patient(&'a PatientKeys),
}

/// Encryption context of one row: seals and opens its columns.
pub struct RowCrypto<'a> {
    source: Source<'a>,
    org: &'a OrgKeys,
    table: &'static str,
    row: Uuid,
    /// When set, every normalized value indexed through [`RowCrypto::blind`] is recorded here (the
    /// uniqueness check during an organization key rotation needs them).
    recorded: Option<&'a std::cell::RefCell<Vec<(BlindIndexKind, String)>>>,
    /// When set, `seal` returns a fingerprint (see [`KeySet::fingerprint_row`]).
    fingerprint: bool,
}

impl RowCrypto<'_> {
    fn context(&self, column: &str) -> Vec<u8> {
        let mut v = Vec::with_capacity(64 + self.table.len() + column.len());
        v.extend_from_slice(b"austa:field:v1:");
        v.extend_from_slice(self.org.organization.as_bytes());
        v.extend_from_slice(self.table.as_bytes());
        v.push(0);
        v.extend_from_slice(column.as_bytes());
        v.push(0);
        v.extend_from_slice(self.row.as_bytes());
        v
    }

    /// Where a failure happened: `table.column of row <id>`. The row id is not sensitive (audit events
    /// list ids) and lets an operator find the damaged row (`austa validate` reports the same ids).
    fn where_(&self, column: &str) -> String {
        format!("{}.{} of row {}", self.table, column, self.row)
    }

    /// Encrypts raw bytes under the active key of the row's owner.
    pub fn seal(&self, column: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        if self.fingerprint {
            use sha2::Digest;
            return Ok(Sha256::digest(plaintext).to_vec());
        }
        let (cipher, header) = match &self.source {
            Source::Org(k) => {
                let v = k.active()?;
                (&v.field, Header { kind: KeyKind::Organization, key_id: v.id })
            }
            Source::Patient(p) => match &p.state {
                PatientKeyState::Live { active, versions } => {
                    let c = versions
                        .get(active)
                        .ok_or_else(|| Error::crypto(CryptoErrorKind::UnknownKey, self.where_(column)))?;
                    (c, Header { kind: KeyKind::Patient, key_id: *active })
                }
                PatientKeyState::Destroyed => return Err(Error::Erased),
            },
        };
        envelope::seal(cipher, header, &self.context(column), plaintext)
    }

    /// Decrypts raw bytes with whichever version the envelope names; `None` when the owner's keys were
    /// destroyed.
    pub fn open(&self, column: &str, env: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let fail = |kind| Error::crypto(kind, self.where_(column));
        let header = envelope::header(env).map_err(fail)?;
        let cipher = match (&self.source, header.kind) {
            (Source::Org(k), KeyKind::Organization) => {
                &k.version(header.key_id).ok_or_else(|| fail(CryptoErrorKind::UnknownKey))?.field
            }
            (Source::Patient(p), KeyKind::Patient) => match &p.state {
                PatientKeyState::Live { versions, .. } => {
                    versions.get(&header.key_id).ok_or_else(|| fail(CryptoErrorKind::UnknownKey))?
                }
                PatientKeyState::Destroyed => return Ok(None),
            },
            _ => return Err(fail(CryptoErrorKind::UnknownKey)),
        };
        envelope::open(cipher, env, &self.context(column)).map(Some).map_err(fail)
    }

    /// Encrypts a text value.
    pub fn text(&self, column: &str, value: &Sensitive<String>) -> Result<Value> {
        Ok(Value::Bytes(Some(self.seal(column, value.expose()?.as_bytes())?)))
    }

    /// Encrypts an optional text value (NULL stays NULL).
    pub fn opt_text(&self, column: &str, value: Option<&Sensitive<String>>) -> Result<Value> {
        match value {
            Some(v) => self.text(column, v),
            None => Ok(Value::Bytes(None)),
        }
    }

    /// Encrypts any serializable value as JSON.
    pub fn json<T: Serialize>(&self, column: &str, value: &Sensitive<T>) -> Result<Value> {
        let bytes = Zeroizing::new(
            serde_json::to_vec(value.expose()?)
                .map_err(|_| Error::crypto(CryptoErrorKind::InvalidPlaintext, self.where_(column)))?,
        );
        Ok(Value::Bytes(Some(self.seal(column, &bytes)?)))
    }

    /// Encrypts an optional serializable value as JSON (NULL stays NULL).
    pub fn opt_json<T: Serialize>(&self, column: &str, value: Option<&Sensitive<T>>) -> Result<Value> {
        match value {
            Some(v) => self.json(column, v),
            None => Ok(Value::Bytes(None)),
        }
    }

    /// Decrypts an optional text column.
    pub fn open_opt_text(&self, row: &Row, column: &str) -> Result<Option<Sensitive<String>>> {
        let Some(env) = row.opt_bytes(column)? else {
            return Ok(None);
        };
        let Some(pt) = self.open(column, &env)? else {
            return Ok(Some(Sensitive::erased()));
        };
        String::from_utf8(pt.to_vec())
            .map(|s| Some(Sensitive::new(s)))
            .map_err(|_| Error::crypto(CryptoErrorKind::InvalidPlaintext, self.where_(column)))
    }

    /// Decrypts a NOT NULL text column.
    pub fn open_text(&self, row: &Row, column: &str) -> Result<Sensitive<String>> {
        self.open_opt_text(row, column)?.ok_or_else(|| Error::CorruptData(format!("{} is NULL", self.where_(column))))
    }

    /// Decrypts an optional JSON column.
    pub fn open_opt_json<T: DeserializeOwned>(&self, row: &Row, column: &str) -> Result<Option<Sensitive<T>>> {
        let Some(env) = row.opt_bytes(column)? else {
            return Ok(None);
        };
        let Some(pt) = self.open(column, &env)? else {
            return Ok(Some(Sensitive::erased()));
        };
        serde_json::from_slice(&pt)
            .map(|v| Some(Sensitive::new(v)))
            .map_err(|_| Error::crypto(CryptoErrorKind::InvalidPlaintext, self.where_(column)))
    }

    /// Decrypts a NOT NULL JSON column.
    pub fn open_json<T: DeserializeOwned>(&self, row: &Row, column: &str) -> Result<Sensitive<T>> {
        self.open_opt_json(row, column)?.ok_or_else(|| Error::CorruptData(format!("{} is NULL", self.where_(column))))
    }

    /// Blind index of a normalized value (see [`BlindIndexKind`]) under the active organization key.
    pub fn blind(&self, kind: BlindIndexKind, normalized: &str) -> Result<Value> {
        if let Some(recorded) = self.recorded {
            recorded.borrow_mut().push((kind, normalized.to_string()));
        }
        Ok(Value::Bytes(Some(blind_index::compute(&self.org.active()?.blind, kind, normalized))))
    }
}
