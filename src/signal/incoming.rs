//! Requests from peers: each is checked against the session it names (only its peer may act
//! on it) and answered at once, with Jingle's tie-break for offers that cross.

use std::collections::VecDeque;
use std::time::Instant;

use xmpp_ext::jingle::{Action, Jingle, Reason};

use super::machine::{Session, Signaller, State};
use super::types::{Address, IqFailure, Reply, SignalEvent};

impl<A: Address> Signaller<A> {
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
