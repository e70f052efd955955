//! The ciphertext envelope: `version(1) | key kind(1) | key id(16) | nonce(12) | ciphertext | tag(16)`.
//!
//! The header names the key that decrypts the value: its kind (organization or patient key) and the id
//! of the exact key version. The whole header is part of the associated data, so swapping the key id
//! or kind of an envelope fails authentication like any other modification.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use uuid::Uuid;
use zeroize::Zeroizing;

use austa_error::{CryptoErrorKind, Error, Result};

/// Current envelope format.
const VERSION: u8 = 1;
const HEADER: usize = 1 + 1 + 16;
const NONCE: usize = 12;
const TAG: usize = 16;

/// Which kind of key an envelope names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// An organization key version.
    Organization = 1,
    /// A patient key version.
    Patient = 2,
}

/// What an envelope's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Whose key.
    pub kind: KeyKind,
    /// Which version.
    pub key_id: Uuid,
}

/// Associated data: the header (so the key id cannot be swapped) plus the row context.
fn aad(header: &[u8], context: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(header.len() + context.len());
    v.extend_from_slice(header);
    v.extend_from_slice(context);
    v
}

/// Encrypts `plaintext` under `cipher` (the key `header` names), binding `context`.
pub(crate) fn seal(cipher: &Aes256Gcm, header: Header, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER + NONCE + plaintext.len() + TAG);
    out.push(VERSION);
    out.push(header.kind as u8);
    out.extend_from_slice(header.key_id.as_bytes());
    let mut nonce = [0u8; NONCE];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad(&out, context) })
        .map_err(|_| Error::crypto(CryptoErrorKind::InvalidKey, "encrypting field"))?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Reads an envelope's header, checking its shape.
pub(crate) fn header(envelope: &[u8]) -> Result<Header, CryptoErrorKind> {
    if envelope.len() < HEADER + NONCE + TAG {
        return Err(CryptoErrorKind::MalformedEnvelope);
    }
    named_key(envelope).ok_or(CryptoErrorKind::MalformedEnvelope)
}

/// The key an envelope names, read from its first [`HEADER_LEN`] bytes alone (validation reads no
/// more of a ciphertext than this); `None` when they are not an envelope header.
pub fn named_key(prefix: &[u8]) -> Option<Header> {
    if prefix.len() < HEADER || prefix[0] != VERSION {
        return None;
    }
    let kind = match prefix[1] {
        1 => KeyKind::Organization,
        2 => KeyKind::Patient,
        _ => return None,
    };
    let id: [u8; 16] = prefix[2..HEADER].try_into().ok()?;
    Some(Header { kind, key_id: Uuid::from_bytes(id) })
}

/// Length of an envelope's header (version, key kind, key id).
pub const HEADER_LEN: usize = HEADER;

/// Decrypts an envelope whose key has already been resolved to `cipher`.
pub(crate) fn open(cipher: &Aes256Gcm, envelope: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoErrorKind> {
    header(envelope)?;
    let (head, rest) = envelope.split_at(HEADER);
    let (nonce, ct) = rest.split_at(NONCE);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad(head, context) })
        .map(Zeroizing::new)
        .map_err(|_| CryptoErrorKind::AuthenticationFailed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::KeyInit;

    #[test]
    fn round_trip_and_tamper_detection() {
        let c = Aes256Gcm::new(&[7u8; 32].into());
        let h = Header { kind: KeyKind::Patient, key_id: Uuid::now_v7() };
        let env = seal(&c, h, b"ctx", b"hello").unwrap();
        assert_eq!(header(&env).unwrap(), h);
        assert_eq!(&open(&c, &env, b"ctx").unwrap()[..], b"hello");
        assert_eq!(open(&c, &env, b"other").unwrap_err(), CryptoErrorKind::AuthenticationFailed);
        for i in 0..env.len() {
            let mut bad = env.clone();
            bad[i] ^= 1;
            assert!(open(&c, &bad, b"ctx").is_err(), "flipped byte {i} must fail");
        }
        assert_eq!(open(&c, &env[..20], b"ctx").unwrap_err(), CryptoErrorKind::MalformedEnvelope);
    }
}
