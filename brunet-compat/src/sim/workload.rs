//! Joins, departures and churn, and the lookup/DHT workload with its bookkeeping.

use std::time::Duration;

use rand_core::RngCore;

use crate::address::Address;
use crate::ring::{Config, Node, RequestId, Time};

use super::engine::{Ev, LinkState, Sim, SimNode, Work, secs};

impl Sim {
    /// Adds a node and links it to a random live, routable bootstrap as a leaf.
    pub(crate) fn join(&mut self) {
        let i = self.nodes.len() as u32;
        let mut b = [0u8; 20];
        for c in b.chunks_mut(8) {
            let r = self.rng.next_u64().to_be_bytes();
            c.copy_from_slice(&r[..c.len()]);
        }
        let addr = Address::ah(b);
        if self.traced(i) {
            eprintln!("{:?} #{i} joins as {addr}", self.now);
        }
        let mut cfg = Config::with_seed(self.cfg.seed ^ (u64::from(i) << 20) ^ 0x5eed);
        cfg.shortcuts = self.cfg.shortcuts;
        cfg.relay_select = self.cfg.relay_select;
        let mut node = Node::new(cfg, addr, self.now);
        self.net.place(i as usize, &mut self.rng);
        let first = self.live.is_empty();
        if first {
            node.create_ring();
        }
        self.scheduled.push(Time::NEVER);
        self.nodes.push(SimNode {
            node: Some(node),
            addr,
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
        self.scheduled[i as usize] = Time::NEVER;
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

    pub(crate) fn churn_one(&mut self) {
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

    pub(crate) fn start_lookup(&mut self) {
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

    pub(crate) fn start_put(&mut self) {
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

    pub(crate) fn start_get(&mut self) {
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

    pub(crate) fn lookup_done(
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
        // With tracing on, lookups that miss the closest node are printed too.
        if !self.cfg.trace.is_empty() && result.is_none_or(|(o, _)| o != closest) {
            eprintln!(
                "{:?} lookup from #{i} key {} -> {:?} attempts {attempts}; closest #{:?} succ #{:?} pred #{:?}",
                self.now,
                &key.to_string()[12..20],
                result.map(|(o, h)| (self.index_of(&o), h)),
                self.index_of(&closest),
                self.index_of(&succ),
                self.index_of(&pred)
            );
        }
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

    pub(crate) fn put_done(&mut self, i: u32, id: RequestId, ok: bool) {
        let Some(Work::Put { key, value }) = self.work.remove(&(i, id.0)) else {
            return;
        };
        self.metrics.puts += 1;
        if ok {
            self.metrics.puts_ok += 1;
            self.stored.push((key, value, self.now));
        }
    }

    pub(crate) fn get_done(
        &mut self,
        i: u32,
        id: RequestId,
        values: Option<Vec<crate::ring::DhtValue>>,
    ) {
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
}
