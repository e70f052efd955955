//! Embedded migrations: `migrations/sqlite` and `migrations/postgres` are compiled into the crate, and
//! sqlx's migrator applies them (checksummed, recorded in `_sqlx_migrations`, under an advisory lock on
//! PostgreSQL so that two processes migrating at once do not collide).

use sqlx::migrate::Migrator;

use super::Pool;
use crate::error::Result;

static SQLITE: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("../migrations/postgres");

pub(super) async fn run(pool: &Pool) -> Result<()> {
    match pool {
        Pool::Sqlite(p) => SQLITE.run(p).await?,
        Pool::Postgres(p) => POSTGRES.run(p).await?,
    }
    Ok(())
}
