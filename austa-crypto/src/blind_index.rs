//! Blind indexes: keyed HMAC-SHA-256 digests of normalized identifiers, for equality lookups and
//! per-organization uniqueness over encrypted columns.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What an index is over. The kind is part of the MAC input, so a phone digest can never equal a CPF
/// digest even if the normalized strings coincide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlindIndexKind {
    /// Phone number in E.164.
    Phone,
    /// CPF as 11 digits.
    Cpf,
    /// E-mail address in lower case.
    Email,
    /// WhatsApp user id.
    WhatsappId,
    /// WhatsApp chat id.
    WhatsappChatId,
    /// WhatsApp message id (`wamid...`).
    WhatsappMessageId,
}

impl BlindIndexKind {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Phone => b"phone",
            Self::Cpf => b"cpf",
            Self::Email => b"email",
            Self::WhatsappId => b"whatsapp_id",
            Self::WhatsappChatId => b"whatsapp_chat_id",
            Self::WhatsappMessageId => b"whatsapp_message_id",
        }
    }
}

/// HMAC-SHA-256(key, kind || 0x00 || normalized).
pub(crate) fn compute(key: &[u8; 32], kind: BlindIndexKind, normalized: &str) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(kind.label());
    mac.update(&[0]);
    mac.update(normalized.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_and_kind_separated() {
        let a = compute(&[1; 32], BlindIndexKind::Phone, "+5511987654321");
        assert_eq!(a, compute(&[1; 32], BlindIndexKind::Phone, "+5511987654321"));
        assert_ne!(a, compute(&[2; 32], BlindIndexKind::Phone, "+5511987654321"));
        assert_ne!(a, compute(&[1; 32], BlindIndexKind::Cpf, "+5511987654321"));
        assert_eq!(a.len(), 32);
    }
}
