//! One link's driver task: owns its ICE agents (one per ICE generation), trickles candidates
//! through the signalling manager, moves the tunnel onto each new path and restarts ICE when the
//! tunnel reports the path stale.
//!
//! An ICE restart here is a fresh agent with fresh credentials announced in `transport-info`
//! (XEP-0176 §7.3): the old path keeps carrying traffic until the new one connects, so a restart
//! on a live link loses nothing (make before break), and the Noise session survives it
//! unchanged.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use webrtc_ice::agent::Agent;
use webrtc_ice::candidate::{Candidate as IceCandidate, CandidateType};
use webrtc_ice::state::ConnectionState;
use xmpp_ext::jingle::{Candidate, IceUdpTransport, Reason};
use xmpp_ext::record::NodeRecord;

use super::error::LinkError;
use super::ice::{self, IceConfig, PathHint, Servers};
use super::link::{DriverNote, Link, PathConn, Shared};

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
}

struct Slot {
    generation: u8,
    agent: Arc<Agent>,
    ufrag: String,
    pwd: String,
    remote: Option<(String, String)>,
    connecting: bool,
    connected: bool,
    /// ICE gave up on this generation: a restart replaces it.
    failed: bool,
    _cancel: Option<mpsc::Sender<()>>,
    /// The link's first generation: its credentials go in the offer or answer.
    first: bool,
    /// Credentials sent to the peer (until then, candidates are held).
    announced: bool,
    held: Vec<Candidate>,
}

enum Ev {
    Candidate(u8, Option<Arc<dyn IceCandidate + Send + Sync>>),
    /// The controlled side stops holding a generation's credentials for more candidates.
    GatherDeadline(u8),
    State(u8, ConnectionState),
    Conn(u8, Result<PathConn, String>),
}

pub(super) struct Driver {
    p: Params,
    shared: Arc<Shared>,
    link: Option<Link>,
    to_mgr: mpsc::UnboundedSender<ManagerNote>,
    slots: Vec<Slot>,
    ev_tx: mpsc::UnboundedSender<EvBox>,
    /// Remote candidates by the ufrag they were sent with.
    remote_cands: Vec<(String, Candidate)>,
    relays_seen: bool,
    /// The peer's relay candidates: a path to one of them is relayed even when ICE learnt
    /// the address from a check before the candidate arrived (and calls it peer-reflexive).
    remote_relays: HashSet<SocketAddr>,
    up: bool,
    restarts: u32,
    candidates_sent: u32,
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
        if let Err(e) = self.new_generation(true).await {
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
                    DriverNote::Refused(reason) => {
                        let e = LinkError::Refused { peer: self.p.peer.clone(), reason };
                        return self.stop(e, Some(Reason::SecurityError)).await;
                    }
                    DriverNote::Down(why) => {
                        let (e, reason) = match (self.up, why == "closed") {
                            (_, true) => (LinkError::Closed, Reason::Success),
                            (true, false) => (LinkError::Closed, Reason::ConnectivityError),
                            // A path but no handshake: the keys do not match the records.
                            (false, false) => (
                                LinkError::Refused { peer: self.p.peer.clone(), reason: format!("Noise handshake failed ({why}): the peer's key may not match its record") },
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
            }
            if !self.up && self.shared.status().state == super::LinkState::Up {
                self.up = true;
                if let Some(link) = self.link.take() {
                    let _ = self
                        .to_mgr
                        .send(ManagerNote::Ready(self.p.sid.clone(), Box::new(link)));
                }
            }
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

    /// A fresh agent for the next ICE generation; announces its credentials.
    ///
    /// The controlling side announces at once and trickles. The controlled side holds its
    /// credentials until its candidates are gathered (or [`IceConfig::gather_wait`] passes)
    /// and sends them together: webrtc-ice takes a check from an address it has no candidate
    /// for as peer-reflexive, with a peer-reflexive priority and wait, even when it comes
    /// from a relay, so a controlling agent that learnt the peer's relays from its checks
    /// before their trickle could nominate a relayed pair as if it were direct.
    async fn new_generation(&mut self, first: bool) -> Result<(), String> {
        let generation = self
            .slots
            .last()
            .map_or(0, |s| s.generation.wrapping_add(1));
        let agent = ice::agent(
            &self.p.ice,
            &self.p.servers,
            self.p.controlling,
            self.p.hint,
        )
        .await
        .map_err(|e| e.to_string())?;
        let agent = Arc::new(agent);
        let tx = self.ev_tx.clone();
        agent.on_candidate(Box::new(move |c| {
            let _ = tx.send(EvBox(Ev::Candidate(generation, c)));
            Box::pin(async {})
        }));
        let tx = self.ev_tx.clone();
        agent.on_connection_state_change(Box::new(move |s| {
            let _ = tx.send(EvBox(Ev::State(generation, s)));
            Box::pin(async {})
        }));
        let (ufrag, pwd) = agent.get_local_user_credentials().await;
        agent.gather_candidates().map_err(|e| e.to_string())?;
        self.slots.push(Slot {
            generation,
            agent,
            ufrag,
            pwd,
            remote: None,
            connecting: false,
            connected: false,
            failed: false,
            _cancel: None,
            first,
            announced: false,
            held: Vec::new(),
        });
        if self.p.controlling {
            self.announce(generation);
        } else {
            let (tx, wait) = (self.ev_tx.clone(), self.p.ice.gather_wait);
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                let _ = tx.send(EvBox(Ev::GatherDeadline(generation)));
            });
        }
        Ok(())
    }

    /// Sends a generation's credentials with the candidates held so far (once).
    fn announce(&mut self, generation: u8) {
        let Some(s) = self
            .slots
            .iter_mut()
            .find(|s| s.generation == generation && !s.announced)
        else {
            return;
        };
        s.announced = true;
        let t = IceUdpTransport {
            ufrag: Some(s.ufrag.clone()),
            pwd: Some(s.pwd.clone()),
            candidates: std::mem::take(&mut s.held),
        };
        tracing::debug!(sid = %self.p.sid, generation, candidates = t.candidates.len(), "credentials out");
        let note = if s.first {
            ManagerNote::Credentials(self.p.sid.clone(), t)
        } else {
            ManagerNote::Trickle(self.p.sid.clone(), t)
        };
        let _ = self.to_mgr.send(note);
    }

    async fn restart(&mut self) {
        // A generation still trying is given its chance; a failed one is replaced.
        let pending = self.slots.last().is_some_and(|s| !s.connected && !s.failed);
        if pending {
            return;
        }
        self.restarts += 1;
        self.shared.set_restarts(self.restarts);
        tracing::info!(sid = %self.p.sid, peer = %self.p.peer, "path stale: restarting ICE");
        if let Err(e) = self.new_generation(false).await {
            tracing::warn!(%e, "ICE restart failed");
        }
    }

    async fn on_remote(&mut self, t: IceUdpTransport) {
        let (Some(ufrag), pwd) = (t.ufrag.clone(), t.pwd.clone()) else {
            return;
        };
        for c in &t.candidates {
            if c.kind == xmpp_ext::jingle::CandidateType::Relay {
                self.relays_seen = true;
                if self.remote_relays.insert(SocketAddr::new(c.ip, c.port)) {
                    self.shared.relabel_relayed(&self.remote_relays);
                }
            }
        }
        let known = self
            .slots
            .iter()
            .any(|s| s.remote.as_ref().is_some_and(|r| r.0 == ufrag));
        if !known {
            let Some(pwd) = pwd else { return };
            // New remote credentials: the answer to our restart, or the peer's own restart.
            let awaiting = self.slots.last().is_some_and(|s| s.remote.is_none());
            if !awaiting {
                self.restarts += 1;
                self.shared.set_restarts(self.restarts);
                if let Err(e) = self.new_generation(false).await {
                    tracing::warn!(%e, "ICE restart failed");
                    return;
                }
            }
            if let Some(s) = self.slots.last_mut() {
                s.remote = Some((ufrag.clone(), pwd));
            }
        }
        for c in t.candidates {
            self.remote_cands.push((ufrag.clone(), c));
        }
        self.feed_candidates();
        self.start_connecting();
    }

    fn feed_candidates(&mut self) {
        let cands = std::mem::take(&mut self.remote_cands);
        for (ufrag, c) in cands {
            match self
                .slots
                .iter()
                .find(|s| s.remote.as_ref().is_some_and(|r| r.0 == ufrag))
            {
                Some(s) => {
                    if let Some(ic) = ice::from_jingle(&c)
                        && let Err(e) = s.agent.add_remote_candidate(&ic)
                    {
                        tracing::debug!(%e, "remote candidate refused");
                    }
                }
                None => self.remote_cands.push((ufrag, c)),
            }
        }
    }

    fn start_connecting(&mut self) {
        let controlling = self.p.controlling;
        for s in self.slots.iter_mut().filter(|s| !s.connecting) {
            let Some((ru, rp)) = s.remote.clone() else {
                continue;
            };
            s.connecting = true;
            let (cancel, cancel_rx) = mpsc::channel(1);
            s._cancel = Some(cancel);
            let (agent, tx, generation) = (s.agent.clone(), self.ev_tx.clone(), s.generation);
            tokio::spawn(async move {
                let r = if controlling {
                    agent.dial(cancel_rx, ru, rp).await.map(|c| c as PathConn)
                } else {
                    agent.accept(cancel_rx, ru, rp).await.map(|c| c as PathConn)
                };
                let _ = tx.send(EvBox(Ev::Conn(generation, r.map_err(|e| e.to_string()))));
            });
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
                let s = self.slots.iter_mut().find(|s| s.generation == generation)?;
                if !s.announced {
                    s.held.push(jc);
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
                if state == ConnectionState::Failed
                    && let Some(s) = self.slots.iter_mut().find(|s| s.generation == generation)
                {
                    s.failed = true;
                }
                match state {
                    ConnectionState::Failed if latest && !self.up => {
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
                    ConnectionState::Failed | ConnectionState::Disconnected
                        if latest && self.up =>
                    {
                        self.restart().await;
                    }
                    _ => {}
                }
            }
            Ev::Conn(generation, Ok(conn)) => {
                let i = self.slots.iter().position(|s| s.generation == generation)?;
                self.slots[i].connected = true;
                let pair = self.slots[i].agent.get_selected_candidate_pair()?;
                let mut path = ice::path_of(&pair)?;
                path.over_tcp = self.relay_over_tcp(pair.local.as_ref());
                if self.remote_relays.contains(&path.remote) {
                    path.kind = ice::PathKind::TurnRelay;
                }
                tracing::info!(sid = %self.p.sid, peer = %self.p.peer, generation, kind = path.kind.as_str(),
                    local = %path.local, remote = %path.remote, over_tcp = path.over_tcp, "ICE connected");
                for p in self.shared.set_path(conn.clone(), path) {
                    let _ = conn.send(&p).await;
                }
                // Older generations are done once the new path carries the link.
                let old: Vec<Slot> = self.slots.drain(..i).collect();
                for s in old {
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        let _ = s.agent.close().await;
                    });
                }
            }
            Ev::Conn(generation, Err(e)) => {
                tracing::debug!(sid = %self.p.sid, generation, %e, "ICE connect ended");
            }
        }
        None
    }
}

impl Driver {
    /// Whether a local candidate is a relay reached through a TURN over TCP bridge.
    fn relay_over_tcp(&self, c: &(dyn IceCandidate + Send + Sync)) -> bool {
        c.candidate_type() == CandidateType::Relay
            && c.related_address()
                .is_some_and(|r| self.p.servers.over_tcp(r.port))
    }
}

/// An agent event, boxed so the channel type can stay private.
pub(super) struct EvBox(Ev);
