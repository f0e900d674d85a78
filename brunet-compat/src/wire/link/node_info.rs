//! `NodeInfo`: an address and where to reach it.

use super::{LinkError, map_of};
use crate::address::Address;
use crate::wire::adr::Adr;
use crate::wire::ta::TransportAddress;

/// A node's address (absent when not yet known) and transport addresses, best first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct NodeInfo {
    /// The node's address.
    pub address: Option<Address>,
    /// Where edges to it can be made.
    pub transports: Vec<TransportAddress>,
}

impl NodeInfo {
    /// A NodeInfo with only an address, as in neighbour lists.
    pub fn address_only(address: Address) -> NodeInfo {
        NodeInfo {
            address: Some(address),
            transports: Vec::new(),
        }
    }

    /// Reads `{address?, transports?}`.
    pub fn from_adr(v: &Adr) -> Result<NodeInfo, LinkError> {
        let v = map_of(v, "NodeInfo")?;
        let address = match v.get("address") {
            None => None,
            Some(Adr::Str(s)) => Some(s.parse()?),
            Some(_) => return Err(LinkError::WrongType("address")),
        };
        let transports = match v.get("transports") {
            None => Vec::new(),
            Some(Adr::List(l)) => l
                .iter()
                .map(|t| {
                    t.as_str()
                        .ok_or(LinkError::WrongType("transports"))?
                        .parse()
                        .map_err(LinkError::from)
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(LinkError::WrongType("transports")),
        };
        Ok(NodeInfo {
            address,
            transports,
        })
    }

    /// Writes `{address, transports}` as Brunet does: each key only when non-empty.
    pub fn to_adr(&self) -> Adr {
        let mut m = Vec::with_capacity(2);
        if let Some(a) = self.address {
            m.push((Adr::str("address"), Adr::Str(a.to_string())));
        }
        if !self.transports.is_empty() {
            let tas = self
                .transports
                .iter()
                .map(|t| Adr::Str(t.to_string()))
                .collect();
            m.push((Adr::str("transports"), Adr::List(tas)));
        }
        Adr::Map(m)
    }
}
