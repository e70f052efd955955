//! Embedded migrations: `migrations/{sqlite,postgres}` (the data schema) and
//! `migrations/keystore/{sqlite,postgres}` (the key store) are compiled into the crate, and sqlx's
//! migrator applies them (checksummed, recorded in `_sqlx_migrations`).
//!
//! Two processes migrating at once never collide: on PostgreSQL the whole run holds an advisory lock
//! (and sqlx takes none of its own, which it would leave held on the pooled connection when a
//! migration fails); on SQLite, where sqlx takes no lock, the whole run happens inside
//! one `BEGIN IMMEDIATE` transaction (each migration in a savepoint). When the key store shares the
//! data database, its migrations run under the same lock. Either way the second process waits, then
//! finds nothing to do. SQLite's DDL is transactional, so a failed run there leaves
//! nothing half-applied.
//!
//! The key store may share the data database (the default) or live apart. Both sets share one
//! `_sqlx_migrations` table when they share a database, so their version numbers never overlap (data:
//! 1..; key store: 900001..) and each migrator ignores the other's applied versions.

use sqlx::migrate::{Migration, Migrator};

use austa_error::Result;

use crate::{Backend, Pool};

static SQLITE: Migrator = Migrator { ignore_missing: true, ..sqlx::migrate!("../migrations/sqlite") };
static POSTGRES: Migrator = Migrator { ignore_missing: true, ..sqlx::migrate!("../migrations/postgres") };
static KEYSTORE_SQLITE: Migrator = Migrator { ignore_missing: true, ..sqlx::migrate!("../migrations/keystore/sqlite") };
static KEYSTORE_POSTGRES: Migrator =
    Migrator { ignore_missing: true, ..sqlx::migrate!("../migrations/keystore/postgres") };

/// The embedded data migrations of `pool`'s backend.
pub fn data_migrator(pool: &Pool) -> &'static Migrator {
    match pool {
        Pool::Sqlite(_) => &SQLITE,
        Pool::Postgres(_) => &POSTGRES,
    }
}

/// The embedded key store migrations of `pool`'s backend.
pub fn keystore_migrator(pool: &Pool) -> &'static Migrator {
    match pool {
        Pool::Sqlite(_) => &KEYSTORE_SQLITE,
        Pool::Postgres(_) => &KEYSTORE_POSTGRES,
    }
}

/// The versions of `backend`'s embedded data (`keystore == false`) or key store migrations: what a
/// database of that backend holds once fully migrated by this build.
pub fn embedded_versions(backend: Backend, keystore: bool) -> Vec<i64> {
    let m = match (backend, keystore) {
        (Backend::Sqlite, false) => &SQLITE,
        (Backend::Postgres, false) => &POSTGRES,
        (Backend::Sqlite, true) => &KEYSTORE_SQLITE,
        (Backend::Postgres, true) => &KEYSTORE_POSTGRES,
    };
    m.iter().map(|m| m.version).collect()
}

/// A key for PostgreSQL's advisory lock held across a whole run ("austa" in ASCII), so that the check
/// of what is applied and the run happen under one lock.
const PG_LOCK_KEY: i64 = 0x0061_7573_7461;

const APPLIED: &str = "SELECT version, checksum FROM _sqlx_migrations ORDER BY version";

/// Versions applied so far, with the checksum each was applied with.
type Applied = Vec<(i64, Vec<u8>)>;

async fn applied_sqlite(conn: &mut sqlx::SqliteConnection) -> Result<Applied> {
    let exists: bool =
        sqlx::query_scalar("SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_one(&mut *conn)
            .await?;
    Ok(if exists { sqlx::query_as(APPLIED).fetch_all(conn).await? } else { Vec::new() })
}

async fn applied_pg(conn: &mut sqlx::PgConnection) -> Result<Applied> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(&mut *conn).await?;
    Ok(if exists { sqlx::query_as(APPLIED).fetch_all(conn).await? } else { Vec::new() })
}

/// Whether `checksum` (recorded by sqlx) is the checksum of `sql`, whatever its line endings.
pub fn checksum_matches(checksum: &[u8], sql: &str) -> bool {
    use sha2::{Digest, Sha384};
    let lf = sql.replace("\r\n", "\n");
    let crlf = lf.replace('\n', "\r\n");
    [sql, lf.as_str(), crlf.as_str()].iter().any(|s| Sha384::digest(s.as_bytes()).as_slice() == checksum)
}

/// `migrator` as sqlx should run it whatever the checkout's line endings: a new migration is applied
/// (and its checksum recorded) with LF line endings, and one already applied with the same SQL under
/// other line endings carries the checksum it was applied with. sqlx compares checksums byte for byte,
/// so without this a checkout with CRLF line endings (Git on Windows) failed `migrate` on a database
/// that `status` called current. A real edit still differs under both and fails as before.
fn line_ending_neutral(migrator: &Migrator, applied: &Applied) -> Migrator {
    let migrations = migrator
        .iter()
        .map(|m| {
            let lf = m.sql.replace("\r\n", "\n");
            let mut neutral = Migration::new(m.version, m.description.clone(), m.migration_type, lf.into(), m.no_tx);
            match applied.iter().find(|(v, _)| *v == m.version) {
                Some((_, recorded)) if checksum_matches(recorded, &m.sql) => neutral.checksum = recorded.clone().into(),
                Some(_) => neutral.checksum = m.checksum.clone(),
                None => {}
            }
            neutral
        })
        .collect::<Vec<_>>();
    // No lock of sqlx's own: the run holds ours (see `run_locked`), and sqlx leaves its lock held on
    // the pooled connection when a migration fails.
    Migrator {
        migrations: migrations.into(),
        ignore_missing: migrator.ignore_missing,
        locking: false,
        no_tx: migrator.no_tx,
    }
}

/// Applies `migrators`, in order, to `pool` under one hold of the backend's lock (see the module docs);
/// returns the versions this call applied (empty when another process had applied them, or nothing was
/// pending). Every failure, including reading the migrations table or taking the lock (a role without
/// DDL rights, for one), is a `migration` error.
pub async fn run(pool: &Pool, migrators: &[&Migrator]) -> Result<Vec<i64>> {
    run_locked(pool, migrators).await.map_err(|e| match e {
        austa_error::Error::Database(e) => austa_error::Error::Migration(sqlx::migrate::MigrateError::Execute(e)),
        other => other,
    })
}

async fn run_locked(pool: &Pool, migrators: &[&Migrator]) -> Result<Vec<i64>> {
    let (before, after) = match pool {
        Pool::Sqlite(p) => {
            let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
            let before = applied_sqlite(&mut tx).await?;
            for migrator in migrators {
                line_ending_neutral(migrator, &before).run_direct(&mut *tx).await?;
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
                    line_ending_neutral(migrator, &before).run_direct(&mut *conn).await?;
                }
                let after = applied_pg(&mut conn).await?;
                Ok::<_, austa_error::Error>((before, after))
            }
            .await;
            sqlx::query("SELECT pg_advisory_unlock($1)").bind(PG_LOCK_KEY).execute(&mut *conn).await?;
            result?
        }
    };
    Ok(after.into_iter().map(|(v, _)| v).filter(|v| !before.iter().any(|(b, _)| b == v)).collect())
}

/// Applies every embedded migration: the data set to `pool` and the key store set to `store`, both under
/// one lock when they are the same database (so that of two concurrent runs, one applies everything and
/// the other nothing). Returns the versions this call applied.
pub async fn run_embedded(pool: &Pool, store: &Pool) -> Result<Vec<i64>> {
    if pool.same_database(store) {
        run(pool, &[data_migrator(pool), keystore_migrator(store)]).await
    } else {
        let mut applied = run(pool, &[data_migrator(pool)]).await?;
        applied.extend(run(store, &[keystore_migrator(store)]).await?);
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_do_not_count_as_edits() {
        let sql = "CREATE TABLE a (x INT);\nCREATE TABLE b (y INT);\n";
        let recorded = {
            use sha2::{Digest, Sha384};
            Sha384::digest(sql.as_bytes()).to_vec()
        };
        assert!(checksum_matches(&recorded, sql));
        assert!(checksum_matches(&recorded, &sql.replace('\n', "\r\n")));
        assert!(!checksum_matches(&recorded, "CREATE TABLE a (x BIGINT);\nCREATE TABLE b (y INT);\n"));
    }

    /// The embedded data migrations as a checkout with CRLF line endings would embed them.
    fn with_crlf(migrator: &Migrator) -> Migrator {
        let migrations = migrator
            .iter()
            .map(|m| {
                let crlf = m.sql.replace("\r\n", "\n").replace('\n', "\r\n");
                Migration::new(m.version, m.description.clone(), m.migration_type, crlf.into(), m.no_tx)
            })
            .collect::<Vec<_>>();
        Migrator { migrations: migrations.into(), ignore_missing: true, locking: false, no_tx: false }
    }

    /// Half of `embedded` applied from an LF checkout, then the rest from a CRLF one, then neither
    /// finds anything to do; sqlx on its own refuses the CRLF checkout.
    async fn migrates_across_line_endings(pool: &Pool, embedded: &Migrator) {
        let crlf = with_crlf(embedded);
        let half = Migrator { migrations: embedded.migrations[..3].to_vec().into(), ..Migrator::DEFAULT };
        assert_eq!(run(pool, &[&half]).await.unwrap().len(), 3);
        let refused = match pool {
            Pool::Sqlite(p) => crlf.run(p).await,
            Pool::Postgres(p) => crlf.run(p).await,
        };
        let refused = refused.unwrap_err().to_string();
        assert!(refused.contains("previously applied but has been modified"), "{refused}");
        assert_eq!(run(pool, &[&crlf]).await.unwrap().len(), embedded.migrations.len() - 3);
        assert_eq!(run(pool, &[embedded]).await.unwrap(), Vec::<i64>::new());
        assert_eq!(run(pool, &[&crlf]).await.unwrap(), Vec::<i64>::new());
    }

    #[tokio::test]
    async fn a_database_migrated_from_lf_migrates_from_a_crlf_checkout_and_back_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
        migrates_across_line_endings(&Pool::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap()), &SQLITE).await;
    }

    #[tokio::test]
    async fn a_database_migrated_from_lf_migrates_from_a_crlf_checkout_and_back_postgres() {
        let Some(admin_url) = std::env::var("AUSTA_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
            assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI=true needs AUSTA_TEST_DATABASE_URL");
            return;
        };
        let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
        let name = format!("austa_unit_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.unwrap();
        let mut options: sqlx::postgres::PgConnectOptions = admin_url.parse().unwrap();
        options = options.database(&name);
        let pool = sqlx::PgPool::connect_with(options).await.unwrap();
        migrates_across_line_endings(&Pool::Postgres(pool.clone()), &POSTGRES).await;
        pool.close().await;
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&admin).await.unwrap();
    }

    #[test]
    fn a_crlf_checkout_runs_with_the_recorded_checksum() {
        let lf = "CREATE TABLE a (x INT);\n";
        let crlf = lf.replace('\n', "\r\n");
        let kind = sqlx::migrate::MigrationType::Simple;
        let embedded = |sql: &str, v| Migration::new(v, "a".into(), kind, sql.to_string().into(), false);
        let migrator = Migrator {
            migrations: vec![embedded(&crlf, 1), embedded(&crlf, 2), embedded("CHANGED\r\n", 3)].into(),
            ..Migrator::DEFAULT
        };
        let applied_lf = embedded(lf, 1).checksum.to_vec();
        let applied_other = embedded("ORIGINAL\n", 3).checksum.to_vec();
        let neutral = line_ending_neutral(&migrator, &vec![(1, applied_lf.clone()), (3, applied_other.clone())]);
        let m: Vec<&Migration> = neutral.iter().collect();
        assert_eq!(m[0].checksum.as_ref(), applied_lf.as_slice(), "applied under LF: its recorded checksum");
        assert_eq!(m[1].sql, lf, "pending: applied with LF line endings");
        assert_eq!(m[1].checksum.as_ref(), embedded(lf, 2).checksum.as_ref());
        assert_ne!(m[2].checksum.as_ref(), applied_other.as_slice(), "a real edit still mismatches");
    }
}
