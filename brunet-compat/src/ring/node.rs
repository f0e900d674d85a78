//! The node: inputs in, outputs out, and the link bookkeeping every concern shares.

use std::collections::VecDeque;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::address::Address;

use super::codec;
use super::config::Config;
use super::dht::DhtStore;
use super::io::{Event, Input, Output, Transmit};
use super::links::NEAR_COALESCE;
use super::msg::Msg;
use super::near::NearState;
use super::ondemand::OnDemandState;
use super::relay::RelayState;
use super::requests::Requests;
use super::shortcut::ShortcutState;
use super::stats::Stats;
use super::table::{ConnType, LinkId, Path, Peer, Table};
use super::time::Time;
use super::timer::{Timer, TimerTable};

/// A link we asked the runtime for and that is not up yet.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub(crate) addr: Address,
    pub(crate) reasons: ConnType,
    pub(crate) deadline: Time,
}

/// One node of the ring, as a state machine without I/O.
///
/// Feed it with [`Node::handle_input`] (and the application calls such as
/// [`Node::send`]), then drain [`Node::poll_output`] until it returns
/// [`Output::Timeout`]; call again with [`Input::Timeout`] at that time.
pub struct Node {
    pub(crate) cfg: Config,
    pub(crate) me: Address,
    pub(crate) now: Time,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) table: Table,
    pub(crate) pending: Vec<Pending>,
    /// Peers whose links died recently, not re-linked from stale status lists.
    pub(crate) lost: Vec<(Address, Time)>,
    pub(crate) timers: TimerTable,
    pub(crate) out: VecDeque<Output>,
    pub(crate) stats: Stats,
    pub(crate) near: NearState,
    pub(crate) sc: ShortcutState,
    pub(crate) od: OnDemandState,
    pub(crate) reqs: Requests,
    pub(crate) dht: DhtStore,
    pub(crate) relay: RelayState,
    pub(crate) left: bool,
}

impl Node {
    /// A node at `me` that has not joined yet: give it a leaf link (an
    /// [`Input::LinkUp`] with `leaf: true`), or call [`Node::create_ring`] on the first node.
    pub fn new(cfg: Config, me: Address, now: Time) -> Node {
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut node = Node {
            cfg,
            me,
            now,
            rng,
            table: Table::default(),
            pending: Vec::new(),
            lost: Vec::new(),
            timers: TimerTable::default(),
            out: VecDeque::new(),
            stats: Stats::default(),
            near: NearState::default(),
            sc: ShortcutState::default(),
            od: OnDemandState::default(),
            reqs: Requests::default(),
            dht: DhtStore::default(),
            relay: RelayState::default(),
            left: false,
        };
        let jitter = node.jitter(node.cfg.shortcut_interval);
        node.timers
            .set(Timer::Near, now + Duration::from_millis(100));
        node.timers.set(Timer::Shortcut, now + jitter);
        node.timers
            .set(Timer::OnDemand, now + Duration::from_secs(60) + jitter);
        node.timers
            .set(Timer::Dht, now + Duration::from_secs(60) + jitter);
        node
    }

    /// Makes this node a ring of one, for the very first node.
    pub fn create_ring(&mut self) {
        self.near.routable = true;
    }

    /// Own address.
    pub fn address(&self) -> Address {
        self.me
    }

    /// The connection table.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// True when the ring-consistency check passes (Brunet's `IsConnected`).
    pub fn is_connected(&self) -> bool {
        self.near.connected
    }

    /// True when the node announces itself as part of the ring.
    pub fn is_routable(&self) -> bool {
        self.near.routable
    }

    /// Estimated network size.
    pub fn size_estimate(&self) -> f64 {
        f64::from(self.near.size_log2).exp2()
    }

    /// Approximate heap plus inline bytes this node holds (the memory figure).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Node>()
            + self.table.heap_bytes()
            + self.pending.capacity() * std::mem::size_of::<Pending>()
            + self.lost.capacity() * std::mem::size_of::<(Address, Time)>()
            + self.out.capacity() * std::mem::size_of::<Output>()
            + self.near.heap_bytes()
            + self.sc.heap_bytes()
            + self.od.heap_bytes()
            + self.reqs.heap_bytes()
            + self.dht.heap_bytes()
            + self.relay.heap_bytes()
    }

    /// Handles one input at `now`. Follow with [`Node::poll_output`] until `Timeout`.
    pub fn handle_input(&mut self, now: Time, input: Input) {
        self.now = self.now.max(now);
        if self.left {
            return;
        }
        match input {
            Input::LinkUp {
                link,
                peer,
                kind,
                rtt,
                leaf,
            } => self.on_link_up(link, peer, kind, rtt, leaf),
            Input::LinkDown { link } => self.on_link_down(link),
            Input::LinkFailed { peer } => self.on_link_failed(peer),
            Input::LinkRtt { link, rtt } => {
                if let Some(addr) = self.table.by_link(link).map(|p| p.addr)
                    && let Some(p) = self.table.get_mut(&addr)
                {
                    p.rtt_us = rtt_us(rtt);
                }
            }
            Input::Receive { link, msg } => self.on_receive(link, msg),
            Input::ReceiveBytes { link, bytes } => match codec::decode(&bytes) {
                Ok(msg) => self.on_receive(link, msg),
                Err(_) => self.stats.malformed += 1,
            },
            Input::Timeout => self.on_timeout(),
        }
    }

    /// The next output; always ends with [`Output::Timeout`] once nothing else is queued.
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        let at = self.timers.next().map_or(Time::NEVER, |(at, _)| at);
        Output::Timeout(at)
    }

    /// Leaves the ring gracefully: tells every peer and asks to close every link.
    pub fn leave(&mut self, now: Time) {
        self.now = self.now.max(now);
        let peers: Vec<Peer> = self.table.iter().cloned().collect();
        for p in &peers {
            self.send_to(&p.addr, Msg::Close);
        }
        for p in peers {
            if let Path::Link(link, _) = p.path {
                self.emit(Event::CloseLink { link });
            }
            self.table.remove(&p.addr);
        }
        for t in [
            Timer::Near,
            Timer::Status,
            Timer::Shortcut,
            Timer::OnDemand,
            Timer::Requests,
            Timer::Pending,
            Timer::Dht,
            Timer::Leaf,
        ] {
            self.timers.stop(t);
        }
        self.left = true;
    }

    fn on_timeout(&mut self) {
        let now = self.now;
        for t in self.timers.expire(now) {
            match t {
                Timer::Near => self.near_check(),
                Timer::Status => self.status_tick(),
                Timer::Shortcut => self.shortcut_tick(),
                Timer::OnDemand => self.ondemand_tick(),
                Timer::Requests => self.requests_tick(),
                Timer::Pending => self.pending_tick(),
                Timer::Dht => self.dht_tick(),
                Timer::Leaf => self.leaf_tick(),
            }
        }
    }

    fn on_receive(&mut self, link: LinkId, msg: Msg) {
        let Some(from) = self.table.by_link(link).map(|p| p.addr) else {
            self.stats.unknown_link += 1;
            return;
        };
        self.on_msg(from, msg, true);
    }

    /// Handles a message from table peer `from`; `direct` is false when it came
    /// through a relay forwarder.
    pub(crate) fn on_msg(&mut self, from: Address, msg: Msg, direct: bool) {
        self.stats.msgs_in += 1;
        match msg {
            Msg::Status {
                routable,
                wants,
                near,
                size_log2,
            } => self.on_status(from, routable, wants, near, size_log2),
            Msg::Want(w) => {
                if let Some(p) = self.table.get_mut(&from) {
                    p.remote_wants = w;
                }
                self.maybe_close(&from);
            }
            Msg::Close => {
                self.forget_peer(&from);
            }
            Msg::Routed(r) => self.route(r, Some(from)),
            Msg::RelayFwd { to, inner } if direct => self.relay_forward(from, to, *inner),
            Msg::RelayDel { from: src, inner } if direct => self.relay_deliver(from, src, *inner),
            Msg::RelayGone { peer } => self.relay_gone(from, peer),
            Msg::DhtStore { key, values } => self.dht_store_replica(key, values),
            Msg::DhtDrop { key, value } => {
                self.dht_drop_replica(key, &value);
            }
            Msg::Broadcast {
                src,
                end,
                hops,
                data,
            } => self.broadcast_recv(src, end, hops, data),
            Msg::RelayFwd { .. } | Msg::RelayDel { .. } => self.stats.relay_refused += 1,
        }
    }

    fn on_status(
        &mut self,
        from: Address,
        routable: bool,
        wants: bool,
        mut near: Vec<Address>,
        size_log2: f32,
    ) {
        near.truncate(4 * self.cfg.near_per_side + 4);
        let Some(p) = self.table.get_mut(&from) else {
            return;
        };
        // Seeking reads only the near set's lists; the routable flag matters to all.
        let list_changed = p.near != near && self.near.current.contains(&from);
        let changed = p.routable != routable || list_changed;
        p.routable = routable;
        p.remote_wants = wants;
        p.lists_me = near.contains(&self.me);
        p.near = near;
        if list_changed {
            self.near.seek_dirty = true;
        }
        p.size_log2 = if size_log2.is_finite() {
            size_log2.clamp(0.0, 160.0)
        } else {
            f32::NAN
        };
        if changed {
            // Coalesce a burst of announcements into one near check.
            self.timers.set_min(Timer::Near, self.now + NEAR_COALESCE);
        }
        self.maybe_close(&from);
    }

    /// Sends a link message to a table peer, through its relay forwarder if need be.
    pub(crate) fn send_to(&mut self, addr: &Address, msg: Msg) {
        let Some(p) = self.table.get(addr) else {
            self.stats.no_route += 1;
            return;
        };
        match p.path {
            Path::Link(link, _) => self.transmit(link, msg),
            Path::Relay { via } => match self.table.get(&via).and_then(Peer::link) {
                Some(link) => self.transmit(
                    link,
                    Msg::RelayFwd {
                        to: *addr,
                        inner: Box::new(msg),
                    },
                ),
                None => self.stats.no_route += 1,
            },
        }
    }

    pub(crate) fn transmit(&mut self, link: LinkId, msg: Msg) {
        self.stats.msgs_out += 1;
        self.out.push_back(Output::Transmit(Transmit { link, msg }));
    }

    pub(crate) fn emit(&mut self, ev: Event) {
        self.out.push_back(Output::Event(ev));
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); `n` must be non-zero.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n as u64) as usize
    }

    /// Uniform in [0, d).
    pub(crate) fn jitter(&mut self, d: Duration) -> Duration {
        d.mul_f64(self.uniform())
    }
}

pub(super) fn rtt_us(rtt: Duration) -> u32 {
    u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX).max(1)
}
