//! The event loop: nodes, links, the queue, churn and workload.
//!
//! Hash maps here are only looked up, never iterated, so they cannot break determinism.
#![allow(clippy::disallowed_types)]

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::address::Address;
use crate::ring::{
    Config, Event, Input, LinkId, LinkKind, Msg, Node, Output, RelaySelect, RequestId,
    ShortcutCount, Time,
};

use super::metrics::Metrics;
use super::net::{Latency, Net};

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Nodes in the ring.
    pub nodes: usize,
    /// Seed of everything.
    pub seed: u64,
    /// Joins per simulated second while the ring is built.
    pub join_rate: f64,
    /// Settling time after the last join before measuring, seconds.
    pub settle_s: f64,
    /// Length of the measured steady phase, seconds.
    pub steady_s: f64,
    /// Latency source.
    pub latency: Latency,
    /// Share of node pairs that cannot link directly.
    pub blocked: f64,
    /// Message loss probability.
    pub loss: f64,
    /// Share of the nodes replaced every `churn_period_s` during the steady phase.
    pub churn_frac: f64,
    /// See `churn_frac`.
    pub churn_period_s: f64,
    /// Share of departures that are graceful (the rest crash).
    pub graceful_share: f64,
    /// Crash this share of nodes at once, this many seconds into the steady phase.
    pub mass_leave: Option<(f64, f64)>,
    /// Lookups per simulated second (steady phase).
    pub lookups_per_s: f64,
    /// DHT puts per simulated second (steady phase).
    pub dht_puts_per_s: f64,
    /// DHT gets per simulated second (steady phase).
    pub dht_gets_per_s: f64,
    /// A crashed peer's links are reported down after a uniform delay in this range,
    /// seconds (keepalives every 15 s, dead after 45 s of silence).
    pub detect_s: (f64, f64),
    /// A link attempt to a blocked or dead peer fails after this long, seconds.
    pub link_fail_s: f64,
    /// Metric sampling period, seconds.
    pub sample_s: f64,
    /// Shortcut rule of the nodes.
    pub shortcuts: ShortcutCount,
    /// Relay forwarder choice of the nodes.
    pub relay_select: RelaySelect,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            nodes: 1000,
            seed: 1,
            join_rate: 100.0,
            settle_s: 60.0,
            steady_s: 600.0,
            latency: Latency::HeavyTailed,
            blocked: 0.0,
            loss: 0.0,
            churn_frac: 0.0,
            churn_period_s: 600.0,
            graceful_share: 0.0,
            mass_leave: None,
            lookups_per_s: 50.0,
            dht_puts_per_s: 5.0,
            dht_gets_per_s: 20.0,
            detect_s: (30.0, 45.0),
            link_fail_s: 5.0,
            sample_s: 10.0,
            shortcuts: ShortcutCount::Log2 { factor: 1.0 },
            relay_select: RelaySelect::Latency,
        }
    }
}

#[derive(Debug)]
enum Ev {
    Timeout(u32),
    Deliver { to: u32, link: u64, msg: Box<Msg> },
    LinkUp(u64),
    LinkFail { node: u32, peer: Address },
    LinkDown { node: u32, link: u64 },
    Join,
    Churn,
    MassLeave,
    Sample,
    Lookup,
    DhtPut,
    DhtGet,
}

struct Sched {
    at: Time,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Sched {
    fn eq(&self, o: &Sched) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Sched {}
impl PartialOrd for Sched {
    fn partial_cmp(&self, o: &Sched) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Sched {
    fn cmp(&self, o: &Sched) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LinkState {
    Connecting,
    Up,
    Down,
}

#[derive(Clone, Copy, Debug)]
struct LinkRec {
    a: u32,
    b: u32,
    state: LinkState,
    leaf_end: Option<u32>,
}

pub(crate) struct SimNode {
    pub(crate) node: Option<Box<Node>>,
    pub(crate) addr: Address,
    scheduled: Time,
    links: Vec<u64>,
    pub(crate) joined: Time,
}

/// Pending workload requests, by (node, request id).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Work {
    Lookup { key: Address },
    Put { key: Address, value: u64 },
    Get { value: u64 },
}

/// The simulator.
pub struct Sim {
    pub(crate) cfg: SimConfig,
    pub(crate) net: Net,
    rng: ChaCha8Rng,
    pub(crate) now: Time,
    pub(crate) nodes: Vec<SimNode>,
    live: Vec<u32>,
    live_pos: Vec<usize>,
    pub(crate) live_addrs: BTreeSet<Address>,
    addr_index: HashMap<Address, u32>,
    links: Vec<LinkRec>,
    pairs: HashMap<(u32, u32), u64>,
    queue: BinaryHeap<Reverse<Sched>>,
    seq: u64,
    buf: Vec<Output>,
    pub(crate) work: HashMap<(u32, u32), Work>,
    pub(crate) stored: Vec<(Address, u64, Time)>,
    pub(crate) metrics: Metrics,
    joined_count: usize,
    pub(crate) join_end: Time,
    pub(crate) steady_start: Time,
    pub(crate) steady_end: Time,
    next_value: u64,
    pub(crate) events: u64,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

impl Sim {
    /// A simulator for `cfg`, with the joins and the workload scheduled.
    pub fn new(cfg: SimConfig) -> Sim {
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let net = Net::new(cfg.latency.clone(), cfg.blocked, cfg.loss, cfg.seed);
        let join_end = Time::ZERO + secs(cfg.nodes as f64 / cfg.join_rate.max(1e-9));
        let steady_start = join_end + secs(cfg.settle_s);
        let steady_end = steady_start + secs(cfg.steady_s);
        let mut sim = Sim {
            cfg,
            net,
            rng,
            now: Time::ZERO,
            nodes: Vec::new(),
            live: Vec::new(),
            live_pos: Vec::new(),
            live_addrs: BTreeSet::new(),
            addr_index: HashMap::new(),
            links: Vec::new(),
            pairs: HashMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            buf: Vec::new(),
            work: HashMap::new(),
            stored: Vec::new(),
            metrics: Metrics::default(),
            joined_count: 0,
            join_end,
            steady_start,
            steady_end,
            next_value: 0,
            events: 0,
        };
        sim.push(Time::ZERO, Ev::Join);
        sim.push(Time::ZERO + secs(sim.cfg.sample_s), Ev::Sample);
        let start = sim.steady_start;
        if sim.cfg.lookups_per_s > 0.0 {
            sim.push(start, Ev::Lookup);
        }
        if sim.cfg.dht_puts_per_s > 0.0 {
            sim.push(start, Ev::DhtPut);
        }
        if sim.cfg.dht_gets_per_s > 0.0 {
            sim.push(start + secs(5.0), Ev::DhtGet);
        }
        if sim.cfg.churn_frac > 0.0 {
            let gap = sim.churn_gap();
            sim.push(start + gap, Ev::Churn);
        }
        if let Some((at, _)) = sim.cfg.mass_leave {
            sim.push(start + secs(at), Ev::MassLeave);
        }
        sim
    }

    fn churn_gap(&self) -> Duration {
        secs(self.cfg.churn_period_s / (self.cfg.churn_frac * self.cfg.nodes as f64).max(1e-9))
    }

    fn push(&mut self, at: Time, ev: Ev) {
        self.seq += 1;
        let at = at.max(self.now);
        self.queue.push(Reverse(Sched {
            at,
            seq: self.seq,
            ev,
        }));
    }

    pub(crate) fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn random_live(&mut self) -> u32 {
        let k = self.below(self.live.len());
        self.live[k]
    }

    fn below(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n.max(1) as u64) as usize
    }

    /// Runs to the end of the steady phase.
    pub fn run(&mut self) {
        let end = self.steady_end;
        while let Some(Reverse(s)) = self.queue.pop() {
            if s.at > end {
                break;
            }
            self.now = s.at;
            self.events += 1;
            self.dispatch(s.ev);
        }
        self.now = end;
        self.finish();
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Timeout(i) => {
                let sn = &mut self.nodes[i as usize];
                if sn.scheduled != self.now || sn.node.is_none() {
                    return;
                }
                sn.scheduled = Time::NEVER;
                self.input(i, Input::Timeout);
            }
            Ev::Deliver { to, link, msg } => {
                if self.links[link as usize].state == LinkState::Up {
                    self.input(
                        to,
                        Input::Receive {
                            link: LinkId(link),
                            msg: *msg,
                        },
                    );
                }
            }
            Ev::LinkUp(l) => self.link_up(l),
            Ev::LinkFail { node, peer } => self.input(node, Input::LinkFailed { peer }),
            Ev::LinkDown { node, link } => self.input(node, Input::LinkDown { link: LinkId(link) }),
            Ev::Join => {
                self.join();
                if self.joined_count < self.cfg.nodes {
                    let at = self.now + secs(1.0 / self.cfg.join_rate.max(1e-9));
                    self.push(at, Ev::Join);
                }
            }
            Ev::Churn => {
                self.churn_one();
                let at = self.now + self.churn_gap();
                self.push(at, Ev::Churn);
            }
            Ev::MassLeave => {
                let frac = self.cfg.mass_leave.map_or(0.0, |(_, f)| f);
                let n = (self.live.len() as f64 * frac) as usize;
                for _ in 0..n {
                    let i = self.random_live();
                    self.kill(i, false);
                }
            }
            Ev::Sample => {
                self.rebootstrap_isolated();
                self.sample();
                let at = self.now + secs(self.cfg.sample_s);
                self.push(at, Ev::Sample);
            }
            Ev::Lookup => {
                self.start_lookup();
                let at = self.now + secs(1.0 / self.cfg.lookups_per_s);
                self.push(at, Ev::Lookup);
            }
            Ev::DhtPut => {
                self.start_put();
                let at = self.now + secs(1.0 / self.cfg.dht_puts_per_s);
                self.push(at, Ev::DhtPut);
            }
            Ev::DhtGet => {
                self.start_get();
                let at = self.now + secs(1.0 / self.cfg.dht_gets_per_s);
                self.push(at, Ev::DhtGet);
            }
        }
    }

    /// Feeds one input to node `i` and plays its outputs.
    fn input(&mut self, i: u32, input: Input) {
        let now = self.now;
        let Some(node) = self.nodes[i as usize].node.as_mut() else {
            return;
        };
        node.handle_input(now, input);
        self.drain(i);
    }

    pub(crate) fn drain(&mut self, i: u32) {
        let mut buf = std::mem::take(&mut self.buf);
        let Some(node) = self.nodes[i as usize].node.as_mut() else {
            return;
        };
        let deadline = loop {
            match node.poll_output() {
                Output::Timeout(at) => break at,
                o => buf.push(o),
            }
        };
        for o in buf.drain(..) {
            match o {
                Output::Transmit(t) => self.transmit(i, t.link.0, t.msg),
                Output::Event(e) => self.event(i, e),
                Output::Timeout(_) => {}
            }
        }
        self.buf = buf;
        let sn = &mut self.nodes[i as usize];
        if deadline != Time::NEVER && (deadline < sn.scheduled || sn.scheduled < self.now) {
            sn.scheduled = deadline.max(self.now);
            let at = sn.scheduled;
            self.push(at, Ev::Timeout(i));
        }
    }

    fn transmit(&mut self, from: u32, link: u64, msg: Msg) {
        let Some(rec) = self.links.get(link as usize).copied() else {
            return;
        };
        if rec.state != LinkState::Up {
            return;
        }
        let to = if rec.a == from { rec.b } else { rec.a };
        let measuring = self.now >= self.steady_start;
        if measuring {
            self.metrics.msgs += 1;
            if msg.is_maintenance() {
                self.metrics.maintenance_msgs += 1;
            }
            *self.metrics.kinds.entry(kind_of(&msg)).or_default() += 1;
        }
        if self.cfg.loss > 0.0 && self.uniform() < self.cfg.loss {
            return;
        }
        let lat = Duration::from_micros(self.net.one_way_us(from as usize, to as usize));
        self.push(
            self.now + lat,
            Ev::Deliver {
                to,
                link,
                msg: Box::new(msg),
            },
        );
    }

    fn event(&mut self, i: u32, e: Event) {
        match e {
            Event::LinkWanted { peer, .. } => self.link_wanted(i, peer, None),
            Event::CloseLink { link } => self.close_link(link.0),
            Event::LookupDone {
                id,
                result,
                attempts,
            } => self.lookup_done(i, id, result, attempts),
            Event::DhtPutDone { id, ok } => self.put_done(i, id, ok),
            Event::DhtGetDone { id, values } => self.get_done(i, id, values),
            Event::RelayUp { .. } => self.metrics.relays_built += 1,
            _ => {}
        }
    }

    fn link_wanted(&mut self, i: u32, peer: Address, leaf_end: Option<u32>) {
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

    fn link_up(&mut self, l: u64) {
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

    fn close_link(&mut self, l: u64) {
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

    /// Adds a node and links it to a random live, routable bootstrap as a leaf.
    fn join(&mut self) {
        let i = self.nodes.len() as u32;
        let mut b = [0u8; 20];
        for c in b.chunks_mut(8) {
            let r = self.rng.next_u64().to_be_bytes();
            c.copy_from_slice(&r[..c.len()]);
        }
        let addr = Address::ah(b);
        let mut cfg = Config::with_seed(self.cfg.seed ^ (u64::from(i) << 20) ^ 0x5eed);
        cfg.shortcuts = self.cfg.shortcuts;
        cfg.relay_select = self.cfg.relay_select;
        let mut node = Node::new(cfg, addr, self.now);
        self.net.place(i as usize, &mut self.rng);
        let first = self.live.is_empty();
        if first {
            node.create_ring();
        }
        self.nodes.push(SimNode {
            node: Some(Box::new(node)),
            addr,
            scheduled: Time::NEVER,
            links: Vec::new(),
            joined: self.now,
        });
        self.live_pos.push(self.live.len());
        self.live.push(i);
        self.live_addrs.insert(addr);
        self.addr_index.insert(addr, i);
        self.joined_count += 1;
        self.drain(i);
        if first {
            return;
        }
        self.bootstrap(i);
    }

    /// Links node `i` as a leaf to a live, routable node it can reach: a random start,
    /// then the next suitable one in the live list (node 0 always qualifies early on).
    fn bootstrap(&mut self, i: u32) {
        let n = self.live.len();
        let start = self.below(n);
        for k in 0..n {
            let j = self.live[(start + k) % n];
            let routable = self.nodes[j as usize]
                .node
                .as_ref()
                .is_some_and(|n| n.is_routable());
            if j != i && routable && !self.net.is_blocked(i as usize, j as usize) {
                let peer = self.nodes[j as usize].addr;
                self.link_wanted(i, peer, Some(i));
                return;
            }
        }
    }

    /// Re-bootstraps nodes left with no link at all (their bootstrap died or refused).
    pub(crate) fn rebootstrap_isolated(&mut self) {
        let isolated: Vec<u32> = self
            .live
            .iter()
            .copied()
            .filter(|&i| {
                let sn = &self.nodes[i as usize];
                sn.links.is_empty()
                    && sn
                        .node
                        .as_ref()
                        .is_some_and(|n| !n.is_routable() && n.table().is_empty())
            })
            .collect();
        for i in isolated {
            self.bootstrap(i);
        }
    }

    /// Removes node `i`: gracefully (it says goodbye) or by crashing (its peers notice
    /// after the keepalive timeout).
    pub(crate) fn kill(&mut self, i: u32, graceful: bool) {
        if self.nodes[i as usize].node.is_none() {
            return;
        }
        if graceful {
            let now = self.now;
            if let Some(n) = self.nodes[i as usize].node.as_mut() {
                n.leave(now);
            }
            self.drain(i);
        }
        let links = std::mem::take(&mut self.nodes[i as usize].links);
        for l in links {
            let rec = self.links[l as usize];
            if rec.state != LinkState::Up {
                continue;
            }
            self.links[l as usize].state = LinkState::Down;
            self.pairs.remove(&(rec.a.min(rec.b), rec.a.max(rec.b)));
            let other = if rec.a == i { rec.b } else { rec.a };
            self.nodes[other as usize].links.retain(|&k| k != l);
            let (lo, hi) = self.cfg.detect_s;
            let d = lo + (hi - lo) * self.uniform();
            self.push(
                self.now + secs(d),
                Ev::LinkDown {
                    node: other,
                    link: l,
                },
            );
        }
        let sn = &mut self.nodes[i as usize];
        sn.node = None;
        let addr = sn.addr;
        self.live_addrs.remove(&addr);
        let pos = self.live_pos[i as usize];
        let last = *self.live.last().expect("a live node is being removed");
        self.live.swap_remove(pos);
        if pos < self.live.len() {
            self.live_pos[last as usize] = pos;
        }
        self.metrics.departures += 1;
    }

    fn churn_one(&mut self) {
        if self.live.len() < 3 {
            return;
        }
        let i = self.random_live();
        let graceful = self.uniform() < self.cfg.graceful_share;
        self.kill(i, graceful);
        self.join();
    }

    /// A random live node that has been in the ring a while, to issue requests from.
    fn warm_node(&mut self) -> Option<u32> {
        for _ in 0..32 {
            let i = self.random_live();
            let sn = &self.nodes[i as usize];
            if self.now.saturating_since(sn.joined) > Duration::from_secs(30)
                && sn.node.as_ref().is_some_and(|n| n.is_routable())
            {
                return Some(i);
            }
        }
        None
    }

    fn random_addr(&mut self) -> Address {
        let mut b = [0u8; 20];
        for c in b.chunks_mut(8) {
            let r = self.rng.next_u64().to_be_bytes();
            c.copy_from_slice(&r[..c.len()]);
        }
        Address::ah(b)
    }

    fn start_lookup(&mut self) {
        let Some(i) = self.warm_node() else { return };
        let key = self.random_addr();
        let now = self.now;
        let Some(n) = self.nodes[i as usize].node.as_mut() else {
            return;
        };
        let id = n.lookup(now, key);
        self.work.insert((i, id.0), Work::Lookup { key });
        self.drain(i);
    }

    fn start_put(&mut self) {
        let Some(i) = self.warm_node() else { return };
        let key = self.random_addr();
        self.next_value += 1;
        let value = self.next_value;
        let now = self.now;
        let Some(n) = self.nodes[i as usize].node.as_mut() else {
            return;
        };
        let id = n.dht_put(now, key, value.to_be_bytes().to_vec(), 3600, Vec::new());
        self.work.insert((i, id.0), Work::Put { key, value });
        self.drain(i);
    }

    fn start_get(&mut self) {
        let ready: usize = self
            .stored
            .partition_point(|s| self.now.saturating_since(s.2) > Duration::from_secs(2));
        if ready == 0 {
            return;
        }
        let Some(i) = self.warm_node() else { return };
        let k = self.below(ready);
        let (key, value, _) = self.stored[k];
        let now = self.now;
        let Some(n) = self.nodes[i as usize].node.as_mut() else {
            return;
        };
        let id = n.dht_get(now, key);
        self.work.insert((i, id.0), Work::Get { value });
        self.drain(i);
    }

    fn lookup_done(
        &mut self,
        i: u32,
        id: RequestId,
        result: Option<(Address, u16)>,
        attempts: u32,
    ) {
        let Some(Work::Lookup { key }) = self.work.remove(&(i, id.0)) else {
            return;
        };
        let (succ, pred) = self.true_bracket(&key);
        let closest = if key.distance_to(&succ).abs() < key.distance_to(&pred).abs() {
            succ
        } else {
            pred
        };
        let m = &mut self.metrics;
        m.lookups += 1;
        match result {
            Some((owner, hops)) => {
                if owner == closest {
                    m.lookup_exact += 1;
                }
                if owner == succ || owner == pred {
                    m.lookup_ok += 1;
                    if attempts == 1 {
                        m.hops.push(hops);
                    }
                }
            }
            None => m.lookup_timeouts += 1,
        }
    }

    fn put_done(&mut self, i: u32, id: RequestId, ok: bool) {
        let Some(Work::Put { key, value }) = self.work.remove(&(i, id.0)) else {
            return;
        };
        self.metrics.puts += 1;
        if ok {
            self.metrics.puts_ok += 1;
            self.stored.push((key, value, self.now));
        }
    }

    fn get_done(&mut self, i: u32, id: RequestId, values: Option<Vec<crate::ring::DhtValue>>) {
        let Some(Work::Get { value }) = self.work.remove(&(i, id.0)) else {
            return;
        };
        self.metrics.gets += 1;
        let want = value.to_be_bytes();
        if values.is_some_and(|v| v.iter().any(|x| x.value == want)) {
            self.metrics.gets_ok += 1;
        }
    }

    /// The live nodes bracketing `key`: first at or above it, first below it.
    pub(crate) fn true_bracket(&self, key: &Address) -> (Address, Address) {
        let succ = self
            .live_addrs
            .range(key..)
            .next()
            .or_else(|| self.live_addrs.iter().next());
        let pred = self
            .live_addrs
            .range(..key)
            .next_back()
            .or_else(|| self.live_addrs.iter().next_back());
        // The ring is never empty while the simulator runs.
        (*succ.expect("live ring"), *pred.expect("live ring"))
    }

    /// The simulator index of the node at `addr` (live or dead).
    pub(crate) fn index_of(&self, addr: &Address) -> Option<u32> {
        self.addr_index.get(addr).copied()
    }

    /// The live node indices.
    pub(crate) fn live(&self) -> &[u32] {
        &self.live
    }
}

/// A short name for a message kind, for the per-kind counts.
fn kind_of(m: &Msg) -> &'static str {
    use crate::ring::Payload;
    match m {
        Msg::Status { .. } => "status",
        Msg::Want(true) => "want_true",
        Msg::Want(false) => "want_false",
        Msg::Close => "close",
        Msg::Routed(r) => match r.payload {
            Payload::Ctm { .. } => "ctm",
            Payload::CtmReply { .. } => "ctm_reply",
            Payload::Via { .. } => "via",
            Payload::App(_) => "app",
            Payload::Request { .. } => "request",
            Payload::Response { .. } => "response",
            Payload::RelayOffer { .. } => "relay_offer",
            Payload::RelayAnswer { .. } => "relay_answer",
        },
        Msg::RelayFwd { .. } => "relay_fwd",
        Msg::RelayDel { .. } => "relay_del",
        Msg::RelayGone { .. } => "relay_gone",
        Msg::DhtStore { .. } => "dht_store",
        Msg::DhtDrop { .. } => "dht_drop",
        Msg::Broadcast { .. } => "broadcast",
    }
}
