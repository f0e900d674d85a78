//! The AH header: structured routing, PType 2.
//!
//! `Symphony/AHSender.cs`. After the PType byte `0x02` come 46 bytes, then the inner
//! payload with its own PType:
//!
//! ```text
//! 0  hops  i16   hops taken so far, this one included (the originator sends 1)
//! 2  ttl   i16
//! 4  src   20 bytes
//! 24 dst   20 bytes
//! 44 opts  u16   delivery mode
//! ```

use crate::address::Address;
use crate::wire::{read_address, read_i16};

/// Length of the header after the PType byte.
pub const HEADER_LEN: usize = 46;

mod field {
    use std::ops::Range;
    pub const HOPS: Range<usize> = 0..2;
    pub const TTL: Range<usize> = 2..4;
    pub const SRC: usize = 4;
    pub const DST: usize = 24;
    pub const OPTS: Range<usize> = 44..46;
}

/// How the last hop(s) deliver an AH packet (`AHHeader.Options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryMode {
    /// 0: annealing; both nodes bracketing the destination get it.
    Default,
    /// 1: greedy; whoever holds it when hops reach the TTL.
    Last,
    /// 2: annealing; every node on the path.
    Path,
    /// 3: greedy; the closest node only.
    Greedy,
    /// 4: like default, with one uphill step allowed.
    Annealing,
    /// 5: only the exact address.
    Exact,
    /// Any other value, kept for re-encoding.
    Unknown(u16),
}

impl From<u16> for DeliveryMode {
    fn from(v: u16) -> Self {
        match v {
            0 => DeliveryMode::Default,
            1 => DeliveryMode::Last,
            2 => DeliveryMode::Path,
            3 => DeliveryMode::Greedy,
            4 => DeliveryMode::Annealing,
            5 => DeliveryMode::Exact,
            other => DeliveryMode::Unknown(other),
        }
    }
}

impl From<DeliveryMode> for u16 {
    fn from(m: DeliveryMode) -> u16 {
        match m {
            DeliveryMode::Default => 0,
            DeliveryMode::Last => 1,
            DeliveryMode::Path => 2,
            DeliveryMode::Greedy => 3,
            DeliveryMode::Annealing => 4,
            DeliveryMode::Exact => 5,
            DeliveryMode::Unknown(v) => v,
        }
    }
}

impl DeliveryMode {
    /// Brunet's name for the mode, as in `sender:ah?…&mode=<name>` URIs.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            DeliveryMode::Default => "default",
            DeliveryMode::Last => "last",
            DeliveryMode::Path => "path",
            DeliveryMode::Greedy => "greedy",
            DeliveryMode::Annealing => "annealing",
            DeliveryMode::Exact => "exact",
            DeliveryMode::Unknown(_) => return None,
        })
    }
}

/// Why bytes are not an AH header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AhError {
    /// Fewer than [`HEADER_LEN`] bytes.
    #[error("AH header truncated: {len} of 46 bytes")]
    Truncated {
        /// Bytes present.
        len: usize,
    },
}

/// A checked view of an AH header and its payload (the bytes after PType `0x02`).
#[derive(Debug, Clone)]
pub struct AhPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> AhPacket<T> {
    /// Wraps `buffer` after checking it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Self, AhError> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(AhError::Truncated { len });
        }
        Ok(AhPacket { buffer })
    }

    /// Hops taken, this one included.
    pub fn hops(&self) -> i16 {
        read_i16(self.buffer.as_ref(), field::HOPS.start)
    }

    /// Time to live in hops.
    pub fn ttl(&self) -> i16 {
        read_i16(self.buffer.as_ref(), field::TTL.start)
    }

    /// The originator.
    pub fn source(&self) -> Address {
        read_address(self.buffer.as_ref(), field::SRC)
    }

    /// The destination.
    pub fn destination(&self) -> Address {
        read_address(self.buffer.as_ref(), field::DST)
    }

    /// The delivery mode.
    pub fn mode(&self) -> DeliveryMode {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::OPTS.start], b[field::OPTS.start + 1]]).into()
    }

    /// The inner payload, starting with its PType.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// The underlying bytes.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> AhPacket<T> {
    /// Sets the hop count, as each forwarder does (`IncrementHops`).
    pub fn set_hops(&mut self, hops: i16) {
        self.buffer.as_mut()[field::HOPS].copy_from_slice(&hops.to_be_bytes());
    }

    /// Sets the TTL.
    pub fn set_ttl(&mut self, ttl: i16) {
        self.buffer.as_mut()[field::TTL].copy_from_slice(&ttl.to_be_bytes());
    }
}

/// The fields of an AH header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AhRepr {
    /// Hops taken, this one included.
    pub hops: i16,
    /// Time to live in hops.
    pub ttl: i16,
    /// The originator.
    pub source: Address,
    /// The destination.
    pub destination: Address,
    /// The delivery mode.
    pub mode: DeliveryMode,
}

impl AhRepr {
    /// Reads the fields of a checked header.
    pub fn parse<T: AsRef<[u8]>>(packet: &AhPacket<T>) -> AhRepr {
        AhRepr {
            hops: packet.hops(),
            ttl: packet.ttl(),
            source: packet.source(),
            destination: packet.destination(),
            mode: packet.mode(),
        }
    }

    /// Bytes [`AhRepr::emit`] writes: [`HEADER_LEN`].
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Appends the header (without the PType byte) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.hops.to_be_bytes());
        out.extend_from_slice(&self.ttl.to_be_bytes());
        out.extend_from_slice(self.source.as_bytes());
        out.extend_from_slice(self.destination.as_bytes());
        out.extend_from_slice(&u16::from(self.mode).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut b = vec![0, 1, 0, 4];
        b.extend_from_slice(&[0x3e; 20]);
        b.extend_from_slice(&[0x17; 20]);
        b.extend_from_slice(&[0, 5]);
        b.extend_from_slice(b"r\0");
        b
    }

    #[test]
    fn parse_and_emit_round_trip() {
        let bytes = sample();
        let p = AhPacket::new_checked(&bytes[..]).unwrap();
        let r = AhRepr::parse(&p);
        assert_eq!((r.hops, r.ttl, r.mode), (1, 4, DeliveryMode::Exact));
        assert_eq!(r.source.as_bytes(), &[0x3e; 20]);
        assert_eq!(r.destination.as_bytes(), &[0x17; 20]);
        assert_eq!(p.payload(), b"r\0");
        let mut out = Vec::new();
        r.emit(&mut out);
        assert_eq!(out, &bytes[..HEADER_LEN]);
        assert_eq!(r.buffer_len(), HEADER_LEN);
    }

    #[test]
    fn setters_rewrite_in_place() {
        let mut bytes = sample();
        let mut p = AhPacket::new_checked(&mut bytes[..]).unwrap();
        p.set_hops(2);
        p.set_ttl(-1);
        assert_eq!((p.hops(), p.ttl()), (2, -1));
    }

    #[test]
    fn modes_and_truncation() {
        for v in 0..8u16 {
            assert_eq!(u16::from(DeliveryMode::from(v)), v);
        }
        assert_eq!(DeliveryMode::from(4).name(), Some("annealing"));
        assert_eq!(DeliveryMode::from(9).name(), None);
        let bytes = sample();
        for cut in 0..HEADER_LEN {
            assert_eq!(
                AhPacket::new_checked(&bytes[..cut]).unwrap_err(),
                AhError::Truncated { len: cut }
            );
        }
    }
}
