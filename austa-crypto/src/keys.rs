//! Master key providers.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use austa_error::{CryptoErrorKind, Error, Result};

/// A 256-bit symmetric key. Zeroized on drop; `Debug` never prints it.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        Self(k)
    }

    /// Builds a key from exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] =
            bytes.try_into().map_err(|_| Error::crypto(CryptoErrorKind::InvalidKey, "key must be 32 bytes"))?;
        Ok(Self(Zeroizing::new(arr)))
    }

    /// The raw key bytes, for key derivation and wrapping.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Source of the master key: wraps and unwraps organization keys.
///
/// Implement this trait to keep the master key in an external KMS (AWS KMS `Encrypt`/`Decrypt`,
/// HashiCorp Vault transit `encrypt`/`decrypt`): `wrap` sends the 32-byte organization key and the
/// context (used as associated data / encryption context) to the KMS and stores what comes back;
/// `unwrap` reverses it. The library calls `unwrap` once per organization key and caches the result.
pub trait KeyProvider: Send + Sync + 'static {
    /// Human-readable origin of the master key, for diagnostics (never key material).
    fn describe(&self) -> String;
    /// Wraps `key`, binding `context` (the organization and key id) as associated data.
    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<Vec<u8>>;
    /// Unwraps what [`KeyProvider::wrap`] returned for the same `context`.
    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<DataKey>;
}

/// A master key held in process memory, loaded from the environment or a key file; wraps with
/// AES-256-GCM (`nonce(12) | ciphertext+tag`).
pub struct LocalKeyProvider {
    cipher: Aes256Gcm,
    origin: String,
}

impl fmt::Debug for LocalKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeyProvider").field("origin", &self.origin).finish_non_exhaustive()
    }
}

/// Environment variable holding the base64 master key.
pub const MASTER_KEY_ENV: &str = "AUSTA_MASTER_KEY";
/// Environment variable naming a file that holds the base64 master key.
pub const MASTER_KEY_FILE_ENV: &str = "AUSTA_MASTER_KEY_FILE";

impl LocalKeyProvider {
    /// From a base64 string of exactly 32 bytes (standard alphabet, padding optional).
    pub fn from_base64(encoded: &str, origin: impl Into<String>) -> Result<Self> {
        let trimmed = encoded.trim();
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(trimmed)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
            .map_err(|_| Error::Config("master key is not valid base64".into()))?;
        if bytes.len() != 32 {
            bytes.zeroize();
            return Err(Error::Config("master key must decode to exactly 32 bytes".into()));
        }
        let key = DataKey::from_slice(&bytes)?;
        bytes.zeroize();
        Ok(Self::from_key(&key, origin))
    }

    /// From raw key material.
    pub fn from_key(key: &DataKey, origin: impl Into<String>) -> Self {
        Self { cipher: Aes256Gcm::new(key.expose().into()), origin: origin.into() }
    }

    /// From `AUSTA_MASTER_KEY` (base64).
    pub fn from_env() -> Result<Self> {
        let value = Zeroizing::new(
            std::env::var(MASTER_KEY_ENV).map_err(|_| Error::Config(format!("{MASTER_KEY_ENV} is not set")))?,
        );
        Self::from_base64(&value, format!("env:{MASTER_KEY_ENV}"))
    }

    /// From a key file holding the base64 key. On Unix the file must not be readable or writable by
    /// group or others (mode 0600 or stricter): a world-readable key file is refused. So is a
    /// symbolic link and anything but a regular file. The file is opened once and checked on the open
    /// handle, so the file checked is the file read (no swap between the check and the read).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_base64(&read_key_file(path)?, format!("file:{}", path.display()))
    }

    /// Creates a new random key file (mode 0600) at `path` and loads it. Refuses to overwrite.
    pub fn create_key_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let key = DataKey::generate();
        let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.expose()));
        write_new_private_file(path, encoded.as_bytes())?;
        Ok(Self::from_key(&key, format!("file:{}", path.display())))
    }
}

/// Reads a key file's text, checked as [`LocalKeyProvider::from_file`] says, into memory that is
/// wiped on drop.
pub(crate) fn read_key_file(path: &Path) -> Result<Zeroizing<String>> {
    use std::io::Read;
    let cannot_read = |e: std::io::Error| Error::Config(format!("cannot read key file {}: {e}", path.display()));
    let (mut file, len) = open_key_file(path)?;
    // Sized up front: a growing buffer would leave copies of the key in freed memory.
    let mut content = Zeroizing::new(String::with_capacity(len + 1));
    file.by_ref().take(MAX_KEY_FILE_LEN).read_to_string(&mut content).map_err(cannot_read)?;
    Ok(content)
}

/// The largest key file read: a base64 key with its line end is 45 bytes.
const MAX_KEY_FILE_LEN: u64 = 4096;

/// Opens a key file without following a symbolic link and checks the open handle: a regular file,
/// no access by group or others, no larger than [`MAX_KEY_FILE_LEN`]. Returns it with its length.
#[cfg(unix)]
fn open_key_file(path: &Path) -> Result<(std::fs::File, usize)> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let refuse = |why: String| Err(Error::Config(format!("key file {}: {why}", path.display())));
    // O_NONBLOCK: a FIFO at the path must not hang the open before the regular-file check.
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let file = match std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return refuse("is a symbolic link; name the file itself".into());
        }
        Err(e) => return Err(Error::Config(format!("cannot read key file {}: {e}", path.display()))),
    };
    let meta = file.metadata().map_err(|e| Error::Config(format!("cannot read key file {}: {e}", path.display())))?;
    let mode = meta.permissions().mode();
    if !meta.is_file() {
        return refuse("is not a regular file".into());
    }
    if mode & 0o077 != 0 {
        return refuse(format!("is accessible by group or others (mode {:o}); run chmod 600", mode & 0o777));
    }
    if meta.len() > MAX_KEY_FILE_LEN {
        return refuse(format!("is larger than {MAX_KEY_FILE_LEN} bytes: not a key file"));
    }
    Ok((file, usize::try_from(meta.len()).unwrap_or(0)))
}

#[cfg(not(unix))]
fn open_key_file(path: &Path) -> Result<(std::fs::File, usize)> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::Config(format!("cannot read key file {}: {e}", path.display())))?;
    Ok((file, 64))
}

#[cfg(unix)]
pub(crate) fn write_new_private_file(path: &Path, content: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::Config(format!("cannot create key file {}: {e}", path.display())))?;
    f.write_all(content).map_err(|e| Error::Config(format!("cannot write key file {}: {e}", path.display())))
}

#[cfg(not(unix))]
pub(crate) fn write_new_private_file(path: &Path, content: &[u8]) -> Result<()> {
    std::fs::write(path, content).map_err(|e| Error::Config(format!("cannot write key file {}: {e}", path.display())))
}

impl KeyProvider for LocalKeyProvider {
    fn describe(&self) -> String {
        self.origin.clone()
    }

    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: key.expose(), aad: context })
            .map_err(|_| Error::crypto(CryptoErrorKind::KeyUnwrap, "wrapping organization key"))?;
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<DataKey> {
        if wrapped.len() < 12 + 16 {
            return Err(Error::crypto(CryptoErrorKind::MalformedEnvelope, "wrapped organization key"));
        }
        let (nonce, ct) = wrapped.split_at(12);
        let pt = Zeroizing::new(
            self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: context }).map_err(|_| {
                Error::crypto(CryptoErrorKind::KeyUnwrap, format!("organization key (master key from {})", self.origin))
            })?,
        );
        DataKey::from_slice(&pt)
    }
}

/// Dual control: a master key made of two independent keys, each held by a different custodian.
/// Wrapping goes through `first` then `second`; unwrapping needs both. Built only on the public
/// [`KeyProvider`] trait (any two providers compose, a local key and a KMS included), which is what an
/// external provider has to work with too.
///
/// ```
/// use austa_crypto::{DataKey, DualKeyProvider, KeyProvider, LocalKeyProvider};
/// let dual = DualKeyProvider::new(
///     LocalKeyProvider::from_key(&DataKey::generate(), "custodian-a"),
///     LocalKeyProvider::from_key(&DataKey::generate(), "custodian-b"),
/// );
/// let key = DataKey::generate();
/// let wrapped = dual.wrap(&key, b"ctx").unwrap();
/// assert_eq!(dual.unwrap(&wrapped, b"ctx").unwrap().expose(), key.expose());
/// ```
pub struct DualKeyProvider<A, B> {
    first: A,
    second: B,
}

impl<A: KeyProvider, B: KeyProvider> DualKeyProvider<A, B> {
    /// Composes two providers.
    pub fn new(first: A, second: B) -> Self {
        Self { first, second }
    }
}

impl<A: KeyProvider, B: KeyProvider> KeyProvider for DualKeyProvider<A, B> {
    fn describe(&self) -> String {
        format!("dual({} + {})", self.first.describe(), self.second.describe())
    }

    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<Vec<u8>> {
        // A provider may return wrapped keys of any size (a KMS ciphertext blob), so the second
        // provider wraps a fresh transport key, and the transport key encrypts the first layer.
        let inner = self.first.wrap(key, context)?;
        let transport = DataKey::generate();
        let outer_key = self.second.wrap(&transport, context)?;
        let sealed = seal_with(&transport, &inner, context)?;
        let mut out = Vec::with_capacity(4 + outer_key.len() + sealed.len());
        out.extend_from_slice(&u32::try_from(outer_key.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&outer_key);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<DataKey> {
        let malformed = || Error::crypto(CryptoErrorKind::MalformedEnvelope, "dual-wrapped key");
        let (len, rest) = wrapped.split_at_checked(4).ok_or_else(malformed)?;
        let len =
            usize::try_from(u32::from_be_bytes(len.try_into().map_err(|_| malformed())?)).map_err(|_| malformed())?;
        let (outer_key, sealed) = rest.split_at_checked(len).ok_or_else(malformed)?;
        let transport = self.second.unwrap(outer_key, context)?;
        let inner = open_with(&transport, sealed, context)?;
        self.first.unwrap(&inner, context)
    }
}

fn seal_with(key: &DataKey, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = Aes256Gcm::new(key.expose().into())
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: context })
        .map_err(|_| Error::crypto(CryptoErrorKind::KeyUnwrap, "dual wrap"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open_with(key: &DataKey, sealed: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let fail = || Error::crypto(CryptoErrorKind::KeyUnwrap, "dual-wrapped key");
    let (nonce, ct) = sealed.split_at_checked(12).ok_or_else(fail)?;
    Aes256Gcm::new(key.expose().into())
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: context })
        .map(Zeroizing::new)
        .map_err(|_| fail())
}

/// The master key provider configured by the environment: `AUSTA_MASTER_KEY` (base64 of 32 bytes) or
/// else `AUSTA_MASTER_KEY_FILE` (path of a 0600 file holding it). Neither set is a configuration error.
pub fn provider_from_env() -> Result<Arc<dyn KeyProvider>> {
    if std::env::var_os(MASTER_KEY_ENV).is_some() {
        return Ok(Arc::new(LocalKeyProvider::from_env()?));
    }
    if let Some(path) = std::env::var_os(MASTER_KEY_FILE_ENV) {
        return Ok(Arc::new(LocalKeyProvider::from_file(PathBuf::from(path))?));
    }
    Err(Error::Config(format!("no master key: set {MASTER_KEY_ENV} (base64 of 32 bytes) or {MASTER_KEY_FILE_ENV}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trip_and_context_binding() {
        let p = LocalKeyProvider::from_key(&DataKey::generate(), "test");
        let k = DataKey::generate();
        let w = p.wrap(&k, b"org-a").unwrap();
        assert_eq!(p.unwrap(&w, b"org-a").unwrap().expose(), k.expose());
        assert_eq!(p.unwrap(&w, b"org-b").unwrap_err().code(), "crypto");
        let other = LocalKeyProvider::from_key(&DataKey::generate(), "other");
        assert_eq!(other.unwrap(&w, b"org-a").unwrap_err().code(), "crypto");
    }

    #[test]
    fn rejects_bad_base64_and_lengths_without_echoing() {
        let e = LocalKeyProvider::from_base64("not base64!!", "t").unwrap_err();
        assert_eq!(e.code(), "config");
        assert!(!e.to_string().contains("not base64!!"));
        assert!(LocalKeyProvider::from_base64("AAAA", "t").is_err());
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", DataKey::generate()), "DataKey(<redacted>)");
    }

    #[cfg(unix)]
    #[test]
    fn key_file_permissions_are_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        LocalKeyProvider::create_key_file(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        LocalKeyProvider::from_file(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(LocalKeyProvider::from_file(&path).unwrap_err().code(), "config");
        assert!(LocalKeyProvider::create_key_file(&path).is_err(), "never overwrites");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_is_read_only_as_a_regular_private_file_never_through_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        LocalKeyProvider::create_key_file(&path).unwrap();
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let refused = |p: &std::path::Path| LocalKeyProvider::from_file(p).unwrap_err().to_string();
        assert!(refused(&link).contains("symbolic link"), "{}", refused(&link));
        assert!(refused(dir.path()).contains("not a regular file"), "{}", refused(dir.path()));
        let big = dir.path().join("big.key");
        std::fs::write(&big, vec![b'A'; 5000]).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(refused(&big).contains("larger than"), "{}", refused(&big));
        assert!(LocalKeyProvider::from_file(&path).is_ok(), "the file itself still opens");
    }
}
