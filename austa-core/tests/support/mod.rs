//! Shared test support: one fresh, migrated database per backend, and the fixtures several areas use.
//!
//! SQLite always runs (a file in a temporary directory). PostgreSQL runs when
//! `AUSTA_TEST_DATABASE_URL` names a server where the user may create databases. With `CI=true`, a
//! missing PostgreSQL is a failure, never a silent skip; without it, the PostgreSQL tests pass without
//! running, with a note.
//!
//! Tests never migrate: each database is a copy of a template migrated once.
//!
//! * SQLite: once per process, a file is migrated in a temporary directory and closed (so that its
//!   write-ahead log is checkpointed into it), and its bytes are kept in memory; the directory is then
//!   removed. Each test writes those bytes to a file of its own in a temporary directory, removed when
//!   the test's [`TestDb`] is dropped.
//! * PostgreSQL: a template database `austa_tpl_<hash>` is migrated as the owner, where the hash covers
//!   the crate version and the SQL of `migrations/postgres` and `migrations/keystore/postgres`. Each test
//!   creates `austa_test_<uuid>` from it (`CREATE DATABASE ... TEMPLATE`) and drops it afterwards. The
//!   template is built under a name of its own and renamed into place once complete, under an advisory
//!   lock in the admin database: two test processes on one server build it once, and a run interrupted
//!   half-way leaves no template that looks complete (its leftover is dropped by the next build). No
//!   connection to the template stays open (PostgreSQL copies only a database nobody is connected to),
//!   and it accepts none.
//!
//!   Templates stay on the server: one per migration set (a changed migration gets a new name). On a
//!   developer's server the old ones may be dropped at any time (`DROP DATABASE austa_tpl_...`; the
//!   next run builds the current one again); CI's throwaway cluster is removed with them.
//!
//! Every database of a process uses one master key ([`test_keys`]), generated once per process: a
//! SQLite template holds the key store's key check value for it. The PostgreSQL template, which other
//! processes with other keys reuse, holds none; each test database gets its check value when it is
//! created (a `migrate` that finds every migration applied and writes only that).

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use austa_core::crypto::{DataKey, KeyProvider, LocalKeyProvider};
use austa_core::model::{AuditLog, NewOrganization, NewPatient, OrganizationType, Patient};
use austa_core::time::OffsetClock;
use austa_core::{Actor, Database, DatabaseOptions, Error, Result, Scope};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use uuid::Uuid;

/// Which backend a [`TestDb`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated, empty database and what is needed to reach it with raw SQL.
pub struct TestDb {
    pub backend: Backend,
    /// The clock `db` reads: a test makes time pass with `tdb.clock.advance(..)` instead of sleeping.
    pub clock: Arc<OffsetClock>,
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

/// The master key provider of every test database of this process (see the module docs).
pub fn test_keys() -> Arc<dyn KeyProvider> {
    static KEYS: OnceLock<Arc<dyn KeyProvider>> = OnceLock::new();
    KEYS.get_or_init(|| Arc::new(LocalKeyProvider::from_key(&DataKey::generate(), "test"))).clone()
}

/// The migrated SQLite template: the main file, and its write-ahead log if closing left one.
struct SqliteTemplate {
    db: Vec<u8>,
    wal: Option<Vec<u8>>,
}

async fn sqlite_template() -> &'static SqliteTemplate {
    static TEMPLATE: tokio::sync::OnceCell<SqliteTemplate> = tokio::sync::OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("template.db");
            let db = Database::connect_with(&sqlite_url(&path), test_keys()).await.expect("connect sqlite template");
            db.migrate().await.expect("migrate sqlite template");
            // Closing the last connection checkpoints the log into the main file and removes it.
            db.close().await;
            let wal = std::fs::read(path.with_extension("db-wal")).ok().filter(|w| !w.is_empty());
            SqliteTemplate { db: std::fs::read(&path).expect("read sqlite template"), wal }
        })
        .await
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Opens `url` with the test keys and `clock`.
async fn open_with_clock(url: &str, keys: Arc<dyn KeyProvider>, clock: Arc<OffsetClock>) -> Result<Database> {
    Database::open(DatabaseOptions::new(url).clock(clock), keys).await
}

/// A fresh migrated SQLite database: a copy of the template.
pub async fn sqlite() -> TestDb {
    let template = sqlite_template().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("test.db");
    std::fs::write(&path, &template.db).expect("copy sqlite template");
    if let Some(wal) = &template.wal {
        std::fs::write(path.with_extension("db-wal"), wal).expect("copy sqlite template log");
    }
    let url = sqlite_url(&path);
    let keys = test_keys();
    let clock = Arc::new(OffsetClock::default());
    let db = open_with_clock(&url, keys.clone(), clock.clone()).await.expect("connect sqlite");
    TestDb { backend: Backend::Sqlite, app_url: url.clone(), url, db, keys, clock, guard: Guard::Dir(dir) }
}

/// `admin_url` with its database replaced by `name` (query parameters kept).
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (admin_url.to_string(), String::new()),
    };
    let prefix = match base.rsplit_once('/') {
        Some((p, _)) if p.contains("//") && p.len() > p.find("//").unwrap_or(0) + 2 => p.to_string(),
        _ => base.clone(),
    };
    format!("{prefix}/{name}{query}")
}

/// The name of the PostgreSQL template for this crate version and these migrations (see the module
/// docs). Line endings do not count: the library applies migrations with LF line endings.
fn postgres_template_name() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut hash = Sha256::new();
    hash.update(env!("CARGO_PKG_VERSION").as_bytes());
    for set in ["postgres", "keystore/postgres"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(set))
            .unwrap_or_else(|e| panic!("migrations/{set}: {e}"))
            .map(|entry| entry.expect("a migration file").path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        files.sort();
        for file in files {
            let sql = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let name = file.file_name().expect("a file name").to_string_lossy().into_owned();
            hash.update(format!("\0{set}/{name}\0").as_bytes());
            hash.update(sql.replace("\r\n", "\n").as_bytes());
        }
    }
    let digest: String = hash.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("austa_tpl_{digest}")
}

/// Makes sure the PostgreSQL template exists (building it if needed, once per process); returns its
/// name.
async fn postgres_template(admin_url: &str) -> &'static str {
    static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let name = postgres_template_name();
            let mut admin = sqlx::PgConnection::connect(admin_url).await.expect("connect to AUSTA_TEST_DATABASE_URL");
            // One builder at a time per server and template; the lock goes with the session.
            let lock = i64::from_str_radix(&name["austa_tpl_".len()..][..15], 16).expect("hex");
            sqlx::query("SELECT pg_advisory_lock($1)").bind(lock).execute(&mut admin).await.expect("template lock");
            if !database_exists(&mut admin, &name).await {
                build_postgres_template(&mut admin, admin_url, &name).await;
            }
            sqlx::query("SELECT pg_advisory_unlock($1)").bind(lock).execute(&mut admin).await.expect("unlock");
            admin.close().await.expect("close admin connection");
            name
        })
        .await
}

async fn database_exists(admin: &mut sqlx::PgConnection, name: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(admin)
        .await
        .expect("read pg_database")
}

/// Builds the template `name` under a name of its own, then renames it into place. Called under the
/// template's advisory lock, so any earlier build of this template is a leftover of an interrupted run.
async fn build_postgres_template(admin: &mut sqlx::PgConnection, admin_url: &str, name: &str) {
    let building = format!("{name}_build_");
    let leftovers: Vec<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE starts_with(datname, $1)")
            .bind(&building)
            .fetch_all(&mut *admin)
            .await
            .expect("read pg_database");
    for leftover in leftovers {
        let drop = format!("DROP DATABASE IF EXISTS {leftover} WITH (FORCE)");
        sqlx::query(&drop).execute(&mut *admin).await.expect("drop an interrupted template build");
    }
    let build = format!("{building}{}", &Uuid::new_v4().simple().to_string()[..12]);
    sqlx::query(&format!("CREATE DATABASE {build}")).execute(&mut *admin).await.expect("create template");
    let owner = Database::connect_with(&with_database(admin_url, &build), test_keys()).await.expect("connect template");
    owner.migrate().await.expect("migrate template");
    owner.close().await;
    // The key check value belongs to this process's master key; each test database writes its own.
    let raw = sqlx::PgPool::connect(&with_database(admin_url, &build)).await.expect("connect template");
    sqlx::query("DELETE FROM keystore_meta").execute(&raw).await.expect("clear the key check value");
    raw.close().await;
    sqlx::query(&format!("ALTER DATABASE {build} WITH ALLOW_CONNECTIONS false"))
        .execute(&mut *admin)
        .await
        .expect("close the template to connections");
    // A closed connection's server process may still be exiting; the rename waits for it.
    let mut renamed = sqlx::query(&format!("ALTER DATABASE {build} RENAME TO {name}")).execute(&mut *admin).await;
    for _ in 0..50 {
        let in_use = matches!(&renamed, Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("55006"));
        if !in_use {
            break;
        }
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(&build)
            .execute(&mut *admin)
            .await
            .ok();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        renamed = sqlx::query(&format!("ALTER DATABASE {build} RENAME TO {name}")).execute(&mut *admin).await;
    }
    if let Err(e) = renamed {
        // Someone created the template outside the lock: use theirs.
        let exists = matches!(&e, sqlx::Error::Database(d) if d.code().as_deref() == Some("42P04"));
        sqlx::query(&format!("DROP DATABASE IF EXISTS {build} WITH (FORCE)")).execute(&mut *admin).await.ok();
        assert!(exists, "rename the template into place: {e}");
    }
}

/// Creates `name` from `template`, retrying while another session is briefly connected to the
/// template (PostgreSQL refuses to copy a database in use).
async fn create_from_template(admin: &sqlx::PgPool, name: &str, template: &str) {
    let sql = format!("CREATE DATABASE {name} TEMPLATE {template}");
    for attempt in 0.. {
        match sqlx::query(&sql).execute(admin).await {
            Ok(_) => return,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55006") && attempt < 50 => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("create test database from {template}: {e}"),
        }
    }
}

/// A fresh migrated PostgreSQL database, when one is configured: a copy of the template.
pub async fn postgres() -> Option<TestDb> {
    let admin_url = postgres_url()?;
    let template = postgres_template(&admin_url).await;
    let name = format!("austa_test_{}", Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&admin_url).await.expect("connect to AUSTA_TEST_DATABASE_URL");
    create_from_template(&admin, &name, template).await;
    admin.close().await;
    let url = with_database(&admin_url, &name);
    let keys = test_keys();
    // As the owner: every migration is applied already; this writes the key check value. The library
    // then runs as the runtime role, under row-level security.
    let owner = Database::connect_with(&url, keys.clone()).await.expect("connect postgres");
    owner.migrate().await.expect("migrate postgres");
    owner.close().await;
    allow_app_login(&url).await;
    let app_url = as_user(&url, "austa_app");
    let clock = Arc::new(OffsetClock::default());
    let db = open_with_clock(&app_url, keys.clone(), clock.clone()).await.expect("connect as austa_app");
    let guard = Guard::PgDatabase { admin_url, name };
    Some(TestDb { backend: Backend::Postgres, url, app_url, db, keys, clock, guard })
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

/// One migrated, empty database per available backend, for the tests that compare the two (the others
/// use `#[backends]`).
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
                 DROP TRIGGER IF EXISTS audit_chain_no_update; DROP TRIGGER IF EXISTS audit_chain_no_delete; \
                 DROP TRIGGER IF EXISTS audit_tree_no_update; DROP TRIGGER IF EXISTS audit_tree_no_delete; {sql}"
            ),
        };
        self.raw_script(&script).await.expect("tampering");
    }
}

// ---------------------------------------------------------------------------------------------------
// Fixtures and assertions shared by several areas

/// A new patient of `scope`'s organization.
pub async fn patient(scope: &Scope, first: &str, phone: &str) -> Patient {
    let new =
        NewPatient { first_name: first.into(), last_name: "Mendes".into(), phone: phone.into(), ..Default::default() };
    scope.patients().create(new).await.unwrap()
}

/// Rows in a whole table, counted with raw SQL as the owner (sees soft-deleted rows, and on PostgreSQL
/// every organization's).
pub async fn count(tdb: &TestDb, table: &str) -> i64 {
    tdb.raw_i64(&format!("SELECT COUNT(*) FROM {table}")).await
}

/// Audit events of `scope`'s organization, counted with raw SQL.
pub async fn event_count(tdb: &TestDb, scope: &Scope) -> i64 {
    tdb.raw_i64(&format!("SELECT COUNT(*) FROM audit_logs WHERE organization_id = '{}'", scope.organization_id())).await
}

/// Runs `op`, checks that it recorded exactly one audit event in `scope`'s organization, and returns
/// the event (read back through `scope`).
pub async fn one_event<T>(tdb: &TestDb, scope: &Scope, op: impl Future<Output = T>) -> (T, AuditLog) {
    let before = event_count(tdb, scope).await;
    let out = op.await;
    assert_eq!(event_count(tdb, scope).await, before + 1, "exactly one event per operation");
    let id = tdb
        .raw_text(&format!(
            "SELECT CAST(id AS TEXT) FROM audit_logs WHERE organization_id = '{}' ORDER BY id DESC LIMIT 1",
            scope.organization_id()
        ))
        .await;
    let event = scope.audit_logs().get(id.parse().expect("an event id")).await.expect("the event");
    (out, event)
}

/// The operation failed with `code`, naming `field` (None: naming none).
#[track_caller]
pub fn assert_err<T: std::fmt::Debug>(r: Result<T>, code: &str, field: Option<&str>) {
    let e = r.expect_err("expected an error");
    assert_eq!((e.code(), e.field()), (code, field), "{e}");
}

/// The operation failed with `code`, whatever field it names.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(r: Result<T>, code: &str) {
    let e: Error = r.expect_err("expected an error");
    assert_eq!(e.code(), code, "{e}");
}

/// The operation failed validation of `field`.
#[track_caller]
pub fn assert_validation<T: std::fmt::Debug>(r: Result<T>, field: &str) {
    assert_err(r, "validation", Some(field));
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The column holds ciphertext: present and not containing the plaintext.
pub async fn assert_ciphertext(tdb: &TestDb, table: &str, column: &str, id: Uuid, plaintext: &str) {
    let raw = tdb.raw_bytes(table, column, id).await.unwrap_or_else(|| panic!("{table}.{column} is NULL"));
    assert!(!contains(&raw, plaintext.as_bytes()), "{table}.{column} holds plaintext");
}
