//! Between the daemon loop and the ring runtime: friends found by rendezvous become runtime
//! friends, Jingle IQs from roster friends go to the runtime's linkers (anyone else gets an
//! error), and the network check's NAT class becomes the links' path hint.

use brunet_compat::address::Address as RingAddress;
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::FullJid;
use tokio_xmpp::parsers::iq::Iq;

use crate::account::AccountHandle;
use crate::link::PathHint;
use crate::rendezvous::{Friend, FriendEvent, Rendezvous};
use crate::runtime::RuntimeHandle;
use crate::signal::xmpp;

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

/// Handles an IQ if it is Jingle; returns it back otherwise (for rendezvous).
pub(super) fn jingle_iq(
    rt: &RuntimeHandle,
    rv: &mut Rendezvous,
    handles: &[AccountHandle],
    account: usize,
    iq: Iq,
) -> Option<Iq> {
    let h = handles[account].clone();
    match xmpp::incoming(&iq) {
        None => Some(iq),
        Some(Err(reply)) => {
            tokio::spawn(async move { h.send(Stanza::Iq(reply)).await });
            None
        }
        Some(Ok((from, jingle))) => {
            let id = iq.id().to_owned();
            if !rv.is_friend(account, &from.to_bare()) {
                let now = std::time::Instant::now();
                rv.note_stranger("Jingle from a non-roster entity", from.as_str(), now);
                let reply = xmpp::reply(
                    &from,
                    &id,
                    &crate::signal::Reply::Error(crate::signal::IqFailure::ServiceUnavailable),
                );
                tokio::spawn(async move { h.send(Stanza::Iq(reply)).await });
                return None;
            }
            let rt = rt.clone();
            tokio::spawn(async move {
                let r = rt.jingle(account, from.clone(), jingle).await;
                let _ = h.send(Stanza::Iq(xmpp::reply(&from, &id, &r))).await;
            });
            None
        }
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
