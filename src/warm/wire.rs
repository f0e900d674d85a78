//! Knock datagrams: a runtime [`Envelope`] sealed with the ring's knock key, so that only
//! members can send one and nobody on the path can read the ICE credentials inside.
//!
//! ```text
//! "CHK1" tag:8 nonce:12 AEAD(from:20 sent_ms:u64 envelope…)
//! ```
//!
//! `tag` names the ring (the first bytes of its public id; the AEAD is what proves membership)
//! and is the associated data with the magic. `sent_ms` bounds replays in time; the socket
//! drops a repeated nonce inside that window.

use brunet_compat::address::Address as RingAddress;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use xmpp_ext::RingSecret;

use crate::runtime::envelope::{Envelope, EnvelopeError};

const MAGIC: &[u8; 4] = b"CHK1";
const HEADER: usize = 4 + 8 + 12;
const TAG_LEN: usize = 16;
/// The largest knock accepted: a Jingle offer with a dozen candidates, and room to spare.
pub const MAX_KNOCK: usize = 8 * 1024;

/// Why bytes are not a knock for us.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnockError {
    /// Shorter than a header and a tag, or longer than [`MAX_KNOCK`].
    #[error("a knock of {0} bytes is truncated or too large")]
    Size(usize),
    /// Not our magic: some other protocol's datagram.
    #[error("not a knock")]
    NotKnock,
    /// No ring of ours has this tag.
    #[error("a knock for a ring we are not in")]
    UnknownRing,
    /// The AEAD tag did not verify: not sealed with the ring's key.
    #[error("a knock that does not open with the ring's key")]
    Forged,
    /// Opened, but what is inside does not parse.
    #[error("a malformed knock: {0}")]
    Malformed(String),
}

impl From<EnvelopeError> for KnockError {
    fn from(e: EnvelopeError) -> Self {
        KnockError::Malformed(e.to_string())
    }
}

/// One ring's knock key and tag.
pub struct KnockKey {
    tag: [u8; 8],
    key: LessSafeKey,
}

impl std::fmt::Debug for KnockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KnockKey({})", hex::encode(self.tag))
    }
}

impl KnockKey {
    /// The key of the ring whose secret is `secret`.
    pub fn new(secret: &RingSecret) -> KnockKey {
        let id = secret.ring_id();
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&id.0[..8]);
        let bytes = secret.knock_key();
        let key = LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, bytes.as_slice()).expect("a 32-byte key"),
        );
        KnockKey { tag, key }
    }

    /// The ring's tag.
    pub fn tag(&self) -> [u8; 8] {
        self.tag
    }
}

/// A knock that opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knock {
    /// The sender's ring address, as it claims (the link's Noise handshake proves it later).
    pub from: RingAddress,
    /// The sender's clock when it sealed the knock, in Unix milliseconds.
    pub sent_ms: u64,
    /// The nonce, for the replay filter.
    pub nonce: [u8; 12],
    /// What it carries.
    pub envelope: Envelope,
}

/// Seals `envelope` from `from` for the ring of `key`.
pub fn seal(key: &KnockKey, from: &RingAddress, sent_ms: u64, envelope: &Envelope) -> Vec<u8> {
    let nonce: [u8; 12] = rand::random();
    let mut out = Vec::with_capacity(HEADER + 28 + 64 + TAG_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&key.tag);
    out.extend_from_slice(&nonce);
    let mut body = Vec::with_capacity(28 + 64 + TAG_LEN);
    body.extend_from_slice(from.as_bytes());
    body.extend_from_slice(&sent_ms.to_be_bytes());
    body.extend_from_slice(&envelope.encode());
    let aad = [&MAGIC[..], &key.tag[..]].concat();
    key.key
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut body,
        )
        .expect("sealing into a Vec cannot fail");
    out.extend_from_slice(&body);
    out
}

/// The ring tag of a knock, before it is opened (to pick the key).
pub fn tag_of(bytes: &[u8]) -> Result<[u8; 8], KnockError> {
    if bytes.len() < HEADER + TAG_LEN || bytes.len() > MAX_KNOCK {
        return Err(KnockError::Size(bytes.len()));
    }
    if &bytes[..4] != MAGIC {
        return Err(KnockError::NotKnock);
    }
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&bytes[4..12]);
    Ok(tag)
}

/// Opens a knock with `key` (the key of the ring its tag names).
pub fn open(key: &KnockKey, bytes: &[u8]) -> Result<Knock, KnockError> {
    if tag_of(bytes)? != key.tag {
        return Err(KnockError::UnknownRing);
    }
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&bytes[12..HEADER]);
    let mut body = bytes[HEADER..].to_vec();
    let aad = [&MAGIC[..], &key.tag[..]].concat();
    let plain = key
        .key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut body,
        )
        .map_err(|_| KnockError::Forged)?;
    if plain.len() < 28 {
        return Err(KnockError::Malformed("no sender".into()));
    }
    let from = RingAddress::from_slice(&plain[..20])
        .map_err(|e| KnockError::Malformed(format!("sender: {e:?}")))?;
    let sent_ms = u64::from_be_bytes(plain[20..28].try_into().expect("8 bytes"));
    let envelope = Envelope::decode(&plain[28..])?;
    Ok(Knock {
        from,
        sent_ms,
        nonce,
        envelope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> KnockKey {
        KnockKey::new(&RingSecret::from_bytes([b; 32]))
    }

    #[test]
    fn a_knock_opens_with_its_rings_key_only() {
        let (k, other) = (key(1), key(2));
        let from = RingAddress::from_bytes([9; 20]);
        let env = Envelope::Ping { nonce: 42 };
        let b = seal(&k, &from, 1234, &env);
        let got = open(&k, &b).expect("opens");
        assert_eq!((got.from, got.sent_ms, got.envelope), (from, 1234, env));
        assert_eq!(open(&other, &b), Err(KnockError::UnknownRing));
        // Same tag, wrong key: forged.
        let mut forged = seal(&other, &from, 1, &Envelope::Ping { nonce: 1 });
        forged[4..12].copy_from_slice(&k.tag());
        assert_eq!(open(&k, &forged), Err(KnockError::Forged));
    }

    #[test]
    fn damaged_or_foreign_bytes_are_errors() {
        let k = key(1);
        let b = seal(
            &k,
            &RingAddress::from_bytes([1; 20]),
            5,
            &Envelope::Ping { nonce: 7 },
        );
        for cut in 0..b.len() {
            assert!(open(&k, &b[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = b.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(open(&k, &flipped), Err(KnockError::Forged));
        let mut stun = b.clone();
        stun[..4].copy_from_slice(&[0, 1, 0, 0]);
        assert_eq!(open(&k, &stun), Err(KnockError::NotKnock));
        assert_eq!(
            open(&k, &vec![0u8; MAX_KNOCK + 1]),
            Err(KnockError::Size(MAX_KNOCK + 1))
        );
    }
}
