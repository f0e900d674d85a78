//! The initiator side of the link handshake (`Connections/Linker.cs`,
//! `LinkProtocolState.cs`).
//!
//! For each transport address in turn: open an edge, `sys:link.Start` with our NodeInfo
//! and the target; the reply names the peer and, in `remote`, our address as it sees us
//! (recorded as a reflection); then `sys:link.GetStatus`, whose reply adds the
//! connection. InProgress, and AlreadyConnected for a connection we do not hold (the
//! peer's is stale), retry the same address after 0–5 s (up to 8 times); TargetMismatch,
//! ConnectToSelf, timeouts and a reply of another type move to the next address.

use std::net::SocketAddr;
use std::time::Duration;

use crate::address::Address;
use crate::ring::Time;
use crate::wire::adr::Adr;
use crate::wire::link::{
    CloseMessage, ErrorCode, LinkMessage, LinkRequest, NodeInfo, StatusMessage,
};
use crate::wire::reqrep::ReqRepType;
use crate::wire::rpc::RpcException;
use crate::wire::ta::TransportAddress;

use super::Route;
use super::conn::{Holder, MainType};
use super::node::Node;
use super::reqrep::{Purpose, rpc_payload};

/// Transport addresses tried per link (Brunet: 12).
const MAX_TAS: usize = 12;
/// InProgress retries of one address (Brunet: 8).
const MAX_RETRIES: u32 = 8;
/// Links in progress at once: connect-to-me requests from anyone start links, so their
/// number must be bounded.
const MAX_LINKERS: usize = 64;

/// One outgoing link attempt.
#[derive(Clone, Debug)]
pub(super) struct Linker {
    pub id: u32,
    pub target: Option<Address>,
    /// Addresses still to try; the first is the current one.
    pub tas: Vec<SocketAddr>,
    pub kind: String,
    pub token: String,
    pub edge: Option<i32>,
    pub peer: Option<Address>,
    pub retries: u32,
    pub retry_at: Option<Time>,
}

impl Node {
    /// Starts linking to `target` (unknown for leaf links to bootstrap addresses).
    pub(super) fn link_to(
        &mut self,
        target: Option<Address>,
        tas: Vec<TransportAddress>,
        kind: &str,
        token: String,
    ) {
        let main = MainType::of(kind);
        if self.leaving || target == Some(self.me) || self.linkers.len() >= MAX_LINKERS {
            return;
        }
        if let Some(t) = target {
            let busy = self
                .linkers
                .iter()
                .any(|l| l.target == Some(t) && MainType::of(&l.kind) == main);
            if busy || self.conns.get(&t, main).is_some() {
                return;
            }
        }
        let mut socks: Vec<SocketAddr> = Vec::new();
        for s in tas.iter().filter_map(TransportAddress::udp_socket_addr) {
            if !socks.contains(&s) && socks.len() < MAX_TAS {
                socks.push(s);
            }
        }
        if socks.is_empty() {
            return;
        }
        let id = self.next_linker;
        self.next_linker = self.next_linker.wrapping_add(1);
        if let Some(t) = target
            && self.conns.lock(t, main, Holder::Linker(id)).is_err()
        {
            return;
        }
        self.linkers.push(Linker {
            id,
            target,
            tas: socks,
            kind: kind.to_owned(),
            token,
            edge: None,
            peer: None,
            retries: 0,
            retry_at: None,
        });
        self.attempt(id);
    }

    /// Linkers currently running.
    pub fn linking(&self) -> usize {
        self.linkers.len()
    }

    fn linker(&mut self, id: u32) -> Option<&mut Linker> {
        self.linkers.iter_mut().find(|l| l.id == id)
    }

    /// Opens an edge to the current address and sends `sys:link.Start`.
    fn attempt(&mut self, id: u32) {
        let edge = self.fresh_id(|n, e| n.edges.is_free(e));
        let info = self.node_info();
        let realm = self.cfg.realm.clone();
        let now = self.now;
        let Some(l) = self.linker(id) else { return };
        let Some(&to) = l.tas.first() else { return };
        l.edge = Some(edge);
        let lm = LinkMessage {
            local: Some(info),
            remote: Some(NodeInfo {
                address: l.target,
                transports: vec![TransportAddress::udp_socket(to)],
            }),
            token: Some(l.token.clone()),
            realm: Some(realm),
            connection_type: l.kind.clone(),
            attributes: Vec::new(),
        };
        self.edges.open(edge, to, 0, now);
        let call = LinkRequest::Start(lm).to_call();
        self.request(Route::Edge(edge), &call, Purpose::Start(id), 1);
    }

    /// The answer to our `sys:link.Start`.
    pub(super) fn on_start_reply(&mut self, id: u32, v: &Adr) {
        if let Some(x) = RpcException::from_adr(v) {
            // As `LinkProtocolState.GetResultForErrorCode`.
            let code = x.ok().as_ref().and_then(ErrorCode::of);
            let Some(l) = self.linkers.iter().find(|l| l.id == id) else {
                return;
            };
            let main = MainType::of(&l.kind);
            let ours = l.target.filter(|t| self.conns.get(t, main).is_none());
            return match (code, l.target) {
                (Some(ErrorCode::InProgress), _) => self.retry_later(id),
                // The peer holds a connection we do not: it is stale on its side (it
                // pings it now); try again.
                (Some(ErrorCode::AlreadyConnected), Some(_)) if ours.is_some() => {
                    self.retry_later(id)
                }
                (Some(ErrorCode::AlreadyConnected | ErrorCode::Disconnecting), None)
                | (Some(ErrorCode::TargetMismatch | ErrorCode::ConnectToSelf), _) => {
                    self.linker_failed(id)
                }
                _ => self.abort_linker(id),
            };
        }
        let Some(l) = self.linkers.iter().find(|l| l.id == id).cloned() else {
            return;
        };
        let Ok(lm) = LinkMessage::from_adr(v) else {
            return self.linker_failed(id);
        };
        let peer = lm.local.as_ref().and_then(|n| n.address);
        let Some(peer) = peer.filter(|p| *p != self.me && l.target.is_none_or(|t| t == *p)) else {
            return self.linker_failed(id);
        };
        if lm.realm.as_deref().is_some_and(|r| r != self.cfg.realm) {
            return self.abort_linker(id);
        }
        if lm.connection_type != l.kind {
            return self.linker_failed(id);
        }
        if let Some(ta) = lm.remote.as_ref().and_then(|r| r.transports.first()) {
            self.reflect(ta.clone());
        }
        let main = MainType::of(&l.kind);
        let taken = self.conns.get(&peer, main).is_some()
            || self.conns.lock(peer, main, Holder::Linker(id)).is_err();
        let Some(edge) = l.edge.filter(|_| !taken) else {
            return self.abort_linker(id);
        };
        if let Some(l) = self.linker(id) {
            l.peer = Some(peer);
        }
        let status = self.status_for(&peer, l.kind.clone());
        let sm = StatusMessage::from_adr(&status).unwrap_or(StatusMessage {
            neighbor_type: l.kind.clone(),
            neighbors: Vec::new(),
        });
        let call = LinkRequest::GetStatus(sm).to_call();
        self.request(Route::Edge(edge), &call, Purpose::LinkStatus(id), 1);
    }

    /// The answer to the handshake's `GetStatus`: the connection is up.
    pub(super) fn on_link_status(&mut self, id: u32, v: &Adr) {
        let Some(i) = self.linkers.iter().position(|l| l.id == id) else {
            return;
        };
        let l = self.linkers.swap_remove(i);
        let (Some(edge), Some(peer)) = (l.edge, l.peer) else {
            return;
        };
        let main = MainType::of(&l.kind);
        self.conns.unlock_all(Holder::Linker(id));
        let listed: Vec<Address> = StatusMessage::from_adr(v)
            .map(|s| s.neighbors.iter().filter_map(|n| n.address).collect())
            .unwrap_or_default();
        if self.conns.get(&peer, main).is_some() {
            self.send_close(edge, "From LPS, did not complete a connection.");
            return self.close_edge(edge, true);
        }
        self.add_conn(peer, l.kind, edge, listed.clone());
        self.hints(peer, &listed);
    }

    /// The current attempt failed: close its edge and try the next address.
    pub(super) fn linker_failed(&mut self, id: u32) {
        let Some(l) = self.linker(id) else { return };
        let edge = l.edge.take();
        if !l.tas.is_empty() {
            l.tas.remove(0);
        }
        l.retries = 0;
        l.peer = None;
        let more = !l.tas.is_empty();
        let had_target = l.target.is_some();
        if let Some(e) = edge
            && self.conns.by_edge(e).is_none()
        {
            self.close_edge(e, true);
        }
        if !had_target {
            // A target-less link locked its peer only after Start.
            self.conns.unlock_all(Holder::Linker(id));
        }
        if more {
            self.attempt(id);
        } else {
            self.drop_linker(id);
        }
    }

    /// InProgress: the same address again after a uniform 0–5 s.
    fn retry_later(&mut self, id: u32) {
        let wait = Duration::from_secs_f64(5.0 * self.unit());
        let now = self.now;
        let Some(l) = self.linker(id) else { return };
        let edge = l.edge.take();
        l.retries += 1;
        if l.retries > MAX_RETRIES {
            return self.linker_failed(id);
        }
        l.retry_at = Some(now + wait);
        if let Some(e) = edge {
            self.close_edge(e, true);
        }
    }

    /// Gives the link up, telling the peer if an edge was open.
    pub(super) fn abort_linker(&mut self, id: u32) {
        let Some(edge) = self.linker(id).map(|l| l.edge.take()) else {
            return;
        };
        self.drop_linker(id);
        if let Some(e) = edge
            && self.conns.by_edge(e).is_none()
        {
            self.send_close(e, "From LPS, did not complete a connection.");
            self.close_edge(e, true);
        }
    }

    fn drop_linker(&mut self, id: u32) {
        self.linkers.retain(|l| l.id != id);
        self.conns.unlock_all(Holder::Linker(id));
    }

    /// A one-shot `sys:link.Close` on `edge` (the edge closes right after).
    pub(super) fn send_close(&mut self, edge: i32, reason: &str) {
        let call = LinkRequest::Close(CloseMessage {
            reason: reason.into(),
        })
        .to_call();
        let id = self.fresh_id(|n, id| n.rr.is_free(id));
        if let Ok(p) = rpc_payload(ReqRepType::Request, id, &call.to_adr()) {
            self.send_on(Route::Edge(edge), &p);
        }
    }

    /// Retries that are due.
    pub(super) fn linker_timers(&mut self) {
        let now = self.now;
        let due: Vec<u32> = self
            .linkers
            .iter_mut()
            .filter(|l| l.retry_at.is_some_and(|t| t <= now))
            .map(|l| {
                l.retry_at = None;
                l.id
            })
            .collect();
        for id in due {
            self.attempt(id);
        }
    }
}
