//! Routed payloads: what follows the AH header.

use std::borrow::Cow;

use crate::wire::adr::Adr;
use crate::wire::ah::DeliveryMode;
use crate::wire::forward::ForwardRepr;
use crate::wire::link::{ConnectToMessage, NodeInfo, method as brunet};
use crate::wire::reqrep::ReqRepType;
use crate::wire::rpc::RpcCall;
use crate::wire::{PType, Payload as WirePayload};

use crate::address::Address;

use super::super::msg::{Header, Payload, Req, Routed, Rsp};
use super::super::table::ConnType;
use super::values::{
    addr, args, boolean, bytes, dht_value, dht_values, field, from_node_infos, int, neighbours,
    parse_type, to_addr, to_dht_value, to_dht_values, to_neighbours, type_name,
};
use super::{CodecError, notify, open_reqrep, ptype_name, reqrep};

/// chamber's own routed methods.
pub(super) mod method {
    /// Who owns the destination key? `[]`
    pub(crate) const LOOKUP: &str = "chamber:ring.Lookup";
    /// Store a value under the destination key: `[value]`.
    pub(crate) const DHT_PUT: &str = "chamber:dht.Put";
    /// Values under the destination key: `[]`.
    pub(crate) const DHT_GET: &str = "chamber:dht.Get";
    /// Remove a value under the destination key: `[value bytes]`.
    pub(crate) const DHT_REMOVE: &str = "chamber:dht.Remove";
    /// "I cannot link to you directly", with our direct neighbours: `[{via?, neighbors}]`.
    pub(crate) const RELAY_OFFER: &str = "chamber:relay.Offer";
    /// The answer: a common neighbour and ours: `[{forwarder?, neighbors}]`.
    pub(crate) const RELAY_ANSWER: &str = "chamber:relay.Answer";
}

/// PType of application datagrams.
pub(super) const APP: &str = "chamber.app";

fn app_ptype() -> PType {
    PType::Name(Cow::Borrowed(APP))
}

pub(super) fn to_wire(r: &Routed) -> WirePayload {
    payload_to_wire(&r.payload, &r.hdr)
}

fn payload_to_wire(p: &Payload, hdr: &Header) -> WirePayload {
    match p {
        Payload::Ctm {
            kind,
            token,
            via,
            near,
        } => {
            let mut ctm = ctm_map(*kind, *token, hdr, near);
            if let (Some(v), Adr::Map(m)) = (via, &mut ctm) {
                m.push((Adr::str("chamber"), Adr::map([("via", addr(v))])));
            }
            let call = RpcCall::new(brunet::CONNECT_TO, vec![ctm]);
            reqrep(ReqRepType::Request, *token as i32, call.to_adr())
        }
        Payload::CtmReply { token, kind, near } => reqrep(
            ReqRepType::Reply,
            *token as i32,
            ctm_map(*kind, *token, hdr, near),
        ),
        Payload::Via { to, inner } => WirePayload::Forward {
            header: ForwardRepr::ToForwarder {
                destination: *to,
                ttl: i16::try_from(hdr.ttl).unwrap_or(i16::MAX),
                mode: DeliveryMode::Exact,
            },
            inner: Box::new(payload_to_wire(inner, hdr)),
        },
        Payload::App(data) => WirePayload::Other {
            ptype: app_ptype(),
            data: data.clone(),
        },
        Payload::Request { id, req } => {
            let call = match req {
                Req::Lookup => RpcCall::new(method::LOOKUP, vec![]),
                Req::Put(v) => RpcCall::new(method::DHT_PUT, vec![dht_value(v)]),
                Req::Get => RpcCall::new(method::DHT_GET, vec![]),
                Req::Remove(v) => RpcCall::new(method::DHT_REMOVE, vec![Adr::Bytes(v.clone())]),
            };
            reqrep(ReqRepType::Request, *id as i32, call.to_adr())
        }
        Payload::Response { id, hops, rsp } => {
            let (kind, extra) = match rsp {
                Rsp::Lookup => ("lookup", None),
                Rsp::Put(ok) => ("put", Some(("ok", Adr::Bool(*ok)))),
                Rsp::Get(values) => ("get", Some(("values", dht_values(values)))),
                Rsp::Remove(ok) => ("remove", Some(("ok", Adr::Bool(*ok)))),
            };
            let mut m = vec![("chamber", Adr::str(kind)), ("hops", Adr::U16(*hops))];
            m.extend(extra);
            reqrep(ReqRepType::Reply, *id as i32, Adr::map(m))
        }
        Payload::RelayOffer { via, neighbours: n } => {
            let mut m = Vec::new();
            if let Some(v) = via {
                m.push(("via", addr(v)));
            }
            m.push(("neighbors", neighbours(n)));
            notify(method::RELAY_OFFER, vec![Adr::map(m)])
        }
        Payload::RelayAnswer {
            forwarder,
            neighbours: n,
        } => {
            let mut m = Vec::new();
            if let Some(f) = forwarder {
                m.push(("forwarder", addr(f)));
            }
            m.push(("neighbors", neighbours(n)));
            notify(method::RELAY_ANSWER, vec![Adr::map(m)])
        }
    }
}

/// Brunet's ConnectToMessage: the type, the target (the AH source), the token, and the
/// sender's nearest neighbours.
fn ctm_map(kind: ConnType, token: u32, hdr: &Header, near: &[Address]) -> Adr {
    ConnectToMessage {
        connection_type: type_name(kind),
        target: NodeInfo::address_only(hdr.src),
        token: token.to_string(),
        neighbors: near.iter().copied().map(NodeInfo::address_only).collect(),
    }
    .to_adr()
}

fn from_ctm(v: &Adr) -> Result<(ConnType, u32, Vec<Address>), CodecError> {
    let ctm = ConnectToMessage::from_adr(v)?;
    let kind = parse_type(&ctm.connection_type)?;
    let token = ctm
        .token
        .parse::<u32>()
        .map_err(|_| CodecError::BadValue("token"))?;
    Ok((kind, token, from_node_infos(&ctm.neighbors)?))
}

pub(super) fn from_wire(p: &WirePayload) -> Result<Payload, CodecError> {
    match p {
        WirePayload::Forward {
            header: ForwardRepr::ToForwarder { destination, .. },
            inner,
        } => Ok(Payload::Via {
            to: *destination,
            inner: Box::new(from_wire_leaf(inner)?),
        }),
        other => from_wire_leaf(other),
    }
}

/// A payload that is not itself a forwarding leg (`Via` holds one such).
fn from_wire_leaf(p: &WirePayload) -> Result<Payload, CodecError> {
    if let WirePayload::Other { ptype, data } = p {
        if *ptype == app_ptype() {
            return Ok(Payload::App(data.clone()));
        }
        return Err(CodecError::UnexpectedPType(ptype.to_string()));
    }
    if !matches!(p, WirePayload::ReqRep { .. }) {
        return Err(CodecError::UnexpectedPType(ptype_name(p)));
    }
    let (rr, value) = open_reqrep(p)?;
    let id = rr.id as u32;
    match rr.kind {
        ReqRepType::Request | ReqRepType::LossyRequest => request(&RpcCall::from_adr(value)?, id),
        ReqRepType::Reply => reply(value, id),
        _ => Err(CodecError::UnexpectedReqRep),
    }
}

fn request(c: &RpcCall, id: u32) -> Result<Payload, CodecError> {
    let a = &c.args;
    let req = |req| Ok(Payload::Request { id, req });
    match c.method.as_str() {
        brunet::CONNECT_TO => {
            let [ctm] = args(a, brunet::CONNECT_TO)?;
            let (kind, token, near) = from_ctm(ctm)?;
            let via = match ctm.get("chamber") {
                Some(m) => Some(to_addr(field(m, "via")?, "via")?),
                None => None,
            };
            Ok(Payload::Ctm {
                kind,
                token,
                via,
                near,
            })
        }
        method::LOOKUP => {
            args::<0>(a, method::LOOKUP)?;
            req(Req::Lookup)
        }
        method::DHT_PUT => {
            let [v] = args(a, method::DHT_PUT)?;
            req(Req::Put(to_dht_value(v)?))
        }
        method::DHT_GET => {
            args::<0>(a, method::DHT_GET)?;
            req(Req::Get)
        }
        method::DHT_REMOVE => {
            let [v] = args(a, method::DHT_REMOVE)?;
            req(Req::Remove(bytes(v, "value")?))
        }
        method::RELAY_OFFER => {
            let [m] = args(a, method::RELAY_OFFER)?;
            Ok(Payload::RelayOffer {
                via: m.get("via").map(|v| to_addr(v, "via")).transpose()?,
                neighbours: to_neighbours(field(m, "neighbors")?)?,
            })
        }
        method::RELAY_ANSWER => {
            let [m] = args(a, method::RELAY_ANSWER)?;
            Ok(Payload::RelayAnswer {
                forwarder: m
                    .get("forwarder")
                    .map(|v| to_addr(v, "forwarder"))
                    .transpose()?,
                neighbours: to_neighbours(field(m, "neighbors")?)?,
            })
        }
        other => Err(CodecError::UnknownMethod(other.into())),
    }
}

fn reply(v: &Adr, id: u32) -> Result<Payload, CodecError> {
    if v.get("target").is_some() {
        let (kind, token, near) = from_ctm(v)?;
        return Ok(Payload::CtmReply { token, kind, near });
    }
    let kind = field(v, "chamber").map_err(|_| CodecError::UnknownReply)?;
    let hops = int(field(v, "hops")?, "hops")?;
    let ok = || boolean(field(v, "ok")?, "ok");
    let rsp = match kind.as_str() {
        Some("lookup") => Rsp::Lookup,
        Some("put") => Rsp::Put(ok()?),
        Some("get") => Rsp::Get(to_dht_values(field(v, "values")?)?),
        Some("remove") => Rsp::Remove(ok()?),
        _ => return Err(CodecError::BadValue("chamber")),
    };
    Ok(Payload::Response { id, hops, rsp })
}
