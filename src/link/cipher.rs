//! Transport keys after the handshake: Noise §5.1's CipherState with ChaChaPoly (§12.3), kept by
//! us rather than inside snow so a receiver can hold two key epochs at once and encrypt in place
//! into the caller's buffer.
//!
//! - ENCRYPT(k, n, ad, p): ChaCha20-Poly1305 with the 96-bit nonce `0u32 ‖ n as u64 LE`.
//! - REKEY(k) (§4.2): `k' = ENCRYPT(k, 2^64 − 1, ε, 0^32)[..32]`. The nonce 2^64 − 1 is reserved
//!   for this, so data counters stop below it.
//!
//! A link rekeys by epochs: the sender moves to REKEY(k) after a packet count or an age, and says
//! so in the header's epoch byte; the receiver derives the next key when it first sees the next
//! epoch and keeps the previous one for packets still in flight. Old keys are not derivable
//! from new ones, so a stolen key does not open earlier traffic.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};
use zeroize::Zeroizing;

/// An AEAD operation failed: the tag did not verify, or a buffer was too short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("AEAD failure")]
pub struct AeadError;

/// The highest usable data counter; `u64::MAX` belongs to REKEY.
pub const MAX_COUNTER: u64 = u64::MAX - 1;

/// One direction's key (ring's ChaCha20-Poly1305: assembly, several times faster per packet
/// than a portable implementation, and the hot path of every link).
#[cfg_attr(fuzzing, derive(Clone))]
pub struct CipherKey {
    aead: LessSafeKey,
}

impl std::fmt::Debug for CipherKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CipherKey(<hidden>)")
    }
}

/// The nonce for counter `n`. Each counter is used once per key: the session's send counter
/// only grows, and REKEY's `u64::MAX` is never a data counter.
fn nonce(n: u64) -> Nonce {
    let mut b = [0u8; 12];
    b[4..].copy_from_slice(&n.to_le_bytes());
    Nonce::assume_unique_for_key(b)
}

impl CipherKey {
    /// A key from the handshake's split.
    pub fn new(key: [u8; 32]) -> Self {
        let key = Zeroizing::new(key);
        // Invariant: any 32 bytes are a ChaCha20-Poly1305 key.
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key[..]).expect("a 32-byte key");
        CipherKey {
            aead: LessSafeKey::new(unbound),
        }
    }

    /// Encrypts `buf[..len]` in place and appends the tag at `buf[len..len + 16]`.
    /// `buf` must hold `len + 16` bytes.
    pub fn seal(&self, n: u64, ad: &[u8], buf: &mut [u8], len: usize) -> Result<(), AeadError> {
        let (msg, rest) = buf.split_at_mut_checked(len).ok_or(AeadError)?;
        let tag: Tag = self
            .aead
            .seal_in_place_separate_tag(nonce(n), Aad::from(ad), msg)
            .map_err(|_| AeadError)?;
        rest.get_mut(..16)
            .ok_or(AeadError)?
            .copy_from_slice(tag.as_ref());
        Ok(())
    }

    /// Decrypts `buf` (ciphertext ‖ tag) in place; returns the plaintext length.
    pub fn open(&self, n: u64, ad: &[u8], buf: &mut [u8]) -> Result<usize, AeadError> {
        self.aead
            .open_in_place(nonce(n), Aad::from(ad), buf)
            .map(|plain| plain.len())
            .map_err(|_| AeadError)
    }

    /// REKEY(k) of Noise §4.2.
    pub fn rekey(&self) -> CipherKey {
        let mut zeros = Zeroizing::new([0u8; 32]);
        // Invariant: encrypting 32 bytes under a valid key cannot fail.
        let _tag = self
            .aead
            .seal_in_place_separate_tag(nonce(u64::MAX), Aad::empty(), &mut zeros[..])
            .expect("ChaCha20-Poly1305 encrypts any short message");
        CipherKey::new(*zeros)
    }

    /// Whether two keys are equal, judged by their REKEY output (tests only).
    #[cfg(test)]
    pub fn same_as(&self, other: &CipherKey) -> bool {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        let ta = self.seal(0, b"", &mut a, 16);
        let tb = other.seal(0, b"", &mut b, 16);
        ta.is_ok() && tb.is_ok() && a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let k = CipherKey::new([7; 32]);
        let mut buf = *b"hello, chamber!!\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        k.seal(3, b"hdr", &mut buf, 16).unwrap();
        let mut copy = buf;
        assert_eq!(k.open(3, b"hdr", &mut copy), Ok(16));
        assert_eq!(&copy[..16], b"hello, chamber!!");
        for (n, ad) in [(4, &b"hdr"[..]), (3, &b"hdx"[..])] {
            let mut c = buf;
            assert!(k.open(n, ad, &mut c).is_err());
        }
        let mut c = buf;
        c[0] ^= 1;
        assert!(k.open(3, b"hdr", &mut c).is_err());
        assert!(k.open(0, b"", &mut [0u8; 15]).is_err());
    }

    /// Noise's nonce layout (`0u32 ‖ n LE`) against an independent implementation: OpenSSL's
    /// ChaCha20-Poly1305 through Python's `cryptography`, key `[7; 32]`, counter 3.
    #[test]
    fn matches_an_independent_implementation() {
        let k = CipherKey::new([7; 32]);
        let mut buf = [0u8; 32];
        buf[..16].copy_from_slice(b"hello, chamber!!");
        k.seal(3, b"hdr", &mut buf, 16).unwrap();
        let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "e5584c5acd624c09a96e1c9deb02b42c50ea8d63e681ceafcc1493470a9fc0d4"
        );
    }

    #[test]
    fn rekey_is_deterministic_and_changes_the_key() {
        let k = CipherKey::new([1; 32]);
        let (a, b) = (k.rekey(), k.rekey());
        assert!(a.same_as(&b));
        assert!(!a.same_as(&k));
        let mut buf = [0u8; 20];
        a.seal(0, b"", &mut buf, 4).unwrap();
        assert!(k.open(0, b"", &mut buf.clone()).is_err());
        assert_eq!(b.open(0, b"", &mut buf), Ok(4));
    }
}
