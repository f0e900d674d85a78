//! A whole UDP payload decoded through every layer, and re-encoded byte for byte.
//!
//! The layers nest: UDP ids → PType → AH → forwarding → ReqRep → RPC (ADR). Anything with
//! a PType we do not model is kept raw in [`Payload::Other`], so every valid datagram
//! round-trips. Nesting of payloads is bounded by [`MAX_NESTING`].

use super::EmitError;
use super::adr::Adr;
use super::ah::{AhError, AhPacket, AhRepr};
use super::forward::{ForwardError, ForwardRepr};
use super::ptype::{PType, PTypeError};
use super::reqrep::{ReqRepError, ReqRepPacket, ReqRepRepr};
use super::rpc::{self, RpcError};
use super::udp::{Control, UdpDatagram, UdpError, UdpHeader};

/// Most payloads nested inside one another (AH in forwarding in AH …). Brunet nests at
/// most 4 (AH, forwarding, ReqRep, RPC); the bound keeps recursion shallow on hostile input.
pub const MAX_NESTING: usize = 8;

/// A decoded UDP payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The edge ids.
    pub header: UdpHeader,
    /// What follows them.
    pub body: PacketBody,
}

/// What follows the edge ids.
#[derive(Debug, Clone, PartialEq)]
pub enum PacketBody {
    /// Nothing: an 8-byte datagram that Brunet ignores (its listener wake-ups).
    Empty,
    /// A control message (receiver id negative).
    Control(Control),
    /// An edge packet.
    Payload(Payload),
}

/// A payload, selected by its PType.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// PType 2: routed over the structured overlay.
    Ah {
        /// The AH header.
        header: AhRepr,
        /// The routed payload.
        inner: Box<Payload>,
    },
    /// PType `"f"`: forwarded through a neighbour.
    Forward {
        /// The forwarding header.
        header: ForwardRepr,
        /// The forwarded payload.
        inner: Box<Payload>,
    },
    /// PType `"r"`: request/reply.
    ReqRep {
        /// Type and id.
        header: ReqRepRepr,
        /// The body.
        body: ReqRepBody,
    },
    /// PType `"p"`: an RPC value.
    Rpc(Adr),
    /// Any other PType, kept raw.
    Other {
        /// The PType.
        ptype: PType,
        /// The bytes after it.
        data: Vec<u8>,
    },
}

/// The body of a ReqRep message.
#[derive(Debug, Clone, PartialEq)]
pub enum ReqRepBody {
    /// A request or reply payload.
    Payload(Box<Payload>),
    /// Acks (empty), errors (a failure code) and empty requests, raw.
    Raw(Vec<u8>),
}

/// Why a datagram does not decode, by layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Edge ids or control message.
    #[error("udp: {0}")]
    Udp(#[from] UdpError),
    /// A payload's type prefix.
    #[error("ptype: {0}")]
    PType(#[from] PTypeError),
    /// The AH header.
    #[error("ah: {0}")]
    Ah(#[from] AhError),
    /// The forwarding header.
    #[error("forward: {0}")]
    Forward(#[from] ForwardError),
    /// The ReqRep header.
    #[error("reqrep: {0}")]
    ReqRep(#[from] ReqRepError),
    /// The RPC value.
    #[error("rpc: {0}")]
    Rpc(#[from] RpcError),
    /// Payloads nested deeper than [`MAX_NESTING`].
    #[error("payloads nested deeper than {MAX_NESTING}")]
    TooDeep,
}

impl Packet {
    /// Decodes a whole UDP payload.
    pub fn parse(buf: &[u8]) -> Result<Packet, PacketError> {
        let (header, body) = match UdpDatagram::parse(buf)? {
            UdpDatagram::HeaderOnly(h) => (h, PacketBody::Empty),
            UdpDatagram::Control(h, c) => (h, PacketBody::Control(c)),
            UdpDatagram::Data(h, data) => (h, PacketBody::Payload(Payload::parse(data)?)),
        };
        Ok(Packet { header, body })
    }

    /// Appends the datagram to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        self.header.emit(out);
        match &self.body {
            PacketBody::Empty => Ok(()),
            PacketBody::Control(c) => c.emit(out),
            PacketBody::Payload(p) => p.emit(out),
        }
    }

    /// The datagram as a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EmitError> {
        let mut out = Vec::new();
        self.emit(&mut out)?;
        Ok(out)
    }

    /// The innermost RPC value, looking through AH, forwarding and ReqRep.
    pub fn rpc(&self) -> Option<&Adr> {
        match &self.body {
            PacketBody::Payload(p) => p.rpc(),
            _ => None,
        }
    }
}

impl Payload {
    /// Decodes a payload starting with its PType.
    pub fn parse(buf: &[u8]) -> Result<Payload, PacketError> {
        Self::parse_at(buf, 0)
    }

    fn parse_at(buf: &[u8], depth: usize) -> Result<Payload, PacketError> {
        if depth >= MAX_NESTING {
            return Err(PacketError::TooDeep);
        }
        let (ptype, rest) = PType::parse(buf)?;
        let inner = |bytes: &[u8]| Self::parse_at(bytes, depth + 1).map(Box::new);
        Ok(match ptype {
            PType::AH => {
                let ah = AhPacket::new_checked(rest)?;
                Payload::Ah {
                    header: AhRepr::parse(&ah),
                    inner: inner(ah.payload())?,
                }
            }
            p if p == PType::FORWARDING => {
                let (header, data) = ForwardRepr::parse(rest)?;
                Payload::Forward {
                    header,
                    inner: inner(data)?,
                }
            }
            p if p == PType::REQREP => {
                let rr = ReqRepPacket::new_checked(rest)?;
                let header = ReqRepRepr::parse(&rr);
                let body = if header.kind.carries_payload() && !rr.body().is_empty() {
                    ReqRepBody::Payload(inner(rr.body())?)
                } else {
                    ReqRepBody::Raw(rr.body().to_vec())
                };
                Payload::ReqRep { header, body }
            }
            p if p == PType::RPC => Payload::Rpc(rpc::parse(buf)?),
            ptype => Payload::Other {
                ptype,
                data: rest.to_vec(),
            },
        })
    }

    /// Appends the payload, PType first, to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        match self {
            Payload::Ah { header, inner } => {
                PType::AH.emit(out)?;
                header.emit(out);
                inner.emit(out)
            }
            Payload::Forward { header, inner } => {
                PType::FORWARDING.emit(out)?;
                header.emit(out);
                inner.emit(out)
            }
            Payload::ReqRep { header, body } => {
                PType::REQREP.emit(out)?;
                header.emit(out);
                match body {
                    ReqRepBody::Payload(p) => p.emit(out),
                    ReqRepBody::Raw(raw) => {
                        out.extend_from_slice(raw);
                        Ok(())
                    }
                }
            }
            Payload::Rpc(value) => rpc::emit(value, out),
            Payload::Other { ptype, data } => {
                ptype.emit(out)?;
                out.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// The innermost RPC value, looking through AH, forwarding and ReqRep.
    pub fn rpc(&self) -> Option<&Adr> {
        match self {
            Payload::Ah { inner, .. } | Payload::Forward { inner, .. } => inner.rpc(),
            Payload::ReqRep {
                body: ReqRepBody::Payload(p),
                ..
            } => p.rpc(),
            Payload::Rpc(v) => Some(v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::reqrep::ReqRepType;

    #[test]
    fn ping_request_from_capture() {
        // #29, 38 bytes.
        let mut d = vec![0x71, 0x57, 0x04, 0x2b, 0x6e, 0xec, 0x1d, 0x94];
        d.extend_from_slice(b"r\0\x01\x55\x40\x9a\x31p\0(_sys:link.Ping\0(_\0))");
        assert_eq!(d.len(), 38);
        let p = Packet::parse(&d).unwrap();
        let PacketBody::Payload(Payload::ReqRep { header, .. }) = &p.body else {
            panic!("{p:?}");
        };
        assert_eq!(header.kind, ReqRepType::Request);
        assert_eq!(header.id, 0x55409a31);
        assert_eq!(p.rpc().and_then(|v| v.as_list()).map(|l| l.len()), Some(2));
        assert_eq!(p.to_bytes().unwrap(), d);
        for cut in 9..d.len() {
            // Cut right after the ReqRep header, it is a (useless but valid) empty request.
            let empty_request = cut == 15;
            assert_eq!(
                Packet::parse(&d[..cut]).is_ok(),
                empty_request,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn unknown_ptypes_are_kept() {
        let mut d = vec![0, 0, 0, 1, 0, 0, 0, 2];
        d.extend_from_slice(b"ftun\0\x01\x02");
        let p = Packet::parse(&d).unwrap();
        assert!(matches!(p.body, PacketBody::Payload(Payload::Other { .. })));
        assert_eq!(p.to_bytes().unwrap(), d);
    }

    #[test]
    fn nesting_is_bounded() {
        // An AH packet whose payload is AH … 20 times.
        let mut payload = b"p\0T".to_vec();
        for _ in 0..20 {
            let mut outer = vec![2];
            outer.extend_from_slice(&[0; 46]);
            outer.extend_from_slice(&payload);
            payload = outer;
        }
        assert_eq!(Payload::parse(&payload), Err(PacketError::TooDeep));
    }
}
