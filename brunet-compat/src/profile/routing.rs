//! AH routing and the forwarding wrapper, with Brunet's rules (`Symphony/AHSender.cs`,
//! `Symphony/PacketForwarder.cs`; BRUNET.md §2, §5).
//!
//! The ring core ([`crate::ring::routing`]) routes chamber's typed messages over its own
//! table (routable flags, relays); this module routes Brunet's packets as Brunet does,
//! over Brunet's connection table, and forwards the bytes untouched but for the hop count:
//!
//! 1. A destination we hold any connection to (a leaf too) gets the packet directly.
//! 2. Class-0 `greedy`/`last` → greedy; other class-0 modes → annealing; class 124 →
//!    directional.
//! 3. Greedy moves to the closer of the two structured nodes (self included) bracketing
//!    the destination; at the TTL it delivers if closest or in `last` mode, else drops.
//! 4. Annealing delivers at both bracketing nodes (`path`: every hop, `exact`: only the
//!    destination), never goes back on the incoming connection (it takes the other
//!    bracket: the uphill step) and never to itself. Brunet has no TTL check here, and
//!    its bootstrap forwarding relies on that (TTL 2 over any distance), so only a hard
//!    hop cap guards against loops.
//! 5. Directional walks to the nearest structured neighbour on its side and delivers at
//!    the TTL (every hop with `path`).

use crate::address::Address;
use crate::wire::PType;
use crate::wire::ah::{AhRepr, DeliveryMode};
use crate::wire::forward::ForwardRepr;

use super::Route;
use super::node::Node;

/// Hop cap of the annealing modes (a loop guard; Brunet has none).
const MAX_ANNEALING_HOPS: i16 = 64;

impl Node {
    /// Brunet's network size estimate from the near connections' spread, at least the
    /// structured count + 1.
    pub fn size_estimate(&self) -> f64 {
        let structured = self.conns.structured();
        let floor = (structured.len() + 1) as f64;
        let d: Vec<f64> = self
            .conns
            .iter()
            .filter(|c| c.kind == "structured.near")
            .map(|c| self.me.distance_to(&c.addr).to_f64())
            .collect();
        let (lo, hi) = d
            .iter()
            .fold((0.0f64, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)));
        if d.len() < 2 || hi <= lo {
            return floor;
        }
        (d.len() as f64 / (hi - lo)).max(floor)
    }

    /// Brunet's `DefaultTTLFor(N)`: 2 below 4 nodes, else ⌊(ln N)³⌋.
    pub(super) fn default_ttl(&self) -> i16 {
        let n = self.size_estimate();
        if n < 4.0 {
            return 2;
        }
        n.ln().powi(3).floor().clamp(2.0, f64::from(i16::MAX)) as i16
    }

    /// Starts an AH packet from here. Directional packets get TTL 2: the near overlord
    /// uses them to reach the node two hops along one side.
    pub(super) fn originate(&mut self, dst: Address, mode: DeliveryMode, payload: Vec<u8>) {
        let ttl = if dst.direction().is_some() {
            2
        } else {
            self.default_ttl()
        };
        self.originate_ttl(dst, mode, ttl, &payload);
    }

    fn originate_ttl(&mut self, dst: Address, mode: DeliveryMode, ttl: i16, payload: &[u8]) {
        let hdr = AhRepr {
            hops: 0,
            ttl,
            source: self.me,
            destination: dst,
            mode,
        };
        self.route(hdr, payload, None);
    }

    /// Brunet's `ForwardingSender`: through `via` to `dst`, the second leg in `mode`.
    /// When we are the forwarder, only the second leg is sent.
    pub(super) fn originate_forwarded(&mut self, via: Address, dst: Address, mode: u16, p: &[u8]) {
        let mut out = Vec::with_capacity(32 + p.len());
        // "f" is a valid PType, so emitting cannot fail.
        let _ = PType::FORWARDING.emit(&mut out);
        if via == self.me {
            ForwardRepr::FromForwarder { origin: self.me }.emit(&mut out);
            out.extend_from_slice(p);
            self.originate(dst, mode.into(), out);
        } else {
            let ttl = self.default_ttl();
            let header = ForwardRepr::ToForwarder {
                destination: dst,
                ttl,
                mode: mode.into(),
            };
            header.emit(&mut out);
            out.extend_from_slice(p);
            self.originate(via, DeliveryMode::Exact, out);
        }
    }

    /// Routes an AH packet that came from connection peer `from` (`None`: from us, or
    /// from an edge that is no connection).
    pub(super) fn route(&mut self, hdr: AhRepr, payload: &[u8], from: Option<Address>) {
        let dst = hdr.destination;
        if let Some(dir) = dst.direction() {
            return self.route_directional(hdr, payload, from, dir);
        }
        if dst == self.me {
            return self.deliver(hdr, payload);
        }
        if !dst.is_ah() {
            self.stats.no_route += 1;
            return;
        }
        if self.conns.any(&dst).is_some() && from != Some(dst) {
            if hdr.mode == DeliveryMode::Path {
                self.deliver(hdr, payload);
            }
            return self.forward(dst, hdr, payload);
        }
        let (left, right) = self.bracket(&dst);
        let closest = if dst.distance_to(&left).abs() < dst.distance_to(&right).abs() {
            left
        } else {
            right
        };
        if matches!(hdr.mode, DeliveryMode::Greedy | DeliveryMode::Last) {
            if closest == self.me {
                self.deliver(hdr, payload);
            } else if hdr.hops >= hdr.ttl {
                if hdr.mode == DeliveryMode::Last {
                    self.deliver(hdr, payload);
                } else {
                    self.stats.no_route += 1;
                }
            } else {
                self.forward(closest, hdr, payload);
            }
            return;
        }
        let in_bracket = left == self.me || right == self.me;
        let delivered = match hdr.mode {
            DeliveryMode::Path => true,
            DeliveryMode::Exact => false,
            _ => in_bracket,
        };
        if delivered {
            self.deliver(hdr, payload);
        }
        if hdr.hops >= MAX_ANNEALING_HOPS {
            self.stats.no_route += u64::from(!delivered);
            return;
        }
        let other = |a: Address| if a == left { right } else { left };
        let next = if in_bracket {
            other(self.me)
        } else if Some(closest) == from {
            other(closest)
        } else {
            closest
        };
        if next != self.me && Some(next) != from {
            self.forward(next, hdr, payload);
        } else if !delivered {
            self.stats.no_route += 1;
        }
    }

    fn route_directional(
        &mut self,
        hdr: AhRepr,
        payload: &[u8],
        from: Option<Address>,
        dir: crate::address::Direction,
    ) {
        if hdr.hops >= hdr.ttl {
            return self.deliver(hdr, payload);
        }
        let path = hdr.mode == DeliveryMode::Path;
        if path && from.is_some() {
            self.deliver(hdr, payload);
        }
        let next = match dir {
            crate::address::Direction::Left => self.conns.left_of(&self.me).first().copied(),
            crate::address::Direction::Right => self.conns.right_of(&self.me).first().copied(),
        };
        match next {
            Some(n) if Some(n) != from || path => self.forward(n, hdr, payload),
            _ => self.stats.no_route += 1,
        }
    }

    /// The structured nodes (self included) bracketing `dst`: the first at or above it
    /// (left), and the first below it (right), wrapping.
    pub(super) fn bracket(&self, dst: &Address) -> (Address, Address) {
        let mut all = self.conns.structured();
        all.push(self.me);
        let left = all
            .iter()
            .min_by_key(|a| dst.left_distance_to(a))
            .copied()
            .unwrap_or(self.me);
        let right = all
            .iter()
            .filter(|a| *a != dst)
            .min_by_key(|a| dst.right_distance_to(a))
            .copied()
            .unwrap_or(left);
        (left, right)
    }

    fn forward(&mut self, next: Address, mut hdr: AhRepr, payload: &[u8]) {
        let Some(edge) = self.conns.any(&next).map(|c| c.edge) else {
            self.stats.no_route += 1;
            return;
        };
        hdr.hops = hdr.hops.saturating_add(1);
        if hdr.source != self.me {
            self.stats.forwarded += 1;
        }
        let mut out = Vec::with_capacity(1 + hdr.buffer_len() + payload.len());
        out.push(2);
        hdr.emit(&mut out);
        out.extend_from_slice(payload);
        self.send_on(Route::Edge(edge), &out);
    }

    /// An AH packet for us: a ReqRep message, or a forwarding leg.
    fn deliver(&mut self, hdr: AhRepr, payload: &[u8]) {
        self.stats.delivered += 1;
        let Ok((ptype, rest)) = PType::parse(payload) else {
            self.stats.malformed += 1;
            return;
        };
        let exact = u16::from(DeliveryMode::Exact);
        if ptype == PType::REQREP {
            let route = Route::Ah {
                dst: hdr.source,
                mode: exact,
            };
            return self.on_reqrep(route, rest);
        }
        if ptype != PType::FORWARDING {
            return;
        }
        let Ok((fwd, inner)) = ForwardRepr::parse(rest) else {
            self.stats.malformed += 1;
            return;
        };
        match fwd {
            ForwardRepr::ToForwarder {
                destination,
                ttl,
                mode,
            } => {
                // We are the forwarder: the second leg names the originator.
                let mut out = Vec::with_capacity(32 + inner.len());
                let _ = PType::FORWARDING.emit(&mut out);
                ForwardRepr::FromForwarder { origin: hdr.source }.emit(&mut out);
                out.extend_from_slice(inner);
                self.originate_ttl(destination, mode, ttl, &out);
            }
            ForwardRepr::FromForwarder { origin } => match PType::parse(inner) {
                Ok((p, rest)) if p == PType::REQREP => {
                    // Brunet's return path: `ForwardingSender(B, A)`, annealing.
                    let route = Route::Fwd {
                        via: hdr.source,
                        dst: origin,
                        mode: DeliveryMode::Annealing.into(),
                    };
                    self.on_reqrep(route, rest);
                }
                _ => self.stats.malformed += 1,
            },
        }
    }
}
