//! The link (connection) protocol's messages, typed, over ADR maps.
//!
//! `Connections/*.cs`; the flow is in NOTES.md §5 and BRUNET.md §3. All are RPCs sent
//! directly on an edge (`sys:link.*`) or routed (`sys:ctm.ConnectTo`):
//!
//! * [`NodeInfo`] `{address, transports[]}`
//! * [`LinkMessage`] `{local, remote, token, realm, type}` — `sys:link.Start` and its reply
//! * [`StatusMessage`] `{neighbors: {type, nodes[]}}` — `sys:link.GetStatus` both ways
//! * [`ConnectToMessage`] `{type, target, token, neighbors[]}` — `sys:ctm.ConnectTo` both ways
//! * [`CloseMessage`] `{reason}` — `sys:link.Close`
//! * errors: an RPC exception whose `code` is an [`ErrorCode`]
//!
//! `to_adr` writes keys in the order Brunet does, so `to_adr(from_adr(v))` re-encodes the
//! captured messages byte for byte.

mod messages;
mod node_info;

pub use messages::{CloseMessage, ConnectToMessage, LinkMessage, StatusMessage};
pub use node_info::NodeInfo;

use super::adr::Adr;
use super::rpc::{self, RpcCall, RpcException};
use super::ta::TaError;
use crate::address::AddressError;

/// Why an ADR value is not the link message expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The value is not a map.
    #[error("{0} is not a map")]
    NotAMap(&'static str),
    /// A required key is absent.
    #[error("missing field {0}")]
    Missing(&'static str),
    /// A key holds a value of the wrong type.
    #[error("field {0} has the wrong type")]
    WrongType(&'static str),
    /// An address string does not parse.
    #[error("bad address: {0}")]
    Address(#[from] AddressError),
    /// A transport address does not parse.
    #[error("bad transport address: {0}")]
    Ta(#[from] TaError),
    /// A link method called with the wrong arguments.
    #[error("wrong arguments for {0}")]
    WrongArgs(&'static str),
}

/// Connection-protocol error codes (`ErrorMessage.ErrorCode`) and RpcManager's codes, as
/// found in an exception's `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0: acknowledges an error.
    ErrorAck,
    /// 1: a request that was not expected.
    UnexpectedRequest,
    /// 2: a connection type the peer does not know.
    UnknownConnectionType,
    /// 3: the peer is in another realm.
    RealmMismatch,
    /// 16: linking to ourselves ("You are me: ").
    ConnectToSelf,
    /// 17: a link with this node is already being made; retry later.
    InProgress,
    /// 18: already connected with this type ("We are already connected: …").
    AlreadyConnected,
    /// 19: the node at this TA is not the one we wanted.
    TargetMismatch,
    /// 20: the peer is leaving.
    Disconnecting,
    /// 21: the edge closed during the handshake.
    EdgeClosed,
    /// 2000–2003: legacy XML-era codes.
    Legacy(i32),
    /// −32600: the request is not `[method, args]`.
    InvalidRequest,
    /// −32601: no handler for the method.
    MethodNotFound,
    /// −32602: wrong arguments.
    InvalidParams,
    /// −32603: the remote RPC system failed.
    InternalError,
    /// −32608: the method threw.
    MethodThrew,
    /// Anything else.
    Other(i32),
}

impl From<i32> for ErrorCode {
    fn from(c: i32) -> Self {
        match c {
            0 => ErrorCode::ErrorAck,
            1 => ErrorCode::UnexpectedRequest,
            2 => ErrorCode::UnknownConnectionType,
            3 => ErrorCode::RealmMismatch,
            16 => ErrorCode::ConnectToSelf,
            17 => ErrorCode::InProgress,
            18 => ErrorCode::AlreadyConnected,
            19 => ErrorCode::TargetMismatch,
            20 => ErrorCode::Disconnecting,
            21 => ErrorCode::EdgeClosed,
            2000..=2003 => ErrorCode::Legacy(c),
            rpc::code::INVALID_REQUEST => ErrorCode::InvalidRequest,
            rpc::code::METHOD_NOT_FOUND => ErrorCode::MethodNotFound,
            rpc::code::INVALID_PARAMS => ErrorCode::InvalidParams,
            rpc::code::INTERNAL_ERROR => ErrorCode::InternalError,
            rpc::code::METHOD_THREW => ErrorCode::MethodThrew,
            other => ErrorCode::Other(other),
        }
    }
}

impl From<ErrorCode> for i32 {
    fn from(c: ErrorCode) -> i32 {
        match c {
            ErrorCode::ErrorAck => 0,
            ErrorCode::UnexpectedRequest => 1,
            ErrorCode::UnknownConnectionType => 2,
            ErrorCode::RealmMismatch => 3,
            ErrorCode::ConnectToSelf => 16,
            ErrorCode::InProgress => 17,
            ErrorCode::AlreadyConnected => 18,
            ErrorCode::TargetMismatch => 19,
            ErrorCode::Disconnecting => 20,
            ErrorCode::EdgeClosed => 21,
            ErrorCode::InvalidRequest => rpc::code::INVALID_REQUEST,
            ErrorCode::MethodNotFound => rpc::code::METHOD_NOT_FOUND,
            ErrorCode::InvalidParams => rpc::code::INVALID_PARAMS,
            ErrorCode::InternalError => rpc::code::INTERNAL_ERROR,
            ErrorCode::MethodThrew => rpc::code::METHOD_THREW,
            ErrorCode::Legacy(c) | ErrorCode::Other(c) => c,
        }
    }
}

impl ErrorCode {
    /// The code of an exception, if it has one.
    pub fn of(x: &RpcException) -> Option<ErrorCode> {
        x.code.map(ErrorCode::from)
    }

    /// An exception carrying this code.
    pub fn exception(self, message: impl Into<String>) -> RpcException {
        RpcException::new(self.into(), message)
    }
}

/// RPC method names of the link protocol.
pub mod method {
    /// Start a link: `[LinkMessage]`, replies with the peer's LinkMessage.
    pub const START: &str = "sys:link.Start";
    /// Exchange neighbour lists: `[StatusMessage]`, replies with a StatusMessage.
    pub const GET_STATUS: &str = "sys:link.GetStatus";
    /// Liveness: `[x]`, replies with `x`.
    pub const PING: &str = "sys:link.Ping";
    /// Close the link: `[CloseMessage]`.
    pub const CLOSE: &str = "sys:link.Close";
    /// Ask for the peer's neighbours: `[]`.
    pub const GET_NEIGHBORS: &str = "sys:link.GetNeighbors";
    /// The peer's NodeInfo: `[]`.
    pub const GET_NODE_INFO: &str = "sys:link.GetNodeInfo";
    /// The peer's non-loopback IP addresses (of its UDP and TCP addresses): `[]`.
    pub const GET_LOCAL_IP_ADDRESSES: &str = "sys:link.GetLocalIPAddresses";
    /// Connect-to-me: `[ConnectToMessage]`, replies with a ConnectToMessage.
    pub const CONNECT_TO: &str = "sys:ctm.ConnectTo";
}

/// A link-protocol request, decoded from an [`RpcCall`].
#[derive(Debug, Clone, PartialEq)]
pub enum LinkRequest {
    /// `sys:link.Start`
    Start(LinkMessage),
    /// `sys:link.GetStatus`
    GetStatus(StatusMessage),
    /// `sys:link.Ping` with the value to echo.
    Ping(Adr),
    /// `sys:link.Close`
    Close(CloseMessage),
    /// `sys:link.GetNeighbors`
    GetNeighbors,
    /// `sys:link.GetNodeInfo`
    GetNodeInfo,
    /// `sys:link.GetLocalIPAddresses`
    GetLocalIpAddresses,
    /// `sys:ctm.ConnectTo`
    ConnectTo(ConnectToMessage),
}

impl LinkRequest {
    /// Decodes `call`; `Ok(None)` when the method is not part of the link protocol.
    pub fn from_call(call: &RpcCall) -> Result<Option<LinkRequest>, LinkError> {
        let one = |name: &'static str| match call.args.as_slice() {
            [arg] => Ok(arg),
            _ => Err(LinkError::WrongArgs(name)),
        };
        Ok(Some(match call.method.as_str() {
            method::START => LinkRequest::Start(LinkMessage::from_adr(one(method::START)?)?),
            method::GET_STATUS => {
                LinkRequest::GetStatus(StatusMessage::from_adr(one(method::GET_STATUS)?)?)
            }
            method::PING => LinkRequest::Ping(one(method::PING)?.clone()),
            method::CLOSE => LinkRequest::Close(CloseMessage::from_adr(one(method::CLOSE)?)?),
            method::GET_NEIGHBORS if call.args.is_empty() => LinkRequest::GetNeighbors,
            method::GET_NEIGHBORS => return Err(LinkError::WrongArgs(method::GET_NEIGHBORS)),
            method::GET_NODE_INFO if call.args.is_empty() => LinkRequest::GetNodeInfo,
            method::GET_NODE_INFO => return Err(LinkError::WrongArgs(method::GET_NODE_INFO)),
            method::GET_LOCAL_IP_ADDRESSES if call.args.is_empty() => {
                LinkRequest::GetLocalIpAddresses
            }
            method::GET_LOCAL_IP_ADDRESSES => {
                return Err(LinkError::WrongArgs(method::GET_LOCAL_IP_ADDRESSES));
            }
            method::CONNECT_TO => {
                LinkRequest::ConnectTo(ConnectToMessage::from_adr(one(method::CONNECT_TO)?)?)
            }
            _ => return Ok(None),
        }))
    }

    /// The RPC call carrying this request.
    pub fn to_call(&self) -> RpcCall {
        let (m, args) = match self {
            LinkRequest::Start(lm) => (method::START, vec![lm.to_adr()]),
            LinkRequest::GetStatus(sm) => (method::GET_STATUS, vec![sm.to_adr()]),
            LinkRequest::Ping(v) => (method::PING, vec![v.clone()]),
            LinkRequest::Close(cm) => (method::CLOSE, vec![cm.to_adr()]),
            LinkRequest::GetNeighbors => (method::GET_NEIGHBORS, vec![]),
            LinkRequest::GetNodeInfo => (method::GET_NODE_INFO, vec![]),
            LinkRequest::GetLocalIpAddresses => (method::GET_LOCAL_IP_ADDRESSES, vec![]),
            LinkRequest::ConnectTo(ctm) => (method::CONNECT_TO, vec![ctm.to_adr()]),
        };
        RpcCall::new(m, args)
    }
}

/// Field helpers shared by the message types.
pub(crate) fn map_of<'a>(v: &'a Adr, what: &'static str) -> Result<&'a Adr, LinkError> {
    v.as_map().map(|_| v).ok_or(LinkError::NotAMap(what))
}

pub(crate) fn opt_str(v: &Adr, key: &'static str) -> Result<Option<String>, LinkError> {
    match v.get(key) {
        None => Ok(None),
        Some(Adr::Str(s)) => Ok(Some(s.clone())),
        Some(_) => Err(LinkError::WrongType(key)),
    }
}

pub(crate) fn req_str(v: &Adr, key: &'static str) -> Result<String, LinkError> {
    opt_str(v, key)?.ok_or(LinkError::Missing(key))
}

pub(crate) fn node_list(v: &Adr, key: &'static str) -> Result<Option<Vec<NodeInfo>>, LinkError> {
    match v.get(key) {
        None => Ok(None),
        Some(Adr::List(l)) => l
            .iter()
            .map(NodeInfo::from_adr)
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(LinkError::WrongType(key)),
    }
}

#[cfg(test)]
mod tests;
