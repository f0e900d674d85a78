//! The profile node: inputs, outputs, timers, and the ReqRep dispatch that ties the
//! other modules together.

use std::collections::VecDeque;
use std::net::SocketAddr;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::address::Address;
use crate::ring::Time;
use crate::wire::adr::Adr;
use crate::wire::rpc::RpcCall;
use crate::wire::ta::TransportAddress;
use crate::wire::udp::{Control, UdpDatagram};
use crate::wire::{PType, ah::AhPacket, ah::AhRepr};

use super::conn::Conns;
use super::edge::{Accepted, Edges, control_datagram};
use super::linker::Linker;
use super::overlord::NearState;
use super::reqrep::{Due, Purpose, ReqRep};
use super::{Config, Event, Input, Output, Route, Stats};

/// A Brunet node speaking the UDP profile; see the [module docs](super).
pub struct Node {
    pub(super) cfg: Config,
    pub(super) me: Address,
    pub(super) rng: ChaCha8Rng,
    pub(super) now: Time,
    pub(super) edges: Edges,
    pub(super) rr: ReqRep,
    pub(super) conns: Conns,
    pub(super) linkers: Vec<Linker>,
    pub(super) next_linker: u32,
    pub(super) near: NearState,
    /// Our transport addresses as peers reported them, newest first (at most 2).
    pub(super) reflected: Vec<TransportAddress>,
    pub(super) out: VecDeque<Output>,
    pub(super) next_edge_check: Time,
    pub(super) leaving: bool,
    pub(super) echo_token: u32,
    pub(super) stats: Stats,
}

impl Node {
    /// A node with address `me` (an AH address: class 0).
    pub fn new(cfg: Config, me: Address, now: Time) -> Node {
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let next_edge_check = now + cfg.edge_check;
        let mut node = Node {
            cfg,
            me,
            rng,
            now,
            edges: Edges::default(),
            rr: ReqRep::default(),
            conns: Conns::default(),
            linkers: Vec::new(),
            next_linker: 0,
            near: NearState::new(now),
            reflected: Vec::new(),
            out: VecDeque::new(),
            next_edge_check,
            leaving: false,
            echo_token: 0,
            stats: Stats::default(),
        };
        node.near.next = now;
        node
    }

    /// Our address.
    pub fn address(&self) -> Address {
        self.me
    }

    /// The connection table.
    pub fn connections(&self) -> &Conns {
        &self.conns
    }

    /// The edges.
    pub fn edges(&self) -> &Edges {
        &self.edges
    }

    /// The ReqRep state.
    pub fn reqrep(&self) -> &ReqRep {
        &self.rr
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The transport addresses we advertise: reflected ones first, then the configured;
    /// one per socket (a Brunet peer reflects ours with PathEdgeListener's `/`, which
    /// names the same socket).
    pub fn local_tas(&self) -> Vec<TransportAddress> {
        let mut v: Vec<TransportAddress> = Vec::new();
        for t in self.reflected.iter().chain(&self.cfg.local_tas) {
            let sock = t.udp_socket_addr();
            if !v
                .iter()
                .any(|x| x == t || (sock.is_some() && x.udp_socket_addr() == sock))
            {
                v.push(t.clone());
            }
        }
        v
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, now: Time, input: Input<'_>) {
        self.now = self.now.max(now);
        match input {
            Input::Datagram { from, data } if !self.leaving => self.on_datagram(from, data),
            Input::Datagram { .. } => {}
            Input::Timeout => self.on_timeout(),
        }
    }

    /// The next output; `Timeout` ends a drain.
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        let mut at = self.rr.next_deadline().min(self.edges.next_close());
        if !self.leaving {
            at = at.min(self.next_edge_check).min(self.near.next);
            at = self
                .linkers
                .iter()
                .filter_map(|l| l.retry_at)
                .fold(at, Time::min);
        }
        Output::Timeout(at)
    }

    /// Sends `sys:link.Ping([text])` AH-exact to `dst`; the answer comes as
    /// [`Event::Echo`] or [`Event::EchoFailed`] with the returned token.
    pub fn echo(&mut self, now: Time, dst: Address, text: &str) -> u32 {
        self.now = self.now.max(now);
        self.echo_token = self.echo_token.wrapping_add(1);
        let call = RpcCall::new(crate::wire::link::method::PING, vec![Adr::str(text)]);
        let route = Route::Ah { dst, mode: 5 };
        self.request(route, &call, Purpose::Echo(self.echo_token), 1);
        self.echo_token
    }

    /// Leaves: `sys:link.Close` and EdgeClosed on every edge, then silence.
    pub fn leave(&mut self, now: Time) {
        self.now = self.now.max(now);
        // First, so that no handshake moves on to another address while edges close.
        self.leaving = true;
        self.linkers.clear();
        let close = crate::wire::link::CloseMessage {
            reason: "disconnecting".into(),
        };
        let call = RpcCall::new(crate::wire::link::method::CLOSE, vec![close.to_adr()]);
        let edges: Vec<i32> = self.conns.iter().map(|c| c.edge).collect();
        for e in &edges {
            self.request(Route::Edge(*e), &call, Purpose::Close, 1);
        }
        let all: Vec<i32> = self.edges.iter().map(|e| e.id).collect();
        for e in all {
            self.close_edge(e, true);
        }
        self.rr = ReqRep::default();
    }

    pub(super) fn emit(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    pub(super) fn transmit(&mut self, to: SocketAddr, data: Vec<u8>) {
        self.out.push_back(Output::Transmit { to, data });
    }

    /// A random positive id for which `free` holds.
    pub(super) fn fresh_id(&mut self, free: impl Fn(&Self, i32) -> bool) -> i32 {
        loop {
            let id = (self.rng.next_u32() & 0x7fff_ffff) as i32;
            if free(self, id) {
                return id;
            }
        }
    }

    /// Uniform in [0, 1).
    pub(super) fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn on_datagram(&mut self, from: SocketAddr, data: &[u8]) {
        let Ok(d) = UdpDatagram::parse(data) else {
            self.stats.malformed += 1;
            return;
        };
        match d {
            UdpDatagram::HeaderOnly(_) => {}
            UdpDatagram::Control(h, c) => {
                if let Some(e) = self.edges.control_target(self.now, h) {
                    self.on_control(e, c);
                }
            }
            UdpDatagram::Data(h, payload) => {
                let new_id = self.fresh_id(|n, id| n.edges.is_free(id));
                match self.edges.accept(self.now, from, h, new_id) {
                    Accepted::Edge(e) => self.on_edge_payload(e, payload),
                    Accepted::Rehomed(e) => {
                        self.announce(e, from);
                        self.on_edge_payload(e, payload);
                    }
                    Accepted::Unknown { closed } => {
                        self.stats.unknown_edge += 1;
                        if closed
                            && let Ok(d) =
                                control_datagram(h.receiver, h.sender, &Control::EdgeClosed)
                        {
                            self.transmit(from, d);
                        }
                    }
                }
            }
        }
    }

    fn on_control(&mut self, edge: i32, c: Control) {
        match c {
            Control::EdgeClosed => self.close_edge(edge, false),
            Control::EdgeDataAnnounce(_) => {
                if let Some(ta) = c.remote_ta().and_then(|s| s.parse().ok()) {
                    self.reflect(ta);
                }
            }
            Control::Null | Control::Unknown { .. } => {}
        }
    }

    /// Tells the peer of `edge` how we see it after its mapping moved to `to`.
    fn announce(&mut self, edge: i32, to: SocketAddr) {
        let local = self
            .local_tas()
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        let remote = TransportAddress::udp_socket(to).to_string();
        let c = Control::edge_data_announce(&remote, &local);
        if let Some(Ok((to, d))) = self.edges.control(edge, &c) {
            self.transmit(to, d);
        }
    }

    /// Records our transport address as a peer reported it.
    pub(super) fn reflect(&mut self, ta: TransportAddress) {
        let usable = ta
            .udp_socket_addr()
            .is_some_and(|s| !s.ip().is_unspecified());
        if !usable || self.reflected.first() == Some(&ta) {
            return;
        }
        self.reflected.retain(|t| *t != ta);
        self.reflected.insert(0, ta.clone());
        self.reflected.truncate(2);
        self.emit(Event::Reflected { ta });
    }

    fn on_edge_payload(&mut self, edge: i32, payload: &[u8]) {
        let Ok((ptype, rest)) = PType::parse(payload) else {
            self.stats.malformed += 1;
            return;
        };
        if ptype == PType::REQREP {
            self.on_reqrep(Route::Edge(edge), rest);
        } else if ptype == PType::AH {
            // Only well-formed payloads are delivered or passed on: a relay must not
            // become a way to send garbage in our name.
            let Some(ah) = AhPacket::new_checked(rest)
                .ok()
                .filter(|ah| crate::wire::Payload::parse(ah.payload()).is_ok())
            else {
                self.stats.malformed += 1;
                return;
            };
            let from = self.conns.by_edge(edge).map(|c| c.addr);
            self.route(AhRepr::parse(&ah), ah.payload(), from);
        } else {
            self.stats.malformed += 1;
        }
    }

    /// Closes edge `id`: its connections, requests and handshakes go with it. With
    /// `tell`, the peer gets EdgeClosed.
    pub(super) fn close_edge(&mut self, id: i32, tell: bool) {
        if tell && let Some(Ok((to, d))) = self.edges.control(id, &Control::EdgeClosed) {
            self.transmit(to, d);
        }
        let Some(_) = self.edges.remove(id) else {
            return;
        };
        self.conns.unlock_all(super::conn::Holder::Edge(id));
        for c in self.conns.remove_edge(id) {
            self.emit(Event::Disconnected {
                peer: c.addr,
                kind: c.kind.clone(),
            });
            self.connection_changed(c.addr, &c.kind, false);
        }
        for p in self.rr.drop_edge(id) {
            self.on_failure(p);
        }
        let on_edge: Vec<u32> = self
            .linkers
            .iter()
            .filter(|l| l.edge == Some(id))
            .map(|l| l.id)
            .collect();
        for l in on_edge {
            self.linker_failed(l);
        }
    }

    fn on_timeout(&mut self) {
        let now = self.now;
        let closing: Vec<i32> = self
            .edges
            .iter()
            .filter(|e| e.close_at.is_some_and(|t| t <= now))
            .map(|e| e.id)
            .collect();
        for e in closing {
            self.close_edge(e, true);
        }
        let wait = self.wait();
        for due in self.rr.due(now, wait, self.cfg.reqrep_resends) {
            match due {
                Due::Resend(route, payload) => {
                    self.stats.resent += 1;
                    self.send_on(route, &payload);
                }
                Due::Done(p, false) => self.on_failure(p),
                Due::Done(_, true) => {}
            }
        }
        if self.leaving {
            return;
        }
        if self.next_edge_check <= now {
            self.next_edge_check = now + self.cfg.edge_check;
            self.check_edges();
        }
        self.linker_timers();
        if self.near.next <= now {
            self.near_tick();
        }
    }
}
