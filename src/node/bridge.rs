//! Between the daemon loop and the ring runtime: friends found by rendezvous become runtime
//! friends, Jingle IQs from roster friends go to the runtime's linkers (anyone else gets an
//! error), and the network check's NAT class becomes the links' path hint.
//!
//! The abuse limits sit here, at the door: stanzas too large to look at are dropped before
//! anything parses them, `session-initiate`s over a sender's rate are answered
//! `resource-constraint` before the Jingle is parsed, and a node record whose key is not the
//! one pinned for the sender's JID is refused before any linker sees it.

use std::time::Instant;

use brunet_compat::address::Address as RingAddress;
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{FullJid, Jid};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::account::AccountHandle;
use crate::link::PathHint;
use crate::rendezvous::{Friend, FriendEvent, Rendezvous};
use crate::runtime::RuntimeHandle;
use crate::signal::xmpp;
use crate::trust::KeySource;
use crate::trust::limits::{self, Limits};

/// Passes a rendezvous change to the runtime.
pub(super) async fn friend_event(rt: &RuntimeHandle, handles: &[AccountHandle], ev: &FriendEvent) {
    let (f, up) = match ev {
        FriendEvent::Up(f) => (f, true),
        FriendEvent::Down { friend, .. } => (friend, false),
    };
    let Some((account, jid, address)) = parse(handles, f) else {
        tracing::debug!(friend = %f.jid, "friend with an unusable JID or address; not linked");
        return;
    };
    if up {
        rt.friend_up(f.ring.clone(), account, jid, address).await;
    } else {
        rt.friend_down(f.ring.clone(), jid).await;
    }
}

fn parse(handles: &[AccountHandle], f: &Friend) -> Option<(usize, FullJid, RingAddress)> {
    let account = handles.iter().position(|h| h.jid().as_str() == f.via)?;
    let jid: FullJid = f.jid.parse().ok()?;
    let mut b = [0u8; 20];
    hex::decode_to_slice(&f.address, &mut b).ok()?;
    Some((account, jid, RingAddress::from_bytes(b)))
}

/// Whether a stanza is small enough to look at (counted in `limits` if not). Our own
/// server's roster pushes are small too; nothing chamber reads needs more.
pub(super) fn fits(limits: &mut Limits, stanza: &Stanza) -> bool {
    let cap = limits::MAX_STANZA_ELEMENTS;
    let n = match stanza {
        Stanza::Presence(p) => limits::count_elements(&p.payloads, cap),
        Stanza::Message(m) => limits::count_elements(&m.payloads, cap),
        Stanza::Iq(Iq::Get { payload, .. } | Iq::Set { payload, .. }) => {
            limits::count_elements([payload], cap)
        }
        Stanza::Iq(Iq::Result { payload, .. } | Iq::Error { payload, .. }) => {
            limits::count_elements(payload, cap)
        }
    };
    let ok = limits.stanza_fits(n);
    if !ok {
        tracing::debug!(elements = n, "oversized stanza dropped");
    }
    ok
}

/// What [`jingle_iq`] works with.
pub(super) struct IqCx<'a> {
    pub rt: &'a RuntimeHandle,
    pub rv: &'a mut Rendezvous,
    pub handles: &'a [AccountHandle],
    pub limits: &'a mut Limits,
}

/// Handles an IQ if it is Jingle; returns it back otherwise (for rendezvous).
pub(super) fn jingle_iq(cx: IqCx<'_>, account: usize, iq: Iq, now: Instant) -> Option<Iq> {
    let h = cx.handles[account].clone();
    let send = |reply: Iq| {
        let h = h.clone();
        tokio::spawn(async move { h.send(Stanza::Iq(reply)).await });
    };
    if let Iq::Set {
        from: Some(from),
        id,
        payload,
        ..
    } = &iq
        && payload.is("jingle", ns::JINGLE)
        && payload.attr("action") == Some("session-initiate")
        && !cx.limits.initiate(from.to_bare().as_str(), now)
    {
        cx.rv
            .note_stranger("Jingle initiate over the rate limit", from.as_str(), now);
        send(error(
            from.clone(),
            id,
            DefinedCondition::ResourceConstraint,
        ));
        return None;
    }
    match xmpp::incoming(&iq) {
        None => Some(iq),
        Some(Err(reply)) => {
            send(reply);
            None
        }
        Some(Ok((from, jingle))) => {
            let id = iq.id().to_owned();
            let bare = from.to_bare();
            if !cx.rv.is_friend(account, &bare) {
                cx.rv
                    .note_stranger("Jingle from a non-roster entity", from.as_str(), now);
                let reply = xmpp::reply(
                    &from,
                    &id,
                    &crate::signal::Reply::Error(crate::signal::IqFailure::ServiceUnavailable),
                );
                send(reply);
                return None;
            }
            // A record that does not verify is refused by the linker; only a verified key can
            // be pinned or found to differ from the pin.
            let record = jingle.content.as_ref().and_then(|c| c.record.as_ref());
            if let Some(r) = record
                && r.verify().is_ok()
                && !cx
                    .rv
                    .check_key(&bare, r.keys().fingerprint(), KeySource::Record)
            {
                send(error(Jid::from(from), &id, DefinedCondition::NotAcceptable));
                return None;
            }
            let rt = cx.rt.clone();
            tokio::spawn(async move {
                let r = rt.jingle(account, from.clone(), jingle).await;
                let _ = h.send(Stanza::Iq(xmpp::reply(&from, &id, &r))).await;
            });
            None
        }
    }
}

/// An IQ error answer (`wait` for a resource constraint, so the sender may try later).
fn error(to: Jid, id: &str, condition: DefinedCondition) -> Iq {
    let type_ = match condition {
        DefinedCondition::ResourceConstraint => ErrorType::Wait,
        _ => ErrorType::Cancel,
    };
    let mut e = StanzaError::new(type_, condition, "en", "");
    e.texts.clear();
    Iq::Error {
        from: None,
        to: Some(to),
        id: id.to_owned(),
        error: e,
        payload: None,
    }
}

/// The path hint the network check's NAT class gives: with UDP blocked no direct pair is
/// worth waiting for. Behind a symmetric NAT a direct pair still forms with a peer whose NAT
/// filters by address only (NATLAB.md), so it waits as usual.
pub(super) fn hint(report: &serde_json::Value) -> PathHint {
    match report.get("class").and_then(|c| c.as_str()) {
        Some("udp-blocked") => PathHint::NoDirect,
        _ => PathHint::Unknown,
    }
}
