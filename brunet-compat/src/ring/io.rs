//! What goes in and out of a [`super::Node`].

use std::time::Duration;

use crate::address::Address;

use super::msg::{DhtValue, Mode, Msg};
use super::table::{ConnType, LinkId, LinkKind};
use super::time::Time;

/// Something that happened outside the node.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A link to `peer` is up (after the runtime's signalling, ICE and handshake).
    LinkUp {
        /// The runtime's id for it.
        link: LinkId,
        /// Who is at the other end (authenticated by the runtime).
        peer: Address,
        /// Direct, or relayed by the runtime (TURN).
        kind: LinkKind,
        /// Round-trip time, when measured.
        rtt: Option<Duration>,
        /// The runtime made this link on its own (a friend, a bootstrap): a leaf.
        leaf: bool,
    },
    /// The link is gone (closed, or silent too long).
    LinkDown {
        /// Which.
        link: LinkId,
    },
    /// The runtime could not link to `peer` directly (after [`Event::LinkWanted`]).
    LinkFailed {
        /// Who.
        peer: Address,
    },
    /// A new round-trip measurement.
    LinkRtt {
        /// Which link.
        link: LinkId,
        /// The measurement.
        rtt: Duration,
    },
    /// A message arrived on a link.
    Receive {
        /// The link.
        link: LinkId,
        /// The message, already decoded (see [`super::codec`] for bytes).
        msg: Msg,
    },
    /// Bytes arrived on a link; malformed ones are dropped and counted.
    ReceiveBytes {
        /// The link.
        link: LinkId,
        /// The encoded message.
        bytes: Vec<u8>,
    },
    /// A deadline passed (spurious calls are no-ops).
    Timeout,
}

/// A message to send on a link.
#[derive(Clone, Debug, PartialEq)]
pub struct Transmit {
    /// The link.
    pub link: LinkId,
    /// What to send ([`super::codec::encode`] gives the bytes).
    pub msg: Msg,
}

/// Names a request the caller started (lookup, DHT put/get/remove).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u32);

/// Something the caller should know or do.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Please link to `peer` (signalling it over the ring if need be); answer with
    /// [`Input::LinkUp`] or [`Input::LinkFailed`].
    LinkWanted {
        /// Whom.
        peer: Address,
        /// Why (empty: the peer asked for it).
        reasons: ConnType,
        /// A node linked to `peer` that passes signalling on while routing cannot reach it
        /// (the leaf a joining node's connect-to-me named).
        via: Option<Address>,
    },
    /// Please close this link; the core has already forgotten it.
    CloseLink {
        /// Which.
        link: LinkId,
    },
    /// An application datagram arrived.
    Deliver {
        /// Sender.
        src: Address,
        /// Destination it was addressed to.
        dst: Address,
        /// Delivery mode used.
        mode: Mode,
        /// Hops it took.
        hops: u16,
        /// The data.
        data: Vec<u8>,
    },
    /// A broadcast reached us.
    Broadcast {
        /// Originator.
        src: Address,
        /// Hops it took.
        hops: u16,
        /// The data.
        data: Vec<u8>,
    },
    /// A lookup finished.
    LookupDone {
        /// Which.
        id: RequestId,
        /// The node that answered and the hops the request took; `None` after all
        /// attempts timed out.
        result: Option<(Address, u16)>,
        /// Attempts used.
        attempts: u32,
    },
    /// A DHT put finished.
    DhtPutDone {
        /// Which.
        id: RequestId,
        /// Stored at the owner (and pushed to its replicas).
        ok: bool,
    },
    /// A DHT get finished.
    DhtGetDone {
        /// Which.
        id: RequestId,
        /// The values, or `None` when no node answered.
        values: Option<Vec<DhtValue>>,
    },
    /// A DHT remove finished.
    DhtRemoveDone {
        /// Which.
        id: RequestId,
        /// The value was found and removed.
        ok: bool,
    },
    /// The ring-consistency check flipped.
    RingState {
        /// Both ring neighbours are linked and agree that nobody sits between.
        connected: bool,
    },
    /// A two-hop relay edge to `peer` through `via` is up.
    RelayUp {
        /// Far end.
        peer: Address,
        /// Forwarder.
        via: Address,
    },
    /// The relay edge to `peer` is gone.
    RelayDown {
        /// Far end.
        peer: Address,
    },
}

/// What [`super::Node::poll_output`] returns; draining ends on `Timeout`.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send this.
    Transmit(Transmit),
    /// Act on this.
    Event(Event),
    /// Nothing more now; call [`super::Node::handle_input`] with [`Input::Timeout`] at
    /// this time at the latest ([`Time::NEVER`] when nothing is armed).
    Timeout(Time),
}
