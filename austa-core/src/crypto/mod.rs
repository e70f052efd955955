//! Field encryption, keys and blind indexes.
//!
//! * [`KeyProvider`]: where the master key comes from (environment, key file, or an external KMS that
//!   implements the trait). The master key only wraps organization keys; it never touches data.
//! * Organization keys: 32 random bytes per organization, created on first use, stored wrapped in
//!   `organization_keys`. Two subkeys are derived with HKDF-SHA-256: one for field encryption, one for
//!   blind indexes, so that the two purposes never share key material.
//! * Envelope: every encrypted column holds `version(1) | key id(16) | nonce(12) | ciphertext+tag` under
//!   AES-256-GCM. The associated data binds the header, organization, table, column and row id, so a
//!   ciphertext copied to another row, column or tenant fails authentication.
//! * Blind index: HMAC-SHA-256 over a normalized value (phone in E.164, CPF as 11 digits, e-mail in lower
//!   case) under the organization's blind-index key: equal values in two tenants do not correlate.
//! * [`Sensitive`]: the wrapper every decrypted value travels in; its `Debug` prints a redaction.

mod admin;
mod blind_index;
mod cache;
pub(crate) mod envelope;
mod keyring;
mod keys;
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod probe;
mod sensitive;

pub use admin::{KeyAdmin, MasterKeyRotation, RotationStatus, RotationTarget, RunOptions, ShredReceipt};
pub use blind_index::BlindIndexKind;
pub use cache::{KeyCacheConfig, KeyStats};
pub(crate) use keyring::{KeySet, Keyring, OrgKeys, RowCrypto};
pub use keys::{provider_from_env, DataKey, DualKeyProvider, KeyProvider, LocalKeyProvider};
pub use sensitive::{Erased, Sensitive};
