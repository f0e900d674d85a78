//! Candidates and paths: webrtc-ice's candidates as XEP-0176 ones and back, and what kind of
//! path a selected pair is.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use webrtc_ice::candidate::candidate_base::unmarshal_candidate;
use webrtc_ice::candidate::{Candidate as IceCandidate, CandidatePair, CandidateType};
use xmpp_ext::jingle::{Candidate, CandidateType as JingleType, Protocol};

/// The kind of path a link runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    /// Host to host: same network, or a public address.
    DirectHost,
    /// Through NATs, addresses learnt from STUN.
    DirectServerReflexive,
    /// Through NATs, an address learnt from the peer's own checks.
    PeerReflexive,
    /// Through a TURN server.
    TurnRelay,
}

impl PathKind {
    /// Whether the path avoids every relay.
    pub fn is_direct(self) -> bool {
        self != PathKind::TurnRelay
    }

    /// A short name.
    pub fn as_str(self) -> &'static str {
        match self {
            PathKind::DirectHost => "direct host",
            PathKind::DirectServerReflexive => "direct server-reflexive",
            PathKind::PeerReflexive => "peer-reflexive",
            PathKind::TurnRelay => "TURN relay",
        }
    }
}

/// Where a link's packets go.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PathInfo {
    /// The kind, from the selected pair's candidates (a relay at either end makes it relayed).
    pub kind: PathKind,
    /// Our candidate's address (the relay's, for a local relay candidate).
    pub local: SocketAddr,
    /// The peer's candidate address.
    pub remote: SocketAddr,
    /// Our end reaches its TURN server over TCP (UDP is blocked here).
    pub over_tcp: bool,
}

fn addr(c: &(dyn IceCandidate + Send + Sync)) -> Option<SocketAddr> {
    Some(SocketAddr::new(c.address().parse().ok()?, c.port()))
}

/// The path of a selected pair.
pub fn path_of(pair: &CandidatePair) -> Option<PathInfo> {
    let (l, r) = (pair.local.candidate_type(), pair.remote.candidate_type());
    use CandidateType::*;
    let kind = match (l, r) {
        (Relay, _) | (_, Relay) => PathKind::TurnRelay,
        (PeerReflexive, _) | (_, PeerReflexive) => PathKind::PeerReflexive,
        (ServerReflexive, _) | (_, ServerReflexive) => PathKind::DirectServerReflexive,
        _ => PathKind::DirectHost,
    };
    Some(PathInfo {
        kind,
        local: addr(pair.local.as_ref())?,
        remote: addr(pair.remote.as_ref())?,
        over_tcp: false,
    })
}

/// An agent's candidate as XEP-0176 describes it; `None` for anything not UDP over IP.
pub fn to_jingle(
    c: &(dyn IceCandidate + Send + Sync),
    generation: u8,
    n: u32,
) -> Option<Candidate> {
    let ip: IpAddr = c.address().parse().ok()?;
    let kind = match c.candidate_type() {
        CandidateType::Host => JingleType::Host,
        CandidateType::ServerReflexive => JingleType::Srflx,
        CandidateType::PeerReflexive => JingleType::Prflx,
        CandidateType::Relay => JingleType::Relay,
        CandidateType::Unspecified => return None,
    };
    let rel = c.related_address();
    // Foundations are ice-chars (RFC 8445 §5.1.1.3); webrtc-ice's are decimal already.
    let mut foundation: String = c
        .foundation()
        .chars()
        .filter(|ch| ch.is_ascii_alphanumeric() || *ch == '+' || *ch == '/')
        .take(32)
        .collect();
    if foundation.is_empty() {
        foundation.push('0');
    }
    Some(Candidate {
        component: 1,
        foundation,
        generation,
        id: format!("g{generation}c{n}"),
        ip,
        port: c.port(),
        priority: c.priority().clamp(1, i32::MAX as u32),
        protocol: Protocol::Udp,
        kind,
        rel_addr: rel.as_ref().and_then(|r| r.address.parse().ok()),
        rel_port: rel
            .as_ref()
            .and_then(|r| r.address.parse::<IpAddr>().ok().map(|_| r.port)),
        network: None,
    })
}

/// A remote XEP-0176 candidate for the agent; `None` for what we do not use (IPv6, other
/// components).
pub fn from_jingle(c: &Candidate) -> Option<Arc<dyn IceCandidate + Send + Sync>> {
    if c.component != 1 || !c.ip.is_ipv4() {
        return None;
    }
    let typ = match c.kind {
        JingleType::Host => "host",
        JingleType::Srflx => "srflx",
        JingleType::Prflx => "prflx",
        JingleType::Relay => "relay",
    };
    let mut line = format!(
        "{} 1 udp {} {} {} typ {typ}",
        c.foundation, c.priority, c.ip, c.port
    );
    if let (Some(a), Some(p)) = (c.rel_addr, c.rel_port) {
        line.push_str(&format!(" raddr {a} rport {p}"));
    }
    match unmarshal_candidate(&line) {
        Ok(cand) => Some(Arc::new(cand)),
        Err(e) => {
            tracing::debug!(%e, %line, "remote candidate not usable");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_candidates_convert() {
        let c = Candidate {
            component: 1,
            foundation: "123".into(),
            generation: 0,
            id: "x".into(),
            ip: "198.18.1.2".parse().unwrap(),
            port: 4000,
            priority: 1_694_498_815,
            protocol: Protocol::Udp,
            kind: JingleType::Srflx,
            rel_addr: Some("10.77.0.2".parse().unwrap()),
            rel_port: Some(5000),
            network: None,
        };
        let ice = from_jingle(&c).expect("converts");
        assert_eq!(ice.candidate_type(), CandidateType::ServerReflexive);
        assert_eq!(ice.port(), 4000);
        let back = to_jingle(ice.as_ref(), 1, 7).unwrap();
        assert_eq!((back.ip, back.port, back.kind), (c.ip, c.port, c.kind));
        assert_eq!(back.rel_port, Some(5000));
        let mut v6 = c.clone();
        v6.ip = "2001:db8::1".parse().unwrap();
        assert!(from_jingle(&v6).is_none());
    }
}
