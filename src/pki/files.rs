//! Writing the CA's and the operator's key material: private folders, and
//! files created with their final mode from the start.

use std::io::Write as _;
use std::path::Path;

use super::PkiError;

/// Makes `dir` (and its parents) 0700 if it is not there yet: it will hold keys.
pub(super) fn make_private_dir(dir: &Path) -> Result<(), PkiError> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| PkiError::Write {
            path: dir.to_owned(),
            source,
        })
}

/// Writes a file that must not exist yet, created with `mode` from the start
/// (a key is never readable by others, not even for a moment).
///
/// # Errors
/// When the file exists or cannot be written.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let err = |source| PkiError::Write {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)
}
