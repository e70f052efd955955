//! The database's own operations: schema, seed, audit flushing, the key cache, master keys.

use austa_core::crypto::MasterKeyRotation;
use austa_core::seed::SeedReport;
use austa_core::{Database, Result};
use serde::Deserialize;
use uuid::Uuid;

use super::{validation, DatabaseOperation};
use crate::open::{key_provider, OpenOptions};

/// Applies pending schema migrations (safe to run concurrently: one applies, the others wait).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Migrate {}

impl DatabaseOperation for Migrate {
    const NAME: &'static str = "migrate";
    type Output = ();
    async fn run(self, db: &Database) -> Result<()> {
        db.migrate().await.map(|_| ())
    }
}

/// Loads the synthetic development seed (idempotent).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {}

impl DatabaseOperation for Seed {
    const NAME: &'static str = "seed";
    type Output = SeedReport;
    async fn run(self, db: &Database) -> Result<SeedReport> {
        austa_core::seed::run(db).await
    }
}

/// Waits until every audit event recorded so far is chained.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlushAudit {}

impl DatabaseOperation for FlushAudit {
    const NAME: &'static str = "flush_audit";
    type Output = ();
    async fn run(self, db: &Database) -> Result<()> {
        db.flush_audit().await
    }
}

/// Forgets every unwrapped key held in memory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearKeyCache {}

impl DatabaseOperation for ClearKeyCache {
    const NAME: &'static str = "clear_key_cache";
    type Output = ();
    async fn run(self, db: &Database) -> Result<()> {
        db.clear_key_cache();
        Ok(())
    }
}

/// `"sqlite"` or `"postgres"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {}

impl DatabaseOperation for Backend {
    const NAME: &'static str = "backend";
    type Output = String;
    async fn run(self, db: &Database) -> Result<String> {
        Ok(format!("{:?}", db.backend()).to_lowercase())
    }
}

/// The organization that registered a WhatsApp phone number id, if any.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationForWhatsapp {
    /// The phone number id.
    pub phone_number_id: String,
}

impl DatabaseOperation for OrganizationForWhatsapp {
    const NAME: &'static str = "organization_for_whatsapp";
    type Output = Option<Uuid>;
    async fn run(self, db: &Database) -> Result<Option<Uuid>> {
        db.whatsapp().organization_for(&self.phone_number_id).await
    }
}

/// Re-wraps every organization key under a new master key, given as base64 or a key file; the old
/// key must stay configured until this returns.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateMasterKey {
    /// The new master key, base64 of 32 bytes.
    pub master_key: Option<String>,
    /// A file holding the new master key.
    pub key_file: Option<std::path::PathBuf>,
}

impl DatabaseOperation for RotateMasterKey {
    const NAME: &'static str = "rotate_master_key";
    type Output = MasterKeyRotation;
    async fn run(self, db: &Database) -> Result<MasterKeyRotation> {
        if self.master_key.is_none() && self.key_file.is_none() {
            return Err(validation("master_key", "or key_file is required"));
        }
        let options = OpenOptions {
            master_key: self.master_key,
            key_file: self.key_file.map(|p| p.to_string_lossy().into_owned()),
            ..Default::default()
        };
        db.rotate_master_key(key_provider(&options)?).await
    }
}
