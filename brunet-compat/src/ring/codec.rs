//! The seam between typed ring messages and bytes.
//!
//! Everything that turns a [`Msg`] into bytes, or back, lives here, so the later move to
//! Brunet's wire formats (AH header, ADR, ReqRep in `crate::wire`) touches one file.

use super::msg::Msg;

/// Why bytes are not a ring message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended early.
    #[error("truncated message")]
    Truncated,
    /// An unknown tag or value.
    #[error("invalid tag {0}")]
    BadTag(u8),
    /// A length beyond what the ring ever sends.
    #[error("length {0} too large")]
    TooLong(usize),
    /// Messages nested deeper than relaying allows.
    #[error("nesting too deep")]
    TooDeep,
    /// Bytes left after the message.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// Encodes a message.
pub fn encode(msg: &Msg) -> Vec<u8> {
    let _ = msg;
    Vec::new()
}

/// Decodes a message; never panics on any input.
pub fn decode(bytes: &[u8]) -> Result<Msg, CodecError> {
    if bytes.is_empty() {
        return Err(CodecError::Truncated);
    }
    Err(CodecError::BadTag(bytes[0]))
}
