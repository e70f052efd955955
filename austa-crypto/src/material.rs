//! Unwrapped key material: an organization's key versions with their derived subkeys, and a patient's
//! key versions (or the fact that they were destroyed). Every subkey is zeroized on drop.
//!
//! ```text
//! master key (KeyProvider)  ──wraps──▶  organization key v1..vN   (key store: organization_keys)
//!                                         │ HKDF ─▶ field key   encrypts organization secrets
//!                                         │ HKDF ─▶ blind key   computes blind indexes
//!                                         │ HKDF ─▶ wrap key ──wraps──▶ patient key v1..vM (patient_keys)
//!                                         │ HKDF ─▶ audit key   MACs the audit chain      │ HKDF ─▶ field key
//!                                                                                          ▼ encrypts the patient's data
//! ```

use std::collections::HashMap;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use austa_error::{CryptoErrorKind, Error, Result};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::keys::DataKey;

/// One unwrapped organization key version and its derived subkeys.
pub struct OrgVersion {
    /// The version's id (the key id envelopes name).
    pub id: Uuid,
    pub(crate) field: Aes256Gcm,
    pub(crate) blind: Zeroizing<[u8; 32]>,
    wrap: Aes256Gcm,
    /// HMAC key of the audit chain (events and links are MACed under it).
    audit: Zeroizing<[u8; 32]>,
}

/// Every live version of one organization's key.
pub struct OrgKeys {
    /// The organization.
    pub organization: Uuid,
    pub(crate) active: Uuid,
    /// Oldest first.
    pub(crate) versions: Vec<OrgVersion>,
}

/// One patient's key versions, or the fact that they were destroyed.
pub struct PatientKeys {
    /// The patient.
    pub patient: Uuid,
    pub(crate) state: PatientKeyState,
}

pub(crate) enum PatientKeyState {
    Live { active: Uuid, versions: HashMap<Uuid, Aes256Gcm> },
    Destroyed,
}

fn hkdf(root: &DataKey, label: &'static [u8]) -> Result<Zeroizing<[u8; 32]>> {
    let mut out = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(b"austa key hierarchy v1"), root.expose())
        .expand(label, out.as_mut())
        .map_err(|_| Error::crypto(CryptoErrorKind::InvalidKey, "deriving subkeys"))?;
    Ok(out)
}

fn cipher(key: &Zeroizing<[u8; 32]>) -> Aes256Gcm {
    Aes256Gcm::new((&**key).into())
}

impl OrgVersion {
    /// Derives a version's subkeys from its root key.
    pub fn derive(id: Uuid, root: &DataKey) -> Result<Self> {
        Ok(Self {
            id,
            field: cipher(&hkdf(root, b"organization field encryption")?),
            blind: hkdf(root, b"organization blind index")?,
            wrap: cipher(&hkdf(root, b"organization key wrapping")?),
            audit: hkdf(root, b"organization audit chain")?,
        })
    }
}

pub(crate) fn patient_cipher(root: &DataKey) -> Result<Aes256Gcm> {
    Ok(cipher(&hkdf(root, b"patient field encryption")?))
}

impl OrgKeys {
    /// The organization's keys: `versions` oldest first, `active` the one that encrypts.
    pub fn new(organization: Uuid, active: Uuid, versions: Vec<OrgVersion>) -> Self {
        Self { organization, active, versions }
    }

    /// Every live version, oldest first.
    pub fn versions(&self) -> &[OrgVersion] {
        &self.versions
    }

    pub(crate) fn version(&self, id: Uuid) -> Option<&OrgVersion> {
        self.versions.iter().find(|v| v.id == id)
    }

    /// HMAC-SHA-256 of `parts` (each length-prefixed, so part boundaries are unambiguous) under the
    /// audit key of version `key_id`; `UnknownKey` when that version is gone.
    pub fn audit_mac(&self, key_id: Uuid, parts: &[&[u8]]) -> Result<[u8; 32]> {
        use hmac::{Hmac, Mac};
        let v = self.version(key_id).ok_or_else(|| Error::crypto(CryptoErrorKind::UnknownKey, "audit key"))?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&v.audit[..])
            .map_err(|_| Error::crypto(CryptoErrorKind::InvalidKey, "audit key"))?;
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        Ok(mac.finalize().into_bytes().into())
    }

    /// [`OrgKeys::audit_mac`] of parts framed into one buffer by [`MacInput`]: the same MAC as
    /// `audit_mac` over the same parts, for callers that MAC many small parts (an audit event has 28)
    /// and would otherwise allocate one buffer per part.
    pub fn audit_mac_of(&self, key_id: Uuid, input: &MacInput) -> Result<[u8; 32]> {
        use hmac::{Hmac, Mac};
        let v = self.version(key_id).ok_or_else(|| Error::crypto(CryptoErrorKind::UnknownKey, "audit key"))?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&v.audit[..])
            .map_err(|_| Error::crypto(CryptoErrorKind::InvalidKey, "audit key"))?;
        mac.update(&input.framed);
        Ok(mac.finalize().into_bytes().into())
    }

    /// Whether version `key_id` is among these keys.
    pub fn has_version(&self, key_id: Uuid) -> bool {
        self.version(key_id).is_some()
    }

    /// The version that MACs new audit events and links.
    pub fn active_id(&self) -> Uuid {
        self.active
    }

    /// The version that encrypts.
    pub fn active(&self) -> Result<&OrgVersion> {
        self.version(self.active).ok_or_else(|| Error::crypto(CryptoErrorKind::UnknownKey, "active organization key"))
    }

    /// Wraps a patient key under this organization's active wrap key.
    pub fn wrap_patient_key(&self, patient: Uuid, key_id: Uuid, key: &DataKey) -> Result<(Uuid, Vec<u8>)> {
        let v = self.active()?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = patient_wrap_context(self.organization, patient, key_id);
        let ct = v
            .wrap
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: key.expose(), aad: &aad })
            .map_err(|_| Error::crypto(CryptoErrorKind::KeyUnwrap, "wrapping patient key"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok((v.id, out))
    }

    /// Unwraps a patient key wrapped by version `wrapping_key_id`.
    pub fn unwrap_patient_key(
        &self,
        patient: Uuid,
        key_id: Uuid,
        wrapping_key_id: Uuid,
        wrapped: &[u8],
    ) -> Result<DataKey> {
        let fail = |kind| Error::crypto(kind, "patient key");
        let v = self.version(wrapping_key_id).ok_or_else(|| fail(CryptoErrorKind::UnknownKey))?;
        if wrapped.len() < 12 + 16 {
            return Err(fail(CryptoErrorKind::MalformedEnvelope));
        }
        let (nonce, ct) = wrapped.split_at(12);
        let aad = patient_wrap_context(self.organization, patient, key_id);
        let pt = Zeroizing::new(
            v.wrap
                .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
                .map_err(|_| fail(CryptoErrorKind::KeyUnwrap))?,
        );
        DataKey::from_slice(&pt)
    }
}

impl PatientKeys {
    /// Whether the patient's keys were destroyed.
    pub fn destroyed(&self) -> bool {
        matches!(self.state, PatientKeyState::Destroyed)
    }
}

/// The associated data binding a wrapped organization key to its organization and id.
pub fn org_wrap_context(organization: Uuid, key_id: Uuid) -> Vec<u8> {
    let mut v = b"austa:organization-key:v1:".to_vec();
    v.extend_from_slice(organization.as_bytes());
    v.extend_from_slice(key_id.as_bytes());
    v
}

fn patient_wrap_context(organization: Uuid, patient: Uuid, key_id: Uuid) -> Vec<u8> {
    let mut v = b"austa:patient-key:v1:".to_vec();
    v.extend_from_slice(organization.as_bytes());
    v.extend_from_slice(patient.as_bytes());
    v.extend_from_slice(key_id.as_bytes());
    v
}

/// The associated data of the key store's key check value.
pub const KEY_CHECK_CONTEXT: &[u8] = b"austa:key-check:v1";

/// The parts of an audit MAC, each preceded by its length as a big-endian `u64` exactly as
/// [`OrgKeys::audit_mac`] frames them, written into one buffer as they are produced.
///
/// ```
/// use austa_crypto::material::MacInput;
/// let mut input = MacInput::with_capacity(64);
/// input.part(b"label").tagged(1, b"text").part_with(|b| b.extend_from_slice(b"a\nb"));
/// ```
#[derive(Default)]
pub struct MacInput {
    framed: Vec<u8>,
}

/// Only the length: the parts are audit fields (actor names, addresses), not for logs.
impl std::fmt::Debug for MacInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacInput").field("framed_len", &self.framed.len()).finish_non_exhaustive()
    }
}

impl MacInput {
    /// An empty input with room for `bytes` framed bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        Self { framed: Vec::with_capacity(bytes) }
    }

    /// Appends one part.
    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.framed.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        self.framed.extend_from_slice(bytes);
        self
    }

    /// Appends the part `[tag] ++ bytes` (an optional value's presence byte and its content)
    /// without building it first.
    pub fn tagged(&mut self, tag: u8, bytes: &[u8]) -> &mut Self {
        self.framed.extend_from_slice(&(bytes.len() as u64 + 1).to_be_bytes());
        self.framed.push(tag);
        self.framed.extend_from_slice(bytes);
        self
    }

    /// Appends the part that `write` appends to the buffer it is given (its length is filled in
    /// afterwards): for parts assembled from pieces, such as a list joined by separators.
    pub fn part_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        let at = self.framed.len();
        self.framed.extend_from_slice(&[0; 8]);
        write(&mut self.framed);
        let len = (self.framed.len() - at - 8) as u64;
        self.framed[at..at + 8].copy_from_slice(&len.to_be_bytes());
        self
    }
}

/// Whether a computed MAC equals a stored one, in time that does not depend on where they differ:
/// an ordinary `==` stops at the first differing byte, and its timing would tell a forger how much
/// of a guessed MAC is right. Lengths are not secret (a MAC has one length).
///
/// ```
/// use austa_crypto::mac_eq;
/// assert!(mac_eq(&[1, 2, 3], &[1, 2, 3]));
/// assert!(!mac_eq(&[1, 2, 3], &[1, 2, 4]));
/// assert!(!mac_eq(&[1, 2, 3], &[1, 2]));
/// ```
pub fn mac_eq(computed: &[u8], stored: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    computed.ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_input_macs_like_its_parts() -> Result<()> {
        let id = Uuid::now_v7();
        let keys = OrgKeys::new(Uuid::now_v7(), id, vec![OrgVersion::derive(id, &crate::DataKey::generate())?]);
        let parts: [&[u8]; 5] = [b"label", b"", &[1, b'x', b'y'], b"a\nb\nc", &[0]];
        let mut input = MacInput::with_capacity(8);
        input.part(b"label").part(b"").tagged(1, b"xy").part_with(|b| {
            for (i, s) in ["a", "b", "c"].iter().enumerate() {
                if i > 0 {
                    b.push(b'\n');
                }
                b.extend_from_slice(s.as_bytes());
            }
        });
        input.tagged(0, b"");
        assert_eq!(keys.audit_mac_of(id, &input)?, keys.audit_mac(id, &parts)?);
        input.part(b"more");
        assert_ne!(keys.audit_mac_of(id, &input)?, keys.audit_mac(id, &parts)?);
        Ok(())
    }
}
