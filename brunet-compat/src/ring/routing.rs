//! Routing over the connection table (Brunet's `AHHandler`, `GreedyRouting`,
//! `AnnealingRouting`, `DirectionalRouting`), with a TTL enforced in every mode.
//!
//! Loop freedom: greedy modes only move to a strictly closer node; annealing modes never
//! send back on the incoming link and stop at the TTL; directional modes walk one way.

use crate::address::{Address, Direction};

use super::io::Event;
use super::msg::{Header, Mode, Msg, Payload, Routed};
use super::node::Node;
use super::time::Time;

/// TTL used before the node has any size estimate.
const TTL_UNKNOWN: u16 = 32;

impl Node {
    /// Sends an application datagram to `dst` with delivery `mode`.
    pub fn send(&mut self, now: Time, dst: Address, mode: Mode, data: Vec<u8>) {
        self.now = self.now.max(now);
        if self.left {
            return;
        }
        if mode == Mode::Exact {
            self.note_traffic(dst);
        }
        self.originate(dst, mode, Payload::App(data), false);
    }

    /// Sends the runtime's own control datagram (link signalling, an echo) to `dst` in exact
    /// mode; unlike [`Node::send`] it never counts toward an on-demand link, and with `via`
    /// (a node linked to `dst`) it reaches a destination routing cannot find yet: a node
    /// still joining, linked only to its leaves.
    pub fn send_control(&mut self, now: Time, dst: Address, via: Option<Address>, data: Vec<u8>) {
        self.now = self.now.max(now);
        if self.left {
            return;
        }
        self.reply(dst, via, Payload::App(data));
    }

    /// A direct peer whose last status lists `dst` among its near neighbours (so it is very
    /// likely linked to it): a `via` for [`Node::send_control`].
    pub fn neighbour_of(&self, dst: &Address) -> Option<Address> {
        self.table
            .iter()
            .filter(|p| p.is_direct() && p.near.contains(dst))
            .min_by_key(|p| p.rtt_us)
            .map(|p| p.addr)
    }

    /// The greedy next hop toward `dst`: `None` when we are the closest node (for
    /// offline path analysis, as Brunet's `Graph` does).
    pub fn next_hop(&self, dst: &Address) -> Option<Address> {
        if *dst == self.me {
            return None;
        }
        if self.table.get(dst).is_some() {
            return Some(*dst);
        }
        let (left, right) = self.bracket(dst, None);
        let closest = if dst.distance_to(&left).abs() < dst.distance_to(&right).abs() {
            left
        } else {
            right
        };
        (closest != self.me).then_some(closest)
    }

    /// Hop limit for messages we originate.
    pub(crate) fn ttl(&self) -> u16 {
        let l = self.near.size_log2;
        if !l.is_finite() || l <= 0.0 {
            return TTL_UNKNOWN;
        }
        let t = (self.cfg.ttl_factor * f64::from(l)).ceil() + f64::from(self.cfg.ttl_base);
        t.clamp(2.0, 255.0) as u16
    }

    /// Starts a routed message from here. With `random_first`, the first hop is a random
    /// neighbour closer to `dst` than we are (request retries route around dead nodes).
    pub(crate) fn originate(
        &mut self,
        dst: Address,
        mode: Mode,
        payload: Payload,
        random_first: bool,
    ) {
        let r = Routed {
            hdr: Header {
                hops: 0,
                ttl: self.ttl(),
                src: self.me,
                dst,
                mode,
            },
            payload,
        };
        if random_first && dst != self.me && dst.is_ah() && self.table.get(&dst).is_none() {
            let mine = self.me.distance_to(&dst).abs();
            let closer: Vec<Address> = self
                .table
                .iter()
                .filter(|p| p.routable && p.addr.distance_to(&dst).abs() < mine)
                .map(|p| p.addr)
                .collect();
            if !closer.is_empty() {
                let next = closer[self.below(closer.len())];
                self.forward(next, r);
                return;
            }
        }
        self.route(r, None);
    }

    /// Answers `to` (the source of a request), through the leaf `via` when `to` is a
    /// joining node only its leaf can reach.
    pub(crate) fn reply(&mut self, to: Address, via: Option<Address>, payload: Payload) {
        match via {
            Some(b) if self.table.get(&to).is_none() && b != self.me => {
                let inner = Box::new(payload);
                self.originate(b, Mode::Exact, Payload::Via { to, inner }, false);
            }
            _ => self.originate(to, Mode::Exact, payload, false),
        }
    }

    /// Routes `r`, which came from table peer `from` (`None`: we originate it).
    pub(crate) fn route(&mut self, r: Routed, from: Option<Address>) {
        let hdr = r.hdr;
        if let Some(dir) = hdr.dst.direction() {
            self.route_directional(r, dir, from);
            return;
        }
        if !hdr.dst.is_ah() {
            self.stats.no_route += 1;
            return;
        }
        let at_ttl = hdr.hops >= hdr.ttl;
        if hdr.dst == self.me {
            self.deliver(r);
            return;
        }
        // Brunet's first rule: a destination we are linked to gets it directly.
        if self.table.get(&hdr.dst).is_some() && from != Some(hdr.dst) {
            if hdr.mode == Mode::Path {
                self.deliver(r.clone());
            }
            if at_ttl {
                self.at_ttl(r);
            } else {
                self.forward(hdr.dst, r);
            }
            return;
        }
        // A joining node asking for its own position must not get it back.
        let skip = (hdr.src == hdr.dst).then_some(hdr.src);
        let (left, right) = self.bracket(&hdr.dst, skip);
        let closest = if hdr.dst.distance_to(&left).abs() < hdr.dst.distance_to(&right).abs() {
            left
        } else {
            right
        };
        match hdr.mode {
            Mode::Greedy | Mode::Last => {
                if closest == self.me {
                    self.deliver(r);
                } else if at_ttl {
                    self.at_ttl(r);
                } else {
                    self.forward(closest, r);
                }
            }
            // Exact is annealing routing that delivers only at the destination (as in
            // Brunet): a node next to an unlinked destination passes the message to
            // the other side of it instead of dropping it as the closest node.
            Mode::Default | Mode::Annealing | Mode::Path | Mode::Exact => {
                let in_bracket = left == self.me || right == self.me;
                let delivered = match hdr.mode {
                    Mode::Path => true,
                    Mode::Exact => false,
                    _ => in_bracket,
                };
                if delivered {
                    self.deliver(r.clone());
                }
                if at_ttl {
                    if !delivered {
                        self.stats.ttl_drops += 1;
                    }
                    return;
                }
                let next = if in_bracket {
                    if left == self.me { right } else { left }
                } else if Some(closest) == from {
                    // The annealing step: never back on the incoming link.
                    if closest == left { right } else { left }
                } else {
                    closest
                };
                if next != self.me && Some(next) != from {
                    self.forward(next, r);
                } else if !delivered {
                    self.stats.no_route += 1;
                }
            }
        }
    }

    fn at_ttl(&mut self, r: Routed) {
        if r.hdr.mode == Mode::Last {
            self.deliver(r);
        } else {
            self.stats.ttl_drops += 1;
        }
    }

    fn route_directional(&mut self, r: Routed, dir: Direction, from: Option<Address>) {
        let at_ttl = r.hdr.hops >= r.hdr.ttl;
        let delivered = at_ttl || (r.hdr.mode == Mode::Path && from.is_some());
        if at_ttl {
            self.deliver(r);
            return;
        }
        if delivered {
            self.deliver(r.clone());
        }
        let me = self.me;
        let next = match dir {
            Direction::Left => self.table.left_of(&me).find(|p| p.routable).map(|p| p.addr),
            Direction::Right => self
                .table
                .right_of(&me)
                .find(|p| p.routable)
                .map(|p| p.addr),
        };
        match next {
            Some(n) if Some(n) != from || r.hdr.mode == Mode::Path => self.forward(n, r),
            _ if !delivered => self.stats.no_route += 1,
            _ => {}
        }
    }

    /// The nearest node (routable peers and self) on each side of `dst`: the first at
    /// or left of it (increasing), and the first right of it.
    pub(crate) fn bracket(&self, dst: &Address, skip: Option<Address>) -> (Address, Address) {
        let n = self.table.len();
        let d = dst.to_ring_int();
        let skip = skip.map(Address::to_ring_int);
        let start = self.table.lower_bound(d);
        let usable = |i: usize| {
            let k = self.table.key_at(i);
            Some(k) != skip && self.table.at(i).routable
        };
        let succ = (0..n).map(|k| (start + k) % n).find(|&i| usable(i));
        let pred = (0..n)
            .map(|k| (start + 2 * n - 1 - k) % n)
            .find(|&i| usable(i) && self.table.key_at(i) != d);
        let me = self.me.to_ring_int();
        let left = match succ {
            Some(i) if self.table.key_at(i).wrapping_sub(d) < me.wrapping_sub(d) => {
                self.table.at(i).addr
            }
            _ => self.me,
        };
        let right = match pred {
            Some(i) if d.wrapping_sub(self.table.key_at(i)) < d.wrapping_sub(me) => {
                self.table.at(i).addr
            }
            _ => self.me,
        };
        (left, right)
    }

    fn forward(&mut self, next: Address, mut r: Routed) {
        r.hdr.hops = r.hdr.hops.saturating_add(1);
        if r.hdr.src != self.me {
            self.stats.forwarded += 1;
        }
        self.send_to(&next, Msg::Routed(r));
    }

    fn deliver(&mut self, r: Routed) {
        self.stats.delivered += 1;
        let hdr = r.hdr;
        match r.payload {
            Payload::App(data) => {
                if let Some(p) = self.table.get_mut(&hdr.src) {
                    p.last_used = self.now;
                }
                self.emit(Event::Deliver {
                    src: hdr.src,
                    dst: hdr.dst,
                    mode: hdr.mode,
                    hops: hdr.hops,
                    data,
                });
            }
            Payload::Ctm {
                kind,
                token,
                via,
                near,
            } => self.ctm_request(hdr.src, kind, token, via, near),
            Payload::CtmReply { token, kind, near } => self.ctm_reply(hdr.src, token, kind, near),
            Payload::Via { to, inner } => {
                if self.table.get(&to).is_some() {
                    let hdr = Header {
                        dst: to,
                        mode: Mode::Exact,
                        ..hdr
                    };
                    let payload = *inner;
                    self.send_to(&to, Msg::Routed(Routed { hdr, payload }));
                } else {
                    self.stats.no_route += 1;
                }
            }
            Payload::Request { id, req } => self.serve_request(hdr, id, req),
            Payload::Response { id, hops, rsp } => self.on_response(hdr.src, id, hops, rsp),
            Payload::RelayOffer { via, neighbours } => self.relay_offer(hdr.src, via, neighbours),
            Payload::RelayAnswer {
                forwarder,
                neighbours,
            } => self.relay_answer(hdr.src, forwarder, neighbours),
        }
    }
}
