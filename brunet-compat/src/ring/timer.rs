//! Timers are data: a fieldless [`Timer`] indexes a table of deadlines (quinn's
//! `TimerTable`), so a node's whole timer state is a few words and a spurious
//! timeout is a no-op.

use super::time::Time;

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Near-neighbour upkeep: seeking, trimming, consistency.
    Near = 0,
    /// A debounced status announcement to near neighbours.
    Status,
    /// Shortcut upkeep: count against the size estimate, re-draws.
    Shortcut,
    /// On-demand reaping.
    OnDemand,
    /// Request retransmissions and give-ups.
    Requests,
    /// Expiry of pending link wishes and relay attempts.
    Pending,
    /// DHT expiry sweep.
    Dht,
    /// Release of leaf links once the ring holds us.
    Leaf,
}

const COUNT: usize = 8;
const ALL: [Timer; COUNT] = [
    Timer::Near,
    Timer::Status,
    Timer::Shortcut,
    Timer::OnDemand,
    Timer::Requests,
    Timer::Pending,
    Timer::Dht,
    Timer::Leaf,
];

/// One optional deadline per [`Timer`], with the soonest cached.
#[derive(Clone, Debug, Default)]
pub(crate) struct TimerTable {
    at: [Option<Time>; COUNT],
    /// The soonest deadline, `None` when it must be recomputed.
    soonest: Option<Option<(Time, Timer)>>,
}

impl TimerTable {
    /// Arms `t` at `at`, replacing any earlier setting.
    pub(crate) fn set(&mut self, t: Timer, at: Time) {
        self.at[t as usize] = Some(at);
        self.soonest = None;
    }

    /// Arms `t` at `at` unless it is already due sooner.
    pub(crate) fn set_min(&mut self, t: Timer, at: Time) {
        let slot = &mut self.at[t as usize];
        if slot.is_none_or(|cur| at < cur) {
            *slot = Some(at);
            if let Some(Some((s, _))) = self.soonest
                && s <= at
            {
                return;
            }
            self.soonest = None;
        }
    }

    /// Disarms `t`.
    pub(crate) fn stop(&mut self, t: Timer) {
        self.at[t as usize] = None;
        self.soonest = None;
    }

    /// The soonest deadline of all, and which timer it belongs to.
    pub(crate) fn next(&mut self) -> Option<(Time, Timer)> {
        if let Some(s) = self.soonest {
            return s;
        }
        let s = ALL
            .iter()
            .filter_map(|&t| self.at[t as usize].map(|at| (at, t)))
            .min_by_key(|&(at, _)| at);
        self.soonest = Some(s);
        s
    }

    /// Disarms and returns every timer due at `now`, in table order.
    pub(crate) fn expire(&mut self, now: Time) -> impl Iterator<Item = Timer> + use<> {
        let mut due = [None; COUNT];
        for (i, &t) in ALL.iter().enumerate() {
            if self.at[i].is_some_and(|at| at <= now) {
                self.at[i] = None;
                due[i] = Some(t);
            }
        }
        self.soonest = None;
        due.into_iter().flatten()
    }
}
