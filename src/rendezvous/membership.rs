//! Rings joined and left while the node runs (`chamber ring create/join/leave`), and the
//! friends' resources an invite can reach.

use std::time::Instant;

use tokio_xmpp::jid::{BareJid, FullJid};

use super::{FriendEvent, PeerKey, Rendezvous, RingMembership};

impl Rendezvous {
    /// Joins `ring`: announces it in a fresh presence on every online account, and reports the
    /// friends already announcing it (probed at once, in case a presence is a ghost's).
    pub fn add_ring(&mut self, ring: RingMembership, now: Instant) {
        if self
            .rings
            .iter()
            .any(|r| r.name == ring.name || r.id == ring.id)
        {
            return;
        }
        let id = ring.id;
        self.rings.push(ring);
        self.resend_presence();
        let keys: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.ghost_since.is_none() && p.rings.contains_key(&id))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let Some(p) = self.peers.get_mut(&key) else {
                continue;
            };
            p.next_probe = now;
            let via = self.accounts[p.account].bare.clone();
            let ups: Vec<_> = p
                .friends(&self.rings, &via)
                .into_iter()
                .filter(|f| self.rings.last().is_some_and(|r| r.name == f.ring))
                .collect();
            for f in ups {
                self.emit(FriendEvent::Up(f));
            }
        }
    }

    /// Leaves the ring named `name`: stops announcing it and reports its friends down.
    /// Returns whether we were in it.
    pub fn remove_ring(&mut self, name: &str) -> bool {
        let Some(i) = self.rings.iter().position(|r| r.name == name) else {
            return false;
        };
        let ring = self.rings[i].clone();
        let mut downs = Vec::new();
        for p in self.peers.values().filter(|p| p.ghost_since.is_none()) {
            let via = &self.accounts[p.account].bare;
            downs.extend(
                p.friends(std::slice::from_ref(&ring), via)
                    .into_iter()
                    .map(|friend| FriendEvent::Down {
                        friend,
                        reason: "we left the ring".into(),
                    }),
            );
        }
        self.rings.remove(i);
        for ev in downs {
            self.emit(ev);
        }
        self.resend_presence();
        true
    }

    /// Where `friend` can be reached now: (our account, its full JID) for every available
    /// resource, on accounts whose roster lets it talk to us.
    pub fn resources_of(&self, friend: &BareJid) -> Vec<(usize, FullJid)> {
        self.accounts
            .iter()
            .enumerate()
            .filter(|(i, _)| self.allowed(*i, friend))
            .flat_map(|(i, a)| {
                a.present
                    .iter()
                    .filter(|j| j.to_bare() == *friend)
                    .map(move |j| (i, j.clone()))
            })
            .collect()
    }

    /// Whether `friend` is on the roster of one of our accounts (with a subscription that
    /// lets it talk to us).
    pub fn on_roster(&self, friend: &BareJid) -> bool {
        (0..self.accounts.len()).any(|i| self.allowed(i, friend))
    }

    /// A new presence on each online account whose session has announced itself already.
    fn resend_presence(&mut self) {
        for i in 0..self.accounts.len() {
            if self.accounts[i].online && self.accounts[i].full.is_some() {
                self.send_presence(i);
            }
        }
    }
}
