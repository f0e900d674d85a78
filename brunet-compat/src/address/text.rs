//! The text form `brunet:node:<base32>` (Brunet's `AddressParser` and `Base32`).

use std::fmt;
use std::str::FromStr;

use super::ring_int::mul32;
use super::{Address, AddressError, RingInt};

const PREFIX: &str = "brunet:node:";
const URN: &str = "urn:";
const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

impl Address {
    /// The 32-character RFC 4648 base32 of the bytes (no prefix, no padding).
    pub fn to_base32(&self) -> String {
        let v = self.to_ring_int();
        (0..32)
            .rev()
            .map(|i| {
                let digit = v.shr(i * 5).to_be_bytes()[19] & 0x1f;
                // digit < 32 by the mask, so the index is in bounds.
                B32[digit as usize] as char
            })
            .collect()
    }

    /// Parses 32 base32 characters (either case) into an address.
    pub fn from_base32(s: &str) -> Result<Address, AddressError> {
        if s.len() != 32 {
            return Err(AddressError::WrongTextLength(s.len()));
        }
        let mut v = RingInt::ZERO;
        for (i, c) in s.bytes().enumerate() {
            let d = match c.to_ascii_uppercase() {
                c @ b'A'..=b'Z' => c - b'A',
                c @ b'2'..=b'7' => c - b'2' + 26,
                _ => return Err(AddressError::InvalidBase32(i)),
            };
            // 32 digits × 5 bits = 160 bits: shifting left by 5 is ×32 modulo 2^160,
            // and the first digit's bits end up exactly at the top.
            v = mul32(v).wrapping_add(RingInt::from_u128(d.into()));
        }
        Ok(Address::from_ring_int(v))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.to_base32())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Address {
    type Err = AddressError;

    /// Accepts `brunet:node:<b32>` and `urn:brunet:node:<b32>`, prefix and digits in any case.
    fn from_str(s: &str) -> Result<Address, AddressError> {
        let s = strip_prefix_ci(s, URN).unwrap_or(s);
        let b32 = strip_prefix_ci(s, PREFIX).ok_or(AddressError::MissingPrefix)?;
        Address::from_base32(b32)
    }
}

/// `s` without `prefix`, compared ASCII-case-insensitively.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}
