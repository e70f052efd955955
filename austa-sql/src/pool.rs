//! Connection pools for the two backends, chosen by the URL scheme.

use std::str::FromStr;
use std::time::Duration;

use austa_error::{Error, Result};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

/// The database backends the library supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (bundled), the zero-configuration default.
    Sqlite,
    /// PostgreSQL 15 or later.
    Postgres,
}

/// A connection pool on one backend. Domain code never matches on it: it opens [`Tx`](crate::Tx)s,
/// whose [`Dialect`](crate::Dialect) says what differs.
#[derive(Clone)]
pub enum Pool {
    /// SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

impl Pool {
    /// Opens a pool for `url` (`sqlite://file.db`, `sqlite::memory:`, `postgres://...`). SQLite files
    /// are created when missing and use WAL mode with foreign keys on; an in-memory database keeps its one
    /// connection for the pool's life.
    pub async fn open(url: &str) -> Result<Pool> {
        open_pool(url).await
    }

    /// Which backend this pool reaches.
    pub fn backend(&self) -> Backend {
        match self {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Whether `other` reaches the same database: the same SQLite file, or the same PostgreSQL host,
    /// port and database name.
    pub fn same_database(&self, other: &Pool) -> bool {
        match (self, other) {
            (Pool::Sqlite(a), Pool::Sqlite(b)) => {
                a.connect_options().get_filename() == b.connect_options().get_filename()
            }
            (Pool::Postgres(a), Pool::Postgres(b)) => {
                let (a, b) = (a.connect_options(), b.connect_options());
                a.get_host() == b.get_host() && a.get_port() == b.get_port() && a.get_database() == b.get_database()
            }
            _ => false,
        }
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// A database URL fit for logs: the password is masked wherever the URL carries one, in the user
/// information (`postgres://user:secret@host/db`) or as a query parameter (`?password=secret`).
///
/// ```
/// use austa_sql::redact_password;
/// assert_eq!(redact_password("postgres://app:s3cr3t@db:5432/austa"), "postgres://app:***@db:5432/austa");
/// assert_eq!(redact_password("postgres://db/austa?user=app&password=s3cr3t"), "postgres://db/austa?user=app&password=***");
/// assert_eq!(redact_password("postgres://db/austa?pass%77ord=s3cr3t"), "postgres://db/austa?pass%77ord=***");
/// assert_eq!(redact_password("sqlite://austa.db"), "sqlite://austa.db");
/// ```
pub fn redact_password(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match base[scheme + 3..at].find(':') {
            Some(colon) => format!("{}:***{}", &base[..scheme + 3 + colon], &base[at..]),
            None => base.to_string(),
        },
        _ => base.to_string(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _))
                    if percent_encoding::percent_decode_str(name)
                        .decode_utf8_lossy()
                        .eq_ignore_ascii_case("password") =>
                {
                    format!("{name}=***")
                }
                _ => param.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// Opens a pool for a URL.
async fn open_pool(url: &str) -> Result<Pool> {
    if url.starts_with("sqlite:") {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::Config(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            // Freed space is overwritten with zeros: a destroyed key or an overwritten blind index
            // leaves no old bytes in the file's free pages or cells.
            .pragma("secure_delete", "ON");
        let opts = if memory {
            opts
        } else {
            create_private_file(opts.get_filename())?;
            // FULL: every commit is on disk when it returns, as on PostgreSQL, so a power loss loses
            // no acknowledged write, audit event or key (NORMAL, WAL mode, would lose the commits
            // since the last checkpoint, and a key store in a file of its own could lose a key
            // that the data file already uses).
            opts.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Full)
        };
        // An in-memory database lives as long as its one connection: keep exactly one, forever.
        let pool_opts = if memory {
            SqlitePoolOptions::new().max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None)
        } else {
            // No ping before each acquire: a file connection does not break while idle.
            SqlitePoolOptions::new().max_connections(8).test_before_acquire(false)
        };
        Ok(Pool::Sqlite(connect_sqlite(pool_opts, opts).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        // TLS: verified (`verify-full`) to any host off this machine, never a plaintext fall back.
        let opts = crate::transport::postgres_options(url)?;
        // No ping before each acquire (sqlx's default): that is one more round trip per transaction.
        // A connection that broke while idle (a server restart) fails its next statement with a
        // `database` error instead, and the pool closes it.
        let pool_opts = PgPoolOptions::new().max_connections(16).test_before_acquire(false);
        Ok(Pool::Postgres(pool_opts.connect_with(opts).await?))
    } else {
        Err(Error::Config("database URLs must start with sqlite: or postgres:".into()))
    }
}

/// Creates a missing SQLite database file readable and writable by its owner only (mode 0600), before
/// SQLite creates it with the process's umask (usually world-readable): the file holds ciphertexts,
/// blind indexes and wrapped keys, and its write-ahead log and shared-memory files take its mode. An
/// existing file keeps the mode its operator gave it.
fn create_private_file(path: &std::path::Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::Config(format!("cannot create the SQLite database {}: {e}", path.display()))),
    }
}

/// How long a SQLite statement waits for another connection's lock; opening a new file waits as long
/// for another process that is switching it to WAL.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects a SQLite pool, retrying while the file is busy at connection time.
///
/// Why: the first connection to a new file switches it to WAL, which takes an exclusive lock that
/// SQLite does not wait for (the busy handler is not consulted), so a second process opening the same
/// new file at that moment gets `SQLITE_BUSY` ("database is locked") from the pragma, for instance two
/// `austa migrate` runs started together. The switch is persistent and short, so retrying the connection
/// is enough; once the file is in WAL, later connections need no such lock and the busy timeout covers
/// everything else.
async fn connect_sqlite(pool_opts: SqlitePoolOptions, opts: SqliteConnectOptions) -> Result<SqlitePool> {
    let deadline = std::time::Instant::now() + SQLITE_BUSY_TIMEOUT;
    loop {
        match pool_opts.clone().connect_with(opts.clone()).await {
            Err(e) if is_sqlite_busy(&e) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            other => return other.map_err(Error::Database),
        }
    }
}

/// Whether `e` is SQLite's `SQLITE_BUSY` (primary result code 5, whatever the extended code).
fn is_sqlite_busy(e: &sqlx::Error) -> bool {
    let code = match e {
        sqlx::Error::Database(db) => db.code().and_then(|c| c.parse::<i32>().ok()),
        _ => None,
    };
    code.is_some_and(|c| c & 0xff == 5)
}
