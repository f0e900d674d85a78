//! The runtime's links: one reader task and one writer task each, so a slow path never stalls
//! the runtime loop. Received datagrams come back as commands; sends queue per link and are
//! dropped (and counted) when the queue is full, as a congested UDP path would.

use std::time::Instant;

use brunet_compat::address::Address as RingAddress;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::{Cmd, Via};
use crate::link::{Link, LinkEvent, LinkSender, LinkState, LinkStatus};

/// Datagrams queued per link before new ones are dropped.
const QUEUE: usize = 512;

/// One live link.
pub(super) struct LinkEntry {
    pub ring: usize,
    pub peer: RingAddress,
    pub sid: String,
    pub via: Via,
    pub since: Instant,
    pub sender: LinkSender,
    out: mpsc::Sender<Vec<u8>>,
    pub dropped: u64,
    /// The peer's Ed25519 identity key (from its verified record).
    pub identity: [u8; 32],
    /// The peer's bare JID, when the link was signalled over XMPP.
    pub jid: Option<String>,
    /// Owned rings: the link waits for the peer's certificate.
    pub waiting: Option<Box<super::admission::Waiting>>,
    /// Owned rings: the peer's certificate, once it checked.
    pub cert: Option<xmpp_ext::cert::MemberCert>,
    /// The sequence of the peer's record (its start time): a higher one on a new link means
    /// the peer restarted, and this link is a dead incarnation's.
    pub record_seq: u64,
    /// Whether we told the peer ours.
    pub knock_told: bool,
}

impl LinkEntry {
    /// Starts the link's tasks; its datagrams and its end arrive on `cmds` under `id`.
    pub fn start(
        id: u64,
        ring: usize,
        via: Via,
        link: Link,
        peer: RingAddress,
        cmds: mpsc::Sender<Cmd>,
    ) -> LinkEntry {
        let sid = link.sid().to_owned();
        let identity = link.record().keys().identity_bytes();
        let record_seq = link.record().sequence();
        let jid = match &via {
            Via::Xmpp(j) => Some(j.to_bare().to_string()),
            Via::Ring | Via::Knock => None,
        };
        let (sender, rx) = link.split();
        // The datagram stream stays open while the sender lives; the end of a link is its
        // `Down` event (subscribed before the state is checked, so none is missed).
        let events = sender.events();
        let over = sender.status().state == LinkState::Down;
        tokio::spawn(async move {
            if !over {
                forward(id, rx, events, &cmds).await;
            }
            let _ = cmds.send(Cmd::LinkGone { link: id }).await;
        });
        let (out, mut queue) = mpsc::channel::<Vec<u8>>(QUEUE);
        let writer = sender.clone();
        tokio::spawn(async move {
            while let Some(bytes) = queue.recv().await {
                if let Err(e) = writer.send(&bytes).await {
                    tracing::debug!(%e, "ring datagram not sent");
                }
            }
        });
        LinkEntry {
            ring,
            peer,
            sid,
            via,
            since: Instant::now(),
            sender,
            out,
            dropped: 0,
            identity,
            jid,
            waiting: None,
            cert: None,
            record_seq,
            knock_told: false,
        }
    }

    /// Queues one datagram.
    pub fn send(&mut self, bytes: Vec<u8>) {
        if self.out.try_send(bytes).is_err() {
            self.dropped += 1;
        }
    }

    /// Path, RTT, counters.
    pub fn status(&self) -> LinkStatus {
        self.sender.status()
    }

    /// Closes the link in the background (the close message, then the signalling session).
    pub fn close(self) {
        let sender = self.sender;
        tokio::spawn(async move { sender.close().await });
    }

    /// Sends `last` straight away (not behind the queue), then closes the link.
    pub fn close_with(self, last: Vec<u8>) {
        let sender = self.sender;
        tokio::spawn(async move {
            if let Err(e) = sender.send(&last).await {
                tracing::debug!(%e, "last datagram not sent");
            }
            sender.close().await
        });
    }
}

/// Passes a link's datagrams to the runtime until the link is down.
async fn forward(
    id: u64,
    mut rx: mpsc::Receiver<Vec<u8>>,
    mut events: tokio::sync::broadcast::Receiver<LinkEvent>,
    cmds: &mpsc::Sender<Cmd>,
) {
    loop {
        tokio::select! {
            d = rx.recv() => match d {
                Some(bytes) => {
                    if cmds.send(Cmd::LinkData { link: id, bytes }).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            e = events.recv() => match e {
                Ok(LinkEvent::Down(_)) | Err(RecvError::Closed) => return,
                _ => {}
            },
        }
    }
}
