//! [`LinkSender`]: the sending half of a [`Link`], for a runtime that reads every link on one
//! task each and sends from its own loop (the ring runtime holds many links at once).

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{broadcast, mpsc};

use super::error::LinkError;
use super::link::{Link, LinkEvent, LinkStatus, MAX_DATAGRAM};
use super::shared::Shared;
use super::tunnel::buffer_for;

/// Sends on a link, watches it, closes it; cheap to clone.
#[derive(Clone)]
pub struct LinkSender {
    pub(super) shared: Arc<Shared>,
    pub(super) close: mpsc::UnboundedSender<()>,
}

impl Link {
    /// Splits the link into its sending half and its stream of received datagrams (which
    /// ends when the link is over).
    pub fn split(self) -> (LinkSender, mpsc::Receiver<Vec<u8>>) {
        let sender = LinkSender {
            shared: self.shared,
            close: self.close,
        };
        (sender, self.rx)
    }
}

impl LinkSender {
    /// Encrypts and sends one datagram on the current path.
    pub async fn send(&self, data: &[u8]) -> Result<(), LinkError> {
        send_on(&self.shared, data).await
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
    pub async fn close(&self) {
        self.shared.close().await;
        let _ = self.close.send(());
    }
}

/// Encrypts `data` on the caller's task and hands it straight to the path.
pub(super) async fn send_on(shared: &Shared, data: &[u8]) -> Result<(), LinkError> {
    if data.len() > MAX_DATAGRAM {
        return Err(LinkError::TooLarge(data.len()));
    }
    let mut buf = vec![0u8; buffer_for(data.len())];
    let (conn, n) = {
        let mut c = shared.lock();
        let conn = c.conn.clone().ok_or(LinkError::NoPath)?;
        let n = c
            .tunnel
            .encapsulate(Instant::now(), data, &mut buf)
            .map_err(|_| LinkError::NoPath)?;
        // A send may start the probe clock (nothing heard back yet).
        if c.timer_late() {
            shared.wake.notify_one();
        }
        (conn, n)
    };
    conn.send(&buf[..n]).await.map_err(|_| LinkError::NoPath)?;
    Ok(())
}
