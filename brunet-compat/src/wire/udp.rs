//! UDP edge framing: one datagram is one edge packet.
//!
//! `Transport/UdpEdgeListener.cs`: `sender i32 | receiver i32 | packet`, where `sender` is
//! the sending side's id for the edge and `receiver` the id the peer gave it.
//!
//! * `receiver == 0`: the first datagram of a new edge; the listener answers with a fresh
//!   random positive id of its own.
//! * `receiver < 0`: a control message for the edge `!receiver` (bitwise complement):
//!   `code i32 [| ADR map]` with 1 EdgeClosed, 2 EdgeDataAnnounce `{RemoteTA, LocalTA}`,
//!   3 Null.
//! * Datagrams of 8 bytes or fewer are ignored by the listener; its self wake-ups are
//!   `ff×8` (NOTES.md §1).

use crate::wire::adr::{self, Adr, AdrError};
use crate::wire::{EmitError, read_i32};

/// Length of the id pair.
pub const HEADER_LEN: usize = 8;

/// The id pair at the front of every datagram, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpHeader {
    /// The sender's id for this edge.
    pub sender: i32,
    /// The receiver's id as the sender knows it: 0 for a new edge, complemented (< 0)
    /// for control messages.
    pub receiver: i32,
}

impl UdpHeader {
    /// Header of a control message to the peer's edge `receiver` (stored complemented).
    pub fn control(sender: i32, receiver: i32) -> UdpHeader {
        UdpHeader {
            sender,
            receiver: !receiver,
        }
    }

    /// True for the first datagram of a new edge.
    pub fn is_new_edge(&self) -> bool {
        self.receiver == 0
    }

    /// For a control message, the receiver's real edge id.
    pub fn control_target(&self) -> Option<i32> {
        (self.receiver < 0).then_some(!self.receiver)
    }

    /// Splits the header off `buf`.
    pub fn parse(buf: &[u8]) -> Result<(UdpHeader, &[u8]), UdpError> {
        if buf.len() < HEADER_LEN {
            return Err(UdpError::Truncated { len: buf.len() });
        }
        let h = UdpHeader {
            sender: read_i32(buf, 0),
            receiver: read_i32(buf, 4),
        };
        Ok((h, &buf[HEADER_LEN..]))
    }

    /// Appends the header to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.sender.to_be_bytes());
        out.extend_from_slice(&self.receiver.to_be_bytes());
    }
}

/// A control message (`ControlCode`).
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// 1: the peer closed the edge.
    EdgeClosed,
    /// 2: the peer tells us how it sees the edge, an ADR map with `RemoteTA` (our address
    /// as the peer sees it, i.e. a NAT mapping) and `LocalTA`. Kept as the map so its key
    /// order re-encodes exactly.
    EdgeDataAnnounce(Adr),
    /// 3: ignore (a keep-alive for NAT bindings).
    Null,
    /// Any other code with its raw body.
    Unknown {
        /// The code.
        code: i32,
        /// The rest of the datagram.
        data: Vec<u8>,
    },
}

impl Control {
    /// An EdgeDataAnnounce with Brunet's two keys.
    pub fn edge_data_announce(remote_ta: &str, local_ta: &str) -> Control {
        Control::EdgeDataAnnounce(Adr::map([
            ("RemoteTA", Adr::str(remote_ta)),
            ("LocalTA", Adr::str(local_ta)),
        ]))
    }

    /// The `RemoteTA` of an EdgeDataAnnounce: our transport address as the peer sees it.
    pub fn remote_ta(&self) -> Option<&str> {
        match self {
            Control::EdgeDataAnnounce(m) => m.get("RemoteTA").and_then(Adr::as_str),
            _ => None,
        }
    }

    /// Parses a control body (after the header).
    pub fn parse(body: &[u8]) -> Result<Control, UdpError> {
        if body.len() < 4 {
            return Err(UdpError::ControlTruncated { len: body.len() });
        }
        let code = read_i32(body, 0);
        let rest = &body[4..];
        let no_body = |c: Control| {
            if rest.is_empty() {
                Ok(c)
            } else {
                Err(UdpError::TrailingBytes { count: rest.len() })
            }
        };
        match code {
            1 => no_body(Control::EdgeClosed),
            2 => {
                let map = adr::parse_exact(rest)?;
                if map.as_map().is_none() {
                    return Err(UdpError::NotAMap);
                }
                Ok(Control::EdgeDataAnnounce(map))
            }
            3 => no_body(Control::Null),
            code => Ok(Control::Unknown {
                code,
                data: rest.to_vec(),
            }),
        }
    }

    /// Appends the control body to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        match self {
            Control::EdgeClosed => out.extend_from_slice(&1i32.to_be_bytes()),
            Control::EdgeDataAnnounce(map) => {
                out.extend_from_slice(&2i32.to_be_bytes());
                map.emit(out)?;
            }
            Control::Null => out.extend_from_slice(&3i32.to_be_bytes()),
            Control::Unknown { code, data } => {
                out.extend_from_slice(&code.to_be_bytes());
                out.extend_from_slice(data);
            }
        }
        Ok(())
    }
}

/// Why a datagram is not a valid UDP edge packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UdpError {
    /// Shorter than the 8-byte id pair.
    #[error("datagram truncated: {len} bytes")]
    Truncated {
        /// Bytes present.
        len: usize,
    },
    /// A control message without its 4-byte code.
    #[error("control message truncated: {len} bytes after the ids")]
    ControlTruncated {
        /// Bytes after the header.
        len: usize,
    },
    /// EdgeClosed or Null followed by extra bytes.
    #[error("{count} trailing bytes after control code")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The EdgeDataAnnounce body is not valid ADR.
    #[error("EdgeDataAnnounce: {0}")]
    Adr(#[from] AdrError),
    /// The EdgeDataAnnounce body is ADR but not a map.
    #[error("EdgeDataAnnounce body is not a map")]
    NotAMap,
}

/// A datagram decoded one level: ids, then raw packet or control message.
#[derive(Debug, Clone, PartialEq)]
pub enum UdpDatagram<'a> {
    /// Exactly the 8 id bytes: ignored by Brunet (`ff×8` is a listener wake-up).
    HeaderOnly(UdpHeader),
    /// An edge packet (new edge when `receiver == 0`), starting with a PType.
    Data(UdpHeader, &'a [u8]),
    /// A control message.
    Control(UdpHeader, Control),
}

impl<'a> UdpDatagram<'a> {
    /// Decodes the framing of a whole UDP payload.
    pub fn parse(buf: &'a [u8]) -> Result<UdpDatagram<'a>, UdpError> {
        let (header, rest) = UdpHeader::parse(buf)?;
        if rest.is_empty() {
            Ok(UdpDatagram::HeaderOnly(header))
        } else if header.receiver < 0 {
            Ok(UdpDatagram::Control(header, Control::parse(rest)?))
        } else {
            Ok(UdpDatagram::Data(header, rest))
        }
    }

    /// True for Brunet's listener self wake-up (`ff ff ff ff ff ff ff ff`).
    pub fn is_wakeup(&self) -> bool {
        *self
            == UdpDatagram::HeaderOnly(UdpHeader {
                sender: -1,
                receiver: -1,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_edge_and_data() {
        // #11: 71 57 04 2b 00 00 00 00 72 00 01 …
        let d = [0x71, 0x57, 0x04, 0x2b, 0, 0, 0, 0, b'r', 0, 1];
        let UdpDatagram::Data(h, rest) = UdpDatagram::parse(&d).unwrap() else {
            panic!("not data");
        };
        assert_eq!(h.sender, 1_901_528_107);
        assert!(h.is_new_edge());
        assert_eq!(rest, b"r\0\x01");
        let mut out = Vec::new();
        h.emit(&mut out);
        assert_eq!(out, d[..8]);
    }

    #[test]
    fn wakeup() {
        let d = UdpDatagram::parse(&[0xff; 8]).unwrap();
        assert!(d.is_wakeup());
        assert!(!UdpDatagram::parse(&[0; 8]).unwrap().is_wakeup());
    }

    #[test]
    fn control_messages_round_trip() {
        let h = UdpHeader::control(5, 7);
        assert_eq!(h.control_target(), Some(7));
        for c in [
            Control::EdgeClosed,
            Control::Null,
            Control::edge_data_announce("brunet.udp://1.2.3.4:5", "brunet.udp://10.0.0.1:5"),
            Control::Unknown {
                code: 9,
                data: vec![1, 2],
            },
        ] {
            let mut out = Vec::new();
            h.emit(&mut out);
            c.emit(&mut out).unwrap();
            assert_eq!(
                UdpDatagram::parse(&out).unwrap(),
                UdpDatagram::Control(h, c.clone())
            );
        }
        let ann = Control::edge_data_announce("brunet.udp://1.2.3.4:5", "x");
        assert_eq!(ann.remote_ta(), Some("brunet.udp://1.2.3.4:5"));
    }

    #[test]
    fn malformed() {
        assert_eq!(
            UdpDatagram::parse(&[0; 7]),
            Err(UdpError::Truncated { len: 7 })
        );
        let mut d = vec![0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe, 0, 0];
        assert_eq!(
            UdpDatagram::parse(&d),
            Err(UdpError::ControlTruncated { len: 2 })
        );
        d.extend_from_slice(&[0, 1, 9]);
        assert_eq!(
            UdpDatagram::parse(&d),
            Err(UdpError::TrailingBytes { count: 1 })
        );
        let mut a = vec![0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 2, b'T'];
        assert_eq!(UdpDatagram::parse(&a), Err(UdpError::NotAMap));
        a.pop();
        a.push(b'{');
        assert_eq!(
            UdpDatagram::parse(&a),
            Err(UdpError::Adr(AdrError::Truncated { offset: 1 }))
        );
    }
}
