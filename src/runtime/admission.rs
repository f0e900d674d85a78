//! Owned rings in the runtime (DESIGN.md §7): who may link, and putting members out.
//!
//! In an owned ring every link starts with both ends showing their member certificate
//! (`chamber:cert\0` ‖ certificate, sent again for a few seconds in case one is lost). Until
//! the peer's certificate checks — signed by the owner or an admin, for the peer's own node
//! key, for its JID when the link was signalled over XMPP, not expired, not revoked — the core
//! does not see the link and whatever else arrives on it waits; a link that shows nothing
//! valid within [`ADMIT_WAIT`] is closed. Admitted links are checked again every second, so an
//! expiring or revoked certificate ends its links.
//!
//! Revocations (`chamber:revoke\0` ‖ revocation) are broadcast over the ring, stored in the DHT
//! under `chamber/revoked` (read every [`POLL`] and written again every [`REPUBLISH`] by every
//! member that knows them, so they outlive any one node), and checked on every link.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brunet_compat::address::Address as RingAddress;
use brunet_compat::ring::{Input, LinkId};
use xmpp_ext::cert::{CertError, MemberCert, Revocation, Role};

use super::app::{DhtWait, dht_key, sign_dht};
use super::task::Task;
use crate::account::unix_ms;

/// Prefix of a certificate shown on a new link (a PType no Brunet message uses).
pub const HELLO: &[u8] = b"chamber:cert\0";
/// Prefix of a revocation in a broadcast.
pub const REVOKE: &[u8] = b"chamber:revoke\0";
/// How long a new link may take to show a valid certificate.
pub const ADMIT_WAIT: Duration = Duration::from_secs(10);
/// How long our certificate is sent again on a new link (once a second).
pub(super) const HELLO_FOR: Duration = Duration::from_secs(6);
/// How often the DHT's revocations are read.
pub const POLL: Duration = Duration::from_secs(20);
/// How often known revocations are written to the DHT again.
pub const REPUBLISH: Duration = Duration::from_secs(300);
/// Their lifetime in the DHT (longer than [`REPUBLISH`], so one miss does not lose them).
const REVOCATION_TTL: u32 = 3600;
/// Datagrams kept while a link waits for its certificate.
const MAX_WAITING: usize = 64;
/// The DHT key of revocations.
const REVOKED_KEY: &str = "chamber/revoked";

/// An owned ring, as this node takes part in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedRing {
    /// The owner's Ed25519 identity key.
    pub owner: [u8; 32],
    /// Our certificate.
    pub cert: MemberCert,
}

/// A link not admitted yet.
pub(super) struct Waiting {
    /// What the core is told once the certificate checks.
    pub up: Input,
    /// Datagrams that came before it.
    pub held: Vec<Vec<u8>>,
}

/// Per-ring admission state.
#[derive(Default)]
pub(super) struct Admission {
    pub revocations: Vec<Revocation>,
    pub refused: u64,
    pub last_poll: Option<Instant>,
    pub last_publish: Option<Instant>,
    /// Peers whose link showed no valid certificate, until one of theirs shows one: the core
    /// keeps no relay edge to them either (see `owned_relays`).
    pub shut: Arc<Mutex<BTreeSet<RingAddress>>>,
}

impl Task {
    /// A link came up in ring `r`: straight to the core, or (owned ring) after the peer's
    /// certificate checks.
    pub(super) fn admit_or_up(&mut self, id: u64, r: usize, up: Input) {
        if self.rings[r].friends_ring.is_some() {
            // Waiting first, so what arrives before the verdict is held.
            if let Some(l) = self.links.get_mut(&id) {
                l.waiting = Some(Box::new(Waiting {
                    up,
                    held: Vec::new(),
                }));
            }
            if self.friends_admit(id, r) {
                self.release(id);
            }
            return;
        }
        if self.rings[r].owned.is_none() {
            let now = self.now();
            self.rings[r].core.handle_input(now, up);
            self.drain(r);
            return;
        }
        if let Some(l) = self.links.get_mut(&id) {
            l.waiting = Some(Box::new(Waiting {
                up,
                held: Vec::new(),
            }));
        }
        self.send_hello(id);
    }

    fn send_hello(&mut self, id: u64) {
        let Some(l) = self.links.get(&id) else {
            return;
        };
        let Some(owned) = &self.rings[l.ring].owned else {
            return;
        };
        let mut b = HELLO.to_vec();
        b.extend_from_slice(&owned.cert.encode());
        if let Some(l) = self.links.get_mut(&id) {
            l.send(b);
        }
    }

    /// Handles what arrives on a link before the core may see it; true when taken here.
    pub(super) fn admission_data(&mut self, id: u64, bytes: &mut Option<Vec<u8>>) -> bool {
        let Some(l) = self.links.get_mut(&id) else {
            return false;
        };
        let Some(b) = bytes.as_ref() else {
            return false;
        };
        // A peer closing our link because we were revoked says so first, with the owner's
        // signed revocation: checked like any other, so a node that missed the broadcast
        // learns it is out and stops knocking.
        if b.starts_with(REVOKE) {
            let (r, b) = (l.ring, b[REVOKE.len()..].to_vec());
            self.revocation_in(r, &b);
            return true;
        }
        if b.starts_with(super::friends::VOUCH) && self.rings[l.ring].friends_ring.is_some() {
            let (r, b) = (l.ring, b[super::friends::VOUCH.len()..].to_vec());
            self.vouchers_in(id, r, &b);
            return true;
        }
        let is_hello = b.starts_with(HELLO);
        match (&mut l.waiting, is_hello) {
            (None, false) => false,
            // A certificate sent again, or renewed: a valid one replaces the one we hold.
            (None, true) => {
                let r = l.ring;
                if let Ok(c) = MemberCert::decode(&b[HELLO.len()..])
                    && self.check_cert(r, id, &c).is_ok()
                    && let Some(l) = self.links.get_mut(&id)
                    && l.cert
                        .as_ref()
                        .is_none_or(|old| old.expires_ms < c.expires_ms)
                {
                    l.cert = Some(c);
                }
                true
            }
            (Some(w), false) => {
                if w.held.len() < MAX_WAITING
                    && let Some(b) = bytes.take()
                {
                    w.held.push(b);
                }
                true
            }
            (Some(_), true) => {
                let r = l.ring;
                let cert = MemberCert::decode(&b[HELLO.len()..]);
                let checked = cert
                    .clone()
                    .and_then(|c| self.check_cert(r, id, &c).map(|()| c));
                match checked {
                    Ok(c) => self.admit(id, c),
                    Err(e) => {
                        let why = cert.ok().and_then(|c| self.revocation_of(r, &c).cloned());
                        self.refuse(id, &e, why);
                    }
                }
                true
            }
        }
    }

    /// Whether our own certificate for ring `r` was revoked: then no link is admitted.
    pub(super) fn self_revoked(&self, r: usize) -> bool {
        self.rings[r].owned.as_ref().is_some_and(|o| {
            self.rings[r]
                .admission
                .revocations
                .iter()
                .any(|rv| o.cert.revoked_by(rv))
        })
    }

    /// The revocation that puts `c` out, if any.
    fn revocation_of(&self, r: usize, c: &MemberCert) -> Option<&Revocation> {
        self.rings[r]
            .admission
            .revocations
            .iter()
            .find(|rv| c.revoked_by(rv))
    }

    fn check_cert(&self, r: usize, id: u64, c: &MemberCert) -> Result<(), CertError> {
        let (Some(owned), Some(l)) = (&self.rings[r].owned, self.links.get(&id)) else {
            return Err(CertError::BadIssuer);
        };
        if self.self_revoked(r) {
            return Err(CertError::Revoked);
        }
        c.verify(self.rings[r].id, &owned.owner, unix_ms())?;
        if c.subject != l.identity {
            return Err(CertError::WrongKey);
        }
        if let Some(jid) = &l.jid
            && !jid.eq_ignore_ascii_case(&c.jid)
        {
            return Err(CertError::WrongJid {
                cert: c.jid.clone(),
                peer: jid.clone(),
            });
        }
        if self.revocation_of(r, c).is_some() {
            return Err(CertError::Revoked);
        }
        Ok(())
    }

    fn admit(&mut self, id: u64, c: MemberCert) {
        let Some(l) = self.links.get_mut(&id) else {
            return;
        };
        if l.waiting.is_none() {
            return;
        }
        tracing::info!(ring = %self.rings[l.ring].name, peer = %l.peer, jid = %c.jid, "member certificate checks: link admitted");
        self.rings[l.ring].admission.shut(l.peer, false);
        l.cert = Some(c);
        self.release(id);
    }

    /// Hands a waiting link, and what it held, to the core.
    pub(super) fn release(&mut self, id: u64) {
        let Some(l) = self.links.get_mut(&id) else {
            return;
        };
        let Some(w) = l.waiting.take() else {
            return;
        };
        let r = l.ring;
        let now = self.now();
        self.rings[r].core.handle_input(now, w.up);
        for bytes in w.held {
            self.rings[r].core.handle_input(
                now,
                Input::ReceiveBytes {
                    link: LinkId(id),
                    bytes,
                },
            );
        }
        self.drain(r);
    }

    /// Closes link `id` for want of a valid certificate; a revoked peer is shown its
    /// revocation first.
    fn refuse(&mut self, id: u64, e: &CertError, revoked: Option<Revocation>) {
        let Some(l) = self.links.remove(&id) else {
            return;
        };
        let now = self.now();
        let ring = &mut self.rings[l.ring];
        ring.admission.refused += 1;
        ring.admission.shut(l.peer, true);
        tracing::warn!(ring = %ring.name, peer = %l.peer, jid = ?l.jid, %e, "link refused: no valid member certificate");
        // A refused peer is not asked again soon.
        ring.failed.insert(l.peer, Instant::now());
        ring.core
            .handle_input(now, Input::LinkFailed { peer: l.peer });
        match revoked {
            Some(rv) => l.close_with([REVOKE, &rv.encode()].concat()),
            None => l.close(),
        }
    }

    /// Every second: certificates sent again on young links, links that showed none closed,
    /// admitted links whose certificate expired or was revoked closed, the DHT's revocations
    /// read and ours written.
    pub(super) fn admission_tick(&mut self) {
        let now = Instant::now();
        let ids: Vec<u64> = self.links.keys().copied().collect();
        for id in ids {
            let Some(l) = self.links.get(&id) else {
                continue;
            };
            if self.rings[l.ring].owned.is_none() {
                continue;
            }
            let age = now.duration_since(l.since);
            if l.waiting.is_some() {
                if age > ADMIT_WAIT {
                    self.refuse(
                        id,
                        &CertError::Malformed("no certificate shown in time"),
                        None,
                    );
                } else if age < HELLO_FOR {
                    self.send_hello(id);
                }
                continue;
            }
            let (cert, r) = (l.cert.clone(), l.ring);
            if age < HELLO_FOR {
                self.send_hello(id);
            }
            let Some(c) = cert else {
                continue;
            };
            if let Err(e) = self.check_cert(r, id, &c) {
                if let Some(l) = self.links.get(&id) {
                    tracing::warn!(ring = %self.rings[l.ring].name, peer = %l.peer, jid = %c.jid, %e, "closing the link of a member no longer valid");
                }
                let why = self.revocation_of(r, &c).cloned();
                if let Some(l) = self.drop_link(id) {
                    self.rings[l.ring].admission.refused += 1;
                    self.rings[l.ring].admission.shut(l.peer, true);
                    match why {
                        Some(rv) => l.close_with([REVOKE, &rv.encode()].concat()),
                        None => l.close(),
                    }
                }
            }
        }
        for r in 0..self.rings.len() {
            if self.rings[r].left
                || self.rings[r].owned.is_none()
                || !self.rings[r].core.is_connected()
            {
                continue;
            }
            let a = &self.rings[r].admission;
            if a.last_poll.is_none_or(|t| now.duration_since(t) >= POLL) {
                self.rings[r].admission.last_poll = Some(now);
                let at = self.now();
                let id = self.rings[r].core.dht_get(at, dht_key(REVOKED_KEY));
                self.dht_waits.insert((r, id), DhtWait::Revocations);
                self.drain(r);
            }
            let a = &self.rings[r].admission;
            if !a.revocations.is_empty()
                && a.last_publish
                    .is_none_or(|t| now.duration_since(t) >= REPUBLISH)
            {
                let all: Vec<Vec<u8>> = a.revocations.iter().map(Revocation::encode).collect();
                self.rings[r].admission.last_publish = Some(now);
                for v in all {
                    self.publish_revocation(r, v);
                }
            }
        }
    }

    fn publish_revocation(&mut self, r: usize, value: Vec<u8>) {
        let key = dht_key(REVOKED_KEY);
        let sig = sign_dht(&self.secret, &key, &value);
        let now = self.now();
        let id = self.rings[r]
            .core
            .dht_put(now, key, value, REVOCATION_TTL, sig);
        self.dht_waits.insert((r, id), DhtWait::Ignored);
        self.drain(r);
    }

    /// A revocation from a broadcast or the DHT: checked, remembered (on disk too), and the
    /// member's links closed.
    pub(super) fn revocation_in(&mut self, r: usize, bytes: &[u8]) {
        if !self.revocation_take(r, bytes) {
            return;
        }
        if let Some(path) = &self.cfg.revoked_file
            && let Err(e) = super::revoked_file::add(path, &self.rings[r].id.to_hex(), bytes)
        {
            tracing::warn!(path = %path.display(), %e, "could not keep a revocation on disk; it stays in memory and in the ring's DHT");
        }
        // The next tick closes the links; do it now.
        self.admission_tick();
    }

    /// Owned ring `r`'s revocations kept on disk, checked again like any other.
    pub(super) fn revocations_from_disk(&mut self, r: usize) {
        let Some(path) = self.cfg.revoked_file.clone() else {
            return;
        };
        if self.rings[r].owned.is_none() {
            return;
        }
        match super::revoked_file::load(&path, &self.rings[r].id.to_hex()) {
            Ok(list) => {
                let mut new = false;
                for bytes in list {
                    new |= self.revocation_take(r, &bytes);
                }
                if new {
                    self.admission_tick();
                }
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), %e, "revocations on disk unreadable; the ring's DHT has them");
            }
        }
    }

    /// Checks a revocation for ring `r` and remembers it; true when it is valid and new.
    fn revocation_take(&mut self, r: usize, bytes: &[u8]) -> bool {
        let Some(owned) = &self.rings[r].owned else {
            return false;
        };
        let rv = match Revocation::decode(bytes).and_then(|rv| {
            rv.verify(self.rings[r].id, &owned.owner)?;
            Ok(rv)
        }) {
            Ok(rv) => rv,
            Err(e) => {
                let a = &mut self.rings[r].admission;
                a.refused += 1;
                if a.refused == 1 {
                    tracing::warn!(ring = %self.rings[r].name, %e, "revocation refused (further ones counted)");
                }
                return false;
            }
        };
        if self.rings[r].admission.revocations.contains(&rv) {
            return false;
        }
        tracing::warn!(ring = %self.rings[r].name, jid = %rv.jid, "member revoked: closing its links");
        if owned.cert.revoked_by(&rv) {
            tracing::error!(ring = %self.rings[r].name, "this node's own certificate was revoked; it cannot take part in the ring any more");
        }
        self.rings[r].admission.revocations.push(rv);
        true
    }

    /// Owner or admin: renews the certificate `cert` of the member at `from` (it must still be
    /// valid, be that member's, and not be revoked), for as long as it was first issued.
    pub(super) fn renew(
        &mut self,
        name: &str,
        from: RingAddress,
        cert: &MemberCert,
    ) -> Result<MemberCert, String> {
        let r = self
            .ring_index(name)
            .ok_or_else(|| format!("not in ring {name:?}"))?;
        let owned = self.rings[r]
            .owned
            .clone()
            .ok_or_else(|| format!("ring {name:?} is not owned"))?;
        let me = self.secret.public().identity_bytes();
        let issuer_cert = if me == owned.owner {
            None
        } else if owned.cert.role == Role::Admin {
            Some(owned.cert.clone())
        } else {
            return Err("only the owner or an admin renews certificates".into());
        };
        cert.verify(self.rings[r].id, &owned.owner, unix_ms())
            .map_err(|e| e.to_string())?;
        let holder = xmpp_ext::keys::address_of_identity(&cert.subject);
        if RingAddress::from_bytes(holder.to_bytes()) != from {
            return Err("a certificate is renewed only for its holder".into());
        }
        if self.rings[r]
            .admission
            .revocations
            .iter()
            .any(|rv| cert.revoked_by(rv))
        {
            return Err("that member was revoked".into());
        }
        if cert.role == Role::Admin && me != owned.owner {
            return Err("only the owner renews an admin's certificate".into());
        }
        let now = unix_ms();
        let life = cert.expires_ms.saturating_sub(cert.issued_ms);
        let fresh = MemberCert::issue(
            &self.secret,
            issuer_cert,
            self.rings[r].id,
            cert.subject,
            &cert.jid,
            cert.role,
            now,
            now + life,
        );
        tracing::info!(ring = %name, jid = %cert.jid, "member certificate renewed");
        Ok(fresh)
    }

    /// Our renewed certificate: kept, and shown at once on every link of the ring.
    pub(super) fn set_cert(&mut self, name: &str, cert: MemberCert) {
        let Some(r) = self.ring_index(name) else {
            return;
        };
        let Some(o) = &mut self.rings[r].owned else {
            return;
        };
        o.cert = cert;
        let ids: Vec<u64> = self
            .links
            .iter()
            .filter(|(_, l)| l.ring == r)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.send_hello(id);
        }
    }

    /// `chamber ring revoke NAME JID`: signs a revocation (owner or admin only), applies it,
    /// broadcasts it and stores it in the DHT.
    pub(super) fn revoke(&mut self, name: &str, jid: &str) -> Result<String, String> {
        let r = self
            .ring_index(name)
            .ok_or_else(|| format!("this node is not in a ring named {name:?}"))?;
        let owned = self.rings[r].owned.clone().ok_or_else(|| {
            format!("ring {name:?} has no owner: nobody can be put out of it (make an owned ring with `chamber ring create NAME --owned`)")
        })?;
        let me = self.secret.public().identity_bytes();
        let issuer_cert = if me == owned.owner {
            None
        } else if owned.cert.role == Role::Admin {
            Some(owned.cert.clone())
        } else {
            return Err(format!(
                "only the owner or an admin of ring {name:?} can revoke members"
            ));
        };
        let bare = jid.split('/').next().unwrap_or(jid);
        // The member's key, when one of its links shows it; the JID alone voids its
        // certificates either way.
        let subject = self
            .links
            .values()
            .filter(|l| l.ring == r)
            .find(|l| {
                l.cert
                    .as_ref()
                    .is_some_and(|c| c.jid.eq_ignore_ascii_case(bare))
            })
            .map_or([0; 32], |l| l.identity);
        let rv = Revocation::issue(
            &self.secret,
            issuer_cert,
            self.rings[r].id,
            subject,
            bare,
            unix_ms(),
        );
        let bytes = rv.encode();
        let mut cast = REVOKE.to_vec();
        cast.extend_from_slice(&bytes);
        let now = self.now();
        let me_addr: RingAddress = self.rings[r].me();
        self.rings[r].core.broadcast(now, me_addr, cast);
        self.drain(r);
        self.publish_revocation(r, bytes.clone());
        self.revocation_in(r, &bytes);
        Ok(format!(
            "{bare} is revoked from ring {name}; its links close within seconds everywhere"
        ))
    }
}
