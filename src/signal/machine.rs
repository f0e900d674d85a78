//! The offer/answer state machine. Time comes in with every call; session ids come from the
//! caller (random), so the machine needs no entropy.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use xmpp_ext::jingle::{Action, IceUdpTransport, Jingle, Reason};
use xmpp_ext::record::NodeRecord;

use super::types::{Address, IqFailure, SignalConfig, SignalEvent, SignalOutput, Tag};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Initiator: offer sent, not yet acknowledged.
    Offering,
    /// Initiator: offer acknowledged, awaiting session-accept.
    Offered,
    /// Responder: offer received, the application has not answered.
    Received,
    /// Accepted both ways.
    Active,
}

pub(super) struct Session<A> {
    pub(super) peer: A,
    pub(super) initiator: bool,
    pub(super) state: State,
    /// Initiator: resources still to try if this one is gone.
    pub(super) fallback: VecDeque<A>,
    pub(super) offer: Option<Jingle>,
    /// Transport-info held until the offer is acknowledged (XEP-0176 §6.3).
    pub(super) queued: Vec<IceUdpTransport>,
    pub(super) deadline: Option<Instant>,
    /// Transport-info to send again: when, what, and how many tries it has had.
    pub(super) retries: Vec<(Instant, Jingle, u8)>,
}

/// A request in flight: session, action, and for a transport-info its payload and tries.
type InFlight = (String, Action, Option<(Jingle, u8)>);

/// Jingle sessions with any number of peers.
pub struct Signaller<A: Address> {
    pub(super) local: A,
    pub(super) cfg: SignalConfig,
    pub(super) sessions: BTreeMap<String, Session<A>>,
    pub(super) requests: BTreeMap<Tag, InFlight>,
    pub(super) next_tag: Tag,
    pub(super) out: VecDeque<SignalOutput<A>>,
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

    pub(super) fn send(&mut self, to: A, jingle: Jingle) {
        self.send_try(to, jingle, 0);
    }

    pub(super) fn send_try(&mut self, to: A, jingle: Jingle, tries: u8) {
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

    pub(super) fn event(&mut self, e: SignalEvent<A>) {
        self.out.push_back(SignalOutput::Event(e));
    }

    pub(super) fn end(&mut self, sid: &str, reason: Reason, text: Option<String>, remote: bool) {
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

    pub(super) fn flush_queue(&mut self, sid: &str) {
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
}
