//! Friends rings in the runtime (SocialVPN style, no owner): who may link.
//!
//! A friends ring's secret derives from its name, so it keeps nobody out; friendship does.
//! A link is admitted when the peer is a roster friend: signalled over XMPP by a friend the
//! daemon checked against its pins, or showing an identity key pinned for one of our friends.
//! Anyone else is refused at once, unless the ring allows friends of friends: then the link
//! waits (as an owned ring's link waits for a certificate) for the peer to show a *voucher*
//! signed by one of our friends for the peer's own key. Each node gives its friends such a
//! voucher on their link (`chamber:vouch\0` ‖ vouchers), keeps the ones it is given, and shows
//! them on links to strangers. Both ends check, so a friend of a friend links only when both
//! allow it.
//!
//! A voucher is a [`MemberCert`] whose issuer is the friend and whose "owner" is that friend
//! too: the same signed form as an owned ring's certificates, checked by the same code.
//!
//! Relay edges (two hops through a forwarder, made by the core) skip the runtime's link
//! admission, so the core gets a plug-in, [`FriendsOnly`], that admits relay edges only to
//! the addresses this module let in.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brunet_compat::address::Address as RingAddress;
use brunet_compat::ring::{Admission as CoreAdmission, ConnType, LinkKind};
use sha2::{Digest, Sha256};
use xmpp_ext::cert::{MemberCert, Role};

use super::Via;
use super::task::Task;
use crate::account::unix_ms;
use crate::config::FriendsPolicy;

/// Prefix of a message carrying vouchers.
pub const VOUCH: &[u8] = b"chamber:vouch\0";
/// How long a voucher we give stays valid (a friend's link renews it whenever it comes up).
const VOUCHER_LIFE: Duration = Duration::from_secs(7 * 86_400);
/// Vouchers about us kept (the newest per issuer).
const MAX_VOUCHERS: usize = 32;
/// Vouchers shown or read in one message.
const MAX_PER_MESSAGE: usize = 16;

/// A friends ring's state in the runtime.
#[derive(Debug)]
pub(super) struct FriendsRing {
    pub policy: FriendsPolicy,
    /// Vouchers our friends gave us.
    pub vouchers: Vec<MemberCert>,
    /// Addresses admitted (friends, and vouched friends of friends): relay edges go only there.
    pub allowed: Arc<Mutex<BTreeSet<RingAddress>>>,
    /// Links refused: strangers, and friends of friends without a voucher or while not allowed.
    pub refused: u64,
    /// Links admitted on a friend's voucher.
    pub vouched: u64,
}

impl FriendsRing {
    pub fn new(policy: FriendsPolicy) -> FriendsRing {
        FriendsRing {
            policy,
            vouchers: Vec::new(),
            allowed: Arc::new(Mutex::new(BTreeSet::new())),
            refused: 0,
            vouched: 0,
        }
    }

    /// The core's plug-in for this ring.
    pub fn core_admission(&self) -> Box<dyn CoreAdmission> {
        Box::new(FriendsOnly {
            allowed: self.allowed.clone(),
        })
    }

    fn allow(&self, peer: RingAddress) {
        if let Ok(mut a) = self.allowed.lock() {
            a.insert(peer);
        }
    }
}

/// The core's admission in a friends ring: direct links were checked by the runtime; relay
/// edges only to addresses it admitted.
struct FriendsOnly {
    allowed: Arc<Mutex<BTreeSet<RingAddress>>>,
}

impl CoreAdmission for FriendsOnly {
    fn admit(&mut self, peer: &RingAddress, kind: LinkKind, _: ConnType) -> bool {
        kind != LinkKind::Relay || self.allowed.lock().is_ok_and(|a| a.contains(peer))
    }
}

/// Encodes vouchers as one message.
fn encode(vouchers: &[MemberCert]) -> Vec<u8> {
    let mut b = VOUCH.to_vec();
    for v in vouchers.iter().take(MAX_PER_MESSAGE) {
        let c = v.encode();
        b.extend_from_slice(&(c.len() as u16).to_be_bytes());
        b.extend_from_slice(&c);
    }
    b
}

/// Decodes the vouchers of a message (after its prefix); malformed ones end the list.
pub fn decode(mut b: &[u8]) -> Vec<MemberCert> {
    let mut out = Vec::new();
    while b.len() >= 2 && out.len() < MAX_PER_MESSAGE {
        let n = usize::from(u16::from_be_bytes([b[0], b[1]]));
        let Some(c) = b.get(2..2 + n) else {
            break;
        };
        match MemberCert::decode(c) {
            Ok(v) => out.push(v),
            Err(_) => break,
        }
        b = &b[2 + n..];
    }
    out
}

/// SHA-256 of an identity key: what the pin book holds.
fn fingerprint(identity: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(identity).into()
}

impl Task {
    /// Whether link `id`'s peer is a friend of ours: signalled over XMPP (the daemon checked
    /// the friend's record against its pins) or holding a key we pinned for a friend.
    fn is_friend(&self, id: u64) -> bool {
        self.links.get(&id).is_some_and(|l| {
            matches!(l.via, Via::Xmpp(_)) || self.friend_keys.contains(&fingerprint(&l.identity))
        })
    }

    /// A link came up in friends ring `r`: true when it goes to the core now; false when it
    /// waits for a voucher or was refused.
    pub(super) fn friends_admit(&mut self, id: u64, r: usize) -> bool {
        let Some(f) = self.rings[r].friends_ring.as_ref() else {
            return true;
        };
        let fof = f.policy.fof;
        if self.is_friend(id) {
            if let Some(l) = self.links.get(&id) {
                f.allow(l.peer);
            }
            if fof {
                self.give_voucher(id);
            }
            return true;
        }
        if !fof {
            self.refuse_link(
                id,
                "not a friend, and this friends ring links to friends only",
            );
            return false;
        }
        self.show_vouchers(id);
        false
    }

    /// Signs a voucher for link `id`'s peer (a friend) and sends it.
    fn give_voucher(&mut self, id: u64) {
        let Some(l) = self.links.get(&id) else {
            return;
        };
        let now = unix_ms();
        let v = MemberCert::issue(
            &self.secret,
            None,
            self.rings[l.ring].id,
            l.identity,
            l.jid.as_deref().unwrap_or(""),
            Role::Member,
            now,
            now + VOUCHER_LIFE.as_millis() as u64,
        );
        let b = encode(&[v]);
        if let Some(l) = self.links.get_mut(&id) {
            l.send(b);
        }
    }

    /// Shows the vouchers we hold on link `id` (a friend of a friend, we hope).
    fn show_vouchers(&mut self, id: u64) {
        let Some(l) = self.links.get(&id) else {
            return;
        };
        let Some(f) = self.rings[l.ring].friends_ring.as_ref() else {
            return;
        };
        let b = encode(&f.vouchers);
        if let Some(l) = self.links.get_mut(&id) {
            l.send(b);
        }
    }

    /// Vouchers arrived on link `id` in friends ring `r`: ones a friend gave us are kept; on a
    /// waiting link, one of our friends' vouchers for the peer admits it.
    pub(super) fn vouchers_in(&mut self, id: u64, r: usize, bytes: &[u8]) {
        let Some(l) = self.links.get(&id) else {
            return;
        };
        let (ring_id, peer_identity, waiting) = (self.rings[r].id, l.identity, l.waiting.is_some());
        let me = self.secret.public().identity_bytes();
        let now = unix_ms();
        let friend = self.is_friend(id);
        for v in decode(bytes) {
            // A voucher for us, from the friend at the other end of this link.
            if friend
                && v.subject == me
                && v.issuer == peer_identity
                && v.verify(ring_id, &v.issuer, now).is_ok()
                && let Some(f) = self.rings[r].friends_ring.as_mut()
            {
                f.vouchers.retain(|o| o.issuer != v.issuer);
                if f.vouchers.len() >= MAX_VOUCHERS {
                    f.vouchers.remove(0);
                }
                tracing::debug!("a friend vouched for us");
                f.vouchers.push(v);
                continue;
            }
            // The peer's voucher from one of our friends.
            if waiting
                && v.subject == peer_identity
                && self.friend_keys.contains(&fingerprint(&v.issuer))
                && v.verify(ring_id, &v.issuer, now).is_ok()
            {
                let peer = self.links.get(&id).map(|l| l.peer);
                tracing::info!(ring = %self.rings[r].name, peer = ?peer, jid = %v.jid,
                    "a friend of a friend: a friend's voucher checks, link admitted");
                if let Some(f) = self.rings[r].friends_ring.as_mut() {
                    f.vouched += 1;
                    if let Some(p) = peer {
                        f.allow(p);
                    }
                }
                self.release(id);
                return;
            }
        }
    }

    /// Closes waiting link `id` in a friends ring; the core hears it failed, so it does not
    /// ask for the peer again soon.
    fn refuse_link(&mut self, id: u64, why: &str) {
        let Some(l) = self.links.remove(&id) else {
            return;
        };
        let now = self.now();
        let ring = &mut self.rings[l.ring];
        if let Some(f) = ring.friends_ring.as_mut() {
            f.refused += 1;
        }
        tracing::info!(ring = %ring.name, peer = %l.peer, jid = ?l.jid, why, "link refused");
        ring.failed.insert(l.peer, Instant::now());
        ring.core
            .handle_input(now, brunet_compat::ring::Input::LinkFailed { peer: l.peer });
        l.close();
    }

    /// Every second, for friends rings: vouchers sent again on young links; links that showed
    /// no voucher in time closed.
    pub(super) fn friends_tick(&mut self, now: Instant) {
        let ids: Vec<u64> = self.links.keys().copied().collect();
        for id in ids {
            let Some(l) = self.links.get(&id) else {
                continue;
            };
            let Some(f) = self.rings[l.ring].friends_ring.as_ref() else {
                continue;
            };
            if !f.policy.fof {
                continue;
            }
            let age = now.duration_since(l.since);
            if l.waiting.is_some() {
                if age > super::admission::ADMIT_WAIT {
                    self.refuse_link(id, "a friend of a friend without a friend's voucher");
                } else if age < super::admission::HELLO_FOR {
                    self.show_vouchers(id);
                }
            } else if age < super::admission::HELLO_FOR && self.is_friend(id) {
                self.give_voucher(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_ext::{NodeSecret, RingSecret};

    #[test]
    fn vouchers_round_trip_and_check_against_their_issuer() {
        let friend = NodeSecret::from_bytes(&[3; 64]);
        let me = NodeSecret::from_bytes(&[4; 64]).public().identity_bytes();
        let ring = RingSecret::of_friends_ring("pals").ring_id();
        let v = MemberCert::issue(&friend, None, ring, me, "me@x", Role::Member, 1, 1000);
        let got = decode(&encode(&[v.clone(), v.clone()])[VOUCH.len()..]);
        assert_eq!(got, vec![v.clone(), v.clone()]);
        let issuer = friend.public().identity_bytes();
        assert!(got[0].verify(ring, &issuer, 500).is_ok());
        assert!(got[0].verify(ring, &issuer, 2000).is_err(), "expired");
        let other = RingSecret::of_friends_ring("others").ring_id();
        assert!(got[0].verify(other, &issuer, 500).is_err(), "another ring");
        assert!(got[0].verify(ring, &me, 500).is_err(), "another issuer");
    }

    #[test]
    fn truncated_or_garbage_vouchers_end_the_list() {
        let friend = NodeSecret::from_bytes(&[3; 64]);
        let ring = RingSecret::of_friends_ring("pals").ring_id();
        let v = MemberCert::issue(&friend, None, ring, [9; 32], "", Role::Member, 1, 1000);
        let b = encode(std::slice::from_ref(&v));
        let body = &b[VOUCH.len()..];
        assert_eq!(decode(&body[..body.len() - 1]), vec![]);
        let mut two = body.to_vec();
        two.extend_from_slice(&[0, 3, 1, 2, 3]);
        assert_eq!(decode(&two), vec![v]);
        assert_eq!(decode(&[0xff, 0xff, 0]), vec![]);
    }

    #[test]
    fn relay_edges_only_to_admitted_addresses() {
        let f = FriendsRing::new(FriendsPolicy { fof: false });
        let mut core = f.core_admission();
        let a = RingAddress::from_bytes([2; 20]);
        assert!(core.admit(&a, LinkKind::Direct, ConnType::NONE));
        assert!(!core.admit(&a, LinkKind::Relay, ConnType::NONE));
        f.allow(a);
        assert!(core.admit(&a, LinkKind::Relay, ConnType::NONE));
    }
}
