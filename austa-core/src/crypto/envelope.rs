//! The ciphertext envelope: `version(1) | key id(16) | nonce(12) | ciphertext | tag(16)`.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::{CryptoErrorKind, Error, Result};

/// Current envelope format.
const VERSION: u8 = 1;
const HEADER: usize = 1 + 16;
const NONCE: usize = 12;
const TAG: usize = 16;

/// Associated data: the header (so the key id cannot be swapped) plus the row context.
fn aad(header: &[u8], context: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(header.len() + context.len());
    v.extend_from_slice(header);
    v.extend_from_slice(context);
    v
}

/// Encrypts `plaintext` under `cipher` (the key named `key_id`), binding `context`.
pub(crate) fn seal(cipher: &Aes256Gcm, key_id: Uuid, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER + NONCE + plaintext.len() + TAG);
    out.push(VERSION);
    out.extend_from_slice(key_id.as_bytes());
    let mut nonce = [0u8; NONCE];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad(&out, context) })
        .map_err(|_| Error::crypto(CryptoErrorKind::InvalidKey, "encrypting field"))?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Reads the key id an envelope names, checking its shape.
pub(crate) fn key_id(envelope: &[u8]) -> Result<Uuid, CryptoErrorKind> {
    if envelope.len() < HEADER + NONCE + TAG || envelope[0] != VERSION {
        return Err(CryptoErrorKind::MalformedEnvelope);
    }
    let id: [u8; 16] = envelope[1..HEADER].try_into().map_err(|_| CryptoErrorKind::MalformedEnvelope)?;
    Ok(Uuid::from_bytes(id))
}

/// Decrypts an envelope whose key id has already been resolved to `cipher`.
pub(crate) fn open(cipher: &Aes256Gcm, envelope: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoErrorKind> {
    key_id(envelope)?;
    let (header, rest) = envelope.split_at(HEADER);
    let (nonce, ct) = rest.split_at(NONCE);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad(header, context) })
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
        let id = Uuid::now_v7();
        let env = seal(&c, id, b"ctx", b"hello").unwrap();
        assert_eq!(key_id(&env).unwrap(), id);
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
