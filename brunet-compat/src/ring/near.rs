//! Near neighbours (Brunet's `StructuredNearConnectionOverlord`): joining through a
//! leaf, keeping `near_per_side` links on each side, trimming, the consistency check
//! and the network-size estimate.

use std::time::Duration;

use crate::address::{Address, Direction};

use super::io::Event;
use super::node::Node;
use super::table::ConnType;
use super::time::Time;
use super::timer::Timer;

/// First wait before a re-join probe after the near set changed; it doubles up to
/// [`REJOIN_MAX`] while the near set holds.
const REJOIN_FIRST: Duration = Duration::from_secs(5);
const REJOIN_MAX: Duration = Duration::from_secs(600);

/// Addresses learnt from connect-to-me replies, kept until the next near check.
pub(super) const MAX_HINTS: usize = 16;

/// State of near-neighbour upkeep.
#[derive(Clone, Debug)]
pub(crate) struct NearState {
    /// We announce ourselves as part of the ring.
    pub(crate) routable: bool,
    /// The consistency check passes.
    pub(crate) connected: bool,
    /// Smoothed log2 of the network size (NaN until known).
    pub(crate) size_log2: f32,
    /// The current near set: nearest `near_per_side` on each side, sorted.
    pub(crate) current: Vec<Address>,
    /// Last time the near set changed (trimming waits for quiet).
    pub(crate) last_change: Time,
    /// Retry period while not connected.
    pub(crate) backoff: Duration,
    /// Earliest next join request.
    pub(crate) next_join: Time,
    /// Earliest next directional probe, left and right.
    pub(crate) next_probe: [Time; 2],
    /// Next re-join probe, and the wait after it.
    pub(crate) next_rejoin: Time,
    pub(crate) rejoin_wait: Duration,
    /// Our routable flag changed: announce to every peer, not just the near ones.
    pub(crate) status_all: bool,
    /// Candidates from connect-to-me replies.
    pub(crate) hints: Vec<Address>,
    /// The near list we last announced (changes trigger an announcement).
    pub(crate) last_sent: Vec<Address>,
    /// When the periodic refresh is due.
    pub(crate) next_refresh: Time,
    pub(crate) token: u32,
    /// Something seeking reads changed (a near peer's list, a failure, an expiry).
    pub(crate) seek_dirty: bool,
    /// Table version at the last seek.
    pub(crate) seek_version: Option<u64>,
    /// Cached [`Node::near_list`], valid for table version `list_version`.
    pub(crate) list: Vec<Address>,
    pub(crate) list_version: Option<u64>,
}

impl Default for NearState {
    fn default() -> NearState {
        NearState {
            routable: false,
            connected: false,
            size_log2: f32::NAN,
            current: Vec::new(),
            last_change: Time::ZERO,
            backoff: Duration::ZERO,
            next_join: Time::ZERO,
            next_probe: [Time::ZERO; 2],
            next_rejoin: Time::NEVER,
            rejoin_wait: REJOIN_FIRST,
            status_all: false,
            hints: Vec::new(),
            last_sent: Vec::new(),
            next_refresh: Time::ZERO,
            token: 0,
            seek_dirty: true,
            seek_version: None,
            list: Vec::new(),
            list_version: None,
        }
    }
}

impl NearState {
    pub(crate) fn heap_bytes(&self) -> usize {
        (self.current.capacity()
            + self.hints.capacity()
            + self.last_sent.capacity()
            + self.list.capacity())
            * std::mem::size_of::<Address>()
    }
}

impl Node {
    /// The near check: rank, link, trim, probe, check consistency, estimate the size.
    pub(crate) fn near_check(&mut self) {
        let now = self.now;
        let me = self.me;
        let mk = me.to_ring_int();
        let k = self.cfg.near_per_side.max(1);
        let keep = k + self.cfg.near_trim_slack;

        // Rank what we have.
        let left: Vec<Address> = self.table.left_of(&me).take(keep).map(|p| p.addr).collect();
        let right: Vec<Address> = self
            .table
            .right_of(&me)
            .take(keep)
            .map(|p| p.addr)
            .collect();

        // Seek: peers' near lists and CTM hints that would rank among our nearest k.
        // The distance test comes first: most candidates are peers we already have.
        let kth_left = left.get(k - 1).map(|a| a.to_ring_int().wrapping_sub(mk));
        let kth_right = right.get(k - 1).map(|a| mk.wrapping_sub(a.to_ring_int()));
        let ranks = |c: &Address| {
            let ck = c.to_ring_int();
            ck != mk
                && (kth_left.is_none_or(|d| ck.wrapping_sub(mk) < d)
                    || kth_right.is_none_or(|d| mk.wrapping_sub(ck) < d))
        };
        // Skipped when nothing it reads changed since the last time (steady state).
        let mut cands = std::mem::take(&mut self.near.hints);
        cands.retain(|c| ranks(c));
        let version = self.table.version();
        if self.near.seek_dirty || self.near.seek_version != Some(version) {
            self.near.seek_dirty = false;
            self.near.seek_version = Some(version);
            for a in &self.near.current {
                if let Some(p) = self.table.get(a) {
                    cands.extend(p.near.iter().filter(|c| ranks(c)));
                }
            }
        }
        for &c in &cands {
            if !self.table.contains(&c)
                && !self.pending.iter().any(|p| p.addr == c)
                && !self.recently_lost(&c)
            {
                self.want_link(c, ConnType::NEAR);
            }
        }
        cands.clear();
        self.near.hints = cands;

        let mut set: Vec<Address> = left
            .iter()
            .take(k)
            .chain(right.iter().take(k))
            .copied()
            .collect();
        set.sort_unstable_by_key(|a| a.to_ring_int());
        set.dedup();
        for a in &set {
            self.add_reason(a, ConnType::NEAR);
        }
        if now.saturating_since(self.near.last_change) >= self.cfg.trim_quiet {
            let far: Vec<Address> = self
                .table
                .iter()
                .filter(|p| p.types.contains(ConnType::NEAR))
                .filter(|p| !left.contains(&p.addr) && !right.contains(&p.addr))
                .map(|p| p.addr)
                .collect();
            for a in far {
                self.clear_reason(&a, ConnType::NEAR);
            }
        }

        // Consistency: our nearest peer on each side has told us its neighbours and
        // none of them sits between it and us.
        let ok_left = self.side_consistent(Direction::Left);
        let ok_right = self.side_consistent(Direction::Right);

        // Routable once both sides are consistent and a ring member sits among our
        // nearest on one side (joiners next to each other become routable from the
        // edges of their run inward). A node that knows only a far-away leaf is not
        // consistent, so it does not route: it would answer for keys it does not own,
        // and its probes would go astray.
        let routable_in = |v: &[Address]| {
            v.iter()
                .take(k)
                .any(|a| self.table.get(a).is_some_and(|p| p.routable))
        };
        // Once routable, a node stays so: demoting on a momentary lack of routable
        // peers made two-node rings flap.
        if !self.near.routable && ok_left && ok_right && (routable_in(&left) || routable_in(&right))
        {
            self.near.routable = true;
            self.near.status_all = true;
            self.near.rejoin_wait = REJOIN_FIRST;
            self.near.next_rejoin = now + REJOIN_FIRST;
        }
        if self.near.routable && !self.table.is_empty() && now >= self.near.next_rejoin {
            self.send_rejoin();
            let wait = self.near.rejoin_wait.max(REJOIN_FIRST);
            self.near.next_rejoin = now + wait.mul_f64(0.75 + 0.5 * self.uniform());
            self.near.rejoin_wait = (wait * 2).min(REJOIN_MAX);
        }

        // Join through a peer (our leaf at first) until we are routable.
        if !self.near.routable && !self.table.is_empty() && now >= self.near.next_join {
            self.send_join();
            self.near.next_join = now + self.cfg.seek_interval.mul_f64(2.0 + self.uniform());
        }

        // Directional probes for a short or inconsistent side.
        if self.near.routable && !self.table.is_empty() {
            for (i, (dir, ok, have)) in [
                (Direction::Left, ok_left, left.len()),
                (Direction::Right, ok_right, right.len()),
            ]
            .into_iter()
            .enumerate()
            {
                if (!ok || have < k) && now >= self.near.next_probe[i] {
                    self.send_probe(dir, k);
                    let wait = self
                        .near
                        .backoff
                        .max(self.cfg.seek_interval)
                        .mul_f64(1.0 + self.uniform());
                    self.near.next_probe[i] = now + wait;
                }
            }
        }
        let connected = self.near.routable && (self.table.is_empty() || (ok_left && ok_right));
        if connected != self.near.connected {
            self.near.connected = connected;
            self.emit(Event::RingState { connected });
        }

        if set != self.near.current {
            self.near.seek_dirty = true;
            // New neighbours: probe from afar again soon.
            self.near.rejoin_wait = REJOIN_FIRST;
            self.near.next_rejoin = self.near.next_rejoin.min(now + REJOIN_FIRST);
            let prev = std::mem::replace(&mut self.near.current, set);
            self.near.last_change = now;
            self.dht_repair(&prev);
        }
        if self.near.status_all || self.near_list_changed() {
            self.timers
                .set_min(Timer::Status, now + self.cfg.status_debounce);
        }
        self.estimate_size(&left, &right, k);

        let next = if connected {
            self.near.backoff = self.cfg.seek_interval;
            self.cfg.near_interval
        } else {
            let b = self.near.backoff.max(self.cfg.seek_interval);
            self.near.backoff = (b * 2).min(self.cfg.near_interval);
            b
        };
        // A due re-join probe does not wait for the next periodic check.
        let mut at = now + next.mul_f64(0.75 + 0.5 * self.uniform());
        if self.near.routable && self.near.next_rejoin > now {
            at = at.min(self.near.next_rejoin);
        }
        self.timers.set(Timer::Near, at);
    }

    /// Brunet's `IsConnected` for one side: the nearest peer there has told us its
    /// neighbours, and none of them sits between it and us.
    fn side_consistent(&self, dir: Direction) -> bool {
        let me = self.me;
        let nearest = match dir {
            Direction::Left => self.table.left_of(&me).next(),
            Direction::Right => self.table.right_of(&me).next(),
        };
        let Some(n) = nearest else {
            return false;
        };
        if n.near.is_empty() {
            return false;
        }
        n.near.iter().all(|a| match dir {
            Direction::Left => !a.is_between_from_left(&me, &n.addr),
            Direction::Right => !a.is_between_from_right(&me, &n.addr),
        })
    }

    /// N ≈ (gaps spanned) / (span as a fraction of the ring) over the near peers,
    /// averaged in log space with what the near peers estimate.
    fn estimate_size(&mut self, left: &[Address], right: &[Address], k: usize) {
        let me = self.me;
        let lk = left.get(left.len().min(k).wrapping_sub(1));
        let rk = right.get(right.len().min(k).wrapping_sub(1));
        let count = left.len().min(k) + right.len().min(k);
        let span = lk.map_or(0.0, |a| me.left_distance_to(a).to_f64())
            + rk.map_or(0.0, |a| me.right_distance_to(a).to_f64());
        let routable = self.table.iter().filter(|p| p.routable).count();
        let floor = ((routable + 1) as f64).log2();
        let raw = if count > 0 && span > 0.0 {
            (count as f64 / span).log2().max(floor)
        } else {
            floor
        };
        let (sum, n) = self
            .near
            .current
            .iter()
            .filter_map(|a| self.table.get(a))
            .map(|p| f64::from(p.size_log2))
            .filter(|l| l.is_finite())
            .fold((raw, 1.0), |(s, n), l| (s + l, n + 1.0));
        self.near.size_log2 = (sum / n) as f32;
    }
}
