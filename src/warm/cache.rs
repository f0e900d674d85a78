//! The peer cache a warm restart starts from: per ring, the members we were linked to and the
//! addresses their knock sockets were last heard from; the port of our own knock socket (its
//! NAT mapping may outlive the process); and the STUN/TURN servers last offered, so ICE has
//! reflexive and relay candidates before any XMPP server answers. One JSON file, 0600.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use brunet_compat::address::Address as RingAddress;
use serde::{Deserialize, Serialize};

use crate::link::IceServer;

/// Peers kept per ring: the most recently heard.
pub const PEERS_PER_RING: usize = 32;
/// Addresses kept per peer.
const ADDRS_PER_PEER: usize = 4;
/// Servers offered longer ago than this are not used (TURN credentials expire; Prosody's and
/// ejabberd's default lifetimes are 24 h and 12 h).
pub const SERVERS_FRESH_MS: u64 = 6 * 3600 * 1000;

/// Why the cache could not be read or written (a warm restart is an optimisation: callers
/// log this and go on cold).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Reading or writing the file.
    #[error("peer cache {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not a cache of this version.
    #[error("peer cache {path} is unreadable ({reason}); it is rebuilt as the node runs")]
    Malformed {
        /// The file.
        path: String,
        /// The parse error.
        reason: String,
    },
}

/// One cached peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedPeer {
    /// Its ring address (`brunet:node:…`).
    pub address: String,
    /// Where its knock socket was heard from, freshest first.
    pub knock: Vec<SocketAddr>,
    /// When we last heard from it or were linked to it (Unix ms).
    pub seen_ms: u64,
}

/// A STUN or TURN server as offered (XEP-0215).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedServer {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TURN user name and password.
    #[serde(default)]
    pub turn: Option<(String, String)>,
    /// Over TCP.
    #[serde(default)]
    pub tcp: bool,
}

/// The whole cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerCache {
    /// The ring address of the node that wrote it: a cache is only used by the same node key
    /// (a node with a new key is a new node to its peers, and must be let in as one).
    #[serde(default)]
    pub node: String,
    /// The port our knock socket had.
    #[serde(default)]
    pub knock_port: u16,
    /// Per ring id (hex): its peers.
    #[serde(default)]
    pub rings: BTreeMap<String, Vec<CachedPeer>>,
    /// The servers last offered.
    #[serde(default)]
    pub servers: Vec<CachedServer>,
    /// When they were offered (Unix ms).
    #[serde(default)]
    pub servers_ms: u64,
}

impl PeerCache {
    /// Reads `path`; a missing file is an empty cache.
    pub fn load(path: &Path) -> Result<PeerCache, CacheError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PeerCache::default()),
            Err(source) => {
                return Err(CacheError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        serde_json::from_str(&text).map_err(|e| CacheError::Malformed {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Writes `path` whole (a temporary file renamed over it), readable by the owner only.
    pub fn save(&self, path: &Path) -> Result<(), CacheError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| CacheError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        let text = serde_json::to_vec_pretty(self).expect("the cache serialises");
        f.write_all(&text).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Notes that `peer` of ring `ring` was heard from `at` (when known) at `now_ms`.
    pub fn heard(&mut self, ring: &str, peer: &RingAddress, at: Option<SocketAddr>, now_ms: u64) {
        let peers = self.rings.entry(ring.to_owned()).or_default();
        let address = peer.to_string();
        let i = match peers.iter().position(|p| p.address == address) {
            Some(i) => i,
            None => {
                peers.push(CachedPeer {
                    address,
                    knock: Vec::new(),
                    seen_ms: now_ms,
                });
                peers.len() - 1
            }
        };
        let p = &mut peers[i];
        p.seen_ms = p.seen_ms.max(now_ms);
        if let Some(at) = at {
            p.knock.retain(|a| *a != at);
            p.knock.insert(0, at);
            p.knock.truncate(ADDRS_PER_PEER);
        }
        peers.sort_by_key(|p| std::cmp::Reverse(p.seen_ms));
        peers.truncate(PEERS_PER_RING);
    }

    /// Adds an address `peer` may be knocked at, after the ones it was heard from.
    pub fn may_be_at(&mut self, ring: &str, peer: &RingAddress, at: SocketAddr) {
        let address = peer.to_string();
        if let Some(p) = self
            .rings
            .get_mut(ring)
            .and_then(|ps| ps.iter_mut().find(|p| p.address == address))
            && !p.knock.contains(&at)
            && p.knock.len() < ADDRS_PER_PEER
        {
            p.knock.push(at);
        }
    }

    /// Where `peer` of `ring` may be knocked at, freshest first.
    pub fn knock_addrs(&self, ring: &str, peer: &RingAddress) -> Vec<SocketAddr> {
        let address = peer.to_string();
        self.rings
            .get(ring)
            .and_then(|ps| ps.iter().find(|p| p.address == address))
            .map(|p| p.knock.clone())
            .unwrap_or_default()
    }

    /// The peers of `ring` heard from since `since_ms`, freshest first, with the addresses to
    /// knock at.
    pub fn peers(&self, ring: &str, since_ms: u64) -> Vec<(RingAddress, Vec<SocketAddr>)> {
        self.rings
            .get(ring)
            .into_iter()
            .flatten()
            .filter(|p| p.seen_ms >= since_ms && !p.knock.is_empty())
            .filter_map(|p| Some((p.address.parse().ok()?, p.knock.clone())))
            .collect()
    }

    /// Keeps the servers just offered.
    pub fn set_servers(&mut self, servers: &[IceServer], now_ms: u64) {
        self.servers = servers
            .iter()
            .map(|s| CachedServer {
                host: s.host.clone(),
                port: s.port,
                turn: s.turn.clone(),
                tcp: s.tcp,
            })
            .collect();
        self.servers_ms = now_ms;
    }

    /// The cached servers, if fresh enough at `now_ms`.
    pub fn fresh_servers(&self, now_ms: u64) -> Vec<IceServer> {
        if now_ms.saturating_sub(self.servers_ms) > SERVERS_FRESH_MS {
            return Vec::new();
        }
        self.servers
            .iter()
            .map(|s| IceServer {
                host: s.host.clone(),
                port: s.port,
                turn: s.turn.clone(),
                tcp: s.tcp,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("chamber-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn addr(b: u8) -> RingAddress {
        RingAddress::from_bytes([b; 20])
    }

    #[test]
    fn peers_keep_their_freshest_addresses_and_survive_a_round_trip() {
        let mut c = PeerCache {
            knock_port: 40_000,
            ..Default::default()
        };
        let a: SocketAddr = "198.18.2.2:40000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        c.heard("r", &addr(1), Some(b), 10);
        c.heard("r", &addr(1), Some(a), 20);
        c.may_be_at("r", &addr(1), b);
        c.heard("r", &addr(2), None, 30);
        assert_eq!(c.peers("r", 0), vec![(addr(1), vec![a, b])]);
        assert!(c.peers("r", 21).is_empty(), "heard too long ago");
        let path = scratch("trip").join("peers.json");
        c.save(&path).unwrap();
        assert_eq!(PeerCache::load(&path).unwrap(), c);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_damaged_file_is_an_error_and_a_missing_one_empty() {
        let dir = scratch("damaged");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("peers.json");
        assert_eq!(PeerCache::load(&path).unwrap(), PeerCache::default());
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(
            PeerCache::load(&path),
            Err(CacheError::Malformed { .. })
        ));
    }

    #[test]
    fn stale_servers_are_not_used() {
        let mut c = PeerCache::default();
        let s = IceServer {
            host: "198.18.0.20".into(),
            port: 3478,
            turn: Some(("u".into(), "p".into())),
            tcp: false,
        };
        c.set_servers(std::slice::from_ref(&s), 1_000);
        assert_eq!(c.fresh_servers(2_000), vec![s]);
        assert!(c.fresh_servers(1_000 + SERVERS_FRESH_MS + 1).is_empty());
    }
}
