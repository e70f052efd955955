//! Typed models: one module per aggregate, plus the enums.
//!
//! Sensitive fields are [`Sensitive`](austa_crypto::Sensitive) values: decrypted on read, encrypted on
//! write, redacted in `Debug`. Each model comes with a `New*` input (what `create` takes) and, when rows
//! can change, a `*Patch` (what `update` takes; `None` leaves a field as it is, and for nullable fields
//! `Some(None)` clears it).

pub mod enums;

mod audit_log;
mod authorization;
mod conversation;
mod document;
mod gamification;
mod health_data;
mod message;
mod mission;
mod organization;
mod patient;
mod provider;
mod tasy;

pub use audit_log::*;
pub use authorization::*;
pub use conversation::*;
pub use document::*;
pub use enums::*;
pub use gamification::*;
pub use health_data::*;
pub use message::*;
pub use mission::*;
pub use organization::*;
pub use patient::*;
pub use provider::*;
pub use tasy::*;

/// Deserializes a patch field of type `Option<Option<T>>`: an absent field stays `None` (leave as is),
/// an explicit `null` becomes `Some(None)` (clear), a value `Some(Some(v))`. Serde alone cannot tell
/// an absent field from a `null` one.
pub(crate) fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}
