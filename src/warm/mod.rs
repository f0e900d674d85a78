//! Warm restart: a node that stops and starts again rejoins its rings from a cache of the peers
//! it was linked to, before any XMPP server has answered (or while none can).
//!
//! Linked members tell each other the port of their knock socket and send each other beacons
//! through it, so each knows where the other's is heard from (through NATs, the mapping the
//! beacons keep open, which also outlives a restart of the process behind it). The cache
//! keeps those addresses, our own knock port and the STUN/TURN servers last offered. On start
//! the runtime knocks at the cached peers with the same Jingle offer a friend gets over XMPP
//! ([`KnockTransport`]); ICE finds the path and Noise with the ring's key proves both ends,
//! so a forged or stale cache entry costs one failed attempt and nothing else.
//!
//! - [`wire`]: the sealed knock datagram;
//! - [`socket`]: the socket, its resends and its replay filter;
//! - [`cache`]: the file.
#![warn(missing_docs)]

pub mod cache;
pub mod socket;
pub mod wire;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use brunet_compat::address::Address as RingAddress;
use xmpp_ext::jingle::Jingle;

use crate::signal::xmpp::SignalTransport;
use crate::signal::{Address, IqFailure};
pub use cache::PeerCache;
pub use socket::{KnockCounters, KnockIn, KnockSocket};

/// A ring member at one address of its knock socket: a signalling address. The party is the
/// member, so a link attempt tries its addresses one after the other.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KnockPeer {
    /// The member.
    pub addr: RingAddress,
    /// Where its knock socket was heard from.
    pub at: SocketAddr,
}

impl fmt::Display for KnockPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.addr, self.at)
    }
}

impl fmt::Debug for KnockPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Address for KnockPeer {
    type Party = RingAddress;
    fn party(&self) -> RingAddress {
        self.addr
    }
}

/// Signalling through the knock socket, for one ring.
pub struct KnockTransport {
    /// The ring's index at the socket.
    pub ring: usize,
    /// The socket.
    pub socket: Arc<KnockSocket>,
}

#[async_trait]
impl SignalTransport<KnockPeer> for KnockTransport {
    async fn request(&self, to: KnockPeer, jingle: Jingle) -> Result<(), IqFailure> {
        let xml = jingle
            .to_xml()
            .map_err(|e| IqFailure::Other(e.to_string()))?
            .into_bytes();
        self.socket.request(self.ring, to.at, xml).await
    }
}
