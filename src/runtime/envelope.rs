//! What the runtime carries in ring datagrams (the data of exact-mode routed messages): a
//! one-byte service tag, then that service's bytes. Decoding never panics; anything malformed
//! is an [`EnvelopeError`] and is dropped by the caller.
//!
//! ```text
//! 0x01 sig-request  id:u32 via:(0 | 1 addr:20) xml…
//!                                        a Jingle request over the ring (ICE offer/answer);
//!                                        `via` is a peer linked to the sender that can pass
//!                                        answers on while the sender is still joining
//! 0x02 sig-reply    id:u32 code:u8 text… how the far end answered it
//! 0x03 ping         nonce:u64            `chamber ping`
//! 0x04 pong         nonce:u64 hops:u16   the answer, with the hops the ping took
//! 0x05 quic         packet…              a QUIC packet between two nodes' service
//!                                        endpoints (`crate::services`), end-to-end encrypted
//! 0x06 knock-at     port:u16             the port of the sender's knock socket
//!                                        (`crate::warm`), told to each new link's peer
//! ```

use brunet_compat::address::Address as RingAddress;

use crate::signal::{IqFailure, Reply};

const SIG_REQUEST: u8 = 1;
const SIG_REPLY: u8 = 2;
const PING: u8 = 3;
const PONG: u8 = 4;
const QUIC: u8 = 5;
const KNOCK_AT: u8 = 6;

/// Largest Jingle request accepted over the ring (an offer with a dozen candidates is ~2 KB).
pub const MAX_SIGNAL: usize = 16 * 1024;

/// One runtime datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// A Jingle request, as XML.
    SigRequest {
        /// Matches the reply.
        id: u32,
        /// Reach the sender through this peer.
        via: Option<RingAddress>,
        /// `<jingle/>` serialised.
        xml: Vec<u8>,
    },
    /// How a Jingle request was answered.
    SigReply {
        /// The request's id.
        id: u32,
        /// The answer.
        reply: Reply,
    },
    /// An echo request.
    Ping {
        /// Echoed back.
        nonce: u64,
    },
    /// An echo answer.
    Pong {
        /// The ping's nonce.
        nonce: u64,
        /// Hops the ping took.
        hops: u16,
    },
    /// A QUIC packet for the services' endpoint.
    Quic(Vec<u8>),
    /// The port of the sender's knock socket.
    KnockAt {
        /// The UDP port.
        port: u16,
    },
}

/// Why bytes are not an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Nothing, or fewer bytes than the tag needs.
    #[error("truncated runtime datagram ({0} bytes)")]
    Truncated(usize),
    /// A tag this version does not know.
    #[error("unknown runtime datagram tag {0}")]
    UnknownTag(u8),
    /// A signalling request over [`MAX_SIGNAL`].
    #[error("signalling request of {0} bytes is too large")]
    TooLarge(usize),
    /// A `via` flag other than 0 or 1.
    #[error("bad via flag {0} in a signalling request")]
    BadFlag(u8),
    /// A reply code this version does not know.
    #[error("unknown signalling reply code {0}")]
    UnknownReply(u8),
}

impl Envelope {
    /// A name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Envelope::SigRequest { .. } => "sig-request",
            Envelope::SigReply { .. } => "sig-reply",
            Envelope::Ping { .. } => "ping",
            Envelope::Pong { .. } => "pong",
            Envelope::Quic(_) => "quic",
            Envelope::KnockAt { .. } => "knock-at",
        }
    }

    /// The bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Envelope::SigRequest { id, via, xml } => {
                out.push(SIG_REQUEST);
                out.extend_from_slice(&id.to_be_bytes());
                match via {
                    Some(a) => {
                        out.push(1);
                        out.extend_from_slice(a.as_bytes());
                    }
                    None => out.push(0),
                }
                out.extend_from_slice(xml);
            }
            Envelope::SigReply { id, reply } => {
                out.push(SIG_REPLY);
                out.extend_from_slice(&id.to_be_bytes());
                let (code, text) = reply_code(reply);
                out.push(code);
                out.extend_from_slice(text.as_bytes());
            }
            Envelope::Ping { nonce } => {
                out.push(PING);
                out.extend_from_slice(&nonce.to_be_bytes());
            }
            Envelope::Pong { nonce, hops } => {
                out.push(PONG);
                out.extend_from_slice(&nonce.to_be_bytes());
                out.extend_from_slice(&hops.to_be_bytes());
            }
            Envelope::Quic(packet) => {
                out.reserve(packet.len());
                out.push(QUIC);
                out.extend_from_slice(packet);
            }
            Envelope::KnockAt { port } => {
                out.push(KNOCK_AT);
                out.extend_from_slice(&port.to_be_bytes());
            }
        }
        out
    }

    /// Parses `b`.
    pub fn decode(b: &[u8]) -> Result<Envelope, EnvelopeError> {
        let short = || EnvelopeError::Truncated(b.len());
        let (&tag, rest) = b.split_first().ok_or_else(short)?;
        let u32_at = |r: &[u8]| -> Result<u32, EnvelopeError> {
            Ok(u32::from_be_bytes(
                r.get(..4)
                    .ok_or_else(short)?
                    .try_into()
                    .map_err(|_| short())?,
            ))
        };
        let u64_at = |r: &[u8]| -> Result<u64, EnvelopeError> {
            Ok(u64::from_be_bytes(
                r.get(..8)
                    .ok_or_else(short)?
                    .try_into()
                    .map_err(|_| short())?,
            ))
        };
        match tag {
            SIG_REQUEST => {
                let id = u32_at(rest)?;
                let (via, xml) = match rest.get(4) {
                    Some(0) => (None, &rest[5..]),
                    Some(1) => {
                        let a = rest.get(5..25).ok_or_else(short)?;
                        (
                            Some(RingAddress::from_slice(a).map_err(|_| short())?),
                            &rest[25..],
                        )
                    }
                    Some(&f) => return Err(EnvelopeError::BadFlag(f)),
                    None => return Err(short()),
                };
                if xml.len() > MAX_SIGNAL {
                    return Err(EnvelopeError::TooLarge(xml.len()));
                }
                Ok(Envelope::SigRequest {
                    id,
                    via,
                    xml: xml.to_vec(),
                })
            }
            SIG_REPLY => {
                let id = u32_at(rest)?;
                let code = *rest.get(4).ok_or_else(short)?;
                let text = String::from_utf8_lossy(&rest[5..])
                    .chars()
                    .take(200)
                    .collect();
                Ok(Envelope::SigReply {
                    id,
                    reply: reply_from(code, text)?,
                })
            }
            PING => Ok(Envelope::Ping {
                nonce: u64_at(rest)?,
            }),
            PONG => {
                let nonce = u64_at(rest)?;
                let hops = rest.get(8..10).ok_or_else(short)?;
                Ok(Envelope::Pong {
                    nonce,
                    hops: u16::from_be_bytes([hops[0], hops[1]]),
                })
            }
            QUIC => Ok(Envelope::Quic(rest.to_vec())),
            KNOCK_AT => {
                let p = rest.get(..2).ok_or_else(short)?;
                Ok(Envelope::KnockAt {
                    port: u16::from_be_bytes([p[0], p[1]]),
                })
            }
            t => Err(EnvelopeError::UnknownTag(t)),
        }
    }
}

fn reply_code(r: &Reply) -> (u8, &str) {
    match r {
        Reply::Ack => (0, ""),
        Reply::Error(IqFailure::ServiceUnavailable) => (1, ""),
        Reply::Error(IqFailure::ItemNotFound) => (2, ""),
        Reply::Error(IqFailure::ResourceConstraint) => (3, ""),
        Reply::Error(IqFailure::TieBreak) => (4, ""),
        Reply::Error(IqFailure::Timeout) => (5, ""),
        Reply::Error(IqFailure::Other(t)) => (6, t),
    }
}

fn reply_from(code: u8, text: String) -> Result<Reply, EnvelopeError> {
    Ok(match code {
        0 => Reply::Ack,
        1 => Reply::Error(IqFailure::ServiceUnavailable),
        2 => Reply::Error(IqFailure::ItemNotFound),
        3 => Reply::Error(IqFailure::ResourceConstraint),
        4 => Reply::Error(IqFailure::TieBreak),
        5 => Reply::Error(IqFailure::Timeout),
        6 => Reply::Error(IqFailure::Other(text)),
        c => return Err(EnvelopeError::UnknownReply(c)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_envelope_round_trips() {
        for e in [
            Envelope::SigRequest {
                id: 7,
                via: None,
                xml: b"<jingle/>".to_vec(),
            },
            Envelope::SigRequest {
                id: 8,
                via: Some(RingAddress::from_bytes([6; 20])),
                xml: b"<jingle/>".to_vec(),
            },
            Envelope::SigReply {
                id: 7,
                reply: Reply::Ack,
            },
            Envelope::SigReply {
                id: 8,
                reply: Reply::Error(IqFailure::Other("busy".into())),
            },
            Envelope::Ping { nonce: 99 },
            Envelope::Pong { nonce: 99, hops: 3 },
            Envelope::Quic(vec![0xc0; 1200]),
            Envelope::KnockAt { port: 40_123 },
        ] {
            assert_eq!(Envelope::decode(&e.encode()), Ok(e));
        }
    }

    #[test]
    fn truncated_unknown_and_oversized_input_is_an_error() {
        assert_eq!(Envelope::decode(&[]), Err(EnvelopeError::Truncated(0)));
        assert_eq!(
            Envelope::decode(&[PING, 1, 2]),
            Err(EnvelopeError::Truncated(3))
        );
        assert_eq!(
            Envelope::decode(&[PONG, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(EnvelopeError::Truncated(10))
        );
        assert_eq!(
            Envelope::decode(&[KNOCK_AT, 1]),
            Err(EnvelopeError::Truncated(2))
        );
        assert_eq!(
            Envelope::decode(&[0x7f]),
            Err(EnvelopeError::UnknownTag(0x7f))
        );
        assert_eq!(
            Envelope::decode(&[SIG_REPLY, 0, 0, 0, 1, 9]),
            Err(EnvelopeError::UnknownReply(9))
        );
        assert_eq!(
            Envelope::decode(&[SIG_REQUEST, 0, 0, 0, 1, 2]),
            Err(EnvelopeError::BadFlag(2))
        );
        assert_eq!(
            Envelope::decode(&[SIG_REQUEST, 0, 0, 0, 1, 1, 9]),
            Err(EnvelopeError::Truncated(7))
        );
        let mut big = vec![SIG_REQUEST, 0, 0, 0, 1, 0];
        big.resize(6 + MAX_SIGNAL + 1, b'x');
        assert_eq!(
            Envelope::decode(&big),
            Err(EnvelopeError::TooLarge(MAX_SIGNAL + 1))
        );
    }
}
