//! The event loop: nodes, links and the queue.
//!
//! Hash maps here are only looked up, never iterated, so they cannot break determinism.
#![allow(clippy::disallowed_types)]

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::address::Address;
use crate::ring::{Event, Input, LinkId, Msg, Node, Output, Time, codec};

use super::config::SimConfig;
use super::metrics::{Metrics, kind_of};
use super::net::Net;
use super::queue::{Popped, Queue};

/// A scheduled event (node timers are kept apart, see [`Queue`]).
#[derive(Debug)]
pub(crate) enum Ev {
    Deliver { to: u32, link: u64, msg: Msg },
    DeliverBytes { to: u32, link: u64, bytes: Vec<u8> },
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

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum LinkState {
    Connecting,
    Up,
    Down,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct LinkRec {
    pub(crate) a: u32,
    pub(crate) b: u32,
    pub(crate) state: LinkState,
    pub(crate) leaf_end: Option<u32>,
}

pub(crate) struct SimNode {
    pub(crate) node: Option<Node>,
    pub(crate) addr: Address,
    pub(crate) links: Vec<u64>,
    pub(crate) joined: Time,
}

/// Pending workload requests, by (node, request id).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Work {
    Lookup { key: Address },
    Put { key: Address, value: u64 },
    Get { value: u64 },
}

/// Names of the event kinds counted in [`Sim::event_kinds`].
pub(crate) const EVENT_KINDS: [&str; 8] = [
    "timer",
    "timer_superseded",
    "timer_inline",
    "message",
    "link_up",
    "link_fail",
    "link_down",
    "workload",
];

/// Timeouts a node may take in a row without going through the queue.
const INLINE_TIMEOUTS: usize = 4;

/// The simulator.
pub struct Sim {
    pub(crate) cfg: SimConfig,
    pub(crate) net: Net,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) now: Time,
    pub(crate) nodes: Vec<SimNode>,
    pub(crate) live: Vec<u32>,
    pub(crate) live_pos: Vec<usize>,
    pub(crate) live_addrs: BTreeSet<Address>,
    pub(crate) addr_index: HashMap<Address, u32>,
    pub(crate) links: Vec<LinkRec>,
    pub(crate) pairs: HashMap<(u32, u32), u64>,
    queue: Queue<Ev>,
    /// Each node's deadline as queued (`NEVER`: none), apart from [`SimNode`] so that
    /// discarding a superseded timer touches 8 bytes of a dense array.
    pub(crate) scheduled: Vec<Time>,
    buf: Vec<Output>,
    pub(crate) work: HashMap<(u32, u32), Work>,
    pub(crate) stored: Vec<(Address, u64, Time)>,
    pub(crate) metrics: Metrics,
    pub(crate) joined_count: usize,
    pub(crate) join_end: Time,
    pub(crate) steady_start: Time,
    pub(crate) steady_end: Time,
    pub(crate) next_value: u64,
    pub(crate) events: u64,
    /// Events by kind: see [`EVENT_KINDS`].
    pub(crate) event_kinds: [u64; EVENT_KINDS.len()],
    /// Most events waiting at once (for the memory report).
    pub(crate) queue_peak: usize,
}

pub(crate) fn secs(s: f64) -> Duration {
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
            queue: Queue::default(),
            scheduled: Vec::new(),
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
            event_kinds: [0; EVENT_KINDS.len()],
            queue_peak: 0,
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

    pub(crate) fn push(&mut self, at: Time, ev: Ev) {
        self.queue.push(at.max(self.now), ev);
    }

    pub(crate) fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn random_live(&mut self) -> u32 {
        let k = self.below(self.live.len());
        self.live[k]
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n.max(1) as u64) as usize
    }

    /// Runs to the end of the steady phase.
    pub fn run(&mut self) {
        let end = self.steady_end;
        while let Some((at, ev)) = self.queue.pop() {
            if at > end {
                break;
            }
            self.queue_peak = self.queue_peak.max(self.queue.len() + 1);
            self.now = at;
            self.events += 1;
            match ev {
                Popped::Timer(i) => {
                    if self.scheduled[i as usize] != at {
                        self.event_kinds[1] += 1;
                        continue; // superseded by an earlier deadline
                    }
                    self.event_kinds[0] += 1;
                    self.scheduled[i as usize] = Time::NEVER;
                    self.input(i, Input::Timeout);
                }
                Popped::Event(ev) => self.dispatch(ev),
            }
        }
        self.now = end;
        self.finish();
    }

    fn dispatch(&mut self, ev: Ev) {
        let kind = match ev {
            Ev::Deliver { .. } | Ev::DeliverBytes { .. } => 3,
            Ev::LinkUp(_) => 4,
            Ev::LinkFail { .. } => 5,
            Ev::LinkDown { .. } => 6,
            _ => 7,
        };
        self.event_kinds[kind] += 1;
        match ev {
            Ev::Deliver { to, link, msg } => {
                if self.links[link as usize].state == LinkState::Up {
                    let link = LinkId(link);
                    self.input(to, Input::Receive { link, msg });
                }
            }
            Ev::DeliverBytes { to, link, bytes } => {
                if self.links[link as usize].state == LinkState::Up {
                    let link = LinkId(link);
                    self.input(to, Input::ReceiveBytes { link, bytes });
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
    pub(crate) fn input(&mut self, i: u32, input: Input) {
        let now = self.now;
        if self.traced(i) {
            eprintln!("{now:?} #{i} <- {input:?}");
        }
        let Some(node) = self.nodes[i as usize].node.as_mut() else {
            return;
        };
        node.handle_input(now, input);
        self.drain(i);
    }

    /// Plays node `i`'s outputs and queues its next deadline. A deadline that is already
    /// due is taken at once, a few times in a row, instead of going through the queue.
    pub(crate) fn drain(&mut self, i: u32) {
        let mut buf = std::mem::take(&mut self.buf);
        for round in 0.. {
            let Some(node) = self.nodes[i as usize].node.as_mut() else {
                break;
            };
            let deadline = loop {
                match node.poll_output() {
                    Output::Timeout(at) => break at,
                    o => buf.push(o),
                }
            };
            if self.traced(i) {
                for o in &buf {
                    eprintln!("{:?} #{i} -> {o:?}", self.now);
                }
            }
            for o in buf.drain(..) {
                match o {
                    Output::Transmit(t) => self.transmit(i, t.link.0, t.msg),
                    Output::Event(e) => self.event(i, e),
                    Output::Timeout(_) => {}
                }
            }
            if deadline <= self.now && round < INLINE_TIMEOUTS {
                self.event_kinds[2] += 1;
                let now = self.now;
                if let Some(node) = self.nodes[i as usize].node.as_mut() {
                    node.handle_input(now, Input::Timeout);
                }
                continue;
            }
            let scheduled = &mut self.scheduled[i as usize];
            if deadline != Time::NEVER && (deadline < *scheduled || *scheduled < self.now) {
                *scheduled = deadline.max(self.now);
                let at = *scheduled;
                self.queue.push_timer(at, i);
            }
            break;
        }
        self.buf = buf;
    }

    fn transmit(&mut self, from: u32, link: u64, msg: Msg) {
        let Some(rec) = self.links.get(link as usize).copied() else {
            return;
        };
        if rec.state != LinkState::Up {
            return;
        }
        let to = if rec.a == from { rec.b } else { rec.a };
        let bytes = self.cfg.wire.then(|| codec::encode(&msg));
        if self.now >= self.steady_start {
            let m = &mut self.metrics;
            m.msgs += 1;
            if msg.is_maintenance() {
                m.maintenance_msgs += 1;
            }
            let kind = kind_of(&msg);
            m.kinds[kind] += 1;
            if let Some(b) = &bytes {
                m.bytes += b.len() as u64;
                if msg.is_maintenance() {
                    m.maintenance_bytes += b.len() as u64;
                }
                m.kind_bytes[kind] += b.len() as u64;
            }
        }
        if self.cfg.loss > 0.0 && self.uniform() < self.cfg.loss {
            return;
        }
        let at = self.now + Duration::from_micros(self.net.one_way_us(from as usize, to as usize));
        let ev = match bytes {
            Some(bytes) => Ev::DeliverBytes { to, link, bytes },
            None => Ev::Deliver { to, link, msg },
        };
        self.push(at, ev);
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
            Event::RelayUp { .. } => self.metrics.relays_up += 1,
            Event::RelayDown { .. } => self.metrics.relays_down += 1,
            _ => {}
        }
    }

    /// True when node `i`'s inputs and outputs are printed (`u32::MAX` traces all).
    pub(crate) fn traced(&self, i: u32) -> bool {
        !self.cfg.trace.is_empty()
            && (self.cfg.trace.contains(&i) || self.cfg.trace.contains(&u32::MAX))
    }

    /// The simulator index of the node at `addr` (live or dead).
    pub(crate) fn index_of(&self, addr: &Address) -> Option<u32> {
        self.addr_index.get(addr).copied()
    }

    /// The live node indices.
    pub(crate) fn live(&self) -> &[u32] {
        &self.live
    }

    /// Approximate bytes the simulator itself holds besides the nodes.
    pub(crate) fn sim_bytes(&self) -> usize {
        self.queue.heap_bytes()
            + self.links.capacity() * std::mem::size_of::<LinkRec>()
            + self.nodes.capacity() * std::mem::size_of::<SimNode>()
    }
}
