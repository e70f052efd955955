//! Migration status: which migrations are applied, pending, or changed since they were applied.
//!
//! sqlx records a SHA-384 checksum of each migration's SQL when it applies it. A migration whose file
//! was edited afterwards no longer matches, which is drift: the live schema may differ from what the
//! files say. Line endings do not count as an edit (a checkout with CRLF line endings is the same
//! migration), so a checksum matches when it equals the SQL's with LF or with CRLF line endings.

use std::path::Path;

use sqlx::migrate::{Migration, Migrator};

use crate::db::{Database, Pool};
use crate::error::{Error, Result};
use austa_sql::migrate::{data_migrator, keystore_migrator};

/// The state of one migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    /// Applied, and the file still has the checksum it was applied with.
    Applied,
    /// Known to this build, not applied yet.
    Pending,
    /// Applied, but the file changed since (drift).
    Changed,
    /// Applied, but the run failed halfway (`success = false`) (drift).
    Failed,
    /// Applied, but unknown to this build: the database was migrated by a newer version (drift).
    Unknown,
}

impl MigrationState {
    /// Whether this state means the database and the migrations disagree.
    pub fn is_drift(self) -> bool {
        matches!(self, Self::Changed | Self::Failed | Self::Unknown)
    }
}

/// One migration's line in the status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigrationEntry {
    /// Version number (data: 1.., key store: 900001..).
    pub version: i64,
    /// Description (from the file name).
    pub description: String,
    /// `data` or `keystore`.
    pub set: &'static str,
    /// Where it stands.
    pub state: MigrationState,
    /// When it was applied, as the database recorded it.
    pub applied_at: Option<String>,
}

/// The status of every migration of a database (and of its key store when that lives apart).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigrationStatus {
    /// Every migration, by version.
    pub migrations: Vec<MigrationEntry>,
}

impl MigrationStatus {
    /// Whether any migration drifted (changed, failed or unknown).
    pub fn has_drift(&self) -> bool {
        self.migrations.iter().any(|m| m.state.is_drift())
    }

    /// How many migrations are in `state`.
    pub fn count(&self, state: MigrationState) -> usize {
        self.migrations.iter().filter(|m| m.state == state).count()
    }
}

struct Applied {
    version: i64,
    description: String,
    success: bool,
    checksum: Vec<u8>,
    installed_on: String,
}

async fn applied(pool: &Pool) -> Result<Vec<Applied>> {
    // The same text on both backends: the time as the database prints it.
    let sql = "SELECT version, description, success, checksum, CAST(installed_on AS TEXT) \
               FROM _sqlx_migrations ORDER BY version";
    let has_table = match pool {
        Pool::Sqlite(p) => sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(p)
        .await?
        .eq(&1),
        Pool::Postgres(p) => {
            sqlx::query_scalar::<_, bool>("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(p).await?
        }
    };
    if !has_table {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64, String, bool, Vec<u8>, String)> = match pool {
        Pool::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await?,
        Pool::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await?,
    };
    Ok(rows
        .into_iter()
        .map(|(version, description, success, checksum, installed_on)| Applied {
            version,
            description,
            success,
            checksum,
            installed_on,
        })
        .collect())
}

/// Compares `sets` (name, migrations) with what `pool` recorded.
async fn status_of(pool: &Pool, sets: &[(&'static str, &[Migration])]) -> Result<Vec<MigrationEntry>> {
    let mut applied = applied(pool).await?;
    let mut out = Vec::new();
    for (set, migrations) in sets {
        for m in migrations.iter() {
            let found = applied.iter().position(|a| a.version == m.version).map(|i| applied.remove(i));
            let state = match &found {
                None => MigrationState::Pending,
                Some(a) if !a.success => MigrationState::Failed,
                Some(a) if !austa_sql::migrate::checksum_matches(&a.checksum, &m.sql) => MigrationState::Changed,
                Some(_) => MigrationState::Applied,
            };
            out.push(MigrationEntry {
                version: m.version,
                description: m.description.to_string(),
                set,
                state,
                applied_at: found.map(|a| a.installed_on),
            });
        }
    }
    // What is left was applied by something this build does not know.
    out.extend(applied.into_iter().map(|a| MigrationEntry {
        version: a.version,
        set: if a.version >= 900_000 { "keystore" } else { "data" },
        description: a.description,
        state: if a.success { MigrationState::Unknown } else { MigrationState::Failed },
        applied_at: Some(a.installed_on),
    }));
    out.sort_by_key(|e| e.version);
    Ok(out)
}

impl Database {
    /// The status of every migration: the embedded ones (or, with `source`, the data migrations read
    /// from that directory instead, to check edited files before they ship) against what the database
    /// recorded. The key store's migrations are included, from its own database when it lives apart.
    pub async fn migration_status(&self, source: Option<&Path>) -> Result<MigrationStatus> {
        let pool = &self.inner.pool;
        let store = self.inner.keyring.store();
        let from_dir;
        let data: &Migrator = match source {
            Some(dir) => {
                from_dir = Migrator::new(dir)
                    .await
                    .map_err(|e| Error::Config(format!("cannot read migrations from {}: {e}", dir.display())))?;
                &from_dir
            }
            None => data_migrator(pool),
        };
        let keystore = keystore_migrator(store).migrations.as_ref();
        let mut migrations = if pool.same_database(store) {
            status_of(pool, &[("data", data.migrations.as_ref()), ("keystore", keystore)]).await?
        } else {
            let mut v = status_of(pool, &[("data", data.migrations.as_ref())]).await?;
            v.retain(|e| e.set == "data");
            let mut k = status_of(store, &[("keystore", keystore)]).await?;
            k.retain(|e| e.set == "keystore");
            v.extend(k);
            v
        };
        migrations.sort_by_key(|e| e.version);
        Ok(MigrationStatus { migrations })
    }
}
