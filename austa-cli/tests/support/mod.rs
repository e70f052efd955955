//! Test support: databases on both backends and a way to run the `austa` binary against them.
//!
//! SQLite databases are files in a temporary directory. PostgreSQL runs when `AUSTA_TEST_DATABASE_URL`
//! names a server where the user may create databases (a superuser: whole-database commands need to
//! bypass row-level security); with `CI=true` a missing PostgreSQL is a failure, never a silent skip.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use assert_cmd::Command;
use austa_core::crypto::{KeyProvider, LocalKeyProvider};
use austa_core::Database;

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

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// A working directory with a master key file (mode 0600).
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub key_file: PathBuf,
}

impl Workspace {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key_file = dir.path().join("master.key");
        LocalKeyProvider::create_key_file(&key_file).expect("key file");
        Self { dir, key_file }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn keys(&self) -> Arc<dyn KeyProvider> {
        Arc::new(LocalKeyProvider::from_file(&self.key_file).expect("key"))
    }

    /// `austa` with this workspace's key and `url`, and nothing inherited that could change the result.
    pub fn austa(&self, url: &str) -> Command {
        let mut cmd = Command::cargo_bin("austa").expect("austa binary");
        cmd.current_dir(self.dir.path())
            .env_remove("AUSTA_MASTER_KEY")
            .env_remove("AUSTA_KEYSTORE_URL")
            .env_remove("AUSTA_NEW_MASTER_KEY")
            .env_remove("AUSTA_AUDIT_SIGNING_KEY")
            .env_remove("AUSTA_AUDIT_VERIFIER_KEY")
            .env_remove("AUSTA_AUDIT_SIGNER_NAME")
            // Created by `austa audit keygen` in the tests that sign checkpoints.
            .env("AUSTA_AUDIT_SIGNING_KEY_FILE", self.path("audit-signing.key"))
            .env("AUSTA_MASTER_KEY_FILE", &self.key_file)
            .env("DATABASE_URL", url);
        cmd
    }

    /// Runs `austa args...` and returns (exit code, stdout, stderr).
    pub fn run(&self, url: &str, args: &[&str]) -> (i32, String, String) {
        let out = self.austa(url).args(args).output().expect("run austa");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `austa --json args...`, expects `code`, and parses stdout.
    pub fn json(&self, url: &str, args: &[&str], code: i32) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (got, out, err) = self.run(url, &all);
        assert_eq!(got, code, "austa {args:?}: exit {got}\nstdout: {out}\nstderr: {err}");
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("austa {args:?}: not JSON ({e}): {out}"))
    }

    /// Opens the database through the library.
    pub async fn open(&self, url: &str) -> Database {
        Database::connect_with(url, self.keys()).await.expect("open")
    }
}

/// A database of one backend: its URL, dropped at the end on PostgreSQL.
pub struct TestDatabase {
    pub url: String,
    pub name: String,
    admin: Option<String>,
}

impl TestDatabase {
    /// A SQLite file named `name` in `dir` (not created).
    pub fn sqlite(dir: &Path, name: &str) -> Self {
        let path = dir.join(name);
        Self { url: format!("sqlite://{}", path.display()), name: path.display().to_string(), admin: None }
    }

    /// A new, empty PostgreSQL database whose name starts with `prefix`.
    pub fn postgres(admin: &str, prefix: &str) -> Self {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple().to_string().get(..10).unwrap_or("x"));
        let sql = format!("CREATE DATABASE {name}");
        runtime().block_on(async {
            let pool = sqlx::PgPool::connect(admin).await.expect("connect to AUSTA_TEST_DATABASE_URL");
            sqlx::query(&sql).execute(&pool).await.expect("create database");
            pool.close().await;
        });
        let (base, query) = admin.split_once('?').map(|(b, q)| (b, format!("?{q}"))).unwrap_or((admin, String::new()));
        let server = match base.rsplit_once('/') {
            Some((left, _)) if !left.ends_with(':') && !left.ends_with(":/") => left.to_string(),
            _ => base.trim_end_matches('/').to_string(),
        };
        let url = format!("{server}/{name}{query}");
        Self { url, name, admin: Some(admin.to_string()) }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(admin) = self.admin.clone() {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = std::thread::spawn(move || {
                runtime().block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                        let _ = sqlx::query(&sql).execute(&pool).await;
                        pool.close().await;
                    }
                })
            })
            .join();
        }
    }
}

/// Both backends: (label, database) pairs, PostgreSQL when configured. Names carry `dev` so that
/// `reset` treats them as development databases.
pub fn databases(ws: &Workspace, stem: &str) -> Vec<(&'static str, TestDatabase)> {
    let mut v = vec![("sqlite", TestDatabase::sqlite(ws.dir.path(), &format!("{stem}_dev.db")))];
    if let Some(admin) = postgres_url() {
        v.push(("postgres", TestDatabase::postgres(&admin, &format!("austa_cli_{stem}_dev"))));
    }
    v
}

/// Raw SQL on a test database (as its owner), for planting inconsistencies.
pub async fn execute(url: &str, statements: &[&str]) {
    if url.starts_with("sqlite:") {
        let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().expect("url");
        let pool = sqlx::SqlitePool::connect_with(opts.foreign_keys(false)).await.expect("connect");
        let mut conn = pool.acquire().await.expect("conn");
        for s in statements {
            sqlx::query(s).execute(&mut *conn).await.unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        drop(conn);
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        let mut conn = pool.acquire().await.expect("conn");
        for s in statements {
            sqlx::query(s).execute(&mut *conn).await.unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        drop(conn);
        pool.close().await;
    }
}
