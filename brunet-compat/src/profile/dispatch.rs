//! ReqRep and RPC dispatch: requests out (tracked by [`super::reqrep`]), requests in
//! (answered by [`super::responder`], repeats from the reply cache), replies and acks in.

use crate::address::Address;
use crate::wire::adr::Adr;
use crate::wire::reqrep::{ReqRepPacket, ReqRepRepr, ReqRepType};
use crate::wire::rpc::{self, RpcCall, RpcException};

use super::node::Node;
use super::reqrep::{Pending, Purpose, header, rpc_payload};
use super::{Event, Route};

impl Node {
    /// Sends a ReqRep payload (starting with `"r\0"`) along `route`.
    pub(super) fn send_on(&mut self, route: Route, payload: &[u8]) {
        match route {
            Route::Edge(e) => {
                if let Some((to, d)) = self.edges.frame(e, payload) {
                    self.transmit(to, d);
                }
            }
            Route::Ah { dst, mode } => self.originate(dst, mode.into(), payload.to_vec()),
            Route::Fwd { via, dst, mode } => self.originate_forwarded(via, dst, mode, payload),
        }
    }

    /// Sends a request and tracks it; returns its id.
    pub(super) fn request(&mut self, route: Route, call: &RpcCall, p: Purpose, max: u32) -> i32 {
        let id = self.fresh_id(|n, id| n.rr.is_free(id));
        let Ok(payload) = rpc_payload(ReqRepType::Request, id, &call.to_adr()) else {
            return id;
        };
        self.send_on(route, &payload);
        let wait = self.wait();
        self.rr.insert(
            id,
            Pending {
                route,
                payload,
                purpose: p,
                sent: self.now,
                next: self.now + wait,
                resends: 0,
                replies: 0,
                max_replies: max,
            },
        );
        id
    }

    pub(super) fn wait(&self) -> std::time::Duration {
        let c = &self.cfg;
        self.rr
            .timeout(c.reqrep_initial_timeout, c.reqrep_min_timeout)
    }

    /// A ReqRep message (the bytes after `"r\0"`) that came along `route`.
    pub(super) fn on_reqrep(&mut self, route: Route, bytes: &[u8]) {
        let Ok(p) = ReqRepPacket::new_checked(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        let ReqRepRepr { kind, id } = ReqRepRepr::parse(&p);
        match kind {
            ReqRepType::Request | ReqRepType::LossyRequest => {
                if let Some(cached) = self.rr.cached(route, id).map(<[u8]>::to_vec) {
                    self.stats.cached_replies += 1;
                    self.send_on(route, &cached);
                    return;
                }
                let result = match rpc::parse(p.body()).map(|v| RpcCall::from_adr(&v)) {
                    Ok(Ok(call)) => self.answer(route, id, &call),
                    _ => RpcException::new(rpc::code::INVALID_REQUEST, "not an RPC call").to_adr(),
                };
                let Ok(reply) = rpc_payload(ReqRepType::Reply, id, &result) else {
                    return;
                };
                self.send_on(route, &reply);
                if kind == ReqRepType::Request {
                    let cap = self.cfg.reply_cache;
                    self.rr.cache(route, id, reply, cap);
                }
            }
            ReqRepType::Reply => {
                let wait = self.wait();
                let Some(purpose) = self.rr.on_reply(id, self.now, wait) else {
                    return;
                };
                if let Ok(ack) = header(ReqRepType::ReplyAck, id) {
                    self.send_on(route, &ack);
                }
                match rpc::parse(p.body()) {
                    Ok(v) => self.on_result(purpose, route, v),
                    Err(_) => self.on_failure(purpose),
                }
            }
            ReqRepType::ReplyAck => self.rr.acked(route, id),
            ReqRepType::RequestAck => {
                let wait = self.wait();
                self.rr.on_request_ack(id, self.now, wait);
            }
            ReqRepType::Error => {
                if let Some(purpose) = self.rr.on_error(id) {
                    self.on_failure(purpose);
                }
            }
            ReqRepType::Unknown(_) => self.stats.malformed += 1,
        }
    }

    /// The node a reply along `route` came from, when known.
    pub(super) fn peer_of(&self, route: Route) -> Option<Address> {
        match route {
            Route::Edge(e) => self.conns.by_edge(e).map(|c| c.addr),
            Route::Ah { dst, .. } | Route::Fwd { dst, .. } => Some(dst),
        }
    }

    fn on_result(&mut self, purpose: Purpose, route: Route, v: Adr) {
        match purpose {
            Purpose::Start(l) => self.on_start_reply(l, &v),
            Purpose::LinkStatus(l) => self.on_link_status(l, &v),
            Purpose::Status(peer) => self.on_status(peer, &v),
            Purpose::Ctm => self.on_ctm_reply(&v),
            Purpose::Echo(token) => {
                let from = self.peer_of(route).unwrap_or(self.me);
                let value = v.as_str().unwrap_or_default().to_owned();
                self.emit(Event::Echo { token, from, value });
            }
            Purpose::Ping(_) | Purpose::Close => {}
        }
    }

    pub(super) fn on_failure(&mut self, purpose: Purpose) {
        match purpose {
            Purpose::Start(l) | Purpose::LinkStatus(l) => self.linker_failed(l),
            Purpose::Ping(edge) => self.close_edge(edge, true),
            Purpose::Echo(token) => self.emit(Event::EchoFailed { token }),
            Purpose::Status(_) | Purpose::Ctm | Purpose::Close => {}
        }
    }
}
