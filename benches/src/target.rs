//! Where a run's databases live: SQLite files in a temporary directory, PostgreSQL databases created
//! on a server (and dropped afterwards). Each subject (the library, each baseline) gets a database of
//! its own, so that none sees another's tables or cache.

use std::sync::Mutex;

/// A backend the workloads run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The backend's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs `ANALYZE` on the database at `url` (either backend), so that the planner knows the tables'
/// sizes and value distributions, as autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) would
/// have told it in a service that has run for a while.
pub async fn analyze(url: &str) -> Result<(), BoxError> {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await?;
        sqlx::query("ANALYZE").execute(&pool).await?;
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await?;
        sqlx::query("ANALYZE").execute(&pool).await?;
        pool.close().await;
    }
    Ok(())
}

/// Fresh databases of one backend.
pub struct Target {
    /// Which backend.
    pub backend: Backend,
    dir: tempfile::TempDir,
    admin: Option<String>,
    created: Mutex<Vec<String>>,
}

impl Target {
    /// SQLite files under a temporary directory.
    pub fn sqlite() -> Result<Self, BoxError> {
        Ok(Self { backend: Backend::Sqlite, dir: tempfile::tempdir()?, admin: None, created: Mutex::new(Vec::new()) })
    }

    /// Databases created through `admin` (a PostgreSQL URL of a role that may create databases).
    pub fn postgres(admin: &str) -> Result<Self, BoxError> {
        Ok(Self {
            backend: Backend::Postgres,
            dir: tempfile::tempdir()?,
            admin: Some(admin.to_string()),
            created: Mutex::new(Vec::new()),
        })
    }

    /// The URL of a new, empty database for `subject`.
    pub async fn database(&self, subject: &str) -> Result<String, BoxError> {
        match &self.admin {
            None => Ok(format!("sqlite://{}", self.dir.path().join(format!("{subject}.db")).display())),
            Some(admin) => {
                let name = format!("austa_bench_{subject}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
                let pool = sqlx::PgPool::connect(admin).await?;
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await?;
                pool.close().await;
                if let Ok(mut created) = self.created.lock() {
                    created.push(name.clone());
                }
                Ok(with_database(admin, &name))
            }
        }
    }

    /// Drops the PostgreSQL databases this target created, unless `AUSTA_BENCH_KEEP_DATABASES` is
    /// set (to look at their plans and tables after a run; their names are printed then).
    pub async fn cleanup(&self) {
        let Some(admin) = &self.admin else { return };
        let names: Vec<String> = self.created.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default();
        if std::env::var_os("AUSTA_BENCH_KEEP_DATABASES").is_some() {
            eprintln!("kept databases: {}", names.join(", "));
            return;
        }
        if let Ok(pool) = sqlx::PgPool::connect(admin).await {
            for name in names {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&pool).await;
            }
            pool.close().await;
        }
    }
}

/// `url` with its database name replaced by `name` (query string kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map(|(b, q)| (b, format!("?{q}"))).unwrap_or((url, String::new()));
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let server = rest.split_once('/').map(|(s, _)| s).unwrap_or(rest);
    format!("{scheme}://{server}/{name}{query}")
}

/// `url` as another user, without a password (a local cluster that trusts loopback connections, as
/// the test scripts start).
pub fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    format!("{scheme}://{user}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres?sslmode=disable", "x"),
            "postgres://u@h:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(as_user("postgres://u:p@h:5/x", "austa_app"), "postgres://austa_app@h:5/x");
    }
}
