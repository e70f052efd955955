//! Opening a database from a binding: URL and key from arguments, else from the environment.

use std::sync::Arc;

use austa_core::crypto::{provider_from_env, KeyProvider, LocalKeyProvider};
use austa_core::{Database, DatabaseOptions, Result};
use serde::Deserialize;

/// How to open a database. Every member is optional: the defaults are the environment's
/// (`DATABASE_URL`, `AUSTA_KEYSTORE_URL`, `AUSTA_MASTER_KEY` or `AUSTA_MASTER_KEY_FILE`,
/// `AUSTA_READ_AUDIT`), as for
/// [`Database::from_env`].
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenOptions {
    /// Database URL (`sqlite://file.db`, `postgres://...`).
    pub url: Option<String>,
    /// Master key, base64 of 32 bytes.
    pub master_key: Option<String>,
    /// File holding the master key (created by `austa keys init` or `LocalKeyProvider::create_key_file`).
    pub key_file: Option<String>,
    /// Separate key store database URL.
    pub keystore_url: Option<String>,
    /// Create the key file when it does not exist (development set-ups).
    #[serde(default)]
    pub create_key_file: bool,
    /// When a read's audit event is durable: `relaxed` or `strict` (default `AUSTA_READ_AUDIT`, else
    /// relaxed; see [`austa_core::db::ReadAudit`]).
    pub read_audit: Option<String>,
}

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("url", &self.url.as_deref().map(austa_core::db::redact_password))
            .field("master_key", &self.master_key.as_ref().map(|_| "<redacted>"))
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

/// The key provider the options name.
pub fn key_provider(options: &OpenOptions) -> Result<Arc<dyn KeyProvider>> {
    match (&options.master_key, &options.key_file) {
        (Some(key), _) => Ok(Arc::new(LocalKeyProvider::from_base64(key, "argument master_key")?)),
        (None, Some(path)) if options.create_key_file && !std::path::Path::new(path).exists() => {
            Ok(Arc::new(LocalKeyProvider::create_key_file(path)?))
        }
        (None, Some(path)) => Ok(Arc::new(LocalKeyProvider::from_file(path)?)),
        (None, None) => provider_from_env(),
    }
}

/// Opens (connects to) the database the options name. Does not migrate.
pub async fn open(options: OpenOptions) -> Result<Database> {
    let keys = key_provider(&options)?;
    let mut db_options = match &options.url {
        Some(url) => DatabaseOptions::new(url.clone()),
        None => DatabaseOptions::from_env()?,
    };
    if let Some(keystore) = &options.keystore_url {
        db_options = db_options.keystore(keystore.clone());
    }
    match (&options.read_audit, std::env::var("AUSTA_READ_AUDIT")) {
        (Some(mode), _) => db_options = db_options.read_audit(mode.parse()?),
        (None, Ok(mode)) if !mode.is_empty() => db_options = db_options.read_audit(mode.parse()?),
        _ => {}
    }
    Database::open(db_options, keys).await
}
