//! Shared test support: one fresh, migrated database per backend.
//!
//! SQLite always runs (a file in a temporary directory). PostgreSQL runs when
//! `AUSTA_TEST_DATABASE_URL` names a server where the user may create databases: each call creates a
//! database of its own and drops it afterwards. With `CI=true`, a missing PostgreSQL is a failure, never
//! a silent skip.
#![allow(dead_code)]

use std::sync::Arc;

use austa_core::crypto::{DataKey, KeyProvider, LocalKeyProvider};
use austa_core::model::{NewOrganization, OrganizationType};
use austa_core::{Actor, Database, Scope};

/// Which backend a [`TestDb`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated, empty database and what is needed to reach it with raw SQL.
pub struct TestDb {
    pub backend: Backend,
    /// The database as its owner (on PostgreSQL a superuser, which bypasses row-level security): for
    /// raw inspection and tampering.
    pub url: String,
    /// On PostgreSQL, the same database as the runtime role `austa_app`, which `db` uses: every
    /// library call in the tests runs under row-level security.
    pub app_url: String,
    pub db: Database,
    pub keys: Arc<dyn KeyProvider>,
    guard: Guard,
}

enum Guard {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    PgDatabase { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Guard::PgDatabase { admin_url, name } = &self.guard {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs outside async context: use a short-lived runtime on its own thread.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(async {
                        if let Ok(pool) = sqlx::PgPool::connect(&admin_url).await {
                            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&pool)
                                .await;
                            pool.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// The PostgreSQL admin URL, or None; panics under `CI=true` when it is missing.
pub fn postgres_url() -> Option<String> {
    match std::env::var("AUSTA_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but AUSTA_TEST_DATABASE_URL is not set: PostgreSQL tests must run in CI");
            }
            eprintln!("note: AUSTA_TEST_DATABASE_URL not set; PostgreSQL tests skipped (set CI=true to fail instead)");
            None
        }
    }
}

fn test_keys() -> Arc<dyn KeyProvider> {
    Arc::new(LocalKeyProvider::from_key(&DataKey::generate(), "test"))
}

/// A fresh migrated SQLite database.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let keys = test_keys();
    let db = Database::connect_with(&url, keys.clone()).await.expect("connect sqlite");
    db.migrate().await.expect("migrate sqlite");
    TestDb { backend: Backend::Sqlite, app_url: url.clone(), url, db, keys, guard: Guard::Dir(dir) }
}

/// A fresh migrated PostgreSQL database, when one is configured.
pub async fn postgres() -> Option<TestDb> {
    let admin_url = postgres_url()?;
    let name = format!("austa_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&admin_url).await.expect("connect to AUSTA_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("create test database");
    admin.close().await;
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (admin_url.clone(), String::new()),
    };
    let prefix = match base.rsplit_once('/') {
        Some((p, _)) if p.contains("//") && p.len() > p.find("//").unwrap_or(0) + 2 => p.to_string(),
        _ => base.clone(),
    };
    let url = format!("{prefix}/{name}{query}");
    let keys = test_keys();
    // Migrations run as the owner; the library then runs as the runtime role, under row-level security.
    let owner = Database::connect_with(&url, keys.clone()).await.expect("connect postgres");
    owner.migrate().await.expect("migrate postgres");
    owner.close().await;
    allow_app_login(&url).await;
    let app_url = as_user(&url, "austa_app");
    let db = Database::connect_with(&app_url, keys.clone()).await.expect("connect as austa_app");
    Some(TestDb { backend: Backend::Postgres, url, app_url, db, keys, guard: Guard::PgDatabase { admin_url, name } })
}

/// `postgres://someone[:pw]@host/db` as `user` (no password: the test cluster trusts local connections).
pub fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    format!("{scheme}://{user}@{host}")
}

/// Lets the runtime role log in (a cluster-wide change; once per test process, since concurrent
/// ALTER ROLE statements on one role fail with "tuple concurrently updated").
async fn allow_app_login(url: &str) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        let admin = sqlx::PgPool::connect(url).await.expect("connect as owner");
        for _ in 0..20 {
            let can: bool = sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'austa_app'")
                .fetch_one(&admin)
                .await
                .expect("austa_app exists after migrate");
            if can || sqlx::query("ALTER ROLE austa_app LOGIN").execute(&admin).await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        admin.close().await;
    })
    .await;
}

/// One migrated, empty database per available backend.
pub async fn backends() -> Vec<TestDb> {
    let mut v = vec![sqlite().await];
    if let Some(pg) = postgres().await {
        v.push(pg);
    }
    v
}

impl TestDb {
    /// A raw SQLite pool on the same file (panics on PostgreSQL).
    pub async fn sqlite_pool(&self) -> sqlx::SqlitePool {
        assert_eq!(self.backend, Backend::Sqlite);
        sqlx::SqlitePool::connect(&self.url).await.expect("raw sqlite pool")
    }

    /// A raw PostgreSQL pool on the same database (panics on SQLite).
    pub async fn pg_pool(&self) -> sqlx::PgPool {
        assert_eq!(self.backend, Backend::Postgres);
        sqlx::PgPool::connect(&self.url).await.expect("raw postgres pool")
    }

    /// A new organization and a system scope in it.
    pub async fn org(&self, name: &str) -> Scope {
        let org = self
            .db
            .organizations()
            .create(NewOrganization::new(name, OrganizationType::Hospital))
            .await
            .expect("create organization");
        self.db.scope(org.id, Actor::platform()).await.expect("scope")
    }

    /// A new active provider of `scope`'s organization (a provider scope needs one: its actor is
    /// checked when the scope opens); returns its id.
    pub async fn provider(&self, scope: &Scope) -> uuid::Uuid {
        use austa_core::model::{NewProvider, ProviderRole};
        let email = format!("dr.{}@example.com", uuid::Uuid::now_v7().simple());
        let new = NewProvider::new("Helena", "Prado", email, ProviderRole::Doctor);
        scope.providers().create(new).await.expect("create provider").id
    }

    /// Runs raw SQL (no binds) on the same database, for tampering tests.
    pub async fn raw_execute(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let p = self.sqlite_pool().await;
                sqlx::query(sql).execute(&p).await.expect("raw sql");
                p.close().await;
            }
            Backend::Postgres => {
                let p = self.pg_pool().await;
                sqlx::query(sql).execute(&p).await.expect("raw sql");
                p.close().await;
            }
        }
    }

    /// Reads a BLOB/BYTEA column of one row with raw SQL (`SELECT col FROM table WHERE id = '...'`).
    pub async fn raw_bytes(&self, table: &str, column: &str, id: uuid::Uuid) -> Option<Vec<u8>> {
        match self.backend {
            Backend::Sqlite => {
                let p = self.sqlite_pool().await;
                let v: Option<Vec<u8>> = sqlx::query_scalar(&format!("SELECT {column} FROM {table} WHERE id = $1"))
                    .bind(id.to_string())
                    .fetch_one(&p)
                    .await
                    .expect("raw select");
                p.close().await;
                v
            }
            Backend::Postgres => {
                let p = self.pg_pool().await;
                let v: Option<Vec<u8>> = sqlx::query_scalar(&format!("SELECT {column} FROM {table} WHERE id = $1"))
                    .bind(id)
                    .fetch_one(&p)
                    .await
                    .expect("raw select");
                p.close().await;
                v
            }
        }
    }

    /// Overwrites a BLOB/BYTEA column of one row with raw SQL.
    pub async fn raw_set_bytes(&self, table: &str, column: &str, id: uuid::Uuid, value: Option<Vec<u8>>) {
        match self.backend {
            Backend::Sqlite => {
                let p = self.sqlite_pool().await;
                sqlx::query(&format!("UPDATE {table} SET {column} = $1 WHERE id = $2"))
                    .bind(value)
                    .bind(id.to_string())
                    .execute(&p)
                    .await
                    .expect("raw update");
                p.close().await;
            }
            Backend::Postgres => {
                let p = self.pg_pool().await;
                sqlx::query(&format!("UPDATE {table} SET {column} = $1 WHERE id = $2"))
                    .bind(value)
                    .bind(id)
                    .execute(&p)
                    .await
                    .expect("raw update");
                p.close().await;
            }
        }
    }
}

impl TestDb {
    /// A single integer from raw SQL as the database owner.
    pub async fn raw_i64(&self, sql: &str) -> i64 {
        match self.backend {
            Backend::Sqlite => {
                let p = self.sqlite_pool().await;
                let v: i64 = sqlx::query_scalar(sql).fetch_one(&p).await.expect("raw scalar");
                p.close().await;
                v
            }
            Backend::Postgres => {
                let p = self.pg_pool().await;
                let v: i64 = sqlx::query_scalar(sql).fetch_one(&p).await.expect("raw scalar");
                p.close().await;
                v
            }
        }
    }

    /// A single text value from raw SQL as the database owner (cast non-text columns in the query).
    pub async fn raw_text(&self, sql: &str) -> String {
        match self.backend {
            Backend::Sqlite => {
                let p = self.sqlite_pool().await;
                let v: String = sqlx::query_scalar(sql).fetch_one(&p).await.expect("raw text");
                p.close().await;
                v
            }
            Backend::Postgres => {
                let p = self.pg_pool().await;
                let v: String = sqlx::query_scalar(sql).fetch_one(&p).await.expect("raw text");
                p.close().await;
                v
            }
        }
    }

    /// Runs a raw SQL script (several statements) as the database owner; returns the error text if
    /// it fails.
    pub async fn raw_script(&self, sql: &str) -> Result<(), String> {
        match self.backend {
            Backend::Sqlite => {
                let p = self.sqlite_pool().await;
                let r = sqlx::raw_sql(sql).execute(&p).await.map(|_| ()).map_err(|e| e.to_string());
                p.close().await;
                r
            }
            Backend::Postgres => {
                let p = self.pg_pool().await;
                let r = sqlx::raw_sql(sql).execute(&p).await.map(|_| ()).map_err(|e| e.to_string());
                p.close().await;
                r
            }
        }
    }

    /// Tampers with the audit tables as someone with full database access would: around the
    /// append-only triggers (PostgreSQL: replica mode for the session; SQLite: the triggers dropped).
    pub async fn tamper(&self, sql: &str) {
        let script = match self.backend {
            Backend::Postgres => format!("SET session_replication_role = replica; {sql}"),
            Backend::Sqlite => format!(
                "DROP TRIGGER IF EXISTS audit_logs_no_update; DROP TRIGGER IF EXISTS audit_logs_no_delete; \
                 DROP TRIGGER IF EXISTS audit_chain_no_update; DROP TRIGGER IF EXISTS audit_chain_no_delete; {sql}"
            ),
        };
        self.raw_script(&script).await.expect("tampering");
    }
}
