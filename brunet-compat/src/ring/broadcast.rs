//! Bounded broadcast over an address range (Brunet's `BroadcastSender`): each node
//! delivers, then splits the rest of its range among its peers inside it, nearest
//! first, so every node in the range gets one copy and the depth is about log N.

use crate::address::Address;

use super::io::Event;
use super::msg::Msg;
use super::node::Node;
use super::time::Time;

/// Peers a node hands sub-ranges to at most; the nearest always gets one, so coverage
/// is complete (the farther peers' sub-ranges are merged into the previous one).
const MAX_FANOUT: usize = 16;

impl Node {
    /// Broadcasts `data` to every node in the clockwise range from us to `end`
    /// (exclusive; `end == self` covers the whole ring), us included.
    pub fn broadcast(&mut self, now: Time, end: Address, data: Vec<u8>) {
        self.now = self.now.max(now);
        if self.left {
            return;
        }
        let me = self.me;
        self.broadcast_recv(me, end, 0, data);
    }

    /// Delivers a broadcast and covers the range (self, end).
    pub(crate) fn broadcast_recv(&mut self, src: Address, end: Address, hops: u16, data: Vec<u8>) {
        self.emit(Event::Broadcast {
            src,
            hops,
            data: data.clone(),
        });
        if hops >= self.ttl().saturating_mul(2) {
            self.stats.ttl_drops += 1;
            return;
        }
        let me = self.me;
        let whole = end == me;
        let mut inside: Vec<Address> = self
            .table
            .left_of(&me)
            .filter(|p| p.routable)
            .map(|p| p.addr)
            .take_while(|a| whole || a.is_between_from_left(&me, &end))
            .collect();
        if inside.len() > MAX_FANOUT {
            // Keep the nearest and an even spread of the others.
            let step = inside.len() as f64 / MAX_FANOUT as f64;
            inside = (0..MAX_FANOUT)
                .map(|i| inside[(i as f64 * step) as usize])
                .collect();
        }
        for (i, a) in inside.iter().enumerate() {
            let sub_end = inside.get(i + 1).copied().unwrap_or(end);
            let msg = Msg::Broadcast {
                src,
                end: sub_end,
                hops: hops + 1,
                data: data.clone(),
            };
            self.send_to(a, msg);
        }
    }
}
