//! The node record: a node's signed statement of who it is on a ring (address, keys, ring,
//! capabilities), carried in Jingle descriptions over XMPP and in ring messages (CTM, DHT).
//!
//! Read first: DESIGN.md §3 and §5. Two encodings of the same content:
//!
//! ```xml
//! <record xmlns='urn:x-chamber:0' v='1' addr='<40 hex>' ring='<64 hex>' caps='<u32>' seq='<u64>'
//!         ik='<base64>' nk='<base64>' sig='<base64>'/>
//! ```
//!
//! and a fixed 193-byte binary form for the ring (big-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version ([`PROTOCOL_VERSION`]) |
//! | 1 | 20 | overlay address |
//! | 21 | 32 | Ed25519 identity key |
//! | 53 | 32 | X25519 Noise key |
//! | 85 | 32 | ring id |
//! | 117 | 4 | capabilities |
//! | 121 | 8 | sequence |
//! | 129 | 64 | Ed25519 signature over bytes 0..129 |
//!
//! The signature always covers the binary form, so a record converted between the two encodings
//! keeps its signature.

use ed25519_dalek::Signature;
use minidom::Element;

use crate::keys::{NodeSecret, OverlayAddress, PublicKeys, SigContext};
use crate::xml::{self, Limits};
use crate::{Error, NS_CHAMBER, PROTOCOL_VERSION, RingId};

/// Element name of the record.
pub const ELEMENT: &str = "record";

/// Length of the binary form.
pub const BINARY_LEN: usize = 193;

/// Length of the signed prefix of the binary form.
const SIGNED_LEN: usize = 129;

/// Bounds for [`NodeRecord::from_xml`]: one empty element (~480 bytes).
pub const LIMITS: Limits = Limits {
    max_bytes: 1024,
    max_elements: 1,
};

bitflags::bitflags! {
    /// What a node offers the ring beyond routing. Unknown bits are kept (they are signed, and a
    /// newer peer may set them).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Capabilities: u32 {
        /// Forwards two-hop relay traffic for peers that cannot link directly.
        const RELAY = 1 << 0;
        /// Stores and replicates DHT entries.
        const DHT = 1 << 1;
        /// Accepts QUIC streams (file transfer).
        const STREAMS = 1 << 2;
        /// Routes VPN (TUN) packets.
        const VPN = 1 << 3;
    }
}

/// A node record, signed by the node's identity key. A parsed one is unverified until
/// [`NodeRecord::verify`] succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    address: OverlayAddress,
    keys: PublicKeys,
    ring: RingId,
    capabilities: Capabilities,
    sequence: u64,
    signature: Signature,
}

impl NodeRecord {
    /// Signs a record. `sequence` orders a node's records (use Unix milliseconds at signing, so a
    /// restart never goes backwards): a receiver keeps the highest it has verified.
    pub fn new(
        secret: &NodeSecret,
        ring: RingId,
        capabilities: Capabilities,
        sequence: u64,
    ) -> Self {
        let keys = secret.public();
        let mut r = NodeRecord {
            address: keys.overlay_address(),
            keys,
            ring,
            capabilities,
            sequence,
            signature: Signature::from_bytes(&[0; 64]),
        };
        let bytes = r.to_bytes();
        r.signature = secret.sign(SigContext::Record, &bytes[..SIGNED_LEN]);
        r
    }

    /// The overlay address claimed (checked against the key by [`NodeRecord::verify`]).
    pub fn address(&self) -> OverlayAddress {
        self.address
    }

    /// The node's public keys; a link's Noise peer must present [`PublicKeys::noise`].
    pub fn keys(&self) -> &PublicKeys {
        &self.keys
    }

    /// The ring the record is for.
    pub fn ring(&self) -> RingId {
        self.ring
    }

    /// The capability flags.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// The sequence number (higher is newer).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Checks that the address belongs to the key and the key signed the record.
    pub fn verify(&self) -> Result<(), Error> {
        if self.address != self.keys.overlay_address() {
            return Err(Error::KeyMismatch {
                field: "overlay address",
            });
        }
        let bytes = self.to_bytes();
        self.keys
            .verify(SigContext::Record, &bytes[..SIGNED_LEN], &self.signature)
    }

    /// The binary form.
    pub fn to_bytes(&self) -> [u8; BINARY_LEN] {
        let mut b = [0u8; BINARY_LEN];
        b[0] = PROTOCOL_VERSION;
        b[1..21].copy_from_slice(&self.address.0);
        b[21..53].copy_from_slice(&self.keys.identity_bytes());
        b[53..85].copy_from_slice(&self.keys.noise_bytes());
        b[85..117].copy_from_slice(&self.ring.0);
        b[117..121].copy_from_slice(&self.capabilities.bits().to_be_bytes());
        b[121..129].copy_from_slice(&self.sequence.to_be_bytes());
        b[129..].copy_from_slice(&self.signature.to_bytes());
        b
    }

    /// Parses the binary form; the input must be exactly [`BINARY_LEN`] bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        if b.is_empty() {
            return Err(Error::Truncated {
                needed: BINARY_LEN,
                got: 0,
            });
        }
        if b[0] != PROTOCOL_VERSION {
            return Err(Error::UnknownVersion {
                found: b[0].to_string(),
            });
        }
        let b: &[u8; BINARY_LEN] = match b.len() {
            BINARY_LEN => b.try_into().map_err(|_| Error::Inconsistent("length"))?,
            n if n < BINARY_LEN => {
                return Err(Error::Truncated {
                    needed: BINARY_LEN,
                    got: n,
                });
            }
            n => {
                return Err(Error::TrailingBytes {
                    extra: n - BINARY_LEN,
                });
            }
        };
        let array = |r: core::ops::Range<usize>| -> [u8; 32] {
            // Invariant: every range passed below is 32 bytes long and inside BINARY_LEN.
            b[r].try_into().expect("32-byte field")
        };
        let keys = PublicKeys::from_bytes(&array(21..53), &array(53..85))?;
        let mut address = [0u8; 20];
        address.copy_from_slice(&b[1..21]);
        let mut caps = [0u8; 4];
        caps.copy_from_slice(&b[117..121]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[121..129]);
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&b[129..]);
        Ok(NodeRecord {
            address: OverlayAddress(address),
            keys,
            ring: RingId(array(85..117)),
            capabilities: Capabilities::from_bits_retain(u32::from_be_bytes(caps)),
            sequence: u64::from_be_bytes(seq),
            signature: Signature::from_bytes(&sig),
        })
    }

    /// Parses a `<record/>` element.
    pub fn from_element(element: &Element) -> Result<Self, Error> {
        xml::expect(element, ELEMENT, NS_CHAMBER)?;
        xml::check_elements(element, LIMITS.max_elements)?;
        xml::check_version(element, ELEMENT)?;
        let attr = |name| xml::required(element, ELEMENT, name);
        let address = attr("addr")?.parse()?;
        let ring = attr("ring")?.parse()?;
        let capabilities = Capabilities::from_bits_retain(xml::decimal("caps", attr("caps")?)?);
        let sequence = xml::decimal("seq", attr("seq")?)?;
        let identity = xml::b64_array("identity key", attr("ik")?)?;
        let noise = xml::b64_array("noise key", attr("nk")?)?;
        let keys = PublicKeys::from_bytes(&identity, &noise)?;
        let signature = Signature::from_bytes(&xml::b64_array("signature", attr("sig")?)?);
        Ok(NodeRecord {
            address,
            keys,
            ring,
            capabilities,
            sequence,
            signature,
        })
    }

    /// Parses a record from XML bytes within [`LIMITS`].
    pub fn from_xml(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_element(&xml::parse(bytes, LIMITS)?)
    }

    /// The `<record/>` element.
    pub fn to_element(&self) -> Element {
        Element::builder(ELEMENT, NS_CHAMBER)
            .attr(xml::name("v"), PROTOCOL_VERSION.to_string())
            .attr(xml::name("addr"), self.address.to_string())
            .attr(xml::name("ring"), self.ring.to_hex())
            .attr(xml::name("caps"), self.capabilities.bits().to_string())
            .attr(xml::name("seq"), self.sequence.to_string())
            .attr(xml::name("ik"), xml::b64(&self.keys.identity_bytes()))
            .attr(xml::name("nk"), xml::b64(&self.keys.noise_bytes()))
            .attr(xml::name("sig"), xml::b64(&self.signature.to_bytes()))
            .build()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::tests::node;

    pub(crate) fn sample() -> NodeRecord {
        NodeRecord::new(
            &node(1),
            RingId::derive(b"ring"),
            Capabilities::RELAY | Capabilities::DHT,
            1_700_000_000_000,
        )
    }

    #[test]
    fn xml_round_trip() {
        let r = sample();
        let text = xml::to_string(&r.to_element()).unwrap();
        let back = NodeRecord::from_xml(text.as_bytes()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.verify(), Ok(()));
        assert_eq!(back.capabilities(), Capabilities::RELAY | Capabilities::DHT);
        assert_eq!(back.sequence(), 1_700_000_000_000);
    }

    #[test]
    fn binary_round_trip() {
        let r = sample();
        let b = r.to_bytes();
        assert_eq!(b.len(), BINARY_LEN);
        let back = NodeRecord::from_bytes(&b).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.verify(), Ok(()));
    }

    #[test]
    fn unknown_capabilities_survive_and_stay_signed() {
        let r = NodeRecord::new(
            &node(2),
            RingId::derive(b"r"),
            Capabilities::from_bits_retain(0x8000_0001),
            5,
        );
        let back = NodeRecord::from_bytes(&r.to_bytes()).unwrap();
        assert_eq!(back.capabilities().bits(), 0x8000_0001);
        assert_eq!(back.verify(), Ok(()));
        let mut flipped = r.to_bytes();
        flipped[117] ^= 0x80;
        assert_eq!(
            NodeRecord::from_bytes(&flipped).unwrap().verify(),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn every_signed_byte_matters() {
        let b = sample().to_bytes();
        // Skip byte 0 (version: refused at parse) and the key bytes (may not parse as a key).
        for i in (1..21).chain(85..SIGNED_LEN) {
            let mut t = b;
            t[i] ^= 0x01;
            let r = NodeRecord::from_bytes(&t).unwrap();
            assert!(r.verify().is_err(), "byte {i}");
        }
    }

    #[test]
    fn binary_rejects_bad_lengths_and_versions() {
        let b = sample().to_bytes();
        assert!(matches!(
            NodeRecord::from_bytes(&b[..100]),
            Err(Error::Truncated { got: 100, .. })
        ));
        assert!(matches!(
            NodeRecord::from_bytes(&[]),
            Err(Error::Truncated { got: 0, .. })
        ));
        let mut long = b.to_vec();
        long.push(0);
        assert!(matches!(
            NodeRecord::from_bytes(&long),
            Err(Error::TrailingBytes { extra: 1 })
        ));
        let mut v2 = b;
        v2[0] = 2;
        assert!(matches!(
            NodeRecord::from_bytes(&v2),
            Err(Error::UnknownVersion { .. })
        ));
    }

    #[test]
    fn address_not_from_key_is_refused() {
        let mut r = sample();
        r.address = node(9).public().overlay_address();
        assert!(matches!(r.verify(), Err(Error::KeyMismatch { .. })));
    }

    #[test]
    fn xml_rejects_malformed_fields() {
        let text = xml::to_string(&sample().to_element()).unwrap();
        for (from, to) in [
            ("seq='1700000000000'", "seq='-1'"),
            ("seq='1700000000000'", "seq='99999999999999999999'"),
            ("caps='3'", "caps='03'"),
            ("caps='3'", "caps='x'"),
            ("v='1'", "v='7'"),
        ] {
            assert!(text.contains(from), "{from} in {text}");
            let bad = text.replace(from, to);
            assert!(NodeRecord::from_xml(bad.as_bytes()).is_err(), "{to}");
        }
    }
}
