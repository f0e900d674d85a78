//! The runtime's side of the services (`crate::services`): it carries their QUIC packets and
//! broadcasts over the ring, runs their DHT requests on the core, and tells them which rings
//! run. Everything signed or encrypted is done by the services; the runtime only carries.

use std::collections::HashMap;

use brunet_compat::address::Address as RingAddress;
use brunet_compat::ring::{DhtValidator, DhtValue, RequestId};
use tokio::sync::{mpsc, oneshot};
use xmpp_ext::keys::{SigContext, verify_by_identity};

use super::envelope::Envelope;
use super::task::Task;

/// Most QUIC packets waiting for the runtime task; beyond that they are dropped like a full
/// UDP socket buffer would, and QUIC's congestion control slows down.
pub const QUIC_QUEUE: usize = 4096;

/// What the runtime tells the services.
#[derive(Debug)]
pub enum Inbound {
    /// A ring runs (joined, or already running when the services attached).
    RingUp {
        /// The runtime's index for it.
        ring: usize,
        /// Its local name.
        name: String,
        /// Our address in it.
        address: RingAddress,
    },
    /// We left the ring.
    RingGone {
        /// Which.
        ring: usize,
    },
    /// A QUIC packet from `src`.
    Quic {
        /// Which ring.
        ring: usize,
        /// From whom (the ring's routing says; QUIC's TLS proves it).
        src: RingAddress,
        /// The packet.
        packet: Vec<u8>,
    },
    /// A broadcast reached us.
    Broadcast {
        /// Which ring.
        ring: usize,
        /// The originator the ring message names (the payload's signature proves it).
        src: RingAddress,
        /// Hops it took.
        hops: u16,
        /// The payload.
        data: Vec<u8>,
    },
}

/// A DHT request the services wait on.
pub(super) enum DhtWait {
    Put(oneshot::Sender<bool>),
    Get(oneshot::Sender<Option<Vec<DhtValue>>>),
    Remove(oneshot::Sender<bool>),
    /// The runtime's own read of an owned ring's revocations.
    Revocations,
    /// The runtime's own write; nobody waits.
    Ignored,
}

/// A DHT operation.
#[derive(Debug)]
pub enum DhtOp {
    /// Store `value` for `ttl_s` seconds; `sig` as [`SignedValues`] checks it.
    Put {
        /// The value.
        value: Vec<u8>,
        /// Signer's identity key ‖ Ed25519 signature.
        sig: Vec<u8>,
        /// Lifetime.
        ttl_s: u32,
        /// Stored or not.
        reply: oneshot::Sender<bool>,
    },
    /// Fetch the values.
    Get {
        /// `None` when no node answered.
        reply: oneshot::Sender<Option<Vec<DhtValue>>>,
    },
    /// Remove one value.
    Remove {
        /// The value.
        value: Vec<u8>,
        /// Found and removed.
        reply: oneshot::Sender<bool>,
    },
}

/// The ring key a DHT key name is stored under (names are hashed, never stored).
pub fn dht_key(name: &str) -> RingAddress {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"chamber/dht-key/v1\0");
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut a = [0u8; 20];
    a.copy_from_slice(&d[..20]);
    // An even (class 0) address, as the core stores keys; the signature covers this one.
    RingAddress::ah(a)
}

/// The core's `sig` field for `value` under `key`: `secret`'s identity key and signature.
pub fn sign_dht(secret: &xmpp_ext::NodeSecret, key: &RingAddress, value: &[u8]) -> Vec<u8> {
    let sig = secret.sign(SigContext::DhtValue, &dht_signed_bytes(key, value));
    let mut v = secret.public().identity_bytes().to_vec();
    v.extend_from_slice(&sig.to_bytes());
    v
}

/// The bytes a DHT value's signature covers: the key, then the value.
pub fn dht_signed_bytes(key: &RingAddress, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(20 + value.len());
    v.extend_from_slice(key.as_bytes());
    v.extend_from_slice(value);
    v
}

/// The DHT's write check on every replica: a value must carry its writer's identity key and
/// an Ed25519 signature over key and value, so nobody without a member's key can write, and
/// a reader learns who wrote each value.
#[derive(Clone, Copy, Debug, Default)]
pub struct SignedValues;

impl SignedValues {
    /// The writer's address when `sig` (identity key ‖ signature) vouches for `value` under
    /// `key`.
    pub fn writer(key: &RingAddress, value: &[u8], sig: &[u8]) -> Option<RingAddress> {
        let (id, s) = sig.split_at_checked(32)?;
        let id: [u8; 32] = id.try_into().ok()?;
        let s: [u8; 64] = s.try_into().ok()?;
        let a = verify_by_identity(&id, SigContext::DhtValue, &dht_signed_bytes(key, value), &s)
            .ok()?;
        Some(RingAddress::from_bytes(a.to_bytes()))
    }
}

impl DhtValidator for SignedValues {
    fn verify(&self, key: &RingAddress, value: &[u8], sig: &[u8]) -> bool {
        Self::writer(key, value, sig).is_some()
    }
}

impl Task {
    /// The services attached: they hear of every ring running now and later.
    pub(super) fn attach_services(&mut self, tx: mpsc::Sender<Inbound>) {
        for (r, ring) in self.rings.iter().enumerate() {
            if !ring.left {
                let _ = tx.try_send(Inbound::RingUp {
                    ring: r,
                    name: ring.name.clone(),
                    address: ring.me(),
                });
            }
        }
        self.services = Some(tx);
    }

    /// Tells the services, dropping the message if they are too far behind.
    pub(super) fn tell_services(&mut self, m: Inbound) {
        if let Some(tx) = &self.services
            && tx.try_send(m).is_err()
        {
            self.app_dropped += 1;
        }
    }

    /// A QUIC packet out to `to` on ring `r`.
    pub(super) fn quic_out(&mut self, r: usize, to: RingAddress, packet: Vec<u8>) {
        if self.rings.get(r).is_some_and(|ring| !ring.left) {
            self.send_envelope(r, to, &Envelope::Quic(packet));
        }
    }

    pub(super) fn broadcast(&mut self, r: usize, end: Option<RingAddress>, data: Vec<u8>) {
        let now = self.now();
        let Some(ring) = self.rings.get_mut(r).filter(|ring| !ring.left) else {
            return;
        };
        let end = end.unwrap_or(ring.me());
        ring.core.broadcast(now, end, data);
        self.drain(r);
    }

    pub(super) fn dht(&mut self, r: usize, key: RingAddress, op: DhtOp) {
        let now = self.now();
        let Some(ring) = self.rings.get_mut(r).filter(|ring| !ring.left) else {
            return;
        };
        let (id, wait) = match op {
            DhtOp::Put {
                value,
                sig,
                ttl_s,
                reply,
            } => (
                ring.core.dht_put(now, key, value, ttl_s, sig),
                DhtWait::Put(reply),
            ),
            DhtOp::Get { reply } => (ring.core.dht_get(now, key), DhtWait::Get(reply)),
            DhtOp::Remove { value, reply } => (
                ring.core.dht_remove(now, key, value),
                DhtWait::Remove(reply),
            ),
        };
        self.dht_waits.insert((r, id), wait);
        self.drain(r);
    }

    pub(super) fn dht_done(&mut self, r: usize, id: RequestId, done: DhtDone) {
        match (self.dht_waits.remove(&(r, id)), done) {
            (Some(DhtWait::Put(tx)), DhtDone::Ok(ok)) => {
                let _ = tx.send(ok);
            }
            (Some(DhtWait::Remove(tx)), DhtDone::Ok(ok)) => {
                let _ = tx.send(ok);
            }
            (Some(DhtWait::Get(tx)), DhtDone::Values(v)) => {
                let _ = tx.send(v);
            }
            (Some(DhtWait::Revocations), DhtDone::Values(Some(values))) => {
                for v in values {
                    self.revocation_in(r, &v.value);
                }
            }
            _ => {}
        }
    }

    /// Friends' bare JIDs and their addresses in ring `r` (for name resolution).
    pub(super) fn friends_of(&self, r: usize) -> Vec<(String, RingAddress)> {
        let Some(ring) = self.rings.get(r).filter(|ring| !ring.left) else {
            return Vec::new();
        };
        let mut v: Vec<(String, RingAddress)> = ring
            .friends
            .iter()
            .flat_map(|(a, routes)| routes.iter().map(|f| (f.jid.to_bare().to_string(), *a)))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// How a DHT request ended.
pub(super) enum DhtDone {
    Ok(bool),
    Values(Option<Vec<DhtValue>>),
}

/// The DHT waits of a task.
pub(super) type DhtWaits = HashMap<(usize, RequestId), DhtWait>;
