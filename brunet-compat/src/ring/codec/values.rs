//! ADR building blocks shared by the link and routed encodings: addresses, connection
//! types, DHT values, neighbour descriptions, and checked field access.

use crate::address::Address;
use crate::wire::adr::Adr;
use crate::wire::link::NodeInfo;

use super::super::msg::{DhtValue, NeighbourInfo};
use super::super::table::ConnType;
use super::CodecError;

/// Brunet's connection-type names, by [`ConnType`] bit.
const TYPE_NAMES: [(ConnType, &str); 5] = [
    (ConnType::LEAF, "leaf"),
    (ConnType::NEAR, "structured.near"),
    (ConnType::SHORTCUT, "structured.shortcut"),
    (ConnType::ONDEMAND, "structured.ondemand"),
    (ConnType::OVERLAP, "structured.overlap"),
];

/// `structured.near`, `structured.shortcut`, … (several joined by `|`; `none` for none).
pub(super) fn type_name(t: ConnType) -> String {
    let names: Vec<&str> = TYPE_NAMES
        .iter()
        .filter(|(bit, _)| t.contains(*bit))
        .map(|(_, n)| *n)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join("|")
    }
}

pub(super) fn parse_type(s: &str) -> Result<ConnType, CodecError> {
    if s == "none" {
        return Ok(ConnType::NONE);
    }
    let mut t = ConnType::NONE;
    for part in s.split('|') {
        let (bit, _) = TYPE_NAMES
            .iter()
            .find(|(_, n)| *n == part)
            .ok_or(CodecError::BadValue("type"))?;
        t |= *bit;
    }
    Ok(t)
}

/// An address as a 20-byte ADR array (chamber messages).
pub(super) fn addr(a: &Address) -> Adr {
    Adr::Bytes(a.as_bytes().to_vec())
}

pub(super) fn to_addr(v: &Adr, field: &'static str) -> Result<Address, CodecError> {
    let b = v.as_bytes().ok_or(CodecError::BadValue(field))?;
    Address::from_slice(b).map_err(|_| CodecError::BadValue(field))
}

/// Addresses as Brunet's neighbour lists carry them: address-only `NodeInfo` maps.
pub(super) fn node_infos(v: &[Address]) -> Adr {
    Adr::List(
        v.iter()
            .map(|a| NodeInfo::address_only(*a).to_adr())
            .collect(),
    )
}

pub(super) fn from_node_infos(v: &[NodeInfo]) -> Result<Vec<Address>, CodecError> {
    v.iter()
        .map(|n| n.address.ok_or(CodecError::Missing("address")))
        .collect()
}

/// The value under `key` of a map.
pub(super) fn field<'a>(m: &'a Adr, key: &'static str) -> Result<&'a Adr, CodecError> {
    m.get(key).ok_or(CodecError::Missing(key))
}

pub(super) fn boolean(v: &Adr, field: &'static str) -> Result<bool, CodecError> {
    match v {
        Adr::Bool(b) => Ok(*b),
        _ => Err(CodecError::BadValue(field)),
    }
}

pub(super) fn int<T: TryFrom<i64>>(v: &Adr, field: &'static str) -> Result<T, CodecError> {
    v.as_i64()
        .and_then(|i| T::try_from(i).ok())
        .ok_or(CodecError::BadValue(field))
}

pub(super) fn bytes(v: &Adr, field: &'static str) -> Result<Vec<u8>, CodecError> {
    v.as_bytes()
        .map(<[u8]>::to_vec)
        .ok_or(CodecError::BadValue(field))
}

pub(super) fn list<'a>(v: &'a Adr, field: &'static str) -> Result<&'a [Adr], CodecError> {
    v.as_list().ok_or(CodecError::BadValue(field))
}

/// The arguments of an RPC call, which must be exactly `N`.
pub(super) fn args<'a, const N: usize>(
    args: &'a [Adr],
    method: &'static str,
) -> Result<&'a [Adr; N], CodecError> {
    args.try_into().map_err(|_| CodecError::BadValue(method))
}

pub(super) fn dht_value(v: &DhtValue) -> Adr {
    Adr::map([
        ("value", Adr::Bytes(v.value.clone())),
        ("sig", Adr::Bytes(v.sig.clone())),
        ("ttl", Adr::U32(v.ttl_s)),
    ])
}

pub(super) fn to_dht_value(m: &Adr) -> Result<DhtValue, CodecError> {
    Ok(DhtValue {
        value: bytes(field(m, "value")?, "value")?,
        sig: bytes(field(m, "sig")?, "sig")?,
        ttl_s: int(field(m, "ttl")?, "ttl")?,
    })
}

pub(super) fn dht_values(v: &[DhtValue]) -> Adr {
    Adr::List(v.iter().map(dht_value).collect())
}

pub(super) fn to_dht_values(v: &Adr) -> Result<Vec<DhtValue>, CodecError> {
    list(v, "values")?.iter().map(to_dht_value).collect()
}

pub(super) fn neighbours(v: &[NeighbourInfo]) -> Adr {
    Adr::List(
        v.iter()
            .map(|n| {
                Adr::map([
                    ("address", addr(&n.addr)),
                    ("age", Adr::U32(n.age_ms)),
                    ("rtt", Adr::U32(n.rtt_us)),
                ])
            })
            .collect(),
    )
}

pub(super) fn to_neighbours(v: &Adr) -> Result<Vec<NeighbourInfo>, CodecError> {
    list(v, "neighbors")?
        .iter()
        .map(|m| {
            Ok(NeighbourInfo {
                addr: to_addr(field(m, "address")?, "address")?,
                age_ms: int(field(m, "age")?, "age")?,
                rtt_us: int(field(m, "rtt")?, "rtt")?,
            })
        })
        .collect()
}
