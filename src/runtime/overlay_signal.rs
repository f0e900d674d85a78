//! Signalling over the ring (DESIGN.md §5): the same Jingle offer/answer a friend gets over
//! XMPP, sent as an exact-mode ring datagram to a member who is not an XMPP friend. The
//! linker sees one more [`SignalTransport`]; the runtime task carries the bytes.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use brunet_compat::address::Address as RingAddress;
use tokio::sync::{mpsc, oneshot};
use xmpp_ext::jingle::Jingle;

use super::Cmd;
use crate::signal::xmpp::SignalTransport;
use crate::signal::{Address, IqFailure};

/// A ring member as a signalling address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OverlayPeer(pub RingAddress);

impl fmt::Display for OverlayPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for OverlayPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Address for OverlayPeer {
    /// A ring address is one node: the party is the address itself.
    type Party = OverlayPeer;
    fn party(&self) -> OverlayPeer {
        *self
    }
}

/// [`SignalTransport`] through the runtime's ring `ring`.
pub struct RingTransport {
    pub(super) ring: usize,
    pub(super) cmds: mpsc::Sender<Cmd>,
    /// How long the far end has to acknowledge (routing plus its linker).
    pub(super) timeout: Duration,
}

#[async_trait]
impl SignalTransport<OverlayPeer> for RingTransport {
    async fn request(&self, to: OverlayPeer, jingle: Jingle) -> Result<(), IqFailure> {
        let xml = jingle
            .to_xml()
            .map_err(|e| IqFailure::Other(e.to_string()))?
            .into_bytes();
        let (tx, rx) = oneshot::channel();
        let cmd = Cmd::SignalOut {
            ring: self.ring,
            to: to.0,
            xml,
            reply: tx,
        };
        self.cmds
            .send(cmd)
            .await
            .map_err(|_| IqFailure::ServiceUnavailable)?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(IqFailure::ServiceUnavailable),
            Err(_) => Err(IqFailure::Timeout),
        }
    }
}
