//! Relay edges as seen by the forwarder and by the far end (which also answers offers).
//!
//! A forwarder passes `RelayFwd { to, inner }` from one direct neighbour to another as
//! `RelayDel { from, inner }`. It refuses anything that would relay over a relay (either
//! side not a direct link, or an inner relay message) and meters each source with a
//! message and byte quota per second. It remembers which pairs it served, so when it
//! loses one end it tells the other at once ([`Msg::RelayGone`]) instead of waiting for
//! the next message to bounce.

use std::time::Duration;

use crate::address::Address;

use super::config::RelaySelect;
use super::io::Event;
use super::msg::{Msg, NeighbourInfo, Payload};
use super::node::Node;
use super::table::{ConnType, LinkKind, Path};
use super::time::Time;

/// Neighbours a relay answer offers at most (Brunet: 16).
const MAX_OFFER: usize = 16;

/// Pairs a forwarder remembers (the oldest is forgotten first).
const MAX_PASSED: usize = 64;

/// Per-source traffic passed in the current one-second window.
#[derive(Clone, Debug)]
pub(crate) struct Quota {
    src: Address,
    window: Time,
    msgs: u32,
    bytes: u64,
}

impl Node {
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
        if !self.relay.passed.contains(&(from, to)) {
            if self.relay.passed.len() >= MAX_PASSED {
                self.relay.passed.remove(0);
            }
            self.relay.passed.push((from, to));
        }
        self.stats.relayed += 1;
        let inner = Box::new(inner);
        self.transmit(link, Msg::RelayDel { from, inner });
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
        let i = match self.relay.quotas.iter().position(|q| q.src == src) {
            Some(i) => i,
            None => {
                self.relay.quotas.push(Quota {
                    src,
                    window: now,
                    msgs: 0,
                    bytes: 0,
                });
                self.relay.quotas.len() - 1
            }
        };
        let q = &mut self.relay.quotas[i];
        if q.msgs >= self.cfg.relay_quota_msgs || q.bytes + bytes > self.cfg.relay_quota_bytes {
            return false;
        }
        q.msgs += 1;
        q.bytes += bytes;
        true
    }

    /// As a forwarder: our link to `gone` is gone; tell those we relayed to it.
    pub(crate) fn relay_forwarder_lost(&mut self, gone: &Address) {
        if self.relay.passed.is_empty() {
            return;
        }
        let srcs: Vec<Address> = self
            .relay
            .passed
            .iter()
            .filter(|(_, d)| d == gone)
            .map(|(s, _)| *s)
            .collect();
        self.relay.passed.retain(|(s, d)| s != gone && d != gone);
        for s in srcs {
            if self.table.get(&s).is_some_and(|p| p.is_direct()) {
                self.send_to(&s, Msg::RelayGone { peer: *gone });
            }
        }
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
        match self.table.get(&src).map(|p| p.path) {
            // A relay edge starts with the builder's status, which says it wants the
            // edge; anything else from a stranger (a late `Want(false)`, the status of
            // a node that dropped us) must not resurrect it.
            None if !matches!(inner, Msg::Status { wants: true, .. }) => {
                self.stats.unknown_link += 1;
                // The sender still holds an edge we dropped: close it (never answering
                // a Close, so two strangers cannot ping-pong).
                if !matches!(inner, Msg::Close) {
                    let close = Box::new(Msg::Close);
                    self.send_to(
                        &f,
                        Msg::RelayFwd {
                            to: src,
                            inner: close,
                        },
                    );
                }
                return;
            }
            None => {
                if !self
                    .cfg
                    .admission
                    .admit(&src, LinkKind::Relay, ConnType::NONE)
                {
                    self.stats.refused += 1;
                    return;
                }
                // Our link to the forwarder must outlive its other reasons too.
                self.add_reason(&f, ConnType::OVERLAP);
                self.insert_peer(src, Path::Relay { via: f }, ConnType::NONE, 0);
                self.emit(Event::RelayUp { peer: src, via: f });
            }
            Some(Path::Relay { .. }) => self.relay_confirmed(src, f),
            Some(Path::Link(..)) => {}
        }
        self.on_msg(src, inner, false);
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
                    let r = |x: u32| u64::from(if x == 0 { u32::MAX } else { x });
                    r(t.rtt_us) + r(mine.rtt_us)
                }
                RelaySelect::Age => {
                    let mine_ms = now.saturating_since(mine.since).as_millis();
                    let age = u64::from(t.age_ms).min(u64::try_from(mine_ms).unwrap_or(u64::MAX));
                    u64::MAX - age
                }
            };
            if best.is_none_or(|(s, a)| (score, t.addr) < (s, a)) {
                best = Some((score, t.addr));
            }
        }
        let neighbours = self.direct_infos();
        let forwarder = best.map(|(_, a)| a);
        let payload = Payload::RelayAnswer {
            forwarder,
            neighbours,
        };
        self.reply(src, via, payload);
    }
}
