//! Connections, backend dispatch, transactions and migrations.
//!
//! [`Database`] owns a pool for one of two backends (SQLite or PostgreSQL, chosen by the URL scheme) and
//! the [`Keyring`](crate::crypto) that unwraps organization keys. Internally every statement goes through
//! a [`Tx`]: a transaction on the concrete pool. SQL is written once with `$N` placeholders and bound
//! through [`value::Value`], so there is one code path for both backends; backend-specific SQL exists only
//! where a feature really differs.
//!
//! Every transaction the library opens on PostgreSQL first runs
//! `set_config('austa.organization_id', $1, true)`: the tenant is transaction-local, never per session,
//! because connections are pooled. On SQLite, write transactions start with `BEGIN IMMEDIATE` so that
//! concurrent writers queue on the busy timeout instead of failing on a lock upgrade.

pub(crate) mod migrate;
pub(crate) mod row;
pub(crate) mod value;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};
use uuid::Uuid;

use crate::crypto::{KeyCacheConfig, KeyProvider, Keyring};
use crate::error::{Error, Result};
pub(crate) use row::Row;
pub(crate) use value::{IntoValue, Query, Value};

/// The database backends the library supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (bundled), the zero-configuration default.
    Sqlite,
    /// PostgreSQL 15 or later.
    Postgres,
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

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
    /// Links committed audit events into their chains in the background (PostgreSQL).
    pub(crate) sequencer: crate::audit::Sequencer,
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
        let pool = open_pool(&options.url).await?;
        let store = match options.keystore_url.as_deref() {
            Some(url) if url != options.url => open_pool(url).await?,
            _ => pool.clone(),
        };
        let db = Self {
            inner: Arc::new(Inner {
                pool,
                keyring: Keyring::new(keys, store, options.key_cache),
                sequencer: Default::default(),
            }),
        };
        db.verify_master_key().await?;
        Ok(db)
    }

    /// Opens the database named by `DATABASE_URL` (default [`DEFAULT_DATABASE_URL`]) with the master key
    /// from the environment (see [`crypto::provider_from_env`](crate::crypto::provider_from_env)), the key
    /// store named by `AUSTA_KEYSTORE_URL` (default: the same database) and the key cache limits in
    /// `AUSTA_KEY_CACHE_MAX_ENTRIES` and `AUSTA_KEY_CACHE_TTL_SECONDS`.
    pub async fn from_env() -> Result<Self> {
        Self::open(DatabaseOptions::from_env()?, crate::crypto::provider_from_env()?).await
    }

    /// Which backend this database runs on.
    pub fn backend(&self) -> Backend {
        match self.inner.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
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
        let applied = migrate::run_embedded(&self.inner.pool, &self.inner.keyring.store).await?;
        self.ensure_key_check().await?;
        Ok(applied)
    }

    /// Drops every cached unwrapped key (they are zeroized); the next operations unwrap again. Useful
    /// after key changes made by another process, and to measure cold-cache costs.
    pub fn clear_key_cache(&self) {
        self.inner.keyring.cache.clear();
    }

    /// Links the audit events still waiting for the sequencer, then closes the pools, waiting for
    /// connections to be returned. (Events that cannot be linked now stay recorded and pending; the
    /// next verification links them.)
    pub async fn close(&self) {
        let _ = self.flush_audit().await;
        self.inner.sequencer.stop();
        self.inner.pool.close().await;
        self.inner.keyring.store.close().await;
    }

    /// Opens a transaction on the data database; on PostgreSQL it is bound to `organization` (None: no
    /// tenant, for platform-level statements).
    pub(crate) async fn begin(&self, organization: Option<Uuid>, mode: TxMode) -> Result<Tx> {
        begin_on(&self.inner.pool, organization, mode).await
    }
}

impl Pool {
    /// Whether `other` reaches the same database: the same SQLite file, or the same PostgreSQL host,
    /// port and database name.
    pub(crate) fn same_database(&self, other: &Pool) -> bool {
        match (self, other) {
            (Pool::Sqlite(a), Pool::Sqlite(b)) => {
                a.connect_options().get_filename() == b.connect_options().get_filename()
            }
            (Pool::Postgres(a), Pool::Postgres(b)) => {
                let (a, b) = (a.connect_options(), b.connect_options());
                a.get_host() == b.get_host() && a.get_port() == b.get_port() && a.get_database() == b.get_database()
            }
            _ => false,
        }
    }

    async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// How to open a [`Database`]. `Debug` hides passwords in the URLs.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseOptions {
    /// The data database.
    pub url: String,
    /// Where wrapped keys live; `None`: in the data database. A separate key store keeps keys out of
    /// data backups, so that crypto-shredding a patient also makes old backups unreadable for them.
    pub keystore_url: Option<String>,
    /// Limits of the unwrapped-key cache.
    pub key_cache: KeyCacheConfig,
}

impl DatabaseOptions {
    /// Options for `url` with the key store in the same database and the default cache.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), keystore_url: None, key_cache: KeyCacheConfig::default() }
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

    /// From `DATABASE_URL`, `AUSTA_KEYSTORE_URL`, `AUSTA_KEY_CACHE_MAX_ENTRIES` and
    /// `AUSTA_KEY_CACHE_TTL_SECONDS`.
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
        Ok(options)
    }
}

impl std::fmt::Debug for DatabaseOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseOptions")
            .field("url", &redact_password(&self.url))
            .field("keystore_url", &self.keystore_url.as_deref().map(redact_password))
            .field("key_cache", &self.key_cache)
            .finish()
    }
}

/// A database URL fit for logs: `postgres://user:secret@host/db` becomes `postgres://user:***@host/db`.
///
/// ```
/// use austa_core::db::redact_password;
/// assert_eq!(redact_password("postgres://app:s3cr3t@db:5432/austa"), "postgres://app:***@db:5432/austa");
/// assert_eq!(redact_password("sqlite://austa.db"), "sqlite://austa.db");
/// ```
pub fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].find(':') {
            Some(colon) => format!("{}:***{}", &url[..scheme + 3 + colon], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// Opens a pool for a URL.
async fn open_pool(url: &str) -> Result<Pool> {
    if url.starts_with("sqlite:") {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::Config(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let opts = if memory {
            opts
        } else {
            opts.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal)
        };
        // An in-memory database lives as long as its one connection: keep exactly one, forever.
        let pool_opts = if memory {
            SqlitePoolOptions::new().max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(8)
        };
        Ok(Pool::Sqlite(connect_sqlite(pool_opts, opts).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let opts =
            PgConnectOptions::from_str(url).map_err(|e| Error::Config(format!("invalid PostgreSQL URL: {e}")))?;
        Ok(Pool::Postgres(PgPoolOptions::new().max_connections(16).connect_with(opts).await.map_err(Error::Database)?))
    } else {
        Err(Error::Config("database URLs must start with sqlite: or postgres:".into()))
    }
}

/// How long a SQLite statement waits for another connection's lock; opening a new file waits as long
/// for another process that is switching it to WAL.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects a SQLite pool, retrying while the file is busy at connection time.
///
/// Why: the first connection to a new file switches it to WAL, which takes an exclusive lock that
/// SQLite does not wait for (the busy handler is not consulted), so a second process opening the same
/// new file at that moment gets `SQLITE_BUSY` ("database is locked") from the pragma, for instance two
/// `austa migrate` runs started together. The switch is persistent and short, so retrying the connection
/// is enough; once the file is in WAL, later connections need no such lock and the busy timeout covers
/// everything else.
async fn connect_sqlite(pool_opts: SqlitePoolOptions, opts: SqliteConnectOptions) -> Result<SqlitePool> {
    let deadline = std::time::Instant::now() + SQLITE_BUSY_TIMEOUT;
    loop {
        match pool_opts.clone().connect_with(opts.clone()).await {
            Err(e) if is_sqlite_busy(&e) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            other => return other.map_err(Error::Database),
        }
    }
}

/// Whether `e` is SQLite's `SQLITE_BUSY` (primary result code 5, whatever the extended code).
fn is_sqlite_busy(e: &sqlx::Error) -> bool {
    let code = match e {
        sqlx::Error::Database(db) => db.code().and_then(|c| c.parse::<i32>().ok()),
        _ => None,
    };
    code.is_some_and(|c| c & 0xff == 5)
}

/// Opens a transaction on `pool`; on PostgreSQL it is bound to `organization` with a transaction-local
/// `austa.organization_id`.
pub(crate) async fn begin_on(pool: &Pool, organization: Option<Uuid>, mode: TxMode) -> Result<Tx> {
    {
        match pool {
            Pool::Sqlite(p) => {
                // A deferred transaction reads one snapshot from its first statement on (WAL).
                let tx = match mode {
                    TxMode::Read | TxMode::Snapshot => p.begin().await?,
                    TxMode::Write => p.begin_with("BEGIN IMMEDIATE").await?,
                };
                Ok(Tx::Sqlite(tx))
            }
            Pool::Postgres(p) => {
                let mut tx = match mode {
                    TxMode::Snapshot => p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?,
                    TxMode::Read | TxMode::Write => p.begin().await?,
                };
                let org = organization.map(|o| o.to_string()).unwrap_or_default();
                sqlx::query("SELECT set_config('austa.organization_id', $1, true)").bind(org).execute(&mut *tx).await?;
                Ok(Tx::Postgres(tx))
            }
        }
    }
}

/// Whether a transaction will write (SQLite takes the write lock up front for those).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxMode {
    Read,
    Write,
    /// Read-only, every statement seeing the same snapshot (PostgreSQL `REPEATABLE READ`).
    Snapshot,
}

/// A transaction on the concrete backend.
pub(crate) enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

fn bind_sqlite<'q>(
    q: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    v: Value,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    match v {
        Value::Uuid(x) => q.bind(x.map(|u| u.hyphenated().to_string())),
        Value::Text(x) => q.bind(x),
        Value::Int(x) => q.bind(x),
        Value::Float(x) => q.bind(x),
        Value::Bool(x) => q.bind(x),
        Value::Time(x) => q.bind(x.map(|t| value::sqlite_time(&t))),
        Value::Json(x) => q.bind(x.map(|j| j.to_string())),
        Value::Bytes(x) => q.bind(x),
    }
}

fn bind_pg<'q>(
    q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    v: Value,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    match v {
        Value::Uuid(x) => q.bind(x),
        Value::Text(x) => q.bind(x),
        Value::Int(x) => q.bind(x),
        Value::Float(x) => q.bind(x),
        Value::Bool(x) => q.bind(x),
        Value::Time(x) => q.bind(x),
        Value::Json(x) => q.bind(x.map(sqlx::types::Json)),
        Value::Bytes(x) => q.bind(x),
    }
}

impl Tx {
    /// Runs a statement; returns the number of affected rows.
    pub(crate) async fn execute(&mut self, q: Query) -> Result<u64> {
        Ok(match self {
            Tx::Sqlite(tx) => {
                let (sql, args) = value::anonymous_placeholders(&q.sql, q.args);
                args.into_iter().fold(sqlx::query(&sql), bind_sqlite).execute(&mut **tx).await?.rows_affected()
            }
            Tx::Postgres(tx) => {
                q.args.into_iter().fold(sqlx::query(&q.sql), bind_pg).execute(&mut **tx).await?.rows_affected()
            }
        })
    }

    /// Runs a query and returns every row.
    pub(crate) async fn fetch_all(&mut self, q: Query) -> Result<Vec<Row>> {
        Ok(match self {
            Tx::Sqlite(tx) => {
                let (sql, args) = value::anonymous_placeholders(&q.sql, q.args);
                args.into_iter()
                    .fold(sqlx::query(&sql), bind_sqlite)
                    .fetch_all(&mut **tx)
                    .await?
                    .into_iter()
                    .map(Row::Sqlite)
                    .collect()
            }
            Tx::Postgres(tx) => q
                .args
                .into_iter()
                .fold(sqlx::query(&q.sql), bind_pg)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
        })
    }

    /// Runs a query expected to return at most one row.
    pub(crate) async fn fetch_optional(&mut self, q: Query) -> Result<Option<Row>> {
        Ok(match self {
            Tx::Sqlite(tx) => {
                let (sql, args) = value::anonymous_placeholders(&q.sql, q.args);
                args.into_iter().fold(sqlx::query(&sql), bind_sqlite).fetch_optional(&mut **tx).await?.map(Row::Sqlite)
            }
            Tx::Postgres(tx) => q
                .args
                .into_iter()
                .fold(sqlx::query(&q.sql), bind_pg)
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Postgres),
        })
    }

    /// Commits the transaction.
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}
