//! One ring in the runtime: its sans-IO core, the friends rendezvous found in it, its linkers
//! (one per XMPP account, one over the ring) and the links being made.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use brunet_compat::address::Address as RingAddress;
use brunet_compat::ring::{Config, Node, Time};
use tokio_xmpp::jid::FullJid;
use xmpp_ext::record::{Capabilities, NodeRecord};
use xmpp_ext::{NodeSecret, RingId};

use super::RingSpec;
use super::overlay_signal::OverlayPeer;
use crate::account::unix_ms;
use crate::link::{Identity, Linker, Policy};

/// A friend's node in this ring, as rendezvous reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct FriendRoute {
    pub account: usize,
    pub jid: FullJid,
}

pub(super) struct RingRun {
    pub name: String,
    pub id: RingId,
    pub core: Node,
    /// When the core wants its next timeout.
    pub deadline: Time,
    pub identity: Identity,
    /// Friends by ring address, each with the resources that announced it.
    pub friends: BTreeMap<RingAddress, Vec<FriendRoute>>,
    /// Per account, once its STUN/TURN servers are known.
    pub xmpp: Vec<Option<Linker<FullJid>>>,
    /// Links to members over ring signalling.
    pub overlay: Option<Linker<OverlayPeer>>,
    /// The linker over the knock socket (warm restarts), once it is bound.
    pub knock: Option<Linker<crate::warm::KnockPeer>>,
    /// This ring's knock key, until the knock socket takes it.
    pub knock_key: Option<crate::warm::wire::KnockKey>,
    /// Peers a link is being made to.
    pub connecting: BTreeSet<RingAddress>,
    /// Members still joining and the peer each named to reach it through, with when.
    pub vias: BTreeMap<RingAddress, (RingAddress, std::time::Instant)>,
    /// Friends we could not link to lately, and when.
    pub failed: BTreeMap<RingAddress, std::time::Instant>,
    /// The node left this ring (its slot stays so indices held by tasks stay valid).
    pub left: bool,
    /// An owned ring's owner and our certificate.
    pub owned: Option<super::OwnedRing>,
    /// Owned rings: revocations known, links refused.
    pub admission: super::admission::Admission,
    /// A friends ring's policy, vouchers and admitted addresses.
    pub friends_ring: Option<super::friends::FriendsRing>,
    /// Signalling requests refused because their source was over its rate.
    pub signals_limited: u64,
}

impl RingRun {
    pub fn new(secret: &NodeSecret, spec: &RingSpec, accounts: usize, now: Time) -> RingRun {
        let id = spec.secret.ring_id();
        let record = NodeRecord::new(secret, id, Capabilities::empty(), unix_ms());
        let me = RingAddress::from_bytes(record.address().to_bytes());
        // The seed only spreads timers and picks; it need not be secret.
        let seed =
            u64::from_le_bytes(me.as_bytes()[..8].try_into().unwrap_or_default()) ^ unix_ms();
        let mut cfg = Config::with_seed(seed);
        // Relayed pairs try a direct link again about once a minute (DESIGN.md §4).
        cfg.direct_retry = std::time::Duration::from_secs(60);
        // Only values signed by a member's key are stored (the services sign theirs).
        cfg.validator = Box::new(super::app::SignedValues);
        let friends_ring = spec.friends.map(super::friends::FriendsRing::new);
        let admission = super::admission::Admission::default();
        if let Some(f) = &friends_ring {
            cfg.admission = f.core_admission();
        } else if spec.owned.is_some() {
            cfg.admission = admission.core_admission();
        }
        let mut core = Node::new(cfg, me, now);
        // No node can know it is the first: each starts a ring of one, and rings merge as
        // links come up (brunet-compat/tests/ring_friends.rs).
        core.create_ring();
        tracing::info!(ring = %spec.name, address = %me, "ring core started");
        RingRun {
            name: spec.name.clone(),
            id,
            core,
            deadline: now,
            identity: Identity::new(secret, record, &spec.secret),
            friends: BTreeMap::new(),
            xmpp: vec![None; accounts],
            overlay: None,
            knock: None,
            knock_key: Some(crate::warm::wire::KnockKey::new(&spec.secret)),
            connecting: BTreeSet::new(),
            failed: BTreeMap::new(),
            vias: BTreeMap::new(),
            left: false,
            owned: spec.owned.clone(),
            admission,
            friends_ring,
            signals_limited: 0,
        }
    }

    pub fn me(&self) -> RingAddress {
        self.core.address()
    }

    /// Friends over XMPP: any roster friend (the daemon checked) whose record is in this ring.
    pub fn xmpp_policy(&self) -> Policy<FullJid> {
        let id = self.id;
        Arc::new(move |_, r: &NodeRecord| {
            if r.ring() == id {
                Ok(())
            } else {
                Err("its record is for another ring".into())
            }
        })
    }

    /// Members over the ring: the record must be this ring's and for the address it came from
    /// (so no member can speak for another's position).
    pub fn overlay_policy(&self) -> Policy<OverlayPeer> {
        let id = self.id;
        Arc::new(move |from: &OverlayPeer, r: &NodeRecord| {
            if r.ring() != id {
                Err("its record is for another ring".into())
            } else if from.0.as_bytes() != &r.address().to_bytes() {
                Err(format!("its record is for another address than {from}"))
            } else {
                Ok(())
            }
        })
    }

    /// Friends in ring order away from us, alternating sides: nearest after us, nearest
    /// before us, second after, …
    pub fn nearest_friends(&self) -> Vec<RingAddress> {
        let me = self.me().to_ring_int();
        let mut after: Vec<RingAddress> = self.friends.keys().copied().collect();
        after.sort_by_key(|a| a.to_ring_int().wrapping_sub(me));
        let mut out = Vec::with_capacity(after.len());
        let (mut i, mut j) = (0, after.len());
        while i < j {
            out.push(after[i]);
            i += 1;
            if i < j {
                j -= 1;
                out.push(after[j]);
            }
        }
        out
    }

    /// Where a friend's node can be signalled over XMPP, if anywhere.
    pub fn friend_route(&self, peer: &RingAddress) -> Option<(Linker<FullJid>, FullJid)> {
        self.friends.get(peer)?.iter().find_map(|f| {
            let l = self.xmpp.get(f.account)?.as_ref()?;
            Some((l.clone(), f.jid.clone()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_ext::RingSecret;

    fn ring_with_friends(addrs: &[u8]) -> RingRun {
        let secret = NodeSecret::from_bytes(&[7; 64]);
        let spec = RingSpec {
            name: "t".into(),
            secret: RingSecret::from_bytes([1; 32]),
            owned: None,
            friends: None,
        };
        let mut r = RingRun::new(&secret, &spec, 1, Time::ZERO);
        for &b in addrs {
            let mut a = *r.me().as_bytes();
            a[0] = a[0].wrapping_add(b);
            let jid: FullJid = format!("f{b}@x.example/r").parse().expect("jid");
            r.friends.insert(
                RingAddress::from_bytes(a),
                vec![FriendRoute { account: 0, jid }],
            );
        }
        r
    }

    #[test]
    fn nearest_friends_alternate_sides_nearest_first() {
        // Offsets from our address in the top byte: +1, +2, +3 after us; -1 (255), -2 before.
        let r = ring_with_friends(&[3, 254, 1, 255, 2]);
        let me = r.me().as_bytes()[0];
        let order: Vec<u8> = r
            .nearest_friends()
            .iter()
            .map(|a| a.as_bytes()[0].wrapping_sub(me))
            .collect();
        assert_eq!(order, vec![1, 255, 2, 254, 3]);
    }

    #[test]
    fn policies_want_this_ring_and_the_claimed_address() {
        let r = ring_with_friends(&[]);
        let other = NodeSecret::from_bytes(&[9; 64]);
        let theirs = NodeRecord::new(&other, r.id, Capabilities::empty(), 1);
        let elsewhere = NodeRecord::new(&other, RingId([3; 32]), Capabilities::empty(), 1);
        let jid: FullJid = "a@b.example/c".parse().expect("jid");
        assert!((r.xmpp_policy())(&jid, &theirs).is_ok());
        assert!((r.xmpp_policy())(&jid, &elsewhere).is_err());
        let at = OverlayPeer(RingAddress::from_bytes(theirs.address().to_bytes()));
        assert!((r.overlay_policy())(&at, &theirs).is_ok());
        // A member speaking for another's position is refused.
        assert!((r.overlay_policy())(&OverlayPeer(r.me()), &theirs).is_err());
    }
}
