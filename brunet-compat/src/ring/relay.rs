//! Two-hop relay edges (Brunet's `Relay`/`RelayOverlap`, formerly Tunnel): building them.
//!
//! When the runtime cannot link us to a peer we want (near, shortcut, on-demand), we
//! reach it in two hops through a forwarder that has direct links to both of us:
//!
//! 1. **Common neighbour, at once.** A direct peer whose announced near list holds the
//!    target is very likely linked to it (that is usually how we learnt of the target).
//!    We put the target in the table as reached through that forwarder and send it our
//!    status that way; its status coming back confirms the edge, a
//!    [`super::msg::Msg::RelayGone`] from the forwarder or silence moves on to the next candidate.
//! 2. **Exchange.** Otherwise we send the target our direct neighbours
//!    ([`Payload::RelayOffer`], routed exact); it answers with a common one, or with its
//!    own neighbours ([`Payload::RelayAnswer`]), one of which we then link to as an
//!    `overlap` link and use as the forwarder.
//! 3. A failed attempt is retried after a backoff (5 s doubling to 60 s) for as long as
//!    the reason to link lasts; a peer we could not link to directly is relayed to at
//!    once, without asking the runtime again, for `direct_retry`.
//!
//! Forwarders are ranked by latency or by link age ([`RelaySelect`]). Only direct links
//! ever forward (never relay over a relay), one node builds at most
//! `relay_max_per_forwarder` edges through one forwarder, and the forwarder enforces a
//! per-source quota (see [`super::forwarder`]).

use std::time::Duration;

use crate::address::Address;

use super::config::RelaySelect;
use super::io::Event;
use super::msg::{Mode, NeighbourInfo, Payload};
use super::node::Node;
use super::table::{ConnType, LinkKind, Path};
use super::time::Time;
use super::timer::Timer;

/// Neighbours offered in a relay exchange (Brunet: 16).
const MAX_OFFER: usize = 16;
/// Overlap candidates tried per relay attempt.
const MAX_OVERLAPS: usize = 3;
/// First wait after a failed attempt; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Reasons worth a relay edge.
pub(crate) const RELAYABLE: ConnType = ConnType::NEAR
    .union(ConnType::SHORTCUT)
    .union(ConnType::ONDEMAND);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Nothing in flight (about to advance).
    Idle,
    /// The edge through `via` is in the table; waiting for the far end to answer.
    Probing { via: Address },
    /// Offer sent; waiting for the answer.
    Offered,
    /// Linking to `via` as an overlap forwarder.
    Overlap { via: Address },
}

#[derive(Clone, Debug)]
struct Attempt {
    peer: Address,
    reasons: ConnType,
    stage: Stage,
    /// Forwarders to probe, best last.
    candidates: Vec<Address>,
    /// Overlap forwarders to link to, best last.
    overlaps: Vec<Address>,
    offered: bool,
    deadline: Time,
}

#[derive(Clone, Copy, Debug)]
struct Backoff {
    peer: Address,
    until: Time,
    wait: Duration,
}

/// Relay attempts, backoffs, peers we relay to at once, and the forwarder's state.
#[derive(Clone, Debug, Default)]
pub(crate) struct RelayState {
    attempts: Vec<Attempt>,
    backoff: Vec<Backoff>,
    /// Peers the runtime could not link to directly, until when we relay at once.
    no_direct: Vec<(Address, Time)>,
    pub(crate) quotas: Vec<super::forwarder::Quota>,
    /// As a forwarder: (source, destination) pairs passed recently.
    pub(crate) passed: Vec<(Address, Address)>,
}

impl RelayState {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.attempts.capacity() * std::mem::size_of::<Attempt>()
            + self
                .attempts
                .iter()
                .map(|a| (a.candidates.capacity() + a.overlaps.capacity()) * 20)
                .sum::<usize>()
            + self.backoff.capacity() * std::mem::size_of::<Backoff>()
            + self.no_direct.capacity() * std::mem::size_of::<(Address, Time)>()
            + self.quotas.capacity() * std::mem::size_of::<super::forwarder::Quota>()
            + self.passed.capacity() * 40
    }

    pub(crate) fn next_deadline(&self) -> Option<Time> {
        self.attempts.iter().map(|a| a.deadline).min()
    }
}

impl Node {
    /// True when `peer` is to be reached by relay without asking the runtime first.
    pub(crate) fn relay_first(&self, peer: &Address) -> bool {
        self.relay.no_direct.iter().any(|(a, _)| a == peer)
    }

    /// The runtime could not link to `peer`: relay to it, at once for a while.
    pub(crate) fn relay_after_failure(&mut self, peer: Address, reasons: ConnType) {
        let until = self.now + self.cfg.direct_retry;
        match self.relay.no_direct.iter_mut().find(|(a, _)| *a == peer) {
            Some(e) => e.1 = until,
            None => self.relay.no_direct.push((peer, until)),
        }
        self.relay_start(peer, reasons);
    }

    /// Our direct, non-relayed neighbours, best candidates first for the configured
    /// selection.
    pub(super) fn direct_infos(&self) -> Vec<NeighbourInfo> {
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

    /// Best first.
    pub(super) fn rank(&self, v: &mut [NeighbourInfo]) {
        match self.cfg.relay_select {
            RelaySelect::Latency => {
                v.sort_by_key(|n| (if n.rtt_us == 0 { u32::MAX } else { n.rtt_us }, n.addr))
            }
            RelaySelect::Age => v.sort_by_key(|n| (std::cmp::Reverse(n.age_ms), n.addr)),
        }
    }

    /// Our direct peers that announce `peer` among their near neighbours, best last.
    fn common_forwarders(&self, peer: &Address) -> Vec<Address> {
        let now = self.now;
        let mut v: Vec<NeighbourInfo> = self
            .table
            .iter()
            .filter(|p| p.is_direct() && p.addr != *peer && p.near.contains(peer))
            .map(|p| p.info(now))
            .collect();
        self.rank(&mut v);
        v.iter().rev().map(|n| n.addr).collect()
    }

    /// Starts building a relay edge to `peer`, or adds `reasons` to one in progress.
    pub(crate) fn relay_start(&mut self, peer: Address, reasons: ConnType) {
        let reasons = reasons.without(ConnType::OVERLAP | ConnType::LEAF);
        if peer == self.me || !reasons.intersects(RELAYABLE) {
            return;
        }
        if self.table.contains(&peer) {
            self.add_reason(&peer, reasons);
            return;
        }
        if let Some(a) = self.relay.attempts.iter_mut().find(|a| a.peer == peer) {
            a.reasons |= reasons;
            return;
        }
        let now = self.now;
        if self
            .relay
            .backoff
            .iter()
            .any(|b| b.peer == peer && b.until > now)
        {
            return;
        }
        self.stats.relay_attempts += 1;
        let candidates = self.common_forwarders(&peer);
        self.relay.attempts.push(Attempt {
            peer,
            reasons,
            stage: Stage::Idle,
            candidates,
            overlaps: Vec::new(),
            offered: false,
            deadline: now,
        });
        self.relay_advance(peer);
    }

    fn attempt_index(&self, peer: &Address) -> Option<usize> {
        self.relay.attempts.iter().position(|a| a.peer == *peer)
    }

    /// Moves the attempt for `peer` to its next step: the next common forwarder, the
    /// offer, the next overlap, or failure.
    fn relay_advance(&mut self, peer: Address) {
        let Some(i) = self.attempt_index(&peer) else {
            return;
        };
        self.relay.attempts[i].stage = Stage::Idle;
        while let Some(f) = self.relay.attempts[i].candidates.pop() {
            if self.relay_probe(i, f) {
                return;
            }
        }
        let now = self.now;
        if !self.relay.attempts[i].offered {
            let a = &mut self.relay.attempts[i];
            a.offered = true;
            a.stage = Stage::Offered;
            a.deadline = now + self.cfg.request_timeout * 2;
            self.timers.set_min(Timer::Pending, a.deadline);
            let via = if self.near.routable {
                None
            } else {
                self.table.iter().find(|p| p.is_direct()).map(|p| p.addr)
            };
            let neighbours = self.direct_infos();
            let payload = Payload::RelayOffer { via, neighbours };
            self.originate(peer, Mode::Exact, payload, false);
            return;
        }
        while let Some(f) = self.relay.attempts[i].overlaps.pop() {
            if self.table.get(&f).is_some_and(|p| p.is_direct()) {
                if self.relay_probe(i, f) {
                    return;
                }
                continue;
            }
            if self.table.contains(&f) {
                continue; // reached through a relay itself: never relay over a relay
            }
            let a = &mut self.relay.attempts[i];
            a.stage = Stage::Overlap { via: f };
            a.deadline = now + self.cfg.link_timeout;
            self.timers.set_min(Timer::Pending, a.deadline);
            self.want_link(f, ConnType::OVERLAP);
            return;
        }
        self.relay_fail(i);
    }

    /// Puts `peer` in the table as reached through `f` and tells it our status that
    /// way; false when `f` cannot serve (not direct, over its quota, refused).
    fn relay_probe(&mut self, i: usize, f: Address) -> bool {
        let peer = self.relay.attempts[i].peer;
        let reasons = self.relay.attempts[i].reasons;
        if f == peer || !self.table.get(&f).is_some_and(|p| p.is_direct()) {
            return false;
        }
        let through = self
            .table
            .iter()
            .filter(|p| p.path == Path::Relay { via: f })
            .count();
        if through >= self.cfg.relay_max_per_forwarder {
            self.stats.relay_refused += 1;
            return false;
        }
        if self.table.contains(&peer) {
            // Reached meanwhile (a direct link, or the far end's relay edge).
            self.relay.attempts.swap_remove(i);
            self.add_reason(&peer, reasons);
            return true;
        }
        if !self.cfg.admission.admit(&peer, LinkKind::Relay, reasons) {
            self.stats.refused += 1;
            return false;
        }
        let deadline = self.now + self.cfg.request_timeout;
        let a = &mut self.relay.attempts[i];
        a.stage = Stage::Probing { via: f };
        a.deadline = deadline;
        self.timers.set_min(Timer::Pending, deadline);
        self.add_reason(&f, ConnType::OVERLAP);
        self.insert_peer(peer, Path::Relay { via: f }, reasons, 0);
        true
    }

    /// Gives up for now: forget the attempt and wait before the next one.
    fn relay_fail(&mut self, i: usize) {
        let a = self.relay.attempts.swap_remove(i);
        self.stats.relay_failures += 1;
        let now = self.now;
        match self.relay.backoff.iter_mut().find(|b| b.peer == a.peer) {
            Some(b) => {
                b.wait = (b.wait * 2).min(BACKOFF_MAX);
                b.until = now + b.wait;
            }
            None => self.relay.backoff.push(Backoff {
                peer: a.peer,
                until: now + BACKOFF_FIRST,
                wait: BACKOFF_FIRST,
            }),
        }
        self.near.seek_dirty = true;
    }

    /// A probe failed: take the unconfirmed edge out of the table without fuss.
    fn relay_unprobe(&mut self, peer: &Address, via: Address) {
        if self
            .table
            .get(peer)
            .is_some_and(|p| p.path == Path::Relay { via })
        {
            self.forget_quietly(peer);
        }
    }

    /// Something arrived from `peer` through forwarder `via`: a probe is confirmed, on
    /// the path the far end proved to work.
    pub(crate) fn relay_confirmed(&mut self, peer: Address, via: Address) {
        let Some(i) = self.attempt_index(&peer) else {
            return;
        };
        self.relay.attempts.swap_remove(i);
        if self
            .table
            .get(&peer)
            .is_some_and(|p| matches!(p.path, Path::Relay { .. }) && p.path != Path::Relay { via })
        {
            self.table.set_path(&peer, Path::Relay { via });
            self.add_reason(&via, ConnType::OVERLAP);
        }
        self.relay.backoff.retain(|b| b.peer != peer);
        self.stats.relays_built += 1;
        self.emit(Event::RelayUp { peer, via });
    }

    /// The answer to our offer.
    pub(crate) fn relay_answer(
        &mut self,
        src: Address,
        forwarder: Option<Address>,
        mut theirs: Vec<NeighbourInfo>,
    ) {
        let Some(i) = self.attempt_index(&src) else {
            return;
        };
        if self.relay.attempts[i].stage != Stage::Offered {
            return;
        }
        theirs.retain(|n| n.addr != self.me && n.addr != src && n.addr.is_ah());
        self.rank(&mut theirs);
        let a = &mut self.relay.attempts[i];
        a.overlaps = theirs
            .iter()
            .take(MAX_OVERLAPS)
            .rev()
            .map(|n| n.addr)
            .collect();
        a.candidates = forwarder.into_iter().collect();
        self.relay_advance(src);
    }

    /// A link to `peer` came up: a relay attempt to it is moot, and attempts waiting
    /// for it as an overlap forwarder can probe it.
    pub(crate) fn relay_link_up(&mut self, peer: Address) {
        if let Some(i) = self.attempt_index(&peer) {
            self.relay.attempts.swap_remove(i);
        }
        self.relay.no_direct.retain(|(a, _)| *a != peer);
        let waiting: Vec<Address> = self
            .relay
            .attempts
            .iter()
            .filter(|a| a.stage == Stage::Overlap { via: peer })
            .map(|a| a.peer)
            .collect();
        for p in waiting {
            if let Some(i) = self.attempt_index(&p)
                && !self.relay_probe(i, peer)
            {
                self.relay_advance(p);
            }
        }
    }

    /// The overlap link to `f` could not be made.
    pub(crate) fn relay_overlap_failed(&mut self, f: Address) {
        let waiting: Vec<Address> = self
            .relay
            .attempts
            .iter()
            .filter(|a| a.stage == Stage::Overlap { via: f })
            .map(|a| a.peer)
            .collect();
        for p in waiting {
            self.relay_advance(p);
        }
    }

    /// Forwarder `f` cannot reach `peer`: a probe moves on, an edge is rebuilt.
    pub(crate) fn relay_gone(&mut self, f: Address, peer: Address) {
        let probing = self
            .attempt_index(&peer)
            .is_some_and(|i| self.relay.attempts[i].stage == Stage::Probing { via: f });
        if probing {
            self.relay_unprobe(&peer, f);
            self.relay_advance(peer);
            return;
        }
        let Some(p) = self.table.get(&peer) else {
            return;
        };
        if p.path != (Path::Relay { via: f }) {
            return;
        }
        let reasons = p.types;
        self.forget_peer(&peer);
        self.relay_start(peer, reasons);
    }

    /// Expires attempts, backoffs and the relay-at-once list; releases overlap links
    /// no relay edge uses any more.
    pub(crate) fn relay_expire(&mut self) {
        let now = self.now;
        self.relay.no_direct.retain(|(_, until)| *until > now);
        self.relay
            .backoff
            .retain(|b| now.saturating_since(b.until) < BACKOFF_MAX * 2);
        let due: Vec<(Address, Stage)> = self
            .relay
            .attempts
            .iter()
            .filter(|a| a.deadline <= now && a.stage != Stage::Idle)
            .map(|a| (a.peer, a.stage))
            .collect();
        for (peer, stage) in due {
            if let Stage::Probing { via } = stage {
                self.relay_unprobe(&peer, via);
            }
            self.relay_advance(peer);
        }
        let idle: Vec<Address> = self
            .table
            .iter()
            .filter(|p| p.types.contains(ConnType::OVERLAP))
            .map(|p| p.addr)
            .filter(|a| {
                !self.relay_uses(a)
                    && !self
                        .relay
                        .attempts
                        .iter()
                        .any(|t| t.stage == Stage::Overlap { via: *a })
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

    /// Time a relay attempt may take at most, from the failed link to a confirmed
    /// edge (for callers that wait on one).
    pub fn relay_timeout(&self) -> Duration {
        self.cfg.request_timeout * 4 + self.cfg.link_timeout * MAX_OVERLAPS as u32
    }
}
