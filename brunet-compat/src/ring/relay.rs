//! Two-hop relay edges (Brunet's `Relay`/`RelayOverlap`, formerly Tunnel).
//!
//! When the runtime cannot link us to a peer we want, we send it our direct neighbours
//! ([`Payload::RelayOffer`], routed exact). It picks a common neighbour by latency or
//! link age and answers with it, or with its own neighbours when there is none; we then
//! link to one of those as an overlap link. Messages to the peer then travel
//! `RelayFwd` → forwarder → `RelayDel`. A forwarder only passes messages between two
//! direct links (never relay over a relay) and enforces a per-source quota.

use std::time::Duration;

use crate::address::Address;

use super::config::RelaySelect;
use super::io::Event;
use super::msg::{Msg, NeighbourInfo, Payload};
use super::node::Node;
use super::table::{ConnType, LinkKind, Path};
use super::time::Time;

/// Neighbours offered in a relay exchange (Brunet: 16).
const MAX_OFFER: usize = 16;
/// Overlap candidates tried per relay attempt.
const MAX_CANDIDATES: usize = 3;

#[derive(Clone, Debug)]
struct Attempt {
    peer: Address,
    reasons: ConnType,
    /// Forwarders still to try, best first.
    candidates: Vec<Address>,
    /// The overlap link being made.
    waiting_on: Option<Address>,
    deadline: Time,
}

#[derive(Clone, Debug)]
struct Quota {
    src: Address,
    window: Time,
    msgs: u32,
    bytes: u64,
}

/// Relay attempts and forwarder quotas.
#[derive(Clone, Debug, Default)]
pub(crate) struct RelayState {
    attempts: Vec<Attempt>,
    quotas: Vec<Quota>,
}

impl RelayState {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.attempts.capacity() * std::mem::size_of::<Attempt>()
            + self.quotas.capacity() * std::mem::size_of::<Quota>()
    }

    pub(crate) fn next_deadline(&self) -> Option<Time> {
        self.attempts.iter().map(|a| a.deadline).min()
    }
}

impl Node {
    /// Our direct, non-relayed neighbours, best candidates first for the configured
    /// selection.
    fn direct_infos(&self) -> Vec<NeighbourInfo> {
        let now = self.now;
        let mut v: Vec<NeighbourInfo> = self
            .table
            .iter()
            .filter(|p| p.is_direct())
            .map(|p| p.info(now))
            .collect();
        self.rank(&mut v);
        v.truncate(MAX_OFFER);
        v
    }

    fn rank(&self, v: &mut [NeighbourInfo]) {
        match self.cfg.relay_select {
            RelaySelect::Latency => {
                v.sort_by_key(|n| (if n.rtt_us == 0 { u32::MAX } else { n.rtt_us }, n.addr))
            }
            RelaySelect::Age => v.sort_by_key(|n| (std::cmp::Reverse(n.age_ms), n.addr)),
        }
    }

    /// Starts building a relay edge to `peer`, which we could not link to directly.
    pub(crate) fn relay_start(&mut self, peer: Address, reasons: ConnType) {
        if let Some(a) = self.relay.attempts.iter_mut().find(|a| a.peer == peer) {
            a.reasons |= reasons;
            return;
        }
        let deadline = self.now + self.cfg.request_timeout * 4;
        self.relay.attempts.push(Attempt {
            peer,
            reasons,
            candidates: Vec::new(),
            waiting_on: None,
            deadline,
        });
        self.timers.set_min(super::timer::Timer::Pending, deadline);
        let via = if self.near.routable {
            None
        } else {
            self.table.iter().next().map(|p| p.addr)
        };
        let neighbours = self.direct_infos();
        self.originate(
            peer,
            super::msg::Mode::Exact,
            Payload::RelayOffer { via, neighbours },
            false,
        );
    }

    /// A node that cannot reach us directly offers its neighbours.
    pub(crate) fn relay_offer(
        &mut self,
        src: Address,
        via: Option<Address>,
        theirs: Vec<NeighbourInfo>,
    ) {
        let now = self.now;
        let mut best: Option<(u64, Address)> = None;
        for t in theirs.iter().take(MAX_OFFER) {
            let Some(mine) = self.table.get(&t.addr).filter(|p| p.is_direct()) else {
                continue;
            };
            let score = match self.cfg.relay_select {
                RelaySelect::Latency => {
                    let r = |x: u32| {
                        if x == 0 {
                            u64::from(u32::MAX)
                        } else {
                            u64::from(x)
                        }
                    };
                    r(t.rtt_us) + r(mine.rtt_us)
                }
                RelaySelect::Age => {
                    let age = u64::from(t.age_ms)
                        .min(now.saturating_since(mine.since).as_millis() as u64);
                    u64::MAX - age
                }
            };
            if best.is_none_or(|(s, a)| (score, t.addr) < (s, a)) {
                best = Some((score, t.addr));
            }
        }
        let neighbours = self.direct_infos();
        let forwarder = best.map(|(_, a)| a);
        self.reply(
            src,
            via,
            Payload::RelayAnswer {
                forwarder,
                neighbours,
            },
        );
    }

    /// The answer to our offer.
    pub(crate) fn relay_answer(
        &mut self,
        src: Address,
        forwarder: Option<Address>,
        mut theirs: Vec<NeighbourInfo>,
    ) {
        let Some(i) = self.relay.attempts.iter().position(|a| a.peer == src) else {
            return;
        };
        if let Some(f) = forwarder
            && self.table.get(&f).is_some_and(|p| p.is_direct())
        {
            let a = self.relay.attempts.swap_remove(i);
            self.relay_establish(a.peer, f, a.reasons);
            return;
        }
        // No common neighbour: make an overlap link to one of theirs.
        theirs.retain(|n| n.addr != self.me && n.addr.is_ah());
        self.rank(&mut theirs);
        let mut cands: Vec<Address> = theirs.iter().map(|n| n.addr).take(MAX_CANDIDATES).collect();
        cands.reverse();
        self.relay.attempts[i].candidates = cands;
        self.relay.attempts[i].deadline =
            self.now + self.cfg.link_timeout + self.cfg.request_timeout;
        self.relay_next_candidate(i);
    }

    fn relay_next_candidate(&mut self, i: usize) {
        match self.relay.attempts[i].candidates.pop() {
            Some(f) => {
                self.relay.attempts[i].waiting_on = Some(f);
                if self.table.get(&f).is_some_and(|p| p.is_direct()) {
                    let a = self.relay.attempts.swap_remove(i);
                    self.relay_establish(a.peer, f, a.reasons);
                } else {
                    self.want_link(f, ConnType::OVERLAP);
                }
            }
            None => {
                let a = self.relay.attempts.swap_remove(i);
                self.lost.push((a.peer, self.now));
            }
        }
    }

    /// A link came up: relay attempts waiting for it as an overlap can finish.
    pub(crate) fn relay_forwarder_up(&mut self, f: Address) {
        while let Some(i) = self
            .relay
            .attempts
            .iter()
            .position(|a| a.waiting_on == Some(f))
        {
            if !self.table.get(&f).is_some_and(|p| p.is_direct()) {
                self.relay_next_candidate(i);
                continue;
            }
            let a = self.relay.attempts.swap_remove(i);
            self.relay_establish(a.peer, f, a.reasons);
        }
    }

    /// The overlap link to `f` could not be made.
    pub(crate) fn relay_forwarder_failed(&mut self, f: Address) {
        while let Some(i) = self
            .relay
            .attempts
            .iter()
            .position(|a| a.waiting_on == Some(f))
        {
            self.relay.attempts[i].waiting_on = None;
            self.relay_next_candidate(i);
        }
    }

    fn relay_establish(&mut self, peer: Address, f: Address, reasons: ConnType) {
        if self.table.get(&peer).is_some() {
            self.add_reason(&peer, reasons);
            return;
        }
        let through = self
            .table
            .iter()
            .filter(|p| p.path == Path::Relay { via: f })
            .count();
        if through >= self.cfg.relay_max_per_forwarder {
            self.stats.relay_refused += 1;
            return;
        }
        if !self.cfg.admission.admit(&peer, LinkKind::Relay, reasons) {
            self.stats.refused += 1;
            return;
        }
        self.add_reason(&f, ConnType::OVERLAP);
        self.stats.relays_built += 1;
        self.insert_peer(peer, Path::Relay { via: f }, reasons, 0);
        self.emit(Event::RelayUp { peer, via: f });
    }

    pub(crate) fn relay_expire(&mut self) {
        let now = self.now;
        let mut gone = Vec::new();
        self.relay.attempts.retain(|a| {
            let keep = a.deadline > now;
            if !keep {
                gone.push(a.peer);
            }
            keep
        });
        for p in gone {
            self.lost.push((p, now));
        }
        // Overlap links no relay edge uses any more are released.
        let idle: Vec<Address> = self
            .table
            .iter()
            .filter(|p| p.types.contains(ConnType::OVERLAP))
            .map(|p| p.addr)
            .filter(|a| {
                !self.relay_uses(a) && !self.relay.attempts.iter().any(|t| t.waiting_on == Some(*a))
            })
            .collect();
        for a in idle {
            self.clear_reason(&a, ConnType::OVERLAP);
        }
    }

    /// True when some relay edge goes through `f`.
    pub(crate) fn relay_uses(&self, f: &Address) -> bool {
        self.table.iter().any(|p| p.path == Path::Relay { via: *f })
    }

    /// As a forwarder: pass `inner` from `from` to our direct neighbour `to`.
    pub(crate) fn relay_forward(&mut self, from: Address, to: Address, inner: Msg) {
        let ok_from = self.table.get(&from).is_some_and(|p| p.is_direct());
        let link_to = self
            .table
            .get(&to)
            .filter(|p| p.is_direct())
            .and_then(|p| p.link());
        let nested = matches!(inner, Msg::RelayFwd { .. } | Msg::RelayDel { .. });
        let (Some(link), true, false) = (link_to, ok_from, nested) else {
            self.stats.relay_refused += 1;
            self.send_to(&from, Msg::RelayGone { peer: to });
            return;
        };
        if !self.quota_ok(from, &inner) {
            self.stats.relay_refused += 1;
            return;
        }
        self.stats.relayed += 1;
        self.transmit(
            link,
            Msg::RelayDel {
                from,
                inner: Box::new(inner),
            },
        );
    }

    fn quota_ok(&mut self, src: Address, inner: &Msg) -> bool {
        let now = self.now;
        let bytes = match inner {
            Msg::Routed(r) => match &r.payload {
                Payload::App(d) => d.len() as u64 + 64,
                _ => 64,
            },
            _ => 64,
        };
        let window = Duration::from_secs(1);
        self.relay
            .quotas
            .retain(|q| now.saturating_since(q.window) < window);
        let q = match self.relay.quotas.iter_mut().find(|q| q.src == src) {
            Some(q) => q,
            None => {
                self.relay.quotas.push(Quota {
                    src,
                    window: now,
                    msgs: 0,
                    bytes: 0,
                });
                // Just pushed, so the vector is not empty.
                self.relay.quotas.last_mut().expect("just pushed")
            }
        };
        if q.msgs >= self.cfg.relay_quota_msgs || q.bytes + bytes > self.cfg.relay_quota_bytes {
            return false;
        }
        q.msgs += 1;
        q.bytes += bytes;
        true
    }

    /// As the far end: `inner` from `src` came through forwarder `f`.
    pub(crate) fn relay_deliver(&mut self, f: Address, src: Address, inner: Msg) {
        if matches!(inner, Msg::RelayFwd { .. } | Msg::RelayDel { .. }) || src == self.me {
            self.stats.relay_refused += 1;
            return;
        }
        if !self.table.get(&f).is_some_and(|p| p.is_direct()) {
            self.stats.relay_refused += 1;
            return;
        }
        if self.table.get(&src).is_none() {
            if !self
                .cfg
                .admission
                .admit(&src, LinkKind::Relay, ConnType::NONE)
            {
                self.stats.refused += 1;
                return;
            }
            self.relay.attempts.retain(|a| a.peer != src);
            // Our link to the forwarder must outlive its other reasons too.
            self.add_reason(&f, ConnType::OVERLAP);
            self.insert_peer(src, Path::Relay { via: f }, ConnType::NONE, 0);
            self.emit(Event::RelayUp { peer: src, via: f });
        }
        self.on_msg(src, inner, false);
    }

    /// Forwarder `f` cannot reach `peer` any more.
    pub(crate) fn relay_gone(&mut self, f: Address, peer: Address) {
        if self
            .table
            .get(&peer)
            .is_some_and(|p| p.path == Path::Relay { via: f })
        {
            self.forget_peer(&peer);
        }
    }

    /// Time a relay attempt may take (for callers that wait on one).
    pub fn relay_timeout(&self) -> Duration {
        self.cfg.request_timeout * 4
    }
}
