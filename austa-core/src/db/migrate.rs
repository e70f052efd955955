//! Embedded migrations: `migrations/{sqlite,postgres}` (the data schema) and
//! `migrations/keystore/{sqlite,postgres}` (the key store) are compiled into the crate, and sqlx's
//! migrator applies them (checksummed, recorded in `_sqlx_migrations`, under an advisory lock on
//! PostgreSQL so that two processes migrating at once do not collide).
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

pub(super) async fn run_data(pool: &Pool) -> Result<()> {
    match pool {
        Pool::Sqlite(p) => SQLITE.run(p).await?,
        Pool::Postgres(p) => POSTGRES.run(p).await?,
    }
    Ok(())
}

pub(super) async fn run_keystore(pool: &Pool) -> Result<()> {
    match pool {
        Pool::Sqlite(p) => KEYSTORE_SQLITE.run(p).await?,
        Pool::Postgres(p) => KEYSTORE_POSTGRES.run(p).await?,
    }
    Ok(())
}
