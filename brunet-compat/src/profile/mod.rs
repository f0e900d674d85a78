//! The Brunet UDP transport profile: a node that speaks the original Brunet protocol.
//!
//! Read `shared/design/BRUNET.md` §2–5 and `shared/vectors/brunet/NOTES.md` first. Where
//! [`crate::ring`] is chamber's own overlay (links made by the runtime, chamber messages in
//! Brunet's formats), this profile is Brunet itself, so that a node can take its place in
//! a ring of original (2011 C#) Brunet nodes: UDP edges with edge-id pairs, ReqRep with
//! retransmission, acks and a reply cache, ADR RPC, the `sys:link.*` protocol, connect-to-me
//! (`sys:ctm.ConnectTo`), AH routing in every delivery mode, the `f` forwarding wrapper and
//! peer reflection of `brunet.udp://` transport addresses. Every byte goes through
//! [`crate::wire`]. There is no security layer (Brunet's PeerSec is obsolete): the profile
//! is plaintext.
//!
//! Sans-IO, like [`crate::ring::Node`]: the caller owns the socket and the clock.
//!
//! ```text
//! Node::new(Config, address, now)
//! handle_input(now, Input::Datagram { from, data } | Input::Timeout)
//! echo(now, dst, text)   leave(now)
//! poll_output() -> Transmit { to, data } | Event | Timeout(at)    drain until Timeout
//! ```
//!
//! One concept per file: [`edge`] (ids, new edges, control messages), [`reqrep`]
//! (requests, retransmission, acks, reply cache), `dispatch` (ReqRep and RPC messages in
//! and out), [`conn`] (the connection table and
//! locks), `responder` (the RPC methods we answer), `linker` (the initiator side of
//! `sys:link.Start`), `routing` (AH and forwarding), `overlord` (leaf and near
//! maintenance, keepalive pings), [`node`] (inputs, outputs, timers).

pub mod conn;
mod dispatch;
pub mod edge;
mod linker;
pub mod node;
mod overlord;
pub mod reqrep;
mod responder;
mod routing;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use crate::address::Address;
use crate::wire::ta::TransportAddress;

pub use conn::{Conn, MainType};
pub use node::Node;

/// Everything a profile [`Node`] needs besides its address and the time.
#[derive(Clone, Debug)]
pub struct Config {
    /// Seed of the node's RNG (edge ids, request ids, jitter).
    pub seed: u64,
    /// The overlay name; links across realms are refused (Brunet's RealmMismatch).
    pub realm: String,
    /// Where we listen, as advertised before any peer has reflected our address.
    pub local_tas: Vec<TransportAddress>,
    /// Brunet's RemoteTAs: where to find the ring (UDP TAs with literal IPs are used).
    pub bootstrap: Vec<TransportAddress>,
    /// Retransmission timeout before any round trip is measured (Brunet: 5 s).
    pub reqrep_initial_timeout: Duration,
    /// Lower bound of the measured timeout, mean RTT + 6σ (Brunet: 2 s).
    pub reqrep_min_timeout: Duration,
    /// Resends of a request before it fails (Brunet: 5).
    pub reqrep_resends: u32,
    /// Replies kept so a repeated request gets the same answer (Brunet: 1000).
    pub reply_cache: usize,
    /// Period of the edge check (Brunet: 5 s).
    pub edge_check: Duration,
    /// A connection silent this long is pinged (Brunet: 15 s).
    pub ping_idle: Duration,
    /// An edge that never became a connection is closed after this long idle (Brunet: 30 s).
    pub unconnected_idle: Duration,
    /// First back-off of the leaf and near overlords (Brunet: 10 s).
    pub backoff_min: Duration,
    /// Longest back-off (Brunet: 60 s).
    pub backoff_max: Duration,
    /// Period of the status refresh with our nearest neighbours (not in Brunet, which
    /// only exchanges status when linking; Brunet nodes answer it all the same).
    pub status_refresh: Duration,
    /// Quiet time after a connection change before a surplus near link is trimmed.
    pub trim_quiet: Duration,
}

impl Config {
    /// Brunet's defaults for `realm`, listening at `listen`.
    pub fn new(realm: impl Into<String>, listen: SocketAddr, seed: u64) -> Config {
        Config {
            seed,
            realm: realm.into(),
            local_tas: vec![TransportAddress::udp_socket(listen)],
            bootstrap: Vec::new(),
            reqrep_initial_timeout: Duration::from_secs(5),
            reqrep_min_timeout: Duration::from_secs(2),
            reqrep_resends: 5,
            reply_cache: 1000,
            edge_check: Duration::from_secs(5),
            ping_idle: Duration::from_secs(15),
            unconnected_idle: Duration::from_secs(30),
            backoff_min: Duration::from_secs(10),
            backoff_max: Duration::from_secs(60),
            status_refresh: Duration::from_secs(30),
            trim_quiet: Duration::from_secs(30),
        }
    }
}

/// Something the caller should know.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A connection is up (`kind` is Brunet's type string, e.g. `structured.near`).
    Connected {
        /// The peer.
        peer: Address,
        /// Connection type.
        kind: String,
    },
    /// A connection is gone.
    Disconnected {
        /// The peer.
        peer: Address,
        /// Connection type.
        kind: String,
    },
    /// A peer told us how it sees our transport address (NAT reflection).
    Reflected {
        /// Our address as seen from outside.
        ta: TransportAddress,
    },
    /// The ring check flipped: both nearest neighbours are linked and list nobody between.
    RingState {
        /// Brunet's `IsConnected`.
        connected: bool,
    },
    /// The answer to [`Node::echo`].
    Echo {
        /// The token [`Node::echo`] returned.
        token: u32,
        /// The node that answered.
        from: Address,
        /// The value it echoed.
        value: String,
    },
    /// [`Node::echo`] got no answer.
    EchoFailed {
        /// The token [`Node::echo`] returned.
        token: u32,
    },
}

/// What [`Node::poll_output`] returns; draining ends on `Timeout`.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send `data` as one UDP datagram to `to`.
    Transmit {
        /// Destination.
        to: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
    /// Act on this.
    Event(Event),
    /// Call [`Node::handle_input`] with [`Input::Timeout`] at this time at the latest.
    Timeout(crate::ring::Time),
}

/// Something that happened outside the node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Input<'a> {
    /// A UDP datagram arrived.
    Datagram {
        /// Its source.
        from: SocketAddr,
        /// Its payload.
        data: &'a [u8],
    },
    /// A deadline passed (spurious calls are harmless).
    Timeout,
}

/// Counters of what the node dropped or did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams that did not decode.
    pub malformed: u64,
    /// Datagrams for edges we do not know (or with the wrong peer id).
    pub unknown_edge: u64,
    /// AH packets forwarded for others.
    pub forwarded: u64,
    /// AH packets delivered here.
    pub delivered: u64,
    /// AH packets with no way on (TTL, no neighbour).
    pub no_route: u64,
    /// Requests resent after a timeout.
    pub resent: u64,
    /// Repeated requests answered from the reply cache.
    pub cached_replies: u64,
}

/// Where a ReqRep message goes, and where the answer to an incoming request goes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Route {
    /// Directly on an edge (our local edge id).
    Edge(i32),
    /// AH-routed to `dst` with delivery mode `mode`.
    Ah {
        /// Destination.
        dst: Address,
        /// Brunet's `Opts`.
        mode: u16,
    },
    /// Through the forwarder `via` to `dst` (Brunet's `ForwardingSender`).
    Fwd {
        /// The forwarder.
        via: Address,
        /// The destination.
        dst: Address,
        /// Mode of the second leg.
        mode: u16,
    },
}
