//! Ring invites: the ring's id, name and secret, encrypted to a friend's node key and signed by
//! the inviter, sent in a `<message/>` to the friend's JID.
//!
//! Read first: DESIGN.md §7 (membership), RFC 7748 §6.1 (X25519), RFC 5869 (HKDF) and RFC 8439
//! (ChaCha20-Poly1305). The construction is a one-shot ECIES:
//!
//! 1. `e` = fresh X25519 key; `dh` = X25519(e, recipient Noise key);
//! 2. key ‖ nonce = HKDF-SHA256(salt = "chamber/invite/v1", ikm = dh, info = E ‖ R), 32 + 12 bytes;
//! 3. ciphertext = ChaCha20-Poly1305(key, nonce, plaintext, aad = header);
//! 4. signature = Ed25519(inviter identity, "chamber/sig/invite/v1\0" ‖ header ‖ ciphertext);
//!
//! where header = version ‖ inviter identity key ‖ inviter Noise key ‖ R ‖ E ‖ len16(jid) ‖
//! inviter bare JID, and plaintext = ring id ‖ ring secret ‖ len8(name) ‖ name, followed for
//! an owned ring by owner key ‖ len16(cert) ‖ the invitee's member certificate ([`crate::cert`]).
//! The XMPP server and anyone else on the path see only who invites whom.
//!
//! ```xml
//! <message to='bob@example.net' type='normal'>
//!   <invite xmlns='urn:x-chamber:0' v='1' ik='…' nk='…' to='…' eph='…' sig='…'>base64</invite>
//! </message>
//! ```

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ed25519_dalek::Signature;
use hkdf::Hkdf;
use jid::{BareJid, Jid};
use minidom::Element;
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use x25519_dalek::{EphemeralSecret, PublicKey as X25519Public};
use xmpp_parsers::message::{Message, MessageType};
use zeroize::Zeroizing;

use crate::keys::{NodeSecret, PublicKeys, SigContext};
use crate::xml::{self, Limits};
use crate::{Error, NS_CHAMBER, PROTOCOL_VERSION, RingId, RingSecret};

/// Element name of the invite.
pub const ELEMENT: &str = "invite";

/// Longest ring name, in UTF-8 bytes.
pub const MAX_RING_NAME: usize = 128;

/// Bounds for [`Invite::from_xml`].
pub const LIMITS: Limits = Limits {
    max_bytes: 8192,
    max_elements: 1,
};

const KDF_SALT: &[u8] = b"chamber/invite/v1";
const TAG_LEN: usize = 16;
const MIN_PLAINTEXT: usize = 32 + 32 + 1;
const MAX_CIPHERTEXT: usize =
    MIN_PLAINTEXT + MAX_RING_NAME + 32 + 2 + crate::cert::MAX_CERT + TAG_LEN;

/// A sealed invite, as sent or received. Its inviter is known (for key pinning) before it is
/// opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    inviter: PublicKeys,
    recipient: [u8; 32],
    ephemeral: [u8; 32],
    ciphertext: Vec<u8>,
    signature: Signature,
}

/// The content of an opened invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingInvite {
    /// The ring's id (checked to match the secret).
    pub ring_id: RingId,
    /// The ring's human name, as the inviter calls it.
    pub ring_name: String,
    /// The ring secret.
    pub ring_secret: RingSecret,
    /// For an owned ring: the owner's identity key and the invitee's certificate.
    pub owned: Option<([u8; 32], crate::cert::MemberCert)>,
}

impl Invite {
    /// Encrypts an invite to `recipient`'s Noise key, from `inviter` whose account's bare JID is
    /// `inviter_jid`. Fails when the name is longer than [`MAX_RING_NAME`] bytes.
    pub fn seal<R: RngCore + CryptoRng>(
        rng: &mut R,
        inviter: &NodeSecret,
        inviter_jid: &BareJid,
        recipient: &PublicKeys,
        ring_name: &str,
        ring_secret: &RingSecret,
        owned: Option<(&[u8; 32], &crate::cert::MemberCert)>,
    ) -> Result<Self, Error> {
        if ring_name.len() > MAX_RING_NAME {
            return Err(Error::InvalidValue {
                field: "ring name",
                reason: "too long",
            });
        }
        let e = EphemeralSecret::random_from_rng(&mut *rng);
        let ephemeral = X25519Public::from(&e).to_bytes();
        // Invariant: `recipient` came through PublicKeys::from_bytes or NodeSecret::public, which
        // exclude small-order points, so the shared secret is contributory.
        let dh = e.diffie_hellman(recipient.noise());
        let mut plain = Zeroizing::new(Vec::with_capacity(MIN_PLAINTEXT + ring_name.len()));
        plain.extend_from_slice(&ring_secret.ring_id().0);
        plain.extend_from_slice(ring_secret.as_bytes());
        plain.push(ring_name.len() as u8);
        plain.extend_from_slice(ring_name.as_bytes());
        if let Some((owner, cert)) = owned {
            let c = cert.encode();
            plain.extend_from_slice(owner);
            plain.extend_from_slice(&(c.len() as u16).to_be_bytes());
            plain.extend_from_slice(&c);
        }
        let mut invite = Invite {
            inviter: inviter.public(),
            recipient: recipient.noise_bytes(),
            ephemeral,
            ciphertext: Vec::new(),
            signature: Signature::from_bytes(&[0; 64]),
        };
        let header = invite.header(inviter_jid);
        let (cipher, nonce) = cipher(dh.as_bytes(), &ephemeral, &invite.recipient);
        invite.ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: &header,
                },
            )
            .map_err(|_| Error::Inconsistent("encryption failed"))?;
        invite.signature = inviter.sign(SigContext::Invite, &invite.signed_bytes(&header));
        Ok(invite)
    }

    /// The inviter's keys: pin or compare them before trusting the invite.
    pub fn inviter(&self) -> &PublicKeys {
        &self.inviter
    }

    /// Checks the inviter's signature for the JID the message came from, then decrypts with our
    /// node key.
    pub fn open(&self, ours: &NodeSecret, from_bare_jid: &BareJid) -> Result<RingInvite, Error> {
        if self.recipient != ours.public().noise_bytes() {
            return Err(Error::NotForUs);
        }
        let header = self.header(from_bare_jid);
        self.inviter.verify(
            SigContext::Invite,
            &self.signed_bytes(&header),
            &self.signature,
        )?;
        let dh = ours.noise_dh(&X25519Public::from(self.ephemeral));
        if !dh.was_contributory() {
            return Err(Error::InvalidValue {
                field: "ephemeral key",
                reason: "small-order X25519 point",
            });
        }
        let (cipher, nonce) = cipher(dh.as_bytes(), &self.ephemeral, &self.recipient);
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    &nonce,
                    Payload {
                        msg: &self.ciphertext,
                        aad: &header,
                    },
                )
                .map_err(|_| Error::Decryption)?,
        );
        parse_plaintext(&plain)
    }

    fn header(&self, inviter_jid: &BareJid) -> Vec<u8> {
        let jid = inviter_jid.as_str().as_bytes();
        let mut h = Vec::with_capacity(1 + 4 * 32 + 2 + jid.len());
        h.push(PROTOCOL_VERSION);
        h.extend_from_slice(&self.inviter.identity_bytes());
        h.extend_from_slice(&self.inviter.noise_bytes());
        h.extend_from_slice(&self.recipient);
        h.extend_from_slice(&self.ephemeral);
        // A bare JID is at most 3 × 1023 bytes (RFC 7622), so it fits in 16 bits.
        h.extend_from_slice(&(jid.len() as u16).to_be_bytes());
        h.extend_from_slice(jid);
        h
    }

    fn signed_bytes(&self, header: &[u8]) -> Vec<u8> {
        let mut v = header.to_vec();
        v.extend_from_slice(&self.ciphertext);
        v
    }

    /// The `<invite/>` element.
    pub fn to_element(&self) -> Element {
        Element::builder(ELEMENT, NS_CHAMBER)
            .attr(xml::name("v"), PROTOCOL_VERSION.to_string())
            .attr(xml::name("ik"), xml::b64(&self.inviter.identity_bytes()))
            .attr(xml::name("nk"), xml::b64(&self.inviter.noise_bytes()))
            .attr(xml::name("to"), xml::b64(&self.recipient))
            .attr(xml::name("eph"), xml::b64(&self.ephemeral))
            .attr(xml::name("sig"), xml::b64(&self.signature.to_bytes()))
            .append(xml::b64(&self.ciphertext))
            .build()
    }

    /// A `type='normal'` message to the friend carrying the invite.
    pub fn to_message(&self, to: Jid) -> Message {
        Message::new_with_type(MessageType::Normal, Some(to)).with_payloads(vec![self.to_element()])
    }

    /// The invite in a received message, if it has one.
    pub fn from_message(message: &Message) -> Option<Result<Self, Error>> {
        message
            .payloads
            .iter()
            .find(|p| p.is(ELEMENT, NS_CHAMBER))
            .map(Self::from_element)
    }

    /// Parses an `<invite/>`.
    pub fn from_element(e: &Element) -> Result<Self, Error> {
        xml::expect(e, ELEMENT, NS_CHAMBER)?;
        xml::check_elements(e, LIMITS.max_elements)?;
        xml::check_version(e, ELEMENT)?;
        let attr = |name| xml::required(e, ELEMENT, name);
        let inviter = PublicKeys::from_bytes(
            &xml::b64_array("identity key", attr("ik")?)?,
            &xml::b64_array("noise key", attr("nk")?)?,
        )?;
        let recipient = xml::b64_array("recipient key", attr("to")?)?;
        let ephemeral = xml::b64_array("ephemeral key", attr("eph")?)?;
        let signature = Signature::from_bytes(&xml::b64_array("signature", attr("sig")?)?);
        let text = e.text();
        let ciphertext = xml::b64_vec("ciphertext", text.trim(), MAX_CIPHERTEXT)?;
        if ciphertext.len() < MIN_PLAINTEXT + TAG_LEN {
            return Err(Error::Truncated {
                needed: MIN_PLAINTEXT + TAG_LEN,
                got: ciphertext.len(),
            });
        }
        Ok(Invite {
            inviter,
            recipient,
            ephemeral,
            ciphertext,
            signature,
        })
    }

    /// Parses an invite from XML bytes within [`LIMITS`].
    pub fn from_xml(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_element(&xml::parse(bytes, LIMITS)?)
    }
}

/// The AEAD and nonce for one invite, from the X25519 output.
fn cipher(dh: &[u8; 32], ephemeral: &[u8; 32], recipient: &[u8; 32]) -> (ChaCha20Poly1305, Nonce) {
    let hk = Hkdf::<Sha256>::new(Some(KDF_SALT), dh);
    let mut info = [0u8; 64];
    info[..32].copy_from_slice(ephemeral);
    info[32..].copy_from_slice(recipient);
    let mut okm = Zeroizing::new([0u8; 44]);
    // Invariant: 44 bytes is far below HKDF-SHA256's 255 × 32 output limit.
    hk.expand(&info, okm.as_mut())
        .expect("44 bytes is a valid HKDF-SHA256 output length");
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&okm[..32]));
    (cipher, *Nonce::from_slice(&okm[32..]))
}

fn parse_plaintext(p: &[u8]) -> Result<RingInvite, Error> {
    if p.len() < MIN_PLAINTEXT {
        return Err(Error::Truncated {
            needed: MIN_PLAINTEXT,
            got: p.len(),
        });
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(&p[..32]);
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&p[32..64]);
    let name_len = usize::from(p[64]);
    let name = p
        .get(MIN_PLAINTEXT..MIN_PLAINTEXT + name_len)
        .ok_or(Error::Inconsistent("ring name length"))?;
    let rest = &p[MIN_PLAINTEXT + name_len..];
    let owned = if rest.is_empty() {
        None
    } else {
        let owner: [u8; 32] = rest
            .get(..32)
            .and_then(|o| o.try_into().ok())
            .ok_or(Error::Inconsistent("owner key"))?;
        let n = rest
            .get(32..34)
            .map(|n| usize::from(u16::from_be_bytes([n[0], n[1]])))
            .ok_or(Error::Inconsistent("certificate length"))?;
        let cert = rest
            .get(34..)
            .filter(|c| c.len() == n)
            .ok_or(Error::Inconsistent("certificate length"))?;
        Some((owner, crate::cert::MemberCert::decode(cert)?))
    };
    let ring_name = std::str::from_utf8(name).map_err(|_| Error::InvalidValue {
        field: "ring name",
        reason: "not UTF-8",
    })?;
    let ring_secret = RingSecret::from_bytes(*secret);
    if ring_secret.ring_id() != RingId(id) {
        return Err(Error::Inconsistent("ring id does not match ring secret"));
    }
    Ok(RingInvite {
        ring_id: RingId(id),
        ring_name: ring_name.to_owned(),
        ring_secret,
        owned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::node;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn jid(s: &str) -> BareJid {
        s.parse().unwrap()
    }

    fn sealed(name: &str) -> (Invite, RingSecret) {
        let mut rng = StdRng::seed_from_u64(9);
        let secret = RingSecret::generate(&mut rng);
        let i = Invite::seal(
            &mut rng,
            &node(1),
            &jid("alice@example.org"),
            &node(2).public(),
            name,
            &secret,
            None,
        )
        .unwrap();
        (i, secret)
    }

    #[test]
    fn seal_round_trip_open() {
        let (i, secret) = sealed("climbing club ⛰");
        let text = xml::to_string(&i.to_element()).unwrap();
        let back = Invite::from_xml(text.as_bytes()).unwrap();
        assert_eq!(back, i);
        assert_eq!(back.inviter(), &node(1).public());
        let opened = back.open(&node(2), &jid("alice@example.org")).unwrap();
        assert_eq!(opened.ring_name, "climbing club ⛰");
        assert_eq!(opened.ring_secret, secret);
        assert_eq!(opened.ring_id, secret.ring_id());
        // The ring's name never appears in clear.
        assert!(!text.contains("climbing"));
    }

    #[test]
    fn message_round_trip() {
        let (i, _) = sealed("r");
        let m = i.to_message("bob@example.net".parse().unwrap());
        let el: Element = m.into();
        let m = Message::try_from(el).unwrap();
        assert_eq!(Invite::from_message(&m), Some(Ok(i)));
        assert_eq!(Invite::from_message(&Message::new(None)), None);
    }

    #[test]
    fn wrong_recipient_jid_or_tampering_fail() {
        let (i, _) = sealed("r");
        assert_eq!(
            i.open(&node(3), &jid("alice@example.org")),
            Err(Error::NotForUs)
        );
        assert_eq!(
            i.open(&node(2), &jid("mallory@example.org")),
            Err(Error::BadSignature)
        );
        let mut flipped = i.clone();
        flipped.ciphertext[0] ^= 1;
        assert_eq!(
            flipped.open(&node(2), &jid("alice@example.org")),
            Err(Error::BadSignature)
        );
        // Re-signed by a third party with its own key: the signature verifies under the new
        // inviter key, but the AEAD header binds the original inviter, so decryption fails.
        let mut resigned = i.clone();
        let mallory = node(4);
        resigned.inviter = mallory.public();
        let header = resigned.header(&jid("mallory@example.org"));
        resigned.signature = mallory.sign(SigContext::Invite, &resigned.signed_bytes(&header));
        assert_eq!(
            resigned.open(&node(2), &jid("mallory@example.org")),
            Err(Error::Decryption)
        );
    }

    #[test]
    fn oversized_names_are_refused() {
        let mut rng = StdRng::seed_from_u64(1);
        let s = RingSecret::generate(&mut rng);
        let long = "n".repeat(MAX_RING_NAME + 1);
        assert!(
            Invite::seal(
                &mut rng,
                &node(1),
                &jid("a@b"),
                &node(2).public(),
                &long,
                &s,
                None
            )
            .is_err()
        );
        let max = "n".repeat(MAX_RING_NAME);
        let i = Invite::seal(
            &mut rng,
            &node(1),
            &jid("a@b"),
            &node(2).public(),
            &max,
            &s,
            None,
        )
        .unwrap();
        let text = xml::to_string(&i.to_element()).unwrap();
        assert!(text.len() < LIMITS.max_bytes);
        let opened = Invite::from_xml(text.as_bytes())
            .unwrap()
            .open(&node(2), &jid("a@b"))
            .unwrap();
        assert_eq!(opened.ring_name, max);
    }

    #[test]
    fn malformed_invites_are_refused() {
        let (i, _) = sealed("r");
        let good = xml::to_string(&i.to_element()).unwrap();
        let ct = xml::b64(&i.ciphertext);
        for bad in [
            good.replace("v='1'", "v='0'"),
            good.replace(&ct, "AAAA"),
            good.replace(&ct, &xml::b64(&[0; MAX_CIPHERTEXT + 1])),
            good.replace(&ct, "not base64!"),
            good.replace(&xml::b64(&i.ephemeral), "AAAA"),
        ] {
            assert_ne!(bad, good);
            assert!(Invite::from_xml(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn plaintext_checks() {
        let s = RingSecret::from_bytes([5; 32]);
        let mut p = s.ring_id().0.to_vec();
        p.extend_from_slice(s.as_bytes());
        p.push(2);
        p.extend_from_slice(b"ab");
        assert_eq!(parse_plaintext(&p).unwrap().ring_name, "ab");
        assert!(parse_plaintext(&p[..p.len() - 1]).is_err());
        let mut wrong_id = p.clone();
        wrong_id[0] ^= 1;
        assert!(matches!(
            parse_plaintext(&wrong_id),
            Err(Error::Inconsistent(_))
        ));
        let mut bad_utf8 = p.clone();
        let n = bad_utf8.len();
        bad_utf8[n - 1] = 0xff;
        assert!(parse_plaintext(&bad_utf8).is_err());
    }
}
