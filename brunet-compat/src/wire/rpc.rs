//! RPC over ReqRep, PType `"p"`: one ADR value per message.
//!
//! `Messaging/RpcManager.cs`. A request is the list `[method, [args…]]` with methods named
//! `handler.method` (`sys:link.Start`, `sys:ctm.ConnectTo`, …); a reply is the bare result
//! or an ADR exception (`X` map with `message`, `code`, `stacktrace`).

use super::adr::{self, Adr, AdrError};
use super::{EmitError, PType};

/// Error codes RpcManager puts in exceptions (JSON-RPC's, plus −32608).
pub mod code {
    /// The request is not a `[method, args]` list.
    pub const INVALID_REQUEST: i32 = -32600;
    /// No handler for the method.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// Wrong arguments.
    pub const INVALID_PARAMS: i32 = -32602;
    /// The remote RPC system failed (ReqRep `HandlerFailure`).
    pub const INTERNAL_ERROR: i32 = -32603;
    /// The method threw; the message is its exception's (e.g. "Trying to connect to myself!").
    pub const METHOD_THREW: i32 = -32608;
}

/// Why bytes or a value are not an RPC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The payload does not start with `"p\0"`.
    #[error("not an RPC payload")]
    NotRpc,
    /// The ADR value is malformed.
    #[error(transparent)]
    Adr(#[from] AdrError),
    /// A request that is not `[method: string, args: list]`.
    #[error("RPC request is not [method, [args]]")]
    NotACall,
    /// An exception whose fields have the wrong types.
    #[error("malformed RPC exception")]
    BadException,
}

/// Decodes an RPC payload (`"p\0" | ADR`); the ADR value must fill it.
pub fn parse(payload: &[u8]) -> Result<Adr, RpcError> {
    let body = payload.strip_prefix(b"p\0").ok_or(RpcError::NotRpc)?;
    Ok(adr::parse_exact(body)?)
}

/// Appends `"p\0" | value` to `out`.
pub fn emit(value: &Adr, out: &mut Vec<u8>) -> Result<(), EmitError> {
    PType::RPC.emit(out)?;
    value.emit(out)
}

/// A method call: `[method, [args…]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcCall {
    /// `handler.method`.
    pub method: String,
    /// The arguments.
    pub args: Vec<Adr>,
}

impl RpcCall {
    /// A call of `method` with `args`.
    pub fn new(method: impl Into<String>, args: Vec<Adr>) -> RpcCall {
        RpcCall {
            method: method.into(),
            args,
        }
    }

    /// Reads a call from a request value.
    pub fn from_adr(value: &Adr) -> Result<RpcCall, RpcError> {
        match value.as_list() {
            Some([Adr::Str(method), Adr::List(args)]) => Ok(RpcCall {
                method: method.clone(),
                args: args.clone(),
            }),
            _ => Err(RpcError::NotACall),
        }
    }

    /// The request value.
    pub fn to_adr(&self) -> Adr {
        Adr::List(vec![
            Adr::Str(self.method.clone()),
            Adr::List(self.args.clone()),
        ])
    }
}

/// An exception returned instead of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcException {
    /// [`code`] values or link error codes; absent for plain .NET exceptions.
    pub code: Option<i32>,
    /// Human-readable message.
    pub message: String,
    /// The sender's stack trace (Brunet sends it; we keep it for byte-exact relaying).
    pub stacktrace: Option<String>,
}

impl RpcException {
    /// An exception with a code and message and no stack trace.
    pub fn new(code: i32, message: impl Into<String>) -> RpcException {
        RpcException {
            code: Some(code),
            message: message.into(),
            stacktrace: None,
        }
    }

    /// Reads an `X` value; `None` when the value is not an exception at all.
    pub fn from_adr(value: &Adr) -> Option<Result<RpcException, RpcError>> {
        let Adr::Exception(_) = value else {
            return None;
        };
        let field = |k| value.get(k);
        let read = || {
            let code = match field("code") {
                None => None,
                Some(c) => Some(
                    c.as_i64()
                        .and_then(|c| i32::try_from(c).ok())
                        .ok_or(RpcError::BadException)?,
                ),
            };
            let text = |k| match field(k) {
                None => Ok(None),
                Some(Adr::Str(s)) => Ok(Some(s.clone())),
                Some(_) => Err(RpcError::BadException),
            };
            Ok(RpcException {
                code,
                message: text("message")?.unwrap_or_default(),
                stacktrace: text("stacktrace")?,
            })
        };
        Some(read())
    }

    /// The `X` value, fields in Brunet's (hash) order: stacktrace, message, code.
    pub fn to_adr(&self) -> Adr {
        let mut m = Vec::with_capacity(3);
        if let Some(st) = &self.stacktrace {
            m.push((Adr::str("stacktrace"), Adr::str(st.clone())));
        }
        m.push((Adr::str("message"), Adr::str(self.message.clone())));
        if let Some(c) = self.code {
            m.push((Adr::str("code"), Adr::I32(c)));
        }
        Adr::Exception(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_call() {
        let payload = b"p\0(_sys:link.Ping\0(_\0))";
        let v = parse(payload).unwrap();
        let call = RpcCall::from_adr(&v).unwrap();
        assert_eq!(call, RpcCall::new("sys:link.Ping", vec![Adr::str("")]));
        let mut out = Vec::new();
        emit(&call.to_adr(), &mut out).unwrap();
        assert_eq!(out, payload);
    }

    #[test]
    fn exception_round_trip_in_brunet_order() {
        let bytes = b"X_stacktrace\0_at X\0_message\0_You are me: \0_code\0i\0\0\0\x10x";
        let v = adr::parse_exact(bytes).unwrap();
        let x = RpcException::from_adr(&v).unwrap().unwrap();
        assert_eq!(x.code, Some(16));
        assert_eq!(x.message, "You are me: ");
        assert_eq!(x.to_adr().to_bytes().unwrap(), bytes);
        assert!(RpcException::from_adr(&Adr::Null).is_none());
        let bad = Adr::Exception(vec![(Adr::str("code"), Adr::str("x"))]);
        assert_eq!(
            RpcException::from_adr(&bad),
            Some(Err(RpcError::BadException))
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(parse(b"r\0T"), Err(RpcError::NotRpc));
        assert_eq!(
            parse(b"p\0TT"),
            Err(RpcError::Adr(AdrError::TrailingBytes { count: 1 }))
        );
        assert_eq!(RpcCall::from_adr(&Adr::str("x")), Err(RpcError::NotACall));
        assert_eq!(
            RpcCall::from_adr(&Adr::List(vec![Adr::str("m"), Adr::Null])),
            Err(RpcError::NotACall)
        );
    }
}
