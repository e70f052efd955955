//! The hand-secured baseline's cryptography, written as tightly as a strong team would: one
//! organization key held in memory (no key store, no unwrapping), AES-256-GCM fields whose associated
//! data binds organization, table, column and row, HMAC-SHA-256 blind indexes and audit MACs.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Keys for fields, blind indexes and audit MACs (three independent random keys).
pub struct Keys {
    cipher: Aes256Gcm,
    blind: [u8; 32],
    audit: [u8; 32],
}

fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut k);
    k
}

/// The associated data of a field: organization, table, column, row.
pub fn aad(organization: Uuid, table: &str, column: &str, row: Uuid) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + table.len() + column.len() + 18);
    v.extend_from_slice(organization.as_bytes());
    v.extend_from_slice(table.as_bytes());
    v.push(0);
    v.extend_from_slice(column.as_bytes());
    v.push(0);
    v.extend_from_slice(row.as_bytes());
    v
}

fn mac(key: &[u8; 32], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length: new_from_slice cannot fail for 32 bytes.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

impl Keys {
    /// A random key.
    pub fn generate() -> Self {
        let key = random_key();
        Self {
            cipher: Aes256Gcm::new_from_slice(&key).unwrap_or_else(|_| unreachable!("32-byte key")),
            blind: random_key(),
            audit: random_key(),
        }
    }

    /// `nonce (12) | ciphertext | tag (16)`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .unwrap_or_else(|_| unreachable!("AES-GCM encryption of a bounded buffer does not fail"));
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens what `seal` sealed with the same associated data; `None` when it fails authentication.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 12 + 16 {
            return None;
        }
        let (nonce, ct) = sealed.split_at(12);
        self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad }).ok()
    }

    /// The blind index of `value` of `kind` (so that equal phones and chat ids do not correlate).
    pub fn blind(&self, kind: &str, value: &str) -> Vec<u8> {
        mac(&self.blind, &[kind.as_bytes(), &[0], value.as_bytes()])
    }

    /// The MAC linking an audit event to the previous one.
    pub fn chain(&self, previous: &[u8], event: &[u8]) -> Vec<u8> {
        mac(&self.audit, &[previous, event])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_open_only_in_their_place() {
        let k = Keys::generate();
        let (org, row) = (Uuid::now_v7(), Uuid::now_v7());
        let sealed = k.seal(&aad(org, "messages", "content", row), b"tomei o remedio");
        assert_eq!(k.open(&aad(org, "messages", "content", row), &sealed).as_deref(), Some(&b"tomei o remedio"[..]));
        assert!(k.open(&aad(org, "messages", "content", Uuid::now_v7()), &sealed).is_none());
        assert_eq!(k.blind("phone", "+5511"), k.blind("phone", "+5511"));
        assert_ne!(k.blind("phone", "+5511"), k.blind("chat", "+5511"));
    }
}
