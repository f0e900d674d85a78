//! What a [`Tunnel`](super::Tunnel) tells its caller: its role, events, outputs, errors and
//! counters.

use std::net::SocketAddr;
use std::time::Duration;

use super::handshake::HandshakeError;

/// Which end of the handshake we are (the Jingle initiator is the Noise initiator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends message 1.
    Initiator,
    /// Answers it.
    Responder,
}

/// Why a link went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// Nothing heard for [`TunnelConfig::dead_after`](super::TunnelConfig::dead_after).
    Silence,
    /// The peer sent a close message (with its reason code).
    PeerClosed(u8),
    /// No handshake completed within [`TunnelConfig::handshake_timeout`](super::TunnelConfig::handshake_timeout).
    HandshakeTimeout,
    /// We closed it.
    LocalClose,
}

/// Something the driver should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelEvent {
    /// The session is authenticated both ways and carries data.
    Up,
    /// A handshake message was refused (key mismatch with the record is the one to log loudly).
    Refused(HandshakeError),
    /// The sending key moved to the next epoch.
    Rekeyed,
    /// The peer sees our packets coming from this address.
    Observed(SocketAddr),
    /// A ping was answered after this long.
    Rtt(Duration),
    /// We keep sending but hear nothing: restart ICE.
    PathStale,
    /// The link is down.
    Down(DownReason),
}

/// Why [`Tunnel::encapsulate`](super::Tunnel::encapsulate) did not produce a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No session yet, or the link is down.
    #[error("the link is not up")]
    NotUp,
    /// The caller's buffer cannot hold the packet.
    #[error("buffer too small: need {0} bytes")]
    BufferTooSmall(usize),
    /// The send counter is exhausted (never in practice: rekeying resets nothing, 2^64 − 2).
    #[error("counter exhausted")]
    Exhausted,
}

/// What [`Tunnel::decapsulate`](super::Tunnel::decapsulate) produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Output<'a> {
    /// Nothing (consumed or dropped).
    Done,
    /// An application datagram, in the caller's buffer.
    Datagram(&'a [u8]),
    /// A packet to send to the peer, in the caller's buffer.
    Transmit(&'a [u8]),
}

/// Counters for `chamber status` and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TunnelStats {
    /// Packets sent (all kinds).
    pub tx_packets: u64,
    /// Bytes sent on the wire.
    pub tx_bytes: u64,
    /// Packets accepted.
    pub rx_packets: u64,
    /// Bytes accepted on the wire.
    pub rx_bytes: u64,
    /// Application datagrams delivered.
    pub rx_datagrams: u64,
    /// Dropped: not a link packet.
    pub dropped_malformed: u64,
    /// Dropped: did not authenticate, or for no session of ours.
    pub dropped_auth: u64,
    /// Dropped: a counter seen before or behind the window.
    pub dropped_replay: u64,
    /// Handshake messages refused (mismatched key, replay, forged).
    pub dropped_handshake: u64,
    /// Counters skipped by the peer and never received: packets lost on the path.
    pub lost: u64,
    /// Handshakes completed.
    pub handshakes: u64,
    /// Key epochs moved to, both directions.
    pub rekeys: u64,
}
