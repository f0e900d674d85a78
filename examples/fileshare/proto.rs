//! What fileshare puts in the DHT and says on its streams (see the protocol in `main.rs`).
//! Everything read here comes from other members and is checked, never trusted: a bad record
//! is skipped, a bad request refused.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The stream service holders listen on.
pub const SERVICE: &str = "fileshare";
/// Magic opening every range request (protocol version 1).
pub const MAGIC: [u8; 4] = *b"FSR1";
/// Largest range one request may ask for.
pub const MAX_RANGE: u32 = 4 << 20;
/// Longest share name (bytes), so a record stays far below the DHT's 1 KB.
pub const MAX_NAME: usize = 200;
/// Listing keys: one per first hex digit of the hash, so one DHT answer stays small.
pub const SHARDS: usize = 16;
/// Longest refusal message a peer may send.
const MAX_MESSAGE: usize = 1024;

/// A request's size on the wire: magic, hash, offset, length.
pub const REQUEST_LEN: usize = 4 + 32 + 8 + 4;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The per-file key: its holders each write one [`Record`] there.
pub fn file_key(hash: &Hash) -> String {
    format!("fileshare/file/{}", hex::encode(hash))
}

/// The listing key for `hash` (one of [`SHARDS`]).
pub fn list_key(hash: &Hash) -> String {
    list_shard(usize::from(hash[0] >> 4))
}

/// The listing key of shard `i`.
pub fn list_shard(i: usize) -> String {
    format!("fileshare/list/{i:x}")
}

/// One holder's word on one file, stored (as JSON) under both the per-file key and its
/// listing key. The holder is part of the value because the DHT keeps one copy of equal
/// values whoever wrote them: without it, two holders of a file would overwrite each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The name the holder shares it under.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256, 64 hex digits.
    pub sha256: String,
    /// The holder's ring address (must be the value's writer).
    pub holder: String,
}

impl Record {
    /// The bytes stored in the DHT.
    pub fn encode(&self) -> Vec<u8> {
        // Invariant: a struct of strings and an integer always serialises.
        serde_json::to_vec(self).expect("a record serialises")
    }

    /// Parses a value read from the DHT written by `writer`; `None` unless well formed and
    /// written by the holder it names.
    pub fn decode(value: &[u8], writer: &str) -> Option<(Record, Hash)> {
        let r: Record = serde_json::from_slice(value).ok()?;
        let hash = parse_hash(&r.sha256)?;
        (r.holder == writer && !r.name.is_empty() && r.name.len() <= MAX_NAME).then_some((r, hash))
    }
}

/// 64 hex digits to a hash.
pub fn parse_hash(s: &str) -> Option<Hash> {
    let b = hex::decode(s).ok()?;
    b.try_into().ok()
}

/// A range request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Which file.
    pub hash: Hash,
    /// First byte.
    pub offset: u64,
    /// How many bytes (1 to [`MAX_RANGE`]).
    pub len: u32,
}

impl Request {
    /// `magic ‖ hash ‖ offset:u64 BE ‖ len:u32 BE`.
    pub fn emit(&self) -> [u8; REQUEST_LEN] {
        let mut b = [0u8; REQUEST_LEN];
        b[..4].copy_from_slice(&MAGIC);
        b[4..36].copy_from_slice(&self.hash);
        b[36..44].copy_from_slice(&self.offset.to_be_bytes());
        b[44..48].copy_from_slice(&self.len.to_be_bytes());
        b
    }

    /// Checks and parses one request; the error says why it was refused.
    pub fn parse(b: &[u8; REQUEST_LEN]) -> Result<Request, String> {
        if b[..4] != MAGIC {
            return Err("not a fileshare request (bad magic)".into());
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&b[4..36]);
        let mut off = [0u8; 8];
        off.copy_from_slice(&b[36..44]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&b[44..48]);
        let r = Request {
            hash,
            offset: u64::from_be_bytes(off),
            len: u32::from_be_bytes(len),
        };
        if r.len == 0 || r.len > MAX_RANGE {
            return Err(format!("a range must be 1 to {MAX_RANGE} bytes"));
        }
        Ok(r)
    }
}

/// The answer's first byte: the data follows.
pub const STATUS_OK: u8 = 0;
/// The answer's first byte: a refusal message follows (`len:u16 BE ‖ UTF-8`).
pub const STATUS_REFUSED: u8 = 1;

/// Writes a refusal.
pub async fn refuse(w: &mut (impl AsyncWrite + Unpin), why: &str) -> std::io::Result<()> {
    let m = &why.as_bytes()[..why.len().min(MAX_MESSAGE)];
    let mut b = vec![STATUS_REFUSED];
    // Invariant: MAX_MESSAGE fits a u16.
    b.extend_from_slice(&u16::try_from(m.len()).unwrap_or(0).to_be_bytes());
    b.extend_from_slice(m);
    w.write_all(&b).await
}

/// Reads an answer's status; `Err(message)` for a refusal. I/O errors (a broken stream) are
/// the outer error.
pub async fn read_status(r: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Result<(), String>> {
    match r.read_u8().await? {
        STATUS_OK => Ok(Ok(())),
        STATUS_REFUSED => {
            let n = usize::from(r.read_u16().await?).min(MAX_MESSAGE);
            let mut m = vec![0u8; n];
            r.read_exact(&mut m).await?;
            Ok(Err(String::from_utf8_lossy(&m).into_owned()))
        }
        s => Ok(Err(format!("protocol error: answer status {s}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_ones_are_refused() {
        let r = Request {
            hash: [7; 32],
            offset: 1 << 40,
            len: 65536,
        };
        assert_eq!(Request::parse(&r.emit()), Ok(r.clone()));
        let mut bad = r.emit();
        bad[0] = b'X';
        assert!(Request::parse(&bad).is_err());
        let zero = Request {
            len: 0,
            ..r.clone()
        }
        .emit();
        assert!(Request::parse(&zero).is_err());
        let huge = Request {
            len: MAX_RANGE + 1,
            ..r
        }
        .emit();
        assert!(Request::parse(&huge).is_err());
    }

    #[test]
    fn records_must_name_their_writer() {
        let r = Record {
            name: "a.bin".into(),
            size: 3,
            sha256: hex::encode([1u8; 32]),
            holder: "brunet:node:X".into(),
        };
        let v = r.encode();
        assert!(v.len() < 1024);
        assert_eq!(Record::decode(&v, "brunet:node:X"), Some((r, [1u8; 32])));
        assert_eq!(Record::decode(&v, "brunet:node:Y"), None);
        assert_eq!(Record::decode(b"{not json", "brunet:node:X"), None);
    }
}
