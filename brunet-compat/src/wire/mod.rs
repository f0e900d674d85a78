//! Brunet's data formats, byte-exact.
//!
//! Read `shared/design/BRUNET.md` §2 and `shared/vectors/brunet/NOTES.md` first. One module
//! per format, layered as on the wire:
//!
//! ```text
//! udp      senderEdgeId(4) | receiverEdgeId(4) | packet            (or a control message)
//! ptype    1..=31 as one byte, or a NUL-terminated name             (prefix of every packet)
//! ah       0x02 | hops | ttl | src | dst | opts | inner             (structured routing)
//! forward  "f\0" | leg 0: dest ttl opts | leg 1: origin | inner      (bootstrap forwarding)
//! reqrep   "r\0" | type | id | body                                 (request/reply)
//! rpc      "p\0" | ADR                                              (method calls and results)
//! adr      self-describing values                                   (the RPC payloads)
//! link     typed link-protocol messages over ADR maps
//! ta       transport addresses ("brunet.udp://…")
//! ```
//!
//! [`Packet`] decodes a whole UDP payload through all layers and re-encodes it byte for byte.
//!
//! Fixed-layout headers come, in smoltcp's manner, as a checked view over bytes
//! (`new_checked`) and a `Repr` with `parse` / `emit` / `buffer_len`. Every decoder takes
//! untrusted input: it returns a typed error and never panics; lengths read from the wire
//! are checked against the bytes present before anything is allocated.

pub mod adr;
pub mod ah;
pub mod forward;
pub mod link;
pub mod packet;
pub mod ptype;
pub mod reqrep;
pub mod rpc;
pub mod ta;
pub mod udp;

pub use adr::Adr;
pub use packet::{Packet, PacketBody, PacketError, Payload, ReqRepBody};
pub use ptype::PType;

/// Why a value cannot be written in Brunet's wire format.
///
/// Decoded values always re-encode; this only arises for values built by hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// A NUL-terminated string (ADR string, PType name) contains a NUL byte, which would
    /// end it early and let the rest be read as structure.
    #[error("string contains a NUL byte")]
    InteriorNul,
    /// A PType must be numeric 1..=31 or a non-empty name not starting with a byte 1..=31.
    #[error("invalid PType")]
    InvalidPType,
    /// An ADR array has more than `u32::MAX` elements, beyond what its length field holds.
    #[error("array too long")]
    ArrayTooLong,
}

/// Reads a big-endian `i16` at `at`; the caller has checked the length.
pub(crate) fn read_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

/// Reads a big-endian `i32` at `at`; the caller has checked the length.
pub(crate) fn read_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// Reads the 20-byte address at `at`; the caller has checked the length.
pub(crate) fn read_address(buf: &[u8], at: usize) -> crate::address::Address {
    let mut b = [0u8; 20];
    b.copy_from_slice(&buf[at..at + 20]);
    crate::address::Address::from_bytes(b)
}
