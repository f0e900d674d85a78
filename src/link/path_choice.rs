//! Which connected ICE generation carries a link, and re-probing relayed links for a direct
//! path (DESIGN.md §4: about once a minute).
//!
//! A generation that connects takes the link over, unless the link is healthy on its own path
//! and the new path is a relay too: then a re-probe of ours is closed (it found no direct
//! path), and a generation the peer started is kept on standby, taken over only if the peer's
//! packets arrive there (the peer restarted because it lost the old path). The controlling
//! side alone re-probes, so both ends never probe the same link at once.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use webrtc_ice::state::ConnectionState;

use super::driver::{Driver, Slot};
use super::ice::{self, PathHint, PathKind};
use super::link::{LinkState, PathConn};

/// How many retired remote ufrags are remembered, so late trickle for a generation already
/// closed is not taken for the peer's ICE restart.
const RETIRED: usize = 8;

impl Driver {
    /// A generation connected: move the link to its path, or not (see the module docs).
    pub(super) async fn on_connected(&mut self, generation: u8, conn: PathConn) {
        let Some(i) = self.slots.iter().position(|s| s.generation == generation) else {
            return;
        };
        self.slots[i].connected = true;
        self.slots[i].lost = false;
        let Some(pair) = self.slots[i].agent.get_selected_candidate_pair() else {
            return;
        };
        let Some(mut path) = ice::path_of(&pair) else {
            return;
        };
        path.over_tcp = self.relay_over_tcp(pair.local.as_ref());
        if self.remote_relays.contains(&path.remote) {
            path.kind = PathKind::TurnRelay;
        }
        tracing::info!(sid = %self.p.sid, peer = %self.p.peer, generation, kind = path.kind.as_str(),
            local = %path.local, remote = %path.remote, over_tcp = path.over_tcp, "ICE connected");
        if path.kind == PathKind::TurnRelay && self.carrying() {
            if self.slots[i].reprobe {
                tracing::info!(sid = %self.p.sid, peer = %self.p.peer, "re-probe found no direct path: staying on the relay");
                let s = self.slots.remove(i);
                self.retire(s, Duration::ZERO);
            } else {
                self.shared.add_standby(conn, path, generation);
            }
            return;
        }
        for p in self.shared.set_path(conn.clone(), path) {
            let _ = conn.send(&p).await;
        }
        self.slots[i].chosen = true;
        ice::release_unused(self.slots[i].agent.clone(), pair.local.clone());
        self.active = Some(generation);
        // Older generations are done once the new path carries the link.
        self.retire_before(i);
    }

    /// The peer's packets arrived on the standby path: it carries the link now.
    pub(super) fn on_followed(&mut self, generation: u8) {
        self.active = Some(generation);
        if let Some(i) = self.slots.iter().position(|s| s.generation == generation) {
            self.retire_before(i);
        }
    }

    /// A generation's pair was lost or never found (the link is up).
    pub(super) async fn on_lost(&mut self, generation: u8, state: ConnectionState, latest: bool) {
        let lost = matches!(
            state,
            ConnectionState::Failed | ConnectionState::Disconnected
        );
        let restarting = latest && self.shared.status().state != LinkState::Up;
        if lost && (self.active == Some(generation) || restarting) {
            self.restart().await;
        } else if state == ConnectionState::Failed
            && let Some(i) = self.slots.iter().position(|s| s.generation == generation)
        {
            // A re-probe or a standby path that went nowhere: the link never used it.
            if self.slots[i].reprobe {
                tracing::info!(sid = %self.p.sid, peer = %self.p.peer, "re-probe found no path");
            }
            let s = self.slots.remove(i);
            self.retire(s, Duration::ZERO);
        }
    }

    /// Whether the link is up on a path ICE still holds.
    fn carrying(&self) -> bool {
        self.up
            && self.shared.status().state == LinkState::Up
            && self
                .active
                .is_some_and(|g| self.slots.iter().any(|s| s.generation == g && !s.lost))
    }

    /// Arms the re-probe timer while a relay carries the link and no other generation is
    /// under way; disarms it otherwise.
    pub(super) fn schedule_reprobe(&mut self) {
        let settled = self.slots.last().map(|s| s.generation) == self.active;
        let relayed = self.up
            && self.p.controlling
            && !self.p.reprobe.is_zero()
            && self
                .shared
                .status()
                .path
                .is_some_and(|p| p.kind == PathKind::TurnRelay);
        if !relayed {
            self.reprobe_at = None;
        } else if settled && self.reprobe_at.is_none() {
            let jitter = rand::thread_rng().gen_range(0.85..1.15);
            self.reprobe_at = Some(Instant::now() + self.p.reprobe.mul_f64(jitter));
        }
    }

    /// Starts a generation that looks for a direct path; the relay carries the link meanwhile.
    pub(super) async fn reprobe(&mut self) {
        self.reprobe_at = None;
        let settled = self.slots.last().map(|s| s.generation) == self.active;
        if !settled || !self.carrying() {
            return;
        }
        tracing::info!(sid = %self.p.sid, peer = %self.p.peer, "relayed link: looking for a direct path");
        // Direct pairs get their wait even where the hint said none could win: the network
        // that made it say so may have changed.
        if let Err(e) = self.new_generation(false, PathHint::Unknown).await {
            tracing::warn!(%e, "re-probe failed to start");
            return;
        }
        if let Some(s) = self.slots.last_mut() {
            s.reprobe = true;
        }
    }

    /// Whether `ufrag` belongs to a generation already closed.
    pub(super) fn retired(&self, ufrag: &str) -> bool {
        self.retired.iter().any(|u| u == ufrag)
    }

    fn retire_before(&mut self, i: usize) {
        let old: Vec<Slot> = self.slots.drain(..i).collect();
        for s in old {
            // The old path may still deliver a few packets in flight.
            self.retire(s, Duration::from_secs(2));
        }
    }

    fn retire(&mut self, s: Slot, after: Duration) {
        if let Some((ufrag, _)) = &s.remote {
            if self.retired.len() == RETIRED {
                self.retired.remove(0);
            }
            self.retired.push(ufrag.clone());
            self.remote_cands.retain(|(u, _)| u != ufrag);
        }
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = s.agent.close().await;
        });
    }
}
