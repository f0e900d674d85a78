//! `chamber ring show`: a ring as one node sees it ([`RingView`] from the daemon's status),
//! drawn as text (members in ring order with their roles and links) and as a small hand-written
//! SVG (a circle, members placed by address, our links coloured by kind). Only our own links
//! are known to a node, so only those are drawn.
#![warn(missing_docs)]

mod svg;

use std::fmt::Write;

use brunet_compat::address::Address;

use crate::runtime::RingView;
pub use svg::svg;

/// How we reach a member, reduced to what the picture distinguishes.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum Reach {
    /// This is us.
    Us,
    /// A direct UDP path (host, server-reflexive or peer-reflexive).
    Direct(String),
    /// Through a TURN server.
    Turn,
    /// Two hops through this member.
    Relay(String),
    /// A link still connecting or closing.
    Pending,
}

/// One member on the picture.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Member {
    /// Its ring address (`brunet:node:…`).
    pub address: String,
    /// Where it sits: its address as a fraction of 2^160, growing clockwise ("left").
    pub position: f64,
    /// Why we keep it (leaf, near, shortcut, …).
    pub roles: String,
    /// How we reach it.
    pub reach: Reach,
    /// Round trip, when linked.
    pub rtt_ms: Option<f64>,
}

/// The members we know, ourselves included, in ring order starting from us.
pub fn members(view: &RingView) -> Vec<Member> {
    let Some(me) = position(&view.address) else {
        return Vec::new();
    };
    let mut out = vec![Member {
        address: view.address.clone(),
        position: me,
        roles: "us".into(),
        reach: Reach::Us,
        rtt_ms: None,
    }];
    for p in &view.peers {
        let Some(position) = position(&p.address) else {
            continue;
        };
        let reach = match (&p.link, &p.relay_via) {
            (Some(l), _) if l.kind == "turn" => Reach::Turn,
            (Some(l), _) if l.kind.starts_with("direct") || l.kind == "peer-reflexive" => {
                Reach::Direct(l.kind.clone())
            }
            (None, Some(via)) => Reach::Relay(via.clone()),
            _ => Reach::Pending,
        };
        out.push(Member {
            address: p.address.clone(),
            position,
            roles: p.roles.clone(),
            reach,
            rtt_ms: p.link.as_ref().and_then(|l| l.rtt_ms),
        });
    }
    out.sort_by(|a, b| {
        let ka = (a.position - me).rem_euclid(1.0);
        let kb = (b.position - me).rem_euclid(1.0);
        ka.total_cmp(&kb)
    });
    out
}

/// An address's place on the ring, as a fraction of 2^160 (the top 64 bits are plenty).
pub fn position(address: &str) -> Option<f64> {
    let a: Address = address.parse().ok()?;
    let mut top = [0u8; 8];
    top.copy_from_slice(&a.as_bytes()[..8]);
    Some(u64::from_be_bytes(top) as f64 / 2f64.powi(64))
}

/// The first digits of an address, enough to tell members apart.
pub fn short(address: &str) -> String {
    address
        .trim_start_matches("brunet:node:")
        .chars()
        .take(8)
        .collect()
}

/// The text picture: a header, then each member clockwise from us with its role and link.
pub fn text(view: &RingView) -> String {
    let members = members(view);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "ring {}: {} members known, about {:.0} in all, {}",
        view.name,
        members.len(),
        view.size_estimate,
        if view.connected {
            "connected"
        } else {
            "joining"
        }
    );
    let _ = writeln!(
        s,
        "  clockwise from us (left is clockwise, right counter-clockwise):"
    );
    for m in &members {
        let side = side_of(view, &m.address);
        let link = match &m.reach {
            Reach::Us => "(this node)".to_string(),
            Reach::Direct(kind) => kind.clone(),
            Reach::Turn => "TURN relay".into(),
            Reach::Relay(via) => format!("relay via {}", short(via)),
            Reach::Pending => "link connecting".into(),
        };
        let rtt = m.rtt_ms.map(|r| format!(", {r:.1} ms")).unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:>5.1}%  {}  {:<16} {link}{rtt}{side}",
            m.position * 100.0,
            short(&m.address),
            m.roles,
        );
    }
    s
}

/// "  ← left 1" when the member is our nearest left neighbour, and so on.
fn side_of(view: &RingView, address: &str) -> String {
    let at = |v: &[String]| v.iter().position(|a| a == address).map(|i| i + 1);
    match (at(&view.left), at(&view.right)) {
        (Some(l), Some(r)) => format!("  ← left {l}, right {r}"),
        (Some(l), None) => format!("  ← left {l}"),
        (None, Some(r)) => format!("  ← right {r}"),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests;
