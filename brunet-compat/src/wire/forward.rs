//! The forwarding wrapper, PType `"f"`: A → B → C for bootstrap CTMs.
//!
//! `Symphony/PacketForwarder.cs`. A sends to the forwarder B (AH, exact):
//! `0x00 | C(20) | ttl i16 | opts u16 | inner`. B rewrites it to
//! `0x01 | A(20) | inner` and AH-sends it toward C with the carried ttl and mode; C answers
//! "via B to A". Used by the near overlord to reach `own address + 2` through a leaf.

use crate::address::Address;
use crate::wire::ah::DeliveryMode;
use crate::wire::{read_address, read_i16};

/// Length of the first-leg header (leg byte included).
pub const LEG1_LEN: usize = 25;
/// Length of the second-leg header (leg byte included).
pub const LEG2_LEN: usize = 21;

/// A forwarding header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardRepr {
    /// First leg, A → B: where B should send it, and how.
    ToForwarder {
        /// The final destination C.
        destination: Address,
        /// TTL B should use.
        ttl: i16,
        /// Mode B should use.
        mode: DeliveryMode,
    },
    /// Second leg, B → C: who originated it.
    FromForwarder {
        /// The originator A.
        origin: Address,
    },
}

/// Why bytes are not a forwarding header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// Shorter than the header its leg byte announces.
    #[error("forwarding header truncated at {len} bytes")]
    Truncated {
        /// Bytes present.
        len: usize,
    },
    /// A leg byte other than 0 or 1.
    #[error("unknown forwarding leg {0}")]
    UnknownLeg(u8),
}

impl ForwardRepr {
    /// Parses the header at the front of `buf` (the bytes after `"f\0"`), returning it and
    /// the inner payload.
    pub fn parse(buf: &[u8]) -> Result<(ForwardRepr, &[u8]), ForwardError> {
        let truncated = ForwardError::Truncated { len: buf.len() };
        match buf.first() {
            None => Err(truncated),
            Some(0) if buf.len() >= LEG1_LEN => {
                let opts = u16::from_be_bytes([buf[23], buf[24]]);
                let repr = ForwardRepr::ToForwarder {
                    destination: read_address(buf, 1),
                    ttl: read_i16(buf, 21),
                    mode: opts.into(),
                };
                Ok((repr, &buf[LEG1_LEN..]))
            }
            Some(1) if buf.len() >= LEG2_LEN => {
                let repr = ForwardRepr::FromForwarder {
                    origin: read_address(buf, 1),
                };
                Ok((repr, &buf[LEG2_LEN..]))
            }
            Some(0 | 1) => Err(truncated),
            Some(&leg) => Err(ForwardError::UnknownLeg(leg)),
        }
    }

    /// Bytes [`ForwardRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        match self {
            ForwardRepr::ToForwarder { .. } => LEG1_LEN,
            ForwardRepr::FromForwarder { .. } => LEG2_LEN,
        }
    }

    /// Appends the header (without the PType) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match *self {
            ForwardRepr::ToForwarder {
                destination,
                ttl,
                mode,
            } => {
                out.push(0);
                out.extend_from_slice(destination.as_bytes());
                out.extend_from_slice(&ttl.to_be_bytes());
                out.extend_from_slice(&u16::from(mode).to_be_bytes());
            }
            ForwardRepr::FromForwarder { origin } => {
                out.push(1);
                out.extend_from_slice(origin.as_bytes());
            }
        }
    }

    /// The second-leg header B writes for a first leg received from `origin`, with the TTL
    /// and mode to send it on.
    pub fn relay(&self, origin: Address) -> Option<(ForwardRepr, Address, i16, DeliveryMode)> {
        match *self {
            ForwardRepr::ToForwarder {
                destination,
                ttl,
                mode,
            } => Some((
                ForwardRepr::FromForwarder { origin },
                destination,
                ttl,
                mode,
            )),
            ForwardRepr::FromForwarder { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_legs_round_trip() {
        let mut leg1 = vec![0];
        leg1.extend_from_slice(&[0xab; 20]);
        leg1.extend_from_slice(&[0, 2, 0, 4]);
        leg1.extend_from_slice(b"r\0");
        let (r, inner) = ForwardRepr::parse(&leg1).unwrap();
        assert_eq!(inner, b"r\0");
        assert_eq!(
            r,
            ForwardRepr::ToForwarder {
                destination: Address::from_bytes([0xab; 20]),
                ttl: 2,
                mode: DeliveryMode::Annealing
            }
        );
        let mut out = Vec::new();
        r.emit(&mut out);
        assert_eq!(out, &leg1[..LEG1_LEN]);

        let origin = Address::from_bytes([0x11; 20]);
        let (leg2, to, ttl, mode) = r.relay(origin).unwrap();
        assert_eq!(
            (to, ttl, mode),
            (Address::from_bytes([0xab; 20]), 2, DeliveryMode::Annealing)
        );
        let mut out = Vec::new();
        leg2.emit(&mut out);
        assert_eq!(out.len(), leg2.buffer_len());
        assert_eq!(ForwardRepr::parse(&out).unwrap(), (leg2, &[][..]));
        assert!(leg2.relay(origin).is_none());
    }

    #[test]
    fn malformed() {
        assert_eq!(
            ForwardRepr::parse(&[]),
            Err(ForwardError::Truncated { len: 0 })
        );
        assert_eq!(
            ForwardRepr::parse(&[0; 24]),
            Err(ForwardError::Truncated { len: 24 })
        );
        assert_eq!(
            ForwardRepr::parse(&[1; 20]),
            Err(ForwardError::Truncated { len: 20 })
        );
        assert_eq!(
            ForwardRepr::parse(&[2; 30]),
            Err(ForwardError::UnknownLeg(2))
        );
    }
}
