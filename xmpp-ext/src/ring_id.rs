//! Ring secrets and ring ids.
//!
//! A ring is named by people ("climbing club") but identified on the wire by [`RingId`], a hash
//! of the ring's secret. Presence goes to every roster contact, including those in no ring or in
//! other rings, so the id must reveal neither the name nor the secret; knowing the id does not
//! let anyone derive the secret an invite carries.

use core::fmt;
use core::str::FromStr;

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;

/// Domain prefix for [`RingId::derive`].
const RING_ID_DOMAIN: &[u8] = b"chamber/ring-id/v1\0";
/// Domain prefix for [`RingSecret::link_psk`].
const LINK_PSK_DOMAIN: &[u8] = b"chamber/ring-link-psk/v1\0";
/// Domain prefix for [`RingSecret::knock_key`].
const KNOCK_DOMAIN: &[u8] = b"chamber/ring-knock/v1\0";
/// Domain prefix for [`RingSecret::of_friends_ring`].
const FRIENDS_DOMAIN: &[u8] = b"chamber/friends-ring/v1\0";

/// The secret shared by a ring's members, handed out in invites. Wiped when dropped.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct RingSecret([u8; 32]);

impl RingSecret {
    /// A fresh secret for a new ring.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        RingSecret(b)
    }

    /// Restores a stored secret.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        RingSecret(bytes)
    }

    /// The "secret" of a friends ring named `name`: derived from the name alone, so everyone
    /// who makes a friends ring of that name is in the same ring. It keeps nobody out (the
    /// name is no secret); a friends ring admits links by friendship instead (pinned roster
    /// keys, and friends' vouchers where friends of friends are allowed).
    pub fn of_friends_ring(name: &str) -> Self {
        let mut h = Sha256::new();
        h.update(FRIENDS_DOMAIN);
        h.update(name.as_bytes());
        RingSecret(h.finalize().into())
    }

    /// The secret bytes, for the keystore and for invites.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The public id of the ring this secret belongs to.
    pub fn ring_id(&self) -> RingId {
        RingId::derive(&self.0)
    }

    /// The pre-shared key of the ring's Noise handshakes: proves membership on every link,
    /// and is unrelated to the public [`RingId`] (another domain).
    pub fn link_psk(&self) -> zeroize::Zeroizing<[u8; 32]> {
        let mut h = Sha256::new();
        h.update(LINK_PSK_DOMAIN);
        h.update(self.0);
        zeroize::Zeroizing::new(h.finalize().into())
    }

    /// The key of the ring's warm-restart knocks (members' datagrams to each other's cached
    /// addresses before any link or XMPP is up): another domain again.
    pub fn knock_key(&self) -> zeroize::Zeroizing<[u8; 32]> {
        let mut h = Sha256::new();
        h.update(KNOCK_DOMAIN);
        h.update(self.0);
        zeroize::Zeroizing::new(h.finalize().into())
    }
}

/// Never prints the secret.
impl fmt::Debug for RingSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RingSecret(for {})", self.ring_id())
    }
}

/// The public identifier of a ring: SHA-256(domain ‖ ring secret material).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RingId(pub [u8; 32]);

impl RingId {
    /// Derives the id from any ring secret material (normally a [`RingSecret`]).
    pub fn derive(secret_material: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(RING_ID_DOMAIN);
        h.update(secret_material);
        RingId(h.finalize().into())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for RingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for RingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RingId({self})")
    }
}

/// Parses 64 hex digits.
impl FromStr for RingId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        crate::xml::hex_array("ring id", s).map(RingId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn id_is_a_domain_separated_hash() {
        let s = RingSecret::from_bytes([7; 32]);
        assert_eq!(s.ring_id(), RingId::derive(&[7; 32]));
        let plain: [u8; 32] = Sha256::digest([7u8; 32]).into();
        assert_ne!(s.ring_id().0, plain);
        assert_ne!(
            RingId::derive(b"a"),
            RingId::derive(b"b"),
            "different secrets, different rings"
        );
    }

    #[test]
    fn hex_round_trip() {
        let id = RingSecret::generate(&mut StdRng::seed_from_u64(1)).ring_id();
        assert_eq!(id.to_string().len(), 64);
        assert_eq!(id.to_string().parse::<RingId>(), Ok(id));
        assert!("zz".parse::<RingId>().is_err());
        assert!(id.to_string()[..62].parse::<RingId>().is_err());
    }

    #[test]
    fn debug_hides_secret() {
        let s = RingSecret::from_bytes([0xab; 32]);
        assert!(!format!("{s:?}").contains(&hex::encode([0xab; 32])));
    }
}
