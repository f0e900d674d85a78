//! The vocabulary of signalling: addresses, timing, outcomes of requests, and what the
//! [`Signaller`](super::Signaller) tells its caller.

use std::fmt;
use std::time::Duration;

use xmpp_ext::jingle::{IceUdpTransport, Jingle, Reason};
use xmpp_ext::record::NodeRecord;

/// Where signalling messages go: a full JID, or an overlay address on the ring.
pub trait Address: Clone + Ord + fmt::Display + fmt::Debug {
    /// The party behind the address (a bare JID for a full JID): two addresses of one party
    /// may race each other with offers, which the tie-break settles.
    type Party: Clone + Ord + fmt::Debug;
    /// The party.
    fn party(&self) -> Self::Party;
}

/// Timing of signalling.
#[derive(Debug, Clone)]
pub struct SignalConfig {
    /// How long an offer may wait for `session-accept` after it was acknowledged.
    pub accept_timeout: Duration,
    /// A `transport-info` of an accepted session that got no answer (the XMPP stream is
    /// down for a while, as after a NAT reboot) is sent again this many times, 1 s, 2 s, 4 s …
    /// later, before the session is given up: it may carry an ICE restart that the link
    /// needs to survive.
    pub transport_retries: u8,
}

impl Default for SignalConfig {
    fn default() -> Self {
        SignalConfig {
            accept_timeout: Duration::from_secs(20),
            transport_retries: 4,
        }
    }
}

/// How a request failed at the far end or on the way (XMPP stanza error conditions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IqFailure {
    /// The resource is gone or never ran chamber (`service-unavailable`,
    /// `recipient-unavailable`).
    ServiceUnavailable,
    /// No such resource or session (`item-not-found`).
    ItemNotFound,
    /// The peer is out of room for sessions (`resource-constraint`).
    ResourceConstraint,
    /// The peer's own simultaneous offer won the tie-break (`conflict` + `tie-break`).
    TieBreak,
    /// No answer in time: a ghost resource (STACK.md trap 5) or a dead stream.
    Timeout,
    /// Anything else, by condition name.
    Other(String),
}

/// How to answer an incoming request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An empty result.
    Ack,
    /// An error with this condition.
    Error(IqFailure),
}

/// Identifies an outgoing request, so its acknowledgement can be fed back.
pub type Tag = u64;

/// What the application learns.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalEvent<A> {
    /// A peer offers a link; answer with [`Signaller::accept`] or [`Signaller::terminate`].
    Offer {
        /// Session id.
        sid: String,
        /// Who offers.
        from: A,
        /// Their record, unverified.
        record: NodeRecord,
        /// Their ICE credentials and first candidates.
        transport: IceUdpTransport,
    },
    /// Our offer was accepted.
    Answer {
        /// Session id.
        sid: String,
        /// Who answered (the resource that took the offer).
        from: A,
        /// Their record, unverified.
        record: NodeRecord,
        /// Their ICE credentials and first candidates.
        transport: IceUdpTransport,
    },
    /// More candidates, or new credentials (an ICE restart).
    Transport {
        /// Session id.
        sid: String,
        /// What was trickled.
        transport: IceUdpTransport,
    },
    /// Our offer gave way to the peer's simultaneous one (which arrives as an [`Self::Offer`]).
    Superseded {
        /// Our session id.
        sid: String,
    },
    /// The session is over.
    Ended {
        /// Session id.
        sid: String,
        /// Why.
        reason: Reason,
        /// The peer's text, or ours.
        text: Option<String>,
        /// Whether the peer ended it (else: we, or a failure here).
        remote: bool,
    },
}

/// What the machine wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalOutput<A> {
    /// Send this request; report its fate with [`Signaller::handle_ack`].
    Send {
        /// Destination.
        to: A,
        /// Payload.
        jingle: Jingle,
        /// Request id.
        tag: Tag,
    },
    /// Tell the application.
    Event(SignalEvent<A>),
}
