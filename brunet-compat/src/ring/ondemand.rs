//! On-demand links (Brunet's Chota, later `OnDemandConnectionOverlord`): a direct link
//! to the peers we send to most, capped, released when idle.

use std::time::Duration;

use crate::address::Address;

use super::node::Node;
use super::table::ConnType;
use super::time::Time;
use super::timer::Timer;

/// Traffic counting window.
const WINDOW: Duration = Duration::from_secs(60);
/// Destinations counted at once; the stalest is forgotten first.
const MAX_COUNTED: usize = 64;

#[derive(Clone, Debug)]
struct Counter {
    addr: Address,
    count: u32,
    since: Time,
}

/// Traffic counters of destinations we have no link to.
#[derive(Clone, Debug, Default)]
pub(crate) struct OnDemandState {
    counters: Vec<Counter>,
}

impl OnDemandState {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.counters.capacity() * std::mem::size_of::<Counter>()
    }
}

impl Node {
    /// Counts an exact-mode message to `dst`; enough of them within a minute ask for a link.
    pub(crate) fn note_traffic(&mut self, dst: Address) {
        let now = self.now;
        if dst == self.me || !dst.is_ah() {
            return;
        }
        if let Some(p) = self.table.get_mut(&dst) {
            p.last_used = now;
            return;
        }
        let counters = &mut self.od.counters;
        counters.retain(|c| now.saturating_since(c.since) < WINDOW);
        let count = match counters.iter_mut().find(|c| c.addr == dst) {
            Some(c) => {
                c.count += 1;
                c.count
            }
            None => {
                if counters.len() >= MAX_COUNTED {
                    counters.remove(0);
                }
                counters.push(Counter {
                    addr: dst,
                    count: 1,
                    since: now,
                });
                1
            }
        };
        if count >= self.cfg.ondemand_threshold {
            self.od.counters.retain(|c| c.addr != dst);
            self.make_room_ondemand();
            self.want_link(dst, ConnType::ONDEMAND);
        }
    }

    /// Keeps on-demand links under the cap by releasing the least recently used.
    fn make_room_ondemand(&mut self) {
        loop {
            let ours: Vec<(Time, Address)> = self
                .table
                .iter()
                .filter(|p| p.types.contains(ConnType::ONDEMAND))
                .map(|p| (p.last_used, p.addr))
                .collect();
            if ours.len() < self.cfg.ondemand_max.max(1) {
                return;
            }
            let Some(&(_, lru)) = ours.iter().min() else {
                return;
            };
            self.clear_reason(&lru, ConnType::ONDEMAND);
        }
    }

    /// Releases on-demand links idle for `ondemand_idle`.
    pub(crate) fn ondemand_tick(&mut self) {
        let now = self.now;
        let idle = self.cfg.ondemand_idle;
        let stale: Vec<Address> = self
            .table
            .iter()
            .filter(|p| {
                p.types.contains(ConnType::ONDEMAND) && now.saturating_since(p.last_used) >= idle
            })
            .map(|p| p.addr)
            .collect();
        for a in stale {
            self.clear_reason(&a, ConnType::ONDEMAND);
        }
        // Overlap links outlive their relay edges only until this sweep.
        self.relay_expire();
        self.timers
            .set(Timer::OnDemand, now + Duration::from_secs(60));
    }
}
