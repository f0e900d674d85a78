//! The sidecar of a partial file (`PATH.part.json`): which chunks are written, so the same
//! command resumes a fetch, and a sidecar that does not match its file starts it over.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::CHUNK;
use crate::proto::Hash;

/// The sidecar of a partial file: which chunks are written.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Sidecar {
    sha256: String,
    size: u64,
    chunk: u64,
    /// Chunk index ranges `[start, end)`, sorted.
    done: Vec<(u64, u64)>,
}

impl Sidecar {
    pub(super) fn from_bits(hash: &Hash, size: u64, bits: &[bool]) -> Sidecar {
        let mut done = Vec::new();
        let mut i = 0;
        while i < bits.len() {
            if bits[i] {
                let start = i;
                while i < bits.len() && bits[i] {
                    i += 1;
                }
                done.push((start as u64, i as u64));
            } else {
                i += 1;
            }
        }
        Sidecar {
            sha256: hex::encode(hash),
            size,
            chunk: CHUNK,
            done,
        }
    }

    /// The done-bits for `n` chunks, if this sidecar is for this file and sane.
    fn bits(&self, hash: &Hash, size: u64, n: u64) -> Option<Vec<bool>> {
        if self.sha256 != hex::encode(hash) || self.size != size || self.chunk != CHUNK {
            return None;
        }
        let mut bits = vec![false; usize::try_from(n).ok()?];
        for &(s, e) in &self.done {
            if s >= e || e > n {
                return None;
            }
            for b in &mut bits[s as usize..e as usize] {
                *b = true;
            }
        }
        Some(bits)
    }

    pub(super) fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        // Invariant: plain numbers and strings always serialise.
        std::fs::write(&tmp, serde_json::to_vec(self).expect("sidecar serialises"))?;
        std::fs::rename(&tmp, path)
    }
}

/// The chunks already written, from the sidecar; a fresh start when there is none or it is
/// for another file.
pub(super) fn resume_state(part: &Path, side: &Path, hash: &Hash, size: u64) -> Result<Vec<bool>> {
    let n = size.div_ceil(CHUNK);
    let fresh = vec![false; usize::try_from(n).context("file too large")?];
    let Ok(bytes) = std::fs::read(side) else {
        return Ok(fresh);
    };
    let part_len = std::fs::metadata(part).map(|m| m.len()).ok();
    let bits = serde_json::from_slice::<Sidecar>(&bytes)
        .ok()
        .and_then(|s| s.bits(hash, size, n));
    match (bits, part_len) {
        (Some(b), Some(len)) if len == size => Ok(b),
        _ => {
            eprintln!(
                "fileshare: {} does not match {}; starting over",
                side.display(),
                part.display()
            );
            let _ = std::fs::remove_file(part);
            Ok(fresh)
        }
    }
}

/// `path` with `suffix` added to its file name.
pub(super) fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_ranges_round_trip() {
        let bits = vec![true, true, false, true, false, false, true];
        let s = Sidecar::from_bits(&[3; 32], 7 * CHUNK, &bits);
        assert_eq!(s.done, vec![(0, 2), (3, 4), (6, 7)]);
        assert_eq!(s.bits(&[3; 32], 7 * CHUNK, 7), Some(bits));
        assert_eq!(s.bits(&[4; 32], 7 * CHUNK, 7), None);
        let bad = Sidecar {
            done: vec![(5, 9)],
            ..s
        };
        assert_eq!(bad.bits(&[3; 32], 7 * CHUNK, 7), None);
    }
}
