//! One link's driver task: owns its ICE agents (one per ICE generation), trickles candidates
//! through the signalling manager, moves the tunnel onto each new path and restarts ICE when the
//! tunnel reports the path stale.
//!
//! An ICE restart here is a fresh agent with fresh credentials announced in `transport-info`
//! (XEP-0176 §7.3): the old path keeps carrying traffic until the new one connects, so a restart
//! on a live link loses nothing (make before break), and the Noise session survives it
//! unchanged. Which connected generation carries the link, and the re-probing of relayed
//! links, is in [`path_choice`](super::path_choice).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use webrtc_ice::candidate::{Candidate as IceCandidate, CandidateType};
use webrtc_ice::state::ConnectionState;
use xmpp_ext::jingle::{Candidate, IceUdpTransport, Reason};
use xmpp_ext::record::NodeRecord;

use super::error::LinkError;
pub(super) use super::generation::Slot;
use super::ice::{self, IceConfig, PathHint, Servers};
use super::link::{Link, PathConn};
use super::shared::{DriverNote, Shared};
use super::tunnel::DownReason;

/// From the manager to a driver.
#[derive(Debug)]
pub(super) enum SigNote {
    /// The answer to our offer: the peer's verified record and its credentials.
    Answer(Box<NodeRecord>, IceUdpTransport),
    /// The peer's candidates, or new credentials (an ICE restart).
    Remote(IceUdpTransport),
    /// The session ended or gave way.
    Ended(String),
}

/// From a driver to the manager.
pub(super) enum ManagerNote {
    /// Our first credentials: offer (initiator) or answer (responder).
    Credentials(String, IceUdpTransport),
    /// Trickle.
    Trickle(String, IceUdpTransport),
    /// The link is up: hand it out.
    Ready(String, Box<Link>),
    /// The link failed before coming up, or ended: terminate the session.
    Failed(String, LinkError, Reason),
}

pub(super) struct Params {
    pub(super) sid: String,
    pub(super) peer: String,
    pub(super) controlling: bool,
    pub(super) servers: Arc<Servers>,
    pub(super) hint: PathHint,
    pub(super) ice: IceConfig,
    pub(super) setup_timeout: Duration,
    /// How often a relayed link looks for a direct path (zero: never).
    pub(super) reprobe: Duration,
}

pub(super) enum Ev {
    Candidate(u8, Option<Arc<dyn IceCandidate + Send + Sync>>),
    /// The controlled side stops holding a generation's credentials for more candidates.
    GatherDeadline(u8),
    State(u8, ConnectionState),
    Conn(u8, Result<PathConn, String>),
}

pub(super) struct Driver {
    pub(super) p: Params,
    pub(super) shared: Arc<Shared>,
    pub(super) link: Option<Link>,
    pub(super) to_mgr: mpsc::UnboundedSender<ManagerNote>,
    pub(super) slots: Vec<Slot>,
    pub(super) ev_tx: mpsc::UnboundedSender<EvBox>,
    /// Remote candidates by the ufrag they were sent with.
    pub(super) remote_cands: Vec<(String, Candidate)>,
    pub(super) relays_seen: bool,
    /// The peer's relay candidates: a path to one of them is relayed even when ICE learnt
    /// the address from a check before the candidate arrived (and calls it peer-reflexive).
    pub(super) remote_relays: HashSet<SocketAddr>,
    pub(super) up: bool,
    pub(super) restarts: u32,
    pub(super) candidates_sent: u32,
    /// The generation whose path carries the link.
    pub(super) active: Option<u8>,
    /// When a relayed link next looks for a direct path.
    pub(super) reprobe_at: Option<Instant>,
    /// The peer's credentials of generations closed (see `path_choice`).
    pub(super) retired: Vec<String>,
}

impl Driver {
    pub(super) fn new(
        p: Params,
        shared: Arc<Shared>,
        link: Link,
        to_mgr: mpsc::UnboundedSender<ManagerNote>,
    ) -> (Driver, mpsc::UnboundedReceiver<EvBox>) {
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        (
            Driver {
                p,
                shared,
                link: Some(link),
                to_mgr,
                slots: Vec::new(),
                ev_tx,
                remote_cands: Vec::new(),
                relays_seen: false,
                remote_relays: HashSet::new(),
                up: false,
                restarts: 0,
                candidates_sent: 0,
                active: None,
                reprobe_at: None,
                retired: Vec::new(),
            },
            ev_rx,
        )
    }

    /// Runs until the link fails or ends. `remote` is the offer a responder answers.
    pub(super) async fn run(
        mut self,
        mut ev_rx: mpsc::UnboundedReceiver<EvBox>,
        mut sig: mpsc::UnboundedReceiver<SigNote>,
        mut notes: mpsc::UnboundedReceiver<DriverNote>,
        remote: Option<IceUdpTransport>,
    ) {
        let deadline = Instant::now() + self.p.setup_timeout;
        if let Err(e) = self.new_generation(true, self.p.hint).await {
            return self.fail(LinkError::Ice(e), Reason::FailedTransport);
        }
        if let Some(t) = remote {
            self.on_remote(t).await;
        }
        loop {
            let setup = async {
                if self.up {
                    std::future::pending::<()>().await
                } else {
                    tokio::time::sleep_until(deadline).await
                }
            };
            let reprobe_at = self.reprobe_at;
            let reprobe = async move {
                match reprobe_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                Some(EvBox(ev)) = ev_rx.recv() => {
                    if let Some(err) = self.on_ev(ev).await {
                        return self.fail(err, Reason::ConnectivityError);
                    }
                }
                s = sig.recv() => match s {
                    Some(SigNote::Remote(t)) => self.on_remote(t).await,
                    Some(SigNote::Answer(record, t)) => {
                        self.shared.lock().tunnel.set_remote_static(record.keys().noise_bytes());
                        if let Some(l) = self.link.as_mut() {
                            l.record = *record;
                        }
                        self.on_remote(t).await;
                    }
                    Some(SigNote::Ended(why)) => {
                        // The peer's ICE gave up first: judge the path from what we saw.
                        let peer = self.p.peer.clone();
                        let e = match (self.up, why.split(':').next().unwrap_or_default()) {
                            (false, "ConnectivityError") if self.relays_seen => LinkError::IceFailed { peer },
                            (false, "ConnectivityError") => LinkError::NoDirectPath { peer },
                            // The peer refused our key or record.
                            (_, "SecurityError") => LinkError::Refused { peer, reason: why },
                            _ => LinkError::Signalling { peer, reason: why },
                        };
                        return self.stop(e, None).await;
                    }
                    None => return self.stop(LinkError::Closed, None).await,
                },
                Some(n) = notes.recv() => match n {
                    DriverNote::Up => {}
                    DriverNote::Stale => self.restart().await,
                    DriverNote::Followed(generation) => self.on_followed(generation),
                    DriverNote::Refused(reason) => {
                        let e = LinkError::Refused { peer: self.p.peer.clone(), reason };
                        return self.stop(e, Some(Reason::SecurityError)).await;
                    }
                    DriverNote::Down(why) => {
                        let (e, reason) = match (self.up, why) {
                            (_, DownReason::LocalClose | DownReason::PeerClosed(_)) => {
                                (LinkError::Closed, Reason::Success)
                            }
                            (true, _) => (LinkError::Closed, Reason::ConnectivityError),
                            // A path but no handshake: the keys do not match the records.
                            (false, _) => (
                                LinkError::Refused { peer: self.p.peer.clone(), reason: "Noise handshake failed on a working path: the peer's key may not match its record".into() },
                                Reason::SecurityError,
                            ),
                        };
                        return self.stop(e, Some(reason)).await;
                    }
                },
                _ = setup => {
                    let e = LinkError::Timeout { peer: self.p.peer.clone(), secs: self.p.setup_timeout.as_secs() };
                    return self.stop(e, Some(Reason::Timeout)).await;
                }
                _ = reprobe => self.reprobe().await,
            }
            if !self.up && self.shared.status().state == super::LinkState::Up {
                self.up = true;
                if let Some(link) = self.link.take() {
                    let _ = self
                        .to_mgr
                        .send(ManagerNote::Ready(self.p.sid.clone(), Box::new(link)));
                }
            }
            self.schedule_reprobe();
        }
    }

    fn fail(self, e: LinkError, reason: Reason) {
        let _ = self
            .to_mgr
            .send(ManagerNote::Failed(self.p.sid.clone(), e, reason));
        for s in self.slots {
            tokio::spawn(async move {
                let _ = s.agent.close().await;
            });
        }
    }

    async fn stop(self, e: LinkError, reason: Option<Reason>) {
        self.shared.close().await;
        match reason {
            Some(r) => self.fail(e, r),
            None => self.fail(e, Reason::Success),
        }
    }

    /// Handles an agent event; an error means the link failed before coming up.
    async fn on_ev(&mut self, ev: Ev) -> Option<LinkError> {
        match ev {
            Ev::Candidate(generation, Some(c)) => {
                self.relays_seen |= c.candidate_type() == CandidateType::Relay;
                self.candidates_sent += 1;
                let tcp = self.relay_over_tcp(c.as_ref());
                let mut jc = ice::to_jingle(c.as_ref(), generation, self.candidates_sent)?;
                if tcp {
                    jc.priority = ice::tcp_relay_priority(jc.priority);
                }
                let relay = c.candidate_type() == CandidateType::Relay;
                let s = self.slots.iter_mut().find(|s| s.generation == generation)?;
                if s.chosen {
                    // Gathered after a pair was chosen: never offered, never used.
                    ice::release(c);
                    return None;
                }
                if !s.announced {
                    s.held.push(jc);
                    // The relays are what the wait is for: once one is in, the others (UDP
                    // and TCP to the same servers) get a moment, not the whole wait, which a
                    // site whose UDP STUN/TURN never answer would otherwise always sit out.
                    if relay && !s.relay_held {
                        s.relay_held = true;
                        let tx = self.ev_tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(RELAY_SETTLE).await;
                            let _ = tx.send(EvBox(Ev::GatherDeadline(generation)));
                        });
                    }
                    return None;
                }
                let t = IceUdpTransport {
                    ufrag: Some(s.ufrag.clone()),
                    pwd: Some(s.pwd.clone()),
                    candidates: vec![jc],
                };
                let _ = self
                    .to_mgr
                    .send(ManagerNote::Trickle(self.p.sid.clone(), t));
            }
            // Gathering is complete, or the controlled side waited long enough.
            Ev::Candidate(generation, None) | Ev::GatherDeadline(generation) => {
                self.announce(generation);
            }
            Ev::State(generation, state) => {
                tracing::debug!(sid = %self.p.sid, generation, %state, "ICE state");
                let latest = self.slots.last().map(|s| s.generation) == Some(generation);
                if let Some(s) = self.slots.iter_mut().find(|s| s.generation == generation) {
                    s.failed |= state == ConnectionState::Failed;
                    s.lost = matches!(
                        state,
                        ConnectionState::Failed | ConnectionState::Disconnected
                    );
                }
                if state == ConnectionState::Failed && latest && !self.up {
                    return Some(if self.relays_seen {
                        LinkError::IceFailed {
                            peer: self.p.peer.clone(),
                        }
                    } else {
                        LinkError::NoDirectPath {
                            peer: self.p.peer.clone(),
                        }
                    });
                }
                if self.up {
                    self.on_lost(generation, state, latest).await;
                }
            }
            Ev::Conn(generation, Ok(conn)) => self.on_connected(generation, conn).await,
            Ev::Conn(generation, Err(e)) => {
                tracing::debug!(sid = %self.p.sid, generation, %e, "ICE connect ended");
            }
        }
        None
    }
}

/// How long the controlled side still holds its credentials after its first relay candidate.
const RELAY_SETTLE: Duration = Duration::from_millis(200);

/// An agent event, boxed so the channel type can stay private.
pub(super) struct EvBox(pub(super) Ev);
