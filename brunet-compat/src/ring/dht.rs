//! DHT storage (Brunet's `TableServer`): the owner of a key (the node closest to it)
//! stores values with a TTL and pushes them to the `dht_replicas − 1` nodes next
//! nearest the key among its neighbours. When the near set changes, values are pushed
//! to new neighbours that now belong to a key's replica set (repair on churn). Every
//! value passes the signature hook before it is stored.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::address::Address;

use super::msg::{DhtValue, Msg};
use super::node::Node;
use super::time::Time;
use super::timer::Timer;
use super::writers::Writers;

#[derive(Clone, Debug)]
struct Stored {
    value: Vec<u8>,
    sig: Vec<u8>,
    expires: Time,
}

/// Values held here, by key.
#[derive(Clone, Debug, Default)]
pub(crate) struct DhtStore {
    map: BTreeMap<Address, Vec<Stored>>,
    /// Values in `map`, kept up to date so the store's bound is checked in O(1).
    values: usize,
    writers: Writers,
}

impl DhtStore {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.map
            .values()
            .map(|v| {
                64 + v
                    .iter()
                    .map(|s| 48 + s.value.len() + s.sig.len())
                    .sum::<usize>()
            })
            .sum::<usize>()
            + self.writers.heap_bytes()
    }
}

impl Node {
    /// Number of values stored here.
    pub fn dht_len(&self) -> usize {
        self.dht.values
    }

    /// Validates and stores one value; true when stored (or refreshed).
    fn dht_insert(&mut self, key: Address, v: &DhtValue) -> bool {
        let max_ttl = u32::try_from(self.cfg.dht_max_ttl.as_secs()).unwrap_or(u32::MAX);
        if v.value.len() > self.cfg.dht_max_value
            || v.ttl_s == 0
            || v.ttl_s > max_ttl
            || !self.cfg.validator.verify(&key, &v.value, &v.sig)
        {
            self.stats.dht_rejected += 1;
            return false;
        }
        let expires = self.now + Duration::from_secs(u64::from(v.ttl_s));
        let held = self.dht.map.get(&key);
        let refresh = held.is_some_and(|e| e.iter().any(|s| s.value == v.value));
        if !refresh
            && (held.map_or(0, Vec::len) >= self.cfg.dht_max_values_per_key
                || self.dht.values >= self.cfg.dht_max_values)
        {
            self.stats.dht_full += 1;
            return false;
        }
        let entry = self.dht.map.entry(key).or_default();
        match entry.iter_mut().find(|s| s.value == v.value) {
            Some(s) => {
                s.expires = s.expires.max(expires);
                s.sig.clone_from(&v.sig);
            }
            None => {
                entry.push(Stored {
                    value: v.value.clone(),
                    sig: v.sig.clone(),
                    expires,
                });
                self.dht.values += 1;
            }
        }
        true
    }

    /// The up to `dht_replicas − 1` neighbours nearest `key` that, with us, form its
    /// replica set.
    fn replica_peers(&self, key: &Address, among: &[Address]) -> Vec<Address> {
        let mut v: Vec<Address> = among.to_vec();
        v.push(self.me);
        v.sort_by_key(|a| key.distance_to(a).abs());
        v.truncate(self.cfg.dht_replicas.max(1));
        v.retain(|a| *a != self.me);
        v
    }

    fn values_of(&self, key: &Address) -> Vec<DhtValue> {
        let now = self.now;
        self.dht
            .map
            .get(key)
            .map(|v| {
                v.iter()
                    .filter(|s| s.expires > now)
                    .map(|s| DhtValue {
                        value: s.value.clone(),
                        sig: s.sig.clone(),
                        ttl_s: u32::try_from(s.expires.saturating_since(now).as_secs())
                            .unwrap_or(u32::MAX),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether a put or remove from `src` is within its writer's rate (our own always are);
    /// counts the refused.
    pub(crate) fn writer_allowed(&mut self, src: Address) -> bool {
        let (rate, burst) = (self.cfg.dht_write_rate, self.cfg.dht_write_burst);
        let ok = src == self.me || self.dht.writers.allow(src, self.now, rate, burst);
        if !ok {
            self.stats.dht_writes_limited += 1;
        }
        ok
    }

    pub(crate) fn dht_put_local(&mut self, key: Address, v: DhtValue) -> bool {
        if !self.dht_insert(key, &v) {
            return false;
        }
        let near = self.near.current.clone();
        for p in self.replica_peers(&key, &near) {
            self.send_to(
                &p,
                Msg::DhtStore {
                    key,
                    values: vec![v.clone()],
                },
            );
        }
        true
    }

    pub(crate) fn dht_get_local(&mut self, key: &Address) -> Vec<DhtValue> {
        self.values_of(key)
    }

    pub(crate) fn dht_remove_local(&mut self, key: Address, value: &[u8]) -> bool {
        let found = self.dht_drop_replica(key, value);
        let near = self.near.current.clone();
        for p in self.replica_peers(&key, &near) {
            self.send_to(
                &p,
                Msg::DhtDrop {
                    key,
                    value: value.to_vec(),
                },
            );
        }
        found
    }

    pub(crate) fn dht_store_replica(&mut self, key: Address, values: Vec<DhtValue>) {
        for v in values.iter().take(64) {
            self.dht_insert(key, v);
        }
    }

    /// Removes a value; true when it was here.
    pub(crate) fn dht_drop_replica(&mut self, key: Address, value: &[u8]) -> bool {
        let Some(v) = self.dht.map.get_mut(&key) else {
            return false;
        };
        let before = v.len();
        v.retain(|s| s.value != value);
        let found = v.len() != before;
        self.dht.values -= before - v.len();
        if v.is_empty() {
            self.dht.map.remove(&key);
        }
        found
    }

    /// The near set changed from `prev`: push each key's values to neighbours that
    /// joined its replica set.
    pub(crate) fn dht_repair(&mut self, prev: &[Address]) {
        if self.dht.map.is_empty() {
            return;
        }
        let now_set = self.near.current.clone();
        let fresh: Vec<Address> = now_set
            .iter()
            .filter(|a| !prev.contains(a))
            .copied()
            .collect();
        let lost_one = prev.iter().any(|a| !now_set.contains(a));
        if fresh.is_empty() && !lost_one {
            return;
        }
        let keys: Vec<Address> = self.dht.map.keys().copied().collect();
        for key in keys {
            let before = self.replica_peers(&key, prev);
            let after = self.replica_peers(&key, &now_set);
            let targets: Vec<Address> = after.into_iter().filter(|a| !before.contains(a)).collect();
            if targets.is_empty() {
                continue;
            }
            let values = self.values_of(&key);
            if values.is_empty() {
                continue;
            }
            for t in targets {
                self.send_to(
                    &t,
                    Msg::DhtStore {
                        key,
                        values: values.clone(),
                    },
                );
            }
        }
    }

    /// Drops expired values.
    pub(crate) fn dht_tick(&mut self) {
        let now = self.now;
        let mut dropped = 0;
        self.dht.map.retain(|_, v| {
            let before = v.len();
            v.retain(|s| s.expires > now);
            dropped += before - v.len();
            !v.is_empty()
        });
        self.dht.values -= dropped;
        self.timers.set(Timer::Dht, now + Duration::from_secs(60));
    }
}
