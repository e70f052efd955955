//! Files the library writes that hold patient data or what points at it: backups, audit exports.

use std::fs::File;
use std::path::Path;

/// Creates `path`, or truncates it, for output that holds patient data (a backup, an audit export):
/// readable and writable by its owner only (mode 0600), also when a regular file existed there with a
/// wider mode, since the process's umask usually makes new files world-readable. A regular file whose
/// mode cannot be narrowed (another user's) is an error: patient data is not written where others
/// may read it. A device or a pipe (`/dev/stdout`, `/dev/null`) is written as it is.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("export.ndjson");
/// let _file = austa_core::ops::create_private_file(&path)?;
/// # #[cfg(unix)] {
/// use std::os::unix::fs::PermissionsExt;
/// assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
/// # }
/// # Ok(()) }
/// ```
pub fn create_private_file(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = file.metadata()?;
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(file)
}
