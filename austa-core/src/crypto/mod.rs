//! Field encryption, keys and blind indexes (the `austa-crypto` crate, re-exported here), and the key
//! operations of the domain: key rotation and crypto-shredding ([`KeyAdmin`]).
//!
//! * [`KeyProvider`]: where the master key comes from (environment, key file, or an external KMS that
//!   implements the trait). The master key only wraps organization keys; it never touches data.
//! * Organization keys wrap patient keys; every encrypted column is an AES-256-GCM envelope bound to
//!   its organization, table, column and row; blind indexes are HMAC-SHA-256 under a subkey of the
//!   organization key, so equal values in two tenants do not correlate.
//! * [`Sensitive`]: the wrapper every decrypted value travels in; its `Debug` prints a redaction.

#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod probe;

pub use crate::keys::{
    DocumentToDelete, KeyAdmin, MasterKeyRotation, RotationStatus, RotationTarget, RunOptions, ShredReceipt,
};
pub use austa_crypto::{
    provider_from_env, BlindIndexKind, DataKey, DualKeyProvider, Erased, KeyCacheConfig, KeyProvider, KeyStats,
    LocalKeyProvider, Sensitive,
};
