//! Opening the database the way the library does (`DATABASE_URL`, `AUSTA_KEYSTORE_URL`, the master key
//! from `AUSTA_MASTER_KEY` or `AUSTA_MASTER_KEY_FILE`, key cache limits), with flags taking precedence.

use std::sync::Arc;

use austa_core::crypto::{provider_from_env, KeyProvider, LocalKeyProvider};
use austa_core::{Database, DatabaseOptions};

use crate::cli::Cli;
use crate::outcome::Failure;

/// The database options: the environment's, with the URLs from the command line (clap already folded
/// the environment variables into them).
pub fn options(cli: &Cli) -> Result<DatabaseOptions, Failure> {
    let mut options = DatabaseOptions::from_env()?;
    options.url = cli.database_url.clone();
    options.keystore_url = cli.keystore_url.clone().filter(|s| !s.is_empty());
    Ok(options)
}

/// The master key provider: `--master-key-file`, else the environment.
pub fn master_key(cli: &Cli) -> Result<Arc<dyn KeyProvider>, Failure> {
    Ok(match &cli.master_key_file {
        Some(path) => Arc::new(LocalKeyProvider::from_file(path)?),
        None => provider_from_env()?,
    })
}

/// Opens the database (checking the master key against the key store).
pub async fn open(cli: &Cli) -> Result<Database, Failure> {
    Ok(Database::open(options(cli)?, master_key(cli)?).await?)
}
