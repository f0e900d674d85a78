//! Request/reply reliability (`Messaging/ReqrepManager.cs`).
//!
//! A request is resent with the same id until a reply comes, up to a number of resends;
//! the timeout is max(floor, mean RTT + 6σ) once a round trip has been measured. The
//! requester acknowledges each reply (ReplyAck) so the replier can drop it from its reply
//! cache; until then a repeated request is answered from the cache, never run twice.
//! Requests whose answer may come from several nodes (a connect-to-me delivered to both
//! nodes bracketing an address) stay open for more replies after the first.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::address::Address;
use crate::ring::Time;
use crate::wire::adr::Adr;
use crate::wire::reqrep::{ReqRepRepr, ReqRepType};
use crate::wire::{EmitError, PType, rpc};

use super::Route;

/// Why we sent a request: what to do with its answer or its failure.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Purpose {
    /// `sys:link.Start` of linker `linker`.
    Start(u32),
    /// `sys:link.GetStatus` finishing linker `linker`.
    LinkStatus(u32),
    /// A status refresh with a connected peer.
    Status(Address),
    /// A keepalive ping on an edge.
    Ping(i32),
    /// `sys:link.Close` (the answer does not matter).
    Close,
    /// A connect-to-me of the near overlord.
    Ctm,
    /// [`super::Node::echo`] with this token.
    Echo(u32),
}

/// A request waiting for its reply.
#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub route: Route,
    /// `"r\0" | type | id | body`, resent as is.
    pub payload: Vec<u8>,
    pub purpose: Purpose,
    pub sent: Time,
    pub next: Time,
    pub resends: u32,
    pub replies: u32,
    pub max_replies: u32,
}

/// What a due request needs.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Due {
    /// Send it again.
    Resend(Route, Vec<u8>),
    /// No (more) replies will come: it failed if it got none.
    Done(Purpose, bool),
}

/// Outstanding requests, the reply cache and the round-trip estimate.
#[derive(Clone, Debug, Default)]
pub struct ReqRep {
    pending: BTreeMap<i32, Pending>,
    cache: BTreeMap<(Route, i32), Vec<u8>>,
    order: VecDeque<(Route, i32)>,
    rtt_mean_us: f64,
    rtt_var_us: f64,
    samples: u32,
}

/// `"r\0" | kind | id | "p\0" | value`.
pub(super) fn rpc_payload(kind: ReqRepType, id: i32, value: &Adr) -> Result<Vec<u8>, EmitError> {
    let mut out = header(kind, id)?;
    rpc::emit(value, &mut out)?;
    Ok(out)
}

/// `"r\0" | kind | id` (acks have nothing more).
pub(super) fn header(kind: ReqRepType, id: i32) -> Result<Vec<u8>, EmitError> {
    let mut out = Vec::with_capacity(64);
    PType::REQREP.emit(&mut out)?;
    ReqRepRepr { kind, id }.emit(&mut out);
    Ok(out)
}

impl ReqRep {
    /// Requests waiting for a reply.
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// True while a request with this purpose is outstanding.
    pub(super) fn waiting_for(&self, purpose: &Purpose) -> bool {
        self.pending.values().any(|p| p.purpose == *purpose)
    }

    pub(super) fn is_free(&self, id: i32) -> bool {
        id > 0 && !self.pending.contains_key(&id)
    }

    /// The retransmission timeout: Brunet's initial value until a round trip is known.
    pub(super) fn timeout(&self, initial: Duration, floor: Duration) -> Duration {
        if self.samples == 0 {
            return initial;
        }
        let us = self.rtt_mean_us + 6.0 * self.rtt_var_us.sqrt();
        floor.max(Duration::from_micros(us as u64))
    }

    pub(super) fn insert(&mut self, id: i32, p: Pending) {
        self.pending.insert(id, p);
    }

    /// A reply to `id` arrived: its purpose, and whether more replies are awaited.
    pub(super) fn on_reply(&mut self, id: i32, now: Time, wait: Duration) -> Option<Purpose> {
        let p = self.pending.get_mut(&id)?;
        p.replies += 1;
        let purpose = p.purpose.clone();
        let rtt = (p.replies == 1 && p.resends == 0)
            .then(|| now.saturating_since(p.sent).as_micros() as f64);
        let done = p.replies >= p.max_replies;
        if let Some(rtt) = rtt {
            self.sample(rtt);
        }
        let Some(p) = self.pending.get_mut(&id) else {
            return Some(purpose);
        };
        if done {
            self.pending.remove(&id);
        } else {
            // Listen for the other answers a while, without resending.
            p.next = now + wait;
        }
        Some(purpose)
    }

    /// The request failed at the far end (ReqRep Error): forget it.
    pub(super) fn on_error(&mut self, id: i32) -> Option<Purpose> {
        self.pending.remove(&id).map(|p| p.purpose)
    }

    /// The far end is working on it (RequestAck): wait a full timeout more.
    pub(super) fn on_request_ack(&mut self, id: i32, now: Time, wait: Duration) {
        if let Some(p) = self.pending.get_mut(&id) {
            p.next = p.next.max(now + wait);
        }
    }

    /// Drops every request sent on edge `edge` (it closed), returning their purposes.
    pub(super) fn drop_edge(&mut self, edge: i32) -> Vec<Purpose> {
        let ids: Vec<i32> = self
            .pending
            .iter()
            .filter(|(_, p)| p.route == Route::Edge(edge))
            .map(|(&id, _)| id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.pending.remove(&id))
            .map(|p| p.purpose)
            .collect()
    }

    fn sample(&mut self, us: f64) {
        self.samples += 1;
        if self.samples == 1 {
            self.rtt_mean_us = us;
            self.rtt_var_us = (us / 2.0).powi(2);
        } else {
            let d = us - self.rtt_mean_us;
            self.rtt_mean_us += d / 8.0;
            self.rtt_var_us += (d * d - self.rtt_var_us) / 4.0;
        }
    }

    /// Takes what is due at `now`: resends (the caller has counted `limit` as the most),
    /// or requests that are finished.
    pub(super) fn due(&mut self, now: Time, wait: Duration, limit: u32) -> Vec<Due> {
        let ids: Vec<i32> = self
            .pending
            .iter()
            .filter(|(_, p)| p.next <= now)
            .map(|(&id, _)| id)
            .collect();
        let mut out = Vec::new();
        for id in ids {
            let Some(p) = self.pending.get_mut(&id) else {
                continue;
            };
            if p.replies == 0 && p.resends < limit {
                p.resends += 1;
                p.next = now + wait;
                out.push(Due::Resend(p.route, p.payload.clone()));
            } else if let Some(p) = self.pending.remove(&id) {
                out.push(Due::Done(p.purpose, p.replies > 0));
            }
        }
        out
    }

    /// The earliest deadline of an outstanding request.
    pub(super) fn next_deadline(&self) -> Time {
        self.pending
            .values()
            .map(|p| p.next)
            .min()
            .unwrap_or(Time::NEVER)
    }

    /// The cached reply to request `id` from `route`, if we answered it before.
    pub(super) fn cached(&self, route: Route, id: i32) -> Option<&[u8]> {
        self.cache.get(&(route, id)).map(Vec::as_slice)
    }

    /// Remembers our reply to request `id` from `route`, dropping the oldest over `cap`.
    pub(super) fn cache(&mut self, route: Route, id: i32, reply: Vec<u8>, cap: usize) {
        if self.cache.insert((route, id), reply).is_none() {
            self.order.push_back((route, id));
        }
        while self.order.len() > cap {
            if let Some(k) = self.order.pop_front() {
                self.cache.remove(&k);
            }
        }
    }

    /// The requester acknowledged our reply: forget it.
    pub(super) fn acked(&mut self, route: Route, id: i32) {
        if self.cache.remove(&(route, id)).is_some() {
            self.order.retain(|k| *k != (route, id));
        }
    }
}
