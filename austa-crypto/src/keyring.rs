//! The key hierarchy at run time: loading, creating and caching keys (see [`material`](crate::material)
//! for the hierarchy itself).
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

use aes_gcm::Aes256Gcm;
use austa_error::{CryptoErrorKind, Error, Result};
use austa_sql::time::Clock;
use austa_sql::{begin_on, Pool, Query, QueryBuilder, Tx, TxMode};
use uuid::Uuid;

use crate::cache::{CacheKey, Cached, KeyCache, KeyCacheConfig, KeyStats};
use crate::fields::KeySet;
use crate::keys::{DataKey, KeyProvider};
use crate::material::{
    org_wrap_context, patient_cipher, OrgKeys, OrgVersion, PatientKeyState, PatientKeys, KEY_CHECK_CONTEXT,
};

/// Unwrapped keys and where they come from: the master key provider, the key store, the cache.
pub struct Keyring {
    provider: RwLock<Arc<dyn KeyProvider>>,
    store: Pool,
    cache: KeyCache,
    clock: Arc<dyn Clock>,
}

impl Keyring {
    /// A keyring over the key store `store`, unwrapping with `provider`, caching within `cache`'s
    /// limits and dating new keys by `clock`.
    pub fn new(provider: Arc<dyn KeyProvider>, store: Pool, cache: KeyCacheConfig, clock: Arc<dyn Clock>) -> Self {
        Self { provider: RwLock::new(provider), store, cache: KeyCache::new(cache), clock }
    }

    /// The key store's pool.
    pub fn store(&self) -> &Pool {
        &self.store
    }

    /// Drops every cached unwrapped key (they are zeroized).
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    /// Forgets the cached keys of one organization and its patients.
    pub fn invalidate_organization(&self, organization: Uuid) {
        self.cache.invalidate_org(organization);
    }

    /// Forgets one patient's cached keys.
    pub fn invalidate_patient(&self, organization: Uuid, patient: Uuid) {
        self.cache.invalidate(CacheKey::Patient(organization, patient));
    }

    /// The master key provider.
    pub fn provider(&self) -> Arc<dyn KeyProvider> {
        self.provider.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Replaces the master key provider (after a master key rotation) and empties the cache.
    pub fn set_provider(&self, provider: Arc<dyn KeyProvider>) {
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

impl Keyring {
    /// Checks the master key against the key store's key check value. Returns `Ok(false)` when the key
    /// store has not been initialized yet (no migrations, or no check value).
    pub async fn verify_master_key(&self) -> Result<bool> {
        let mut tx = begin_on(&self.store, None, TxMode::Read).await?;
        let row = match tx.fetch_optional(Query::new("SELECT key_check FROM keystore_meta WHERE id = 1")).await {
            Ok(row) => row,
            Err(e) if is_missing_table(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        tx.commit().await?;
        let Some(row) = row else { return Ok(false) };
        let check = row.opt_bytes("key_check")?.unwrap_or_default();
        let provider = self.provider();
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
    pub async fn check_master_key_in(&self, tx: &mut Tx) -> Result<()> {
        let lock = tx.lock(austa_sql::RowLock::Share);
        let row = tx
            .fetch_optional(Query::new(format!("SELECT key_check FROM keystore_meta WHERE id = 1{lock}")))
            .await?
            .ok_or_else(|| Error::Config("the key store is not initialized: run Database::migrate".into()))?;
        let check = row.opt_bytes("key_check")?.unwrap_or_default();
        let provider = self.provider();
        match provider.unwrap(&check, KEY_CHECK_CONTEXT) {
            Ok(k) if k.expose() == &[0u8; 32] => Ok(()),
            _ => Err(Error::crypto(
                CryptoErrorKind::WrongMasterKey,
                format!("the master key from {} is no longer the key store's", provider.describe()),
            )),
        }
    }

    /// Writes the key check value for the current master key if the key store has none.
    pub async fn ensure_key_check(&self) -> Result<()> {
        if self.verify_master_key().await? {
            return Ok(());
        }
        let check = self.provider().wrap(&DataKey::from_slice(&[0u8; 32])?, KEY_CHECK_CONTEXT)?;
        let mut tx = begin_on(&self.store, None, TxMode::Write).await?;
        tx.execute(
            Query::new(
                "INSERT INTO keystore_meta (id, key_check, created_at) VALUES (1, $1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(check)
            .bind(austa_sql::time::truncate(self.clock.now())),
        )
        .await?;
        tx.commit().await?;
        self.verify_master_key().await.map(|_| ())
    }

    /// The organization's keys, from the cache or unwrapped from the key store.
    pub async fn org_keys(&self, organization: Uuid) -> Result<Arc<OrgKeys>> {
        if let Some(Cached::Org(k)) = self.cache.get(CacheKey::Org(organization)) {
            return Ok(k);
        }
        self.load_org_keys(organization).await
    }

    /// The organization's keys, loaded from the key store and unwrapped (bypassing the cache, which
    /// then holds them).
    pub async fn load_org_keys(&self, organization: Uuid) -> Result<Arc<OrgKeys>> {
        let generation = self.cache.generation();
        let mut tx = begin_on(&self.store, Some(organization), TxMode::Read).await?;
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
        let provider = self.provider();
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
        self.cache.count_unwraps(rows.len() as u64);
        let active = active.ok_or_else(|| Error::crypto(CryptoErrorKind::UnknownKey, "organization key"))?;
        let keys = Arc::new(OrgKeys::new(organization, active, versions));
        self.cache.put_loaded(generation, CacheKey::Org(organization), Cached::Org(keys.clone()));
        Ok(keys)
    }

    /// A fresh organization key (version 1), ready to insert in the key store.
    pub fn new_org_key(&self, organization: Uuid, version: i64) -> Result<(Query, OrgVersion)> {
        let id = Uuid::now_v7();
        let key = DataKey::generate();
        let wrapped = self.provider().wrap(&key, &org_wrap_context(organization, id))?;
        let insert = Query::new(
            "INSERT INTO organization_keys (organization_id, id, version, wrapped_key, state, created_at) \
             VALUES ($1, $2, $3, $4, 'ACTIVE', $5)",
        )
        .bind(organization)
        .bind(id)
        .bind(version)
        .bind(wrapped)
        .bind(austa_sql::time::truncate(self.clock.now()));
        Ok((insert, OrgVersion::derive(id, &key)?))
    }

    /// Creates an organization's first key in the key store.
    pub async fn create_org_key(&self, organization: Uuid) -> Result<()> {
        let (insert, version) = self.new_org_key(organization, 1)?;
        let mut tx = begin_on(&self.store, Some(organization), TxMode::Write).await?;
        self.check_master_key_in(&mut tx).await?;
        tx.execute(insert).await?;
        tx.commit().await?;
        let keys = OrgKeys::new(organization, version.id, vec![version]);
        self.cache.put(CacheKey::Org(organization), Cached::Org(Arc::new(keys)));
        Ok(())
    }

    /// The keys of `organization` and of the given patients (cached, or loaded in one key-store query).
    /// Patients without keys are absent from the set.
    pub async fn key_set(&self, organization: Uuid, patients: impl IntoIterator<Item = Uuid>) -> Result<KeySet> {
        let mut org = self.org_keys(organization).await?;
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for p in patients {
            if found.contains_key(&p) || missing.contains(&p) {
                continue;
            }
            match self.cache.get(CacheKey::Patient(organization, p)) {
                Some(Cached::Patient(k)) => {
                    found.insert(p, k);
                }
                _ => missing.push(p),
            }
        }
        for chunk in missing.chunks(200) {
            let generation = self.cache.generation();
            let loaded = match self.load_patient_keys(&org, chunk).await {
                // Wrapped by a version this process has not seen yet (a rotation elsewhere): reload.
                Err(Error::Crypto { kind: CryptoErrorKind::UnknownKey, .. }) => {
                    self.cache.invalidate(CacheKey::Org(organization));
                    org = self.load_org_keys(organization).await?;
                    self.load_patient_keys(&org, chunk).await?
                }
                other => other?,
            };
            for k in loaded {
                let key = CacheKey::Patient(organization, k.patient);
                self.cache.put_loaded(generation, key, Cached::Patient(k.clone()));
                found.insert(k.patient, k);
            }
        }
        Ok(KeySet { org, patients: found })
    }

    /// Adds `patient`'s keys to `keys` when this handle has them cached, without asking the key
    /// store (so that code holding a transaction may look, and never waits for another connection).
    /// Returns whether `keys` now holds them.
    pub fn add_cached_patient(&self, keys: &mut KeySet, patient: Uuid) -> bool {
        if keys.patients.contains_key(&patient) {
            return true;
        }
        match self.cache.get(CacheKey::Patient(keys.org.organization, patient)) {
            Some(Cached::Patient(k)) => {
                keys.patients.insert(patient, k);
                true
            }
            _ => false,
        }
    }

    /// `keys` reloaded from the key store if it holds a key version they lack, as happens when another
    /// process started a rotation before this handle's cache expired: rows it re-encrypts name the new
    /// version. `None` when nothing is missing (a genuinely unknown key stays an error); that check is
    /// one key-store query and unwraps nothing.
    pub async fn refresh_key_set(&self, keys: &KeySet) -> Result<Option<KeySet>> {
        let org = keys.org.organization;
        let patients: Vec<Uuid> = keys.patients.keys().copied().collect();
        let mut tx = begin_on(&self.store, Some(org), TxMode::Read).await?;
        let org_rows =
            tx.fetch_all(Query::new("SELECT id FROM organization_keys WHERE organization_id = $1").bind(org)).await?;
        let mut patient_rows = Vec::new();
        for chunk in patients.chunks(200) {
            let mut q = QueryBuilder::new("SELECT patient_id, id FROM patient_keys WHERE organization_id = ");
            q.push_bind(org).push(" AND state <> 'DESTROYED' AND patient_id IN (").push_binds(chunk.iter().copied());
            q.push(")");
            patient_rows.extend(tx.fetch_all(q.build()).await?);
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
        self.cache.invalidate_org(org);
        self.key_set(org, patients).await.map(Some)
    }

    /// A fresh first key for `patient`, wrapped by the organization's active key: the key store row
    /// to insert, its id and the cipher it gives.
    fn new_patient_key(&self, org: &OrgKeys, patient: Uuid) -> Result<(Query, Uuid, Aes256Gcm)> {
        let id = Uuid::now_v7();
        let key = DataKey::generate();
        let (wrapping_key_id, wrapped) = org.wrap_patient_key(patient, id, &key)?;
        let insert = Query::new(
            "INSERT INTO patient_keys (organization_id, id, patient_id, version, wrapped_key, wrapping_key_id, \
             state, created_at) VALUES ($1, $2, $3, 1, $4, $5, 'ACTIVE', $6)",
        )
        .bind(org.organization)
        .bind(id)
        .bind(patient)
        .bind(wrapped)
        .bind(wrapping_key_id)
        .bind(austa_sql::time::truncate(self.clock.now()));
        Ok((insert, id, patient_cipher(&key)?))
    }

    /// Creates `patient`'s first key through `tx`, a transaction that the caller holds on the key
    /// store's own database (as [`Keyring::add_patient_in`]), and adds it to `keys`: the key row
    /// commits or rolls back with the caller's rows, so a failed write leaves no key behind. It is
    /// not cached yet (the transaction may still roll back): [`Keyring::cache_created`] after the
    /// commit.
    pub async fn create_patient_key_in(&self, tx: &mut Tx, keys: &mut KeySet, patient: Uuid) -> Result<()> {
        let (insert, id, cipher) = self.new_patient_key(&keys.org, patient)?;
        tx.execute(insert).await?;
        let state = PatientKeyState::Live { active: id, versions: HashMap::from([(id, cipher)]) };
        keys.patients.insert(patient, Arc::new(PatientKeys { patient, state }));
        Ok(())
    }

    /// Caches the keys of `patients` from `keys`: those that [`Keyring::create_patient_key_in`]
    /// created, once the caller's transaction has committed.
    pub fn cache_created(&self, keys: &KeySet, patients: &[Uuid]) {
        for patient in patients {
            if let Some(k) = keys.patients.get(patient) {
                self.cache.put(CacheKey::Patient(keys.org.organization, *patient), Cached::Patient(k.clone()));
            }
        }
    }

    /// Adds `patient`'s keys to `keys`, reading the key store through `tx`, a transaction that the
    /// caller holds on the key store's own database (the default, where the key store shares the data
    /// database): a writer that meets a patient whose keys are not cached reads them with one more
    /// statement in its transaction, instead of giving up its transaction to open another. The keys
    /// are cached as [`Keyring::key_set`] would. Returns whether `keys` now holds them (false: the
    /// patient has no key). A key wrapped by an organization key version that `keys` lack (a rotation
    /// elsewhere) is the `crypto` error `UnknownKey`; [`Keyring::key_set`] reloads for that case.
    pub async fn add_patient_in(&self, tx: &mut Tx, keys: &mut KeySet, patient: Uuid) -> Result<bool> {
        if self.add_cached_patient(keys, patient) {
            return Ok(true);
        }
        let generation = self.cache.generation();
        let loaded = self.load_patient_keys_in(tx, &keys.org, &[patient]).await?;
        let mut found = false;
        for k in loaded {
            self.cache.put_loaded(
                generation,
                CacheKey::Patient(keys.org.organization, k.patient),
                Cached::Patient(k.clone()),
            );
            found |= k.patient == patient;
            keys.patients.insert(k.patient, k);
        }
        Ok(found)
    }

    async fn load_patient_keys(&self, org: &OrgKeys, patients: &[Uuid]) -> Result<Vec<Arc<PatientKeys>>> {
        if patients.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = begin_on(&self.store, Some(org.organization), TxMode::Read).await?;
        let loaded = self.load_patient_keys_in(&mut tx, org, patients).await?;
        tx.commit().await?;
        Ok(loaded)
    }

    /// The keys of `patients`, read through `tx` (on the key store's database) and unwrapped.
    async fn load_patient_keys_in(
        &self,
        tx: &mut Tx,
        org: &OrgKeys,
        patients: &[Uuid],
    ) -> Result<Vec<Arc<PatientKeys>>> {
        let mut q = QueryBuilder::new(
            "SELECT patient_id, id, wrapped_key, wrapping_key_id, state FROM patient_keys WHERE organization_id = ",
        );
        q.push_bind(org.organization).push(" AND patient_id IN (").push_binds(patients.iter().copied());
        q.push(") ORDER BY patient_id, version");
        let rows = tx.fetch_all(q.build()).await?;
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
        self.cache.count_unwraps(unwraps);
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
    pub async fn create_patient_key(&self, organization: Uuid, patient: Uuid) -> Result<()> {
        self.create_patient_keys(organization, [patient]).await
    }

    /// Creates the first key of each of `patients` in one keystore transaction (the bulk path).
    pub async fn create_patient_keys(
        &self,
        organization: Uuid,
        patients: impl IntoIterator<Item = Uuid>,
    ) -> Result<()> {
        let patients: Vec<Uuid> = patients.into_iter().collect();
        if patients.is_empty() {
            return Ok(());
        }
        let org = self.org_keys(organization).await?;
        let mut created = Vec::new();
        let mut tx = begin_on(&self.store, Some(organization), TxMode::Write).await?;
        for patient in patients {
            let (insert, id, cipher) = self.new_patient_key(&org, patient)?;
            tx.execute(insert).await?;
            created.push((patient, id, cipher));
        }
        tx.commit().await?;
        for (patient, id, cipher) in created {
            let keys = PatientKeys {
                patient,
                state: PatientKeyState::Live { active: id, versions: HashMap::from([(id, cipher)]) },
            };
            self.cache.put(CacheKey::Patient(organization, patient), Cached::Patient(Arc::new(keys)));
        }
        Ok(())
    }

    /// Counters of key work since this handle was opened.
    pub fn key_stats(&self) -> KeyStats {
        self.cache.stats()
    }

    /// How many unwrapped keys the cache holds now.
    pub fn cached_keys(&self) -> usize {
        self.cache.len()
    }
}
