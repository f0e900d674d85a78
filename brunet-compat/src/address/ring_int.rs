//! [`RingInt`], the unsigned 160-bit ring integer, and [`Distance`], the signed ring distance.

use std::cmp::Ordering;
use std::fmt;

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

/// `v · 32` modulo 2^160.
pub(super) fn mul32(v: RingInt) -> RingInt {
    RingInt {
        hi: (v.hi << 5) | (v.lo >> 123) as u32,
        lo: v.lo << 5,
    }
}
