//! Organization keys: created on first use, stored wrapped, cached unwrapped, applied per row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aes_gcm::{Aes256Gcm, KeyInit};
use hkdf::Hkdf;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::blind_index::{self, BlindIndexKind};
use super::envelope;
use super::keys::{DataKey, KeyProvider};
use super::sensitive::Sensitive;
use crate::db::{Database, Query, Row, TxMode, Value};
use crate::error::{CryptoErrorKind, Error, Result};

/// One unwrapped version of an organization key, with its derived subkeys.
struct KeyVersion {
    cipher: Aes256Gcm,
    blind: Zeroizing<[u8; 32]>,
}

/// All key versions of one organization; the newest encrypts and indexes, every version decrypts.
pub struct OrgKeys {
    organization: Uuid,
    active: Uuid,
    versions: HashMap<Uuid, KeyVersion>,
}

impl OrgKeys {
    /// The per-row encryption context for `table`, row `row_id`.
    pub(crate) fn row<'a>(&'a self, table: &'static str, row_id: Uuid) -> RowCrypto<'a> {
        RowCrypto { keys: self, table, row: row_id }
    }

    /// The version that encrypts new values and computes blind indexes.
    fn active(&self) -> Result<&KeyVersion> {
        self.versions
            .get(&self.active)
            .ok_or_else(|| Error::crypto(CryptoErrorKind::UnknownKey, "active organization key"))
    }

    /// Blind index of an already-normalized value under the active key.
    pub(crate) fn blind(&self, kind: BlindIndexKind, normalized: &str) -> Result<Vec<u8>> {
        Ok(blind_index::compute(&self.active()?.blind, kind, normalized))
    }

    fn derive(key: &DataKey) -> Result<KeyVersion> {
        let hk = Hkdf::<Sha256>::new(Some(b"austa organization key"), key.expose());
        let mut enc = Zeroizing::new([0u8; 32]);
        let mut blind = Zeroizing::new([0u8; 32]);
        hk.expand(b"austa field encryption v1", enc.as_mut())
            .and_then(|_| hk.expand(b"austa blind index v1", blind.as_mut()))
            .map_err(|_| Error::crypto(CryptoErrorKind::InvalidKey, "deriving subkeys"))?;
        Ok(KeyVersion { cipher: Aes256Gcm::new(enc.as_ref().into()), blind })
    }
}

/// Unwrapped organization keys, cached for the life of the [`Database`].
pub(crate) struct Keyring {
    provider: Arc<dyn KeyProvider>,
    cache: Mutex<HashMap<Uuid, Arc<OrgKeys>>>,
}

fn wrap_context(organization: Uuid, key_id: Uuid) -> Vec<u8> {
    let mut v = b"austa:organization-key:v1:".to_vec();
    v.extend_from_slice(organization.as_bytes());
    v.extend_from_slice(key_id.as_bytes());
    v
}

impl Keyring {
    pub(crate) fn new(provider: Arc<dyn KeyProvider>) -> Self {
        Self { provider, cache: Mutex::new(HashMap::new()) }
    }

    fn cached(&self, organization: Uuid) -> Option<Arc<OrgKeys>> {
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&organization).cloned()
    }
}

impl Database {
    /// The keys of `organization`, unwrapping (and on first use creating) them. Must not be called
    /// while this task holds an open transaction: it may need a connection of its own.
    pub(crate) async fn org_keys(&self, organization: Uuid) -> Result<Arc<OrgKeys>> {
        let keyring = &self.inner.keyring;
        if let Some(keys) = keyring.cached(organization) {
            return Ok(keys);
        }
        let rows = self.load_wrapped_keys(organization).await?;
        let mut versions = HashMap::new();
        let mut active = None;
        for (id, wrapped) in rows {
            let key = keyring.provider.unwrap(&wrapped, &wrap_context(organization, id))?;
            versions.insert(id, OrgKeys::derive(&key)?);
            active = Some(id);
        }
        let active = active.ok_or_else(|| Error::crypto(CryptoErrorKind::UnknownKey, "organization key"))?;
        let keys = Arc::new(OrgKeys { organization, active, versions });
        keyring.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(organization, keys.clone());
        Ok(keys)
    }

    /// A fresh organization key, ready to insert (the returned statement) in the same transaction as
    /// the organization row; cache it with [`Database::cache_org_keys`] after commit.
    pub(crate) fn new_org_keys(&self, organization: Uuid) -> Result<(Query, OrgKeys)> {
        let id = Uuid::now_v7();
        let key = DataKey::generate();
        let wrapped = self.inner.keyring.provider.wrap(&key, &wrap_context(organization, id))?;
        let insert = Query::new(
            "INSERT INTO organization_keys (organization_id, id, version, wrapped_key, created_at) \
             VALUES ($1, $2, 1, $3, $4)",
        )
        .bind(organization)
        .bind(id)
        .bind(wrapped)
        .bind(crate::time::now());
        let keys = OrgKeys { organization, active: id, versions: HashMap::from([(id, OrgKeys::derive(&key)?)]) };
        Ok((insert, keys))
    }

    /// Caches keys created by [`Database::new_org_keys`] once their transaction committed.
    pub(crate) fn cache_org_keys(&self, organization: Uuid, keys: OrgKeys) {
        self.inner
            .keyring
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(organization, Arc::new(keys));
    }

    /// (id, wrapped key) of every version, oldest first.
    async fn load_wrapped_keys(&self, organization: Uuid) -> Result<Vec<(Uuid, Vec<u8>)>> {
        let mut tx = self.begin(Some(organization), TxMode::Read).await?;
        let rows = tx
            .fetch_all(
                Query::new(
                    "SELECT id, wrapped_key FROM organization_keys \
                     WHERE organization_id = $1 ORDER BY version",
                )
                .bind(organization),
            )
            .await?;
        tx.commit().await?;
        rows.iter().map(|r| Ok((r.uuid("id")?, r.opt_bytes("wrapped_key")?.unwrap_or_default()))).collect()
    }
}

/// Encryption context of one row: seals and opens its columns.
pub struct RowCrypto<'a> {
    keys: &'a OrgKeys,
    table: &'static str,
    row: Uuid,
}

impl RowCrypto<'_> {
    fn context(&self, column: &str) -> Vec<u8> {
        let mut v = Vec::with_capacity(64 + self.table.len() + column.len());
        v.extend_from_slice(b"austa:field:v1:");
        v.extend_from_slice(self.keys.organization.as_bytes());
        v.extend_from_slice(self.table.as_bytes());
        v.push(0);
        v.extend_from_slice(column.as_bytes());
        v.push(0);
        v.extend_from_slice(self.row.as_bytes());
        v
    }

    fn where_(&self, column: &str) -> String {
        format!("{}.{}", self.table, column)
    }

    fn seal(&self, column: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let key = self.keys.active()?;
        envelope::seal(&key.cipher, self.keys.active, &self.context(column), plaintext)
    }

    fn open(&self, column: &str, envelope_bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let fail = |kind| Error::crypto(kind, self.where_(column));
        let key_id = envelope::key_id(envelope_bytes).map_err(fail)?;
        let key = self.keys.versions.get(&key_id).ok_or_else(|| fail(CryptoErrorKind::UnknownKey))?;
        envelope::open(&key.cipher, envelope_bytes, &self.context(column)).map_err(fail)
    }

    /// Encrypts a text value.
    pub(crate) fn text(&self, column: &str, value: &Sensitive<String>) -> Result<Value> {
        Ok(Value::Bytes(Some(self.seal(column, value.expose().as_bytes())?)))
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
            serde_json::to_vec(value.expose())
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
        let pt = self.open(column, &env)?;
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
        let pt = self.open(column, &env)?;
        serde_json::from_slice(&pt)
            .map(|v| Some(Sensitive::new(v)))
            .map_err(|_| Error::crypto(CryptoErrorKind::InvalidPlaintext, self.where_(column)))
    }

    /// Blind index of a normalized value (see [`BlindIndexKind`]).
    pub(crate) fn blind(&self, kind: BlindIndexKind, normalized: &str) -> Result<Value> {
        Ok(Value::Bytes(Some(self.keys.blind(kind, normalized)?)))
    }
}
