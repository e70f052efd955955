//! Transactions: every statement of the library runs in one, on the concrete backend.

use austa_error::Result;
use sqlx::{Postgres, Sqlite};
use uuid::Uuid;

use crate::dialect::{self, Dialect, RowLock};
use crate::value::{self, Array, Query, Value};
use crate::{Pool, Row};

/// The transaction-local setting that row-level security policies read the tenant from.
pub const TENANT_SETTING: &str = "austa.organization_id";

/// Opens a transaction on `pool`; on PostgreSQL it is bound to `organization` with a transaction-local
/// `austa.organization_id` ([`TENANT_SETTING`]).
pub async fn begin_on(pool: &Pool, organization: Option<Uuid>, mode: TxMode) -> Result<Tx> {
    crate::trips::record();
    let begin = dialect::of(pool.backend()).begin(mode, organization);
    Ok(match pool {
        Pool::Sqlite(p) => Tx::Sqlite(p.begin_with(begin).await?),
        Pool::Postgres(p) => Tx::Postgres(p.begin_with(begin).await?),
    })
}

/// Whether a transaction will write (SQLite takes the write lock up front for those).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMode {
    /// Reads only (SQLite: a deferred transaction).
    Read,
    /// Writes (SQLite: `BEGIN IMMEDIATE`, so writers queue on the busy timeout).
    Write,
    /// Read-only, every statement seeing the same snapshot (PostgreSQL `REPEATABLE READ`).
    Snapshot,
    /// A read whose only writes are the audit events recording it. SQLite takes the write lock up
    /// front, as for [`TxMode::Write`]; on PostgreSQL the commit does not wait for the log flush (see
    /// [`Dialect::begin`]), so readers do not queue on the disk. Use it for nothing else:
    /// data writes keep [`TxMode::Write`] and its durable commit.
    RecordedRead,
}

/// A transaction on the concrete backend.
pub enum Tx {
    /// SQLite.
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    /// PostgreSQL.
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
        Value::Array(a) => q.bind(a.json_text()),
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
        Value::Array(a) => match a {
            Array::Uuid(a) => q.bind(a),
            Array::Text(a) => q.bind(a),
            Array::Int(a) => q.bind(a),
            Array::Float(a) => q.bind(a),
            Array::Bool(a) => q.bind(a),
            Array::Time(a) => q.bind(a),
            Array::Json(a) => q.bind(a.into_iter().map(|j| j.map(sqlx::types::Json)).collect::<Vec<_>>()),
            Array::Bytes(a) => q.bind(a),
        },
    }
}

impl Tx {
    /// The capabilities of this transaction's backend.
    pub fn dialect(&self) -> &'static dyn Dialect {
        match self {
            Tx::Sqlite(_) => &dialect::Sqlite,
            Tx::Postgres(_) => &dialect::Postgres,
        }
    }

    /// The clause that ends a `SELECT` taking `lock` (see [`Dialect::row_lock`]).
    pub fn lock(&self, lock: RowLock) -> &'static str {
        self.dialect().row_lock(lock)
    }

    /// Takes a transaction-scoped advisory lock on (`namespace`, `key`), shared or exclusive, where the
    /// backend needs one (see [`Dialect::advisory_lock`]): it serializes work on one key (a number being
    /// registered, a message id) across connections.
    pub async fn advisory_lock(&mut self, namespace: &str, key: &str, shared: bool) -> Result<()> {
        if let Some(sql) = self.dialect().advisory_lock(shared) {
            self.fetch_optional(Query::new(sql).bind(namespace).bind(key)).await?;
        }
        Ok(())
    }

    /// Sets a transaction-local setting (read by row-level security policies) where the backend has
    /// them (see [`Dialect::set_local`]).
    pub async fn set_local(&mut self, name: &str, value: &str) -> Result<()> {
        if let Some(sql) = self.dialect().set_local() {
            self.fetch_optional(Query::new(sql).bind(name).bind(value)).await?;
        }
        Ok(())
    }

    /// Runs a statement; returns the number of affected rows.
    pub async fn execute(&mut self, q: Query) -> Result<u64> {
        crate::trips::record();
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
    pub async fn fetch_all(&mut self, q: Query) -> Result<Vec<Row>> {
        crate::trips::record();
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
    pub async fn fetch_optional(&mut self, q: Query) -> Result<Option<Row>> {
        crate::trips::record();
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
    pub async fn commit(self) -> Result<()> {
        crate::trips::record();
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}
