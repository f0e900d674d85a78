//! Symphony shortcuts (Brunet's `StructuredShortcutConnectionOverlord`).
//!
//! A target lies at ring fraction x ∈ [1/N, 1) from us with density 1/(x ln N), the
//! harmonic distribution, drawn as x = N^(p−1) with p uniform (natural log: IPOP's
//! `log10` is a bug). The closest node to the target answers a greedy connect-to-me.
//! Each shortcut lives `shortcut_lifetime` (±50 %) and is then re-drawn, so the
//! overlay keeps adapting as N changes.

use crate::address::{Address, RingInt};

use super::config::ShortcutCount;
use super::msg::{Mode, Payload};
use super::node::Node;
use super::table::ConnType;
use super::time::Time;
use super::timer::Timer;

/// A connect-to-me for a shortcut in flight.
#[derive(Clone, Debug)]
pub(crate) struct Inflight {
    token: u32,
    deadline: Time,
}

/// Shortcut upkeep state.
#[derive(Clone, Debug, Default)]
pub(crate) struct ShortcutState {
    inflight: Vec<Inflight>,
    token: u32,
}

impl ShortcutState {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.inflight.capacity() * std::mem::size_of::<Inflight>()
    }
}

impl Node {
    /// Shortcuts wanted for the current size estimate.
    pub fn desired_shortcuts(&self) -> usize {
        match self.cfg.shortcuts {
            ShortcutCount::Fixed(n) => n,
            ShortcutCount::Log2 { factor } => {
                let l = f64::from(self.near.size_log2);
                if !l.is_finite() || l.exp2() <= 10.0 {
                    0
                } else {
                    (factor * l).ceil().max(0.0) as usize
                }
            }
        }
    }

    /// Shortcuts that count: ours, outside the near set.
    pub fn shortcut_count(&self) -> usize {
        self.table
            .iter()
            .filter(|p| {
                p.types.contains(ConnType::SHORTCUT) && !self.near.current.contains(&p.addr)
            })
            .count()
    }

    pub(crate) fn shortcut_tick(&mut self) {
        let now = self.now;
        let wait = self
            .cfg
            .shortcut_interval
            .mul_f64(0.75 + 0.5 * self.uniform());
        self.timers.set(Timer::Shortcut, now + wait);
        self.sc.inflight.retain(|f| f.deadline > now);
        if !self.near.routable {
            return;
        }
        // Re-draw expired shortcuts.
        let expired: Vec<Address> = self
            .table
            .iter()
            .filter(|p| p.types.contains(ConnType::SHORTCUT) && p.shortcut_until <= now)
            .map(|p| p.addr)
            .collect();
        for a in expired {
            self.clear_reason(&a, ConnType::SHORTCUT);
        }
        let desired = self.desired_shortcuts();
        let have = self.shortcut_count();
        let inflight = self.sc.inflight.len();
        if have >= desired {
            // Satisfied: look again less often.
            let wait = self.cfg.shortcut_interval.mul_f64(2.5 + self.uniform());
            self.timers.set(Timer::Shortcut, now + wait);
        }
        if have + inflight < desired {
            let n = (desired - have - inflight)
                .min(self.cfg.shortcut_parallel.saturating_sub(inflight));
            for _ in 0..n {
                self.draw_shortcut();
            }
        } else if have > desired + 2 {
            let ours: Vec<Address> = self
                .table
                .iter()
                .filter(|p| {
                    p.types.contains(ConnType::SHORTCUT) && !self.near.current.contains(&p.addr)
                })
                .map(|p| p.addr)
                .collect();
            let a = ours[self.below(ours.len())];
            self.clear_reason(&a, ConnType::SHORTCUT);
        }
    }

    /// A harmonic target: ring fraction N^(p−1) on a random side.
    pub(crate) fn shortcut_target(&mut self) -> Address {
        let ln_n = f64::from(self.near.size_log2).max(1.0) * std::f64::consts::LN_2;
        let p = self.uniform();
        let frac = (ln_n * (p - 1.0)).exp();
        let d = RingInt::from_ring_fraction(frac);
        let t = if self.uniform() < 0.5 {
            self.me.wrapping_add(d)
        } else {
            self.me.wrapping_sub(d)
        };
        Address::ah(*t.as_bytes())
    }

    fn draw_shortcut(&mut self) {
        let target = self.shortcut_target();
        self.sc.token = self.sc.token.wrapping_add(1);
        let token = self.sc.token;
        let deadline = self.now + self.cfg.request_timeout * 3;
        self.sc.inflight.push(Inflight { token, deadline });
        self.stats.ctm_sent += 1;
        let near = Vec::new();
        let payload = Payload::Ctm {
            kind: ConnType::SHORTCUT,
            token,
            via: None,
            near,
        };
        self.originate(target, Mode::Greedy, payload, false);
    }

    /// The closest node to a target answered: make it a shortcut.
    pub(crate) fn shortcut_reply(&mut self, src: Address, token: u32) {
        let Some(i) = self.sc.inflight.iter().position(|f| f.token == token) else {
            return;
        };
        self.sc.inflight.swap_remove(i);
        self.want_link(src, ConnType::SHORTCUT);
    }
}
