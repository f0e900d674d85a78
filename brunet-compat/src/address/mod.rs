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

mod ring_int;
#[cfg(test)]
mod tests;
mod text;

pub use ring_int::{Distance, RingInt};

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
        Distance::from_twos_complement(b.to_ring_int().wrapping_sub(self.to_ring_int()))
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
}
