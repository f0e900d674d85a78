//! Link bookkeeping every concern shares: links coming and going, the reasons to keep
//! them, wishes for new ones, and sending to a table peer (directly or relayed).

use std::time::Duration;

use crate::address::Address;

use super::io::Event;
use super::msg::Msg;
use super::node::{Node, Pending, rtt_us};
use super::relay::RELAYABLE;
use super::table::{ConnType, LinkId, LinkKind, Path, Peer};
use super::time::Time;
use super::timer::Timer;

/// A link neither side has a reason for is kept this long after it came up.
const LINK_GRACE: Duration = Duration::from_secs(2);

/// Delay that folds bursts of link changes into one near check.
pub(super) const NEAR_COALESCE: Duration = Duration::from_millis(200);

impl Node {
    pub(super) fn on_link_up(
        &mut self,
        link: LinkId,
        peer: Address,
        kind: LinkKind,
        rtt: Option<Duration>,
        leaf: bool,
    ) {
        if peer == self.me {
            self.emit(Event::CloseLink { link });
            return;
        }
        let mut reasons = ConnType::NONE;
        if let Some(i) = self.pending.iter().position(|p| p.addr == peer) {
            reasons = self.pending.swap_remove(i).reasons;
        }
        if leaf {
            reasons |= ConnType::LEAF;
        }
        let rtt_us = rtt.map_or(0, rtt_us);
        if let Some(p) = self.table.get_mut(&peer) {
            // A direct link replaces a relay edge; a second link to a linked peer
            // replaces the first (the runtime keeps one link per peer).
            let was_relay = matches!(p.path, Path::Relay { .. });
            if rtt_us > 0 {
                p.rtt_us = rtt_us;
            }
            self.table.set_path(&peer, Path::Link(link, kind));
            if was_relay {
                self.emit(Event::RelayDown { peer });
            }
            self.add_reason(&peer, reasons);
            self.send_status(&peer);
            self.relay_link_up(peer);
            return;
        }
        if !self.cfg.admission.admit(&peer, kind, reasons) {
            self.stats.refused += 1;
            self.emit(Event::CloseLink { link });
            return;
        }
        self.insert_peer(peer, Path::Link(link, kind), reasons, rtt_us);
        self.relay_link_up(peer);
    }

    /// Adds a fresh table entry, tells the peer our status and schedules upkeep.
    pub(crate) fn insert_peer(
        &mut self,
        addr: Address,
        path: Path,
        reasons: ConnType,
        rtt_us: u32,
    ) {
        let now = self.now;
        self.lost.retain(|(a, _)| *a != addr);
        self.table.insert(Peer {
            addr,
            path,
            types: ConnType::NONE,
            remote_wants: true,
            sent_unwant: false,
            routable: false,
            since: now,
            last_used: now,
            rtt_us,
            near: Vec::new(),
            size_log2: f32::NAN,
            lists_me: false,
            shortcut_until: Time::NEVER,
        });
        self.add_reason(&addr, reasons);
        self.send_status(&addr);
        self.near_soon();
        if reasons.contains(ConnType::LEAF) {
            self.timers.set_min(
                Timer::Leaf,
                now + self.cfg.leaf_hold.max(Duration::from_secs(1)),
            );
        }
    }

    pub(super) fn on_link_down(&mut self, link: LinkId) {
        let Some(addr) = self.table.by_link(link).map(|p| p.addr) else {
            return;
        };
        self.stats.links_lost += 1;
        self.lost.push((addr, self.now));
        self.forget_peer(&addr);
    }

    pub(super) fn on_link_failed(&mut self, peer: Address) {
        self.stats.link_failures += 1;
        self.near.seek_dirty = true;
        let reasons = match self.pending.iter().position(|p| p.addr == peer) {
            Some(i) => self.pending.swap_remove(i).reasons,
            None => ConnType::NONE,
        };
        if reasons.contains(ConnType::OVERLAP) {
            self.relay_overlap_failed(peer);
        }
        if reasons.intersects(RELAYABLE) && !self.table.contains(&peer) {
            self.relay_after_failure(peer, reasons);
        }
    }

    /// Removes a peer whose link is gone, and every relay edge through it.
    pub(crate) fn forget_peer(&mut self, addr: &Address) {
        let Some(p) = self.table.remove(addr) else {
            return;
        };
        if let Path::Link(link, _) = p.path {
            self.emit(Event::CloseLink { link });
        } else {
            self.emit(Event::RelayDown { peer: *addr });
        }
        let through: Vec<Address> = self
            .table
            .iter()
            .filter(|q| q.path == Path::Relay { via: *addr })
            .map(|q| q.addr)
            .collect();
        for q in through {
            self.table.remove(&q);
            self.emit(Event::RelayDown { peer: q });
        }
        self.relay_forwarder_lost(addr);
        self.near_soon();
    }

    /// Removes an unconfirmed relay edge: no event, the runtime never heard of it.
    pub(crate) fn forget_quietly(&mut self, addr: &Address) {
        if self.table.remove(addr).is_some() {
            self.near_soon();
        }
    }

    /// Schedules a near check: at once for a node with a single peer (joining), else
    /// after a short delay that folds a burst of link changes into one check.
    fn near_soon(&mut self) {
        let delay = if self.table.len() <= 1 {
            Duration::ZERO
        } else {
            NEAR_COALESCE
        };
        self.timers.set_min(Timer::Near, self.now + delay);
    }

    /// Asks the runtime for a link to `addr`, or adds `reasons` to the existing one.
    pub(crate) fn want_link(&mut self, addr: Address, reasons: ConnType) {
        self.want_link_via(addr, reasons, None);
    }

    /// [`Node::want_link`], naming a node that can pass signalling on to `addr`.
    pub(crate) fn want_link_via(&mut self, addr: Address, reasons: ConnType, via: Option<Address>) {
        if addr == self.me || !addr.is_ah() {
            return;
        }
        if self.table.get(&addr).is_some() {
            self.add_reason(&addr, reasons);
            return;
        }
        if let Some(p) = self.pending.iter_mut().find(|p| p.addr == addr) {
            p.reasons |= reasons;
            return;
        }
        if self.relay_first(&addr) && !reasons.contains(ConnType::OVERLAP) {
            // The runtime failed to link to it lately: relay (or, for a link the peer
            // asked for, leave it to the peer's relay).
            self.relay_start(addr, reasons);
            return;
        }
        let deadline = self.now + self.cfg.link_timeout;
        self.pending.push(Pending {
            addr,
            reasons,
            deadline,
        });
        self.timers.set_min(Timer::Pending, deadline);
        self.stats.links_wanted += 1;
        self.emit(Event::LinkWanted {
            peer: addr,
            reasons,
            via,
        });
    }

    pub(super) fn pending_tick(&mut self) {
        let now = self.now;
        let before = self.pending.len() + self.lost.len();
        self.pending.retain(|p| p.deadline > now);
        self.relay_expire();
        let lost_memory = self.cfg.lost_memory;
        self.lost
            .retain(|(_, t)| now.saturating_since(*t) < lost_memory);
        let unwanted: Vec<Address> = self
            .table
            .iter()
            .filter(|p| p.types.is_empty() && !p.remote_wants)
            .map(|p| p.addr)
            .collect();
        for a in unwanted {
            self.maybe_close(&a);
        }
        if self.pending.len() + self.lost.len() < before {
            // Candidates skipped as pending or lost may be tried again.
            self.near.seek_dirty = true;
        }
        let next = self
            .pending
            .iter()
            .map(|p| p.deadline)
            .chain(self.relay.next_deadline())
            .min();
        if let Some(at) = next {
            self.timers.set_min(Timer::Pending, at);
        }
    }

    /// True when `addr` lost its link recently (so stale lists must not bring it back).
    pub(crate) fn recently_lost(&self, addr: &Address) -> bool {
        self.lost.iter().any(|(a, _)| a == addr)
    }

    /// Adds reasons to keep the link to `addr`, telling the peer if it had been released.
    pub(crate) fn add_reason(&mut self, addr: &Address, reasons: ConnType) {
        if reasons.is_empty() {
            return;
        }
        let now = self.now;
        let Some(p) = self.table.get(addr) else {
            return;
        };
        let new_shortcut =
            reasons.contains(ConnType::SHORTCUT) && !p.types.contains(ConnType::SHORTCUT);
        let lifetime = if new_shortcut {
            self.cfg.shortcut_lifetime.mul_f64(0.5 + self.uniform())
        } else {
            Duration::ZERO
        };
        let Some(p) = self.table.get_mut(addr) else {
            return;
        };
        if new_shortcut {
            p.shortcut_until = now + lifetime;
        }
        p.types |= reasons;
        if p.sent_unwant {
            p.sent_unwant = false;
            self.send_to(addr, Msg::Want(true));
        }
    }

    /// Drops reasons; a link with none left is released, and closed once the peer
    /// has none either.
    pub(crate) fn clear_reason(&mut self, addr: &Address, reasons: ConnType) {
        let Some(p) = self.table.get_mut(addr) else {
            return;
        };
        p.types = p.types.without(reasons);
        if p.types.is_empty() && !p.sent_unwant {
            p.sent_unwant = true;
            self.send_to(addr, Msg::Want(false));
        }
        self.maybe_close(addr);
    }

    pub(super) fn maybe_close(&mut self, addr: &Address) {
        let Some(p) = self.table.get(addr) else {
            return;
        };
        if !p.types.is_empty() || p.remote_wants || self.relay_uses(addr) {
            return;
        }
        // A fresh link may still get a reason: a connect-to-me answer racing the link
        // its responder made, or the near check that ranks it 200 ms later.
        let grace_end = p.since + LINK_GRACE;
        if self.now < grace_end {
            self.timers.set_min(Timer::Pending, grace_end);
            return;
        }
        {
            // The runtime tells the far end of a link it closes; a relay edge has no
            // runtime, so we tell it ourselves.
            if self.table.get(addr).is_some_and(|p| p.link().is_none()) {
                self.send_to(addr, Msg::Close);
            }
            self.forget_peer(addr);
        }
    }
}
