//! The database handle: a pool on one backend, the keyring, the clock and the audit linker.
//!
//! [`Database`] owns a pool for one of two backends (SQLite or PostgreSQL, chosen by the URL scheme;
//! see `austa-sql`), the keyring that unwraps organization and patient keys (`austa-crypto`), the
//! [`Clock`] every operation reads the time from, and the queue of organizations
//! whose committed audit events wait to be linked into their chain.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::time::{Clock, SystemClock};
use austa_crypto::{KeyCacheConfig, KeyProvider, KeySet, Keyring, OrgKeys};
pub use austa_sql::{count_round_trips, redact_password, Backend};
pub(crate) use austa_sql::{
    Column, Dialect, Filter, IntoValue, Pool, Query, QueryBuilder, Row, RowLock, Tx, TxMode, Value, TENANT_SETTING,
};

/// Default database when `DATABASE_URL` is not set: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://austa.db";

/// A handle to the Austa database: a connection pool plus the keyring. Cheap to clone.
///
/// Tenant data is reached only through a [`Scope`](crate::Scope), created with [`Database::scope`];
/// platform-level operations (organizations, migrations, seeding) hang off the database itself.
///
/// ```no_run
/// # async fn demo() -> austa_core::Result<()> {
/// use austa_core::{crypto::LocalKeyProvider, Database};
/// let keys = LocalKeyProvider::from_env()?;
/// let db = Database::connect("sqlite::memory:", keys).await?;
/// db.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) keyring: Keyring,
    pub(crate) clock: Arc<dyn Clock>,
    /// Organizations whose committed audit events wait for the background sequencer (PostgreSQL).
    pub(crate) links: Arc<LinkQueue>,
    /// How durable a read's audit event is when the read returns.
    pub(crate) read_audit: ReadAudit,
    /// The organization each WhatsApp business number was last routed to: a hint only, checked
    /// again inside every ingest transaction that uses it.
    pub(crate) routes: Mutex<std::collections::HashMap<String, Uuid>>,
    /// Whether the key store is the data database (no `keystore_url` of its own): a data
    /// transaction can then read keys itself.
    pub(crate) keystore_shared: bool,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("backend", &self.backend()).finish_non_exhaustive()
    }
}

impl Database {
    /// Opens a pool for `url` (`sqlite://file.db`, `sqlite::memory:`, `postgres://...`) with the given
    /// master key provider, the key store in the same database and the default key cache. SQLite files
    /// are created when missing and use WAL mode with foreign keys on.
    pub async fn connect(url: &str, keys: impl KeyProvider) -> Result<Self> {
        Self::connect_with(url, Arc::new(keys)).await
    }

    /// Like [`Database::connect`], with a shared provider.
    pub async fn connect_with(url: &str, keys: Arc<dyn KeyProvider>) -> Result<Self> {
        Self::open(DatabaseOptions::new(url), keys).await
    }

    /// Opens the database with explicit options (separate key store, key cache limits). When the key
    /// store has a key check value, the master key is verified against it now: a wrong master key is a
    /// `crypto` error (`WrongMasterKey`) here, never garbage later.
    pub async fn open(options: DatabaseOptions, keys: Arc<dyn KeyProvider>) -> Result<Self> {
        let pool = Pool::open(&options.url).await?;
        let (store, keystore_shared) = match options.keystore_url.as_deref() {
            Some(url) if url != options.url => (Pool::open(url).await?, false),
            _ => (pool.clone(), true),
        };
        let clock = options.clock.clone();
        let db = Self {
            inner: Arc::new(Inner {
                pool,
                keyring: Keyring::new(keys, store, options.key_cache, clock.clone()),
                clock,
                links: Arc::default(),
                read_audit: options.read_audit,
                routes: Mutex::default(),
                keystore_shared,
            }),
        };
        db.verify_master_key().await?;
        Ok(db)
    }

    /// Opens the database named by `DATABASE_URL` (default [`DEFAULT_DATABASE_URL`]) with the master key
    /// from the environment (see [`crypto::provider_from_env`](austa_crypto::provider_from_env)), the key
    /// store named by `AUSTA_KEYSTORE_URL` (default: the same database) and the key cache limits in
    /// `AUSTA_KEY_CACHE_MAX_ENTRIES` and `AUSTA_KEY_CACHE_TTL_SECONDS`.
    pub async fn from_env() -> Result<Self> {
        Self::open(DatabaseOptions::from_env()?, austa_crypto::provider_from_env()?).await
    }

    /// Which backend this database runs on.
    pub fn backend(&self) -> Backend {
        self.inner.pool.backend()
    }

    /// The current time by this handle's clock ([`DatabaseOptions::clock`]), truncated to the
    /// storage resolution: every timestamp the library writes comes from here.
    pub fn now(&self) -> DateTime<Utc> {
        crate::time::truncate(self.inner.clock.now())
    }

    /// Applies every pending embedded migration of this backend to the data database and to the key
    /// store (idempotent), and writes the key store's key check value on first use.
    pub async fn migrate(&self) -> Result<()> {
        self.apply_migrations().await.map(|_| ())
    }

    /// Like [`Database::migrate`], and returns the versions this call applied: empty when nothing was
    /// pending, or when another process migrating at the same time applied them (it waits for that
    /// process's lock, then finds nothing to do).
    pub async fn apply_migrations(&self) -> Result<Vec<i64>> {
        let applied = austa_sql::migrate::run_embedded(&self.inner.pool, self.inner.keyring.store()).await?;
        self.ensure_key_check().await?;
        Ok(applied)
    }

    /// Drops every cached unwrapped key (they are zeroized); the next operations unwrap again. Useful
    /// after key changes made by another process, and to measure cold-cache costs.
    pub fn clear_key_cache(&self) {
        self.inner.keyring.clear_cache();
    }

    /// Opens a transaction on the data database; on PostgreSQL it is bound to `organization` (None: no
    /// tenant, for platform-level statements).
    pub(crate) async fn begin(&self, organization: Option<Uuid>, mode: TxMode) -> Result<Tx> {
        austa_sql::begin_on(&self.inner.pool, organization, mode).await
    }

    pub(crate) fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// The keys of `organization` and of the given patients (cached, or loaded in one key-store query).
    /// Patients without keys are absent from the set.
    pub(crate) async fn key_set(&self, organization: Uuid, patients: impl IntoIterator<Item = Uuid>) -> Result<KeySet> {
        self.keyring().key_set(organization, patients).await
    }

    /// Adds `patient`'s keys to `keys` inside the caller's data transaction `tx`, when the key store
    /// is the data database (`None` when it is not: the caller must load them outside its
    /// transaction). `Some(false)`: the patient has no key.
    pub(crate) async fn add_patient_keys_in(
        &self,
        tx: &mut Tx,
        keys: &mut KeySet,
        patient: Uuid,
    ) -> Result<Option<bool>> {
        if !self.inner.keystore_shared {
            return Ok(None);
        }
        self.keyring().add_patient_in(tx, keys, patient).await.map(Some)
    }

    /// Creates `patient`'s first key inside the caller's data transaction `tx` and adds it to `keys`,
    /// when the key store is the data database (`false`, having done nothing, when it is not).
    pub(crate) async fn create_patient_key_in(&self, tx: &mut Tx, keys: &mut KeySet, patient: Uuid) -> Result<bool> {
        if !self.inner.keystore_shared {
            return Ok(false);
        }
        self.keyring().create_patient_key_in(tx, keys, patient).await.map(|()| true)
    }

    /// `keys` reloaded when the key store holds a version they lack (a rotation elsewhere); `None` when
    /// nothing is missing.
    pub(crate) async fn refresh_key_set(&self, keys: &KeySet) -> Result<Option<KeySet>> {
        self.keyring().refresh_key_set(keys).await
    }

    /// The organization's keys, from the cache or unwrapped from the key store.
    pub(crate) async fn org_keys(&self, organization: Uuid) -> Result<Arc<OrgKeys>> {
        self.keyring().org_keys(organization).await
    }

    /// Creates a patient's first key (before the patient row is written).
    pub(crate) async fn create_patient_key(&self, organization: Uuid, patient: Uuid) -> Result<()> {
        self.keyring().create_patient_keys(organization, [patient]).await
    }

    /// Creates the first key of each of `patients` in one key-store transaction.
    pub(crate) async fn create_patient_keys(
        &self,
        organization: Uuid,
        patients: impl IntoIterator<Item = Uuid>,
    ) -> Result<()> {
        self.keyring().create_patient_keys(organization, patients).await
    }

    /// Checks the master key against the key store's key check value (`Ok(false)`: not initialized).
    pub(crate) async fn verify_master_key(&self) -> Result<bool> {
        self.keyring().verify_master_key().await
    }

    /// Writes the key check value for the current master key if the key store has none.
    pub(crate) async fn ensure_key_check(&self) -> Result<()> {
        self.keyring().ensure_key_check().await
    }

    /// Counters of key work since this handle was opened.
    pub fn key_stats(&self) -> austa_crypto::KeyStats {
        self.keyring().key_stats()
    }

    /// How many unwrapped keys the cache holds now.
    pub fn cached_keys(&self) -> usize {
        self.keyring().cached_keys()
    }
}

/// The organizations whose committed audit events wait to be linked into their chains, and the handle
/// of the task that links them (the kernel's sequencer spawns and runs it; this handle only holds its
/// state, so that the database layer needs nothing above it).
#[derive(Default)]
pub(crate) struct LinkQueue {
    dirty: Mutex<HashSet<Uuid>>,
    pub(crate) wake: Notify,
    pub(crate) task: Mutex<Option<JoinHandle<()>>>,
}

impl LinkQueue {
    /// Takes every marked organization.
    pub(crate) fn take(&self) -> Vec<Uuid> {
        match self.dirty.lock() {
            Ok(mut d) => d.drain().collect(),
            Err(poisoned) => poisoned.into_inner().drain().collect(),
        }
    }

    /// Marks an organization as having events to link.
    pub(crate) fn mark(&self, org: Uuid) {
        match self.dirty.lock() {
            Ok(mut d) => d.insert(org),
            Err(poisoned) => poisoned.into_inner().insert(org),
        };
    }

    /// Stops the task (the handle is closing).
    pub(crate) fn stop(&self) {
        if let Ok(mut task) = self.task.lock() {
            if let Some(t) = task.take() {
                t.abort();
            }
        }
    }
}

/// How to open a [`Database`]. `Debug` hides passwords in the URLs.
#[derive(Clone)]
pub struct DatabaseOptions {
    /// The data database.
    pub url: String,
    /// Where wrapped keys live; `None`: in the data database. A separate key store keeps keys out of
    /// data backups, so that crypto-shredding a patient also makes old backups unreadable for them.
    pub keystore_url: Option<String>,
    /// Limits of the unwrapped-key cache.
    pub key_cache: KeyCacheConfig,
    /// Where the library reads the time (default: the system clock).
    pub clock: Arc<dyn Clock>,
    /// When a read's audit event is durable (default: [`ReadAudit::Relaxed`]).
    pub read_audit: ReadAudit,
}

/// When the audit event of a read (a get, a lookup, a listing, a history page) is durable.
///
/// Every read records its event in the read's own transaction, with the read: a read that returns
/// always has its event committed, whatever this says. The choice is only whether the read also waits
/// for that commit to reach the disk. Writes always do.
///
/// | mode | the read returns after | a PostgreSQL server crash can lose |
/// |---|---|---|
/// | `Relaxed` | the commit, before the log flush | the read events of the last 3 × `wal_writer_delay` (600 ms by default) |
/// | `Strict` | the log flush | nothing |
///
/// A lost event is lost whole, with its chain-queue entry, so the chain never links a missing event;
/// nothing else is lost with it, since the transaction wrote nothing else, and no write that commits
/// later can survive without it (PostgreSQL flushes the log in order). SQLite (WAL,
/// `synchronous=FULL`) flushes every commit, a read's as a write's: the two modes are the same there,
/// both strict.
///
/// ```
/// use austa_core::db::{DatabaseOptions, ReadAudit};
/// let options = DatabaseOptions::new("sqlite::memory:").read_audit(ReadAudit::Strict);
/// assert_eq!(options.read_audit, ReadAudit::Strict);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadAudit {
    /// Reads wait for their event's commit, not for its flush (PostgreSQL `synchronous_commit = off`
    /// in read transactions only): readers do not queue on the disk.
    #[default]
    Relaxed,
    /// Reads return only once their event is on disk.
    Strict,
}

impl ReadAudit {
    /// The transaction mode of a read in this mode.
    pub(crate) fn tx_mode(self) -> TxMode {
        match self {
            ReadAudit::Relaxed => TxMode::RecordedRead,
            ReadAudit::Strict => TxMode::Write,
        }
    }
}

impl std::str::FromStr for ReadAudit {
    type Err = Error;

    /// `relaxed` or `strict` (the value of `AUSTA_READ_AUDIT`).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "relaxed" => Ok(ReadAudit::Relaxed),
            "strict" => Ok(ReadAudit::Strict),
            _ => Err(Error::Config("AUSTA_READ_AUDIT must be `relaxed` or `strict`".into())),
        }
    }
}

impl PartialEq for DatabaseOptions {
    /// Equal when they name the same databases, cache limits, clock and read-audit durability.
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
            && self.keystore_url == other.keystore_url
            && self.key_cache == other.key_cache
            && Arc::ptr_eq(&self.clock, &other.clock)
            && self.read_audit == other.read_audit
    }
}

impl Eq for DatabaseOptions {}

impl DatabaseOptions {
    /// Options for `url` with the key store in the same database and the default cache.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            keystore_url: None,
            key_cache: KeyCacheConfig::default(),
            clock: Arc::new(SystemClock),
            read_audit: ReadAudit::default(),
        }
    }

    /// Sets when a read's audit event is durable (see [`ReadAudit`]).
    pub fn read_audit(mut self, mode: ReadAudit) -> Self {
        self.read_audit = mode;
        self
    }

    /// Sets the clock the library reads the time from: tests and simulations pass an
    /// [`OffsetClock`](crate::time::OffsetClock) to let time pass without waiting.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Puts the key store in a database of its own.
    pub fn keystore(mut self, url: impl Into<String>) -> Self {
        self.keystore_url = Some(url.into());
        self
    }

    /// Sets the key cache limits.
    pub fn key_cache(mut self, config: KeyCacheConfig) -> Self {
        self.key_cache = config;
        self
    }

    /// From `DATABASE_URL`, `AUSTA_KEYSTORE_URL`, `AUSTA_KEY_CACHE_MAX_ENTRIES`,
    /// `AUSTA_KEY_CACHE_TTL_SECONDS` and `AUSTA_READ_AUDIT` (`relaxed` or `strict`).
    pub fn from_env() -> Result<Self> {
        let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string());
        let mut options = Self::new(url);
        options.keystore_url = std::env::var("AUSTA_KEYSTORE_URL").ok().filter(|s| !s.is_empty());
        let number = |name: &str| -> Result<Option<u64>> {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().parse::<u64>().map_err(|_| Error::Config(format!("{name} must be a whole number"))))
                .transpose()
        };
        if let Some(n) = number("AUSTA_KEY_CACHE_MAX_ENTRIES")? {
            options.key_cache.max_entries = usize::try_from(n).unwrap_or(usize::MAX).max(1);
        }
        if let Some(n) = number("AUSTA_KEY_CACHE_TTL_SECONDS")? {
            options.key_cache.ttl = Duration::from_secs(n);
        }
        if let Some(mode) = std::env::var("AUSTA_READ_AUDIT").ok().filter(|s| !s.is_empty()) {
            options.read_audit = mode.parse()?;
        }
        Ok(options)
    }
}

impl std::fmt::Debug for DatabaseOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseOptions")
            .field("url", &redact_password(&self.url))
            .field("keystore_url", &self.keystore_url.as_deref().map(redact_password))
            .field("key_cache", &self.key_cache)
            .field("clock", &self.clock)
            .field("read_audit", &self.read_audit)
            .finish()
    }
}
