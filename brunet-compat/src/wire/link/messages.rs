//! LinkMessage, StatusMessage, ConnectToMessage and CloseMessage.

use super::{LinkError, NodeInfo, map_of, node_list, opt_str, req_str};
use crate::wire::adr::Adr;

/// `sys:link.Start`'s argument and reply (`Connections/LinkMessage.cs`).
///
/// The initiator sends its `local` NodeInfo and the `remote` it is dialling (address only
/// when known, e.g. after a CTM); the responder answers with its own `local` and, in
/// `remote`, the initiator's TA as it sees it — the NAT reflection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkMessage {
    /// The sender.
    pub local: Option<NodeInfo>,
    /// The other end as the sender knows it.
    pub remote: Option<NodeInfo>,
    /// Ties the handshake to the CTM or overlord that caused it.
    pub token: Option<String>,
    /// The realm (overlay name); links across realms are refused.
    pub realm: Option<String>,
    /// Connection type: `leaf`, `structured.near`, `structured.shortcut`, …
    pub connection_type: String,
    /// Any other string attributes, in wire order.
    pub attributes: Vec<(String, String)>,
}

impl LinkMessage {
    /// Reads a LinkMessage map.
    pub fn from_adr(v: &Adr) -> Result<LinkMessage, LinkError> {
        let v = map_of(v, "LinkMessage")?;
        let node = |key| v.get(key).map(NodeInfo::from_adr).transpose();
        let mut attributes = Vec::new();
        for (k, val) in v.as_map().unwrap_or_default() {
            let Some(k) = k.as_str() else {
                return Err(LinkError::WrongType("attribute key"));
            };
            if !matches!(k, "local" | "remote" | "token" | "realm" | "type") {
                let val = val.as_str().ok_or(LinkError::WrongType("attribute"))?;
                attributes.push((k.to_owned(), val.to_owned()));
            }
        }
        Ok(LinkMessage {
            local: node("local")?,
            remote: node("remote")?,
            token: opt_str(v, "token")?,
            realm: opt_str(v, "realm")?,
            connection_type: req_str(v, "type")?,
            attributes,
        })
    }

    /// Writes the map in Brunet's order: local, remote, token, realm, type, others.
    pub fn to_adr(&self) -> Adr {
        let mut m = Vec::with_capacity(5 + self.attributes.len());
        let s = |k: &str, v: &str| (Adr::str(k), Adr::str(v));
        if let Some(l) = &self.local {
            m.push((Adr::str("local"), l.to_adr()));
        }
        if let Some(r) = &self.remote {
            m.push((Adr::str("remote"), r.to_adr()));
        }
        if let Some(t) = &self.token {
            m.push(s("token", t));
        }
        if let Some(r) = &self.realm {
            m.push(s("realm", r));
        }
        m.push(s("type", &self.connection_type));
        m.extend(self.attributes.iter().map(|(k, v)| s(k, v)));
        Adr::Map(m)
    }
}

/// `sys:link.GetStatus`'s argument and reply: the sender's neighbours of one type
/// (`Connections/StatusMessage.cs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMessage {
    /// The connection type the list is about.
    pub neighbor_type: String,
    /// The neighbours (addresses only in practice).
    pub neighbors: Vec<NodeInfo>,
}

impl StatusMessage {
    /// Reads `{neighbors: {type, nodes}}`.
    pub fn from_adr(v: &Adr) -> Result<StatusMessage, LinkError> {
        let v = map_of(v, "StatusMessage")?;
        let info = v.get("neighbors").ok_or(LinkError::Missing("neighbors"))?;
        let info = map_of(info, "neighbors")?;
        Ok(StatusMessage {
            neighbor_type: req_str(info, "type")?,
            neighbors: node_list(info, "nodes")?.unwrap_or_default(),
        })
    }

    /// Writes `{neighbors: {type, nodes}}`.
    pub fn to_adr(&self) -> Adr {
        let nodes = self.neighbors.iter().map(NodeInfo::to_adr).collect();
        let info = Adr::map([
            ("type", Adr::str(self.neighbor_type.clone())),
            ("nodes", Adr::List(nodes)),
        ]);
        Adr::map([("neighbors", info)])
    }
}

/// Connect-to-me (`Connections/ConnectToMessage.cs`): "please link to `target`".
///
/// A request names the sender as target, plus its nearest neighbours for near links; the
/// reply names the responder and its neighbours nearest the requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectToMessage {
    /// The connection type wanted.
    pub connection_type: String,
    /// Whom to link to.
    pub target: NodeInfo,
    /// Carried into the resulting LinkMessages.
    pub token: String,
    /// Nearby nodes, to refine the near set.
    pub neighbors: Vec<NodeInfo>,
}

impl ConnectToMessage {
    /// Reads `{type, target, token, neighbors}`.
    pub fn from_adr(v: &Adr) -> Result<ConnectToMessage, LinkError> {
        let v = map_of(v, "ConnectToMessage")?;
        let target = v.get("target").ok_or(LinkError::Missing("target"))?;
        Ok(ConnectToMessage {
            connection_type: req_str(v, "type")?,
            target: NodeInfo::from_adr(target)?,
            token: req_str(v, "token")?,
            neighbors: node_list(v, "neighbors")?.unwrap_or_default(),
        })
    }

    /// Writes `{type, target, token, neighbors}`.
    pub fn to_adr(&self) -> Adr {
        let neighbors = self.neighbors.iter().map(NodeInfo::to_adr).collect();
        Adr::map([
            ("type", Adr::str(self.connection_type.clone())),
            ("target", self.target.to_adr()),
            ("token", Adr::str(self.token.clone())),
            ("neighbors", Adr::List(neighbors)),
        ])
    }
}

/// `sys:link.Close`'s argument: why the link is closed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CloseMessage {
    /// Free text, e.g. "From LPS, did not complete a connection.".
    pub reason: String,
}

impl CloseMessage {
    /// Reads `{reason}` (a missing reason is empty, as in Brunet).
    pub fn from_adr(v: &Adr) -> Result<CloseMessage, LinkError> {
        let v = map_of(v, "CloseMessage")?;
        Ok(CloseMessage {
            reason: opt_str(v, "reason")?.unwrap_or_default(),
        })
    }

    /// Writes `{reason}`.
    pub fn to_adr(&self) -> Adr {
        Adr::map([("reason", Adr::str(self.reason.clone()))])
    }
}
