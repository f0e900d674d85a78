//! The connection table: one entry per peer, sorted by address.
//!
//! Unlike Brunet, a peer has one link and a *set* of reasons ([`ConnType`]) to keep it,
//! so "at most one connection per peer and type" holds by construction and trimming one
//! reason (say near) never drops a link still wanted as a shortcut. Each side keeps its
//! own reasons; a link lives while either side wants it.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

use crate::address::{Address, RingInt};

use super::msg::NeighbourInfo;
use super::time::Time;

/// Identifies a link; allocated by the runtime, opaque to the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u64);

/// How a link reaches its peer, as the runtime reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// A direct path (host or server-reflexive candidates).
    Direct,
    /// Through a relay the runtime chose (e.g. TURN). Never used as a relay forwarder.
    Relay,
}

/// A set of reasons to keep a link (Brunet's connection subtypes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ConnType(u8);

impl ConnType {
    /// No reason (the peer asked for the link).
    pub const NONE: ConnType = ConnType(0);
    /// A bootstrap link the runtime made (to a friend).
    pub const LEAF: ConnType = ConnType(1);
    /// A near neighbour.
    pub const NEAR: ConnType = ConnType(2);
    /// A Symphony shortcut we drew.
    pub const SHORTCUT: ConnType = ConnType(4);
    /// An on-demand link to a peer we talk to a lot.
    pub const ONDEMAND: ConnType = ConnType(8);
    /// A link to a relay forwarder.
    pub const OVERLAP: ConnType = ConnType(16);

    /// True when no reason is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when every reason of `other` is set.
    pub const fn contains(self, other: ConnType) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// True when some reason of `other` is set.
    pub const fn intersects(self, other: ConnType) -> bool {
        self.0 & other.0 != 0
    }

    /// The reasons of both.
    pub const fn union(self, other: ConnType) -> ConnType {
        ConnType(self.0 | other.0)
    }

    /// `self` without the reasons of `other`.
    pub const fn without(self, other: ConnType) -> ConnType {
        ConnType(self.0 & !other.0)
    }

    /// The raw bits (for codecs).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// From raw bits; unknown bits are dropped.
    pub const fn from_bits(b: u8) -> ConnType {
        ConnType(b & 31)
    }
}

impl BitOr for ConnType {
    type Output = ConnType;
    fn bitor(self, rhs: ConnType) -> ConnType {
        ConnType(self.0 | rhs.0)
    }
}

impl BitOrAssign for ConnType {
    fn bitor_assign(&mut self, rhs: ConnType) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for ConnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 5] = ["leaf", "near", "shortcut", "ondemand", "overlap"];
        let names: Vec<&str> = (0..5)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| NAMES[i])
            .collect();
        if names.is_empty() {
            write!(f, "none")
        } else {
            write!(f, "{}", names.join("|"))
        }
    }
}

/// How messages reach a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Over a link of the runtime.
    Link(LinkId, LinkKind),
    /// Two hops through a forwarder that has direct links to both ends.
    Relay {
        /// The forwarder.
        via: Address,
    },
}

/// One peer in the table.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Its address.
    pub addr: Address,
    /// How it is reached.
    pub path: Path,
    /// Our reasons to keep the link.
    pub types: ConnType,
    /// The peer still has a reason of its own (it said so last).
    pub remote_wants: bool,
    /// We told the peer we no longer want the link.
    pub(crate) sent_unwant: bool,
    /// The peer says it is part of the ring: routing may use it.
    pub routable: bool,
    /// When the link came up.
    pub since: Time,
    /// Last time application data went to or came from it (on-demand reaping).
    pub last_used: Time,
    /// Round-trip time in microseconds (0 when unknown).
    pub rtt_us: u32,
    /// The peer's announced nearest neighbours (for consistency and seeking).
    pub near: Vec<Address>,
    /// The peer's smoothed log2 size estimate (NaN until it says).
    pub size_log2: f32,
    /// The peer's announced near list holds us (it keeps us as a near neighbour).
    pub(crate) lists_me: bool,
    /// When a shortcut reason expires and is re-drawn.
    pub(crate) shortcut_until: Time,
}

impl Peer {
    /// True when the link is direct and not relayed by the runtime: usable as a relay
    /// forwarder (never relay over a relay).
    pub fn is_direct(&self) -> bool {
        matches!(self.path, Path::Link(_, LinkKind::Direct))
    }

    /// The link id, when reached over a runtime link.
    pub fn link(&self) -> Option<LinkId> {
        match self.path {
            Path::Link(l, _) => Some(l),
            Path::Relay { .. } => None,
        }
    }

    pub(crate) fn info(&self, now: Time) -> NeighbourInfo {
        NeighbourInfo {
            addr: self.addr,
            age_ms: u32::try_from(now.saturating_since(self.since).as_millis()).unwrap_or(u32::MAX),
            rtt_us: self.rtt_us,
        }
    }
}

/// Peers sorted by address, at most one per address.
///
/// Next to the peers, two compact parallel arrays keep the hot paths off the 150-byte
/// entries: the address as a [`RingInt`] (compared as two integers, where comparing
/// `[u8; 20]` costs a `memcmp` call), searched by bisection, and the link id, scanned
/// when a message arrives.
#[derive(Clone, Debug, Default)]
pub struct Table {
    keys: Vec<RingInt>,
    links: Vec<u64>,
    peers: Vec<Peer>,
    /// Bumped whenever a peer comes or goes (cached views compare it).
    version: u64,
}

/// `links` entry of a peer reached through a relay.
const NO_LINK: u64 = u64::MAX;

fn link_key(p: &Peer) -> u64 {
    p.link().map_or(NO_LINK, |l| l.0)
}

impl Table {
    /// All peers in address order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Peer> + DoubleEndedIterator {
        self.peers.iter()
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True when there is no peer.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    fn find(&self, addr: &Address) -> Result<usize, usize> {
        self.keys.binary_search(&addr.to_ring_int())
    }

    /// The entry for `addr`.
    pub fn get(&self, addr: &Address) -> Option<&Peer> {
        self.find(addr).ok().map(|i| &self.peers[i])
    }

    /// True when `addr` has an entry.
    pub fn contains(&self, addr: &Address) -> bool {
        self.find(addr).is_ok()
    }

    pub(crate) fn get_mut(&mut self, addr: &Address) -> Option<&mut Peer> {
        match self.find(addr) {
            Ok(i) => Some(&mut self.peers[i]),
            Err(_) => None,
        }
    }

    /// The peer on runtime link `link`.
    pub fn by_link(&self, link: LinkId) -> Option<&Peer> {
        let i = self.links.iter().position(|&l| l == link.0)?;
        Some(&self.peers[i])
    }

    /// Inserts `peer`, replacing an entry with the same address.
    pub(crate) fn insert(&mut self, peer: Peer) {
        match self.find(&peer.addr) {
            Ok(i) => {
                self.links[i] = link_key(&peer);
                self.peers[i] = peer;
            }
            Err(i) => {
                self.version += 1;
                self.keys.insert(i, peer.addr.to_ring_int());
                self.links.insert(i, link_key(&peer));
                self.peers.insert(i, peer);
            }
        }
    }

    /// Changes how `addr` is reached.
    pub(crate) fn set_path(&mut self, addr: &Address, path: Path) {
        if let Ok(i) = self.find(addr) {
            self.peers[i].path = path;
            self.links[i] = link_key(&self.peers[i]);
        }
    }

    pub(crate) fn remove(&mut self, addr: &Address) -> Option<Peer> {
        match self.find(addr) {
            Ok(i) => {
                self.version += 1;
                self.keys.remove(i);
                self.links.remove(i);
                Some(self.peers.remove(i))
            }
            Err(_) => None,
        }
    }

    /// Changes whenever a peer comes or goes.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// Index of the first peer with address ≥ `key` (may equal `len`).
    pub(crate) fn lower_bound(&self, key: RingInt) -> usize {
        self.keys.partition_point(|k| *k < key)
    }

    pub(crate) fn at(&self, i: usize) -> &Peer {
        &self.peers[i]
    }

    /// The key (address as an integer) of entry `i`.
    pub(crate) fn key_at(&self, i: usize) -> RingInt {
        self.keys[i]
    }

    /// Index of the nearest peer on the left of `me` (the first with a greater address,
    /// wrapping); meaningless on an empty table.
    fn left_start(&self, me: &Address) -> usize {
        let k = me.to_ring_int();
        self.keys.partition_point(|x| *x <= k)
    }

    /// Peers on the left of `me` (increasing addresses, wrapping), nearest first.
    pub fn left_of<'a>(&'a self, me: &Address) -> impl Iterator<Item = &'a Peer> + Clone + 'a {
        let n = self.peers.len();
        let start = self.left_start(me);
        (0..n).map(move |k| &self.peers[(start + k) % n])
    }

    /// Peers on the right of `me` (decreasing addresses, wrapping), nearest first.
    pub fn right_of<'a>(&'a self, me: &Address) -> impl Iterator<Item = &'a Peer> + Clone + 'a {
        let n = self.peers.len();
        let start = self.lower_bound(me.to_ring_int());
        (0..n).map(move |k| &self.peers[(start + n - 1 - k % n) % n])
    }

    /// Approximate heap bytes held by the table (for the memory-per-peer figure).
    pub fn heap_bytes(&self) -> usize {
        self.peers.capacity() * std::mem::size_of::<Peer>()
            + self.keys.capacity() * std::mem::size_of::<RingInt>()
            + self.links.capacity() * std::mem::size_of::<u64>()
            + self
                .peers
                .iter()
                .map(|p| p.near.capacity() * std::mem::size_of::<Address>())
                .sum::<usize>()
    }
}
