//! Connect-to-me traffic of the near overlord: joining through a peer, re-join probes
//! from afar, directional probes along the ring, the answers, and leaf release.

use std::time::Duration;

use crate::address::{Address, Direction};

use super::msg::{Header, Mode, Msg, Payload, Routed};
use super::near::MAX_HINTS;
use super::node::Node;
use super::table::ConnType;
use super::timer::Timer;

impl Node {
    /// Forwarded connect-to-me to our own position, through a random leaf.
    pub(super) fn send_join(&mut self) {
        let i = self.below(self.table.len());
        let leaf = self.table.at(i).addr;
        self.send_self_ctm(leaf, Some(leaf));
    }

    /// The re-join probe: a connect-to-me to our own position entered at a far peer
    /// (a shortcut if we have one), answered by the two nodes bracketing us. Joins
    /// racing each other can leave two interleaved chains whose members each look
    /// consistent to themselves; a probe arriving from afar lands on the other chain
    /// and links the two (Chord's stabilisation plays this part there).
    pub(super) fn send_rejoin(&mut self) {
        let far: Vec<usize> = (0..self.table.len())
            .filter(|&i| {
                let p = self.table.at(i);
                p.routable && !self.near.current.contains(&p.addr)
            })
            .collect();
        let i = match far.len() {
            0 => self.below(self.table.len()),
            n => far[self.below(n)],
        };
        let first = self.table.at(i).addr;
        self.send_self_ctm(first, None);
    }

    fn send_self_ctm(&mut self, first: Address, via: Option<Address>) {
        self.near.token = self.near.token.wrapping_add(1);
        self.stats.ctm_sent += 1;
        let r = Routed {
            hdr: Header {
                hops: 1,
                ttl: self.ttl(),
                src: self.me,
                dst: self.me,
                mode: Mode::Default,
            },
            payload: Payload::Ctm {
                kind: ConnType::NEAR,
                token: self.near.token,
                via,
                near: Vec::new(),
            },
        };
        self.send_to(&first, Msg::Routed(r));
    }

    /// Connect-to-me delivered at each of the next `k` nodes on one side.
    pub(super) fn send_probe(&mut self, dir: Direction, k: usize) {
        self.near.token = self.near.token.wrapping_add(1);
        self.stats.ctm_sent += 1;
        let r = Routed {
            hdr: Header {
                hops: 0,
                ttl: u16::try_from(k).unwrap_or(u16::MAX),
                src: self.me,
                dst: Address::directional(dir),
                mode: Mode::Path,
            },
            payload: Payload::Ctm {
                kind: ConnType::NEAR,
                token: self.near.token,
                via: None,
                near: self.near_list(),
            },
        };
        self.route(r, None);
    }

    /// A connect-to-me reached us: answer, and for near requests also link back. For
    /// shortcuts the requester links when the answer arrives (Brunet linked back at
    /// once, but that link came up before the routed answer and was closed as
    /// unwanted by both sides, then made again).
    pub(crate) fn ctm_request(
        &mut self,
        src: Address,
        kind: ConnType,
        token: u32,
        via: Option<Address>,
        near: Vec<Address>,
    ) {
        if src == self.me {
            return;
        }
        if kind.contains(ConnType::NEAR) {
            self.near.hints.extend(near.into_iter().take(MAX_HINTS));
            self.near.hints.truncate(MAX_HINTS);
            // Near requests may come from a node our side of the ring cannot route
            // back to (a joiner, or a chain racing joins left apart): link back at
            // once rather than trust the answer's way home.
            self.want_link_via(src, ConnType::NONE, via);
        }
        let near = self.near_list();
        self.reply(src, via, Payload::CtmReply { token, kind, near });
    }

    /// The answer to our connect-to-me: link to the responder.
    pub(crate) fn ctm_reply(
        &mut self,
        src: Address,
        token: u32,
        kind: ConnType,
        near: Vec<Address>,
    ) {
        if src == self.me {
            return;
        }
        if kind.contains(ConnType::SHORTCUT) {
            self.shortcut_reply(src, token);
            return;
        }
        self.near.hints.extend(near.into_iter().take(MAX_HINTS));
        self.near.hints.truncate(MAX_HINTS);
        self.want_link(src, ConnType::NEAR);
        self.timers.set_min(Timer::Near, self.now);
    }

    /// Releases leaf links once the ring holds us.
    pub(crate) fn leaf_tick(&mut self) {
        if !self.near.connected {
            self.timers
                .set(Timer::Leaf, self.now + Duration::from_secs(30));
            return;
        }
        let leaves: Vec<Address> = self
            .table
            .iter()
            .filter(|p| {
                p.types.contains(ConnType::LEAF)
                    && self.now.saturating_since(p.since) >= self.cfg.leaf_hold
            })
            .map(|p| p.addr)
            .collect();
        for a in leaves {
            self.clear_reason(&a, ConnType::LEAF);
        }
        if let Some(first) = self
            .table
            .iter()
            .filter(|p| p.types.contains(ConnType::LEAF))
            .map(|p| p.since)
            .min()
        {
            self.timers.set(Timer::Leaf, first + self.cfg.leaf_hold);
        }
    }
}
