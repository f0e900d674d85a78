//! The offer/answer state machine. Time comes in with every call; session ids come from the
//! caller (random), so the machine needs no entropy.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use xmpp_ext::jingle::{Action, IceUdpTransport, Jingle, Reason};
use xmpp_ext::record::NodeRecord;

/// Where signalling messages go: a full JID, or an overlay address on the ring.
pub trait Address: Clone + Ord + fmt::Display + fmt::Debug {
    /// The party behind the address (a bare JID for a full JID): two addresses of one party
    /// may race each other with offers, which the tie-break settles.
    type Party: Clone + Ord + fmt::Debug;
    /// The party.
    fn party(&self) -> Self::Party;
}

/// Timing of signalling.
#[derive(Debug, Clone)]
pub struct SignalConfig {
    /// How long an offer may wait for `session-accept` after it was acknowledged.
    pub accept_timeout: Duration,
    /// A `transport-info` of an accepted session that got no answer (the XMPP stream is
    /// down for a while, as after a NAT reboot) is sent again this many times, 1 s, 2 s, 4 s …
    /// later, before the session is given up: it may carry an ICE restart that the link
    /// needs to survive.
    pub transport_retries: u8,
}

impl Default for SignalConfig {
    fn default() -> Self {
        SignalConfig {
            accept_timeout: Duration::from_secs(20),
            transport_retries: 4,
        }
    }
}

/// How a request failed at the far end or on the way (XMPP stanza error conditions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IqFailure {
    /// The resource is gone or never ran chamber (`service-unavailable`,
    /// `recipient-unavailable`).
    ServiceUnavailable,
    /// No such resource or session (`item-not-found`).
    ItemNotFound,
    /// The peer is out of room for sessions (`resource-constraint`).
    ResourceConstraint,
    /// The peer's own simultaneous offer won the tie-break (`conflict` + `tie-break`).
    TieBreak,
    /// No answer in time: a ghost resource (STACK.md trap 5) or a dead stream.
    Timeout,
    /// Anything else, by condition name.
    Other(String),
}

/// How to answer an incoming request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An empty result.
    Ack,
    /// An error with this condition.
    Error(IqFailure),
}

/// Identifies an outgoing request, so its acknowledgement can be fed back.
pub type Tag = u64;

/// What the application learns.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalEvent<A> {
    /// A peer offers a link; answer with [`Signaller::accept`] or [`Signaller::terminate`].
    Offer {
        /// Session id.
        sid: String,
        /// Who offers.
        from: A,
        /// Their record, unverified.
        record: NodeRecord,
        /// Their ICE credentials and first candidates.
        transport: IceUdpTransport,
    },
    /// Our offer was accepted.
    Answer {
        /// Session id.
        sid: String,
        /// Who answered (the resource that took the offer).
        from: A,
        /// Their record, unverified.
        record: NodeRecord,
        /// Their ICE credentials and first candidates.
        transport: IceUdpTransport,
    },
    /// More candidates, or new credentials (an ICE restart).
    Transport {
        /// Session id.
        sid: String,
        /// What was trickled.
        transport: IceUdpTransport,
    },
    /// Our offer gave way to the peer's simultaneous one (which arrives as an [`Self::Offer`]).
    Superseded {
        /// Our session id.
        sid: String,
    },
    /// The session is over.
    Ended {
        /// Session id.
        sid: String,
        /// Why.
        reason: Reason,
        /// The peer's text, or ours.
        text: Option<String>,
        /// Whether the peer ended it (else: we, or a failure here).
        remote: bool,
    },
}

/// What the machine wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalOutput<A> {
    /// Send this request; report its fate with [`Signaller::handle_ack`].
    Send {
        /// Destination.
        to: A,
        /// Payload.
        jingle: Jingle,
        /// Request id.
        tag: Tag,
    },
    /// Tell the application.
    Event(SignalEvent<A>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Initiator: offer sent, not yet acknowledged.
    Offering,
    /// Initiator: offer acknowledged, awaiting session-accept.
    Offered,
    /// Responder: offer received, the application has not answered.
    Received,
    /// Accepted both ways.
    Active,
}

struct Session<A> {
    peer: A,
    initiator: bool,
    state: State,
    /// Initiator: resources still to try if this one is gone.
    fallback: VecDeque<A>,
    offer: Option<Jingle>,
    /// Transport-info held until the offer is acknowledged (XEP-0176 §6.3).
    queued: Vec<IceUdpTransport>,
    deadline: Option<Instant>,
    /// Transport-info to send again: when, what, and how many tries it has had.
    retries: Vec<(Instant, Jingle, u8)>,
}

/// A request in flight: session, action, and for a transport-info its payload and tries.
type InFlight = (String, Action, Option<(Jingle, u8)>);

/// Jingle sessions with any number of peers.
pub struct Signaller<A: Address> {
    local: A,
    cfg: SignalConfig,
    sessions: BTreeMap<String, Session<A>>,
    requests: BTreeMap<Tag, InFlight>,
    next_tag: Tag,
    out: VecDeque<SignalOutput<A>>,
}

impl<A: Address> Signaller<A> {
    /// A signaller speaking as `local` (our own full address, needed for the tie-break).
    pub fn new(local: A, cfg: SignalConfig) -> Self {
        Signaller {
            local,
            cfg,
            sessions: BTreeMap::new(),
            requests: BTreeMap::new(),
            next_tag: 0,
            out: VecDeque::new(),
        }
    }

    /// Our address.
    pub fn local(&self) -> &A {
        &self.local
    }

    /// Sessions open.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<SignalOutput<A>> {
        self.out.pop_front()
    }

    /// When [`Self::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .flat_map(|s| s.deadline.into_iter().chain(s.retries.iter().map(|r| r.0)))
            .min()
    }

    fn send(&mut self, to: A, jingle: Jingle) {
        self.send_try(to, jingle, 0);
    }

    fn send_try(&mut self, to: A, jingle: Jingle, tries: u8) {
        self.next_tag += 1;
        let again = (jingle.action == Action::TransportInfo).then(|| (jingle.clone(), tries));
        self.requests
            .insert(self.next_tag, (jingle.sid.clone(), jingle.action, again));
        self.out.push_back(SignalOutput::Send {
            to,
            jingle,
            tag: self.next_tag,
        });
    }

    fn event(&mut self, e: SignalEvent<A>) {
        self.out.push_back(SignalOutput::Event(e));
    }

    fn end(&mut self, sid: &str, reason: Reason, text: Option<String>, remote: bool) {
        if self.sessions.remove(sid).is_some() {
            self.event(SignalEvent::Ended {
                sid: sid.to_owned(),
                reason,
                text,
                remote,
            });
        }
    }

    /// Offers a link to the first of `resources` (the others are tried in turn if it is gone).
    /// `sid` must be fresh and unguessable.
    pub fn initiate(
        &mut self,
        now: Instant,
        sid: String,
        resources: Vec<A>,
        record: NodeRecord,
        transport: IceUdpTransport,
    ) -> Result<(), &'static str> {
        let mut fallback: VecDeque<A> = resources.into();
        let peer = fallback.pop_front().ok_or("no resource to offer to")?;
        if self.sessions.contains_key(&sid) {
            return Err("session id in use");
        }
        let _ = now;
        let offer = Jingle::session_initiate(&sid, None, record, transport);
        self.sessions.insert(
            sid.clone(),
            Session {
                peer: peer.clone(),
                initiator: true,
                state: State::Offering,
                fallback,
                offer: Some(offer.clone()),
                queued: Vec::new(),
                deadline: None,
                retries: Vec::new(),
            },
        );
        self.send(peer, offer);
        Ok(())
    }

    /// Accepts an offer received as [`SignalEvent::Offer`].
    pub fn accept(
        &mut self,
        sid: &str,
        record: NodeRecord,
        transport: IceUdpTransport,
    ) -> Result<(), &'static str> {
        let s = self.sessions.get_mut(sid).ok_or("no such session")?;
        if s.initiator || s.state != State::Received {
            return Err("not an offer awaiting an answer");
        }
        s.state = State::Active;
        s.deadline = None;
        let peer = s.peer.clone();
        self.send(peer, Jingle::session_accept(sid, None, record, transport));
        self.flush_queue(sid);
        Ok(())
    }

    /// Trickles candidates (or new credentials for an ICE restart).
    pub fn trickle(&mut self, sid: &str, transport: IceUdpTransport) -> Result<(), &'static str> {
        let s = self.sessions.get_mut(sid).ok_or("no such session")?;
        if s.state == State::Offering || s.state == State::Received {
            // Before the offer is acknowledged (or answered, for a responder) the peer would
            // not know the session: hold them.
            s.queued.push(transport);
            return Ok(());
        }
        let peer = s.peer.clone();
        self.send(peer, Jingle::transport_info(sid, transport));
        Ok(())
    }

    /// Ends a session, telling the peer why.
    pub fn terminate(&mut self, sid: &str, reason: Reason, text: Option<String>) {
        if let Some(s) = self.sessions.get(sid) {
            let peer = s.peer.clone();
            self.send(peer, Jingle::session_terminate(sid, reason, text.clone()));
            self.end(sid, reason, text, false);
        }
    }

    fn flush_queue(&mut self, sid: &str) {
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        let (peer, queued) = (s.peer.clone(), std::mem::take(&mut s.queued));
        for t in queued {
            self.send(peer.clone(), Jingle::transport_info(sid, t));
        }
    }

    /// The far end's answer to request `tag`: `Ok` for a result.
    pub fn handle_ack(&mut self, now: Instant, tag: Tag, result: Result<(), IqFailure>) {
        let Some((sid, action, again)) = self.requests.remove(&tag) else {
            return;
        };
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        match (action, result) {
            // No answer (or no stream) for a transport-info: try again later, the link may
            // outlive an XMPP outage. The peer answering with an error is final.
            (Action::TransportInfo, Err(IqFailure::Timeout | IqFailure::Other(_)))
                if s.state == State::Active
                    && again
                        .as_ref()
                        .is_some_and(|(_, n)| *n < self.cfg.transport_retries) =>
            {
                if let Some((j, n)) = again {
                    tracing::debug!(%sid, tries = n + 1, "transport-info unanswered; sending it again");
                    s.retries
                        .push((now + Duration::from_secs(1 << n.min(5)), j, n + 1));
                }
            }
            (Action::SessionInitiate, Ok(())) if s.state == State::Offering => {
                s.state = State::Offered;
                s.deadline = Some(now + self.cfg.accept_timeout);
                self.flush_queue(&sid);
            }
            (Action::SessionInitiate, Err(IqFailure::TieBreak)) => {
                self.sessions.remove(&sid);
                self.event(SignalEvent::Superseded { sid });
            }
            (Action::SessionInitiate, Err(e)) => self.next_resource(&sid, e),
            (Action::SessionAccept, Err(e)) | (Action::TransportInfo, Err(e)) => {
                tracing::debug!(%sid, ?e, "peer refused a Jingle request");
                let reason = match e {
                    IqFailure::Timeout => Reason::Timeout,
                    _ => Reason::Gone,
                };
                self.end(&sid, reason, Some(format!("{e:?}")), false);
            }
            _ => {}
        }
    }

    fn next_resource(&mut self, sid: &str, e: IqFailure) {
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        tracing::debug!(%sid, peer = %s.peer, ?e, "offer not taken; trying the next resource");
        match (s.fallback.pop_front(), s.offer.clone()) {
            (Some(next), Some(offer)) => {
                s.peer = next.clone();
                self.send(next, offer);
            }
            _ => {
                let reason = match e {
                    IqFailure::ResourceConstraint => Reason::Busy,
                    IqFailure::Timeout => Reason::Timeout,
                    _ => Reason::Gone,
                };
                self.end(
                    sid,
                    reason,
                    Some(format!("no resource took the offer ({e:?})")),
                    false,
                );
            }
        }
    }

    /// Deadlines: offers nobody answered are cancelled, unanswered transport-info sent again.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut again = Vec::new();
        for s in self.sessions.values_mut() {
            let (due, later) = std::mem::take(&mut s.retries)
                .into_iter()
                .partition(|r| r.0 <= now);
            s.retries = later;
            again.extend(due.into_iter().map(|(_, j, n)| (s.peer.clone(), j, n)));
        }
        for (peer, j, n) in again {
            self.send_try(peer, j, n);
        }
        let due: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.deadline.is_some_and(|d| d <= now))
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in due {
            self.terminate(&sid, Reason::Timeout, Some("no answer to the offer".into()));
        }
    }

    /// An incoming request from `from`; returns how to answer it.
    pub fn handle_jingle(&mut self, now: Instant, from: A, j: Jingle) -> Reply {
        let _ = now;
        let known = self.sessions.get(&j.sid);
        if let Some(s) = known
            && s.peer != from
        {
            // Only the session's peer may act on it.
            return Reply::Error(IqFailure::ItemNotFound);
        }
        match j.action {
            Action::SessionInitiate => self.on_initiate(from, j),
            Action::SessionAccept => {
                let Some(s) = self.sessions.get_mut(&j.sid) else {
                    return Reply::Error(IqFailure::ItemNotFound);
                };
                if !s.initiator || !matches!(s.state, State::Offering | State::Offered) {
                    return Reply::Error(IqFailure::Other("out-of-order".into()));
                }
                s.state = State::Active;
                s.deadline = None;
                self.flush_queue(&j.sid);
                let Some(c) = j.content else {
                    return Reply::Error(IqFailure::Other("bad-request".into()));
                };
                match (c.record, c.transport) {
                    (Some(record), Some(transport)) => {
                        self.event(SignalEvent::Answer {
                            sid: j.sid,
                            from,
                            record,
                            transport,
                        });
                        Reply::Ack
                    }
                    _ => Reply::Error(IqFailure::Other("bad-request".into())),
                }
            }
            Action::TransportInfo => {
                if known.is_none() {
                    return Reply::Error(IqFailure::ItemNotFound);
                }
                if let Some(transport) = j.content.and_then(|c| c.transport) {
                    self.event(SignalEvent::Transport {
                        sid: j.sid,
                        transport,
                    });
                }
                Reply::Ack
            }
            Action::SessionTerminate => {
                if known.is_none() {
                    return Reply::Error(IqFailure::ItemNotFound);
                }
                let (reason, text) = j.reason.unwrap_or((Reason::Success, None));
                self.end(&j.sid, reason, text, true);
                Reply::Ack
            }
        }
    }

    fn on_initiate(&mut self, from: A, j: Jingle) -> Reply {
        if self.sessions.contains_key(&j.sid) {
            return Reply::Error(IqFailure::Other("out-of-order".into()));
        }
        // Tie-break (XEP-0166 §8): both parties offered at once. The offer of the party with
        // the lower address stands; the other is refused with conflict + tie-break. Both ends
        // compute the same answer.
        let party = from.party();
        let racing: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.initiator
                    && matches!(s.state, State::Offering | State::Offered)
                    && s.peer.party() == party
            })
            .map(|(sid, _)| sid.clone())
            .collect();
        if !racing.is_empty() {
            if self.local < from {
                return Reply::Error(IqFailure::TieBreak);
            }
            for sid in racing {
                self.sessions.remove(&sid);
                self.event(SignalEvent::Superseded { sid });
            }
        }
        let Some(c) = j.content else {
            return Reply::Error(IqFailure::Other("bad-request".into()));
        };
        let (Some(record), Some(transport)) = (c.record, c.transport) else {
            return Reply::Error(IqFailure::Other("bad-request".into()));
        };
        self.sessions.insert(
            j.sid.clone(),
            Session {
                peer: from.clone(),
                initiator: false,
                state: State::Received,
                fallback: VecDeque::new(),
                offer: None,
                queued: Vec::new(),
                deadline: None,
                retries: Vec::new(),
            },
        );
        self.event(SignalEvent::Offer {
            sid: j.sid,
            from,
            record,
            transport,
        });
        Reply::Ack
    }
}
