//! A node's keys: Ed25519 identity (signs everything the node says about itself) and X25519 Noise
//! static key (authenticates its links), with the fingerprint and overlay address derived from the
//! identity key.
//!
//! Read first: RFC 8032 (Ed25519), RFC 7748 (X25519), and Brunet's `AHAddress` (160-bit ring
//! address whose lowest bit is the address class; class 0 = even = a structured-ring address).
//!
//! Signatures are domain-separated: the signed bytes always start with a [`SigContext`] prefix, so
//! a signature made for one payload kind never verifies as another.

use core::fmt;
use core::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey as X25519Public, SharedSecret, StaticSecret};
use zeroize::Zeroizing;

use crate::Error;

/// Domain prefix hashed before the identity key to derive the overlay address.
const ADDRESS_DOMAIN: &[u8] = b"chamber/overlay-address/v1\0";

/// What a signature is about; its prefix goes in front of the signed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigContext {
    /// A ring announce in presence ([`crate::announce`]).
    Announce,
    /// A node record ([`crate::record`]).
    Record,
    /// A ring invite ([`crate::invite`]).
    Invite,
    /// A node's keys, answered to a friend's query ([`crate::node_keys`]).
    NodeKeys,
    /// A broadcast on the ring (the daemon's services).
    Broadcast,
    /// A value written to the ring's DHT (the daemon's services).
    DhtValue,
    /// A member certificate of an owned ring ([`crate::cert`]).
    Cert,
    /// A revocation in an owned ring ([`crate::cert`]).
    Revocation,
}

impl SigContext {
    /// The bytes prepended to the message before signing; NUL-terminated so no prefix is a
    /// prefix of another.
    pub fn prefix(self) -> &'static [u8] {
        match self {
            SigContext::Announce => b"chamber/sig/announce/v1\0",
            SigContext::Record => b"chamber/sig/record/v1\0",
            SigContext::Invite => b"chamber/sig/invite/v1\0",
            SigContext::NodeKeys => b"chamber/sig/node-keys/v1\0",
            SigContext::Broadcast => b"chamber/sig/broadcast/v1\0",
            SigContext::DhtValue => b"chamber/sig/dht-value/v1\0",
            SigContext::Cert => b"chamber/sig/cert/v1\0",
            SigContext::Revocation => b"chamber/sig/revocation/v1\0",
        }
    }
}

/// SHA-256 of the Ed25519 identity key: what users compare to check a friend's key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Lower-case hex without separators, for wire formats.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Shown in groups of four hex digits, for people to read aloud.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pair) in self.0.chunks(2).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{:02x}{:02x}", pair[0], pair[1])?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// Accepts 64 hex digits, optionally split by spaces or colons (as users paste them).
impl FromStr for Fingerprint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        if s.len() > 128 {
            return Err(Error::InvalidValue {
                field: "fingerprint",
                reason: "too long",
            });
        }
        let digits: String = s.chars().filter(|c| !matches!(c, ' ' | ':')).collect();
        crate::xml::hex_array("fingerprint", &digits).map(Fingerprint)
    }
}

/// A 160-bit position on the ring, derived from an identity key (see [`PublicKeys::overlay_address`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OverlayAddress(pub [u8; 20]);

impl OverlayAddress {
    /// The big-endian bytes, as Brunet orders them.
    pub fn to_bytes(self) -> [u8; 20] {
        self.0
    }
}

impl From<OverlayAddress> for [u8; 20] {
    fn from(a: OverlayAddress) -> [u8; 20] {
        a.0
    }
}

impl fmt::Display for OverlayAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for OverlayAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OverlayAddress({self})")
    }
}

impl FromStr for OverlayAddress {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        crate::xml::hex_array("overlay address", s).map(OverlayAddress)
    }
}

/// The public half of a node's identity.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKeys {
    identity: VerifyingKey,
    noise: X25519Public,
}

impl PublicKeys {
    /// Builds the pair from wire bytes, refusing keys no honest node would have: an Ed25519 key
    /// that is not a valid point or has small order, and an X25519 key of small order (whose
    /// Diffie-Hellman output is predictable).
    pub fn from_bytes(identity: &[u8; 32], noise: &[u8; 32]) -> Result<Self, Error> {
        let identity = VerifyingKey::from_bytes(identity).map_err(|_| Error::InvalidValue {
            field: "identity key",
            reason: "not an Ed25519 point",
        })?;
        if identity.is_weak() {
            return Err(Error::InvalidValue {
                field: "identity key",
                reason: "small-order Ed25519 point",
            });
        }
        let noise = X25519Public::from(*noise);
        // A small-order point gives an all-zero shared secret with any scalar.
        let probe = StaticSecret::from([0x42; 32]);
        if !probe.diffie_hellman(&noise).was_contributory() {
            return Err(Error::InvalidValue {
                field: "noise key",
                reason: "small-order X25519 point",
            });
        }
        Ok(PublicKeys { identity, noise })
    }

    /// The Ed25519 identity key.
    pub fn identity(&self) -> &VerifyingKey {
        &self.identity
    }

    /// The Ed25519 identity key as bytes.
    pub fn identity_bytes(&self) -> [u8; 32] {
        self.identity.to_bytes()
    }

    /// The X25519 Noise static key.
    pub fn noise(&self) -> &X25519Public {
        &self.noise
    }

    /// The X25519 Noise static key as bytes.
    pub fn noise_bytes(&self) -> [u8; 32] {
        self.noise.to_bytes()
    }

    /// SHA-256 of the identity key.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(Sha256::digest(self.identity.as_bytes()).into())
    }

    /// The node's ring address: the first 20 bytes of SHA-256(domain ‖ identity key), lowest bit
    /// cleared so it is an even (class 0) Brunet address. Only the holder of the identity key can
    /// sign records for it, so nobody can take over another node's position.
    pub fn overlay_address(&self) -> OverlayAddress {
        address_of_identity(self.identity.as_bytes())
    }

    /// Checks a signature made with [`NodeSecret::sign`] under the same context; strict
    /// verification (no malleable or small-order signatures).
    pub fn verify(&self, context: SigContext, msg: &[u8], sig: &Signature) -> Result<(), Error> {
        self.identity
            .verify_strict(&signed_bytes(context, msg), sig)
            .map_err(|_| Error::BadSignature)
    }
}

/// The overlay address of the holder of the Ed25519 `identity` key (see
/// [`PublicKeys::overlay_address`]).
pub fn address_of_identity(identity: &[u8; 32]) -> OverlayAddress {
    let mut h = Sha256::new();
    h.update(ADDRESS_DOMAIN);
    h.update(identity);
    let digest = h.finalize();
    let mut a = [0u8; 20];
    a.copy_from_slice(&digest[..20]);
    a[19] &= !1;
    OverlayAddress(a)
}

/// Checks a detached signature (as [`NodeSecret::sign`] makes, in its 64-byte form) by the
/// holder of the Ed25519 `identity` key, and returns that holder's overlay address: what a
/// ring member needs to trust a broadcast or a DHT value that carries its writer's key.
pub fn verify_by_identity(
    identity: &[u8; 32],
    context: SigContext,
    msg: &[u8],
    sig: &[u8; 64],
) -> Result<OverlayAddress, Error> {
    let key = VerifyingKey::from_bytes(identity).map_err(|_| Error::BadSignature)?;
    if key.is_weak() {
        return Err(Error::BadSignature);
    }
    key.verify_strict(&signed_bytes(context, msg), &Signature::from_bytes(sig))
        .map_err(|_| Error::BadSignature)?;
    Ok(address_of_identity(identity))
}

impl fmt::Debug for PublicKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKeys")
            .field("identity", &hex::encode(self.identity.as_bytes()))
            .field("noise", &hex::encode(self.noise.as_bytes()))
            .finish()
    }
}

fn signed_bytes(context: SigContext, msg: &[u8]) -> Vec<u8> {
    let prefix = context.prefix();
    let mut v = Vec::with_capacity(prefix.len() + msg.len());
    v.extend_from_slice(prefix);
    v.extend_from_slice(msg);
    v
}

/// A node's two secret keys. Both are wiped from memory when dropped.
pub struct NodeSecret {
    signing: SigningKey,
    noise: StaticSecret,
}

impl NodeSecret {
    /// Draws fresh keys from a cryptographic RNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let signing = SigningKey::generate(rng);
        let noise = StaticSecret::random_from_rng(rng);
        NodeSecret { signing, noise }
    }

    /// Restores keys saved with [`NodeSecret::to_bytes`]: Ed25519 seed ‖ X25519 scalar.
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        let mut scalar = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&bytes[..32]);
        scalar.copy_from_slice(&bytes[32..]);
        NodeSecret {
            signing: SigningKey::from_bytes(&seed),
            noise: StaticSecret::from(*scalar),
        }
    }

    /// The 64 secret bytes for the keystore, wiped when the returned value is dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 64]> {
        let mut out = Zeroizing::new([0u8; 64]);
        out[..32].copy_from_slice(self.signing.as_bytes());
        out[32..].copy_from_slice(self.noise.as_bytes());
        out
    }

    /// The public keys.
    pub fn public(&self) -> PublicKeys {
        PublicKeys {
            identity: self.signing.verifying_key(),
            noise: X25519Public::from(&self.noise),
        }
    }

    /// Signs `msg` under `context` with the identity key.
    pub fn sign(&self, context: SigContext, msg: &[u8]) -> Signature {
        self.signing.sign(&signed_bytes(context, msg))
    }

    /// The X25519 scalar for the Noise handshake (snow takes raw bytes).
    pub fn noise_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.noise.to_bytes())
    }

    /// Diffie-Hellman with the Noise static key, for [`crate::invite`].
    pub(crate) fn noise_dh(&self, peer: &X25519Public) -> SharedSecret {
        self.noise.diffie_hellman(peer)
    }
}

/// Shows the public keys only.
impl fmt::Debug for NodeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeSecret")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// A deterministic node for tests.
    pub(crate) fn node(seed: u64) -> NodeSecret {
        NodeSecret::generate(&mut StdRng::seed_from_u64(seed))
    }

    #[test]
    fn secret_bytes_round_trip() {
        let a = node(1);
        let b = NodeSecret::from_bytes(&a.to_bytes());
        assert_eq!(a.public(), b.public());
        assert_ne!(node(2).public(), a.public());
    }

    #[test]
    fn public_bytes_round_trip() {
        let p = node(1).public();
        let q = PublicKeys::from_bytes(&p.identity_bytes(), &p.noise_bytes()).unwrap();
        assert_eq!(p, q);
    }

    #[test]
    fn address_is_even_and_key_bound() {
        for seed in 0..16 {
            let a = node(seed).public().overlay_address();
            assert_eq!(a.0[19] & 1, 0);
        }
        assert_ne!(
            node(1).public().overlay_address(),
            node(2).public().overlay_address()
        );
        // Not just a truncated fingerprint: the address hash is domain-separated.
        let p = node(1).public();
        assert_ne!(p.overlay_address().0[..19], p.fingerprint().0[..19]);
    }

    #[test]
    fn fingerprint_text_forms() {
        let fp = node(3).public().fingerprint();
        let shown = fp.to_string();
        assert_eq!(shown.len(), 64 + 15);
        assert_eq!(shown.split(' ').count(), 16);
        assert_eq!(shown.parse::<Fingerprint>(), Ok(fp));
        assert_eq!(fp.to_hex().parse::<Fingerprint>(), Ok(fp));
        assert!("abcd".parse::<Fingerprint>().is_err());
    }

    #[test]
    fn address_text_form() {
        let a = node(3).public().overlay_address();
        assert_eq!(a.to_string().parse::<OverlayAddress>(), Ok(a));
    }

    #[test]
    fn signatures_are_domain_separated() {
        let n = node(4);
        let sig = n.sign(SigContext::Announce, b"hello");
        let p = n.public();
        assert_eq!(p.verify(SigContext::Announce, b"hello", &sig), Ok(()));
        assert_eq!(
            p.verify(SigContext::Record, b"hello", &sig),
            Err(Error::BadSignature)
        );
        assert_eq!(
            p.verify(SigContext::Announce, b"hellO", &sig),
            Err(Error::BadSignature)
        );
        assert_eq!(
            node(5)
                .public()
                .verify(SigContext::Announce, b"hello", &sig),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn weak_keys_are_refused() {
        let good = node(6).public();
        // The Ed25519 identity point (small order).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKeys::from_bytes(&identity, &good.noise_bytes()).is_err());
        // X25519 zero point.
        assert!(PublicKeys::from_bytes(&good.identity_bytes(), &[0; 32]).is_err());
    }

    #[test]
    fn debug_does_not_leak_secrets() {
        let n = node(7);
        let shown = format!("{n:?}");
        assert!(!shown.contains(&hex::encode(&n.to_bytes()[..32])));
        assert!(!shown.contains(&hex::encode(&n.to_bytes()[32..])));
    }
}
