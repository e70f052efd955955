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

mod migrate;
pub(crate) mod row;
pub(crate) mod value;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};
use uuid::Uuid;

use crate::crypto::{KeyProvider, Keyring};
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
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("backend", &self.backend()).finish_non_exhaustive()
    }
}

impl Database {
    /// Opens a pool for `url` (`sqlite://file.db`, `sqlite::memory:`, `postgres://...`) with the given
    /// master key provider. SQLite files are created when missing and use WAL mode with foreign keys on.
    pub async fn connect(url: &str, keys: impl KeyProvider) -> Result<Self> {
        Self::connect_with(url, Arc::new(keys)).await
    }

    /// Like [`Database::connect`], with a shared provider.
    pub async fn connect_with(url: &str, keys: Arc<dyn KeyProvider>) -> Result<Self> {
        let pool = if url.starts_with("sqlite:") {
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| Error::Config(format!("invalid SQLite URL: {e}")))?
                .create_if_missing(true)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30));
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
            Pool::Sqlite(pool_opts.connect_with(opts).await.map_err(Error::Database)?)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts =
                PgConnectOptions::from_str(url).map_err(|e| Error::Config(format!("invalid PostgreSQL URL: {e}")))?;
            Pool::Postgres(PgPoolOptions::new().max_connections(16).connect_with(opts).await.map_err(Error::Database)?)
        } else {
            return Err(Error::Config("DATABASE_URL must start with sqlite: or postgres:".into()));
        };
        Ok(Self { inner: Arc::new(Inner { pool, keyring: Keyring::new(keys) }) })
    }

    /// Opens the database named by `DATABASE_URL` (default [`DEFAULT_DATABASE_URL`]) with the master key
    /// from the environment (see [`crypto::provider_from_env`](crate::crypto::provider_from_env)).
    pub async fn from_env() -> Result<Self> {
        let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string());
        Self::connect_with(&url, crate::crypto::provider_from_env()?).await
    }

    /// Which backend this database runs on.
    pub fn backend(&self) -> Backend {
        match self.inner.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies every pending embedded migration of this backend (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        migrate::run(&self.inner.pool).await
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        match &self.inner.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// Opens a transaction; on PostgreSQL it is bound to `organization` (None: no tenant, for
    /// platform-level statements).
    pub(crate) async fn begin(&self, organization: Option<Uuid>, mode: TxMode) -> Result<Tx> {
        match &self.inner.pool {
            Pool::Sqlite(p) => {
                let tx = match mode {
                    TxMode::Read => p.begin().await?,
                    TxMode::Write => p.begin_with("BEGIN IMMEDIATE").await?,
                };
                Ok(Tx::Sqlite(tx))
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
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
                q.args.into_iter().fold(sqlx::query(&q.sql), bind_sqlite).execute(&mut **tx).await?.rows_affected()
            }
            Tx::Postgres(tx) => {
                q.args.into_iter().fold(sqlx::query(&q.sql), bind_pg).execute(&mut **tx).await?.rows_affected()
            }
        })
    }

    /// Runs a query and returns every row.
    pub(crate) async fn fetch_all(&mut self, q: Query) -> Result<Vec<Row>> {
        Ok(match self {
            Tx::Sqlite(tx) => q
                .args
                .into_iter()
                .fold(sqlx::query(&q.sql), bind_sqlite)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
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
            Tx::Sqlite(tx) => q
                .args
                .into_iter()
                .fold(sqlx::query(&q.sql), bind_sqlite)
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Sqlite),
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
