//! Entry points into the library's own cryptographic paths, for the benchmarks only (cargo feature
//! `bench-internals`, hidden from the documentation, not part of the API): sealing and opening a
//! field exactly as a repository does, computing a blind index, and loading an organization's keys
//! through the key cache (warm) or the key store and master key (cold).

use uuid::Uuid;
use zeroize::Zeroizing;

use crate::db::Database;
use crate::error::Result;
use austa_crypto::{BlindIndexKind, KeySet};

/// An organization's key set, as a repository holds it during an operation.
pub struct FieldProbe {
    keys: KeySet,
    row: Uuid,
}

impl FieldProbe {
    /// The key set of `organization` (loaded through the cache).
    pub async fn new(db: &Database, organization: Uuid) -> Result<Self> {
        Ok(Self { keys: db.key_set(organization, []).await?, row: Uuid::now_v7() })
    }

    /// Seals `plaintext` as the organization's `settings` column of one row.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.keys.row("organizations", self.row, None)?.seal("settings", plaintext)
    }

    /// Opens what [`FieldProbe::seal`] sealed.
    pub fn open(&self, envelope: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        self.keys.row("organizations", self.row, None)?.open("settings", envelope)
    }

    /// The blind indexes of a normalized phone number (one per live key version).
    pub fn blind_phone(&self, e164: &str) -> Vec<Vec<u8>> {
        self.keys.blinds(BlindIndexKind::Phone, e164)
    }
}

/// Loads `organization`'s keys: from the cache when warm; after [`Database::clear_key_cache`], from
/// the key store, unwrapped with the master key and derived (cold).
pub async fn load_organization_keys(db: &Database, organization: Uuid) -> Result<()> {
    db.org_keys(organization).await.map(|_| ())
}
