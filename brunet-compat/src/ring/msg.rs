//! The ring's messages as typed Rust values.
//!
//! Link messages travel on one link between neighbours; [`Routed`] messages carry
//! Brunet's AH header (hops, TTL, source, destination, delivery mode) and are forwarded
//! hop by hop. [`super::codec`] is the one place where these become bytes; the simulator
//! passes them typed.

use crate::address::Address;

use super::table::ConnType;

/// Brunet's AH delivery modes (`Opts` in the AH header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Annealing forwarding; delivered at both nodes bracketing the destination.
    Default,
    /// Greedy; delivered wherever the message is when hops reach the TTL.
    Last,
    /// Annealing; delivered at every node on the path.
    Path,
    /// Greedy; delivered at the node closest to the destination only.
    Greedy,
    /// Like `Default`, one uphill step allowed.
    Annealing,
    /// Delivered only at the node whose address equals the destination.
    Exact,
}

impl Mode {
    /// Brunet's `Opts` value.
    pub const fn opts(self) -> u16 {
        match self {
            Mode::Default => 0,
            Mode::Last => 1,
            Mode::Path => 2,
            Mode::Greedy => 3,
            Mode::Annealing => 4,
            Mode::Exact => 5,
        }
    }

    /// The mode for an `Opts` value.
    pub const fn from_opts(v: u16) -> Option<Mode> {
        Some(match v {
            0 => Mode::Default,
            1 => Mode::Last,
            2 => Mode::Path,
            3 => Mode::Greedy,
            4 => Mode::Annealing,
            5 => Mode::Exact,
            _ => return None,
        })
    }
}

/// Brunet's 46-byte AH header, as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Hops taken so far; each forwarder adds one.
    pub hops: u16,
    /// Hop limit, enforced in every mode.
    pub ttl: u16,
    /// Originator.
    pub src: Address,
    /// Destination: an AH address, or a directional one (class 124).
    pub dst: Address,
    /// Delivery mode.
    pub mode: Mode,
}

/// A message routed over the ring.
#[derive(Clone, Debug, PartialEq)]
pub struct Routed {
    /// The AH header.
    pub hdr: Header,
    /// What it carries.
    pub payload: Payload,
}

/// A neighbour as described to a peer: address, link age and round-trip time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighbourInfo {
    /// The neighbour.
    pub addr: Address,
    /// Age of our link to it, milliseconds.
    pub age_ms: u32,
    /// Round-trip time of our link to it, microseconds (0 when unknown).
    pub rtt_us: u32,
}

/// One DHT value as stored and returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtValue {
    /// The bytes.
    pub value: Vec<u8>,
    /// Signature over key and value, checked by the validator hook.
    pub sig: Vec<u8>,
    /// Remaining lifetime, seconds.
    pub ttl_s: u32,
}

/// Payload of a routed message.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// Connect-to-me: "link to me, as `kind`" (Brunet's `sys:ctm.ConnectTo`).
    Ctm {
        /// Why the requester wants the link (near or shortcut).
        kind: ConnType,
        /// Requester's token, echoed in the reply.
        token: u32,
        /// Leaf that forwarded a joining node's request: replies go through it.
        via: Option<Address>,
        /// Requester's nearest neighbours.
        near: Vec<Address>,
    },
    /// Reply to [`Payload::Ctm`], routed exact to the requester.
    CtmReply {
        /// Echoed token.
        token: u32,
        /// Echoed kind.
        kind: ConnType,
        /// Responder's nearest neighbours.
        near: Vec<Address>,
    },
    /// Deliver `inner` to the direct neighbour `to` of the node this reaches
    /// (the return leg to a joining node that only its leaf can reach).
    Via {
        /// Final recipient, a direct neighbour of the destination.
        to: Address,
        /// What to hand over.
        inner: Box<Payload>,
    },
    /// Application datagram.
    App(Vec<u8>),
    /// A request of a [`Req`] kind, answered with [`Payload::Response`].
    Request {
        /// Requester's id.
        id: u32,
        /// What is asked.
        req: Req,
    },
    /// The answer to a request, routed exact to the requester.
    Response {
        /// Echoed id.
        id: u32,
        /// Hops the request took.
        hops: u16,
        /// The answer.
        rsp: Rsp,
    },
    /// "I could not link to you directly": the requester's direct neighbours.
    RelayOffer {
        /// Leaf to answer through while the requester is not routable yet.
        via: Option<Address>,
        /// Requester's direct, non-relay neighbours.
        neighbours: Vec<NeighbourInfo>,
    },
    /// Answer to [`Payload::RelayOffer`].
    RelayAnswer {
        /// The common neighbour picked as forwarder, if any.
        forwarder: Option<Address>,
        /// The answerer's direct neighbours, for building an overlap when none is common.
        neighbours: Vec<NeighbourInfo>,
    },
}

/// Requests.
#[derive(Clone, Debug, PartialEq)]
pub enum Req {
    /// Who is closest to this key? (Answered by the greedy owner.)
    Lookup,
    /// Store a value under the destination key.
    Put(DhtValue),
    /// Fetch the values under the destination key.
    Get,
    /// Remove a value under the destination key.
    Remove(Vec<u8>),
}

/// Responses.
#[derive(Clone, Debug, PartialEq)]
pub enum Rsp {
    /// The responder's own address is the answer (in the routed source).
    Lookup,
    /// Put result.
    Put(bool),
    /// Values found.
    Get(Vec<DhtValue>),
    /// Remove result.
    Remove(bool),
}

/// Everything that travels on a link.
#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    /// Sender's view, sent when a link comes up and whenever its near set changes
    /// (Brunet's `StatusMessage` plus what our link bookkeeping needs).
    Status {
        /// The sender is part of the ring and may be routed through.
        routable: bool,
        /// The sender still has a reason to keep this link.
        wants: bool,
        /// Sender's nearest neighbours, both sides.
        near: Vec<Address>,
        /// Sender's smoothed log2 of the network size.
        size_log2: f32,
    },
    /// The sender's reasons for the link came or went (it stays while either side wants it).
    Want(bool),
    /// The sender leaves the ring.
    Close,
    /// A routed message on one of its hops.
    Routed(Routed),
    /// Relay first leg: forwarder, please pass `inner` to your direct neighbour `to`.
    RelayFwd {
        /// Far end.
        to: Address,
        /// Message for it.
        inner: Box<Msg>,
    },
    /// Relay second leg: `inner` comes from `from` through this forwarder.
    RelayDel {
        /// Near end.
        from: Address,
        /// Message from it.
        inner: Box<Msg>,
    },
    /// From a forwarder: it can no longer reach `peer`; the relay edge is gone.
    RelayGone {
        /// The unreachable far end.
        peer: Address,
    },
    /// DHT replica push between neighbours: store these under `key`.
    DhtStore {
        /// Key.
        key: Address,
        /// Values.
        values: Vec<DhtValue>,
    },
    /// DHT replica removal between neighbours.
    DhtDrop {
        /// Key.
        key: Address,
        /// The value to drop.
        value: Vec<u8>,
    },
    /// Bounded broadcast: deliver, then cover the clockwise range (self, end).
    Broadcast {
        /// Originator.
        src: Address,
        /// Exclusive end of the range this recipient is responsible for.
        end: Address,
        /// Hops so far.
        hops: u16,
        /// Data.
        data: Vec<u8>,
    },
}

impl Msg {
    /// True for messages that keep the ring up rather than carry application data;
    /// the simulator counts them as maintenance.
    pub fn is_maintenance(&self) -> bool {
        match self {
            Msg::Status { .. } | Msg::Want(_) | Msg::Close | Msg::RelayGone { .. } => true,
            Msg::Routed(r) => matches!(
                r.payload,
                Payload::Ctm { .. }
                    | Payload::CtmReply { .. }
                    | Payload::Via { .. }
                    | Payload::RelayOffer { .. }
                    | Payload::RelayAnswer { .. }
            ),
            Msg::RelayFwd { inner, .. } | Msg::RelayDel { inner, .. } => inner.is_maintenance(),
            Msg::DhtStore { .. } | Msg::DhtDrop { .. } | Msg::Broadcast { .. } => false,
        }
    }
}
