//! What the simulator measures, and the JSON report.

use serde::Serialize;

use crate::address::Address;
use crate::ring::{ConnType, Msg};

use super::engine::Sim;

/// Raw counters, filled while the simulation runs.
#[derive(Clone, Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) msgs: u64,
    pub(crate) maintenance_msgs: u64,
    pub(crate) lookups: u64,
    pub(crate) lookup_ok: u64,
    pub(crate) lookup_exact: u64,
    pub(crate) lookup_timeouts: u64,
    pub(crate) hops: Vec<u16>,
    pub(crate) puts: u64,
    pub(crate) puts_ok: u64,
    pub(crate) gets: u64,
    pub(crate) gets_ok: u64,
    pub(crate) relays_up: u64,
    pub(crate) relays_down: u64,
    pub(crate) departures: u64,
    pub(crate) series: Vec<SamplePoint>,
    pub(crate) first_consistent: Option<f64>,
    pub(crate) report: Option<Report>,
    pub(crate) window_lookups: (u64, u64),
    pub(crate) kinds: [u64; MSG_KINDS.len()],
    pub(crate) bytes: u64,
    pub(crate) maintenance_bytes: u64,
    pub(crate) kind_bytes: [u64; MSG_KINDS.len()],
}

/// One sample of the ring over time.
#[derive(Clone, Debug, Serialize)]
pub struct SamplePoint {
    /// Simulated seconds.
    pub t: f64,
    /// Live nodes.
    pub live: usize,
    /// Share of live nodes whose nearest peers on both sides are their true ring
    /// neighbours.
    pub consistent: f64,
    /// Share of live nodes whose own consistency check passes.
    pub connected: f64,
    /// Lookup success over the last sample period (NaN-free: 1 when none ran).
    pub lookup_success: f64,
}

/// The JSON report of one run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Nodes asked for.
    pub nodes: usize,
    /// Seed.
    pub seed: u64,
    /// Joins per second while the ring was built.
    pub join_rate: f64,
    /// Seconds between the last join and the measured phase.
    pub settle_s: f64,
    /// Length of the measured (steady) phase, seconds.
    pub steady_s: f64,
    /// Share of node pairs that could not link directly.
    pub blocked: f64,
    /// Share of nodes replaced per churn period.
    pub churn_frac: f64,
    /// Live nodes at the end.
    pub live_end: usize,
    /// Seconds the joins took.
    pub join_s: f64,
    /// Seconds from the last join until every live node was consistent (null: never).
    pub time_to_consistent_s: Option<f64>,
    /// Consistency at the end of the run.
    pub consistent_end: f64,
    /// Share of live nodes that route (part of the ring) at the end.
    pub routable_end: f64,
    /// Mean consistency over the steady phase.
    pub consistent_steady_mean: f64,
    /// Minimum consistency over the steady phase.
    pub consistent_steady_min: f64,
    /// Lookups issued in the steady phase.
    pub lookups: u64,
    /// Share answered by a node bracketing the key (Brunet's delivery contract).
    pub lookup_success: f64,
    /// Share answered by exactly the closest live node.
    pub lookup_success_exact: f64,
    /// Mean hops of first-attempt successful lookups.
    pub hops_mean: f64,
    /// 99th percentile of those hops.
    pub hops_p99: u16,
    /// The target: 0.5·log2 N + 1.
    pub hops_target: f64,
    /// DHT puts issued and the share that succeeded.
    pub dht_puts: u64,
    /// See `dht_puts`.
    pub dht_put_success: f64,
    /// DHT gets issued.
    pub dht_gets: u64,
    /// Share of gets that returned the value put.
    pub dht_get_success: f64,
    /// Link messages per live node per second in the steady phase, all kinds.
    pub msgs_per_node_s: f64,
    /// Of which maintenance (status, CTM, want, relay setup).
    pub maintenance_per_node_s: f64,
    /// Messages went through the codec as bytes (`--wire`); the byte counts below are
    /// real only then (zero otherwise).
    pub wire: bool,
    /// Encoded bytes per live node per second in the steady phase, all kinds.
    pub bytes_per_node_s: f64,
    /// Of which maintenance.
    pub maintenance_bytes_per_node_s: f64,
    /// Mean encoded size of a message, bytes.
    pub bytes_per_msg: f64,
    /// Relay edges that came up over the run (each end counts its own).
    pub relays_up: u64,
    /// Relay edges that went down over the run (each end counts its own).
    pub relays_down: u64,
    /// Relay attempts started, over the nodes alive at the end.
    pub relay_attempts: u64,
    /// Of which found no working forwarder (retried after a backoff).
    pub relay_failures: u64,
    /// Relay edges in the tables at the end, per node.
    pub relay_edges_mean: f64,
    /// Departures during the run.
    pub departures: u64,
    /// Mean peers per node at the end.
    pub peers_mean: f64,
    /// Mean shortcuts per node at the end.
    pub shortcuts_mean: f64,
    /// Mean near-reason links per node at the end.
    pub near_mean: f64,
    /// Mean estimated log2 N at the end.
    pub size_log2_mean: f64,
    /// Mean bytes of core state per node.
    pub memory_per_node: f64,
    /// Core bytes per known peer (node state divided by table entries).
    pub memory_per_peer: f64,
    /// Bytes the simulator itself holds per node (queue, link records).
    pub sim_bytes_per_node: f64,
    /// Events processed.
    pub events: u64,
    /// Of which, by kind (timers taken inline are not in `events`).
    pub events_by_kind: std::collections::BTreeMap<&'static str, u64>,
    /// Link messages per node per second in the steady phase, by kind.
    pub msgs_by_kind: std::collections::BTreeMap<&'static str, f64>,
    /// Mean encoded bytes of each kind (with `--wire`).
    pub bytes_by_kind: std::collections::BTreeMap<&'static str, f64>,
    /// Samples over time.
    pub series: Vec<SamplePoint>,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// Rounds for stable, readable JSON.
fn r6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

impl Sim {
    /// Consistency of the live ring right now: (consistent share, connected share).
    pub fn consistency(&self) -> (f64, f64) {
        let ring: Vec<Address> = self.live_addrs.iter().copied().collect();
        let n = ring.len();
        if n == 0 {
            return (1.0, 1.0);
        }
        let (mut ok, mut conn) = (0usize, 0usize);
        for (j, me) in ring.iter().enumerate() {
            let Some(node) = self
                .index_of(me)
                .and_then(|i| self.nodes[i as usize].node.as_ref())
            else {
                continue;
            };
            let (succ, pred) = (ring[(j + 1) % n], ring[(j + n - 1) % n]);
            let l = node.table().left_of(me).next().map(|p| p.addr);
            let r = node.table().right_of(me).next().map(|p| p.addr);
            if n == 1 || (l == Some(succ) && r == Some(pred)) {
                ok += 1;
            }
            if node.is_connected() {
                conn += 1;
            }
        }
        (ok as f64 / n as f64, conn as f64 / n as f64)
    }

    pub(crate) fn sample(&mut self) {
        let (c, k) = self.consistency();
        let t = self.now.as_secs_f64();
        let (l0, ok0) = self.metrics.window_lookups;
        let (l1, ok1) = (self.metrics.lookups, self.metrics.lookup_ok);
        self.metrics.window_lookups = (l1, ok1);
        if self.metrics.first_consistent.is_none() && self.now >= self.join_end && c >= 1.0 {
            self.metrics.first_consistent = Some(t - self.join_end.as_secs_f64());
        }
        self.metrics.series.push(SamplePoint {
            t: r6(t),
            live: self.live().len(),
            consistent: r6(c),
            connected: r6(k),
            lookup_success: r6(ratio(ok1 - ok0, l1 - l0)),
        });
    }

    pub(crate) fn finish(&mut self) {
        let (c, _) = self.consistency();
        let m = &self.metrics;
        let mut hops = m.hops.clone();
        hops.sort_unstable();
        let hops_mean = if hops.is_empty() {
            0.0
        } else {
            hops.iter().map(|&h| f64::from(h)).sum::<f64>() / hops.len() as f64
        };
        let hops_p99 = hops
            .get((hops.len() * 99 / 100).min(hops.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0);
        let start = self.steady_start.as_secs_f64();
        let steady: Vec<f64> = m
            .series
            .iter()
            .filter(|s| s.t >= start)
            .map(|s| s.consistent)
            .collect();
        let steady_mean = if steady.is_empty() {
            c
        } else {
            steady.iter().sum::<f64>() / steady.len() as f64
        };
        let steady_min = steady.iter().copied().fold(c, f64::min);
        let live = self.live().to_vec();
        let n_live = live.len().max(1) as f64;
        let (mut peers, mut sc, mut near, mut mem, mut l2) =
            (0usize, 0usize, 0usize, 0usize, 0.0f64);
        let mut routable = 0usize;
        let (mut relay_attempts, mut relay_failures, mut relay_edges) = (0u64, 0u64, 0usize);
        for &i in &live {
            if let Some(n) = self.nodes[i as usize].node.as_ref() {
                peers += n.table().len();
                routable += usize::from(n.is_routable());
                relay_attempts += n.stats().relay_attempts;
                relay_failures += n.stats().relay_failures;
                relay_edges += n.table().iter().filter(|p| p.link().is_none()).count();
                sc += n.shortcut_count();
                near += n
                    .table()
                    .iter()
                    .filter(|p| p.types.contains(ConnType::NEAR))
                    .count();
                mem += n.memory_bytes();
                l2 += n.size_estimate().log2();
            }
        }
        let window = (self.steady_end.as_secs_f64() - start).max(1e-9);
        let report = Report {
            nodes: self.cfg.nodes,
            seed: self.cfg.seed,
            join_rate: self.cfg.join_rate,
            settle_s: self.cfg.settle_s,
            steady_s: self.cfg.steady_s,
            blocked: self.cfg.blocked,
            churn_frac: self.cfg.churn_frac,
            live_end: live.len(),
            join_s: r6(self.join_end.as_secs_f64()),
            time_to_consistent_s: m.first_consistent.map(r6),
            consistent_end: r6(c),
            routable_end: r6(routable as f64 / n_live),
            consistent_steady_mean: r6(steady_mean),
            consistent_steady_min: r6(steady_min),
            lookups: m.lookups,
            lookup_success: r6(ratio(m.lookup_ok, m.lookups)),
            lookup_success_exact: r6(ratio(m.lookup_exact, m.lookups)),
            hops_mean: r6(hops_mean),
            hops_p99,
            hops_target: r6(0.5 * (self.cfg.nodes as f64).log2() + 1.0),
            dht_puts: m.puts,
            dht_put_success: r6(ratio(m.puts_ok, m.puts)),
            dht_gets: m.gets,
            dht_get_success: r6(ratio(m.gets_ok, m.gets)),
            msgs_per_node_s: r6(m.msgs as f64 / n_live / window),
            maintenance_per_node_s: r6(m.maintenance_msgs as f64 / n_live / window),
            wire: self.cfg.wire,
            bytes_per_node_s: r6(m.bytes as f64 / n_live / window),
            maintenance_bytes_per_node_s: r6(m.maintenance_bytes as f64 / n_live / window),
            bytes_per_msg: r6(m.bytes as f64 / m.msgs.max(1) as f64),
            relays_up: m.relays_up,
            relays_down: m.relays_down,
            relay_attempts,
            relay_failures,
            relay_edges_mean: r6(relay_edges as f64 / n_live),
            departures: m.departures,
            peers_mean: r6(peers as f64 / n_live),
            shortcuts_mean: r6(sc as f64 / n_live),
            near_mean: r6(near as f64 / n_live),
            size_log2_mean: r6(l2 / n_live),
            memory_per_node: r6(mem as f64 / n_live),
            memory_per_peer: r6(mem as f64 / peers.max(1) as f64),
            sim_bytes_per_node: r6(self.sim_bytes() as f64 / n_live),
            events: self.events,
            events_by_kind: super::engine::EVENT_KINDS
                .iter()
                .copied()
                .zip(self.event_kinds)
                .collect(),
            msgs_by_kind: MSG_KINDS
                .iter()
                .zip(m.kinds)
                .filter(|&(_, v)| v > 0)
                .map(|(k, v)| (*k, r6(v as f64 / n_live / window)))
                .collect(),
            bytes_by_kind: MSG_KINDS
                .iter()
                .zip(m.kind_bytes.iter().zip(m.kinds))
                .filter(|&(_, (&b, _))| b > 0)
                .map(|(k, (&b, n))| (*k, r6(b as f64 / n.max(1) as f64)))
                .collect(),
            series: m.series.clone(),
        };
        self.metrics.report = Some(report);
    }

    /// The report (after [`Sim::run`]).
    pub fn report(&self) -> Option<&Report> {
        self.metrics.report.as_ref()
    }

    /// Greedy path from live node `from` to the owner of `key` over the nodes' actual
    /// tables: (hops, summed one-way latency in µs), or `None` on a dead end or loop.
    pub fn greedy_path(&self, from: u32, key: &Address) -> Option<(u32, u64)> {
        let mut cur = from;
        let (mut hops, mut lat) = (0u32, 0u64);
        loop {
            let n = self.nodes[cur as usize].node.as_ref()?;
            match n.next_hop(key) {
                None => return Some((hops, lat)),
                Some(next) => {
                    let j = self.index_of(&next)?;
                    self.nodes[j as usize].node.as_ref()?;
                    lat += self.net.one_way_us(cur as usize, j as usize);
                    hops += 1;
                    cur = j;
                    if hops > 255 {
                        return None;
                    }
                }
            }
        }
    }

    /// The seed paper's relay experiment on the current ring: for random pairs that are
    /// not neighbours, mean one-way latency of the direct path, of the best two-hop
    /// relay through a neighbour of either end, and of greedy overlay routing (ms).
    pub fn relay_experiment(&mut self, pairs: usize) -> (f64, f64, f64) {
        let live = self.live().to_vec();
        let (mut d, mut r, mut o, mut n) = (0.0, 0.0, 0.0, 0usize);
        let mut tries = 0;
        while n < pairs && tries < pairs * 10 && live.len() > 4 {
            tries += 1;
            let a = live[(self.uniform() * live.len() as f64) as usize % live.len()];
            let b = live[(self.uniform() * live.len() as f64) as usize % live.len()];
            let (Some(na), Some(nb)) = (
                self.nodes[a as usize].node.as_ref(),
                self.nodes[b as usize].node.as_ref(),
            ) else {
                continue;
            };
            let (aa, ab) = (self.nodes[a as usize].addr, self.nodes[b as usize].addr);
            if a == b || na.table().get(&ab).is_some() {
                continue;
            }
            let Some((_, overlay)) = self.greedy_path(a, &ab) else {
                continue;
            };
            let mut best = u64::MAX;
            for p in na.table().iter().chain(nb.table().iter()) {
                if p.addr == aa || p.addr == ab {
                    continue;
                }
                if let Some(f) = self.index_of(&p.addr) {
                    let l = self.net.one_way_us(a as usize, f as usize)
                        + self.net.one_way_us(f as usize, b as usize);
                    best = best.min(l);
                }
            }
            if best == u64::MAX {
                continue;
            }
            d += self.net.one_way_us(a as usize, b as usize) as f64 / 1000.0;
            r += best as f64 / 1000.0;
            o += overlay as f64 / 1000.0;
            n += 1;
        }
        let n = n.max(1) as f64;
        (r6(d / n), r6(r / n), r6(o / n))
    }
}

impl Sim {
    /// Prints why nodes are inconsistent (debugging aid).
    pub fn diagnose(&self, max: usize) {
        let mut shown = 0;
        for &i in self.live() {
            let sn = &self.nodes[i as usize];
            let Some(n) = sn.node.as_ref() else { continue };
            let me = sn.addr;
            let succ = *self
                .live_addrs
                .range(me..)
                .nth(1)
                .or_else(|| self.live_addrs.iter().next())
                .unwrap();
            let l = n.table().left_of(&me).next().map(|p| p.addr);
            if l == Some(succ) {
                continue;
            }
            shown += 1;
            if shown > max {
                break;
            }
            let si = self.index_of(&succ).unwrap();
            let sn2 = self.nodes[si as usize].node.as_ref().unwrap();
            eprintln!(
                "node {i} routable {} connected {} peers {} | true succ {si} joined {:?} routable {} peers {} | my left {:?} | succ knows me {} | succ's right {:?}",
                n.is_routable(),
                n.is_connected(),
                n.table().len(),
                self.nodes[si as usize].joined,
                sn2.is_routable(),
                sn2.table().len(),
                l.and_then(|a| self.index_of(&a)),
                sn2.table().get(&me).is_some(),
                sn2.table()
                    .right_of(&succ)
                    .next()
                    .and_then(|p| self.index_of(&p.addr)),
            );
            for p in n.table().left_of(&me).take(3) {
                eprintln!(
                    "    my left peer {:?} types {:?} routable {} near {:?}",
                    self.index_of(&p.addr),
                    p.types,
                    p.routable,
                    p.near.iter().map(|a| self.index_of(a)).collect::<Vec<_>>()
                );
            }
            for p in sn2.table().right_of(&succ).take(3) {
                eprintln!(
                    "    succ right peer {:?} types {:?} routable {} near {:?}",
                    self.index_of(&p.addr),
                    p.types,
                    p.routable,
                    p.near.iter().map(|a| self.index_of(a)).collect::<Vec<_>>()
                );
            }
        }
    }
}

/// Names of the message kinds counted per kind.
pub(crate) const MSG_KINDS: [&str; 18] = [
    "status",
    "want_true",
    "want_false",
    "close",
    "ctm",
    "ctm_reply",
    "via",
    "app",
    "request",
    "response",
    "relay_offer",
    "relay_answer",
    "relay_fwd",
    "relay_del",
    "relay_gone",
    "dht_store",
    "dht_drop",
    "broadcast",
];

/// The index of a message's kind in [`MSG_KINDS`].
pub(crate) fn kind_of(m: &Msg) -> usize {
    use crate::ring::Payload;
    match m {
        Msg::Status { .. } => 0,
        Msg::Want(true) => 1,
        Msg::Want(false) => 2,
        Msg::Close => 3,
        Msg::Routed(r) => match r.payload {
            Payload::Ctm { .. } => 4,
            Payload::CtmReply { .. } => 5,
            Payload::Via { .. } => 6,
            Payload::App(_) => 7,
            Payload::Request { .. } => 8,
            Payload::Response { .. } => 9,
            Payload::RelayOffer { .. } => 10,
            Payload::RelayAnswer { .. } => 11,
        },
        Msg::RelayFwd { .. } => 12,
        Msg::RelayDel { .. } => 13,
        Msg::RelayGone { .. } => 14,
        Msg::DhtStore { .. } => 15,
        Msg::DhtDrop { .. } => 16,
        Msg::Broadcast { .. } => 17,
    }
}
