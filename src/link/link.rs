//! [`Link`]: what the runtime holds for one friend. The tunnel sits behind a short-held std
//! mutex (no await inside), so `send` encrypts on the caller's task and goes straight to the
//! socket: no channel hop on the hot path (see [`shared`](super::shared) for the tasks behind
//! it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use webrtc_util::Conn;
use xmpp_ext::record::NodeRecord;

use super::error::LinkError;
use super::ice::PathInfo;
use super::shared::Shared;
use super::tunnel::TunnelStats;

/// Largest datagram a link carries (IP fragments what the path's MTU does not take). Its
/// packet must fit the 8192 bytes webrtc-ice reads per UDP datagram (`RECEIVE_MTU`): anything
/// longer would arrive cut short and fail authentication, or end a relay candidate's reader.
pub const MAX_DATAGRAM: usize = PATH_MTU - 64;

/// The most a path delivers in one datagram (webrtc-ice's receive buffer).
pub(super) const PATH_MTU: usize = 8192;

/// A datagram path: an ICE connection, or anything else that sends to one peer.
pub type PathConn = Arc<dyn Conn + Send + Sync>;

/// Where a link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkState {
    /// ICE or the handshake is still running.
    Connecting,
    /// Authenticated and carrying data.
    Up,
    /// The path went quiet; ICE is restarting.
    Restarting,
    /// Over.
    Down,
}

/// What a link reports about itself (`chamber status`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LinkStatus {
    /// The state.
    pub state: LinkState,
    /// The path in use.
    pub path: Option<PathInfo>,
    /// Last measured round trip.
    pub rtt: Option<Duration>,
    /// The address the peer sees us at (peer reflection).
    pub observed_by_peer: Option<SocketAddr>,
    /// Tunnel counters (bytes, packets, drops, losses).
    pub stats: TunnelStats,
    /// ICE restarts so far.
    pub restarts: u32,
}

/// Something that happened to a link.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// Authenticated and up, on this path.
    Up(PathInfo),
    /// Moved to another path (ICE restart).
    PathChanged(PathInfo),
    /// The peer's key did not match its record.
    Refused(String),
    /// The path went quiet: restarting ICE.
    Stale,
    /// Gone, and why.
    Down(String),
}

/// One friend's link: send and receive datagrams, watch events and stats.
pub struct Link {
    pub(super) sid: String,
    pub(super) peer: String,
    pub(super) record: NodeRecord,
    pub(super) shared: Arc<Shared>,
    pub(super) rx: mpsc::Receiver<Vec<u8>>,
    pub(super) close: mpsc::UnboundedSender<()>,
}

impl Link {
    /// The signalling session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The peer's signalling address.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The peer's verified node record.
    pub fn record(&self) -> &NodeRecord {
        &self.record
    }

    /// Encrypts and sends one datagram on the current path.
    pub async fn send(&self, data: &[u8]) -> Result<(), LinkError> {
        super::sender::send_on(&self.shared, data).await
    }

    /// The next datagram; `None` once the link is over.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await
    }

    /// Events from now on.
    pub fn events(&self) -> broadcast::Receiver<LinkEvent> {
        self.shared.events.subscribe()
    }

    /// Path, RTT, counters.
    pub fn status(&self) -> LinkStatus {
        self.shared.status()
    }

    /// Sends the close message, ends the signalling session and stops.
    pub async fn close(self) {
        self.shared.close().await;
        let _ = self.close.send(());
    }
}

// A full datagram's packet fits what the path delivers.
const _: () = assert!(MAX_DATAGRAM + super::wire::DATA_OVERHEAD <= PATH_MTU);
