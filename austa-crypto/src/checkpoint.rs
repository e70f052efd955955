//! Signed checkpoints of a Merkle-tree log, in the formats transparency logs share.
//!
//! A checkpoint states a log's size and root hash, signed, so that whoever keeps one (a hospital's
//! compliance office, a WORM bucket, a regulator) can later demand proof that the log only grew
//! since. The text is a [C2SP tlog-checkpoint](https://c2sp.org/tlog-checkpoint) wrapped in a
//! [C2SP signed note](https://c2sp.org/signed-note), the format of Go's checksum database and of
//! Sigstore, so existing witnesses and tools read it:
//!
//! ```text
//! austa-audit/0193…            origin: which log
//! 1048576                      tree size
//! 7Xb2…=                       root hash, base64
//! time 2026-12-06T21:50:00Z    extension lines (here: when it was signed)
//!
//! — austa-audit q1w2…=         signature line: key name, base64(key hash ‖ Ed25519 signature)
//! ```
//!
//! The signing key is an Ed25519 key of its own, never derived from the data keys, so that
//! verifying needs only the public key and a data-key holder cannot sign. [`CheckpointSigner`] is
//! the seam for keeping it in a KMS or HSM; [`Ed25519Signer`] holds it in memory, from the
//! environment or a key file. A [`CheckpointVerifier`] is the public half, written as the note
//! verifier key `name+hash+base64`.
//!
//! ```
//! use austa_crypto::checkpoint::{Checkpoint, CheckpointVerifier, Ed25519Signer};
//! let signer = Ed25519Signer::generate("austa-audit").unwrap();
//! let checkpoint = Checkpoint { origin: "austa-audit/demo".into(), size: 3, root: [7; 32], extensions: vec![] };
//! let note = checkpoint.sign(&signer).unwrap();
//! let verifier = CheckpointVerifier::of(&signer).unwrap();
//! assert_eq!(verifier.open(&note).unwrap(), checkpoint);
//! assert!(verifier.open(&note.replace("\n3\n", "\n4\n")).is_err());
//! ```

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::merkle::Hash;
use austa_error::{Error, Result};

/// Environment variable holding the checkpoint signing key: base64 of a 32-byte Ed25519 seed.
pub const SIGNING_KEY_ENV: &str = "AUSTA_AUDIT_SIGNING_KEY";
/// Environment variable naming a file (mode 0600) that holds the base64 signing key.
pub const SIGNING_KEY_FILE_ENV: &str = "AUSTA_AUDIT_SIGNING_KEY_FILE";
/// Environment variable naming the signing key in signature lines (default [`DEFAULT_KEY_NAME`]).
pub const SIGNER_NAME_ENV: &str = "AUSTA_AUDIT_SIGNER_NAME";
/// Environment variable holding a verifier key (`name+hash+base64`), for verifying without the
/// signing key.
pub const VERIFIER_KEY_ENV: &str = "AUSTA_AUDIT_VERIFIER_KEY";
/// The signing key's name when [`SIGNER_NAME_ENV`] is not set.
pub const DEFAULT_KEY_NAME: &str = "austa-audit";

/// The signature algorithm byte of Ed25519 in signed notes.
const ED25519: u8 = 0x01;
/// The em dash that starts a signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// The largest note read: a checkpoint is a few hundred bytes, with cosignatures a few more.
const MAX_NOTE_LEN: usize = 64 * 1024;

/// A log's state: its origin (which log), size and root hash, and extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log: a checkpoint of one log never verifies as another's.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// The Merkle tree's root hash (RFC 9162).
    pub root: Hash,
    /// Further lines of the body, without their line ends (for example `time …`).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The checkpoint's body: the signed text.
    pub fn body(&self) -> String {
        let mut text = format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root));
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// The signed note: the body, a blank line and `signer`'s signature line.
    pub fn sign(&self, signer: &dyn CheckpointSigner) -> Result<String> {
        check_line(&self.origin, "origin")?;
        for line in &self.extensions {
            check_line(line, "extension line")?;
        }
        check_name(signer.name())?;
        let body = self.body();
        let signature = signer.sign(body.as_bytes())?;
        let mut blob = key_hash(signer.name(), &signer.public_key()).to_be_bytes().to_vec();
        blob.extend_from_slice(&signature);
        Ok(format!("{body}\n{SIGNATURE_PREFIX}{} {}\n", signer.name(), STANDARD.encode(blob)))
    }

    /// Parses a checkpoint body (without signatures).
    fn parse(body: &str) -> Result<Self> {
        let bad = |why: &str| Error::validation("checkpoint", why);
        let mut lines =
            body.strip_suffix('\n').ok_or_else(|| bad("the body does not end with a line end"))?.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| bad("no origin line"))?.to_owned();
        let size = lines
            .next()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s.len() == 1 || !s.starts_with('0')))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("the second line is not a tree size"))?;
        let root = lines
            .next()
            .and_then(|r| STANDARD.decode(r).ok())
            .and_then(|r| <[u8; 32]>::try_from(r).ok())
            .ok_or_else(|| bad("the third line is not a base64 SHA-256 root hash"))?;
        let extensions = lines.map(str::to_owned).collect::<Vec<_>>();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("an empty line inside the body"));
        }
        Ok(Self { origin, size, root, extensions })
    }
}

/// A line of the body must not break the format.
fn check_line(line: &str, what: &str) -> Result<()> {
    if line.is_empty() || line.contains('\n') {
        return Err(Error::validation("checkpoint", format!("an {what} must be one non-empty line")));
    }
    Ok(())
}

/// A key name: non-empty, without white space or `+` (the verifier key's separator).
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '+') {
        return Err(Error::Config("a checkpoint key name must be non-empty, without spaces or '+'".into()));
    }
    Ok(())
}

/// The signed note's key hash: the first four bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`.
fn key_hash(name: &str, public: &[u8; 32]) -> u32 {
    let digest =
        Sha256::new().chain_update(name).chain_update(b"\n").chain_update([ED25519]).chain_update(public).finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// What signs checkpoints: an Ed25519 key under a name. Implement it to keep the key in a KMS or
/// HSM (the call may block on the service); [`Ed25519Signer`] keeps it in memory.
pub trait CheckpointSigner: Send + Sync {
    /// The key's name, as signature lines and verifier keys carry it.
    fn name(&self) -> &str;
    /// The Ed25519 public key.
    fn public_key(&self) -> [u8; 32];
    /// The Ed25519 signature of `message`.
    fn sign(&self, message: &[u8]) -> Result<[u8; 64]>;
}

/// An Ed25519 signing key held in memory (wiped on drop); `Debug` shows its name and public key only.
pub struct Ed25519Signer {
    name: String,
    key: SigningKey,
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Signer")
            .field("name", &self.name)
            .field("public_key", &STANDARD.encode(self.key.verifying_key().as_bytes()))
            .finish_non_exhaustive()
    }
}

impl Ed25519Signer {
    /// A new random key.
    pub fn generate(name: &str) -> Result<Self> {
        let seed = crate::DataKey::generate();
        Self::from_seed(name, seed.expose())
    }

    /// From a 32-byte seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self> {
        check_name(name)?;
        Ok(Self { name: name.to_owned(), key: SigningKey::from_bytes(seed) })
    }

    /// From base64 of a 32-byte seed (what [`SIGNING_KEY_ENV`] and the key file hold).
    pub fn from_base64(name: &str, encoded: &str) -> Result<Self> {
        let trimmed = encoded.trim();
        let bytes = Zeroizing::new(
            STANDARD
                .decode(trimmed)
                .map_err(|_| Error::Config("the checkpoint signing key is not valid base64".into()))?,
        );
        let seed = Zeroizing::new(
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| Error::Config("the checkpoint signing key must decode to exactly 32 bytes".into()))?,
        );
        Self::from_seed(name, &seed)
    }

    /// From a key file holding the base64 seed, checked as the master key file is (regular file,
    /// mode 0600, no symbolic link, opened once).
    pub fn from_file(name: &str, path: &Path) -> Result<Self> {
        Self::from_base64(name, &crate::keys::read_key_file(path)?)
    }

    /// Creates a new random key file (mode 0600) at `path` and loads it. Refuses to overwrite.
    pub fn create_key_file(name: &str, path: &Path) -> Result<Self> {
        let signer = Self::generate(name)?;
        let seed = Zeroizing::new(signer.key.to_bytes());
        let encoded = Zeroizing::new(STANDARD.encode(*seed));
        crate::keys::write_new_private_file(path, encoded.as_bytes())?;
        Ok(signer)
    }

    /// From [`SIGNING_KEY_ENV`] or [`SIGNING_KEY_FILE_ENV`], named by [`SIGNER_NAME_ENV`]; `None` when
    /// neither is set.
    pub fn from_env() -> Result<Option<Self>> {
        let name = std::env::var(SIGNER_NAME_ENV).unwrap_or_else(|_| DEFAULT_KEY_NAME.to_owned());
        if let Ok(value) = std::env::var(SIGNING_KEY_ENV) {
            return Self::from_base64(&name, &Zeroizing::new(value)).map(Some);
        }
        match std::env::var_os(SIGNING_KEY_FILE_ENV) {
            Some(path) => Self::from_file(&name, Path::new(&path)).map(Some),
            None => Ok(None),
        }
    }
}

impl CheckpointSigner for Ed25519Signer {
    fn name(&self) -> &str {
        &self.name
    }

    fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64]> {
        Ok(self.key.sign(message).to_bytes())
    }
}

/// The public half of a checkpoint signing key: opens notes it signed. Written and read as the note
/// verifier key `name+hash+base64(0x01 ‖ public key)` ([`fmt::Display`], [`CheckpointVerifier::parse`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointVerifier {
    name: String,
    hash: u32,
    key: VerifyingKey,
}

impl CheckpointVerifier {
    /// The verifier of `signer`'s checkpoints.
    pub fn of(signer: &dyn CheckpointSigner) -> Result<Self> {
        let public = signer.public_key();
        check_name(signer.name())?;
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| Error::Config("the checkpoint signer's public key is not an Ed25519 key".into()))?;
        Ok(Self { name: signer.name().to_owned(), hash: key_hash(signer.name(), &public), key })
    }

    /// Parses a verifier key `name+hash+base64`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::Config(format!("verifier key: {why}"));
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+hash+key"));
        };
        check_name(name)?;
        let hash = (hash.len() == 8)
            .then(|| u32::from_str_radix(hash, 16).ok())
            .flatten()
            .ok_or_else(|| bad("the hash is not 8 hex digits"))?;
        let key = STANDARD.decode(key).map_err(|_| bad("the key is not base64"))?;
        let Some((&ED25519, public)) = key.split_first() else { return Err(bad("not an Ed25519 key")) };
        let public = <[u8; 32]>::try_from(public).map_err(|_| bad("an Ed25519 key has 32 bytes"))?;
        if key_hash(name, &public) != hash {
            return Err(bad("the hash does not match the name and key"));
        }
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not a valid Ed25519 key"))?;
        Ok(Self { name: name.to_owned(), hash, key })
    }

    /// From [`VERIFIER_KEY_ENV`], else the public half of the signing key from the environment;
    /// `None` when neither is set.
    pub fn from_env() -> Result<Option<Self>> {
        if let Ok(text) = std::env::var(VERIFIER_KEY_ENV) {
            return Self::parse(&text).map(Some);
        }
        Ed25519Signer::from_env()?.map(|s| Self::of(&s)).transpose()
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The checkpoint in `note` if this key signed it (other signatures, such as witnesses'
    /// cosignatures, are ignored). Errors name what is wrong: the format, or no valid signature by
    /// this key.
    pub fn open(&self, note: &str) -> Result<Checkpoint> {
        let bad = |why: String| Error::validation("checkpoint", why);
        if note.len() > MAX_NOTE_LEN {
            return Err(bad(format!("longer than {MAX_NOTE_LEN} bytes")));
        }
        let split = note.rfind("\n\n").ok_or_else(|| bad("no blank line before the signatures".into()))?;
        let (body, signatures) = (&note[..=split], &note[split + 2..]);
        let checkpoint = Checkpoint::parse(body)?;
        let mut ours = 0;
        for line in signatures.strip_suffix('\n').unwrap_or(signatures).split('\n') {
            let line = line
                .strip_prefix(SIGNATURE_PREFIX)
                .ok_or_else(|| bad("a signature line must start with '— '".into()))?;
            let (name, blob) =
                line.split_once(' ').ok_or_else(|| bad("a signature line is name and signature".into()))?;
            let blob = STANDARD.decode(blob).map_err(|_| bad("a signature is not base64".into()))?;
            if name != self.name || blob.len() != 4 + 64 || blob[..4] != self.hash.to_be_bytes() {
                continue;
            }
            ours += 1;
            let signature = ed25519_dalek::Signature::from_slice(&blob[4..])
                .map_err(|_| bad(format!("the signature by {} is malformed", self.name)))?;
            self.key.verify_strict(body.as_bytes(), &signature).map_err(|_| {
                bad(format!("the signature by {} does not verify: the checkpoint was altered", self.name))
            })?;
        }
        if ours == 0 {
            return Err(bad(format!("not signed by the key {}", self.name)));
        }
        Ok(checkpoint)
    }
}

impl fmt::Display for CheckpointVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = vec![ED25519];
        key.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.hash, STANDARD.encode(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "austa-audit/test".into(),
            size: 12,
            root: [9; 32],
            extensions: vec!["time 2026-12-06T00:00:00Z".into()],
        }
    }

    #[test]
    fn a_note_round_trips_and_names_each_alteration() {
        let signer = Ed25519Signer::generate("austa-audit").unwrap();
        let verifier = CheckpointVerifier::of(&signer).unwrap();
        let note = checkpoint().sign(&signer).unwrap();
        assert_eq!(verifier.open(&note).unwrap(), checkpoint());
        let altered = note.replace("\n12\n", "\n13\n");
        assert!(verifier.open(&altered).unwrap_err().to_string().contains("does not verify"));
        let other = CheckpointVerifier::of(&Ed25519Signer::generate("austa-audit").unwrap()).unwrap();
        assert!(other.open(&note).unwrap_err().to_string().contains("not signed by the key"));
        assert!(verifier.open("garbage").is_err());
        assert!(verifier.open(&note.replace("\n\n", "\n")).is_err());
    }

    #[test]
    fn a_cosignature_by_another_key_is_ignored() {
        let signer = Ed25519Signer::generate("austa-audit").unwrap();
        let witness = Ed25519Signer::generate("witness").unwrap();
        let note = checkpoint().sign(&signer).unwrap();
        let cosigned = checkpoint().sign(&witness).unwrap();
        let witness_line = cosigned.rsplit_once("\n\n").unwrap().1;
        let both = format!("{note}{witness_line}");
        assert_eq!(CheckpointVerifier::of(&signer).unwrap().open(&both).unwrap(), checkpoint());
        assert_eq!(CheckpointVerifier::of(&witness).unwrap().open(&both).unwrap(), checkpoint());
    }

    #[test]
    fn the_verifier_key_round_trips_and_is_checked() {
        let signer = Ed25519Signer::generate("hospital-a").unwrap();
        let verifier = CheckpointVerifier::of(&signer).unwrap();
        let text = verifier.to_string();
        assert!(text.starts_with("hospital-a+"));
        assert_eq!(CheckpointVerifier::parse(&text).unwrap(), verifier);
        let renamed = text.replacen("hospital-a", "hospital-b", 1);
        assert!(CheckpointVerifier::parse(&renamed).is_err(), "the hash binds the name");
        assert!(CheckpointVerifier::parse("a+b").is_err());
    }

    #[test]
    fn debug_shows_no_secret_and_bad_keys_are_refused_without_echo() {
        let seed = [5u8; 32];
        let signer = Ed25519Signer::from_seed("k", &seed).unwrap();
        let debug = format!("{signer:?}");
        assert!(!debug.contains(&STANDARD.encode(seed)));
        let e = Ed25519Signer::from_base64("k", "bm90IGEga2V5").unwrap_err();
        assert_eq!(e.code(), "config");
        assert!(!e.to_string().contains("bm90IGEga2V5"));
        assert!(Ed25519Signer::from_seed("two words", &seed).is_err());
    }
}
