//! Embedded migrations: `migrations/{sqlite,postgres}` (the data schema) and
//! `migrations/keystore/{sqlite,postgres}` (the key store) are compiled into the crate, and sqlx's
//! migrator applies them (checksummed, recorded in `_sqlx_migrations`).
//!
//! Two processes migrating at once never collide: on PostgreSQL the whole run holds an advisory lock
//! (sqlx takes its own inside it); on SQLite, where sqlx takes no lock, the whole run happens inside
//! one `BEGIN IMMEDIATE` transaction (each migration in a savepoint). When the key store shares the
//! data database, its migrations run under the same lock. Either way the second process waits, then
//! finds nothing to do. SQLite's DDL is transactional, so a failed run there leaves
//! nothing half-applied.
//!
//! The key store may share the data database (the default) or live apart. Both sets share one
//! `_sqlx_migrations` table when they share a database, so their version numbers never overlap (data:
//! 1..; key store: 900001..) and each migrator ignores the other's applied versions.

use sqlx::migrate::Migrator;

use super::Pool;
use crate::error::Result;

static SQLITE: Migrator = Migrator { ignore_missing: true, ..sqlx::migrate!("../migrations/sqlite") };
static POSTGRES: Migrator = Migrator { ignore_missing: true, ..sqlx::migrate!("../migrations/postgres") };
static KEYSTORE_SQLITE: Migrator = Migrator { ignore_missing: true, ..sqlx::migrate!("../migrations/keystore/sqlite") };
static KEYSTORE_POSTGRES: Migrator =
    Migrator { ignore_missing: true, ..sqlx::migrate!("../migrations/keystore/postgres") };

/// The embedded data migrations of `pool`'s backend.
pub(crate) fn data_migrator(pool: &Pool) -> &'static Migrator {
    match pool {
        Pool::Sqlite(_) => &SQLITE,
        Pool::Postgres(_) => &POSTGRES,
    }
}

/// The embedded key store migrations of `pool`'s backend.
pub(crate) fn keystore_migrator(pool: &Pool) -> &'static Migrator {
    match pool {
        Pool::Sqlite(_) => &KEYSTORE_SQLITE,
        Pool::Postgres(_) => &KEYSTORE_POSTGRES,
    }
}

/// The versions of `backend`'s embedded data (`keystore == false`) or key store migrations: what a
/// database of that backend holds once fully migrated by this build.
pub(crate) fn embedded_versions(backend: super::Backend, keystore: bool) -> Vec<i64> {
    let m = match (backend, keystore) {
        (super::Backend::Sqlite, false) => &SQLITE,
        (super::Backend::Postgres, false) => &POSTGRES,
        (super::Backend::Sqlite, true) => &KEYSTORE_SQLITE,
        (super::Backend::Postgres, true) => &KEYSTORE_POSTGRES,
    };
    m.iter().map(|m| m.version).collect()
}

/// A key for PostgreSQL's advisory lock held across a whole run ("austa" in ASCII), so that the check
/// of what is applied and the run happen under one lock.
const PG_LOCK_KEY: i64 = 0x0061_7573_7461;

const APPLIED: &str = "SELECT version FROM _sqlx_migrations ORDER BY version";

async fn applied_sqlite(conn: &mut sqlx::SqliteConnection) -> Result<Vec<i64>> {
    let exists: bool =
        sqlx::query_scalar("SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_one(&mut *conn)
            .await?;
    Ok(if exists { sqlx::query_scalar(APPLIED).fetch_all(conn).await? } else { Vec::new() })
}

async fn applied_pg(conn: &mut sqlx::PgConnection) -> Result<Vec<i64>> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(&mut *conn).await?;
    Ok(if exists { sqlx::query_scalar(APPLIED).fetch_all(conn).await? } else { Vec::new() })
}

/// Applies `migrators`, in order, to `pool` under one hold of the backend's lock (see the module docs);
/// returns the versions this call applied (empty when another process had applied them, or nothing was
/// pending). Every failure, including reading the migrations table or taking the lock (a role without
/// DDL rights, for one), is a `migration` error.
pub(crate) async fn run(pool: &Pool, migrators: &[&Migrator]) -> Result<Vec<i64>> {
    run_locked(pool, migrators).await.map_err(|e| match e {
        crate::Error::Database(e) => crate::Error::Migration(sqlx::migrate::MigrateError::Execute(e)),
        other => other,
    })
}

async fn run_locked(pool: &Pool, migrators: &[&Migrator]) -> Result<Vec<i64>> {
    let (before, after) = match pool {
        Pool::Sqlite(p) => {
            let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
            let before = applied_sqlite(&mut tx).await?;
            for migrator in migrators {
                migrator.run_direct(&mut *tx).await?;
            }
            let after = applied_sqlite(&mut tx).await?;
            tx.commit().await?;
            (before, after)
        }
        Pool::Postgres(p) => {
            let mut conn = p.acquire().await?;
            sqlx::query("SELECT pg_advisory_lock($1)").bind(PG_LOCK_KEY).execute(&mut *conn).await?;
            let result = async {
                let before = applied_pg(&mut conn).await?;
                for migrator in migrators {
                    migrator.run_direct(&mut *conn).await?;
                }
                let after = applied_pg(&mut conn).await?;
                Ok::<_, crate::Error>((before, after))
            }
            .await;
            sqlx::query("SELECT pg_advisory_unlock($1)").bind(PG_LOCK_KEY).execute(&mut *conn).await?;
            result?
        }
    };
    Ok(after.into_iter().filter(|v| !before.contains(v)).collect())
}

/// Applies every embedded migration: the data set to `pool` and the key store set to `store`, both under
/// one lock when they are the same database (so that of two concurrent runs, one applies everything and
/// the other nothing). Returns the versions this call applied.
pub(crate) async fn run_embedded(pool: &Pool, store: &Pool) -> Result<Vec<i64>> {
    if pool.same_database(store) {
        run(pool, &[data_migrator(pool), keystore_migrator(store)]).await
    } else {
        let mut applied = run(pool, &[data_migrator(pool)]).await?;
        applied.extend(run(store, &[keystore_migrator(store)]).await?);
        Ok(applied)
    }
}
