//! The connection table (`Connections/ConnectionTable.cs`) and the link locks
//! (`ConnectionLockManager`).
//!
//! As in Brunet, a peer may hold one connection per *main* type (leaf, structured, …),
//! each on its own edge, and a link handshake must hold the (peer, main type) lock from
//! the moment the peer's address is known until the connection is added, so two
//! handshakes between the same nodes cannot both succeed.

use std::collections::BTreeMap;

use crate::address::Address;
use crate::ring::Time;

/// Brunet's main connection types; subtypes (`structured.near`, …) share their main type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MainType {
    /// `leaf`: bootstrap links, not used for structured routing.
    Leaf,
    /// `structured*`: the ring.
    Structured,
    /// `unstructured*`.
    Unstructured,
    /// Anything else.
    Unknown,
}

impl MainType {
    /// The main type of a connection type string.
    pub fn of(kind: &str) -> MainType {
        let main = kind.split('.').next().unwrap_or_default();
        match main {
            "leaf" => MainType::Leaf,
            "structured" => MainType::Structured,
            "unstructured" => MainType::Unstructured,
            _ => MainType::Unknown,
        }
    }
}

/// One connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conn {
    /// The peer.
    pub addr: Address,
    /// Brunet's type string (`leaf`, `structured.near`, `structured.shortcut`, …).
    pub kind: String,
    /// Our id of the edge it runs on.
    pub edge: i32,
    /// When it was added.
    pub since: Time,
    /// The structured neighbours the peer last reported (its StatusMessage).
    pub status: Vec<Address>,
}

impl Conn {
    /// Its main type.
    pub fn main(&self) -> MainType {
        MainType::of(&self.kind)
    }
}

/// Who holds a (peer, main type) lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Holder {
    /// Our linker with this id (we initiate).
    Linker(u32),
    /// The handshake the peer started on this edge (we respond).
    Edge(i32),
}

/// Connections and locks.
#[derive(Clone, Debug, Default)]
pub struct Conns {
    conns: Vec<Conn>,
    locks: BTreeMap<(Address, MainType), Holder>,
}

impl Conns {
    /// Every connection.
    pub fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.conns.iter()
    }

    /// The connection of main type `main` with `addr`.
    pub fn get(&self, addr: &Address, main: MainType) -> Option<&Conn> {
        self.conns
            .iter()
            .find(|c| c.addr == *addr && c.main() == main)
    }

    pub(super) fn get_mut(&mut self, addr: &Address, main: MainType) -> Option<&mut Conn> {
        self.conns
            .iter_mut()
            .find(|c| c.addr == *addr && c.main() == main)
    }

    /// Any connection with `addr`, structured first (AH sends directly to it).
    pub fn any(&self, addr: &Address) -> Option<&Conn> {
        self.get(addr, MainType::Structured)
            .or_else(|| self.conns.iter().find(|c| c.addr == *addr))
    }

    /// The connection on edge `edge`.
    pub fn by_edge(&self, edge: i32) -> Option<&Conn> {
        self.conns.iter().find(|c| c.edge == edge)
    }

    pub(super) fn add(&mut self, c: Conn) {
        self.conns.push(c);
    }

    /// Removes every connection on edge `edge`.
    pub(super) fn remove_edge(&mut self, edge: i32) -> Vec<Conn> {
        let (gone, kept) = std::mem::take(&mut self.conns)
            .into_iter()
            .partition(|c| c.edge == edge);
        self.conns = kept;
        gone
    }

    /// Structured peers in address order.
    pub fn structured(&self) -> Vec<Address> {
        let mut v: Vec<Address> = self
            .conns
            .iter()
            .filter(|c| c.main() == MainType::Structured)
            .map(|c| c.addr)
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Structured peers on the left of `me` (increasing addresses), nearest first.
    pub fn left_of(&self, me: &Address) -> Vec<Address> {
        let mut v = self.structured();
        v.sort_by_key(|a| me.left_distance_to(a));
        v
    }

    /// Structured peers on the right of `me` (decreasing addresses), nearest first.
    pub fn right_of(&self, me: &Address) -> Vec<Address> {
        let mut v = self.structured();
        v.sort_by_key(|a| me.right_distance_to(a));
        v
    }

    /// Up to `k` structured peers around `target`, half on each side of it, nearest
    /// first. Brunet's `GetNearestTo` takes the `k` nearest by absolute distance, which in
    /// an unevenly filled ring can all sit on one side and hide the node the receiver is
    /// missing on the other; the list has the same form either way.
    pub fn around(&self, target: &Address, k: usize) -> Vec<Address> {
        let all: Vec<Address> = self
            .structured()
            .into_iter()
            .filter(|a| a != target)
            .collect();
        let mut left = all.clone();
        left.sort_by_key(|a| target.left_distance_to(a));
        let mut right = all;
        right.sort_by_key(|a| target.right_distance_to(a));
        let mut out = Vec::with_capacity(k);
        for (l, r) in left.iter().zip(&right) {
            for a in [l, r] {
                if out.len() < k && !out.contains(a) {
                    out.push(*a);
                }
            }
        }
        out
    }

    /// Takes the (addr, main) lock for `h`; on refusal, who holds it.
    pub(super) fn lock(&mut self, addr: Address, main: MainType, h: Holder) -> Result<(), Holder> {
        match self.locks.get(&(addr, main)) {
            Some(&other) if other != h => Err(other),
            _ => {
                self.locks.insert((addr, main), h);
                Ok(())
            }
        }
    }

    /// Releases the lock if `h` holds it.
    pub(super) fn unlock(&mut self, addr: Address, main: MainType, h: Holder) {
        if self.locks.get(&(addr, main)) == Some(&h) {
            self.locks.remove(&(addr, main));
        }
    }

    /// Releases every lock `h` holds.
    pub(super) fn unlock_all(&mut self, h: Holder) {
        self.locks.retain(|_, v| *v != h);
    }
}
