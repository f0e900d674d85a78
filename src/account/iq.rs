//! Matching IQ answers to requests. An answer counts only if it comes from the entity the
//! request went to (RFC 6120 §8.1.2.1: anyone could send a `result` with a guessed id), and every
//! request ends: answered, or failed at its deadline.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::iq::Iq;

/// Why an IQ got no usable answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IqError {
    /// Nothing came back before the deadline (the peer may be a ghost or the stream dead).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The account task ended before an answer came.
    #[error("the account is closed")]
    Closed,
}

struct Pending {
    to: Option<Jid>,
    timeout: Duration,
    deadline: Instant,
    reply: oneshot::Sender<Result<Iq, IqError>>,
}

/// Requests in flight on one account.
#[derive(Default)]
pub(crate) struct IqTracker {
    pending: HashMap<String, Pending>,
    counter: u64,
}

impl IqTracker {
    /// A fresh id; random bits keep ids unguessable across restarts.
    pub(crate) fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("ch{}-{:08x}", self.counter, rand::random::<u32>())
    }

    pub(crate) fn insert(
        &mut self,
        id: String,
        to: Option<Jid>,
        timeout: Duration,
        reply: oneshot::Sender<Result<Iq, IqError>>,
    ) {
        let deadline = Instant::now() + timeout;
        self.pending.insert(
            id,
            Pending {
                to,
                timeout,
                deadline,
                reply,
            },
        );
    }

    /// Takes an answer if it matches a request; gives it back otherwise.
    pub(crate) fn answer(&mut self, iq: Iq, own: Option<&BareJid>) -> Option<Iq> {
        if !matches!(iq, Iq::Result { .. } | Iq::Error { .. }) {
            return Some(iq);
        }
        let Some(p) = self.pending.get(iq.id()) else {
            return Some(iq);
        };
        let from_ok = match (&p.to, iq.from()) {
            (Some(to), Some(from)) => to == from,
            // A request to our own server or account may come back without `from`, or from
            // our bare JID or domain.
            (None, None) => true,
            (None, Some(from)) => {
                own.is_some_and(|o| from.to_bare() == *o || from.as_str() == o.domain().as_str())
            }
            (Some(to), None) => own.is_some_and(|o| to.as_str() == o.domain().as_str()),
        };
        if !from_ok {
            tracing::debug!(id = iq.id(), from = ?iq.from(), "IQ answer from the wrong sender ignored");
            return None;
        }
        let p = self.pending.remove(iq.id())?;
        let _ = p.reply.send(Ok(iq));
        None
    }

    /// Fails the requests whose deadline passed.
    pub(crate) fn expire(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(p) = self.pending.remove(&id) {
                let _ = p.reply.send(Err(IqError::Timeout(p.timeout)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, from: Option<&str>) -> Iq {
        Iq::Result {
            from: from.map(|f| f.parse().unwrap()),
            to: None,
            id: id.into(),
            payload: None,
        }
    }

    #[tokio::test]
    async fn answers_count_only_from_the_asked_entity_and_requests_expire() {
        let own: BareJid = "alice@a.example".parse().unwrap();
        let mut t = IqTracker::default();
        let (tx, mut rx) = oneshot::channel();
        let id = t.next_id();
        t.insert(
            id.clone(),
            Some("bob@b.example/x".parse().unwrap()),
            Duration::from_secs(5),
            tx,
        );
        // A guessed id from someone else is swallowed, not delivered.
        assert!(
            t.answer(result(&id, Some("eve@e.example/x")), Some(&own))
                .is_none()
        );
        assert!(rx.try_recv().is_err());
        assert!(
            t.answer(result(&id, Some("bob@b.example/x")), Some(&own))
                .is_none()
        );
        assert!(rx.await.unwrap().is_ok());
        // Requests to our server may come back from its domain.
        let (tx, rx) = oneshot::channel();
        let id = t.next_id();
        t.insert(id.clone(), None, Duration::from_secs(5), tx);
        assert!(
            t.answer(result(&id, Some("a.example")), Some(&own))
                .is_none()
        );
        assert!(rx.await.unwrap().is_ok());
        // Unknown ids pass through; deadlines fail the request.
        assert!(t.answer(result("nope", None), Some(&own)).is_some());
        let (tx, rx) = oneshot::channel();
        let id = t.next_id();
        t.insert(id, None, Duration::from_secs(1), tx);
        t.expire(Instant::now() + Duration::from_secs(2));
        assert_eq!(
            rx.await.unwrap(),
            Err(IqError::Timeout(Duration::from_secs(1)))
        );
    }
}
