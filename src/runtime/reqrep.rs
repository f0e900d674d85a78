//! Signalling over the ring made reliable, the way Brunet's ReqRep is: a request is sent again
//! until answered (the ring drops datagrams like any UDP path, and a node still joining may
//! only become reachable a moment later, once it names a peer to reach it through), and each
//! answer is kept for a while so a repeated request gets the same answer without being
//! handled twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use brunet_compat::address::Address as RingAddress;
use tokio::sync::oneshot;

use super::envelope::Envelope;
use super::task::Task;
use crate::signal::{IqFailure, Reply};
use crate::trust::limits::RateLimiter;

/// First wait before sending a request again; it doubles up to [`RESEND_MAX`].
const RESEND_FIRST: Duration = Duration::from_millis(400);
const RESEND_MAX: Duration = Duration::from_secs(2);
/// How long an answer is kept for repeated requests.
const ANSWER_KEEP: Duration = Duration::from_secs(30);
/// New requests (connect-to-me offers, their candidates and answers) taken per ring source
/// and second, sustained: a link takes a handful, a joining node makes a dozen links.
const REQUEST_RATE: f64 = 20.0;
/// … and in a burst.
const REQUEST_BURST: u32 = 100;

/// A request waiting for its answer.
pub(super) struct Outgoing {
    ring: usize,
    to: RingAddress,
    xml: Vec<u8>,
    reply: oneshot::Sender<Result<(), IqFailure>>,
    next: Instant,
    wait: Duration,
}

/// A request we took: its answer once the linker gave it.
pub(super) struct Answered {
    at: Instant,
    reply: Option<Reply>,
}

/// Both directions' bookkeeping.
pub(super) struct ReqRep {
    out: HashMap<u32, Outgoing>,
    answered: HashMap<(RingAddress, u32), Answered>,
    /// New requests per source: a member's connect-to-me storm is answered
    /// `resource-constraint` without reaching the linker, and costs no memory here.
    limiter: RateLimiter,
}

impl Default for ReqRep {
    fn default() -> Self {
        ReqRep {
            out: HashMap::new(),
            answered: HashMap::new(),
            limiter: RateLimiter::new(REQUEST_RATE, REQUEST_BURST),
        }
    }
}

impl Task {
    /// Sends a Jingle request to `to` over ring `r`; `reply` gets the answer.
    pub(super) fn signal_out(
        &mut self,
        r: usize,
        to: RingAddress,
        xml: Vec<u8>,
        reply: oneshot::Sender<Result<(), IqFailure>>,
    ) {
        let id = self.fresh_id();
        let out = Outgoing {
            ring: r,
            to,
            xml,
            reply,
            next: Instant::now() + RESEND_FIRST,
            wait: RESEND_FIRST,
        };
        self.send_request(id, &out);
        self.reqrep.out.insert(id, out);
    }

    fn send_request(&mut self, id: u32, o: &Outgoing) {
        let via = self.return_via(o.ring);
        let e = Envelope::SigRequest {
            id,
            via,
            xml: o.xml.clone(),
        };
        self.send_envelope(o.ring, o.to, &e);
    }

    /// An answer arrived.
    pub(super) fn signal_answer_in(&mut self, src: RingAddress, id: u32, reply: Reply) {
        if self.reqrep.out.get(&id).is_some_and(|o| o.to == src)
            && let Some(o) = self.reqrep.out.remove(&id)
        {
            let _ = o.reply.send(match reply {
                Reply::Ack => Ok(()),
                Reply::Error(f) => Err(f),
            });
        }
    }

    /// A request arrived: new ones go to the linker, repeats get the kept answer.
    pub(super) fn signal_request_in(&mut self, r: usize, src: RingAddress, id: u32, xml: &[u8]) {
        match self
            .reqrep
            .answered
            .get(&(src, id))
            .map(|a| a.reply.clone())
        {
            Some(Some(reply)) => {
                self.send_envelope(r, src, &Envelope::SigReply { id, reply });
            }
            Some(_) => {} // still with the linker
            None if !self.signal_allowed(r, src) => {
                let reply = Reply::Error(IqFailure::ResourceConstraint);
                self.send_envelope(r, src, &Envelope::SigReply { id, reply });
            }
            None => {
                self.reqrep.answered.insert(
                    (src, id),
                    Answered {
                        at: Instant::now(),
                        reply: None,
                    },
                );
                self.signal_in(r, src, id, xml);
            }
        }
    }

    /// Whether a new signalling request from `src` (over the ring or a knock) is within its
    /// source's rate; counts and logs (once) the refused.
    pub(super) fn signal_allowed(&mut self, r: usize, src: RingAddress) -> bool {
        if self.reqrep.limiter.allow(&src.to_string(), Instant::now()) {
            return true;
        }
        let ring = &mut self.rings[r];
        ring.signals_limited += 1;
        if ring.signals_limited == 1 {
            tracing::warn!(ring = %ring.name, %src, "signalling requests over the rate refused (further ones counted in status)");
        }
        false
    }

    /// The linker answered a request: send the answer and keep it.
    pub(super) fn signal_answer_out(&mut self, r: usize, to: RingAddress, id: u32, reply: Reply) {
        if let Some(a) = self.reqrep.answered.get_mut(&(to, id)) {
            a.reply = Some(reply.clone());
        }
        self.send_envelope(r, to, &Envelope::SigReply { id, reply });
    }

    /// Sends due requests again and forgets old answers and abandoned requests.
    pub(super) fn signal_tick(&mut self) {
        let now = Instant::now();
        self.reqrep
            .answered
            .retain(|_, a| now.duration_since(a.at) < ANSWER_KEEP);
        // The transport gave up on these (its receiver is gone).
        self.reqrep.out.retain(|_, o| !o.reply.is_closed());
        let due: Vec<u32> = self
            .reqrep
            .out
            .iter()
            .filter(|(_, o)| o.next <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(mut o) = self.reqrep.out.remove(&id) else {
                continue;
            };
            self.send_request(id, &o);
            o.wait = (o.wait * 2).min(RESEND_MAX);
            o.next = now + o.wait;
            self.reqrep.out.insert(id, o);
        }
    }
}
