//! The link packet format, in smoltcp's manner: [`Packet::new_checked`] is the only way to read
//! untrusted bytes, and each packet type has fixed field offsets. Little-endian, like WireGuard,
//! whose layout this follows (a 4-byte type word, indices, a 64-bit counter).
//!
//! | type | bytes | layout |
//! |---|---|---|
//! | 1 handshake initiation | 112 | type ‖ 0 0 0 ‖ sender u32 ‖ Noise IK message 1 (e, s, payload) |
//! | 2 handshake response | 64 | type ‖ 0 0 0 ‖ sender u32 ‖ receiver u32 ‖ Noise IK message 2 (e, payload) ‖ 4 zero bytes |
//! | 3 data | 32 + n | type ‖ epoch u8 ‖ 0 0 ‖ receiver u32 ‖ counter u64 ‖ AEAD(inner) |
//!
//! The data header (16 bytes) is the AEAD's associated data, so it cannot be altered. The
//! plaintext `inner` starts with a kind byte (see [`Inner`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Length of the data header.
pub const DATA_HEADER_LEN: usize = 16;
/// Length of the AEAD tag.
pub const TAG_LEN: usize = 16;
/// Bytes a datagram grows by: header, inner kind byte, tag.
pub const DATA_OVERHEAD: usize = DATA_HEADER_LEN + 1 + TAG_LEN;
/// Noise payload of message 1: the initiator's attempt counter (u64 LE), so a replayed
/// initiation is recognised (WireGuard uses a TAI64N timestamp for the same purpose).
pub const INIT_PAYLOAD_LEN: usize = 8;
/// Noise IK message 1: e (32) ‖ encrypted s (32 + 16) ‖ encrypted payload (+ 16).
pub const INIT_NOISE_LEN: usize = 32 + 48 + INIT_PAYLOAD_LEN + TAG_LEN;
/// Noise IK message 2: e (32) ‖ encrypted empty payload (16).
pub const RESP_NOISE_LEN: usize = 32 + TAG_LEN;
/// Whole handshake initiation.
pub const INIT_LEN: usize = 8 + INIT_NOISE_LEN;
/// Whole handshake response.
pub const RESP_LEN: usize = 12 + RESP_NOISE_LEN + 4;

const TYPE_INIT: u8 = 1;
const TYPE_RESP: u8 = 2;
const TYPE_DATA: u8 = 3;

/// Why bytes are not a link packet. Never an error of the node: the packet is dropped and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than its type requires.
    #[error("truncated packet")]
    Truncated,
    /// Not a type this version knows.
    #[error("unknown packet type {0}")]
    UnknownType(u8),
    /// A handshake packet of the wrong length, or reserved bytes set.
    #[error("malformed packet")]
    Malformed,
}

/// A checked view of a received packet; the slices borrow the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Handshake message 1.
    Init {
        /// The initiator's session index.
        sender: u32,
        /// The Noise message.
        noise: &'a [u8],
    },
    /// Handshake message 2.
    Resp {
        /// The responder's session index.
        sender: u32,
        /// Our index, echoed.
        receiver: u32,
        /// The Noise message.
        noise: &'a [u8],
    },
    /// An encrypted transport message.
    Data {
        /// The 16-byte header (associated data).
        header: &'a [u8],
        /// Key epoch (wraps).
        epoch: u8,
        /// Our session index.
        receiver: u32,
        /// Nonce counter.
        counter: u64,
        /// Ciphertext and tag.
        ciphertext: &'a [u8],
    },
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl<'a> Packet<'a> {
    /// Parses untrusted bytes; every length is checked before any field is read.
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        if b.len() < 4 {
            return Err(WireError::Truncated);
        }
        if b[1..4] != [0, 0, 0] && b[0] != TYPE_DATA {
            return Err(WireError::Malformed);
        }
        match b[0] {
            TYPE_INIT => {
                if b.len() != INIT_LEN {
                    return Err(WireError::Malformed);
                }
                Ok(Packet::Init {
                    sender: u32_at(b, 4),
                    noise: &b[8..],
                })
            }
            TYPE_RESP => {
                if b.len() != RESP_LEN {
                    return Err(WireError::Malformed);
                }
                Ok(Packet::Resp {
                    sender: u32_at(b, 4),
                    receiver: u32_at(b, 8),
                    noise: &b[12..12 + RESP_NOISE_LEN],
                })
            }
            TYPE_DATA => {
                if b.len() < DATA_HEADER_LEN + TAG_LEN {
                    return Err(WireError::Truncated);
                }
                if b[2..4] != [0, 0] {
                    return Err(WireError::Malformed);
                }
                Ok(Packet::Data {
                    header: &b[..DATA_HEADER_LEN],
                    epoch: b[1],
                    receiver: u32_at(b, 4),
                    counter: u64_at(b, 8),
                    ciphertext: &b[DATA_HEADER_LEN..],
                })
            }
            t => Err(WireError::UnknownType(t)),
        }
    }
}

/// Writes a handshake initiation header into `dst[..8]`; the caller writes the Noise message
/// after it. `dst` must hold [`INIT_LEN`] bytes.
pub fn emit_init_header(dst: &mut [u8], sender: u32) {
    dst[..4].copy_from_slice(&[TYPE_INIT, 0, 0, 0]);
    dst[4..8].copy_from_slice(&sender.to_le_bytes());
}

/// Writes a handshake response header into `dst[..12]` and zeroes the 4 trailing pad bytes
/// (padding makes message 2 a multiple of 4 bytes). `dst` must hold [`RESP_LEN`] bytes.
pub fn emit_resp_header(dst: &mut [u8], sender: u32, receiver: u32) {
    dst[..4].copy_from_slice(&[TYPE_RESP, 0, 0, 0]);
    dst[4..8].copy_from_slice(&sender.to_le_bytes());
    dst[8..12].copy_from_slice(&receiver.to_le_bytes());
    dst[12 + RESP_NOISE_LEN..RESP_LEN].fill(0);
}

/// Writes a data header into `dst[..16]`.
pub fn emit_data_header(dst: &mut [u8], epoch: u8, receiver: u32, counter: u64) {
    dst[..4].copy_from_slice(&[TYPE_DATA, epoch, 0, 0]);
    dst[4..8].copy_from_slice(&receiver.to_le_bytes());
    dst[8..16].copy_from_slice(&counter.to_le_bytes());
}

/// What a decrypted data message carries (its first plaintext byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner<'a> {
    /// An application datagram.
    Datagram(&'a [u8]),
    /// Keepalive and RTT probe; answered with [`Inner::Pong`] carrying the same id.
    Ping(u32),
    /// Answer to [`Inner::Ping`].
    Pong(u32),
    /// The address the sender sees our packets come from (Brunet's peer reflection).
    Observed(SocketAddr),
    /// The sender is shutting the link down.
    Close(u8),
}

const INNER_DATAGRAM: u8 = 0;
const INNER_PING: u8 = 1;
const INNER_PONG: u8 = 2;
const INNER_OBSERVED: u8 = 3;
const INNER_CLOSE: u8 = 4;

impl<'a> Inner<'a> {
    /// Parses decrypted bytes (authentic, but still checked: a buggy peer is not a reason to
    /// panic).
    pub fn parse(b: &'a [u8]) -> Result<Self, WireError> {
        let (&kind, body) = b.split_first().ok_or(WireError::Truncated)?;
        let fixed = |n: usize| -> Result<&'a [u8], WireError> {
            if body.len() == n {
                Ok(body)
            } else {
                Err(WireError::Malformed)
            }
        };
        match kind {
            INNER_DATAGRAM => Ok(Inner::Datagram(body)),
            INNER_PING => Ok(Inner::Ping(u32_at(fixed(4)?, 0))),
            INNER_PONG => Ok(Inner::Pong(u32_at(fixed(4)?, 0))),
            INNER_CLOSE => Ok(Inner::Close(fixed(1)?[0])),
            INNER_OBSERVED => match body.first() {
                Some(4) => {
                    let b = fixed(7)?;
                    let ip = Ipv4Addr::new(b[1], b[2], b[3], b[4]);
                    let port = u16::from_le_bytes([b[5], b[6]]);
                    Ok(Inner::Observed(SocketAddr::new(IpAddr::V4(ip), port)))
                }
                Some(6) => {
                    let b = fixed(19)?;
                    let mut o = [0u8; 16];
                    o.copy_from_slice(&b[1..17]);
                    let port = u16::from_le_bytes([b[17], b[18]]);
                    Ok(Inner::Observed(SocketAddr::new(
                        IpAddr::V6(Ipv6Addr::from(o)),
                        port,
                    )))
                }
                _ => Err(WireError::Malformed),
            },
            t => Err(WireError::UnknownType(t)),
        }
    }

    /// Length of the encoded plaintext.
    pub fn buffer_len(&self) -> usize {
        1 + match self {
            Inner::Datagram(d) => d.len(),
            Inner::Ping(_) | Inner::Pong(_) => 4,
            Inner::Close(_) => 1,
            Inner::Observed(SocketAddr::V4(_)) => 7,
            Inner::Observed(SocketAddr::V6(_)) => 19,
        }
    }

    /// Writes the plaintext into `dst[..self.buffer_len()]`.
    pub fn emit(&self, dst: &mut [u8]) {
        match self {
            Inner::Datagram(d) => {
                dst[0] = INNER_DATAGRAM;
                dst[1..1 + d.len()].copy_from_slice(d);
            }
            Inner::Ping(id) | Inner::Pong(id) => {
                dst[0] = if matches!(self, Inner::Ping(_)) {
                    INNER_PING
                } else {
                    INNER_PONG
                };
                dst[1..5].copy_from_slice(&id.to_le_bytes());
            }
            Inner::Close(r) => {
                dst[0] = INNER_CLOSE;
                dst[1] = *r;
            }
            Inner::Observed(a) => {
                dst[0] = INNER_OBSERVED;
                match a {
                    SocketAddr::V4(v4) => {
                        dst[1] = 4;
                        dst[2..6].copy_from_slice(&v4.ip().octets());
                        dst[6..8].copy_from_slice(&v4.port().to_le_bytes());
                    }
                    SocketAddr::V6(v6) => {
                        dst[1] = 6;
                        dst[2..18].copy_from_slice(&v6.ip().octets());
                        dst[18..20].copy_from_slice(&v6.port().to_le_bytes());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_round_trips() {
        let v6: SocketAddr = "[2001:db8::1]:4242".parse().unwrap();
        let v4: SocketAddr = "198.18.1.2:50000".parse().unwrap();
        for i in [
            Inner::Datagram(b"hello"),
            Inner::Datagram(b""),
            Inner::Ping(7),
            Inner::Pong(u32::MAX),
            Inner::Close(1),
            Inner::Observed(v4),
            Inner::Observed(v6),
        ] {
            let mut buf = vec![0u8; i.buffer_len()];
            i.emit(&mut buf);
            assert_eq!(Inner::parse(&buf), Ok(i));
        }
    }

    #[test]
    fn short_and_odd_packets_are_refused() {
        assert_eq!(Packet::new_checked(&[]), Err(WireError::Truncated));
        assert_eq!(Packet::new_checked(&[1, 0, 0]), Err(WireError::Truncated));
        assert_eq!(
            Packet::new_checked(&[9, 0, 0, 0]),
            Err(WireError::UnknownType(9))
        );
        assert_eq!(
            Packet::new_checked(&[1, 0, 0, 0, 1]),
            Err(WireError::Malformed)
        );
        assert_eq!(
            Packet::new_checked(&[1, 1, 0, 0]),
            Err(WireError::Malformed)
        );
        assert_eq!(Packet::new_checked(&[3; 31]), Err(WireError::Truncated));
        let mut d = [0u8; 32];
        d[0] = 3;
        d[2] = 1;
        assert_eq!(Packet::new_checked(&d), Err(WireError::Malformed));
        assert_eq!(Inner::parse(&[]), Err(WireError::Truncated));
        assert_eq!(Inner::parse(&[1, 0, 0]), Err(WireError::Malformed));
        assert_eq!(Inner::parse(&[3, 5, 0]), Err(WireError::Malformed));
    }

    #[test]
    fn headers_parse_back() {
        let mut d = [0u8; 40];
        emit_data_header(&mut d, 7, 0xdead_beef, 1 << 40);
        match Packet::new_checked(&d).unwrap() {
            Packet::Data {
                epoch,
                receiver,
                counter,
                ciphertext,
                ..
            } => {
                assert_eq!((epoch, receiver, counter), (7, 0xdead_beef, 1 << 40));
                assert_eq!(ciphertext.len(), 24);
            }
            p => panic!("{p:?}"),
        }
        let mut r = [0u8; RESP_LEN];
        emit_resp_header(&mut r, 1, 2);
        assert!(matches!(
            Packet::new_checked(&r),
            Ok(Packet::Resp {
                sender: 1,
                receiver: 2,
                ..
            })
        ));
        let mut i = [0u8; INIT_LEN];
        emit_init_header(&mut i, 5);
        assert!(matches!(
            Packet::new_checked(&i),
            Ok(Packet::Init { sender: 5, .. })
        ));
    }
}
