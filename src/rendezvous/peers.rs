//! Friends' resources: what their presence announces, and whether they still answer.

use std::collections::BTreeMap;
use std::time::Instant;

use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::ping::Ping;
use tokio_xmpp::parsers::presence::{Presence, Priority, Type};
use xmpp_ext::announce::{self, Announce};
use xmpp_ext::{NS_CHAMBER, RingId};

use super::quiet_log::ignored;
use super::{Friend, FriendEvent, Output, PeerKey, Pending, Rendezvous, RingMembership};
use crate::account::IqError;
use crate::trust::KeySource;

/// Most announces kept from one presence (a node is in a handful of rings).
const MAX_ANNOUNCES: usize = 16;

/// One resource of a friend.
pub(super) struct Peer {
    pub(super) account: usize,
    pub(super) jid: FullJid,
    /// Verified announces, for our rings only.
    pub(super) rings: BTreeMap<RingId, Announce>,
    /// The outstanding ping, by token.
    pub(super) probe: Option<u64>,
    pub(super) next_probe: Instant,
    /// Our session restarted and this friend has not shown up since.
    pub(super) unconfirmed: bool,
    /// It stopped answering at this time (its presence may be a ghost).
    pub(super) ghost_since: Option<Instant>,
}

impl Peer {
    /// Whether it announces one of `rings` (only then is it probed).
    pub(super) fn shares(&self, rings: &[RingMembership]) -> bool {
        rings.iter().any(|r| self.rings.contains_key(&r.id))
    }

    pub(super) fn friends(&self, rings: &[RingMembership], via: &BareJid) -> Vec<Friend> {
        self.rings
            .iter()
            .filter_map(|(id, a)| {
                let ring = rings.iter().find(|r| r.id == *id)?;
                Some(friend(ring, &self.jid, via, a))
            })
            .collect()
    }
}

fn friend(ring: &RingMembership, jid: &FullJid, via: &BareJid, a: &Announce) -> Friend {
    Friend {
        ring: ring.name.clone(),
        jid: jid.to_string(),
        via: via.to_string(),
        address: a.address().to_string(),
        fingerprint: a.fingerprint().to_hex(),
    }
}

impl Rendezvous {
    /// A presence stanza received on `account`.
    pub fn presence(&mut self, account: usize, p: Presence, now: Instant) {
        let Some(from) = p.from.clone() else {
            return;
        };
        let Some(me) = self.accounts.get(account) else {
            return;
        };
        if me
            .full
            .as_ref()
            .is_some_and(|f| f.as_str() == from.as_str())
        {
            return;
        }
        let bare = from.to_bare();
        match p.type_ {
            Type::None => {}
            Type::Unavailable | Type::Error => {
                let reason = if p.type_ == Type::Error {
                    "presence error"
                } else {
                    "went offline"
                };
                let keys: Vec<PeerKey> = self
                    .peers
                    .iter()
                    .filter(|(_, peer)| {
                        peer.account == account
                            && (peer.jid.to_string() == from.as_str()
                                || (from.resource().is_none() && peer.jid.to_bare() == bare))
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in keys {
                    self.remove_peer(&key, reason);
                }
                self.unhold(account, from.as_str(), &bare, from.resource().is_none());
                self.accounts[account].present.retain(|j| {
                    j.as_str() != from.as_str()
                        && (from.resource().is_some() || j.to_bare() != bare)
                });
                return;
            }
            _ => return,
        }
        let has_announce = p
            .payloads
            .iter()
            .any(|e| e.is(announce::ELEMENT, NS_CHAMBER));
        if self.allowed(account, &bare)
            && let Ok(full) = from.clone().try_into_full()
        {
            self.accounts[account].present.insert(full);
        }
        if !has_announce {
            // A contact without chamber (or one that stopped it): forget it if we knew it.
            let key = (account, from.to_string());
            self.unhold(account, from.as_str(), &bare, false);
            if self.peers.contains_key(&key) {
                self.remove_peer(&key, "no longer announces any ring");
            }
            return;
        }
        if !self.allowed(account, &bare) {
            ignored!(self.quiet, now, "announce from a non-roster contact", from);
            return;
        }
        let Ok(full) = from.clone().try_into_full() else {
            ignored!(self.quiet, now, "announce from a bare JID", from);
            return;
        };
        let mut found = BTreeMap::new();
        let mut refused = BTreeMap::new();
        for e in p
            .payloads
            .iter()
            .filter(|e| e.is(announce::ELEMENT, NS_CHAMBER))
        {
            let a = match Announce::from_element(e) {
                Ok(a) => a,
                Err(err) => {
                    ignored!(self.quiet, now, "malformed announce", from, %err);
                    continue;
                }
            };
            if let Err(err) = a.verify(&bare) {
                ignored!(self.quiet, now, "announce with a bad signature", from, %err);
                continue;
            }
            if a.fingerprint() == self.own {
                continue; // Ourselves, through another of our accounts.
            }
            if !self.check_key(&bare, a.fingerprint(), KeySource::Announce) {
                if refused.len() < MAX_ANNOUNCES {
                    refused.insert(a.ring(), a);
                }
                continue;
            }
            // Rings we are not in are kept too (bounded), so joining one later finds the
            // friends already in it without waiting for their next presence.
            if found.len() < MAX_ANNOUNCES {
                found.insert(a.ring(), a);
            }
        }
        let key = (account, full.to_string());
        if found.is_empty() && !refused.is_empty() {
            self.hold(key.clone(), full, refused);
            if self.peers.contains_key(&key) {
                self.remove_peer(&key, "its node key changed; refused until `chamber trust`");
            }
            return;
        }
        self.unhold(account, &key.1, &bare, false);
        if found.is_empty() {
            if self.peers.contains_key(&key) {
                self.remove_peer(&key, "no longer announces any ring");
            }
            return;
        }
        self.upsert(key, account, full, found, now);
    }

    pub(super) fn upsert(
        &mut self,
        key: PeerKey,
        account: usize,
        jid: FullJid,
        rings: BTreeMap<RingId, Announce>,
        now: Instant,
    ) {
        let via = self.accounts[account].bare.clone();
        let next_probe = now + self.opts.probe_interval;
        let old = self.peers.remove(&key);
        let (old_rings, was_ghost) = match &old {
            Some(p) => (p.rings.clone(), p.ghost_since.is_some()),
            None => (BTreeMap::new(), false),
        };
        let mut events = Vec::new();
        for (id, a) in &old_rings {
            if was_ghost || rings.get(id) == Some(a) {
                continue;
            }
            if let Some(ring) = self.rings.iter().find(|r| r.id == *id) {
                let reason = if rings.contains_key(id) {
                    "announce changed"
                } else {
                    "no longer announces this ring"
                };
                events.push(FriendEvent::Down {
                    friend: friend(ring, &jid, &via, a),
                    reason: reason.into(),
                });
            }
        }
        for (id, a) in &rings {
            if !was_ghost && old_rings.get(id) == Some(a) {
                continue;
            }
            if let Some(ring) = self.rings.iter().find(|r| r.id == *id) {
                events.push(FriendEvent::Up(friend(ring, &jid, &via, a)));
            }
        }
        if let Some(t) = old.and_then(|p| p.probe) {
            self.pending.remove(&t);
        }
        self.peers.insert(
            key,
            Peer {
                account,
                jid,
                rings,
                probe: None,
                next_probe,
                unconfirmed: false,
                ghost_since: None,
            },
        );
        for ev in events {
            self.emit(ev);
        }
    }

    /// Forgets a resource, saying why for each ring it was in (unless already a ghost).
    pub(super) fn remove_peer(&mut self, key: &PeerKey, reason: &str) {
        let Some(p) = self.peers.remove(key) else {
            return;
        };
        if let Some(t) = p.probe {
            self.pending.remove(&t);
        }
        if p.ghost_since.is_none() {
            self.emit_down(&p, reason);
        }
    }

    fn emit_down(&mut self, p: &Peer, reason: &str) {
        let via = self.accounts[p.account].bare.clone();
        for f in p.friends(&self.rings, &via) {
            self.emit(FriendEvent::Down {
                friend: f,
                reason: reason.into(),
            });
        }
    }

    /// Pings a friend we have not heard from.
    pub(super) fn probe(&mut self, key: PeerKey, now: Instant) {
        let Some(p) = self.peers.get(&key) else {
            return;
        };
        let (account, to) = (p.account, p.jid.clone());
        let token = self.token(Pending::Probe(key.clone()));
        if let Some(p) = self.peers.get_mut(&key) {
            p.probe = Some(token);
            p.next_probe = now + self.opts.probe_interval;
        }
        let iq = Iq::from_get(String::new(), Ping).with_to(Jid::from(to));
        self.out.push_back(Output::Iq {
            account,
            iq,
            timeout: self.opts.probe_timeout,
            token,
        });
    }

    pub(super) fn probe_result(
        &mut self,
        key: PeerKey,
        token: u64,
        result: Result<Iq, IqError>,
        now: Instant,
    ) {
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        if p.probe != Some(token) {
            return;
        }
        p.probe = None;
        p.next_probe = now + self.opts.probe_interval;
        let failure = match result {
            Ok(Iq::Result { .. }) => None,
            Ok(Iq::Error { error, .. }) => {
                Some(format!("ping refused ({:?})", error.defined_condition))
            }
            Ok(_) => Some("odd answer to a ping".to_string()),
            Err(IqError::Closed) => return,
            Err(e) => Some(format!("no answer to a ping ({e}): ghost presence")),
        };
        match failure {
            None if p.ghost_since.is_some() => {
                // It resumed its session: its presence (and announces) are still valid.
                p.ghost_since = None;
                let via = self.accounts[p.account].bare.clone();
                let ups = p.friends(&self.rings, &via);
                for f in ups {
                    self.emit(FriendEvent::Up(f));
                }
            }
            None => {}
            Some(reason) if p.ghost_since.is_none() => {
                p.ghost_since = Some(now);
                let snapshot = Peer {
                    account: p.account,
                    jid: p.jid.clone(),
                    rings: p.rings.clone(),
                    probe: None,
                    next_probe: now,
                    unconfirmed: false,
                    ghost_since: None,
                };
                self.emit_down(&snapshot, &reason);
            }
            Some(_) => {}
        }
    }

    /// Sends our presence (announces and caps) on `account`, to the roster only: it carries
    /// no `to`, so the server fans it out to contacts with subscription `from` or `both`.
    pub(super) fn send_presence(&mut self, account: usize) {
        let bare = self.accounts[account].bare.clone();
        let mut p = Presence::new(Type::None);
        // Negative priority: chamber is no chat client; messages to the bare JID go elsewhere.
        p.priority = Priority(-1);
        for ring in &self.rings {
            p.payloads
                .push(Announce::new(&self.secret, ring.id, &bare).to_element());
        }
        match xmpp_ext::caps::presence_caps() {
            Ok(c) => p.payloads.push(c.into()),
            Err(e) => tracing::error!(%e, "cannot build entity caps"),
        }
        self.out.push_back(Output::Send {
            account,
            stanza: Stanza::Presence(p),
        });
    }
}
