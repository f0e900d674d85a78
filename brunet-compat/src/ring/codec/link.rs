//! Link messages (one hop, between neighbours): everything but the routed payloads.

use crate::wire::Payload as WirePayload;
use crate::wire::adr::Adr;
use crate::wire::ah::{AhRepr, DeliveryMode};
use crate::wire::forward::ForwardRepr;
use crate::wire::link::{CloseMessage, StatusMessage, method as brunet};
use crate::wire::rpc::RpcCall;

use super::super::msg::{Header, Mode, Msg, Routed};
use super::values::{
    addr, args, boolean, bytes, dht_values, field, from_node_infos, int, node_infos, to_addr,
    to_dht_values,
};
use super::{CodecError, notify, open_reqrep, ptype_name, routed};

/// chamber's own link methods.
pub(super) mod method {
    /// The sender's reasons for the link came or went: `[bool]`.
    pub(crate) const WANT: &str = "chamber:link.Want";
    /// A forwarder cannot reach a peer any more: `[address]`.
    pub(crate) const RELAY_GONE: &str = "chamber:relay.Gone";
    /// DHT replica push: `[key, [values]]`.
    pub(crate) const DHT_STORE: &str = "chamber:dht.Store";
    /// DHT replica removal: `[key, value]`.
    pub(crate) const DHT_DROP: &str = "chamber:dht.Drop";
    /// Bounded broadcast: `[source, end, hops, data]`.
    pub(crate) const BROADCAST: &str = "chamber:ring.Broadcast";
}

/// The neighbour type our status lists describe.
const NEAR_TYPE: &str = "structured.near";

/// Nesting of relay legs the codec builds or accepts (a relay leg inside a relay leg is
/// already refused by the node; one level is all the ring sends).
const MAX_RELAY_DEPTH: usize = 2;

pub(super) fn to_wire(msg: &Msg) -> WirePayload {
    match msg {
        Msg::Status {
            routable,
            wants,
            near,
            size_log2,
        } => {
            let info = Adr::map([("type", Adr::str(NEAR_TYPE)), ("nodes", node_infos(near))]);
            let ours = Adr::map([
                ("routable", Adr::Bool(*routable)),
                ("wants", Adr::Bool(*wants)),
                ("size_log2", Adr::F32(*size_log2)),
            ]);
            let status = Adr::map([("neighbors", info), ("chamber", ours)]);
            notify(brunet::GET_STATUS, vec![status])
        }
        Msg::Want(w) => notify(method::WANT, vec![Adr::Bool(*w)]),
        Msg::Close => notify(brunet::CLOSE, vec![CloseMessage::default().to_adr()]),
        Msg::Routed(r) => {
            let h = &r.hdr;
            WirePayload::Ah {
                header: AhRepr {
                    hops: i16::try_from(h.hops).unwrap_or(i16::MAX),
                    ttl: i16::try_from(h.ttl).unwrap_or(i16::MAX),
                    source: h.src,
                    destination: h.dst,
                    mode: h.mode.opts().into(),
                },
                inner: Box::new(routed::to_wire(r)),
            }
        }
        Msg::RelayFwd { to, inner } => WirePayload::Forward {
            header: ForwardRepr::ToForwarder {
                destination: *to,
                ttl: 1,
                mode: DeliveryMode::Exact,
            },
            inner: Box::new(to_wire(inner)),
        },
        Msg::RelayDel { from, inner } => WirePayload::Forward {
            header: ForwardRepr::FromForwarder { origin: *from },
            inner: Box::new(to_wire(inner)),
        },
        Msg::RelayGone { peer } => notify(method::RELAY_GONE, vec![addr(peer)]),
        Msg::DhtStore { key, values } => {
            notify(method::DHT_STORE, vec![addr(key), dht_values(values)])
        }
        Msg::DhtDrop { key, value } => {
            notify(method::DHT_DROP, vec![addr(key), Adr::Bytes(value.clone())])
        }
        Msg::Broadcast {
            src,
            end,
            hops,
            data,
        } => notify(
            method::BROADCAST,
            vec![
                addr(src),
                addr(end),
                Adr::U16(*hops),
                Adr::Bytes(data.clone()),
            ],
        ),
    }
}

pub(super) fn from_wire(p: &WirePayload) -> Result<Msg, CodecError> {
    from_wire_at(p, 0)
}

fn from_wire_at(p: &WirePayload, depth: usize) -> Result<Msg, CodecError> {
    match p {
        WirePayload::Ah { header, inner } => {
            let hdr = Header {
                hops: u16::try_from(header.hops).map_err(|_| CodecError::BadValue("hops"))?,
                ttl: u16::try_from(header.ttl).map_err(|_| CodecError::BadValue("ttl"))?,
                src: header.source,
                dst: header.destination,
                mode: Mode::from_opts(header.mode.into()).ok_or(CodecError::BadValue("mode"))?,
            };
            let payload = routed::from_wire(inner)?;
            Ok(Msg::Routed(Routed { hdr, payload }))
        }
        WirePayload::Forward { header, inner } => {
            if depth >= MAX_RELAY_DEPTH {
                return Err(CodecError::BadValue("relay nesting"));
            }
            let inner = Box::new(from_wire_at(inner, depth + 1)?);
            Ok(match *header {
                ForwardRepr::ToForwarder { destination, .. } => Msg::RelayFwd {
                    to: destination,
                    inner,
                },
                ForwardRepr::FromForwarder { origin } => Msg::RelayDel {
                    from: origin,
                    inner,
                },
            })
        }
        WirePayload::ReqRep { .. } => {
            let (_, value) = open_reqrep(p)?;
            call(&RpcCall::from_adr(value)?)
        }
        other => Err(CodecError::UnexpectedPType(ptype_name(other))),
    }
}

fn call(c: &RpcCall) -> Result<Msg, CodecError> {
    let a = &c.args;
    Ok(match c.method.as_str() {
        brunet::GET_STATUS => {
            let [status] = args(a, brunet::GET_STATUS)?;
            let near = from_node_infos(&StatusMessage::from_adr(status)?.neighbors)?;
            // A Brunet node's status has no chamber part: it routes and wants the link.
            let (routable, wants, size_log2) = match status.get("chamber") {
                None => (true, true, f32::NAN),
                Some(m) => (
                    boolean(field(m, "routable")?, "routable")?,
                    boolean(field(m, "wants")?, "wants")?,
                    match field(m, "size_log2")? {
                        Adr::F32(f) => *f,
                        _ => return Err(CodecError::BadValue("size_log2")),
                    },
                ),
            };
            Msg::Status {
                routable,
                wants,
                near,
                size_log2,
            }
        }
        brunet::CLOSE => {
            let [close] = args(a, brunet::CLOSE)?;
            CloseMessage::from_adr(close)?;
            Msg::Close
        }
        method::WANT => {
            let [w] = args(a, method::WANT)?;
            Msg::Want(boolean(w, "want")?)
        }
        method::RELAY_GONE => {
            let [peer] = args(a, method::RELAY_GONE)?;
            Msg::RelayGone {
                peer: to_addr(peer, "peer")?,
            }
        }
        method::DHT_STORE => {
            let [key, values] = args(a, method::DHT_STORE)?;
            Msg::DhtStore {
                key: to_addr(key, "key")?,
                values: to_dht_values(values)?,
            }
        }
        method::DHT_DROP => {
            let [key, value] = args(a, method::DHT_DROP)?;
            Msg::DhtDrop {
                key: to_addr(key, "key")?,
                value: bytes(value, "value")?,
            }
        }
        method::BROADCAST => {
            let [src, end, hops, data] = args(a, method::BROADCAST)?;
            Msg::Broadcast {
                src: to_addr(src, "src")?,
                end: to_addr(end, "end")?,
                hops: int(hops, "hops")?,
                data: bytes(data, "data")?,
            }
        }
        other => return Err(CodecError::UnknownMethod(other.into())),
    })
}
