//! The file store: one 0600 file per secret in a 0700 folder. Not encrypted (an encrypted file
//! would need a passphrase at every start, which a daemon cannot ask for); the protection is the
//! file mode, which is checked on every read so a loosened mode is refused, not used.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::KeystoreError;

pub(super) struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    pub(super) fn open(dir: PathBuf) -> Result<FileStore, KeystoreError> {
        crate::config::create_private_dir(&dir).map_err(|e| KeystoreError::File {
            path: dir.clone(),
            reason: format!("cannot create the folder: {e}"),
        })?;
        let store = FileStore { dir };
        store.check_mode(&store.dir, 0o077)?;
        Ok(store)
    }

    /// Keys become file names: hex keeps `/`, `@` and anything else out of the path.
    fn path(&self, key: &str) -> PathBuf {
        self.dir
            .join(format!("{}.secret", hex::encode(key.as_bytes())))
    }

    fn check_mode(&self, path: &std::path::Path, forbidden: u32) -> Result<(), KeystoreError> {
        let meta = std::fs::metadata(path).map_err(|e| KeystoreError::File {
            path: path.into(),
            reason: e.to_string(),
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & forbidden != 0 {
            return Err(KeystoreError::File {
                path: path.into(),
                reason: format!(
                    "mode {mode:o} lets other users read it; run `chmod go-rwx {}`",
                    path.display()
                ),
            });
        }
        Ok(())
    }

    pub(super) fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KeystoreError> {
        let path = self.path(key);
        match std::fs::read(&path) {
            Ok(bytes) => {
                self.check_mode(&path, 0o077)?;
                Ok(Some(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(KeystoreError::File {
                path,
                reason: e.to_string(),
            }),
        }
    }

    pub(super) fn set(&self, key: &str, value: &[u8]) -> Result<(), KeystoreError> {
        let path = self.path(key);
        crate::config::write_private_file(&path, value).map_err(|e| KeystoreError::File {
            path: path.clone(),
            reason: e.to_string(),
        })
    }

    pub(super) fn delete(&self, key: &str) -> Result<bool, KeystoreError> {
        let path = self.path(key);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(KeystoreError::File {
                path,
                reason: e.to_string(),
            }),
        }
    }
}
