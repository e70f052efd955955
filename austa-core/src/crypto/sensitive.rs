use std::fmt;

use serde::{Deserialize, Serialize};
/// A sensitive plaintext value (a patient's name, CPF, a message body, health data).
///
/// `Debug` prints `Sensitive(<redacted>)`, and there is no `Display`, so a value cannot reach a log line
/// or an error message by accident; read it with [`Sensitive::expose`]. Serde serialization is
/// transparent, because serializing is an explicit act (an API response, a binding's `to_dict`).
///
/// ```
/// use austa_core::crypto::Sensitive;
/// let cpf: Sensitive<String> = "123.456.789-09".into();
/// assert_eq!(format!("{cpf:?}"), "Sensitive(<redacted>)");
/// assert_eq!(cpf.expose(), "123.456.789-09");
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Borrows the plaintext. Every call site is a place where sensitive data leaves the wrapper.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Mutable access to the plaintext.
    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }

    /// Unwraps the plaintext.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sensitive(<redacted>)")
    }
}

impl<T> From<T> for Sensitive<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl From<&str> for Sensitive<String> {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}
