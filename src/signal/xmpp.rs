//! Signalling over XMPP: Jingle requests ride IQ `set`s to the friend's full JID (servers deliver
//! IQs at once, even to clients that reported themselves inactive), answers are IQ `result`s or
//! stanza errors (RFC 6120 §8.3, XEP-0166 §8).

use std::time::Duration;

use async_trait::async_trait;
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use xmpp_ext::jingle::Jingle;

use super::{Address, IqFailure, Reply};
use crate::account::AccountHandle;

/// Jingle's own error conditions (XEP-0166 §8).
pub const NS_JINGLE_ERRORS: &str = "urn:xmpp:jingle:errors:1";

impl Address for FullJid {
    type Party = BareJid;
    fn party(&self) -> BareJid {
        self.to_bare()
    }
}

/// Carries signalling requests somewhere and reports how the far end answered; the link layer
/// holds one per account (XMPP) or one for the ring.
#[async_trait]
pub trait SignalTransport<A>: Send + Sync {
    /// Sends `jingle` to `to` and waits for its acknowledgement.
    async fn request(&self, to: A, jingle: Jingle) -> Result<(), IqFailure>;
}

/// [`SignalTransport`] over a running account.
#[derive(Clone, Debug)]
pub struct XmppTransport {
    account: AccountHandle,
    timeout: Duration,
}

impl XmppTransport {
    /// Requests over `account`, each given up after `timeout` (a ghost resource never answers).
    pub fn new(account: AccountHandle, timeout: Duration) -> Self {
        XmppTransport { account, timeout }
    }

    /// The account.
    pub fn account(&self) -> &AccountHandle {
        &self.account
    }
}

#[async_trait]
impl SignalTransport<FullJid> for XmppTransport {
    async fn request(&self, to: FullJid, jingle: Jingle) -> Result<(), IqFailure> {
        match self.account.iq(request(&to, &jingle), self.timeout).await {
            Ok(Iq::Result { .. }) => Ok(()),
            Ok(Iq::Error { error, .. }) => Err(failure(&error)),
            Ok(_) => Err(IqFailure::Other("unexpected IQ type".into())),
            Err(crate::account::IqError::Timeout(_)) => Err(IqFailure::Timeout),
            Err(e) => Err(IqFailure::Other(e.to_string())),
        }
    }
}

/// The IQ `set` carrying `jingle` (the account sets the id).
pub fn request(to: &FullJid, jingle: &Jingle) -> Iq {
    Iq::Set {
        from: None,
        to: Some(Jid::from(to.clone())),
        id: String::new(),
        payload: jingle.to_element(),
    }
}

/// Maps a stanza error to what signalling does about it.
pub fn failure(e: &StanzaError) -> IqFailure {
    let jingle_condition = e
        .other
        .as_ref()
        .filter(|o| o.ns() == NS_JINGLE_ERRORS)
        .map(|o| o.name().to_owned());
    match (&e.defined_condition, jingle_condition.as_deref()) {
        (_, Some("tie-break")) => IqFailure::TieBreak,
        (DefinedCondition::ServiceUnavailable | DefinedCondition::RecipientUnavailable, _) => {
            IqFailure::ServiceUnavailable
        }
        (DefinedCondition::ItemNotFound, _) => IqFailure::ItemNotFound,
        (DefinedCondition::ResourceConstraint, _) => IqFailure::ResourceConstraint,
        (c, _) => IqFailure::Other(format!("{c:?}")),
    }
}

/// If `iq` is a Jingle request, its sender and payload; `Err` carries the error reply for a
/// malformed one (XEP-0166 §8: bad-request, or feature-not-implemented for actions chamber
/// does not use).
pub fn incoming(iq: &Iq) -> Option<Result<(FullJid, Jingle), Iq>> {
    let Iq::Set {
        from, id, payload, ..
    } = iq
    else {
        return None;
    };
    if !payload.is("jingle", ns::JINGLE) {
        return None;
    }
    let from = from.clone()?;
    let Ok(full) = from.clone().try_into_full() else {
        return Some(Err(error_reply(
            &from,
            id,
            DefinedCondition::BadRequest,
            None,
        )));
    };
    Some(match Jingle::from_element(payload) {
        Ok(j) => Ok((full, j)),
        Err(e) => {
            tracing::debug!(%from, %e, "malformed Jingle request");
            let cond = match e {
                xmpp_ext::Error::InvalidValue {
                    field: "action", ..
                } => DefinedCondition::FeatureNotImplemented,
                _ => DefinedCondition::BadRequest,
            };
            Err(error_reply(&from, id, cond, None))
        }
    })
}

/// The answer to a Jingle request with id `id` from `from`.
pub fn reply(from: &FullJid, id: &str, r: &Reply) -> Iq {
    let to = Jid::from(from.clone());
    match r {
        Reply::Ack => Iq::empty_result(to, id),
        Reply::Error(f) => {
            let (cond, extra) = match f {
                IqFailure::TieBreak => (DefinedCondition::Conflict, Some("tie-break")),
                IqFailure::ItemNotFound => {
                    (DefinedCondition::ItemNotFound, Some("unknown-session"))
                }
                IqFailure::ServiceUnavailable => (DefinedCondition::ServiceUnavailable, None),
                IqFailure::ResourceConstraint => (DefinedCondition::ResourceConstraint, None),
                IqFailure::Other(s) if s == "out-of-order" => {
                    (DefinedCondition::UnexpectedRequest, Some("out-of-order"))
                }
                _ => (DefinedCondition::BadRequest, None),
            };
            error_reply(&to, id, cond, extra)
        }
    }
}

fn error_reply(to: &Jid, id: &str, cond: DefinedCondition, jingle: Option<&str>) -> Iq {
    let type_ = match cond {
        DefinedCondition::ResourceConstraint => ErrorType::Wait,
        _ => ErrorType::Cancel,
    };
    let mut e = StanzaError::new(type_, cond, "en", "");
    e.texts.clear();
    e.other = jingle.map(|n| Element::bare(n, NS_JINGLE_ERRORS));
    Iq::Error {
        from: None,
        to: Some(to.clone()),
        id: id.to_owned(),
        error: e,
        payload: None,
    }
}
