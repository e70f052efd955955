//! The key hierarchy at run time: loading, creating, caching and applying keys.
//!
//! ```text
//! master key (KeyProvider)  ──wraps──▶  organization key v1..vN   (key store: organization_keys)
//!                                         │ HKDF ─▶ field key   encrypts organization secrets
//!                                         │ HKDF ─▶ blind key   computes blind indexes
//!                                         │ HKDF ─▶ wrap key ──wraps──▶ patient key v1..vM (patient_keys)
//!                                                                          │ HKDF ─▶ field key
//!                                                                          ▼ encrypts the patient's data
//! ```
//!
//! The newest ACTIVE version of a key encrypts; every version that still exists decrypts, so data
//! written before a rotation stays readable while it is re-encrypted. A patient whose keys were
//! destroyed is [`PatientKeys::destroyed`]: sealing fails with `erased`, and opening yields an erased
//! value instead of an error, so listings keep working.
//!
//! An operation first assembles a [`KeySet`] (its organization's keys plus the keys of the patients its
//! rows belong to) from the cache or the key store, and only then opens its data transaction: a task
//! never holds a transaction while waiting for a second connection.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hkdf::Hkdf;
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::blind_index::{self, BlindIndexKind};
use super::cache::{CacheKey, Cached, KeyCache, KeyCacheConfig};
use super::envelope::{self, Header, KeyKind};
use super::keys::{DataKey, KeyProvider};
use super::sensitive::Sensitive;
use crate::db::{begin_on, Database, Pool, Query, Row, Tx, TxMode, Value};
use crate::error::{CryptoErrorKind, Error, Result};

/// One unwrapped organization key version and its derived subkeys.
pub(crate) struct OrgVersion {
    pub(crate) id: Uuid,
    field: Aes256Gcm,
    blind: Zeroizing<[u8; 32]>,
    wrap: Aes256Gcm,
    /// HMAC key of the audit chain (events and links are MACed under it).
    audit: Zeroizing<[u8; 32]>,
}

/// Every live version of one organization's key.
pub struct OrgKeys {
    pub(crate) organization: Uuid,
    pub(crate) active: Uuid,
    /// Oldest first.
    pub(crate) versions: Vec<OrgVersion>,
}

/// One patient's key versions, or the fact that they were destroyed.
pub struct PatientKeys {
    pub(crate) patient: Uuid,
    pub(crate) state: PatientKeyState,
}

pub(crate) enum PatientKeyState {
    Live { active: Uuid, versions: HashMap<Uuid, Aes256Gcm> },
    Destroyed,
}

fn hkdf(root: &DataKey, label: &'static [u8]) -> Result<Zeroizing<[u8; 32]>> {
    let mut out = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(b"austa key hierarchy v1"), root.expose())
        .expand(label, out.as_mut())
        .map_err(|_| Error::crypto(CryptoErrorKind::InvalidKey, "deriving subkeys"))?;
    Ok(out)
}

fn cipher(key: &Zeroizing<[u8; 32]>) -> Aes256Gcm {
    Aes256Gcm::new((&**key).into())
}

impl OrgVersion {
    fn derive(id: Uuid, root: &DataKey) -> Result<Self> {
        Ok(Self {
            id,
            field: cipher(&hkdf(root, b"organization field encryption")?),
            blind: hkdf(root, b"organization blind index")?,
            wrap: cipher(&hkdf(root, b"organization key wrapping")?),
            audit: hkdf(root, b"organization audit chain")?,
        })
    }
}

fn patient_cipher(root: &DataKey) -> Result<Aes256Gcm> {
    Ok(cipher(&hkdf(root, b"patient field encryption")?))
}

impl OrgKeys {
    fn version(&self, id: Uuid) -> Option<&OrgVersion> {
        self.versions.iter().find(|v| v.id == id)
    }

    /// HMAC-SHA-256 of `parts` (each length-prefixed, so part boundaries are unambiguous) under the
    /// audit key of version `key_id`; `UnknownKey` when that version is gone.
    pub(crate) fn audit_mac(&self, key_id: Uuid, parts: &[&[u8]]) -> Result<[u8; 32]> {
        use hmac::{Hmac, Mac};
        let v = self.version(key_id).ok_or_else(|| Error::crypto(CryptoErrorKind::UnknownKey, "audit key"))?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&v.audit[..])
            .map_err(|_| Error::crypto(CryptoErrorKind::InvalidKey, "audit key"))?;
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        Ok(mac.finalize().into_bytes().into())
    }

    /// Whether version `key_id` is among these keys.
    pub(crate) fn has_version(&self, key_id: Uuid) -> bool {
        self.version(key_id).is_some()
    }

    /// The version that MACs new audit events and links.
    pub(crate) fn active_id(&self) -> Uuid {
        self.active
    }

    pub(crate) fn active(&self) -> Result<&OrgVersion> {
        self.version(self.active).ok_or_else(|| Error::crypto(CryptoErrorKind::UnknownKey, "active organization key"))
    }

    /// Wraps a patient key under this organization's active wrap key.
    pub(crate) fn wrap_patient_key(&self, patient: Uuid, key_id: Uuid, key: &DataKey) -> Result<(Uuid, Vec<u8>)> {
        let v = self.active()?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = patient_wrap_context(self.organization, patient, key_id);
        let ct = v
            .wrap
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: key.expose(), aad: &aad })
            .map_err(|_| Error::crypto(CryptoErrorKind::KeyUnwrap, "wrapping patient key"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok((v.id, out))
    }

    /// Unwraps a patient key wrapped by version `wrapping_key_id`.
    pub(crate) fn unwrap_patient_key(
        &self,
        patient: Uuid,
        key_id: Uuid,
        wrapping_key_id: Uuid,
        wrapped: &[u8],
    ) -> Result<DataKey> {
        let fail = |kind| Error::crypto(kind, "patient key");
        let v = self.version(wrapping_key_id).ok_or_else(|| fail(CryptoErrorKind::UnknownKey))?;
        if wrapped.len() < 12 + 16 {
            return Err(fail(CryptoErrorKind::MalformedEnvelope));
        }
        let (nonce, ct) = wrapped.split_at(12);
        let aad = patient_wrap_context(self.organization, patient, key_id);
        let pt = Zeroizing::new(
            v.wrap
                .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
                .map_err(|_| fail(CryptoErrorKind::KeyUnwrap))?,
        );
        DataKey::from_slice(&pt)
    }
}

impl PatientKeys {
    /// Whether the patient's keys were destroyed.
    pub fn destroyed(&self) -> bool {
        matches!(self.state, PatientKeyState::Destroyed)
    }
}

pub(crate) fn org_wrap_context(organization: Uuid, key_id: Uuid) -> Vec<u8> {
    let mut v = b"austa:organization-key:v1:".to_vec();
    v.extend_from_slice(organization.as_bytes());
    v.extend_from_slice(key_id.as_bytes());
    v
}

fn patient_wrap_context(organization: Uuid, patient: Uuid, key_id: Uuid) -> Vec<u8> {
    let mut v = b"austa:patient-key:v1:".to_vec();
    v.extend_from_slice(organization.as_bytes());
    v.extend_from_slice(patient.as_bytes());
    v.extend_from_slice(key_id.as_bytes());
    v
}

pub(crate) const KEY_CHECK_CONTEXT: &[u8] = b"austa:key-check:v1";

/// The keys an operation needs: its organization's and some of its patients'.
pub struct KeySet {
    pub(crate) org: Arc<OrgKeys>,
    pub(crate) patients: HashMap<Uuid, Arc<PatientKeys>>,
}

impl KeySet {
    /// The encryption context of one row, under the patient's key when `patient` is given.
    pub(crate) fn row(&self, table: &'static str, row: Uuid, patient: Option<Uuid>) -> Result<RowCrypto<'_>> {
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
    pub(crate) fn fingerprint_row(
        &self,
        table: &'static str,
        row: Uuid,
        patient: Option<Uuid>,
    ) -> Result<RowCrypto<'_>> {
        let mut crypto = self.row(table, row, patient)?;
        crypto.fingerprint = true;
        Ok(crypto)
    }

    /// Like [`KeySet::row`], recording the normalized values the row's blind indexes are computed from.
    pub(crate) fn recording_row<'a>(
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
    pub(crate) fn several_org_versions(&self) -> bool {
        self.org.versions.len() > 1
    }

    /// Fails with a validation error on `field` unless `patient` has keys in this organization (used
    /// before writing a row that references the patient).
    pub(crate) fn require_patient(&self, patient: Uuid, field: &str) -> Result<()> {
        match self.patients.get(&patient) {
            Some(k) if k.destroyed() => Err(Error::Erased),
            Some(_) => Ok(()),
            None => Err(Error::validation(field, "refers to a row that does not exist in this organization")),
        }
    }

    /// Blind indexes of a normalized value under every live organization key version: what a lookup
    /// must match while a rotation re-indexes rows.
    pub(crate) fn blinds(&self, kind: BlindIndexKind, normalized: &str) -> Vec<Vec<u8>> {
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
    pub(crate) fn seal(&self, column: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
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
    pub(crate) fn open(&self, column: &str, env: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
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
    pub(crate) fn text(&self, column: &str, value: &Sensitive<String>) -> Result<Value> {
        Ok(Value::Bytes(Some(self.seal(column, value.expose()?.as_bytes())?)))
    }

    /// Encrypts an optional text value (NULL stays NULL).
    pub(crate) fn opt_text(&self, column: &str, value: Option<&Sensitive<String>>) -> Result<Value> {
        match value {
            Some(v) => self.text(column, v),
            None => Ok(Value::Bytes(None)),
        }
    }

    /// Encrypts any serializable value as JSON.
    pub(crate) fn json<T: Serialize>(&self, column: &str, value: &Sensitive<T>) -> Result<Value> {
        let bytes = Zeroizing::new(
            serde_json::to_vec(value.expose()?)
                .map_err(|_| Error::crypto(CryptoErrorKind::InvalidPlaintext, self.where_(column)))?,
        );
        Ok(Value::Bytes(Some(self.seal(column, &bytes)?)))
    }

    /// Encrypts an optional serializable value as JSON (NULL stays NULL).
    pub(crate) fn opt_json<T: Serialize>(&self, column: &str, value: Option<&Sensitive<T>>) -> Result<Value> {
        match value {
            Some(v) => self.json(column, v),
            None => Ok(Value::Bytes(None)),
        }
    }

    /// Decrypts an optional text column.
    pub(crate) fn open_opt_text(&self, row: &Row, column: &str) -> Result<Option<Sensitive<String>>> {
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
    pub(crate) fn open_text(&self, row: &Row, column: &str) -> Result<Sensitive<String>> {
        self.open_opt_text(row, column)?.ok_or_else(|| Error::CorruptData(format!("{} is NULL", self.where_(column))))
    }

    /// Decrypts an optional JSON column.
    pub(crate) fn open_opt_json<T: DeserializeOwned>(&self, row: &Row, column: &str) -> Result<Option<Sensitive<T>>> {
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

    /// Blind index of a normalized value (see [`BlindIndexKind`]) under the active organization key.
    pub(crate) fn blind(&self, kind: BlindIndexKind, normalized: &str) -> Result<Value> {
        if let Some(recorded) = self.recorded {
            recorded.borrow_mut().push((kind, normalized.to_string()));
        }
        Ok(Value::Bytes(Some(blind_index::compute(&self.org.active()?.blind, kind, normalized))))
    }
}

/// Unwrapped keys and where they come from: the master key provider, the key store, the cache.
pub(crate) struct Keyring {
    provider: RwLock<Arc<dyn KeyProvider>>,
    pub(crate) store: Pool,
    pub(crate) cache: KeyCache,
}

impl Keyring {
    pub(crate) fn new(provider: Arc<dyn KeyProvider>, store: Pool, cache: KeyCacheConfig) -> Self {
        Self { provider: RwLock::new(provider), store, cache: KeyCache::new(cache) }
    }

    pub(crate) fn provider(&self) -> Arc<dyn KeyProvider> {
        self.provider.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub(crate) fn set_provider(&self, provider: Arc<dyn KeyProvider>) {
        *self.provider.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = provider;
        self.cache.clear();
    }
}

/// A key-store table missing means a key store that was never migrated.
fn is_missing_table(err: &Error) -> bool {
    match err {
        Error::Database(sqlx::Error::Database(db)) => {
            db.code().as_deref() == Some("42P01") || db.message().contains("no such table")
        }
        _ => false,
    }
}

impl Database {
    fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// Checks the master key against the key store's key check value. Returns `Ok(false)` when the key
    /// store has not been initialized yet (no migrations, or no check value).
    pub(crate) async fn verify_master_key(&self) -> Result<bool> {
        let mut tx = begin_on(&self.keyring().store, None, TxMode::Read).await?;
        let row = match tx.fetch_optional(Query::new("SELECT key_check FROM keystore_meta WHERE id = 1")).await {
            Ok(row) => row,
            Err(e) if is_missing_table(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        tx.commit().await?;
        let Some(row) = row else { return Ok(false) };
        let check = row.opt_bytes("key_check")?.unwrap_or_default();
        let provider = self.keyring().provider();
        match provider.unwrap(&check, KEY_CHECK_CONTEXT) {
            Ok(k) if k.expose() == &[0u8; 32] => Ok(true),
            _ => Err(Error::crypto(
                CryptoErrorKind::WrongMasterKey,
                format!("the master key from {} is not the one this key store was created with", provider.describe()),
            )),
        }
    }

    /// Inside a key-store transaction that is about to write a key wrapped by the master key: holds the
    /// key check row (shared; a master key rotation takes it exclusively) and checks that this handle's
    /// master key is still the store's. Without it, a key created while another handle rotates the master
    /// key, or by a process still holding the old one, would be wrapped by the wrong key.
    pub(crate) async fn check_master_key_in(&self, tx: &mut Tx) -> Result<()> {
        let lock = match tx {
            Tx::Postgres(_) => " FOR SHARE",
            Tx::Sqlite(_) => "",
        };
        let row = tx
            .fetch_optional(Query::new(format!("SELECT key_check FROM keystore_meta WHERE id = 1{lock}")))
            .await?
            .ok_or_else(|| Error::Config("the key store is not initialized: run Database::migrate".into()))?;
        let check = row.opt_bytes("key_check")?.unwrap_or_default();
        let provider = self.keyring().provider();
        match provider.unwrap(&check, KEY_CHECK_CONTEXT) {
            Ok(k) if k.expose() == &[0u8; 32] => Ok(()),
            _ => Err(Error::crypto(
                CryptoErrorKind::WrongMasterKey,
                format!("the master key from {} is no longer the key store's", provider.describe()),
            )),
        }
    }

    /// Writes the key check value for the current master key if the key store has none.
    pub(crate) async fn ensure_key_check(&self) -> Result<()> {
        if self.verify_master_key().await? {
            return Ok(());
        }
        let check = self.keyring().provider().wrap(&DataKey::from_slice(&[0u8; 32])?, KEY_CHECK_CONTEXT)?;
        let mut tx = begin_on(&self.keyring().store, None, TxMode::Write).await?;
        tx.execute(
            Query::new(
                "INSERT INTO keystore_meta (id, key_check, created_at) VALUES (1, $1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(check)
            .bind(crate::time::now()),
        )
        .await?;
        tx.commit().await?;
        self.verify_master_key().await.map(|_| ())
    }

    /// The organization's keys, from the cache or unwrapped from the key store.
    pub(crate) async fn org_keys(&self, organization: Uuid) -> Result<Arc<OrgKeys>> {
        if let Some(Cached::Org(k)) = self.keyring().cache.get(CacheKey::Org(organization)) {
            return Ok(k);
        }
        self.load_org_keys(organization).await
    }

    pub(crate) async fn load_org_keys(&self, organization: Uuid) -> Result<Arc<OrgKeys>> {
        let generation = self.keyring().cache.generation();
        let mut tx = begin_on(&self.keyring().store, Some(organization), TxMode::Read).await?;
        let rows = tx
            .fetch_all(
                Query::new(
                    "SELECT id, version, wrapped_key, state FROM organization_keys \
                     WHERE organization_id = $1 ORDER BY version",
                )
                .bind(organization),
            )
            .await?;
        tx.commit().await?;
        let provider = self.keyring().provider();
        let mut versions = Vec::with_capacity(rows.len());
        let mut active = None;
        for r in &rows {
            let id = r.uuid("id")?;
            let wrapped = r.opt_bytes("wrapped_key")?.unwrap_or_default();
            let key = provider.unwrap(&wrapped, &org_wrap_context(organization, id))?;
            versions.push(OrgVersion::derive(id, &key)?);
            if r.text("state")? == "ACTIVE" {
                active = Some(id);
            }
        }
        self.keyring().cache.count_unwraps(rows.len() as u64);
        let active = active.ok_or_else(|| Error::crypto(CryptoErrorKind::UnknownKey, "organization key"))?;
        let keys = Arc::new(OrgKeys { organization, active, versions });
        self.keyring().cache.put_loaded(generation, CacheKey::Org(organization), Cached::Org(keys.clone()));
        Ok(keys)
    }

    /// A fresh organization key (version 1), ready to insert in the key store.
    pub(crate) fn new_org_key(&self, organization: Uuid, version: i64) -> Result<(Query, OrgVersion)> {
        let id = Uuid::now_v7();
        let key = DataKey::generate();
        let wrapped = self.keyring().provider().wrap(&key, &org_wrap_context(organization, id))?;
        let insert = Query::new(
            "INSERT INTO organization_keys (organization_id, id, version, wrapped_key, state, created_at) \
             VALUES ($1, $2, $3, $4, 'ACTIVE', $5)",
        )
        .bind(organization)
        .bind(id)
        .bind(version)
        .bind(wrapped)
        .bind(crate::time::now());
        Ok((insert, OrgVersion::derive(id, &key)?))
    }

    /// Creates an organization's first key in the key store.
    pub(crate) async fn create_org_key(&self, organization: Uuid) -> Result<()> {
        let (insert, version) = self.new_org_key(organization, 1)?;
        let mut tx = begin_on(&self.keyring().store, Some(organization), TxMode::Write).await?;
        self.check_master_key_in(&mut tx).await?;
        tx.execute(insert).await?;
        tx.commit().await?;
        let keys = OrgKeys { organization, active: version.id, versions: vec![version] };
        self.keyring().cache.put(CacheKey::Org(organization), Cached::Org(Arc::new(keys)));
        Ok(())
    }

    /// The keys of `organization` and of the given patients (cached, or loaded in one key-store query).
    /// Patients without keys are absent from the set.
    pub(crate) async fn key_set(&self, organization: Uuid, patients: impl IntoIterator<Item = Uuid>) -> Result<KeySet> {
        let mut org = self.org_keys(organization).await?;
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for p in patients {
            if found.contains_key(&p) || missing.contains(&p) {
                continue;
            }
            match self.keyring().cache.get(CacheKey::Patient(organization, p)) {
                Some(Cached::Patient(k)) => {
                    found.insert(p, k);
                }
                _ => missing.push(p),
            }
        }
        for chunk in missing.chunks(200) {
            let generation = self.keyring().cache.generation();
            let loaded = match self.load_patient_keys(&org, chunk).await {
                // Wrapped by a version this process has not seen yet (a rotation elsewhere): reload.
                Err(Error::Crypto { kind: CryptoErrorKind::UnknownKey, .. }) => {
                    self.keyring().cache.invalidate(CacheKey::Org(organization));
                    org = self.load_org_keys(organization).await?;
                    self.load_patient_keys(&org, chunk).await?
                }
                other => other?,
            };
            for k in loaded {
                let key = CacheKey::Patient(organization, k.patient);
                self.keyring().cache.put_loaded(generation, key, Cached::Patient(k.clone()));
                found.insert(k.patient, k);
            }
        }
        Ok(KeySet { org, patients: found })
    }

    /// `keys` reloaded from the key store if it holds a key version they lack, as happens when another
    /// process started a rotation before this handle's cache expired: rows it re-encrypts name the new
    /// version. `None` when nothing is missing (a genuinely unknown key stays an error); that check is
    /// one key-store query and unwraps nothing.
    pub(crate) async fn refresh_key_set(&self, keys: &KeySet) -> Result<Option<KeySet>> {
        let org = keys.org.organization;
        let patients: Vec<Uuid> = keys.patients.keys().copied().collect();
        let mut tx = begin_on(&self.keyring().store, Some(org), TxMode::Read).await?;
        let org_rows =
            tx.fetch_all(Query::new("SELECT id FROM organization_keys WHERE organization_id = $1").bind(org)).await?;
        let mut patient_rows = Vec::new();
        for chunk in patients.chunks(200) {
            let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT patient_id, id FROM patient_keys \
                 WHERE organization_id = $1 AND state <> 'DESTROYED' AND patient_id IN ({})",
                placeholders.join(", ")
            );
            patient_rows.extend(tx.fetch_all(chunk.iter().fold(Query::new(sql).bind(org), |q, p| q.bind(*p))).await?);
        }
        tx.commit().await?;
        let mut stale = false;
        for r in &org_rows {
            stale |= keys.org.version(r.uuid("id")?).is_none();
        }
        for r in &patient_rows {
            if let Some(PatientKeyState::Live { versions, .. }) =
                keys.patients.get(&r.uuid("patient_id")?).map(|k| &k.state)
            {
                stale |= !versions.contains_key(&r.uuid("id")?);
            }
        }
        if !stale {
            return Ok(None);
        }
        self.keyring().cache.invalidate_org(org);
        self.key_set(org, patients).await.map(Some)
    }

    async fn load_patient_keys(&self, org: &OrgKeys, patients: &[Uuid]) -> Result<Vec<Arc<PatientKeys>>> {
        if patients.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..patients.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT patient_id, id, wrapped_key, wrapping_key_id, state FROM patient_keys \
             WHERE organization_id = $1 AND patient_id IN ({}) ORDER BY patient_id, version",
            placeholders.join(", ")
        );
        let query = patients.iter().fold(Query::new(sql).bind(org.organization), |q, p| q.bind(*p));
        let mut tx = begin_on(&self.keyring().store, Some(org.organization), TxMode::Read).await?;
        let rows = tx.fetch_all(query).await?;
        tx.commit().await?;
        /// Per patient: the active version, every live version's cipher, whether any was destroyed.
        type Loaded = (Option<Uuid>, HashMap<Uuid, Aes256Gcm>, bool);
        let mut by_patient: HashMap<Uuid, Loaded> = HashMap::new();
        let mut unwraps = 0u64;
        for r in &rows {
            let patient = r.uuid("patient_id")?;
            let id = r.uuid("id")?;
            let entry = by_patient.entry(patient).or_insert_with(|| (None, HashMap::new(), false));
            match r.text("state")?.as_str() {
                "DESTROYED" => entry.2 = true,
                state => {
                    let wrapped = r.opt_bytes("wrapped_key")?.unwrap_or_default();
                    let key = org.unwrap_patient_key(patient, id, r.uuid("wrapping_key_id")?, &wrapped)?;
                    unwraps += 1;
                    entry.1.insert(id, patient_cipher(&key)?);
                    if state == "ACTIVE" {
                        entry.0 = Some(id);
                    }
                }
            }
        }
        self.keyring().cache.count_unwraps(unwraps);
        Ok(by_patient
            .into_iter()
            .map(|(patient, (active, versions, destroyed))| {
                let state = match active {
                    Some(active) if !destroyed => PatientKeyState::Live { active, versions },
                    _ => PatientKeyState::Destroyed,
                };
                Arc::new(PatientKeys { patient, state })
            })
            .collect())
    }

    /// Creates a patient's first key (before the patient row is written; a key left behind by a failed
    /// write protects nothing and is harmless).
    pub(crate) async fn create_patient_key(&self, organization: Uuid, patient: Uuid) -> Result<()> {
        self.create_patient_keys(organization, [patient]).await
    }

    /// Creates the first key of each of `patients` in one keystore transaction (the bulk path).
    pub(crate) async fn create_patient_keys(
        &self,
        organization: Uuid,
        patients: impl IntoIterator<Item = Uuid>,
    ) -> Result<()> {
        let org = self.org_keys(organization).await?;
        let now = crate::time::now();
        let mut created = Vec::new();
        let mut tx = begin_on(&self.keyring().store, Some(organization), TxMode::Write).await?;
        for patient in patients {
            let id = Uuid::now_v7();
            let key = DataKey::generate();
            let (wrapping_key_id, wrapped) = org.wrap_patient_key(patient, id, &key)?;
            tx.execute(
                Query::new(
                    "INSERT INTO patient_keys (organization_id, id, patient_id, version, wrapped_key, wrapping_key_id, \
                     state, created_at) VALUES ($1, $2, $3, 1, $4, $5, 'ACTIVE', $6)",
                )
                .bind(organization)
                .bind(id)
                .bind(patient)
                .bind(wrapped)
                .bind(wrapping_key_id)
                .bind(now),
            )
            .await?;
            created.push((patient, id, patient_cipher(&key)?));
        }
        tx.commit().await?;
        for (patient, id, cipher) in created {
            let keys = PatientKeys {
                patient,
                state: PatientKeyState::Live { active: id, versions: HashMap::from([(id, cipher)]) },
            };
            self.keyring().cache.put(CacheKey::Patient(organization, patient), Cached::Patient(Arc::new(keys)));
        }
        Ok(())
    }

    /// Counters of key work since this handle was opened.
    pub fn key_stats(&self) -> super::cache::KeyStats {
        self.keyring().cache.stats()
    }

    /// How many unwrapped keys the cache holds now.
    pub fn cached_keys(&self) -> usize {
        self.keyring().cache.len()
    }
}
