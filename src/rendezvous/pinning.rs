//! Friends' node keys pinned per bare JID ([`crate::trust`]). Every key a friend shows over
//! XMPP — announces here, Jingle records and invites in the node — goes through
//! [`Rendezvous::check_key`], the one gate; a refused announce is held, so accepting the key
//! with `chamber trust` brings the friend up at once, without waiting for its next presence.

use std::collections::BTreeMap;
use std::time::Instant;

use tokio_xmpp::jid::{BareJid, FullJid};
use xmpp_ext::announce::Announce;
use xmpp_ext::{Fingerprint, RingId};

use super::{PeerKey, Rendezvous};
use crate::account::unix_ms;
use crate::trust::{Accepted, Check, KeySource, KeyWarning, PinBook, TrustError};

/// Most refused announces held (one per friend resource).
const MAX_HELD: usize = 256;

/// Pinning state kept by [`Rendezvous`].
#[derive(Default)]
pub(super) struct Pinning {
    pub(super) book: PinBook,
    /// The book changed since the node last saved it.
    pub(super) unsaved: bool,
    /// Announces refused for a changed key, by resource.
    pub(super) held: BTreeMap<PeerKey, (FullJid, BTreeMap<RingId, Announce>)>,
    /// Keys refused so far.
    pub(super) refusals: u64,
}

impl Rendezvous {
    /// Uses `book` (read from the pin file) from now on.
    pub fn set_pins(&mut self, book: PinBook) {
        self.pins.book = book;
        self.pins.unsaved = false;
    }

    /// The pins to save, if they changed since the last call.
    pub fn pins_to_save(&mut self) -> Option<&PinBook> {
        if !self.pins.unsaved {
            return None;
        }
        self.pins.unsaved = false;
        Some(&self.pins.book)
    }

    /// Whether `key`, seen for `jid` in `source`, may be used: the first key seen for a JID is
    /// pinned; any other is refused (logged once per key) until the user accepts it.
    pub fn check_key(&mut self, jid: &BareJid, key: Fingerprint, source: KeySource) -> bool {
        match self.pins.book.check(jid, key, source, unix_ms()) {
            Check::Known => true,
            Check::Pinned => {
                self.pins.unsaved = true;
                tracing::info!(%jid, key = %key, %source, "pinned the node key of a new friend");
                true
            }
            Check::Changed { first } => {
                self.pins.refusals += 1;
                if first {
                    let pinned = self
                        .pins
                        .book
                        .pinned(jid)
                        .map(|k| k.iter().map(|f| f.to_string()).collect::<Vec<_>>())
                        .unwrap_or_default();
                    tracing::warn!(%jid, offered = %key, pinned = ?pinned, %source,
                        "refused a changed node key; if the friend really has a new key, run `chamber trust {jid}`");
                }
                false
            }
        }
    }

    /// The fingerprints pinned for `jid`, if any.
    pub fn pinned(&self, jid: &BareJid) -> Option<Vec<Fingerprint>> {
        self.pins.book.pinned(jid).map(<[Fingerprint]>::to_vec)
    }

    /// Changed keys refused so far, for status.
    pub fn key_warnings(&self) -> Vec<KeyWarning> {
        self.pins.book.warnings()
    }

    /// How many times a changed key was refused.
    pub fn key_refusals(&self) -> u64 {
        self.pins.refusals
    }

    /// `chamber trust`: accepts the key `jid` offers now (`expected`, hex, if the user was shown
    /// one) and brings up the friend's resources whose announces were held for it.
    pub fn trust(
        &mut self,
        jid: &BareJid,
        expected: Option<&str>,
        keep_old: bool,
        now: Instant,
    ) -> Result<Accepted, TrustError> {
        let accepted = self.pins.book.accept(jid, expected, keep_old, unix_ms())?;
        self.pins.unsaved = true;
        tracing::info!(%jid, new = %accepted.new, old = ?accepted.old, "accepted a friend's new node key");
        let keys: Vec<PeerKey> = self
            .pins
            .held
            .iter()
            .filter(|(_, (full, _))| full.to_bare() == *jid)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let Some((full, rings)) = self.pins.held.remove(&key) else {
                continue;
            };
            let usable: BTreeMap<RingId, Announce> = rings
                .into_iter()
                .filter(|(_, a)| {
                    self.pins
                        .book
                        .pinned(jid)
                        .is_some_and(|k| k.contains(&a.fingerprint()))
                })
                .collect();
            if !usable.is_empty() && self.allowed(key.0, jid) {
                self.upsert(key.clone(), key.0, full, usable, now);
            }
        }
        Ok(accepted)
    }

    /// Keeps announces refused for their key, to use them if the user accepts it.
    pub(super) fn hold(&mut self, key: PeerKey, full: FullJid, rings: BTreeMap<RingId, Announce>) {
        if self.pins.held.len() >= MAX_HELD && !self.pins.held.contains_key(&key) {
            return;
        }
        self.pins.held.insert(key, (full, rings));
    }

    /// Forgets held announces of a resource that went away (or of every resource of a bare
    /// JID on `account`, for an unavailable presence to the bare JID).
    pub(super) fn unhold(&mut self, account: usize, from: &str, bare: &BareJid, all: bool) {
        self.pins.held.retain(|(acc, jid), (full, _)| {
            !(*acc == account && (jid == from || (all && full.to_bare() == *bare)))
        });
    }
}
