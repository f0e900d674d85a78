//! The seam between typed ring messages and bytes, in Brunet's wire formats.
//!
//! Read `shared/design/BRUNET.md` §2–3 and [`crate::wire`] first. Every [`Msg`] becomes
//! one packet that starts with a PType, exactly as it would follow the UDP edge ids:
//!
//! | message | bytes |
//! |---|---|
//! | `Status` | ReqRep lossy request, RPC `sys:link.GetStatus [StatusMessage]`; our routable flag, wants flag and size estimate ride in a `chamber` sub-map Brunet ignores |
//! | `Close` | ReqRep lossy request, RPC `sys:link.Close [{reason}]` |
//! | `Routed` | AH header (hops, TTL, source, destination, mode) + the payload below |
//! | ↳ `Ctm` | ReqRep request (id = token), RPC `sys:ctm.ConnectTo [ConnectToMessage]` |
//! | ↳ `CtmReply` | ReqRep reply (id = token), the responder's `ConnectToMessage` |
//! | ↳ `Via` | forwarding first leg `"f" 0x00 | to | ttl | exact | inner` |
//! | ↳ `App` | PType `chamber.app` + the datagram |
//! | ↳ `Request` | ReqRep request (id), RPC `chamber:ring.Lookup`, `chamber:dht.Put/Get/Remove` |
//! | ↳ `Response` | ReqRep reply (id), a map tagged `chamber` |
//! | ↳ `RelayOffer` / `RelayAnswer` | ReqRep lossy request, RPC `chamber:relay.Offer/Answer` |
//! | `RelayFwd` / `RelayDel` | forwarding legs `"f" 0x00 | to | 1 | exact | inner` / `"f" 0x01 | from | inner` |
//! | `Want`, `RelayGone`, `DhtStore`, `DhtDrop`, `Broadcast` | ReqRep lossy request, RPC `chamber:link.Want`, `chamber:relay.Gone`, `chamber:dht.Store/Drop`, `chamber:ring.Broadcast` |
//!
//! Brunet-defined messages keep Brunet's names and layouts (addresses as
//! `brunet:node:` strings in `NodeInfo` maps); chamber-only ones are RPC methods in the
//! `chamber:` namespace with addresses as 20-byte arrays. Decoding never panics: the
//! wire layer bounds nesting, lengths and value counts, and every field is checked here.

mod link;
mod routed;
mod values;

use crate::wire::adr::Adr;
use crate::wire::link::LinkError;
use crate::wire::reqrep::{ReqRepRepr, ReqRepType};
use crate::wire::rpc::{RpcCall, RpcError};
use crate::wire::{PacketError, Payload as WirePayload, ReqRepBody};

use super::msg::Msg;

/// Why bytes are not a ring message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A wire layer (PType, AH header, forwarding, ReqRep, ADR) did not decode.
    #[error("wire: {0}")]
    Wire(#[from] PacketError),
    /// An RPC value is not a call or result of the expected shape.
    #[error("rpc: {0}")]
    Rpc(#[from] RpcError),
    /// A Brunet link message (status, CTM) is malformed.
    #[error("link message: {0}")]
    Link(#[from] LinkError),
    /// A PType the ring does not use here.
    #[error("unexpected payload type {0}")]
    UnexpectedPType(String),
    /// A ReqRep message type the ring does not use here (acks, errors).
    #[error("unexpected request/reply type")]
    UnexpectedReqRep,
    /// An RPC method the ring does not know.
    #[error("unknown method {0}")]
    UnknownMethod(String),
    /// A required field is absent.
    #[error("missing field {0}")]
    Missing(&'static str),
    /// A field has the wrong type or an impossible value.
    #[error("field {0} has a bad value")]
    BadValue(&'static str),
    /// A reply whose value is neither a connect-to-me nor a chamber response.
    #[error("unrecognised reply")]
    UnknownReply,
}

/// Encodes a message. Total: every value the node builds has a wire form.
pub fn encode(msg: &Msg) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    // The strings written are method and type names, decimal tokens and base32
    // addresses: none holds a NUL, and every PType used is valid, so emitting succeeds.
    link::to_wire(msg)
        .emit(&mut out)
        .expect("ring messages hold no NUL and use valid PTypes");
    out
}

/// Decodes a message; any input gives a message or a typed error, never a panic.
pub fn decode(bytes: &[u8]) -> Result<Msg, CodecError> {
    link::from_wire(&WirePayload::parse(bytes)?)
}

/// `r\0` + a ReqRep header + an RPC value.
fn reqrep(kind: ReqRepType, id: i32, value: Adr) -> WirePayload {
    WirePayload::ReqRep {
        header: ReqRepRepr { kind, id },
        body: ReqRepBody::Payload(Box::new(WirePayload::Rpc(value))),
    }
}

/// A one-way RPC call (ReqRep lossy request, id 0).
fn notify(method: &str, args: Vec<Adr>) -> WirePayload {
    reqrep(
        ReqRepType::LossyRequest,
        0,
        RpcCall::new(method, args).to_adr(),
    )
}

/// The ReqRep header and RPC value of a ReqRep payload.
fn open_reqrep(p: &WirePayload) -> Result<(ReqRepRepr, &Adr), CodecError> {
    let WirePayload::ReqRep { header, body } = p else {
        return Err(CodecError::UnexpectedPType(ptype_name(p)));
    };
    match body {
        ReqRepBody::Payload(inner) => match inner.as_ref() {
            WirePayload::Rpc(v) => Ok((*header, v)),
            other => Err(CodecError::UnexpectedPType(ptype_name(other))),
        },
        ReqRepBody::Raw(_) => Err(CodecError::UnexpectedReqRep),
    }
}

/// A name for the PType of `p`, for errors.
fn ptype_name(p: &WirePayload) -> String {
    match p {
        WirePayload::Ah { .. } => "AH".into(),
        WirePayload::Forward { .. } => "f".into(),
        WirePayload::ReqRep { .. } => "r".into(),
        WirePayload::Rpc(_) => "p".into(),
        WirePayload::Other { ptype, .. } => ptype.to_string(),
    }
}

#[cfg(test)]
mod tests;
