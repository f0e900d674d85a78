//! The RPC methods a Brunet node answers (`Connections/ConnectionPacketHandler.cs`,
//! `CtmRequestHandler.cs`, `Relay/RelayOverlap`'s `tunnel.RequestSync`).
//!
//! `sys:link.Start` and the `GetStatus` that completes it run directly on an edge; the
//! others answer whatever route they came by (Brunet's crawler calls `GetNeighbors` over
//! AH). Errors are RPC exceptions with Brunet's codes and messages.

use crate::address::Address;
use crate::wire::adr::Adr;
use crate::wire::link::{
    ConnectToMessage, ErrorCode, LinkMessage, LinkRequest, NodeInfo, StatusMessage,
};
use crate::wire::rpc::{RpcCall, RpcException, code};
use crate::wire::ta::TransportAddress;

use super::conn::{Holder, MainType};
use super::edge::Responding;
use super::node::Node;
use super::{Event, Route};

/// Neighbours listed in status and connect-to-me messages (Brunet: 4).
pub(super) const LISTED: usize = 4;

/// The relay-overlap method Brunet nodes call on their neighbours.
const REQUEST_SYNC: &str = "tunnel.RequestSync";

impl Node {
    /// The result (or exception) for `call`, request `id`, which came along `route`.
    pub(super) fn answer(&mut self, route: Route, id: i32, call: &RpcCall) -> Adr {
        let edge = match route {
            Route::Edge(e) => Some(e),
            _ => None,
        };
        let req = match LinkRequest::from_call(call) {
            Ok(Some(r)) => r,
            Ok(None) if call.method == REQUEST_SYNC => return self.request_sync(),
            Ok(None) => {
                let msg = format!("No Handler for method: {}", call.method);
                return RpcException::new(code::METHOD_NOT_FOUND, msg).to_adr();
            }
            Err(e) => return RpcException::new(code::INVALID_PARAMS, e.to_string()).to_adr(),
        };
        let result = match (req, edge) {
            (LinkRequest::Start(lm), Some(e)) => self.on_start(e, id, lm),
            (LinkRequest::Start(_), None) => Err(ErrorCode::UnexpectedRequest
                .exception("sys:link.Start must come on the edge it links")),
            (LinkRequest::GetStatus(sm), _) => Ok(self.on_get_status(edge, sm)),
            (LinkRequest::Ping(v), _) => Ok(v),
            (LinkRequest::Close(_), _) => {
                if let Some(e) = edge {
                    self.on_close(e);
                }
                Ok(Adr::Map(Vec::new()))
            }
            (LinkRequest::GetNeighbors, _) => Ok(self.neighbors_map()),
            (LinkRequest::GetNodeInfo, _) => Ok(self.node_info().to_adr()),
            (LinkRequest::GetLocalIpAddresses, _) => Ok(self.local_ips()),
            (LinkRequest::ConnectTo(ctm), _) => self.on_ctm(ctm),
        };
        result.unwrap_or_else(|x| x.to_adr())
    }

    /// Our NodeInfo: address and advertised transport addresses.
    pub(super) fn node_info(&self) -> NodeInfo {
        NodeInfo {
            address: Some(self.me),
            transports: self.local_tas(),
        }
    }

    /// `sys:link.Start` from the peer on `edge`.
    fn on_start(&mut self, edge: i32, id: i32, lm: LinkMessage) -> Result<Adr, RpcException> {
        // Brunet's order (`ConnectionPacketHandler.CanConnect`): realm, target, self,
        // disconnecting, then the lock.
        if let Some(r) = lm.realm.as_deref().filter(|r| *r != self.cfg.realm) {
            let msg = format!("We are not in the same realm: {r} != {}", self.cfg.realm);
            return Err(ErrorCode::RealmMismatch.exception(msg));
        }
        let Some(peer) = lm.local.as_ref().and_then(|l| l.address) else {
            return Err(ErrorCode::UnexpectedRequest.exception("LinkMessage without local address"));
        };
        if let Some(t) = lm
            .remote
            .as_ref()
            .and_then(|r| r.address)
            .filter(|t| *t != self.me)
        {
            let msg = format!("target is {t}, but reached {}", self.me);
            return Err(ErrorCode::TargetMismatch.exception(msg));
        }
        if peer == self.me {
            return Err(ErrorCode::ConnectToSelf.exception("You are me: "));
        }
        if self.leaving {
            let msg = format!("I am disconnecting. local: {}", self.me);
            return Err(ErrorCode::Disconnecting.exception(msg));
        }
        let Some(e) = self.edges.get(edge) else {
            return Err(ErrorCode::EdgeClosed.exception("edge closed"));
        };
        let seen = TransportAddress::udp_socket(e.addr);
        if e.responding.as_ref().is_some_and(|r| r.start_id != id) {
            return Err(ErrorCode::InProgress.exception("Start already in progress"));
        }
        let main = MainType::of(&lm.connection_type);
        if let Some(c) = self.conns.get(&peer, main).filter(|c| c.edge != edge) {
            // The connection may be stale (the peer restarted): ping it, as Brunet does,
            // so that a dead one is found and dropped.
            let stale = c.edge;
            if !self.rr.waiting_for(&super::reqrep::Purpose::Ping(stale)) {
                let call = LinkRequest::Ping(Adr::str("")).to_call();
                self.request(
                    Route::Edge(stale),
                    &call,
                    super::reqrep::Purpose::Ping(stale),
                    1,
                );
            }
            let msg = format!("We are already connected: {}", self.me);
            return Err(ErrorCode::AlreadyConnected.exception(msg));
        }
        match self.conns.lock(peer, main, Holder::Edge(edge)) {
            Ok(()) => {}
            // Both sides link at once: the larger address's handshake wins.
            Err(Holder::Linker(l)) if peer > self.me => {
                self.abort_linker(l);
                let _ = self.conns.lock(peer, main, Holder::Edge(edge));
            }
            Err(_) => return Err(ErrorCode::InProgress.exception("link in progress")),
        }
        if let Some(e) = self.edges.get_mut(edge) {
            e.responding = Some(Responding {
                peer,
                kind: lm.connection_type.clone(),
                start_id: id,
            });
        }
        let reply = LinkMessage {
            local: Some(self.node_info()),
            remote: Some(NodeInfo {
                address: None,
                transports: vec![seen],
            }),
            token: lm.token,
            realm: Some(self.cfg.realm.clone()),
            connection_type: lm.connection_type,
            attributes: Vec::new(),
        };
        Ok(reply.to_adr())
    }

    /// `sys:link.GetStatus`: completes a handshake we answered, or refreshes a status.
    fn on_get_status(&mut self, edge: Option<i32>, sm: StatusMessage) -> Adr {
        let listed: Vec<Address> = sm.neighbors.iter().filter_map(|n| n.address).collect();
        let mut peer = None;
        if let Some(e) = edge {
            let resp = self.edges.get_mut(e).and_then(|x| x.responding.take());
            if let Some(r) = resp {
                let main = MainType::of(&r.kind);
                self.conns.unlock(r.peer, main, Holder::Edge(e));
                if self.conns.get(&r.peer, main).is_none() {
                    self.add_conn(r.peer, r.kind, e, listed.clone());
                }
                peer = Some(r.peer);
            } else if let Some(c) = self.conns.by_edge(e) {
                let (addr, main) = (c.addr, c.main());
                if let Some(c) = self.conns.get_mut(&addr, main) {
                    c.status = listed.clone();
                }
                peer = Some(addr);
            }
        }
        if let Some(p) = peer {
            self.hints(p, &listed);
        }
        let around = peer.unwrap_or(self.me);
        self.status_for(&around, sm.neighbor_type)
    }

    /// Our StatusMessage for `peer`: our structured neighbours around it.
    pub(super) fn status_for(&self, peer: &Address, kind: String) -> Adr {
        StatusMessage {
            neighbor_type: kind,
            neighbors: self
                .conns
                .around(peer, LISTED)
                .into_iter()
                .map(NodeInfo::address_only)
                .collect(),
        }
        .to_adr()
    }

    /// Adds a connection and tells the caller.
    pub(super) fn add_conn(
        &mut self,
        peer: Address,
        kind: String,
        edge: i32,
        status: Vec<Address>,
    ) {
        self.conns.add(super::conn::Conn {
            addr: peer,
            kind: kind.clone(),
            edge,
            since: self.now,
            status,
        });
        self.emit(Event::Connected {
            peer,
            kind: kind.clone(),
        });
        self.connection_changed(peer, &kind, true);
    }

    /// `sys:link.Close`: the connections on the edge go now, the edge in 5 s.
    fn on_close(&mut self, edge: i32) {
        for c in self.conns.remove_edge(edge) {
            self.emit(Event::Disconnected {
                peer: c.addr,
                kind: c.kind.clone(),
            });
            self.connection_changed(c.addr, &c.kind, false);
        }
        let at = self.now + std::time::Duration::from_secs(5);
        if let Some(e) = self.edges.get_mut(edge) {
            e.close_at = Some(e.close_at.map_or(at, |t| t.min(at)));
        }
    }

    /// `sys:ctm.ConnectTo`: link to the target, answer with ourselves and our neighbours
    /// around it.
    fn on_ctm(&mut self, ctm: ConnectToMessage) -> Result<Adr, RpcException> {
        let Some(target) = ctm.target.address else {
            return Err(RpcException::new(
                code::INVALID_PARAMS,
                "CTM without a target",
            ));
        };
        if target == self.me {
            return Err(RpcException::new(
                code::METHOD_THREW,
                "Trying to connect to myself!",
            ));
        }
        let listed: Vec<Address> = ctm.neighbors.iter().filter_map(|n| n.address).collect();
        let tas = ctm.target.transports.clone();
        self.link_to(Some(target), tas, &ctm.connection_type, ctm.token.clone());
        self.hints(target, &listed);
        let reply = ConnectToMessage {
            connection_type: ctm.connection_type,
            target: self.node_info(),
            token: ctm.token,
            neighbors: self
                .conns
                .around(&target, LISTED)
                .into_iter()
                .map(NodeInfo::address_only)
                .collect(),
        };
        Ok(reply.to_adr())
    }

    /// `GetLocalIPAddresses`: the IPs of our UDP addresses, loopback left out.
    fn local_ips(&self) -> Adr {
        let mut ips: Vec<Adr> = Vec::new();
        for sa in self
            .local_tas()
            .iter()
            .filter_map(TransportAddress::udp_socket_addr)
        {
            let ip = Adr::Str(sa.ip().to_string());
            if !sa.ip().is_loopback() && !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        Adr::List(ips)
    }

    /// `GetNeighbors`: self, the two nearest on each side and a random shortcut, as
    /// address strings.
    fn neighbors_map(&mut self) -> Adr {
        let s = |a: &Address| Adr::Str(a.to_string());
        let mut m = vec![("self", s(&self.me))];
        let left = self.conns.left_of(&self.me);
        let right = self.conns.right_of(&self.me);
        for (k, v) in [
            ("left", left.first()),
            ("left2", left.get(1)),
            ("right", right.first()),
            ("right2", right.get(1)),
        ] {
            if let Some(a) = v {
                m.push((k, s(a)));
            }
        }
        let shortcuts: Vec<Address> = self
            .conns
            .iter()
            .filter(|c| c.kind == "structured.shortcut")
            .map(|c| c.addr)
            .collect();
        if !shortcuts.is_empty() {
            let i = (self.unit() * shortcuts.len() as f64) as usize;
            m.push(("shortcut", s(&shortcuts[i.min(shortcuts.len() - 1)])));
        }
        Adr::map(m)
    }

    /// `tunnel.RequestSync`: our connections as `{address bytes: {ct: age ms, ta: kind}}`.
    fn request_sync(&self) -> Adr {
        let mut seen = Vec::new();
        let mut m = Vec::new();
        for c in self.conns.iter() {
            if seen.contains(&c.addr) {
                continue;
            }
            seen.push(c.addr);
            let age = self.now.saturating_since(c.since).as_millis();
            let info = Adr::map([
                ("ct", Adr::I32(i32::try_from(age).unwrap_or(i32::MAX))),
                ("ta", Adr::str("udp")),
            ]);
            m.push((Adr::Bytes(c.addr.as_bytes().to_vec()), info));
        }
        Adr::Map(m)
    }
}
