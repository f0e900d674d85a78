//! Status announcements: our nearest neighbours, routable flag and size estimate, sent
//! when a link comes up, when the near list changes (debounced) and periodically.

use crate::address::Address;

use super::msg::Msg;
use super::node::Node;
use super::timer::Timer;

impl Node {
    /// Our nearest `near_per_side + 1` on each side, for status lists and CTM replies
    /// (cached until a peer comes or goes).
    pub(crate) fn near_list(&mut self) -> Vec<Address> {
        let version = self.table.version();
        if self.near.list_version != Some(version) {
            let me = self.me;
            let k = self.cfg.near_per_side + 1;
            let mut v = std::mem::take(&mut self.near.list);
            v.clear();
            v.extend(
                self.table
                    .left_of(&me)
                    .take(k)
                    .chain(self.table.right_of(&me).take(k))
                    .map(|p| p.addr),
            );
            v.sort_unstable_by_key(|a| a.to_ring_int());
            v.dedup();
            self.near.list = v;
            self.near.list_version = Some(version);
        }
        self.near.list.clone()
    }

    /// True when the cached near list differs from what we last announced.
    pub(super) fn near_list_changed(&mut self) -> bool {
        self.near_list();
        self.near.list != self.near.last_sent
    }

    pub(crate) fn send_status(&mut self, to: &Address) {
        let Some(p) = self.table.get_mut(to) else {
            return;
        };
        let wants = !p.types.is_empty();
        // What the peer last heard from us: a reason added later must tell it.
        p.sent_unwant = !wants;
        let msg = Msg::Status {
            routable: self.near.routable,
            wants,
            near: self.near_list(),
            size_log2: self.near.size_log2,
        };
        self.send_to(to, msg);
    }

    /// Announces our status: to everyone when our routable flag changed, else to the
    /// near set; then re-arms the periodic refresh.
    pub(crate) fn status_tick(&mut self) {
        let now = self.now;
        let list = self.near_list();
        let periodic = now >= self.near.next_refresh;
        let targets: Vec<Address> = if std::mem::take(&mut self.near.status_all) {
            self.table.iter().map(|p| p.addr).collect()
        } else if periodic || list != self.near.last_sent {
            // The near set, and whoever keeps us as a near neighbour.
            self.table
                .iter()
                .filter(|p| p.lists_me || self.near.current.contains(&p.addr))
                .map(|p| p.addr)
                .collect()
        } else {
            Vec::new()
        };
        self.near.last_sent = list;
        for t in targets {
            self.send_status(&t);
        }
        if periodic {
            self.near.next_refresh = now
                + self
                    .cfg
                    .status_interval
                    .mul_f64(0.75 + 0.5 * self.uniform());
        }
        self.timers.set(Timer::Status, self.near.next_refresh);
    }
}
