//! The roster (RFC 6121 §2: fetched on every new session, then kept current by pushes) and the
//! IQs a node answers: XEP-0199 pings, XEP-0030 disco#info and our node keys (for invites), to
//! friends and our own server only. A stranger learns nothing from us, not even that this resource runs chamber.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio_xmpp::Stanza;
use tokio_xmpp::jid::BareJid;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::disco::DiscoInfoQuery;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::roster::{Roster, Subscription};
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use super::quiet_log::ignored;
use super::{Output, PeerKey, Pending, Rendezvous};
use crate::account::IqError;

/// How long the server gets to send the roster.
const ROSTER_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait before asking again after a failed roster fetch.
const ROSTER_RETRY: Duration = Duration::from_secs(5);

impl Rendezvous {
    pub(super) fn fetch_roster(&mut self, account: usize) {
        let token = self.token(Pending::Roster(account));
        let query = Roster {
            ver: None,
            items: Vec::new(),
        };
        self.out.push_back(Output::Iq {
            account,
            iq: Iq::from_get(String::new(), query),
            timeout: ROSTER_TIMEOUT,
            token,
        });
    }

    pub(super) fn roster_result(
        &mut self,
        account: usize,
        result: Result<Iq, IqError>,
        now: Instant,
    ) {
        let roster = match result {
            Ok(Iq::Result {
                payload: Some(p), ..
            }) => Roster::try_from(p).map_err(|e| format!("malformed roster: {e}")),
            Ok(Iq::Result { payload: None, .. }) => Ok(Roster {
                ver: None,
                items: Vec::new(),
            }),
            Ok(other) => Err(format!("roster refused: {other:?}")),
            Err(e) => Err(e.to_string()),
        };
        let first = self.accounts[account].roster.is_none();
        match roster {
            Ok(r) => {
                let items: HashMap<BareJid, Subscription> = r
                    .items
                    .into_iter()
                    .map(|i| (i.jid, i.subscription))
                    .collect();
                tracing::debug!(account = %self.accounts[account].bare, contacts = items.len(), "roster");
                self.accounts[account].roster = Some(items);
                self.drop_disallowed(account);
            }
            Err(e) => {
                tracing::warn!(account = %self.accounts[account].bare, "{e}; retrying");
                self.accounts[account].roster_retry_at = Some(now + ROSTER_RETRY);
            }
        }
        // Announce ourselves once per session, roster or not: friends may see us meanwhile.
        if first {
            self.send_presence(account);
        }
    }

    /// An IQ request (or an unmatched answer) received on `account`.
    pub fn iq_request(&mut self, account: usize, iq: Iq, now: Instant) {
        let Some(me) = self.accounts.get(account) else {
            return;
        };
        let own = me.bare.clone();
        let (from, id, payload, set) = match iq {
            Iq::Get {
                from, id, payload, ..
            } => (from, id, payload, false),
            Iq::Set {
                from, id, payload, ..
            } => (from, id, payload, true),
            _ => return,
        };
        let from_own_side = from
            .as_ref()
            .is_none_or(|f| f.to_bare() == own || f.as_str() == own.domain().as_str());
        let trusted = from_own_side
            || from
                .as_ref()
                .is_some_and(|f| self.allowed(account, &f.to_bare()));
        let answer = if set && payload.is("query", ns::ROSTER) && from_own_side {
            self.roster_push(account, payload);
            Ok(None)
        } else if !set && trusted && payload.is("ping", ns::PING) {
            Ok(None)
        } else if !set && trusted && xmpp_ext::node_keys::is_query(&payload) {
            let keys = xmpp_ext::node_keys::NodeKeys::new(&self.secret, &own);
            Ok(Some(keys.to_element()))
        } else if !set && trusted && payload.is("query", ns::DISCO_INFO) {
            match DiscoInfoQuery::try_from(payload) {
                Ok(q) => Ok(Some(Element::from(xmpp_ext::caps::answer(&q)))),
                Err(_) => Err(DefinedCondition::BadRequest),
            }
        } else {
            if !trusted {
                let who = from.as_ref().map(|f| f.to_string()).unwrap_or_default();
                ignored!(self.quiet, now, "IQ from a non-roster entity", who);
            }
            Err(DefinedCondition::ServiceUnavailable)
        };
        let reply = match answer {
            Ok(payload) => Iq::Result {
                from: None,
                to: from,
                id,
                payload,
            },
            Err(condition) => Iq::Error {
                from: None,
                to: from,
                id,
                error: StanzaError::new(ErrorType::Cancel, condition, "en", ""),
                payload: None,
            },
        };
        self.out.push_back(Output::Send {
            account,
            stanza: Stanza::Iq(reply),
        });
    }

    fn roster_push(&mut self, account: usize, payload: Element) {
        let Ok(push) = Roster::try_from(payload) else {
            return;
        };
        let roster = self.accounts[account]
            .roster
            .get_or_insert_with(HashMap::new);
        for item in push.items {
            if item.subscription == Subscription::Remove {
                roster.remove(&item.jid);
            } else {
                roster.insert(item.jid, item.subscription);
            }
        }
        self.drop_disallowed(account);
    }

    /// Forgets friends whose subscription no longer lets them in.
    fn drop_disallowed(&mut self, account: usize) {
        let gone: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.account == account && !self.allowed(account, &p.jid.to_bare()))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.remove_peer(&key, "no longer on the roster");
        }
    }
}
