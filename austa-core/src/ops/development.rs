//! Resetting a development database, and telling a development database from one that is not.
//!
//! `reset` drops the whole database. It runs on its own only where losing the data cannot hurt: a
//! database on this machine (a SQLite file, or PostgreSQL on loopback or a Unix socket) that is either
//! named for development (a name with a token such as `dev`, `test` or `local`: `austa_dev`,
//! `clinic-test.db`) or holds nothing but the development seed's organizations. Anything else needs the
//! caller to pass the database's name back, which the `austa` command asks the operator to type.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use uuid::Uuid;

use super::catalog::quote;
use crate::db::{Database, DatabaseOptions};
use crate::error::{Error, Result};
use crate::seed::{self, SeedReport};
use austa_crypto::KeyProvider;

/// Name tokens that mark a database as a development one.
const DEVELOPMENT_TOKENS: [&str; 9] =
    ["dev", "development", "test", "testing", "local", "sandbox", "scratch", "demo", "quickstart"];

/// What was found out about a database before resetting it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DevelopmentCheck {
    /// The database's name: a PostgreSQL database name, or a SQLite file's path.
    pub database: String,
    /// Whether it is on this machine.
    pub local: bool,
    /// Whether its name has a development token.
    pub named_for_development: bool,
    /// Whether it holds no organization but the development seed's (or none, or does not exist yet).
    pub only_seed_data: bool,
}

impl DevelopmentCheck {
    /// Whether a reset may go ahead without the operator typing the name back.
    pub fn looks_like_development(&self) -> bool {
        self.local && (self.named_for_development || self.only_seed_data)
    }
}

enum Target {
    Sqlite(SqliteConnectOptions, String),
    Postgres(PgConnectOptions, String),
}

fn target(url: &str) -> Result<Target> {
    if url.starts_with("sqlite:") {
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Err(Error::Refused("an in-memory SQLite database has nothing to reset".into()));
        }
        let opts =
            SqliteConnectOptions::from_str(url).map_err(|e| Error::Config(format!("invalid SQLite URL: {e}")))?;
        let name = opts.get_filename().display().to_string();
        Ok(Target::Sqlite(opts, name))
    } else {
        let opts = austa_sql::transport::postgres_options(url)?;
        let name = opts.get_database().unwrap_or(opts.get_username()).to_string();
        Ok(Target::Postgres(opts, name))
    }
}

fn named_for_development(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name).to_lowercase();
    base.split(|c: char| !c.is_ascii_alphanumeric()).any(|t| DEVELOPMENT_TOKENS.contains(&t))
}

fn only_seed(ids: Vec<String>) -> bool {
    let seed = [seed::ids::HOSPITAL, seed::ids::CLINIC];
    ids.iter().all(|id| Uuid::parse_str(id).is_ok_and(|u| seed.contains(&u)))
}

/// Finds out whether the database `url` names looks like a development database.
pub async fn check_development(url: &str) -> Result<DevelopmentCheck> {
    let sql = "SELECT CAST(id AS TEXT) FROM organizations";
    match target(url)? {
        Target::Sqlite(opts, database) => {
            let exists = opts.get_filename().exists();
            let only_seed_data = if exists {
                let pool = sqlx::SqlitePool::connect_with(opts.read_only(true)).await.map_err(Error::Database)?;
                let has: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'organizations'",
                )
                .fetch_one(&pool)
                .await?;
                let ids = if has > 0 { sqlx::query_scalar(sql).fetch_all(&pool).await? } else { Vec::new() };
                pool.close().await;
                only_seed(ids)
            } else {
                true
            };
            Ok(DevelopmentCheck {
                named_for_development: named_for_development(&database),
                database,
                local: true,
                only_seed_data,
            })
        }
        Target::Postgres(opts, database) => {
            let local = austa_sql::transport::stays_on_this_machine(&opts);
            let only_seed_data = match sqlx::PgPool::connect_with(opts).await {
                Ok(pool) => {
                    let has: bool =
                        sqlx::query_scalar("SELECT to_regclass('organizations') IS NOT NULL").fetch_one(&pool).await?;
                    let ids = if has { sqlx::query_scalar(sql).fetch_all(&pool).await? } else { Vec::new() };
                    pool.close().await;
                    only_seed(ids)
                }
                // A database that does not exist yet holds nothing to lose.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => true,
                Err(e) => return Err(e.into()),
            };
            Ok(DevelopmentCheck {
                named_for_development: named_for_development(&database),
                database,
                local,
                only_seed_data,
            })
        }
    }
}

/// Drops the database of `options`, creates it again, migrates it and loads the development seed
/// once. Refuses unless the database looks like a development one (see the module docs) or
/// `confirmed_name` is its name, and refuses a key store kept apart (reset that one by hand).
pub async fn reset(
    options: &DatabaseOptions,
    keys: Arc<dyn KeyProvider>,
    confirmed_name: Option<&str>,
) -> Result<(Database, SeedReport)> {
    if options.keystore_url.as_deref().is_some_and(|k| k != options.url) {
        return Err(Error::Refused(
            "reset drops the data database only, and the key store lives apart (AUSTA_KEYSTORE_URL): reset both by hand"
                .into(),
        ));
    }
    let check = check_development(&options.url).await?;
    if !check.looks_like_development() && confirmed_name != Some(check.database.as_str()) {
        return Err(Error::Refused(format!(
            "{} does not look like a development database (not local, or neither named for development nor holding \
             only the development seed): confirm with its name to reset it anyway",
            check.database
        )));
    }
    match target(&options.url)? {
        Target::Sqlite(opts, _) => {
            let file = opts.get_filename().to_path_buf();
            for suffix in ["", "-wal", "-shm"] {
                let mut path = file.clone().into_os_string();
                path.push(suffix);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::Io(e)),
                }
            }
        }
        Target::Postgres(opts, name) => {
            let admin = sqlx::PgPool::connect_with(opts.database("postgres")).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(&name))).execute(&admin).await?;
            sqlx::query(&format!("CREATE DATABASE {}", quote(&name))).execute(&admin).await?;
            admin.close().await;
        }
    }
    let db = Database::open(options.clone(), keys).await?;
    db.migrate().await?;
    let report = seed::run(&db).await?;
    Ok((db, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_names() {
        for dev in ["austa_dev", "clinic-test.db", "/tmp/x/local.db", "austa_development", "DEV_clinic"] {
            assert!(named_for_development(dev), "{dev}");
        }
        for prod in ["austa", "hospital_production", "/var/lib/austa/clinic.db", "devices", "latest"] {
            assert!(!named_for_development(prod), "{prod}");
        }
    }
}
