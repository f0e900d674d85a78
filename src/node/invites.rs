//! Ring invites over XMPP (DESIGN.md §7). Sending: ask each online resource of the friend for
//! its node keys (an IQ only roster friends answer), seal the ring secret to the first valid
//! answer and send it in a `<message/>` to that full JID (a chamber resource has a negative
//! priority, so a message to the bare JID would never reach it). Receiving: only from roster
//! friends, signature checked against the sender's bare JID, then decrypted and kept pending.

use std::time::{Duration, Instant};

use rand::rngs::OsRng;
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::Message;
use xmpp_ext::cert::{MemberCert, Role};
use xmpp_ext::invite::Invite;
use xmpp_ext::node_keys::{self, NodeKeys};
use xmpp_ext::{Fingerprint, NodeSecret, RingSecret};

use crate::account::{AccountHandle, unix_ms};
use crate::membership::PendingInvites;
use crate::rendezvous::Rendezvous;
use crate::trust::KeySource;

/// Keys friends answered to our `<keys/>` queries, for the node to pin or find changed.
pub(super) type KeysSeen = tokio::sync::mpsc::UnboundedSender<(BareJid, Fingerprint)>;

/// How long a friend's node has to answer the keys query.
const KEYS_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether this node may invite to a ring: anyone to a plain ring; to an owned ring, the owner
/// or an admin (and only the owner names admins).
pub(super) fn may_invite(
    node: &NodeSecret,
    owned: Option<&crate::runtime::OwnedRing>,
    admin: bool,
) -> Result<(), String> {
    let Some(o) = owned else {
        return if admin {
            Err("only owned rings have admins (`chamber ring create NAME --owned`)".into())
        } else {
            Ok(())
        };
    };
    let me = node.public().identity_bytes();
    if me == o.owner {
        Ok(())
    } else if admin {
        Err("only the ring's owner can name admins".into())
    } else if o.cert.role == Role::Admin {
        Ok(())
    } else {
        Err("only the ring's owner or an admin can invite to an owned ring".into())
    }
}

/// Where to send an invite and what it carries.
pub(super) struct Outgoing {
    pub ring: String,
    pub secret: RingSecret,
    /// An owned ring: we issue the friend's certificate.
    pub owned: Option<crate::runtime::OwnedRing>,
    /// The certificate makes the friend an admin.
    pub admin: bool,
    /// How long the certificate lasts.
    pub valid_secs: u64,
    pub node: NodeSecret,
    pub friend: BareJid,
    pub targets: Vec<(AccountHandle, FullJid)>,
    /// The keys pinned for `friend` when the invite was asked for.
    pub pinned: Option<Vec<Fingerprint>>,
    pub keys_seen: KeysSeen,
}

/// What `chamber ring invite` prints.
#[derive(serde::Serialize)]
struct Sent {
    ring: String,
    to: String,
    fingerprint: String,
}

/// Which resources an invite to `friend` can go to, or why none.
pub(super) fn targets(
    rv: &Rendezvous,
    handles: &[AccountHandle],
    friend: &str,
) -> Result<(BareJid, Vec<(AccountHandle, FullJid)>), String> {
    let bare: BareJid = friend
        .parse()
        .map_err(|_| format!("`{friend}` is not a bare JID (user@server)"))?;
    if handles.iter().any(|h| *h.jid() == bare) {
        return Err(format!("`{bare}` is one of this node's own accounts"));
    }
    if !rv.on_roster(&bare) {
        return Err(format!(
            "`{bare}` is not on the roster of any of your accounts (or does not share presence \
             with you); add them as a contact, let them accept, and try again"
        ));
    }
    let found: Vec<_> = rv
        .resources_of(&bare)
        .into_iter()
        .filter_map(|(i, j)| Some((handles.get(i)?.clone(), j)))
        .collect();
    if found.is_empty() {
        return Err(format!(
            "`{bare}` is not online; an invite goes to their running chamber node, so ask them \
             to run `chamber up` and try again"
        ));
    }
    Ok((bare, found))
}

/// Finds the friend's node keys and sends the sealed invite; the answer for the control socket.
pub(super) async fn send(job: Outgoing) -> Result<serde_json::Value, String> {
    let asks = job.targets.iter().map(|(h, to)| async move {
        let iq = Iq::Get {
            from: None,
            to: Some(Jid::from(to.clone())),
            id: String::new(),
            payload: node_keys::query(),
        };
        let answer = h.iq(iq, KEYS_TIMEOUT).await;
        (h, to, keys_from(answer, &to.to_bare()))
    });
    let answers = futures::future::join_all(asks).await;
    let mut failures = Vec::new();
    let mut changed = Vec::new();
    for (h, to, keys) in answers {
        let keys = match keys {
            Ok(k) => k,
            Err(e) => {
                failures.push(format!("{to}: {e}"));
                continue;
            }
        };
        let key = keys.fingerprint();
        let _ = job.keys_seen.send((job.friend.clone(), key));
        if let Some(pinned) = &job.pinned
            && !pinned.contains(&key)
        {
            tracing::warn!(ring = %job.ring, to = %to, offered = %key, "invite not sent: the node key is not the pinned one");
            changed.push(format!("{to} offers node key {key}"));
            continue;
        }
        let cert = job.owned.as_ref().map(|o| {
            let now = crate::account::unix_ms();
            let me = job.node.public().identity_bytes();
            MemberCert::issue(
                &job.node,
                (me != o.owner).then(|| o.cert.clone()),
                job.secret.ring_id(),
                keys.identity_bytes(),
                job.friend.as_str(),
                if job.admin { Role::Admin } else { Role::Member },
                now,
                now + job.valid_secs * 1000,
            )
        });
        let owned = job
            .owned
            .as_ref()
            .zip(cert.as_ref())
            .map(|(o, c)| (&o.owner, c));
        let invite = Invite::seal(
            &mut OsRng,
            &job.node,
            h.jid(),
            &keys,
            &job.ring,
            &job.secret,
            owned,
        )
        .map_err(|e| format!("cannot seal the invite: {e}"))?;
        let msg = invite.to_message(Jid::from(to.clone()));
        h.send(Stanza::Message(msg))
            .await
            .map_err(|e| format!("cannot send the invite to {to}: {e}"))?;
        tracing::info!(ring = %job.ring, to = %to, "invite sent");
        let sent = Sent {
            ring: job.ring.clone(),
            to: to.to_string(),
            fingerprint: keys.fingerprint().to_hex(),
        };
        return serde_json::to_value(sent).map_err(|e| e.to_string());
    }
    if !changed.is_empty() {
        let pinned = job
            .pinned
            .iter()
            .flatten()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(format!(
            "no invite sent: {}, but the key pinned for `{}` is {pinned}. If they really have a \
             new key, check its fingerprint with them and run `chamber trust {}`",
            changed.join("; "),
            job.friend,
            job.friend
        ));
    }
    Err(format!(
        "`{}` is online but no resource answered as a chamber node ({}); ask them to run \
         `chamber up`",
        job.friend,
        failures.join("; ")
    ))
}

fn keys_from(
    answer: Result<Iq, crate::account::IqError>,
    from: &BareJid,
) -> Result<xmpp_ext::PublicKeys, String> {
    let payload = match answer {
        Ok(Iq::Result {
            payload: Some(p), ..
        }) => p,
        Ok(Iq::Error { error, .. }) => {
            return Err(format!("refused ({:?})", error.defined_condition));
        }
        Ok(_) => return Err("an empty answer".into()),
        Err(e) => return Err(e.to_string()),
    };
    let keys = NodeKeys::from_element(&payload).map_err(|e| format!("a bad answer: {e}"))?;
    keys.verify(from)
        .map_err(|e| format!("keys that do not verify: {e}"))?;
    Ok(*keys.keys())
}

/// A message received on `account`: an invite from a roster friend is opened and kept; any
/// other invite is logged once per sender and dropped.
pub(super) fn incoming(
    node: &NodeSecret,
    rv: &mut Rendezvous,
    pending: &mut PendingInvites,
    in_rings: &[xmpp_ext::RingId],
    account: usize,
    msg: &Message,
) {
    let Some(parsed) = Invite::from_message(msg) else {
        return;
    };
    let now = Instant::now();
    let from = msg.from.as_ref().map(Jid::to_bare);
    let who = from.as_ref().map(ToString::to_string).unwrap_or_default();
    let Some(from) = from.filter(|f| rv.is_friend(account, f)) else {
        rv.note_stranger("ring invite from a non-roster entity", &who, now);
        return;
    };
    let invite = match parsed {
        Ok(i) => i,
        Err(e) => {
            rv.note_stranger(&format!("malformed ring invite ({e})"), &who, now);
            return;
        }
    };
    let p = match PendingInvites::open(node, &invite, &from, unix_ms()) {
        Ok(p) => p,
        Err(e) => {
            rv.note_stranger(&format!("ring invite that does not open ({e})"), &who, now);
            return;
        }
    };
    // Opened, so signed by the key it names for this JID: which must be the pinned one.
    if !rv.check_key(&from, invite.inviter().fingerprint(), KeySource::Invite) {
        tracing::warn!(ring = %p.info.ring, from = %who, "ring invite signed with a key that is not the one pinned for the sender; dropped");
        return;
    }
    if in_rings.contains(&p.invite.ring_id) {
        tracing::info!(ring = %p.info.ring, from = %who, "invite to a ring we are in already; ignored");
        return;
    }
    tracing::info!(ring = %p.info.ring, from = %who, "invited to a ring; `chamber ring join` accepts");
    if let Err(e) = pending.add(p) {
        tracing::warn!(%e, "cannot keep the invite");
    }
}
