use std::fmt;

use serde::{Deserialize, Serialize};

/// A sensitive plaintext value (a patient's name, CPF, a message body, health data), or the marker
/// that it was erased.
///
/// `Debug` prints `Sensitive(<redacted>)` (or `Sensitive(<erased>)`), and there is no `Display`, so a
/// value cannot reach a log line or an error message by accident. Read it with [`Sensitive::expose`],
/// which answers [`Erased`] when the value's key was destroyed by crypto-shredding: a listing of
/// patients still works after one of them was erased, and the erased fields say so instead of failing
/// or returning garbage. Serde serialization is transparent (an erased value serializes as `null`),
/// because serializing is an explicit act (an API response, a binding's `to_dict`).
///
/// ```
/// use austa_crypto::Sensitive;
/// let cpf: Sensitive<String> = "123.456.789-09".into();
/// assert_eq!(format!("{cpf:?}"), "Sensitive(<redacted>)");
/// assert_eq!(cpf.expose().unwrap(), "123.456.789-09");
/// assert!(Sensitive::<String>::erased().expose().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Sensitive<T>(Option<T>);

/// Deserializes the plaintext itself: input never carries the erased marker, so a `null` where a
/// value is required is a type error rather than an erased value.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sensitive<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self::new)
    }
}

/// The value is gone: its key was destroyed (crypto-shredding). Converts into
/// [`Error::Erased`](austa_error::Error::Erased).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erased;

impl fmt::Display for Erased {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("value erased: its key was destroyed")
    }
}

impl std::error::Error for Erased {}

impl<T> Sensitive<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(Some(value))
    }

    /// The erased marker.
    pub fn erased() -> Self {
        Self(None)
    }

    /// Whether the value was erased.
    pub fn is_erased(&self) -> bool {
        self.0.is_none()
    }

    /// Borrows the plaintext. Every call site is a place where sensitive data leaves the wrapper.
    pub fn expose(&self) -> Result<&T, Erased> {
        self.0.as_ref().ok_or(Erased)
    }

    /// Mutable access to the plaintext.
    pub fn expose_mut(&mut self) -> Result<&mut T, Erased> {
        self.0.as_mut().ok_or(Erased)
    }

    /// Unwraps the plaintext.
    pub fn into_inner(self) -> Result<T, Erased> {
        self.0.ok_or(Erased)
    }
}

impl<T: Default> Default for Sensitive<T> {
    fn default() -> Self {
        Self(Some(T::default()))
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Sensitive(<redacted>)" } else { "Sensitive(<erased>)" })
    }
}

impl<T> From<T> for Sensitive<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Sensitive<String> {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}
