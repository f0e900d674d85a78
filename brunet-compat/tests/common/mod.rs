//! A small deterministic network for scenario tests: nodes, links with a fixed
//! latency, a time-ordered queue, and every event each node emits, kept for checks.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use brunet_compat::address::Address;
use brunet_compat::ring::{Config, Event, Input, LinkId, LinkKind, Msg, Node, Output, Time};

/// One-way latency of every link.
pub const LATENCY: Duration = Duration::from_millis(10);

enum Item {
    Deliver { to: usize, link: u64, msg: Msg },
    LinkUp { link: u64 },
    LinkDown { node: usize, link: u64 },
}

/// The network.
pub struct Ring {
    pub nodes: Vec<Option<Node>>,
    pub addrs: Vec<Address>,
    pub now: Time,
    /// Links: id → (a, b, up).
    links: BTreeMap<u64, (usize, usize, bool)>,
    /// Links made by the runtime on its own (bootstrap): id → the end that made it.
    leaf_links: BTreeMap<u64, usize>,
    queue: BTreeMap<(Time, u64), Item>,
    seq: u64,
    deadlines: Vec<Time>,
    /// Every event, with the node and time.
    pub events: Vec<(usize, Time, Event)>,
}

impl Ring {
    /// `n` nodes at spread-out addresses, each configured by `cfg(i)`; node 0 starts the
    /// ring and the others join through it, 200 ms apart. Runs until `settle` later.
    pub fn build(n: usize, seed: u64, cfg: impl Fn(usize) -> Config, settle: Duration) -> Ring {
        let mut r = Ring {
            nodes: Vec::new(),
            addrs: Vec::new(),
            now: Time::ZERO,
            links: BTreeMap::new(),
            leaf_links: BTreeMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            deadlines: Vec::new(),
            events: Vec::new(),
        };
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for i in 0..n {
            let mut b = [0u8; 20];
            for c in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *c = x as u8;
            }
            let addr = Address::ah(b);
            let mut node = Node::new(cfg(i), addr, r.now);
            if i == 0 {
                node.create_ring();
            }
            r.nodes.push(Some(node));
            r.addrs.push(addr);
            r.deadlines.push(Time::ZERO);
            r.drain(i);
            if i > 0 {
                r.link(i, 0, true);
                let t = r.now + Duration::from_millis(200);
                r.run_until(t);
            }
        }
        let t = r.now + settle;
        r.run_until(t);
        r
    }

    /// `n` nodes that each start a ring of their own, as chamber's daemon does (no node
    /// knows whether it is first); leaf links then follow the friend graph `friends`,
    /// `stagger` apart, as friends come online. Runs until `settle` after the last.
    pub fn friends(
        n: usize,
        seed: u64,
        friends: &[(usize, usize)],
        stagger: Duration,
        settle: Duration,
    ) -> Ring {
        let mut r = Ring::build(0, seed, |_| Config::with_seed(0), Duration::ZERO);
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for i in 0..n {
            let mut b = [0u8; 20];
            for c in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *c = x as u8;
            }
            let addr = Address::ah(b);
            let mut node = Node::new(Config::with_seed(seed ^ i as u64), addr, r.now);
            node.create_ring();
            r.nodes.push(Some(node));
            r.addrs.push(addr);
            r.deadlines.push(Time::ZERO);
            r.drain(i);
        }
        for &(a, b) in friends {
            r.link(a, b, true);
            r.run_for(stagger);
        }
        r.run_for(settle);
        r
    }

    fn push(&mut self, at: Time, item: Item) {
        self.seq += 1;
        self.queue.insert((at, self.seq), item);
    }

    /// Starts a link between `a` and `b` (up after three one-way trips).
    pub fn link(&mut self, a: usize, b: usize, leaf: bool) {
        if a == b
            || self
                .links
                .values()
                .any(|&(x, y, up)| up && ((x, y) == (a, b) || (x, y) == (b, a)))
        {
            return;
        }
        let id = self.links.len() as u64 + 1;
        self.links.insert(id, (a, b, true));
        let at = self.now + LATENCY * 3;
        self.push(at, Item::LinkUp { link: id });
        if leaf {
            self.leaf_links.insert(id, a);
        }
    }

    fn input(&mut self, i: usize, input: Input) {
        let now = self.now;
        if let Some(n) = self.nodes[i].as_mut() {
            n.handle_input(now, input);
            self.drain(i);
        }
    }

    fn drain(&mut self, i: usize) {
        let mut out = Vec::new();
        let Some(n) = self.nodes[i].as_mut() else {
            return;
        };
        let deadline = loop {
            match n.poll_output() {
                Output::Timeout(at) => break at,
                o => out.push(o),
            }
        };
        self.deadlines[i] = deadline;
        for o in out {
            match o {
                Output::Transmit(t) => {
                    let Some(&(a, b, true)) = self.links.get(&t.link.0) else {
                        continue;
                    };
                    let to = if a == i { b } else { a };
                    let at = self.now + LATENCY;
                    let item = Item::Deliver {
                        to,
                        link: t.link.0,
                        msg: t.msg,
                    };
                    self.push(at, item);
                }
                Output::Event(e) => {
                    match &e {
                        Event::LinkWanted { peer, .. } => {
                            if let Some(j) = self.index(peer) {
                                self.link(i, j, false);
                            }
                        }
                        Event::CloseLink { link } => self.close(link.0),
                        _ => {}
                    }
                    self.events.push((i, self.now, e));
                }
                Output::Timeout(_) => {}
            }
        }
    }

    fn close(&mut self, id: u64) {
        let Some(l) = self.links.get_mut(&id) else {
            return;
        };
        if !l.2 {
            return;
        }
        l.2 = false;
        let (a, b, _) = *l;
        for x in [a, b] {
            let at = self.now + LATENCY;
            self.push(at, Item::LinkDown { node: x, link: id });
        }
    }

    /// Crashes node `i`: its peers see its links go down after `detect`.
    pub fn crash(&mut self, i: usize, detect: Duration) {
        self.nodes[i] = None;
        let ids: Vec<u64> = self
            .links
            .iter()
            .filter(|(_, l)| l.2 && (l.0 == i || l.1 == i))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let l = self.links.get_mut(&id).expect("listed");
            l.2 = false;
            let other = if l.0 == i { l.1 } else { l.0 };
            let at = self.now + detect;
            self.push(
                at,
                Item::LinkDown {
                    node: other,
                    link: id,
                },
            );
        }
    }

    /// Runs everything due up to `t`.
    pub fn run_until(&mut self, t: Time) {
        loop {
            let next_q = self.queue.keys().next().map(|k| k.0);
            let (next_d, who) = self
                .deadlines
                .iter()
                .enumerate()
                .filter(|(i, _)| self.nodes[*i].is_some())
                .map(|(i, d)| (*d, i))
                .min()
                .unwrap_or((Time::NEVER, 0));
            let next = next_q.unwrap_or(Time::NEVER).min(next_d);
            if next > t {
                break;
            }
            self.now = next;
            if next_q == Some(next) {
                let (_, item) = self.queue.pop_first().expect("peeked");
                match item {
                    Item::Deliver { to, link, msg } => {
                        if self.links.get(&link).is_some_and(|l| l.2) {
                            self.input(
                                to,
                                Input::Receive {
                                    link: LinkId(link),
                                    msg,
                                },
                            );
                        }
                    }
                    Item::LinkUp { link } => {
                        let (a, b, up) = self.links[&link];
                        if !up || self.nodes[a].is_none() || self.nodes[b].is_none() {
                            continue;
                        }
                        for (x, y) in [(a, b), (b, a)] {
                            let input = Input::LinkUp {
                                link: LinkId(link),
                                peer: self.addrs[y],
                                kind: LinkKind::Direct,
                                rtt: Some(LATENCY * 2),
                                leaf: self.leaf_links.get(&link) == Some(&x),
                            };
                            self.input(x, input);
                        }
                    }
                    Item::LinkDown { node, link } => {
                        self.input(node, Input::LinkDown { link: LinkId(link) })
                    }
                }
            } else {
                self.input(who, Input::Timeout);
            }
        }
        self.now = t;
    }

    /// Runs for `d` more.
    pub fn run_for(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    pub fn index(&self, a: &Address) -> Option<usize> {
        self.addrs.iter().position(|x| x == a)
    }

    pub fn node(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().expect("live node")
    }

    /// Calls `f` on node `i` at the current time, then plays its outputs.
    pub fn with<R>(&mut self, i: usize, f: impl FnOnce(&mut Node, Time) -> R) -> R {
        let now = self.now;
        let r = f(self.node(i), now);
        self.drain(i);
        r
    }

    /// Live node indices sorted by address (ring order, increasing).
    pub fn ring_order(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_some())
            .collect();
        v.sort_by_key(|&i| self.addrs[i]);
        v
    }

    /// Every live node's nearest peers on both sides are its true ring neighbours.
    pub fn consistent(&self) -> bool {
        let order = self.ring_order();
        let n = order.len();
        order.iter().enumerate().all(|(k, &i)| {
            let me = self.addrs[i];
            let node = self.nodes[i].as_ref().expect("live");
            let l = node.table().left_of(&me).next().map(|p| p.addr);
            let r = node.table().right_of(&me).next().map(|p| p.addr);
            l == Some(self.addrs[order[(k + 1) % n]])
                && r == Some(self.addrs[order[(k + n - 1) % n]])
        })
    }

    /// Events of node `i` since event index `from`.
    pub fn events_of(&self, i: usize, from: usize) -> impl Iterator<Item = &Event> {
        self.events[from..]
            .iter()
            .filter(move |(n, _, _)| *n == i)
            .map(|(_, _, e)| e)
    }
}
