//! PType: the payload-type prefix that starts every Brunet packet and nested payload.
//!
//! Brunet's `Util/PType.cs`: a first byte in 1..=31 is a one-byte numeric type (2 = AH);
//! anything else is a UTF-8 name terminated by NUL (`"r\0"` ReqRep, `"p\0"` RPC,
//! `"f\0"` forwarding). Handlers are demultiplexed on it.

use std::borrow::Cow;
use std::fmt;

use super::EmitError;

/// A payload type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PType {
    /// One-byte numeric type, 1..=31.
    Numeric(u8),
    /// A name, written as UTF-8 followed by NUL.
    Name(Cow<'static, str>),
}

/// Why bytes do not start with a PType.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PTypeError {
    /// No bytes at all.
    #[error("empty payload: no PType")]
    Empty,
    /// A name starting with NUL: Brunet rejects empty names.
    #[error("empty PType name")]
    EmptyName,
    /// A name with no terminating NUL.
    #[error("PType name not NUL-terminated")]
    Unterminated,
    /// A name that is not UTF-8.
    #[error("PType name is not UTF-8")]
    InvalidUtf8,
}

impl PType {
    /// Legacy linking (unused by Brunet 2011, listed for completeness).
    pub const LINKING: PType = PType::Numeric(1);
    /// AH: structured (greedy/annealing) routing.
    pub const AH: PType = PType::Numeric(2);
    /// Forwarding (A → B → C bootstrap).
    pub const FORWARDING: PType = PType::Name(Cow::Borrowed("f"));
    /// Request/reply.
    pub const REQREP: PType = PType::Name(Cow::Borrowed("r"));
    /// RPC (ADR method calls inside ReqRep).
    pub const RPC: PType = PType::Name(Cow::Borrowed("p"));
    /// Relay ("tunnel") edge data.
    pub const RELAY: PType = PType::Name(Cow::Borrowed("ftun"));
    /// Pathing (several nodes behind one edge listener).
    pub const PATHING: PType = PType::Name(Cow::Borrowed("/"));
    /// Legacy connection messages.
    pub const CONNECTION: PType = PType::Name(Cow::Borrowed("c"));
    /// Echo.
    pub const ECHO: PType = PType::Name(Cow::Borrowed("e"));
    /// IP (IPOP).
    pub const IP: PType = PType::Name(Cow::Borrowed("i"));

    /// Splits the PType off the front of `buf`, returning it and the rest.
    pub fn parse(buf: &[u8]) -> Result<(PType, &[u8]), PTypeError> {
        let (&first, _) = buf.split_first().ok_or(PTypeError::Empty)?;
        if (1..=31).contains(&first) {
            return Ok((PType::Numeric(first), &buf[1..]));
        }
        if first == 0 {
            return Err(PTypeError::EmptyName);
        }
        let nul = buf
            .iter()
            .position(|&b| b == 0)
            .ok_or(PTypeError::Unterminated)?;
        let name = std::str::from_utf8(&buf[..nul]).map_err(|_| PTypeError::InvalidUtf8)?;
        let ptype = PType::Name(Cow::Owned(name.to_owned()));
        Ok((ptype, &buf[nul + 1..]))
    }

    /// Bytes [`PType::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            PType::Numeric(_) => 1,
            PType::Name(n) => n.len() + 1,
        }
    }

    /// Appends the PType to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        match self {
            PType::Numeric(n @ 1..=31) => out.push(*n),
            PType::Numeric(_) => return Err(EmitError::InvalidPType),
            PType::Name(name) => {
                let bytes = name.as_bytes();
                match bytes.first() {
                    None | Some(1..=31) => return Err(EmitError::InvalidPType),
                    Some(_) if bytes.contains(&0) => return Err(EmitError::InteriorNul),
                    Some(_) => {}
                }
                out.extend_from_slice(bytes);
                out.push(0);
            }
        }
        Ok(())
    }
}

impl fmt::Display for PType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PType::Numeric(n) => write!(f, "_{n}"),
            PType::Name(name) => f.write_str(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(bytes: &[u8]) -> (PType, usize) {
        let (p, rest) = PType::parse(bytes).unwrap();
        let mut out = Vec::new();
        p.emit(&mut out).unwrap();
        assert_eq!(out, &bytes[..bytes.len() - rest.len()]);
        assert_eq!(p.buffer_len(), out.len());
        (p, rest.len())
    }

    #[test]
    fn known_prefixes() {
        assert_eq!(round_trip(b"\x02abc"), (PType::AH, 3));
        assert_eq!(round_trip(b"r\0\x01"), (PType::REQREP, 1));
        assert_eq!(round_trip(b"p\0"), (PType::RPC, 0));
        assert_eq!(round_trip(b"ftun\0xy"), (PType::RELAY, 2));
        assert_eq!(PType::Name("r".into()), PType::REQREP);
        for n in 1..=31u8 {
            assert_eq!(round_trip(&[n]), (PType::Numeric(n), 0));
        }
    }

    #[test]
    fn malformed() {
        assert_eq!(PType::parse(b""), Err(PTypeError::Empty));
        assert_eq!(PType::parse(b"\0r"), Err(PTypeError::EmptyName));
        assert_eq!(PType::parse(b"rp"), Err(PTypeError::Unterminated));
        assert_eq!(PType::parse(b"\xff\0"), Err(PTypeError::InvalidUtf8));
    }

    #[test]
    fn invalid_values_do_not_emit() {
        let mut out = Vec::new();
        assert_eq!(
            PType::Numeric(0).emit(&mut out),
            Err(EmitError::InvalidPType)
        );
        assert_eq!(
            PType::Numeric(32).emit(&mut out),
            Err(EmitError::InvalidPType)
        );
        assert_eq!(
            PType::Name("".into()).emit(&mut out),
            Err(EmitError::InvalidPType)
        );
        assert_eq!(
            PType::Name("\x05x".into()).emit(&mut out),
            Err(EmitError::InvalidPType)
        );
        assert_eq!(
            PType::Name("a\0b".into()).emit(&mut out),
            Err(EmitError::InteriorNul)
        );
        assert!(out.is_empty());
    }
}
