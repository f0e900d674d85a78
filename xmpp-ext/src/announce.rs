//! The ring announce: a presence payload saying "this resource runs chamber in ring R, at overlay
//! address A, with keys K".
//!
//! Read first: RFC 6121 §4 (presence goes to the roster only, which is the point: only friends see
//! it) and DESIGN.md §2 (rendezvous).
//!
//! ```xml
//! <announce xmlns='urn:x-chamber:0' v='1' ring='<64 hex>' addr='<40 hex>' fp='<64 hex>'
//!           ik='<Ed25519 key, base64>' nk='<X25519 key, base64>' sig='<Ed25519 signature, base64>'/>
//! ```
//!
//! The signature covers every field plus the sender's bare JID, so a friend who received an
//! announce cannot re-broadcast it from their own account and pass for us. A node in several
//! rings puts one announce per ring in its presence.

use ed25519_dalek::Signature;
use jid::BareJid;
use minidom::Element;

use crate::keys::{Fingerprint, NodeSecret, OverlayAddress, PublicKeys, SigContext};
use crate::xml::{self, Limits};
use crate::{Error, NS_CHAMBER, PROTOCOL_VERSION, RingId};

/// Element name of the announce.
pub const ELEMENT: &str = "announce";

/// Bounds for [`Announce::from_xml`]: one empty element with fixed-size attributes (~450 bytes).
pub const LIMITS: Limits = Limits {
    max_bytes: 1024,
    max_elements: 1,
};

/// A parsed or freshly signed ring announce. A parsed one is unverified until
/// [`Announce::verify`] succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    ring: RingId,
    address: OverlayAddress,
    fingerprint: Fingerprint,
    keys: PublicKeys,
    signature: Signature,
}

impl Announce {
    /// Signs an announce for `ring`, to be sent in presence from an account whose bare JID is
    /// `bare_jid`.
    pub fn new(secret: &NodeSecret, ring: RingId, bare_jid: &BareJid) -> Self {
        let keys = secret.public();
        let mut a = Announce {
            ring,
            address: keys.overlay_address(),
            fingerprint: keys.fingerprint(),
            keys,
            signature: Signature::from_bytes(&[0; 64]),
        };
        a.signature = secret.sign(SigContext::Announce, &a.signed_bytes(bare_jid));
        a
    }

    /// The ring this node announces membership of.
    pub fn ring(&self) -> RingId {
        self.ring
    }

    /// The overlay address claimed (checked against the key by [`Announce::verify`]).
    pub fn address(&self) -> OverlayAddress {
        self.address
    }

    /// The fingerprint claimed (checked against the key by [`Announce::verify`]).
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The node's public keys.
    pub fn keys(&self) -> &PublicKeys {
        &self.keys
    }

    /// The protocol version; parsing refuses any other, so it is always [`PROTOCOL_VERSION`].
    pub fn version(&self) -> u8 {
        PROTOCOL_VERSION
    }

    /// Checks that the address and fingerprint belong to the key and that the key signed this
    /// announce for the JID it arrived from (the stanza's `from`, reduced to its bare JID).
    pub fn verify(&self, from_bare_jid: &BareJid) -> Result<(), Error> {
        if self.address != self.keys.overlay_address() {
            return Err(Error::KeyMismatch {
                field: "overlay address",
            });
        }
        if self.fingerprint != self.keys.fingerprint() {
            return Err(Error::KeyMismatch {
                field: "fingerprint",
            });
        }
        self.keys.verify(
            SigContext::Announce,
            &self.signed_bytes(from_bare_jid),
            &self.signature,
        )
    }

    /// version ‖ ring ‖ address ‖ fingerprint ‖ identity key ‖ noise key ‖ len16(jid) ‖ jid.
    fn signed_bytes(&self, bare_jid: &BareJid) -> Vec<u8> {
        let jid = bare_jid.as_str().as_bytes();
        let mut v = Vec::with_capacity(1 + 32 + 20 + 32 + 64 + 2 + jid.len());
        v.push(PROTOCOL_VERSION);
        v.extend_from_slice(&self.ring.0);
        v.extend_from_slice(&self.address.0);
        v.extend_from_slice(&self.fingerprint.0);
        v.extend_from_slice(&self.keys.identity_bytes());
        v.extend_from_slice(&self.keys.noise_bytes());
        // A bare JID is at most 3 × 1023 bytes (RFC 7622), so it fits in 16 bits.
        v.extend_from_slice(&(jid.len() as u16).to_be_bytes());
        v.extend_from_slice(jid);
        v
    }

    /// Parses an `<announce/>` taken from a presence stanza.
    pub fn from_element(element: &Element) -> Result<Self, Error> {
        xml::expect(element, ELEMENT, NS_CHAMBER)?;
        xml::check_elements(element, LIMITS.max_elements)?;
        xml::check_version(element, ELEMENT)?;
        let attr = |name| xml::required(element, ELEMENT, name);
        let ring = attr("ring")?.parse()?;
        let address = attr("addr")?.parse()?;
        let fingerprint = xml::hex_array("fingerprint", attr("fp")?).map(Fingerprint)?;
        let identity = xml::b64_array("identity key", attr("ik")?)?;
        let noise = xml::b64_array("noise key", attr("nk")?)?;
        let keys = PublicKeys::from_bytes(&identity, &noise)?;
        let signature = Signature::from_bytes(&xml::b64_array("signature", attr("sig")?)?);
        Ok(Announce {
            ring,
            address,
            fingerprint,
            keys,
            signature,
        })
    }

    /// Parses an announce from XML bytes within [`LIMITS`].
    pub fn from_xml(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_element(&xml::parse(bytes, LIMITS)?)
    }

    /// The `<announce/>` element to put in presence.
    pub fn to_element(&self) -> Element {
        Element::builder(ELEMENT, NS_CHAMBER)
            .attr(xml::name("v"), PROTOCOL_VERSION.to_string())
            .attr(xml::name("ring"), self.ring.to_hex())
            .attr(xml::name("addr"), self.address.to_string())
            .attr(xml::name("fp"), self.fingerprint.to_hex())
            .attr(xml::name("ik"), xml::b64(&self.keys.identity_bytes()))
            .attr(xml::name("nk"), xml::b64(&self.keys.noise_bytes()))
            .attr(xml::name("sig"), xml::b64(&self.signature.to_bytes()))
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::node;

    fn jid(s: &str) -> BareJid {
        s.parse().unwrap()
    }

    fn sample() -> (Announce, BareJid) {
        let alice = jid("alice@example.org");
        (
            Announce::new(&node(1), RingId::derive(b"ring"), &alice),
            alice,
        )
    }

    #[test]
    fn round_trip_and_verify() {
        let (a, alice) = sample();
        let text = xml::to_string(&a.to_element()).unwrap();
        assert!(text.len() < LIMITS.max_bytes);
        let b = Announce::from_xml(text.as_bytes()).unwrap();
        assert_eq!(a, b);
        assert_eq!(b.verify(&alice), Ok(()));
        assert_eq!(b.ring(), RingId::derive(b"ring"));
        assert_eq!(b.address(), node(1).public().overlay_address());
    }

    #[test]
    fn replay_under_another_jid_fails() {
        let (a, _) = sample();
        assert_eq!(
            a.verify(&jid("mallory@example.org")),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn tampered_fields_fail() {
        let (a, alice) = sample();
        let mut other_ring = a.clone();
        other_ring.ring = RingId::derive(b"other");
        assert_eq!(other_ring.verify(&alice), Err(Error::BadSignature));

        let mut wrong_addr = a.clone();
        wrong_addr.address.0[0] ^= 0x80;
        assert!(matches!(
            wrong_addr.verify(&alice),
            Err(Error::KeyMismatch { .. })
        ));

        let mut wrong_fp = a.clone();
        wrong_fp.fingerprint.0[31] ^= 1;
        assert!(matches!(
            wrong_fp.verify(&alice),
            Err(Error::KeyMismatch { .. })
        ));

        // Someone else's keys with the original signature.
        let mut swapped = a.clone();
        swapped.keys = node(2).public();
        swapped.address = swapped.keys.overlay_address();
        swapped.fingerprint = swapped.keys.fingerprint();
        assert_eq!(swapped.verify(&alice), Err(Error::BadSignature));
    }

    #[test]
    fn unknown_version_is_rejected() {
        let (a, _) = sample();
        let text = xml::to_string(&a.to_element())
            .unwrap()
            .replace("v='1'", "v='2'");
        assert!(text.contains("v='2'"), "{text}");
        assert!(matches!(
            Announce::from_xml(text.as_bytes()),
            Err(Error::UnknownVersion { .. })
        ));
    }

    #[test]
    fn malformed_input_is_rejected() {
        let (a, _) = sample();
        let good = xml::to_string(&a.to_element()).unwrap();
        // Wrong namespace.
        let wrong_ns = good.replace(NS_CHAMBER, "urn:x-other");
        assert!(matches!(
            Announce::from_xml(wrong_ns.as_bytes()),
            Err(Error::UnexpectedElement { .. })
        ));
        // Missing signature.
        let mut e = a.to_element();
        e.attrs_mut().remove(&minidom::rxml::Namespace::NONE, "sig");
        assert!(matches!(
            Announce::from_element(&e),
            Err(Error::MissingAttribute {
                attribute: "sig",
                ..
            })
        ));
        // A child element.
        let mut e = a.to_element();
        e.append_child(Element::bare("x", NS_CHAMBER));
        assert!(matches!(
            Announce::from_element(&e),
            Err(Error::TooMany { .. })
        ));
        // Oversized.
        let big = good.replace("/>", &format!(" pad='{}'/>", "x".repeat(1024)));
        assert!(matches!(
            Announce::from_xml(big.as_bytes()),
            Err(Error::TooLarge { .. })
        ));
        // Short base64 key.
        let short = good.replace(&xml::b64(&a.keys.noise_bytes()), "AAAA");
        assert!(matches!(
            Announce::from_xml(short.as_bytes()),
            Err(Error::InvalidValue { .. })
        ));
    }
}
