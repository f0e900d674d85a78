//! Connection maintenance: Brunet's leaf and structured-near overlords
//! (`Symphony/LeafConnectionOverlord.cs`, `StructuredNearConnectionOverlord.cs`) and the
//! edge check of `Node.CheckEdgesCallback` (BRUNET.md §3–4, §9).
//!
//! * No connection at all: a `leaf` link to the bootstrap addresses.
//! * Fewer than 2 structured connections: a connect-to-me to our own address + 2, sent
//!   through a connection with Brunet's forwarding and delivered (annealing) at the two
//!   nodes bracketing us; expect 2 answers. Each responder links to us and we to it.
//! * Otherwise, a side with fewer than 2 neighbours, or whose nearest neighbour lists a
//!   node between us: a connect-to-me to the directional address of that side (TTL 2,
//!   delivered two hops away).
//! * Neighbour lists (status, connect-to-me answers) that name a node nearer than our
//!   two nearest on its side: a connect-to-me to it through the peer that named it
//!   (Brunet's `ConnectToNearer`).
//! * A near link with 4 or more structured nodes between us on both sides is trimmed after
//!   a quiet period, one at a time. Back-off doubles while nothing changes.
//! * Connections silent for 15 s are pinged (a failed ping closes the edge); edges that
//!   never became connections close after 30 s idle.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::address::{Address, Direction, RingInt};
use crate::ring::Time;
use crate::wire::adr::Adr;
use crate::wire::link::{ConnectToMessage, LinkRequest, StatusMessage};
use crate::wire::rpc::RpcException;

use super::conn::MainType;
use super::node::Node;
use super::reqrep::Purpose;
use super::responder::LISTED;
use super::{Event, Route};

/// Near neighbours wanted per side (Brunet's `DESIRED_NEIGHBORS`).
const PER_SIDE: usize = 2;
/// Structured nodes between us and a near link, on both sides, before it is trimmed.
const TRIM_RANK: usize = 4;
/// A hinted node is not asked again within this time.
const HINT_QUIET: Duration = Duration::from_secs(10);
/// Delay of the near check after a connection change (Brunet's heartbeat).
const HEARTBEAT: Duration = Duration::from_millis(500);
const NEAR: &str = "structured.near";

/// The near overlord's state.
#[derive(Clone, Debug)]
pub(super) struct NearState {
    pub next: Time,
    backoff: Option<Duration>,
    last_change: Time,
    last_status: Time,
    connected: bool,
    hinted: BTreeMap<Address, Time>,
}

impl NearState {
    pub(super) fn new(now: Time) -> NearState {
        NearState {
            next: now,
            backoff: None,
            last_change: now,
            last_status: now,
            connected: false,
            hinted: BTreeMap::new(),
        }
    }

    /// A connection came or went: check soon, back-off from the start.
    pub(super) fn changed(&mut self, now: Time) {
        self.last_change = now;
        self.backoff = None;
        self.next = self.next.min(now + HEARTBEAT);
    }
}

impl Node {
    /// Brunet's `IsConnected`: both nearest neighbours exist and list nobody between us.
    pub fn is_connected(&self) -> bool {
        let (Some(l), Some(r)) = (self.left(), self.right()) else {
            return false;
        };
        let listed = |a: &Address| {
            self.conns
                .get(a, MainType::Structured)
                .map(|c| c.status.clone())
                .unwrap_or_default()
        };
        let me = self.me;
        if l == r {
            // One neighbour: a two-node ring only if it knows nobody else.
            return listed(&l).iter().all(|x| *x == me);
        }
        !listed(&l).iter().any(|x| x.is_between_from_left(&me, &l))
            && !listed(&r).iter().any(|x| x.is_between_from_right(&me, &r))
    }

    /// A connection came or went (Brunet's `ConnectHandler`, `DisconnectHandler` and
    /// `StructuredNode.UpdateNeighborStatus`): check soon; through a new leaf, look for our
    /// place in the ring at once (it may lead to a part of the ring we do not know); tell
    /// the structured neighbours on either side of the peer our new status.
    pub(super) fn connection_changed(&mut self, peer: Address, kind: &str, up: bool) {
        self.near.changed(self.now);
        if self.leaving {
            return;
        }
        match MainType::of(kind) {
            MainType::Leaf if up => {
                let dst = self.me.wrapping_add(RingInt::from_u128(2));
                self.send_ctm(
                    Route::Fwd {
                        via: peer,
                        dst,
                        mode: 4,
                    },
                    2,
                );
            }
            MainType::Structured => {
                let left = self.conns.left_of(&peer).into_iter().find(|a| *a != peer);
                let right = self.conns.right_of(&peer).into_iter().find(|a| *a != peer);
                for n in [left, right.filter(|r| Some(*r) != left)]
                    .into_iter()
                    .flatten()
                {
                    self.send_status(n, kind);
                }
            }
            _ => {}
        }
    }

    /// The nearest structured neighbour on the left (next larger address).
    pub fn left(&self) -> Option<Address> {
        self.conns.left_of(&self.me).first().copied()
    }

    /// The nearest structured neighbour on the right (next smaller address).
    pub fn right(&self) -> Option<Address> {
        self.conns.right_of(&self.me).first().copied()
    }

    pub(super) fn near_tick(&mut self) {
        let now = self.now;
        let connected = self.is_connected();
        if connected != self.near.connected {
            self.near.connected = connected;
            self.emit(Event::RingState { connected });
        }
        let backoff = match self.near.backoff {
            None => self.cfg.backoff_min,
            Some(b) => (b * 2).min(self.cfg.backoff_max),
        };
        self.near.backoff = Some(backoff);
        let refresh_at = self.near.last_status + self.cfg.status_refresh;
        self.near.next = (now + backoff).min(refresh_at.max(now + HEARTBEAT));
        let conns: Vec<(Address, i32)> = self.conns.iter().map(|c| (c.addr, c.edge)).collect();
        if conns.is_empty() {
            if self.linkers.is_empty() {
                let tas = self.cfg.bootstrap.clone();
                self.link_to(None, tas, "leaf", self.me.to_string());
            }
            return;
        }
        if self.conns.structured().len() < PER_SIDE {
            let i = (self.unit() * conns.len() as f64) as usize;
            let via = conns[i.min(conns.len() - 1)].0;
            let dst = self.me.wrapping_add(RingInt::from_u128(2));
            self.send_ctm(Route::Fwd { via, dst, mode: 4 }, 2);
            return;
        }
        for dir in [Direction::Left, Direction::Right] {
            let side = match dir {
                Direction::Left => self.conns.left_of(&self.me),
                Direction::Right => self.conns.right_of(&self.me),
            };
            if side.len() < PER_SIDE || !connected {
                let route = Route::Ah {
                    dst: Address::directional(dir),
                    mode: 1,
                };
                self.send_ctm(route, 1);
            }
        }
        if now >= refresh_at {
            self.near.last_status = now;
            self.refresh_status();
        }
        if now.saturating_since(self.near.last_change) >= self.cfg.trim_quiet {
            self.trim();
        }
    }

    /// A connect-to-me for a near link, answered by up to `replies` nodes.
    fn send_ctm(&mut self, route: Route, replies: u32) {
        let ctm = ConnectToMessage {
            connection_type: NEAR.into(),
            target: self.node_info(),
            token: self.me.to_string(),
            neighbors: self
                .conns
                .around(&self.me, LISTED)
                .into_iter()
                .map(crate::wire::link::NodeInfo::address_only)
                .collect(),
        };
        let call = LinkRequest::ConnectTo(ctm).to_call();
        self.request(route, &call, Purpose::Ctm, replies);
    }

    /// An answer to our connect-to-me: link to the responder.
    pub(super) fn on_ctm_reply(&mut self, v: &Adr) {
        if RpcException::from_adr(v).is_some() {
            return;
        }
        let Ok(ctm) = ConnectToMessage::from_adr(v) else {
            return;
        };
        if let Some(peer) = ctm.target.address {
            let tas = ctm.target.transports;
            self.link_to(Some(peer), tas, &ctm.connection_type, ctm.token);
        }
    }

    /// A status refresh answered.
    pub(super) fn on_status(&mut self, peer: Address, v: &Adr) {
        let Ok(sm) = StatusMessage::from_adr(v) else {
            return;
        };
        let listed: Vec<Address> = sm.neighbors.iter().filter_map(|n| n.address).collect();
        if let Some(c) = self.conns.get_mut(&peer, MainType::Structured) {
            c.status = listed.clone();
        }
        self.hints(peer, &listed);
    }

    /// Brunet's `ConnectToNearer`: nodes `peer` named that would be among our nearest.
    pub(super) fn hints(&mut self, peer: Address, listed: &[Address]) {
        if self.leaving || self.conns.any(&peer).is_none() {
            return;
        }
        let now = self.now;
        self.near
            .hinted
            .retain(|_, t| now.saturating_since(*t) < HINT_QUIET);
        let left = self.conns.left_of(&self.me);
        let right = self.conns.right_of(&self.me);
        for &x in listed {
            if x == self.me || x == peer || !x.is_ah() || self.near.hinted.contains_key(&x) {
                continue;
            }
            if self.conns.get(&x, MainType::Structured).is_some() {
                continue;
            }
            let me = self.me;
            let nearer_left = left.len() < PER_SIDE
                || me.left_distance_to(&x) < me.left_distance_to(&left[PER_SIDE - 1]);
            let nearer_right = right.len() < PER_SIDE
                || me.right_distance_to(&x) < me.right_distance_to(&right[PER_SIDE - 1]);
            if nearer_left || nearer_right {
                self.near.hinted.insert(x, now);
                self.send_ctm(
                    Route::Fwd {
                        via: peer,
                        dst: x,
                        mode: 4,
                    },
                    1,
                );
            }
        }
    }

    /// `GetStatus` with our nearest neighbours on each side, to keep their lists fresh.
    fn refresh_status(&mut self) {
        let mut peers = self.conns.left_of(&self.me);
        peers.truncate(PER_SIDE);
        for r in self.conns.right_of(&self.me).into_iter().take(PER_SIDE) {
            if !peers.contains(&r) {
                peers.push(r);
            }
        }
        for p in peers {
            self.send_status(p, NEAR);
        }
    }

    /// `GetStatus` to structured peer `p`, with our neighbours around it.
    fn send_status(&mut self, p: Address, kind: &str) {
        let Some(edge) = self.conns.get(&p, MainType::Structured).map(|c| c.edge) else {
            return;
        };
        let status = self.status_for(&p, kind.into());
        let Ok(sm) = StatusMessage::from_adr(&status) else {
            return;
        };
        let call = LinkRequest::GetStatus(sm).to_call();
        self.request(Route::Edge(edge), &call, Purpose::Status(p), 1);
    }

    /// Closes the farthest near link with enough nodes between us on both sides.
    fn trim(&mut self) {
        let left = self.conns.left_of(&self.me);
        let right = self.conns.right_of(&self.me);
        let me = self.me;
        let far = self
            .conns
            .iter()
            .filter(|c| c.kind == NEAR)
            .filter(|c| {
                let rank = |v: &[Address]| v.iter().position(|a| *a == c.addr).unwrap_or(0);
                rank(&left) >= TRIM_RANK && rank(&right) >= TRIM_RANK
            })
            .max_by_key(|c| me.distance_to(&c.addr).abs())
            .map(|c| c.edge);
        if let Some(edge) = far {
            self.send_close(edge, "SCO, near connection trim");
            self.close_edge(edge, true);
        }
    }

    /// Pings silent connections; closes edges that never became connections.
    pub(super) fn check_edges(&mut self) {
        let now = self.now;
        let mut ping = Vec::new();
        let mut idle = Vec::new();
        for e in self.edges.iter() {
            let silent = now.saturating_since(e.last_in);
            if self.conns.by_edge(e.id).is_some() {
                if silent >= self.cfg.ping_idle && !self.rr.waiting_for(&Purpose::Ping(e.id)) {
                    ping.push(e.id);
                }
            } else if silent >= self.cfg.unconnected_idle
                && e.close_at.is_none()
                && !self.linkers.iter().any(|l| l.edge == Some(e.id))
            {
                idle.push(e.id);
            }
        }
        for e in ping {
            let call = LinkRequest::Ping(Adr::str("")).to_call();
            self.request(Route::Edge(e), &call, Purpose::Ping(e), 1);
        }
        for e in idle {
            self.close_edge(e, true);
        }
    }
}
