//! Requests routed to a key and answered by its owner (Brunet's ReqRep over AH):
//! lookups and the DHT client. A request is retried `request_attempts` times; retries
//! start on a random closer neighbour and use annealing delivery (both nodes bracketing
//! the key answer), which routes around nodes that died but whose links have not
//! timed out yet.

use crate::address::Address;

use super::io::{Event, RequestId};
use super::msg::{DhtValue, Header, Mode, Payload, Req, Rsp};
use super::node::Node;
use super::time::Time;
use super::timer::Timer;

#[derive(Clone, Debug)]
struct PendingReq {
    id: u32,
    key: Address,
    req: Req,
    attempts: u32,
    deadline: Time,
    /// A get answered with nothing so far (kept in case no one has more).
    empty_answer: bool,
}

/// Requests in flight.
#[derive(Clone, Debug, Default)]
pub(crate) struct Requests {
    pending: Vec<PendingReq>,
    next_id: u32,
}

impl Requests {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.pending.capacity() * std::mem::size_of::<PendingReq>()
    }
}

impl Node {
    /// Asks which node owns `key` (the closest to it); answered by [`Event::LookupDone`].
    pub fn lookup(&mut self, now: Time, key: Address) -> RequestId {
        self.start_request(now, key, Req::Lookup)
    }

    /// Stores `value` under `key` for `ttl_s` seconds at the key's owner and its
    /// replicas; `sig` is checked by the validator hook. Answered by [`Event::DhtPutDone`].
    pub fn dht_put(
        &mut self,
        now: Time,
        key: Address,
        value: Vec<u8>,
        ttl_s: u32,
        sig: Vec<u8>,
    ) -> RequestId {
        self.start_request(now, key, Req::Put(DhtValue { value, sig, ttl_s }))
    }

    /// Fetches the values under `key`; answered by [`Event::DhtGetDone`].
    pub fn dht_get(&mut self, now: Time, key: Address) -> RequestId {
        self.start_request(now, key, Req::Get)
    }

    /// Removes `value` from under `key`; answered by [`Event::DhtRemoveDone`].
    pub fn dht_remove(&mut self, now: Time, key: Address, value: Vec<u8>) -> RequestId {
        self.start_request(now, key, Req::Remove(value))
    }

    fn start_request(&mut self, now: Time, key: Address, req: Req) -> RequestId {
        self.now = self.now.max(now);
        self.reqs.next_id = self.reqs.next_id.wrapping_add(1);
        let id = self.reqs.next_id;
        let key = Address::ah(*key.as_bytes());
        let deadline = self.now + self.cfg.request_timeout;
        self.reqs.pending.push(PendingReq {
            id,
            key,
            req: req.clone(),
            attempts: 1,
            deadline,
            empty_answer: false,
        });
        self.timers.set_min(Timer::Requests, deadline);
        if !self.left {
            self.originate(key, Mode::Greedy, Payload::Request { id, req }, false);
        }
        RequestId(id)
    }

    pub(crate) fn requests_tick(&mut self) {
        let now = self.now;
        let mut due = Vec::new();
        self.reqs.pending.retain(|p| {
            if p.deadline <= now {
                due.push(p.clone());
                false
            } else {
                true
            }
        });
        for mut p in due {
            if p.attempts < self.cfg.request_attempts {
                p.attempts += 1;
                p.deadline = now + self.cfg.request_timeout;
                let payload = Payload::Request {
                    id: p.id,
                    req: p.req.clone(),
                };
                let key = p.key;
                self.reqs.pending.push(p);
                self.originate(key, Mode::Default, payload, true);
            } else {
                self.fail_request(p);
            }
        }
        if let Some(at) = self.reqs.pending.iter().map(|p| p.deadline).min() {
            self.timers.set_min(Timer::Requests, at);
        }
    }

    fn fail_request(&mut self, p: PendingReq) {
        let id = RequestId(p.id);
        let ev = match p.req {
            Req::Lookup => Event::LookupDone {
                id,
                result: None,
                attempts: p.attempts,
            },
            Req::Put(_) => Event::DhtPutDone { id, ok: false },
            Req::Get => Event::DhtGetDone {
                id,
                values: p.empty_answer.then(Vec::new),
            },
            Req::Remove(_) => Event::DhtRemoveDone { id, ok: false },
        };
        self.emit(ev);
    }

    /// A response came back from `src`.
    pub(crate) fn on_response(&mut self, src: Address, id: u32, hops: u16, rsp: Rsp) {
        let Some(i) = self.reqs.pending.iter().position(|p| p.id == id) else {
            return;
        };
        let rid = RequestId(id);
        let ev = match rsp {
            Rsp::Lookup => Event::LookupDone {
                id: rid,
                result: Some((src, hops)),
                attempts: self.reqs.pending[i].attempts,
            },
            Rsp::Put(ok) => Event::DhtPutDone { id: rid, ok },
            Rsp::Get(values) => {
                if values.is_empty() && self.reqs.pending[i].attempts < self.cfg.request_attempts {
                    // The owner may be new and not repaired yet: wait for a retry.
                    self.reqs.pending[i].empty_answer = true;
                    return;
                }
                Event::DhtGetDone {
                    id: rid,
                    values: Some(values),
                }
            }
            Rsp::Remove(ok) => Event::DhtRemoveDone { id: rid, ok },
        };
        self.reqs.pending.swap_remove(i);
        self.emit(ev);
    }

    /// A request reached us as an owner of its key.
    pub(crate) fn serve_request(&mut self, hdr: Header, id: u32, req: Req) {
        let key = hdr.dst;
        let limited = matches!(req, Req::Put(_) | Req::Remove(_)) && !self.writer_allowed(hdr.src);
        let rsp = match req {
            Req::Lookup => Rsp::Lookup,
            Req::Put(_) if limited => Rsp::Put(false),
            Req::Put(v) => Rsp::Put(self.dht_put_local(key, v)),
            Req::Get => Rsp::Get(self.dht_get_local(&key)),
            Req::Remove(_) if limited => Rsp::Remove(false),
            Req::Remove(v) => Rsp::Remove(self.dht_remove_local(key, &v)),
        };
        let payload = Payload::Response {
            id,
            hops: hdr.hops,
            rsp,
        };
        self.reply(hdr.src, None, payload);
    }
}
