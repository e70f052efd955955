//! # austa-crypto
//!
//! Field encryption, keys and blind indexes of the Austa data layer, below the domain.
//!
//! * [`KeyProvider`]: where the master key comes from (environment, key file, or an external KMS that
//!   implements the trait). The master key only wraps organization keys; it never touches data.
//! * Organization keys: 32 random bytes per organization, created on first use, stored wrapped in
//!   `organization_keys`. Subkeys are derived with HKDF-SHA-256 ([`material`]): one for field
//!   encryption, one for blind indexes, one for wrapping patient keys, one for the audit chain, so
//!   that no two purposes share key material.
//! * [`envelope`]: every encrypted column holds `version(1) | key id(16) | nonce(12) | ciphertext+tag`
//!   under AES-256-GCM. The associated data binds the header, organization, table, column and row id,
//!   so a ciphertext copied to another row, column or tenant fails authentication.
//! * Blind index: HMAC-SHA-256 over a normalized value (phone in E.164, CPF as 11 digits, e-mail in lower
//!   case) under the organization's blind-index key: equal values in two tenants do not correlate.
//! * [`Keyring`]: loading keys from the key store through a bounded cache, creating them; an
//!   operation gets a [`KeySet`] and encrypts one row's columns through a [`RowCrypto`].
//! * [`merkle`] and [`checkpoint`]: RFC 9162 Merkle trees with inclusion and consistency proofs,
//!   and Ed25519-signed checkpoints in the transparency logs' signed-note format, for the audit log.
//! * [`Sensitive`]: the wrapper every decrypted value travels in; its `Debug` prints a redaction.

mod blind_index;
mod cache;
pub mod checkpoint;
pub mod envelope;
mod fields;
mod keyring;
mod keys;
pub mod material;
pub mod merkle;
mod sensitive;

pub use blind_index::BlindIndexKind;
pub use cache::{KeyCacheConfig, KeyStats};
pub use fields::{KeySet, RowCrypto};
pub use keyring::Keyring;
pub use keys::{provider_from_env, DataKey, DualKeyProvider, KeyProvider, LocalKeyProvider};
pub use material::{mac_eq, OrgKeys, PatientKeys};
pub use sensitive::{Erased, Sensitive};

impl From<Erased> for austa_error::Error {
    fn from(_: Erased) -> Self {
        austa_error::Error::Erased
    }
}
