//! A node's keys on request: what an inviter needs to encrypt a ring invite to a friend whose
//! node is in no ring with it yet (so no announce of it has been seen).
//!
//! The inviter sends an IQ get to each of the friend's online full JIDs; a chamber node answers
//! roster friends only. The answer is signed by the identity key over the answering account's
//! bare JID, like an announce, so it cannot be replayed from another account, and it binds the
//! Noise key (the invite's recipient) to the identity key (what users compare).
//!
//! ```xml
//! <iq type='get' to='bob@example.net/chamber-1' id='k1'><keys xmlns='urn:x-chamber:0'/></iq>
//! <iq type='result' from='bob@example.net/chamber-1' id='k1'>
//!   <keys xmlns='urn:x-chamber:0' v='1' ik='<base64>' nk='<base64>' sig='<base64>'/>
//! </iq>
//! ```

use ed25519_dalek::Signature;
use jid::BareJid;
use minidom::Element;

use crate::keys::{NodeSecret, PublicKeys, SigContext};
use crate::xml::{self, Limits};
use crate::{Error, NS_CHAMBER, PROTOCOL_VERSION};

/// Element name of the query and of the answer.
pub const ELEMENT: &str = "keys";

/// Bounds for [`NodeKeys::from_xml`]: one empty element (~230 bytes).
pub const LIMITS: Limits = Limits {
    max_bytes: 512,
    max_elements: 1,
};

/// The query: an empty `<keys/>` (no version: it carries nothing to misread).
pub fn query() -> Element {
    Element::bare(ELEMENT, NS_CHAMBER)
}

/// Whether `e` is the query (an IQ get payload).
pub fn is_query(e: &Element) -> bool {
    e.is(ELEMENT, NS_CHAMBER)
}

/// A node's public keys, signed for the account that answers. A parsed one is unverified until
/// [`NodeKeys::verify`] succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeKeys {
    keys: PublicKeys,
    signature: Signature,
}

impl NodeKeys {
    /// Signs our keys for an answer sent from the account whose bare JID is `bare_jid`.
    pub fn new(secret: &NodeSecret, bare_jid: &BareJid) -> Self {
        let keys = secret.public();
        let signature = secret.sign(SigContext::NodeKeys, &signed_bytes(&keys, bare_jid));
        NodeKeys { keys, signature }
    }

    /// The keys (trust them only after [`NodeKeys::verify`]).
    pub fn keys(&self) -> &PublicKeys {
        &self.keys
    }

    /// Checks that the identity key signed these keys for the JID the answer came from.
    pub fn verify(&self, from_bare_jid: &BareJid) -> Result<(), Error> {
        self.keys.verify(
            SigContext::NodeKeys,
            &signed_bytes(&self.keys, from_bare_jid),
            &self.signature,
        )
    }

    /// Parses an answer's `<keys/>`.
    pub fn from_element(element: &Element) -> Result<Self, Error> {
        xml::expect(element, ELEMENT, NS_CHAMBER)?;
        xml::check_elements(element, LIMITS.max_elements)?;
        xml::check_version(element, ELEMENT)?;
        let attr = |name| xml::required(element, ELEMENT, name);
        let identity = xml::b64_array("identity key", attr("ik")?)?;
        let noise = xml::b64_array("noise key", attr("nk")?)?;
        let keys = PublicKeys::from_bytes(&identity, &noise)?;
        let signature = Signature::from_bytes(&xml::b64_array("signature", attr("sig")?)?);
        Ok(NodeKeys { keys, signature })
    }

    /// Parses an answer from XML bytes within [`LIMITS`].
    pub fn from_xml(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_element(&xml::parse(bytes, LIMITS)?)
    }

    /// The answer's `<keys/>` element.
    pub fn to_element(&self) -> Element {
        Element::builder(ELEMENT, NS_CHAMBER)
            .attr(xml::name("v"), PROTOCOL_VERSION.to_string())
            .attr(xml::name("ik"), xml::b64(&self.keys.identity_bytes()))
            .attr(xml::name("nk"), xml::b64(&self.keys.noise_bytes()))
            .attr(xml::name("sig"), xml::b64(&self.signature.to_bytes()))
            .build()
    }
}

/// version ‖ identity key ‖ noise key ‖ len16(jid) ‖ jid.
fn signed_bytes(keys: &PublicKeys, bare_jid: &BareJid) -> Vec<u8> {
    let jid = bare_jid.as_str().as_bytes();
    let mut v = Vec::with_capacity(1 + 64 + 2 + jid.len());
    v.push(PROTOCOL_VERSION);
    v.extend_from_slice(&keys.identity_bytes());
    v.extend_from_slice(&keys.noise_bytes());
    // A bare JID is at most 3 × 1023 bytes (RFC 7622), so it fits in 16 bits.
    v.extend_from_slice(&(jid.len() as u16).to_be_bytes());
    v.extend_from_slice(jid);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::node;

    fn jid(s: &str) -> BareJid {
        s.parse().unwrap()
    }

    #[test]
    fn round_trip_and_verify() {
        let bob = jid("bob@example.net");
        let k = NodeKeys::new(&node(2), &bob);
        let text = xml::to_string(&k.to_element()).unwrap();
        assert!(text.len() < LIMITS.max_bytes, "{}", text.len());
        let back = NodeKeys::from_xml(text.as_bytes()).unwrap();
        assert_eq!(back, k);
        assert_eq!(back.verify(&bob), Ok(()));
        assert_eq!(back.keys(), &node(2).public());
        assert!(is_query(&query()));
        assert!(!is_query(&Element::bare(ELEMENT, "urn:x-other")));
    }

    #[test]
    fn replayed_or_swapped_keys_fail() {
        let k = NodeKeys::new(&node(2), &jid("bob@example.net"));
        assert_eq!(
            k.verify(&jid("mallory@example.net")),
            Err(Error::BadSignature)
        );
        // Mallory's Noise key with Bob's identity and signature.
        let mut swapped = k.clone();
        swapped.keys = PublicKeys::from_bytes(
            &node(2).public().identity_bytes(),
            &node(3).public().noise_bytes(),
        )
        .unwrap();
        assert_eq!(
            swapped.verify(&jid("bob@example.net")),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn malformed_answers_are_refused() {
        let k = NodeKeys::new(&node(2), &jid("bob@example.net"));
        let good = xml::to_string(&k.to_element()).unwrap();
        for bad in [
            good.replace("v='1'", "v='2'"),
            good.replace(&xml::b64(&k.keys.noise_bytes()), "AAAA"),
            good.replace(" sig=", " gis="),
            good.replace(NS_CHAMBER, "urn:x-other"),
            good.replace("/>", &format!(" pad='{}'/>", "x".repeat(512))),
            good.replace("/>", "><x/></keys>"),
        ] {
            assert_ne!(bad, good);
            assert!(NodeKeys::from_xml(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
