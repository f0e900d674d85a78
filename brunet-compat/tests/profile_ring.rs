//! A ring of nodes speaking only the Brunet UDP profile, over a deterministic in-memory
//! datagram network: it forms, stays consistent through leaves, crashes and joins, and
//! routes AH exact echoes between any two nodes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use brunet_compat::address::Address;
use brunet_compat::profile::{Config, Event, Input, Node, Output};
use brunet_compat::ring::Time;
use brunet_compat::wire::ta::TransportAddress;

/// Datagrams in flight, by delivery time and send order.
type Queue = BTreeMap<(Time, u64), (SocketAddr, SocketAddr, Vec<u8>)>;

struct Net {
    now: Time,
    nodes: BTreeMap<SocketAddr, Node>,
    deadlines: BTreeMap<SocketAddr, Time>,
    queue: Queue,
    seq: u64,
    rng: u64,
    events: Vec<(SocketAddr, Event)>,
    /// Drop every datagram whose hash lands below this (per mille).
    loss_per_mille: u64,
}

fn sock(i: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 15000 + i))
}

impl Net {
    fn new(seed: u64) -> Net {
        Net {
            now: Time::ZERO,
            nodes: BTreeMap::new(),
            deadlines: BTreeMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            rng: seed | 1,
            events: Vec::new(),
            loss_per_mille: 0,
        }
    }

    fn next_rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn address(&mut self) -> Address {
        let mut b = [0u8; 20];
        for chunk in b.chunks_mut(8) {
            let r = self.next_rand().to_be_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        Address::ah(b)
    }

    /// Starts node `i`, bootstrapping from node 0's socket.
    fn add(&mut self, i: u16) -> Address {
        let me = self.address();
        let mut cfg = Config::new("TestRing", sock(i), u64::from(i) + 7);
        cfg.bootstrap = vec![TransportAddress::udp_socket(sock(0))];
        let node = Node::new(cfg, me, self.now);
        self.nodes.insert(sock(i), node);
        self.drain(sock(i));
        me
    }

    fn drain(&mut self, at: SocketAddr) {
        let Some(node) = self.nodes.get_mut(&at) else {
            return;
        };
        loop {
            match node.poll_output() {
                Output::Transmit { to, data } => {
                    self.seq += 1;
                    let h = self.seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54;
                    if h % 1000 < self.loss_per_mille {
                        continue;
                    }
                    // 1–4 ms one way, varying per datagram.
                    let delay = Duration::from_micros(1000 + (h % 3000));
                    self.queue
                        .insert((self.now + delay, self.seq), (at, to, data));
                }
                Output::Event(e) => self.events.push((at, e)),
                Output::Timeout(t) => {
                    self.deadlines.insert(at, t);
                    break;
                }
            }
        }
    }

    /// Runs the network until `end`.
    fn run_until(&mut self, end: Time) {
        loop {
            let next_dgram = self.queue.keys().next().map(|k| k.0).unwrap_or(Time::NEVER);
            let (timer_at, timer_node) = self
                .deadlines
                .iter()
                .map(|(s, t)| (*t, *s))
                .min()
                .unwrap_or((Time::NEVER, sock(0)));
            let t = next_dgram.min(timer_at);
            if t > end {
                self.now = end;
                return;
            }
            self.now = t;
            if next_dgram <= timer_at {
                let Some((_, (from, to, data))) = self.queue.pop_first() else {
                    continue;
                };
                if let Some(n) = self.nodes.get_mut(&to) {
                    n.handle_input(t, Input::Datagram { from, data: &data });
                    self.drain(to);
                }
            } else {
                self.deadlines.remove(&timer_node);
                if let Some(n) = self.nodes.get_mut(&timer_node) {
                    n.handle_input(t, Input::Timeout);
                    self.drain(timer_node);
                }
            }
        }
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(end);
    }

    /// Node `i` crashes and comes back at once with the same address and socket: its
    /// peers still hold connections to the old process.
    fn restart(&mut self, i: u16) {
        let me = self.nodes[&sock(i)].address();
        let mut cfg = Config::new("TestRing", sock(i), u64::from(i) + 1000);
        cfg.bootstrap = vec![TransportAddress::udp_socket(sock(0))];
        self.nodes.insert(sock(i), Node::new(cfg, me, self.now));
        self.drain(sock(i));
    }

    /// Every node's nearest left and right neighbours are its ring neighbours.
    fn ring_errors(&self) -> Vec<String> {
        let mut sorted: Vec<(Address, SocketAddr)> =
            self.nodes.iter().map(|(s, n)| (n.address(), *s)).collect();
        sorted.sort();
        let n = sorted.len();
        let mut errors = Vec::new();
        for (i, (a, s)) in sorted.iter().enumerate() {
            let node = &self.nodes[s];
            let want_left = sorted[(i + 1) % n].0;
            let want_right = sorted[(i + n - 1) % n].0;
            if node.left() != Some(want_left) || node.right() != Some(want_right) {
                errors.push(format!(
                    "{a}: left {:?} (want {want_left}), right {:?} (want {want_right})",
                    node.left(),
                    node.right()
                ));
            }
        }
        errors
    }

    fn assert_ring(&self, what: &str) {
        let errors = self.ring_errors();
        assert!(errors.is_empty(), "{what}: {errors:#?}");
        for (s, n) in &self.nodes {
            assert!(n.is_connected(), "{what}: {s} not IsConnected");
        }
    }

    /// Sends an echo from `from` to every other node and checks each answer.
    fn assert_echoes(&mut self, from: SocketAddr) {
        let targets: Vec<Address> = self
            .nodes
            .iter()
            .filter(|(s, _)| **s != from)
            .map(|(_, n)| n.address())
            .collect();
        let mut tokens = BTreeMap::new();
        for t in &targets {
            let now = self.now;
            let node = self.nodes.get_mut(&from).expect("node");
            let tok = node.echo(now, *t, &format!("hello {t}"));
            tokens.insert(tok, *t);
            self.drain(from);
        }
        self.run_for(Duration::from_secs(5));
        for (tok, t) in tokens {
            let got = self.events.iter().any(|(s, e)| {
                *s == from
                    && matches!(e, Event::Echo { token, from: f, value }
                        if *token == tok && *f == t && *value == format!("hello {t}"))
            });
            assert!(got, "no echo from {t}");
        }
    }
}

#[test]
fn ring_forms_stays_consistent_and_routes() {
    let mut net = Net::new(0x5eed);
    for i in 0..8 {
        net.add(i);
        net.run_for(Duration::from_millis(1500));
    }
    net.run_for(Duration::from_secs(120));
    net.assert_ring("after joins");
    net.assert_echoes(sock(3));

    // A graceful leave and a crash, then two joins.
    let now = net.now;
    let leaving = net.nodes.get_mut(&sock(2)).expect("node 2");
    leaving.leave(now);
    net.drain(sock(2));
    net.run_for(Duration::from_millis(50));
    net.nodes.remove(&sock(2));
    net.nodes.remove(&sock(5));
    net.deadlines.remove(&sock(5));
    net.run_for(Duration::from_secs(200));
    net.assert_ring("after a leave and a crash");
    for i in 8..10 {
        net.add(i);
        net.run_for(Duration::from_secs(2));
    }
    net.run_for(Duration::from_secs(120));
    net.assert_ring("after rejoins");
    net.assert_echoes(sock(9));
}

#[test]
fn a_restarted_node_gets_back_in_past_stale_connections() {
    let mut net = Net::new(0x7777);
    for i in 0..8 {
        net.add(i);
        net.run_for(Duration::from_millis(500));
    }
    net.run_for(Duration::from_secs(60));
    net.assert_ring("before the restart");
    net.restart(4);
    net.run_for(Duration::from_secs(120));
    net.assert_ring("after the restart");
    net.assert_echoes(sock(4));
}

#[test]
fn simultaneous_joins_converge() {
    // As in the captures: every node starts within a moment of the first.
    let mut net = Net::new(0x1234);
    for i in 0..12 {
        net.add(i);
        net.run_for(Duration::from_millis(20));
    }
    net.run_for(Duration::from_secs(180));
    net.assert_ring("12 simultaneous joins");
    net.assert_echoes(sock(11));
}

#[test]
fn ring_forms_under_loss() {
    let mut net = Net::new(0xfeed);
    net.loss_per_mille = 50;
    for i in 0..6 {
        net.add(i);
        net.run_for(Duration::from_secs(3));
    }
    net.run_for(Duration::from_secs(240));
    net.assert_ring("with 5 % loss");
}

#[test]
fn same_seed_same_traffic() {
    let run = || {
        let mut net = Net::new(42);
        for i in 0..5 {
            net.add(i);
        }
        net.run_for(Duration::from_secs(30));
        (net.seq, net.ring_errors())
    };
    assert_eq!(run(), run());
}

#[test]
fn larger_ring_trims_and_routes_over_several_hops() {
    let mut net = Net::new(0xabcd);
    for i in 0..24 {
        net.add(i);
        net.run_for(Duration::from_secs(2));
    }
    net.run_for(Duration::from_secs(300));
    net.assert_ring("24 nodes");
    let most = net
        .nodes
        .values()
        .map(|n| n.connections().structured().len())
        .max()
        .unwrap_or(0);
    assert!(most < 20, "near links were never trimmed: {most}");
    let before: u64 = net.nodes.values().map(|n| n.stats().forwarded).sum();
    net.assert_echoes(sock(7));
    let after: u64 = net.nodes.values().map(|n| n.stats().forwarded).sum();
    assert!(after > before, "every echo went one hop");
}

/// Forms a ring of `n` nodes joining `gap` apart, crashes a third of them at once (one
/// leaves gracefully), adds three, and returns what is wrong after each phase.
fn churn(seed: u64, n: u16, gap: Duration, loss: u64) -> (Vec<String>, Vec<String>) {
    let mut net = Net::new(seed);
    net.loss_per_mille = loss;
    for i in 0..n {
        net.add(i);
        net.run_for(gap);
    }
    net.run_for(Duration::from_secs(200));
    let formed = net.ring_errors();
    let now = net.now;
    if let Some(x) = net.nodes.get_mut(&sock(1)) {
        x.leave(now);
    }
    net.drain(sock(1));
    net.run_for(Duration::from_millis(50));
    for i in (1..n).step_by(3) {
        net.nodes.remove(&sock(i));
        net.deadlines.remove(&sock(i));
    }
    for i in n..n + 3 {
        net.add(i);
        net.run_for(Duration::from_millis(200));
    }
    net.run_for(Duration::from_secs(300));
    let mut after = net.ring_errors();
    after.extend(
        net.nodes
            .iter()
            .filter(|(_, x)| !x.is_connected())
            .map(|(s, _)| format!("{s} not IsConnected")),
    );
    (formed, after)
}

#[test]
fn churn_over_seeds() {
    for seed in 1..13u64 {
        let n = 6 + (seed * 5 % 17) as u16;
        let gap = Duration::from_millis(10 + seed % 5 * 300);
        let loss = if seed % 3 == 0 { 30 } else { 0 };
        let (formed, after) = churn(seed * 7919, n, gap, loss);
        assert!(
            formed.is_empty(),
            "seed {seed}, {n} nodes formed: {formed:#?}"
        );
        assert!(
            after.is_empty(),
            "seed {seed}, {n} nodes after churn: {after:#?}"
        );
    }
}

#[test]
#[ignore = "a longer sweep: cargo test -p brunet-compat --test profile_ring -- --ignored"]
fn churn_over_many_seeds() {
    for seed in 13..200u64 {
        let n = 6 + (seed * 5 % 27) as u16;
        let gap = Duration::from_millis(10 + seed % 5 * 300);
        let loss = if seed % 3 == 0 { 30 } else { 0 };
        let (formed, after) = churn(seed * 7919, n, gap, loss);
        assert!(
            formed.is_empty(),
            "seed {seed}, {n} nodes formed: {formed:#?}"
        );
        assert!(
            after.is_empty(),
            "seed {seed}, {n} nodes after churn: {after:#?}"
        );
    }
}
