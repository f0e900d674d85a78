//! ICE generations of a link's driver: each is a fresh agent with its own credentials (the
//! first answers the offer; later ones are ICE restarts), its candidates trickled or, on the
//! controlled side, held and sent with the credentials.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;
use webrtc_ice::agent::Agent;
use webrtc_ice::candidate::{Candidate as IceCandidate, CandidateType};
use xmpp_ext::jingle::{Candidate, IceUdpTransport};

use super::driver::{Driver, Ev, EvBox, ManagerNote};
use super::ice;
use super::link::PathConn;

pub(super) struct Slot {
    pub(super) generation: u8,
    pub(super) agent: Arc<Agent>,
    pub(super) ufrag: String,
    pub(super) pwd: String,
    pub(super) remote: Option<(String, String)>,
    pub(super) connecting: bool,
    pub(super) connected: bool,
    /// ICE gave up on this generation: a restart replaces it.
    pub(super) failed: bool,
    /// ICE reports its pair disconnected or failed (a disconnected pair may come back).
    pub(super) lost: bool,
    /// Started to look for a direct path while a relay carries the link: kept only if it
    /// finds one.
    pub(super) reprobe: bool,
    pub(super) _cancel: Option<mpsc::Sender<()>>,
    /// The link's first generation: its credentials go in the offer or answer.
    pub(super) first: bool,
    /// Credentials sent to the peer (until then, candidates are held).
    pub(super) announced: bool,
    pub(super) held: Vec<Candidate>,
    /// A relay candidate is among those held.
    pub(super) relay_held: bool,
    /// Its pair carries the link: the other local candidates are released, late ones too.
    pub(super) chosen: bool,
}

impl Driver {
    /// A fresh agent for the next ICE generation; announces its credentials.
    ///
    /// The controlling side announces at once and trickles. The controlled side holds its
    /// credentials until its candidates are gathered (or [`IceConfig::gather_wait`] passes)
    /// and sends them together: webrtc-ice takes a check from an address it has no candidate
    /// for as peer-reflexive, with a peer-reflexive priority and wait, even when it comes
    /// from a relay, so a controlling agent that learnt the peer's relays from its checks
    /// before their trickle could nominate a relayed pair as if it were direct.
    ///
    /// `hint` is the link's, but a re-probe gives direct pairs their wait whatever it says.
    pub(super) async fn new_generation(
        &mut self,
        first: bool,
        hint: super::ice::PathHint,
    ) -> Result<(), String> {
        let generation = self
            .slots
            .last()
            .map_or(0, |s| s.generation.wrapping_add(1));
        let agent = ice::agent(&self.p.ice, &self.p.servers, self.p.controlling, hint)
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
            lost: false,
            reprobe: false,
            _cancel: None,
            first,
            announced: false,
            held: Vec::new(),
            relay_held: false,
            chosen: false,
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
    pub(super) fn announce(&mut self, generation: u8) {
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

    pub(super) async fn restart(&mut self) {
        // A generation still trying is given its chance; a failed one is replaced.
        let pending = self.slots.last().is_some_and(|s| !s.connected && !s.failed);
        if pending {
            return;
        }
        self.restarts += 1;
        self.shared.set_restarts(self.restarts);
        tracing::info!(sid = %self.p.sid, peer = %self.p.peer, "path stale: restarting ICE");
        if let Err(e) = self.new_generation(false, self.p.hint).await {
            tracing::warn!(%e, "ICE restart failed");
        }
    }

    pub(super) async fn on_remote(&mut self, t: IceUdpTransport) {
        let (Some(ufrag), pwd) = (t.ufrag.clone(), t.pwd.clone()) else {
            return;
        };
        if self.retired(&ufrag) {
            return;
        }
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
                if let Err(e) = self.new_generation(false, self.p.hint).await {
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

    pub(super) fn feed_candidates(&mut self) {
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

    pub(super) fn start_connecting(&mut self) {
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

    /// Whether a local candidate is a relay reached through a TURN over TCP bridge.
    pub(super) fn relay_over_tcp(&self, c: &(dyn IceCandidate + Send + Sync)) -> bool {
        c.candidate_type() == CandidateType::Relay
            && c.related_address()
                .is_some_and(|r| self.p.servers.over_tcp(r.port))
    }
}
