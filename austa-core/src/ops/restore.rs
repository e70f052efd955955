//! `Database::restore`: loads a backup (see [`super::format`]) into an empty database of either backend.
//!
//! The target is migrated to this build's schema first, and must then be empty and at the backup's
//! migration versions. Every row is loaded in one transaction (the data and, when the key store shares
//! the database, the keys): a damaged file, a schema mismatch or a failed insert leaves the target as
//! it was. After the commit, the row counts are compared with the backup's and every organization's
//! audit chain is verified, which also proves that the keys decrypt what they must.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde_json::Value as Json;
use uuid::Uuid;

use super::backup::applied_versions;
use super::catalog::{self, quote, Column, Kind, KEYSTORE_TABLES};
use super::format::{self, Contents, Item, Reader};
use super::require_rls_bypass;
use super::Progress;
use crate::audit::ChainReport;
use crate::db::{Backend, Database, Pool};
use crate::error::{Error, Result};
use crate::scope::Scope;
use austa_sql::migrate;

/// Bound parameters per INSERT: SQLite's statements get slow past a few thousand, PostgreSQL allows
/// 65,535.
const SQLITE_PARAMS: usize = 2_000;
const PG_PARAMS: usize = 30_000;

/// The audit chain verification of one organization.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainCheck {
    /// The organization.
    pub organization_id: Uuid,
    /// The verification report, when verification could run.
    pub report: Option<ChainReport>,
    /// Why verification could not run (e.g. the keys were not restored), never a value.
    pub error: Option<String>,
}

impl ChainCheck {
    /// Whether the chain verified intact.
    pub fn is_intact(&self) -> bool {
        self.report.as_ref().is_some_and(ChainReport::is_intact)
    }
}

/// What a restore loaded and what its verification found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RestoreReport {
    /// Rows per table loaded from the data file (and found in the target afterwards).
    pub tables: BTreeMap<String, u64>,
    /// Rows per table loaded from the key file, when one was given.
    pub key_tables: Option<BTreeMap<String, u64>>,
    /// Every organization's audit chain, verified after the load.
    pub audit: Vec<ChainCheck>,
}

impl RestoreReport {
    /// Whether every organization's audit chain verified intact.
    pub fn is_verified(&self) -> bool {
        self.audit.iter().all(ChainCheck::is_intact)
    }
}

fn refused(why: String) -> Error {
    Error::Refused(why)
}

/// One table being loaded: its INSERT shape and the rows waiting to be sent.
struct Load {
    table: String,
    columns: Vec<Column>,
    rows: Vec<Vec<Json>>,
    per_statement: usize,
}

enum Conn<'a> {
    Sqlite(&'a mut sqlx::SqliteConnection),
    Postgres(&'a mut sqlx::PgConnection),
}

fn text_of(table: &str, column: &Column, v: &Json) -> Result<Option<String>> {
    Ok(match v {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => return Err(Error::CorruptData(format!("backup: unexpected value in {table}.{}", column.name))),
    })
}

impl Load {
    async fn flush(&mut self, conn: &mut Conn<'_>) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let names: Vec<String> = self.columns.iter().map(|c| quote(&c.name)).collect();
        let mut sql = format!("INSERT INTO {} ({}) VALUES ", quote(&self.table), names.join(", "));
        let mut n = 0usize;
        for (i, _) in rows.iter().enumerate() {
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for (j, c) in self.columns.iter().enumerate() {
                n += 1;
                if j > 0 {
                    sql.push_str(", ");
                }
                match (&conn, c.kind) {
                    (Conn::Postgres(_), Kind::Bytes) | (Conn::Sqlite(_), _) => sql.push_str(&format!("${n}")),
                    (Conn::Postgres(_), _) => sql.push_str(&format!("${n}::{}", c.sql_type)),
                }
            }
            sql.push(')');
        }
        match conn {
            Conn::Sqlite(c) => {
                let mut q = sqlx::query(&sql);
                for row in &rows {
                    for (v, col) in row.iter().zip(&self.columns) {
                        q = match (format::as_bytes(v)?, v) {
                            (Some(b), _) => q.bind(b),
                            (None, Json::Null) => q.bind(None::<String>),
                            (None, Json::Bool(b)) => q.bind(i64::from(*b)),
                            (None, Json::Number(n)) => match n.as_i64() {
                                Some(i) => q.bind(i),
                                None => q.bind(n.as_f64()),
                            },
                            (None, other) => q.bind(text_of(&self.table, col, other)?),
                        };
                    }
                }
                q.execute(&mut **c).await?;
            }
            Conn::Postgres(c) => {
                let mut q = sqlx::query(&sql);
                for row in &rows {
                    for (v, col) in row.iter().zip(&self.columns) {
                        q = if col.kind == Kind::Bytes {
                            match (format::as_bytes(v)?, v) {
                                (Some(b), _) => q.bind(Some(b)),
                                (None, Json::Null) => q.bind(None::<Vec<u8>>),
                                _ => {
                                    return Err(Error::CorruptData(format!(
                                        "backup: {}.{} is not binary",
                                        self.table, col.name
                                    )))
                                }
                            }
                        } else {
                            q.bind(text_of(&self.table, col, v)?)
                        };
                    }
                }
                q.execute(&mut **c).await?;
            }
        }
        Ok(())
    }
}

/// Loads every table of `reader` through `conn`; returns the trailer's counts.
async fn load<R: BufRead>(
    pool: &Pool,
    conn: &mut Conn<'_>,
    mut reader: Reader<R>,
    progress: &mut dyn Progress,
) -> Result<BTreeMap<String, u64>> {
    let targets = catalog::tables(pool).await?;
    let limit = match pool {
        Pool::Sqlite(_) => SQLITE_PARAMS,
        Pool::Postgres(_) => PG_PARAMS,
    };
    let mut current: Option<Load> = None;
    loop {
        match reader.next_item()? {
            Some(Item::Table { name, columns }) => {
                if let Some(mut done) = current.take() {
                    done.flush(conn).await?;
                }
                if !targets.contains(&name) {
                    return Err(refused(format!("the backup has a table this schema lacks: {name}")));
                }
                let target = catalog::columns(pool, &name).await?;
                let mut ordered = Vec::with_capacity(columns.len());
                for c in &columns {
                    let col = target
                        .iter()
                        .find(|t| &t.name == c)
                        .ok_or_else(|| refused(format!("the backup has a column this schema lacks: {name}.{c}")))?;
                    ordered.push(col.clone());
                }
                if let Some(missing) = target.iter().find(|t| !columns.contains(&t.name)) {
                    return Err(refused(format!("the backup lacks a column of this schema: {name}.{}", missing.name)));
                }
                if name == "keystore_meta" {
                    // `migrate` may have written a key check value already: the backup's replaces it.
                    let sql = "DELETE FROM keystore_meta";
                    match conn {
                        Conn::Sqlite(c) => sqlx::query(sql).execute(&mut **c).await.map(|_| ())?,
                        Conn::Postgres(c) => sqlx::query(sql).execute(&mut **c).await.map(|_| ())?,
                    }
                }
                let per_statement = (limit / ordered.len().max(1)).clamp(1, 500);
                current = Some(Load { table: name, columns: ordered, rows: Vec::new(), per_statement });
            }
            Some(Item::Row(values)) => {
                let load = current.as_mut().ok_or_else(|| Error::CorruptData("backup: row outside a table".into()))?;
                if values.len() != load.columns.len() {
                    return Err(Error::CorruptData(format!("backup: a row of {} has the wrong width", load.table)));
                }
                load.rows.push(values);
                if load.rows.len() >= load.per_statement {
                    load.flush(conn).await?;
                }
                progress.advance(1);
            }
            Some(Item::End(counts)) => {
                if let Some(mut done) = current.take() {
                    done.flush(conn).await?;
                }
                return Ok(counts);
            }
            None => return Err(Error::CorruptData("backup: truncated".into())),
        }
    }
}

/// Refuses unless every table in `tables` is empty.
async fn require_empty(pool: &Pool, tables: &[String]) -> Result<()> {
    for t in tables {
        let n = catalog::count(pool, t).await?;
        if n > 0 {
            return Err(refused(format!(
                "the target database is not empty ({t} has {n} rows): restore loads only into an empty database"
            )));
        }
    }
    Ok(())
}

/// The backup must come from a source fully migrated by this build (its backend's embedded versions),
/// and the target be fully migrated too: then both hold the same schema, whatever the backends.
fn require_versions(header: &format::Header, keystore: bool, target: Backend, applied: &[i64]) -> Result<()> {
    let what = if keystore { "key" } else { "data" };
    let backend = match header.backend.as_str() {
        "sqlite" => Backend::Sqlite,
        "postgres" => Backend::Postgres,
        other => return Err(Error::CorruptData(format!("backup: unknown source backend {other:?}"))),
    };
    let expected = migrate::embedded_versions(backend, keystore);
    if header.migrations != expected {
        return Err(refused(format!(
            "the {what} backup was taken at migration versions {:?}, and this build's schema for {} is {expected:?}: \
             restore with the austa version that took the backup, then migrate",
            header.migrations, header.backend
        )));
    }
    if applied != migrate::embedded_versions(target, keystore) {
        return Err(refused(format!(
            "the target database is at migration versions {applied:?}, which this build does not know: restore with \
             the austa version that migrated it"
        )));
    }
    Ok(())
}

async fn counts(pool: &Pool, expected: &BTreeMap<String, u64>) -> Result<()> {
    for (table, n) in expected {
        let found = u64::try_from(catalog::count(pool, table).await?).unwrap_or(0);
        if found != *n {
            return Err(Error::CorruptData(format!(
                "restore: {table} has {found} rows after the load, the backup {n}"
            )));
        }
    }
    Ok(())
}

impl Database {
    /// Restores a backup into this database, which must be empty (see the module docs). `data` and
    /// `keys` are the uncompressed JSON Lines of a data and a key backup; without `keys`, the key
    /// store must already hold the keys (a key store kept in a database of its own).
    pub async fn restore<R: BufRead, K: BufRead>(
        &self,
        data: R,
        keys: Option<K>,
        progress: &mut dyn Progress,
    ) -> Result<RestoreReport> {
        let pool = &self.inner.pool;
        let store = self.inner.keyring.store();
        require_rls_bypass(pool).await?;
        migrate::run_embedded(pool, store).await?;

        let (data_reader, header) = Reader::open(data)?;
        if header.contents != Contents::Data {
            return Err(refused("the first file is a key backup, not a data backup".into()));
        }
        let target: Vec<i64> =
            applied_versions(pool).await?.into_iter().filter(|v| *v < super::KEYSTORE_VERSIONS).collect();
        require_versions(&header, false, self.backend(), &target)?;
        let data_tables: Vec<String> =
            catalog::tables(pool).await?.into_iter().filter(|t| !KEYSTORE_TABLES.contains(&t.as_str())).collect();
        require_empty(pool, &data_tables).await?;

        let key_reader = match keys {
            Some(k) => {
                require_rls_bypass(store).await?;
                let (reader, header) = Reader::open(k)?;
                if header.contents != Contents::Keys {
                    return Err(refused("the key file is a data backup, not a key backup".into()));
                }
                let target: Vec<i64> =
                    applied_versions(store).await?.into_iter().filter(|v| *v >= super::KEYSTORE_VERSIONS).collect();
                let store_backend = match store {
                    Pool::Sqlite(_) => Backend::Sqlite,
                    Pool::Postgres(_) => Backend::Postgres,
                };
                require_versions(&header, true, store_backend, &target)?;
                require_empty(store, &["organization_keys".to_string(), "patient_keys".to_string()]).await?;
                Some(reader)
            }
            None => None,
        };

        progress.start("restore", None);
        let shared = pool.same_database(store);
        let (tables, key_tables) = match pool {
            Pool::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                let tables = load(pool, &mut Conn::Sqlite(&mut tx), data_reader, progress).await?;
                let key_tables = match key_reader {
                    Some(r) if shared => Some(load(store, &mut Conn::Sqlite(&mut tx), r, progress).await?),
                    Some(r) => Some(load_apart(store, r, progress).await?),
                    None => None,
                };
                tx.commit().await?;
                (tables, key_tables)
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                let tables = load(pool, &mut Conn::Postgres(&mut tx), data_reader, progress).await?;
                let key_tables = match key_reader {
                    Some(r) if shared => Some(load(store, &mut Conn::Postgres(&mut tx), r, progress).await?),
                    Some(r) => Some(load_apart(store, r, progress).await?),
                    None => None,
                };
                tx.commit().await?;
                (tables, key_tables)
            }
        };
        progress.finish();

        counts(pool, &tables).await?;
        if let Some(k) = &key_tables {
            counts(store, k).await?;
        }
        self.clear_key_cache();
        // The restored key check value must accept this master key (or one is written now).
        self.ensure_key_check().await?;
        let audit = self.verify_audit_chains().await?;
        Ok(RestoreReport { tables, key_tables, audit })
    }

    /// Verifies every organization's audit chain as the platform (linking pending events first), one
    /// [`ChainCheck`] per organization in id order.
    pub async fn verify_audit_chains(&self) -> Result<Vec<ChainCheck>> {
        let sql = "SELECT id FROM organizations ORDER BY id";
        let ids: Vec<String> = match &self.inner.pool {
            Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await?,
            Pool::Postgres(p) => {
                sqlx::query_scalar("SELECT id::text FROM organizations ORDER BY id").fetch_all(p).await?
            }
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let organization_id =
                Uuid::parse_str(&id).map_err(|_| Error::CorruptData("organizations.id is not a UUID".into()))?;
            let scope = Scope::platform_for(self, organization_id);
            let (report, error) = match scope.audit().verify().await {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e.to_string())),
            };
            out.push(ChainCheck { organization_id, report, error });
        }
        Ok(out)
    }
}

/// Loads a key backup into a key store that lives in a database of its own, in a transaction of its own.
async fn load_apart<R: BufRead>(
    store: &Pool,
    reader: Reader<R>,
    progress: &mut dyn Progress,
) -> Result<BTreeMap<String, u64>> {
    match store {
        Pool::Sqlite(p) => {
            let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
            let counts = load(store, &mut Conn::Sqlite(&mut tx), reader, progress).await?;
            tx.commit().await?;
            Ok(counts)
        }
        Pool::Postgres(p) => {
            let mut tx = p.begin().await?;
            let counts = load(store, &mut Conn::Postgres(&mut tx), reader, progress).await?;
            tx.commit().await?;
            Ok(counts)
        }
    }
}
