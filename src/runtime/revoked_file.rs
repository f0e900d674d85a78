//! Revocations kept on disk, per ring, so a node that restarts refuses a revoked member from
//! its first link instead of after its first DHT read. The file is no authority: every
//! revocation in it is checked against the ring owner again when loaded, and one removed
//! from it comes back from the ring's DHT and broadcasts. One JSON file, 0600.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Revocations per ring id (hex), each hex-encoded as signed.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RevokedFile {
    rings: BTreeMap<String, Vec<String>>,
}

fn read(path: &Path) -> std::io::Result<RevokedFile> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RevokedFile::default()),
        Err(e) => Err(e),
    }
}

/// The revocations of ring `ring_hex` in `path` (none when the file does not exist).
pub fn load(path: &Path, ring_hex: &str) -> std::io::Result<Vec<Vec<u8>>> {
    let file = read(path)?;
    Ok(file
        .rings
        .get(ring_hex)
        .map(|v| v.iter().filter_map(|h| hex::decode(h).ok()).collect())
        .unwrap_or_default())
}

/// Adds `revocation` to ring `ring_hex` in `path`; writes nothing when it is there already.
/// A file that does not parse is started over (what it held could not be used anyway).
pub fn add(path: &Path, ring_hex: &str, revocation: &[u8]) -> std::io::Result<()> {
    let mut file = match read(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::Other => RevokedFile::default(),
        Err(e) => return Err(e),
    };
    let list = file.rings.entry(ring_hex.to_owned()).or_default();
    let h = hex::encode(revocation);
    if list.contains(&h) {
        return Ok(());
    }
    list.push(h);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
    crate::config::write_private_file(path, &text)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("chamber-revoked-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn kept_per_ring_once_each_and_private() {
        let path = scratch("kept").join("sub").join("revoked.json");
        assert!(load(&path, "aa").unwrap().is_empty());
        add(&path, "aa", b"one").unwrap();
        add(&path, "aa", b"one").unwrap();
        add(&path, "aa", b"two").unwrap();
        add(&path, "bb", b"three").unwrap();
        assert_eq!(
            load(&path, "aa").unwrap(),
            vec![b"one".to_vec(), b"two".to_vec()]
        );
        assert_eq!(load(&path, "bb").unwrap(), vec![b"three".to_vec()]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_damaged_file_is_an_error_then_started_over() {
        let dir = scratch("damaged");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("revoked.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load(&path, "aa").is_err());
        add(&path, "aa", b"x").unwrap();
        assert_eq!(load(&path, "aa").unwrap(), vec![b"x".to_vec()]);
    }
}
