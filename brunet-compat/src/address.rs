//! 160-bit Brunet addresses, their text form and the ring metric.
//!
//! Read `shared/design/BRUNET.md` §1 first. An [`Address`] is 20 bytes compared as an
//! unsigned big-endian integer on a ring of size 2^160. "Left" is increasing (clockwise),
//! "right" is decreasing, exactly as in Brunet's `AHAddress`. The class of an address is
//! the number of consecutive 1-bits counted from its least significant bit: AH
//! (structured) addresses are class 0, i.e. even; directional addresses are class 124.
//!
//! [`RingInt`] is the unsigned 160-bit integer used for offsets and one-way distances;
//! [`Distance`] is the signed distance in [−2^159, 2^159) returned by
//! [`Address::distance_to`].

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// An unsigned 160-bit integer modulo 2^160: a position or one-way distance on the ring.
///
/// Hand-written as `(hi: u32, lo: u128)` rather than pulling in a big-integer crate: the
/// ring only needs add, subtract, compare, powers of two and f64 conversion, which are a
/// few lines each over two native integers, stay `const`-friendly and cannot allocate.
/// Field order matters: the derived `Ord` compares `hi` first, which is numeric order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RingInt {
    hi: u32,
    lo: u128,
}

/// 2^128 and 2^160 as f64 (exact: powers of two).
const TWO_POW_128: f64 = 340_282_366_920_938_463_463_374_607_431_768_211_456.0;
const TWO_POW_32: f64 = 4_294_967_296.0;

impl RingInt {
    /// Zero.
    pub const ZERO: RingInt = RingInt { hi: 0, lo: 0 };
    /// One.
    pub const ONE: RingInt = RingInt { hi: 0, lo: 1 };
    /// 2^159, half the ring (Brunet's `Address.Half`).
    pub const HALF: RingInt = RingInt { hi: 1 << 31, lo: 0 };
    /// 2^160 − 1, the largest value.
    pub const MAX: RingInt = RingInt {
        hi: u32::MAX,
        lo: u128::MAX,
    };

    /// The value `v` (always fits: 128 < 160 bits).
    pub const fn from_u128(v: u128) -> RingInt {
        RingInt { hi: 0, lo: v }
    }

    /// 2^k modulo 2^160: zero for `k >= 160`, since 2^160 wraps to 0 on the ring.
    pub const fn pow2(k: u32) -> RingInt {
        if k < 128 {
            RingInt { hi: 0, lo: 1 << k }
        } else if k < 160 {
            RingInt {
                hi: 1 << (k - 128),
                lo: 0,
            }
        } else {
            RingInt::ZERO
        }
    }

    /// The value of 20 big-endian bytes.
    pub fn from_be_bytes(b: [u8; 20]) -> RingInt {
        let (h, l) = b.split_at(4);
        let mut hi = [0u8; 4];
        let mut lo = [0u8; 16];
        hi.copy_from_slice(h);
        lo.copy_from_slice(l);
        RingInt {
            hi: u32::from_be_bytes(hi),
            lo: u128::from_be_bytes(lo),
        }
    }

    /// The 20 big-endian bytes of the value.
    pub fn to_be_bytes(self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out[..4].copy_from_slice(&self.hi.to_be_bytes());
        out[4..].copy_from_slice(&self.lo.to_be_bytes());
        out
    }

    /// `self + rhs` modulo 2^160.
    pub const fn wrapping_add(self, rhs: RingInt) -> RingInt {
        let (lo, carry) = self.lo.overflowing_add(rhs.lo);
        let hi = self.hi.wrapping_add(rhs.hi).wrapping_add(carry as u32);
        RingInt { hi, lo }
    }

    /// `self − rhs` modulo 2^160.
    pub const fn wrapping_sub(self, rhs: RingInt) -> RingInt {
        let (lo, borrow) = self.lo.overflowing_sub(rhs.lo);
        let hi = self.hi.wrapping_sub(rhs.hi).wrapping_sub(borrow as u32);
        RingInt { hi, lo }
    }

    /// `−self` modulo 2^160.
    pub const fn wrapping_neg(self) -> RingInt {
        RingInt::ZERO.wrapping_sub(self)
    }

    /// `self >> k` (logical); zero for `k >= 160`.
    pub const fn shr(self, k: u32) -> RingInt {
        if k == 0 {
            self
        } else if k < 128 {
            RingInt {
                hi: if k < 32 { self.hi >> k } else { 0 },
                lo: (self.lo >> k) | ((self.hi as u128) << (128 - k)),
            }
        } else if k < 160 {
            RingInt {
                hi: 0,
                lo: (self.hi >> (k - 128)) as u128,
            }
        } else {
            RingInt::ZERO
        }
    }

    /// True for zero.
    pub const fn is_zero(self) -> bool {
        self.hi == 0 && self.lo == 0
    }

    /// The value as a fraction of the whole ring, `self / 2^160`, in [0, 1).
    ///
    /// Rounded to f64 precision (53 bits); values within 2^−53 of the top are clamped
    /// below 1 so the result stays a valid ring fraction.
    pub fn to_f64(self) -> f64 {
        let f = (self.hi as f64 + self.lo as f64 / TWO_POW_128) / TWO_POW_32;
        if f < 1.0 { f } else { 1.0 - f64::EPSILON / 2.0 }
    }

    /// The ring position `frac · 2^160`, with `frac` reduced modulo 1 first (so −0.25 is
    /// the same point as 0.75). NaN and infinities give zero.
    ///
    /// Only the 53 significant bits of `frac` carry over; the low bits are zero.
    pub fn from_ring_fraction(frac: f64) -> RingInt {
        if !frac.is_finite() {
            return RingInt::ZERO;
        }
        let mut f = frac.rem_euclid(1.0);
        if f >= 1.0 {
            // rem_euclid of a tiny negative number can round up to exactly 1.0.
            f = 0.0;
        }
        let x = f * TWO_POW_32;
        let hi = x.floor();
        let lo = (x - hi) * TWO_POW_128;
        // Both casts saturate; hi < 2^32 and lo < 2^128 because f < 1 and x − hi < 1.
        RingInt {
            hi: hi as u32,
            lo: lo as u128,
        }
    }
}

impl fmt::Debug for RingInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}{:032x}", self.hi, self.lo)
    }
}

impl fmt::LowerHex for RingInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}{:032x}", self.hi, self.lo)
    }
}

/// A signed ring distance in [−2^159, 2^159), stored as a 160-bit two's complement.
///
/// Positive means "to the left" (clockwise, increasing), as Brunet's `DistanceTo`.
/// Ordering is by signed value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Distance(RingInt);

impl Distance {
    /// Zero distance.
    pub const ZERO: Distance = Distance(RingInt::ZERO);
    /// The most negative distance, −2^159.
    pub const MIN: Distance = Distance(RingInt::HALF);

    /// Interprets `v` as a two's-complement signed 160-bit number.
    pub const fn from_twos_complement(v: RingInt) -> Distance {
        Distance(v)
    }

    /// The two's-complement bits, i.e. the distance modulo 2^160.
    pub const fn to_twos_complement(self) -> RingInt {
        self.0
    }

    /// True when the distance is below zero (to the right).
    pub const fn is_negative(self) -> bool {
        self.0.hi & (1 << 31) != 0
    }

    /// True when the distance is above zero (to the left).
    pub const fn is_positive(self) -> bool {
        !self.is_negative() && !self.0.is_zero()
    }

    /// True for zero.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// −1, 0 or 1.
    pub const fn signum(self) -> i32 {
        if self.is_negative() {
            -1
        } else if self.0.is_zero() {
            0
        } else {
            1
        }
    }

    /// The magnitude, in [0, 2^159]; 2^159 (for [`Distance::MIN`]) still fits a [`RingInt`].
    pub const fn abs(self) -> RingInt {
        if self.is_negative() {
            self.0.wrapping_neg()
        } else {
            self.0
        }
    }

    /// The distance as a signed fraction of the ring, in [−0.5, 0.5).
    pub fn to_f64(self) -> f64 {
        let m = self.abs().to_f64();
        if self.is_negative() { -m } else { m }
    }
}

impl Ord for Distance {
    fn cmp(&self, other: &Self) -> Ordering {
        // Flipping the sign bit maps signed order onto unsigned order.
        let key = |d: &Distance| d.0.wrapping_add(RingInt::HALF);
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for Distance {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Distance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.is_negative() { "-" } else { "" };
        write!(f, "Distance({sign}{:?})", self.abs())
    }
}

/// The bearing of a [`Address::directional`] address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Direction {
    /// Clockwise, towards increasing addresses.
    Left = 1,
    /// Counter-clockwise, towards decreasing addresses.
    Right = 2,
}

/// Why bytes or text do not form an [`Address`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// A binary address must be exactly [`Address::LEN`] bytes.
    #[error("address must be 20 bytes, got {0}")]
    WrongLength(usize),
    /// The text form must start with `brunet:node:` (optionally `urn:brunet:node:`).
    #[error("address text lacks the brunet:node: prefix")]
    MissingPrefix,
    /// The base32 part must be exactly 32 characters.
    #[error("address base32 must be 32 characters, got {0}")]
    WrongTextLength(usize),
    /// A character outside the RFC 4648 base32 alphabet (A–Z, 2–7, any case).
    #[error("invalid base32 character at offset {0}")]
    InvalidBase32(usize),
}

/// A 160-bit Brunet address. `Ord` is unsigned big-endian integer order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address([u8; 20]);

/// Class of Brunet's `DirectionalAddress` (1 only in Brunet's 4-byte simulator builds).
pub const DIRECTIONAL_CLASS: u32 = 124;

const PREFIX: &str = "brunet:node:";
const URN: &str = "urn:";
const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

impl Address {
    /// Size of an address on the wire.
    pub const LEN: usize = 20;

    /// The address with these bytes, whatever its class.
    pub const fn from_bytes(bytes: [u8; 20]) -> Address {
        Address(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Reads an address from a slice that must be exactly 20 bytes long.
    pub fn from_slice(s: &[u8]) -> Result<Address, AddressError> {
        <[u8; 20]>::try_from(s)
            .map(Address)
            .map_err(|_| AddressError::WrongLength(s.len()))
    }

    /// An AH (structured, class 0) address: the bytes with the lowest bit cleared,
    /// as Brunet's `SetClass(buf, 0)` does for a freshly generated address.
    pub const fn ah(mut bytes: [u8; 20]) -> Address {
        bytes[19] &= 0xfe;
        Address(bytes)
    }

    /// The `DirectionalAddress` for `dir`: the direction as a big-endian i32 in the first
    /// four bytes, then class 124 (124 low 1-bits, bit 124 zero).
    pub fn directional(dir: Direction) -> Address {
        let ones = RingInt::pow2(DIRECTIONAL_CLASS).wrapping_sub(RingInt::ONE);
        let mut b = ones.to_be_bytes();
        b[..4].copy_from_slice(&(dir as i32).to_be_bytes());
        Address(b)
    }

    /// The bearing, if this is a directional (class 124) address with a known direction.
    pub fn direction(&self) -> Option<Direction> {
        if self.class() != DIRECTIONAL_CLASS {
            return None;
        }
        match i32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]) {
            1 => Some(Direction::Left),
            2 => Some(Direction::Right),
            _ => None,
        }
    }

    /// The class: the number of consecutive 1-bits from the least significant bit
    /// (160 for all ones, where Brunet would read past the buffer).
    pub fn class(&self) -> u32 {
        let mut count = 0;
        for &byte in self.0.iter().rev() {
            let ones = byte.trailing_ones();
            count += ones;
            if ones < 8 {
                break;
            }
        }
        count
    }

    /// True for an AH (structured, class 0) address.
    pub const fn is_ah(&self) -> bool {
        self.0[19] & 1 == 0
    }

    /// The address as an integer on the ring.
    pub fn to_ring_int(self) -> RingInt {
        RingInt::from_be_bytes(self.0)
    }

    /// The address at ring position `v`.
    pub fn from_ring_int(v: RingInt) -> Address {
        Address(v.to_be_bytes())
    }

    /// `self + d` modulo 2^160 (moving left). The class is not adjusted: apply
    /// [`Address::ah`] to the bytes when the result must be an AH address.
    pub fn wrapping_add(self, d: RingInt) -> Address {
        Address::from_ring_int(self.to_ring_int().wrapping_add(d))
    }

    /// `self − d` modulo 2^160 (moving right).
    pub fn wrapping_sub(self, d: RingInt) -> Address {
        Address::from_ring_int(self.to_ring_int().wrapping_sub(d))
    }

    /// Brunet's `DistanceTo`: `b − self` reduced into [−2^159, 2^159).
    /// Positive when `b` is to the left of `self`.
    pub fn distance_to(&self, b: &Address) -> Distance {
        Distance(b.to_ring_int().wrapping_sub(self.to_ring_int()))
    }

    /// True when `self` is left of `b`: `b.distance_to(self) > 0`.
    pub fn is_left_of(&self, b: &Address) -> bool {
        b.distance_to(self).is_positive()
    }

    /// True when `self` is right of `b`: `b.distance_to(self) < 0`.
    pub fn is_right_of(&self, b: &Address) -> bool {
        b.distance_to(self).is_negative()
    }

    /// Clockwise (increasing) distance from `self` to `b`, modulo 2^160.
    ///
    /// Zero when `b == self`; Brunet returns 2^160 there, which does not fit.
    pub fn left_distance_to(&self, b: &Address) -> RingInt {
        b.to_ring_int().wrapping_sub(self.to_ring_int())
    }

    /// Counter-clockwise (decreasing) distance from `self` to `b`, modulo 2^160.
    ///
    /// Zero when `b == self` (Brunet: 2^160).
    pub fn right_distance_to(&self, b: &Address) -> RingInt {
        self.to_ring_int().wrapping_sub(b.to_ring_int())
    }

    /// True when `self` lies strictly inside the clockwise arc from `start` to `end`
    /// (left of `start`, right of `end`). Empty when `start == end`.
    pub fn is_between_from_left(&self, start: &Address, end: &Address) -> bool {
        match start.cmp(end) {
            Ordering::Less => start < self && self < end,
            Ordering::Equal => false,
            Ordering::Greater => start < self || self < end,
        }
    }

    /// True when `self` lies strictly inside the counter-clockwise arc from `start` to
    /// `end` (right of `start`, left of `end`). Empty when `start == end`.
    pub fn is_between_from_right(&self, start: &Address, end: &Address) -> bool {
        match start.cmp(end) {
            Ordering::Greater => start > self && self > end,
            Ordering::Equal => false,
            Ordering::Less => start > self || self > end,
        }
    }

    /// True when `first` is strictly closer to `self` than `second` (by absolute ring
    /// distance); false when they are equal.
    pub fn is_closer_to_first(&self, first: &Address, second: &Address) -> bool {
        first != second && self.distance_to(first).abs() < self.distance_to(second).abs()
    }

    /// The 32-character RFC 4648 base32 of the bytes (no prefix, no padding).
    pub fn to_base32(&self) -> String {
        let v = self.to_ring_int();
        (0..32)
            .rev()
            .map(|i| {
                let digit = v.shr(i * 5).lo & 0x1f;
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

/// `v · 32` modulo 2^160.
fn mul32(v: RingInt) -> RingInt {
    RingInt {
        hi: (v.hi << 5) | (v.lo >> 123) as u32,
        lo: v.lo << 5,
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

#[cfg(test)]
mod tests {
    use super::*;

    const H3US: &str = "brunet:node:H3US32RQ7LDDQ464ZJKMP2VWX6LANY5O";
    const C7CZ: &str = "brunet:node:C7CZHL4LZOS3GJ5EG5UBMSHCDY3CG7IS";
    const ENMD: &str = "brunet:node:ENMDPEQE42FAH2ADVH2H6GI3VTFARX24";
    const VGGE: &str = "brunet:node:VGGE77EI2YNVUGAYH73K7YRGIJ3I2XGU";
    const M23: &str = "brunet:node:6M23YUPWFOORDQLE4FLSLLOEYW2KCCFS";

    fn addr(s: &str) -> Address {
        s.parse().unwrap()
    }

    fn tail(x: u8) -> Address {
        let mut b = [0u8; 20];
        b[19] = x;
        Address::from_bytes(b)
    }

    fn top(x: u8) -> Address {
        let mut b = [0xffu8; 20];
        b[19] = x;
        Address::from_bytes(b)
    }

    #[test]
    fn capture_text_forms_round_trip() {
        let a = addr(H3US);
        assert_eq!(&a.as_bytes()[..4], &[0x3e, 0xe9, 0x2d, 0xea]);
        assert_eq!(&a.as_bytes()[17..], &[0x06, 0xe3, 0xae]);
        for s in [H3US, C7CZ, ENMD, VGGE, M23] {
            let a = addr(s);
            assert_eq!(a.to_string(), s);
            assert!(a.is_ah());
            assert_eq!(a.class(), 0);
        }
        assert_eq!(&addr(M23).as_bytes()[..4], &[0xf3, 0x35, 0xbc, 0x51]);
        assert_eq!(&addr(VGGE).as_bytes()[17..], &[0x8d, 0x5c, 0xd4]);
    }

    #[test]
    fn parse_accepts_urn_and_lower_case() {
        let a = addr(H3US);
        assert_eq!(addr(&format!("urn:{H3US}")), a);
        assert_eq!(addr(&H3US.to_lowercase()), a);
        assert_eq!(addr("URN:Brunet:Node:h3us32rq7lddq464zjkmp2vwx6lany5o"), a);
    }

    #[test]
    fn parse_errors_are_typed() {
        assert_eq!(
            "node:AAAA".parse::<Address>(),
            Err(AddressError::MissingPrefix)
        );
        assert_eq!(
            "brunet:node:AAAA".parse::<Address>(),
            Err(AddressError::WrongTextLength(4))
        );
        let bad = format!("brunet:node:{}1", "A".repeat(31));
        assert_eq!(bad.parse::<Address>(), Err(AddressError::InvalidBase32(31)));
        let multibyte = format!("brunet:node:{}é", "A".repeat(30));
        assert_eq!(
            multibyte.parse::<Address>(),
            Err(AddressError::InvalidBase32(30))
        );
        assert_eq!(
            Address::from_slice(&[0; 19]),
            Err(AddressError::WrongLength(19))
        );
        assert!(Address::from_slice(&[0; 20]).is_ok());
    }

    #[test]
    fn order_matches_capture_ring() {
        let mut v: Vec<Address> = [H3US, C7CZ, ENMD, VGGE, M23].map(addr).to_vec();
        v.sort();
        assert_eq!(v, [C7CZ, ENMD, H3US, VGGE, M23].map(addr).to_vec());
    }

    #[test]
    fn classes() {
        assert_eq!(tail(0x0a).class(), 0);
        assert_eq!(tail(0x01).class(), 1);
        assert_eq!(tail(0x07).class(), 3);
        let mut b = [0u8; 20];
        b[19] = 0xff;
        b[18] = 0x03;
        assert_eq!(Address::from_bytes(b).class(), 10);
        assert_eq!(Address::from_bytes([0xff; 20]).class(), 160);
        assert_eq!(Address::ah([0xff; 20]).class(), 0);
    }

    #[test]
    fn directional_addresses() {
        for dir in [Direction::Left, Direction::Right] {
            let a = Address::directional(dir);
            assert_eq!(a.class(), 124);
            assert_eq!(a.direction(), Some(dir));
            assert_eq!(&a.as_bytes()[..4], &(dir as i32).to_be_bytes());
            // bit 124 is the top bit of the low nibble of byte 4: it must be zero.
            assert_eq!(a.as_bytes()[4], 0x0f);
            assert!(a.as_bytes()[5..].iter().all(|&b| b == 0xff));
        }
        assert_eq!(addr(H3US).direction(), None);
    }

    #[test]
    fn brunet_unit_test_distance() {
        // AHAddressTester: ...0a is left of ff..fe, distance twelve.
        let a1 = tail(0x0a);
        let a2 = top(0xfe);
        assert!(a1.is_left_of(&a2));
        assert!(a2.is_right_of(&a1));
        assert_eq!(a2.distance_to(&a1), Distance(RingInt::from_u128(12)));
        assert_eq!(a1.distance_to(&a2).signum(), -1);
        assert_eq!(a1.distance_to(&a2).abs(), RingInt::from_u128(12));
        assert!(a1 < a2);
    }

    #[test]
    fn distance_range_is_half_open() {
        let zero = Address::from_bytes([0; 20]);
        let half = Address::from_ring_int(RingInt::HALF);
        // Exactly half way is −2^159 from either side.
        assert_eq!(zero.distance_to(&half), Distance::MIN);
        assert_eq!(half.distance_to(&zero), Distance::MIN);
        assert_eq!(Distance::MIN.abs(), RingInt::HALF);
        let below = half.wrapping_sub(RingInt::ONE);
        assert!(zero.distance_to(&below).is_positive());
        assert!(Distance::MIN < zero.distance_to(&below));
        assert!(Distance::MIN < Distance::ZERO);
        assert_eq!(zero.distance_to(&zero), Distance::ZERO);
    }

    #[test]
    fn one_way_distances_wrap() {
        let lo = tail(4);
        let hi = top(0xfe); // 2^160 − 2
        assert_eq!(hi.left_distance_to(&lo), RingInt::from_u128(6));
        assert_eq!(lo.right_distance_to(&hi), RingInt::from_u128(6));
        assert_eq!(
            lo.left_distance_to(&hi),
            RingInt::MAX.wrapping_sub(RingInt::from_u128(5))
        );
        assert_eq!(lo.left_distance_to(&lo), RingInt::ZERO);
        assert_eq!(hi.wrapping_add(RingInt::from_u128(6)), lo);
        assert_eq!(lo.wrapping_sub(RingInt::from_u128(6)), hi);
    }

    #[test]
    fn own_address_plus_two_as_in_capture() {
        // #22: forwarding target is H3US…e3ae + 2 = …e3b0.
        let target = addr(H3US).wrapping_add(RingInt::from_u128(2));
        assert_eq!(&target.as_bytes()[18..], &[0xe3, 0xb0]);
        assert_eq!(&target.as_bytes()[..18], &addr(H3US).as_bytes()[..18]);
    }

    #[test]
    fn between_is_wrap_aware_and_open() {
        let (a, b, c) = (tail(2), tail(10), top(0xf0));
        assert!(tail(4).is_between_from_left(&a, &b));
        assert!(!a.is_between_from_left(&a, &b));
        assert!(!b.is_between_from_left(&a, &b));
        // Clockwise from c wraps past zero to a.
        assert!(tail(0).is_between_from_left(&c, &a));
        assert!(top(0xfe).is_between_from_left(&c, &a));
        assert!(!tail(4).is_between_from_left(&c, &a));
        assert!(!tail(4).is_between_from_left(&a, &a));
        // Counter-clockwise from a wraps past zero to c.
        assert!(tail(0).is_between_from_right(&a, &c));
        assert!(!tail(4).is_between_from_right(&a, &c));
        assert!(tail(4).is_between_from_right(&b, &a));
        assert!(!tail(4).is_between_from_right(&b, &b));
    }

    #[test]
    fn closer_to_first_wraps() {
        let me = tail(2);
        assert!(me.is_closer_to_first(&top(0xfe), &tail(10)));
        assert!(!me.is_closer_to_first(&tail(10), &top(0xfe)));
        assert!(!me.is_closer_to_first(&tail(10), &tail(10)));
        assert!(me.is_closer_to_first(&me, &tail(4)));
    }

    #[test]
    fn pseudo_random_consistency() {
        // Brunet's AHAddressTester invariants over a deterministic sequence.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            let mut b = [0u8; 20];
            for byte in &mut b {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *byte = x as u8;
            }
            Address::ah(b)
        };
        for _ in 0..500 {
            let (a5, a6, a7) = (next(), next(), next());
            assert!(!a5.is_between_from_left(&a6, &a6));
            assert!(!a6.is_between_from_left(&a6, &a7));
            assert!(!a7.is_between_from_right(&a6, &a7));
            assert_eq!(
                a5.is_between_from_left(&a6, &a7),
                a6.left_distance_to(&a5) < a6.left_distance_to(&a7)
            );
            assert_eq!(
                a5.is_between_from_right(&a6, &a7),
                a6.right_distance_to(&a5) < a6.right_distance_to(&a7)
            );
            assert_ne!(
                a5.is_between_from_left(&a6, &a7),
                a5.is_between_from_right(&a6, &a7)
            );
            assert!(!(a5.is_closer_to_first(&a6, &a7) && a5.is_closer_to_first(&a7, &a6)));
            assert_eq!(a5.distance_to(&a6).abs(), a6.distance_to(&a5).abs());
            assert_eq!(a5.is_left_of(&a6), a6.is_right_of(&a5));
            assert_eq!(Address::from_base32(&a5.to_base32()), Ok(a5));
            let d = a5.distance_to(&a6);
            assert_eq!(
                a5.wrapping_add(d.to_twos_complement()),
                a6,
                "distance is b − a"
            );
        }
    }

    #[test]
    fn ring_int_arithmetic() {
        assert_eq!(RingInt::MAX.wrapping_add(RingInt::ONE), RingInt::ZERO);
        assert_eq!(RingInt::ZERO.wrapping_sub(RingInt::ONE), RingInt::MAX);
        assert_eq!(RingInt::pow2(159), RingInt::HALF);
        assert_eq!(RingInt::HALF.wrapping_add(RingInt::HALF), RingInt::ZERO);
        assert_eq!(RingInt::pow2(160), RingInt::ZERO);
        // carry across the u128/u32 seam
        assert_eq!(
            RingInt::from_u128(u128::MAX).wrapping_add(RingInt::ONE),
            RingInt::pow2(128)
        );
        assert_eq!(
            RingInt::pow2(128).wrapping_sub(RingInt::ONE),
            RingInt::from_u128(u128::MAX)
        );
        assert!(RingInt::pow2(128) > RingInt::from_u128(u128::MAX));
        assert_eq!(RingInt::pow2(140).shr(13), RingInt::pow2(127));
        assert_eq!(RingInt::pow2(100).shr(30), RingInt::pow2(70));
        assert_eq!(RingInt::MAX.shr(159), RingInt::ONE);
        assert_eq!(RingInt::MAX.shr(160), RingInt::ZERO);
        assert_eq!(RingInt::HALF.wrapping_neg(), RingInt::HALF);
        let bytes: [u8; 20] = core::array::from_fn(|i| i as u8 + 1);
        assert_eq!(RingInt::from_be_bytes(bytes).to_be_bytes(), bytes);
    }

    #[test]
    fn ring_fractions() {
        assert_eq!(RingInt::ZERO.to_f64(), 0.0);
        assert_eq!(RingInt::HALF.to_f64(), 0.5);
        assert_eq!(RingInt::pow2(158).to_f64(), 0.25);
        assert!(RingInt::MAX.to_f64() < 1.0);
        assert_eq!(RingInt::from_ring_fraction(0.5), RingInt::HALF);
        assert_eq!(RingInt::from_ring_fraction(0.25), RingInt::pow2(158));
        assert_eq!(
            RingInt::from_ring_fraction(2f64.powi(-100)),
            RingInt::pow2(60)
        );
        assert_eq!(
            RingInt::from_ring_fraction(-0.25),
            RingInt::pow2(159).wrapping_add(RingInt::pow2(158))
        );
        assert_eq!(RingInt::from_ring_fraction(1.0), RingInt::ZERO);
        assert_eq!(RingInt::from_ring_fraction(-1e-300), RingInt::ZERO);
        assert_eq!(RingInt::from_ring_fraction(f64::NAN), RingInt::ZERO);
        let x = RingInt::from_ring_fraction(0.123_456_789);
        assert!((x.to_f64() - 0.123_456_789).abs() < 1e-15);
        let d = Address::from_bytes([0; 20]).distance_to(&Address::from_ring_int(RingInt::MAX));
        assert_eq!(d.to_f64(), -(2f64.powi(-160)));
        assert_eq!(Distance::MIN.to_f64(), -0.5);
    }

    #[test]
    fn symphony_offset_is_a_power_of_two() {
        // d = 2^(160 − (1−p)·log2 N) with N = 2^10, p = 0.5: 2^155.
        let n: f64 = 1024.0;
        let frac = 2f64.powf(-(1.0 - 0.5) * n.log2());
        assert_eq!(RingInt::from_ring_fraction(frac), RingInt::pow2(155));
    }
}
