//! `Database::backup`: every table, as stored, into the backend-neutral format of [`super::format`].
//!
//! Rows are read in one snapshot (a `REPEATABLE READ READ ONLY` transaction on PostgreSQL, one read
//! transaction on SQLite), streamed table by table in primary key order, so memory stays flat whatever
//! the size. Ciphertexts are copied as they are: nothing is decrypted.

use std::collections::BTreeMap;
use std::io::Write;

use futures_util::TryStreamExt;
use serde_json::{Number, Value as Json};
use sqlx::{Row as _, TypeInfo as _, ValueRef as _};

use super::catalog::{self, quote, Column, Kind, KEYSTORE_TABLES};
use super::format::{self, Contents, Header, Writer};
use super::{require_rls_bypass, Progress};
use crate::db::{Database, Pool};
use crate::error::{Error, Result};

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupReport {
    /// Rows per table in the data file.
    pub tables: BTreeMap<String, u64>,
    /// Rows per table in the key file, when one was written.
    pub key_tables: Option<BTreeMap<String, u64>>,
}

fn float(table: &str, column: &str, f: f64) -> Result<Json> {
    Number::from_f64(f)
        .map(Json::Number)
        .ok_or_else(|| Error::CorruptData(format!("{table}.{column}: not a finite number")))
}

/// The SELECT of a table, with every value as the backup stores it (PostgreSQL does the formatting).
fn select_sql(pool: &Pool, table: &str, columns: &[Column], key: &[String]) -> String {
    let list: Vec<String> = columns
        .iter()
        .map(|c| {
            let q = quote(&c.name);
            match (pool, c.kind) {
                (Pool::Postgres(_), Kind::Time) => {
                    format!("to_char({q} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
                }
                (Pool::Postgres(_), Kind::Uuid | Kind::Json | Kind::Text) => format!("{q}::text"),
                (Pool::Postgres(_), Kind::Int) => format!("{q}::int8"),
                (Pool::Postgres(_), Kind::Float) => format!("{q}::float8"),
                _ => q,
            }
        })
        .collect();
    let order = if key.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", "))
    };
    format!("SELECT {} FROM {}{order}", list.join(", "), quote(table))
}

fn sqlite_values(table: &str, columns: &[Column], row: &sqlx::sqlite::SqliteRow) -> Result<Vec<Json>> {
    let mut out = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        let raw = row.try_get_raw(i)?;
        if raw.is_null() {
            out.push(Json::Null);
            continue;
        }
        let storage = raw.type_info().name().to_string();
        out.push(match storage.as_str() {
            "INTEGER" => Json::from(row.try_get::<i64, _>(i)?),
            "REAL" => float(table, &c.name, row.try_get::<f64, _>(i)?)?,
            "BLOB" => format::bytes(&row.try_get::<Vec<u8>, _>(i)?),
            _ => Json::String(row.try_get::<String, _>(i)?),
        });
    }
    Ok(out)
}

fn pg_values(table: &str, columns: &[Column], row: &sqlx::postgres::PgRow) -> Result<Vec<Json>> {
    let mut out = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        out.push(match c.kind {
            Kind::Int => row.try_get::<Option<i64>, _>(i)?.map(Json::from).unwrap_or(Json::Null),
            Kind::Float => match row.try_get::<Option<f64>, _>(i)? {
                Some(f) => float(table, &c.name, f)?,
                None => Json::Null,
            },
            Kind::Bool => row.try_get::<Option<bool>, _>(i)?.map(Json::Bool).unwrap_or(Json::Null),
            Kind::Bytes => row.try_get::<Option<Vec<u8>>, _>(i)?.map(|b| format::bytes(&b)).unwrap_or(Json::Null),
            Kind::Text | Kind::Uuid | Kind::Time | Kind::Json => {
                row.try_get::<Option<String>, _>(i)?.map(Json::String).unwrap_or(Json::Null)
            }
        });
    }
    Ok(out)
}

/// The migration versions recorded in `pool`.
pub(crate) async fn applied_versions(pool: &Pool) -> Result<Vec<i64>> {
    let sql = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
    Ok(match pool {
        Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await?,
        Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await?,
    })
}

/// Writes `tables` of `pool` (read in one snapshot) to `writer`.
async fn dump<W: Write>(
    pool: &Pool,
    tables: &[String],
    writer: &mut Writer<W>,
    phase: &str,
    progress: &mut dyn Progress,
) -> Result<()> {
    let mut meta = Vec::with_capacity(tables.len());
    let mut total = 0u64;
    for t in tables {
        total += u64::try_from(catalog::count(pool, t).await?).unwrap_or(0);
        meta.push((t, catalog::columns(pool, t).await?, catalog::primary_key(pool, t).await?));
    }
    progress.start(phase, Some(total));
    match pool {
        Pool::Sqlite(p) => {
            let mut tx = p.begin().await?;
            for (table, columns, key) in &meta {
                writer.table(table, &columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>())?;
                let sql = select_sql(pool, table, columns, key);
                let mut rows = sqlx::query(&sql).fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    writer.row(sqlite_values(table, columns, &row)?)?;
                    progress.advance(1);
                }
            }
            tx.commit().await?;
        }
        Pool::Postgres(p) => {
            let mut tx = p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
            for (table, columns, key) in &meta {
                writer.table(table, &columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>())?;
                let sql = select_sql(pool, table, columns, key);
                let mut rows = sqlx::query(&sql).fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    writer.row(pg_values(table, columns, &row)?)?;
                    progress.advance(1);
                }
            }
            tx.commit().await?;
        }
    }
    progress.finish();
    Ok(())
}

fn header(pool: &Pool, contents: Contents, migrations: Vec<i64>) -> Header {
    Header {
        format: format::FORMAT.into(),
        version: format::VERSION,
        contents,
        created_at: austa_sql::sqlite_time(&crate::time::now()),
        backend: match pool {
            Pool::Sqlite(_) => "sqlite".into(),
            Pool::Postgres(_) => "postgres".into(),
        },
        migrations,
    }
}

impl Database {
    /// Writes a backup of every table but the key store's to `data` (uncompressed JSON Lines: wrap it
    /// in a compressor, as the `austa` command does), and, when `keys` is given, the key store's
    /// tables to it. See [the backup format](super::format) for the layout. On PostgreSQL the connection must
    /// bypass row-level security (the owner with BYPASSRLS, or a superuser).
    pub async fn backup<W: Write, K: Write>(
        &self,
        data: W,
        keys: Option<K>,
        progress: &mut dyn Progress,
    ) -> Result<(BackupReport, W, Option<K>)> {
        let pool = &self.inner.pool;
        let store = self.inner.keyring.store();
        require_rls_bypass(pool).await?;
        let data_tables: Vec<String> = {
            let all = catalog::tables(pool).await?;
            let fks = catalog::foreign_keys(pool).await?;
            catalog::dependency_order(&all, &fks)
                .into_iter()
                .filter(|t| !KEYSTORE_TABLES.contains(&t.as_str()))
                .collect()
        };
        let versions: Vec<i64> =
            applied_versions(pool).await?.into_iter().filter(|v| *v < super::KEYSTORE_VERSIONS).collect();
        let mut writer = Writer::new(data, &header(pool, Contents::Data, versions))?;
        dump(pool, &data_tables, &mut writer, "backup", progress).await?;
        let (data, tables) = writer.finish()?;
        let (keys, key_tables) = match keys {
            // After the data, so that every key a backed-up ciphertext names is in the key file.
            Some(out) => {
                require_rls_bypass(store).await?;
                let versions: Vec<i64> =
                    applied_versions(store).await?.into_iter().filter(|v| *v >= super::KEYSTORE_VERSIONS).collect();
                let key_tables: Vec<String> = KEYSTORE_TABLES.iter().map(|t| t.to_string()).collect();
                let mut writer = Writer::new(out, &header(store, Contents::Keys, versions))?;
                dump(store, &key_tables, &mut writer, "backup of the key store", progress).await?;
                let (out, counts) = writer.finish()?;
                (Some(out), Some(counts))
            }
            None => (None, None),
        };
        Ok((BackupReport { tables, key_tables }, data, keys))
    }
}
