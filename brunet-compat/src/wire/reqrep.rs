//! Request/reply framing, PType `"r"`.
//!
//! `Messaging/ReqrepManager.cs`: `type u8 | id i32 | body` after `"r\0"`. Requests are
//! retransmitted with the same id until a reply comes; the reply carries the request's id
//! and the requester then sends a ReplyAck (15 bytes with the UDP ids). Request and Reply
//! bodies start with their own PType (`"p\0"` for RPC); an Error body is one
//! [`FailureCode`] byte; acks have no body.

use crate::wire::read_i32;

/// Length of the header after `"r\0"`.
pub const HEADER_LEN: usize = 5;

/// The ReqRep message type (`ReqrepType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReqRepType {
    /// 1: must be replied to at least once.
    Request,
    /// 2: needs no reply.
    LossyRequest,
    /// 3: the answer to a request.
    Reply,
    /// 4: acknowledges a reply so the replier can drop its cache entry.
    ReplyAck,
    /// 5: acknowledges a request that takes long to answer.
    RequestAck,
    /// 6: the request failed; the body is a [`FailureCode`].
    Error,
    /// Any other value, kept for re-encoding.
    Unknown(u8),
}

impl From<u8> for ReqRepType {
    fn from(v: u8) -> Self {
        match v {
            1 => ReqRepType::Request,
            2 => ReqRepType::LossyRequest,
            3 => ReqRepType::Reply,
            4 => ReqRepType::ReplyAck,
            5 => ReqRepType::RequestAck,
            6 => ReqRepType::Error,
            other => ReqRepType::Unknown(other),
        }
    }
}

impl From<ReqRepType> for u8 {
    fn from(t: ReqRepType) -> u8 {
        match t {
            ReqRepType::Request => 1,
            ReqRepType::LossyRequest => 2,
            ReqRepType::Reply => 3,
            ReqRepType::ReplyAck => 4,
            ReqRepType::RequestAck => 5,
            ReqRepType::Error => 6,
            ReqRepType::Unknown(v) => v,
        }
    }
}

impl ReqRepType {
    /// True for the types whose body is a payload with its own PType.
    pub fn carries_payload(self) -> bool {
        matches!(
            self,
            ReqRepType::Request | ReqRepType::LossyRequest | ReqRepType::Reply
        )
    }
}

/// The body of an [`ReqRepType::Error`] message (`ReqrepError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCode {
    /// 1: nobody handles the request's PType.
    NoHandler,
    /// 2: the handler failed (RPC maps this to −32603).
    HandlerFailure,
    /// 3: no reply in time (local only).
    Timeout,
    /// 4: resending failed (local only).
    Send,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for FailureCode {
    fn from(v: u8) -> Self {
        match v {
            1 => FailureCode::NoHandler,
            2 => FailureCode::HandlerFailure,
            3 => FailureCode::Timeout,
            4 => FailureCode::Send,
            other => FailureCode::Unknown(other),
        }
    }
}

/// Why bytes are not a ReqRep header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReqRepError {
    /// Fewer than [`HEADER_LEN`] bytes.
    #[error("ReqRep header truncated: {len} of 5 bytes")]
    Truncated {
        /// Bytes present.
        len: usize,
    },
}

/// A checked view of a ReqRep message (the bytes after `"r\0"`).
#[derive(Debug, Clone)]
pub struct ReqRepPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ReqRepPacket<T> {
    /// Wraps `buffer` after checking it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Self, ReqRepError> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(ReqRepError::Truncated { len });
        }
        Ok(ReqRepPacket { buffer })
    }

    /// The message type.
    pub fn kind(&self) -> ReqRepType {
        self.buffer.as_ref()[0].into()
    }

    /// The request id (chosen by the requester, echoed by replies and acks).
    pub fn id(&self) -> i32 {
        read_i32(self.buffer.as_ref(), 1)
    }

    /// The body after the header.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

/// The fields of a ReqRep header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReqRepRepr {
    /// The message type.
    pub kind: ReqRepType,
    /// The request id.
    pub id: i32,
}

impl ReqRepRepr {
    /// Reads the fields of a checked message.
    pub fn parse<T: AsRef<[u8]>>(packet: &ReqRepPacket<T>) -> ReqRepRepr {
        ReqRepRepr {
            kind: packet.kind(),
            id: packet.id(),
        }
    }

    /// Bytes [`ReqRepRepr::emit`] writes: [`HEADER_LEN`].
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Appends the header (without the PType) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.kind.into());
        out.extend_from_slice(&self.id.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_ack_from_capture() {
        // #14 after the UDP ids and "r\0": 04 7f 76 54 ca
        let bytes = [0x04, 0x7f, 0x76, 0x54, 0xca];
        let p = ReqRepPacket::new_checked(&bytes[..]).unwrap();
        let r = ReqRepRepr::parse(&p);
        assert_eq!(
            r,
            ReqRepRepr {
                kind: ReqRepType::ReplyAck,
                id: 0x7f7654ca
            }
        );
        assert!(p.body().is_empty());
        let mut out = Vec::new();
        r.emit(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn types_round_trip() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(ReqRepType::from(v)), v);
        }
        assert!(ReqRepType::Reply.carries_payload());
        assert!(!ReqRepType::ReplyAck.carries_payload());
        assert_eq!(FailureCode::from(2), FailureCode::HandlerFailure);
        assert_eq!(FailureCode::from(9), FailureCode::Unknown(9));
    }

    #[test]
    fn truncated() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                ReqRepPacket::new_checked(&[1u8; 4][..len]).unwrap_err(),
                ReqRepError::Truncated { len }
            );
        }
    }
}
