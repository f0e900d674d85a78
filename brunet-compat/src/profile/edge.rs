//! UDP edges: the id pairs of `Transport/UdpEdgeListener.cs`.
//!
//! Each side picks a random positive id for an edge; a datagram carries
//! `(sender's id, receiver's id)`, receiver 0 opening a new edge. The listener answers
//! EdgeClosed only for pairs among the last 32 it closed, so a scan or a reflected
//! datagram cannot make it talk. A datagram for a known edge from a new endpoint means the
//! peer's NAT mapping changed: Brunet re-homes the edge and tells the peer with
//! EdgeDataAnnounce (its code flags this as a hijack risk; this profile is plaintext and
//! unauthenticated anyway, see BRUNET.md §8).

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::address::Address;
use crate::ring::Time;
use crate::wire::EmitError;
use crate::wire::udp::{Control, UdpHeader};

/// Closed pairs remembered for EdgeClosed answers (Brunet: 32).
const CLOSED_MEMORY: usize = 32;
/// Edges kept at most: a flood of new-edge datagrams (from forged sources, say) cannot
/// grow the table past this; idle ones close after `unconnected_idle` anyway.
pub const MAX_EDGES: usize = 4096;

/// The responder's side of a link handshake on this edge (after `sys:link.Start`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Responding {
    /// Who started it.
    pub peer: Address,
    /// The connection type asked for.
    pub kind: String,
    /// The ReqRep id of the Start (a different one is a second Start: InProgress).
    pub start_id: i32,
}

/// One edge.
#[derive(Clone, Debug)]
pub struct Edge {
    /// Our id.
    pub id: i32,
    /// The peer's id; 0 until the peer answers an edge we opened.
    pub remote_id: i32,
    /// The peer's socket.
    pub addr: SocketAddr,
    /// We opened it.
    pub outbound: bool,
    /// When it was made.
    pub created: Time,
    /// When a datagram last arrived on it.
    pub last_in: Time,
    /// Set when the edge is closing: it is dropped at this time.
    pub close_at: Option<Time>,
    /// Link handshake state when we are the responder.
    pub responding: Option<Responding>,
}

/// What a datagram's ids mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Data on edge `id`, which now exists.
    Edge(i32),
    /// Data on edge `id`, whose peer moved from the old socket: tell it (EdgeDataAnnounce).
    Rehomed(i32),
    /// No such edge; `closed` when the pair was closed recently (answer EdgeClosed).
    Unknown {
        /// Answer EdgeClosed.
        closed: bool,
    },
}

/// All edges of a node.
#[derive(Clone, Debug, Default)]
pub struct Edges {
    edges: Vec<Edge>,
    closed: VecDeque<(i32, i32)>,
}

impl Edges {
    /// The edge with our id `id`.
    pub fn get(&self, id: i32) -> Option<&Edge> {
        self.edges.iter().find(|e| e.id == id)
    }

    pub(super) fn get_mut(&mut self, id: i32) -> Option<&mut Edge> {
        self.edges.iter_mut().find(|e| e.id == id)
    }

    /// Every edge.
    pub fn iter(&self) -> impl Iterator<Item = &Edge> {
        self.edges.iter()
    }

    /// True when `id` is free (not 0, not in use).
    pub(super) fn is_free(&self, id: i32) -> bool {
        id > 0 && self.get(id).is_none()
    }

    /// Opens an edge with our id `id` (checked free by the caller).
    pub(super) fn open(&mut self, id: i32, addr: SocketAddr, remote_id: i32, now: Time) {
        self.edges.push(Edge {
            id,
            remote_id,
            addr,
            outbound: remote_id == 0,
            created: now,
            last_in: now,
            close_at: None,
            responding: None,
        });
    }

    /// Classifies a data datagram's ids; `new_id` is used when it opens an edge.
    pub(super) fn accept(
        &mut self,
        now: Time,
        from: SocketAddr,
        h: UdpHeader,
        new_id: i32,
    ) -> Accepted {
        if h.is_new_edge() {
            // A resent first datagram belongs to the edge it opened.
            if let Some(e) = self
                .edges
                .iter_mut()
                .find(|e| !e.outbound && e.remote_id == h.sender && e.addr == from)
            {
                e.last_in = now;
                return Accepted::Edge(e.id);
            }
            // Ids are positive: a negative one could not be told from a control message.
            if h.sender <= 0 || self.edges.len() >= MAX_EDGES {
                return Accepted::Unknown { closed: false };
            }
            self.open(new_id, from, h.sender, now);
            return Accepted::Edge(new_id);
        }
        if h.sender <= 0 {
            return Accepted::Unknown { closed: false };
        }
        let closed = self.closed.contains(&(h.receiver, h.sender));
        let Some(e) = self.get_mut(h.receiver) else {
            return Accepted::Unknown { closed };
        };
        if e.remote_id == 0 && e.outbound {
            e.remote_id = h.sender;
        }
        if e.remote_id != h.sender {
            return Accepted::Unknown { closed: false };
        }
        e.last_in = now;
        if e.addr != from {
            e.addr = from;
            return Accepted::Rehomed(e.id);
        }
        Accepted::Edge(e.id)
    }

    /// The edge a control message (complemented receiver id) is for, if the ids match.
    pub(super) fn control_target(&mut self, now: Time, h: UdpHeader) -> Option<i32> {
        let id = h.control_target()?;
        let e = self.get_mut(id)?;
        (e.remote_id == h.sender || e.remote_id == 0).then(|| {
            e.last_in = now;
            id
        })
    }

    /// Forgets edge `id`, remembering its pair for EdgeClosed answers.
    pub(super) fn remove(&mut self, id: i32) -> Option<Edge> {
        let i = self.edges.iter().position(|e| e.id == id)?;
        let e = self.edges.swap_remove(i);
        if self.closed.len() == CLOSED_MEMORY {
            self.closed.pop_front();
        }
        self.closed.push_back((e.id, e.remote_id));
        Some(e)
    }

    /// The datagram carrying `payload` on edge `id`.
    pub(super) fn frame(&self, id: i32, payload: &[u8]) -> Option<(SocketAddr, Vec<u8>)> {
        let e = self.get(id)?;
        let mut out = Vec::with_capacity(8 + payload.len());
        UdpHeader {
            sender: e.id,
            receiver: e.remote_id,
        }
        .emit(&mut out);
        out.extend_from_slice(payload);
        Some((e.addr, out))
    }

    /// The datagram carrying control message `c` on edge `id`.
    pub(super) fn control(
        &self,
        id: i32,
        c: &Control,
    ) -> Option<Result<(SocketAddr, Vec<u8>), EmitError>> {
        let e = self.get(id)?;
        Some(control_datagram(e.id, e.remote_id, c).map(|d| (e.addr, d)))
    }

    /// The earliest closing deadline.
    pub(super) fn next_close(&self) -> Time {
        self.edges
            .iter()
            .filter_map(|e| e.close_at)
            .min()
            .unwrap_or(Time::NEVER)
    }
}

/// `sender | !receiver | control`.
pub(super) fn control_datagram(
    sender: i32,
    receiver: i32,
    c: &Control,
) -> Result<Vec<u8>, EmitError> {
    let mut out = Vec::with_capacity(12);
    UdpHeader::control(sender, receiver).emit(&mut out);
    c.emit(&mut out)?;
    Ok(out)
}
