//! Links as the simulator's runtime makes them: wishes become links after three one-way
//! trips (signalling, checks, handshake) unless the pair is blocked or an end is gone;
//! closing a link tells both ends one trip later.
#![allow(clippy::disallowed_types)]

use std::time::Duration;

use crate::address::Address;
use crate::ring::{Input, LinkId, LinkKind};

use super::engine::{Ev, LinkRec, LinkState, Sim, secs};

impl Sim {
    pub(crate) fn link_wanted(&mut self, i: u32, peer: Address, leaf_end: Option<u32>) {
        let fail = self.now + secs(self.cfg.link_fail_s);
        let Some(&j) = self.addr_index.get(&peer) else {
            self.push(fail, Ev::LinkFail { node: i, peer });
            return;
        };
        if self.nodes[j as usize].node.is_none() {
            self.push(fail, Ev::LinkFail { node: i, peer });
            return;
        }
        let key = (i.min(j), i.max(j));
        if self.pairs.contains_key(&key) || i == j {
            return;
        }
        if self.net.is_blocked(i as usize, j as usize) {
            self.push(fail, Ev::LinkFail { node: i, peer });
            return;
        }
        let id = self.links.len() as u64;
        self.links.push(LinkRec {
            a: i,
            b: j,
            state: LinkState::Connecting,
            leaf_end,
        });
        self.pairs.insert(key, id);
        // Signalling, ICE checks and the handshake: about three one-way trips.
        let lat = Duration::from_micros(3 * self.net.one_way_us(i as usize, j as usize));
        self.push(self.now + lat, Ev::LinkUp(id));
    }

    pub(crate) fn link_up(&mut self, l: u64) {
        let rec = self.links[l as usize];
        if rec.state != LinkState::Connecting {
            return;
        }
        let (a, b) = (rec.a, rec.b);
        let alive = |s: &Sim, x: u32| s.nodes[x as usize].node.is_some();
        if !alive(self, a) || !alive(self, b) {
            self.links[l as usize].state = LinkState::Down;
            self.pairs.remove(&(a.min(b), a.max(b)));
            for (x, y) in [(a, b), (b, a)] {
                if alive(self, x) {
                    let peer = self.nodes[y as usize].addr;
                    self.input(x, Input::LinkFailed { peer });
                }
            }
            return;
        }
        self.links[l as usize].state = LinkState::Up;
        self.nodes[a as usize].links.push(l);
        self.nodes[b as usize].links.push(l);
        let rtt = Duration::from_micros(2 * self.net.one_way_us(a as usize, b as usize));
        for (x, y) in [(a, b), (b, a)] {
            let peer = self.nodes[y as usize].addr;
            let input = Input::LinkUp {
                link: LinkId(l),
                peer,
                kind: LinkKind::Direct,
                rtt: Some(rtt),
                leaf: rec.leaf_end == Some(x),
            };
            self.input(x, input);
        }
    }

    pub(crate) fn close_link(&mut self, l: u64) {
        let rec = self.links[l as usize];
        if rec.state == LinkState::Down {
            return;
        }
        self.links[l as usize].state = LinkState::Down;
        self.pairs.remove(&(rec.a.min(rec.b), rec.a.max(rec.b)));
        if rec.state == LinkState::Up {
            for x in [rec.a, rec.b] {
                self.nodes[x as usize].links.retain(|&k| k != l);
            }
            let lat = Duration::from_micros(self.net.one_way_us(rec.a as usize, rec.b as usize));
            for x in [rec.a, rec.b] {
                self.push(self.now + lat, Ev::LinkDown { node: x, link: l });
            }
        }
    }
}
