//! The tunnel's clock: every deadline is derived from a few timestamps, so there is no timer
//! state to get out of step; a spurious call is a no-op.

use std::time::Instant;

use super::tunnel::{DownReason, Role, Tunnel, TunnelEvent};
use super::wire::Inner;

/// Why the tunnel wants to be woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Resend the handshake initiation.
    HandshakeRetry,
    /// Give up the handshake.
    HandshakeTimeout,
    /// Tell the peer its observed address.
    Observed,
    /// Send a keepalive.
    Keepalive,
    /// Probe a path that went quiet.
    Probe,
    /// Report the path stale.
    Stale,
    /// Declare the link dead.
    Dead,
}

/// The earliest of some deadlines, with its reason.
fn soonest(
    best: Option<(Instant, Timer)>,
    at: Option<Instant>,
    why: Timer,
) -> Option<(Instant, Timer)> {
    match (best, at) {
        (Some((b, _)), Some(a)) if a < b => Some((a, why)),
        (None, Some(a)) => Some((a, why)),
        (b, _) => b,
    }
}

impl Tunnel {
    /// When [`Tunnel::update_timers`] must run next, and why.
    pub fn poll_timeout(&self) -> Option<(Instant, Timer)> {
        if self.closed {
            return None;
        }
        let c = &self.cfg;
        let mut t = None;
        if let Some(started) = self.handshake_started {
            t = soonest(
                t,
                Some(started + c.handshake_timeout),
                Timer::HandshakeTimeout,
            );
            t = soonest(
                t,
                self.last_sent.map(|s| s + c.handshake_retry),
                Timer::HandshakeRetry,
            );
        } else if !self.up && self.current.is_none() {
            t = soonest(
                t,
                self.created.map(|at| at + c.handshake_timeout),
                Timer::HandshakeTimeout,
            );
        }
        if self.is_up() {
            if self.observed_to_send.is_some() {
                t = soonest(t, self.last_received, Timer::Observed);
            }
            t = soonest(t, self.last_sent.map(|s| s + c.keepalive), Timer::Keepalive);
            if let Some(a) = self.awaiting_since {
                let probe = match self.ping_out {
                    Some((_, at)) => at + c.probe_after,
                    None => a + c.probe_after,
                };
                t = soonest(t, Some(probe), Timer::Probe);
                if !self.stale_reported {
                    t = soonest(t, Some(a + c.stale_after), Timer::Stale);
                }
            }
            t = soonest(t, self.last_received.map(|r| r + c.dead_after), Timer::Dead);
        }
        t
    }

    /// Runs what is due at `now`; returns the length of a packet written into `dst` to send.
    /// Call again until it returns `None`.
    pub fn update_timers(&mut self, now: Instant, dst: &mut [u8]) -> Option<usize> {
        if self.closed {
            return None;
        }
        let c = self.cfg.clone();
        if let Some(started) = self.handshake_started {
            if now >= started + c.handshake_timeout {
                self.handshake_started = None;
                self.pending_clear();
                // A re-handshake on a live session just stops; otherwise the link is over.
                if !self.is_up() {
                    self.shut(DownReason::HandshakeTimeout);
                }
                return None;
            }
            if self.role() == Role::Initiator
                && self.last_sent.is_none_or(|s| now >= s + c.handshake_retry)
            {
                return self.initiate(now, dst);
            }
        } else if !self.up
            && self.current.is_none()
            && self
                .created
                .is_some_and(|at| now >= at + c.handshake_timeout)
        {
            self.shut(DownReason::HandshakeTimeout);
            return None;
        }
        if !self.is_up() {
            return None;
        }
        if let Some(r) = self.last_received
            && now >= r + c.dead_after
        {
            self.lose(DownReason::Silence);
            return None;
        }
        if let Some(a) = self.observed_to_send.take()
            && let Ok(n) = self.seal(now, Inner::Observed(a), dst)
        {
            return Some(n);
        }
        if let Some(a) = self.awaiting_since {
            if !self.stale_reported && now >= a + c.stale_after {
                self.stale_reported = true;
                self.events.push_back(TunnelEvent::PathStale);
            }
            let due = match self.ping_out {
                Some((_, at)) => now >= at + c.probe_after,
                None => now >= a + c.probe_after,
            };
            if due {
                return self.ping(now, dst);
            }
        }
        if self.last_sent.is_none_or(|s| now >= s + c.keepalive) {
            return self.ping(now, dst);
        }
        None
    }

    fn ping(&mut self, now: Instant, dst: &mut [u8]) -> Option<usize> {
        self.ping_id = self.ping_id.wrapping_add(1);
        let id = self.ping_id;
        let n = self.seal(now, Inner::Ping(id), dst).ok()?;
        self.ping_out = Some((id, now));
        Some(n)
    }
}
