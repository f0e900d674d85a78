//! The path: a webrtc-ice agent set up the way a lab and a real network both need (STACK.md
//! trap 9), and conversions between its candidates and XEP-0176 ones.
//!
//! - Candidates: host (UDP4 only, on the interfaces allowed), server-reflexive from every STUN
//!   service known, relay from every TURN service with credentials (XEP-0215).
//! - mDNS is off: candidates carry IP addresses, which XEP-0176 requires anyway.
//! - Link-local, CGNAT-range and loopback addresses are never offered: they cannot reach a
//!   friend, and `100.64.0.0/10` is where chamber's own VPN lives (a path must never run
//!   through the overlay it carries).
//! - A relay pair is accepted after [`IceConfig::relay_wait`] (2 s, the library default): a
//!   guess that a direct pair might still win; when we know none can (UDP blocked here, a
//!   symmetric NAT here, see [`PathHint`]), the wait is zero.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use webrtc_ice::agent::Agent;
use webrtc_ice::agent::agent_config::AgentConfig;
use webrtc_ice::candidate::candidate_base::unmarshal_candidate;
use webrtc_ice::candidate::{Candidate as IceCandidate, CandidatePair, CandidateType};
use webrtc_ice::mdns::MulticastDnsMode;
use webrtc_ice::network_type::NetworkType;
use webrtc_ice::url::{ProtoType, SchemeType, Url};
use xmpp_ext::extdisco::{ExternalService, ServiceKind, Transport};
use xmpp_ext::jingle::{Candidate, CandidateType as JingleType, Protocol};

use super::turn_tcp::TcpTurnBridge;

/// A STUN or TURN server for the agent.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IceServer {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TURN credentials; `None` for STUN.
    pub turn: Option<(String, String)>,
    /// Reached over TCP (TURN only: the way out of a site that blocks UDP); the relay itself
    /// is UDP either way.
    pub tcp: bool,
}

impl std::fmt::Debug for IceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.turn.is_some() { "turn" } else { "stun" };
        let tcp = if self.tcp { "?transport=tcp" } else { "" };
        write!(f, "{kind}:{}:{}{tcp}", self.host, self.port)
    }
}

impl IceServer {
    /// The usable servers among XEP-0215 offers: UDP STUN, and TURN with credentials over
    /// UDP or TCP (a UDP TURN server also answers STUN Binding, so it yields both).
    pub fn from_offers(offers: &[ExternalService]) -> Vec<IceServer> {
        let mut v = Vec::new();
        for s in offers {
            let Some(port) = s.port_or_default() else {
                continue;
            };
            let tcp = s.transport == Transport::Tcp;
            match (&s.kind, &s.username, &s.password) {
                (ServiceKind::Stun, _, _) if !tcp => v.push(IceServer {
                    host: s.host.clone(),
                    port,
                    turn: None,
                    tcp,
                }),
                (ServiceKind::Turn, Some(u), Some(p)) => v.push(IceServer {
                    host: s.host.clone(),
                    port,
                    turn: Some((u.clone(), p.clone())),
                    tcp,
                }),
                _ => {}
            }
        }
        v.sort();
        v.dedup();
        v
    }

    /// `host:port`, as a socket address string.
    pub fn authority(&self) -> String {
        match self.host.parse::<std::net::Ipv6Addr>() {
            Ok(_) => format!("[{}]:{}", self.host, self.port),
            Err(_) => format!("{}:{}", self.host, self.port),
        }
    }

    fn url(&self) -> Url {
        let (scheme, (username, password)) = match &self.turn {
            Some(c) => (SchemeType::Turn, c.clone()),
            None => (SchemeType::Stun, Default::default()),
        };
        Url {
            scheme,
            host: self.host.clone(),
            port: self.port,
            username,
            password,
            proto: ProtoType::Udp,
        }
    }
}

/// The servers a linker's agents use: TCP TURN servers sit behind a [`TcpTurnBridge`] each,
/// which webrtc-ice sees as a UDP TURN server on loopback.
#[derive(Debug, Default)]
pub struct Servers {
    udp: Vec<IceServer>,
    bridged: Vec<(IceServer, TcpTurnBridge)>,
}

impl Servers {
    /// Starts a bridge per TCP TURN server (inside a tokio runtime); one that cannot start is
    /// logged and left out.
    pub fn new(servers: &[IceServer]) -> Servers {
        let mut set = Servers::default();
        for s in servers {
            if !s.tcp {
                set.udp.push(s.clone());
                continue;
            }
            match TcpTurnBridge::start(s.authority()) {
                Ok(b) => set.bridged.push((s.clone(), b)),
                Err(e) => tracing::warn!(server = ?s, %e, "no TURN over TCP bridge"),
            }
        }
        set
    }

    /// What the agent is given: UDP servers as they are, bridged ones at their bridge.
    pub fn for_agent(&self) -> Vec<IceServer> {
        let mut v = self.udp.clone();
        for (s, b) in &self.bridged {
            v.push(IceServer {
                host: b.local_addr().ip().to_string(),
                port: b.local_addr().port(),
                turn: s.turn.clone(),
                tcp: false,
            });
        }
        v
    }

    /// Whether a local relay candidate based on UDP port `port` (its related port) reaches
    /// its TURN server over TCP.
    pub fn over_tcp(&self, port: u16) -> bool {
        self.bridged.iter().any(|(_, b)| b.serves(port))
    }

    /// Whether any TURN server is known (a failed ICE then means relays were tried).
    pub fn has_turn(&self) -> bool {
        !self.bridged.is_empty() || self.udp.iter().any(|s| s.turn.is_some())
    }
}

/// The priority we announce for a relay candidate reached over TCP: below every relay over
/// UDP (RFC 8445 §5.1.2.2 leaves local preference to us), so a peer that can pick either
/// picks the datagram path without TCP's head-of-line blocking.
pub fn tcp_relay_priority(priority: u32) -> u32 {
    priority.saturating_sub(1 << 22).max(1)
}

/// What a node knows about its own network before a link starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PathHint {
    /// Nothing known: direct pairs get [`IceConfig::relay_wait`] to win.
    #[default]
    Unknown,
    /// Reflection saw a symmetric NAT or no UDP at all: a relay pair is taken at once.
    NoDirect,
}

/// How the agent gathers and checks.
#[derive(Debug, Clone)]
pub struct IceConfig {
    /// Interfaces to gather host candidates on; `None`: all but loopback.
    pub interfaces: Option<Vec<String>>,
    /// How long a relay pair waits for a direct pair to win.
    pub relay_wait: Duration,
    /// How long the controlled side holds its credentials for its candidates to be gathered
    /// (see the driver): a site whose STUN or UDP TURN never answers waits this long.
    pub gather_wait: Duration,
    /// ICE's own consent checks on an idle selected pair.
    pub keepalive: Duration,
    /// ICE reports the pair disconnected after this silence.
    pub disconnected: Duration,
    /// And failed after this much more.
    pub failed: Duration,
}

impl Default for IceConfig {
    fn default() -> Self {
        IceConfig {
            interfaces: None,
            // webrtc-ice's own default: punching through two NATs takes a few rounds of
            // checks, more on a slow or busy path; a relay pair nominated first stays.
            relay_wait: Duration::from_millis(2000),
            gather_wait: Duration::from_millis(1000),
            keepalive: Duration::from_secs(2),
            disconnected: Duration::from_secs(5),
            failed: Duration::from_secs(10),
        }
    }
}

fn offerable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || (o[0] == 100 && (o[1] & 0xC0) == 64))
        }
        IpAddr::V6(_) => false,
    }
}

/// A new agent. The controlling one (the Jingle initiator) nominates the pair.
pub async fn agent(
    cfg: &IceConfig,
    servers: &Servers,
    controlling: bool,
    hint: PathHint,
) -> Result<Agent, webrtc_ice::Error> {
    let allowed = cfg.interfaces.clone();
    let interface_filter: webrtc_ice::agent::agent_config::InterfaceFilterFn =
        Box::new(move |name: &str| match &allowed {
            Some(list) => list.iter().any(|n| n == name),
            None => name != "lo",
        });
    let relay_wait = match hint {
        PathHint::NoDirect => Duration::ZERO,
        PathHint::Unknown => cfg.relay_wait,
    };
    let config = AgentConfig {
        urls: servers.for_agent().iter().map(IceServer::url).collect(),
        network_types: vec![NetworkType::Udp4],
        candidate_types: vec![
            CandidateType::Host,
            CandidateType::ServerReflexive,
            CandidateType::Relay,
        ],
        multicast_dns_mode: MulticastDnsMode::Disabled,
        interface_filter: Arc::new(Some(interface_filter)),
        ip_filter: Arc::new(Some(Box::new(offerable))),
        is_controlling: controlling,
        host_acceptance_min_wait: Some(Duration::ZERO),
        srflx_acceptance_min_wait: Some(Duration::from_millis(100)),
        prflx_acceptance_min_wait: Some(Duration::from_millis(200)),
        relay_acceptance_min_wait: Some(relay_wait),
        keepalive_interval: Some(cfg.keepalive),
        disconnected_timeout: Some(cfg.disconnected),
        failed_timeout: Some(cfg.failed),
        ..AgentConfig::default()
    };
    Agent::new(config).await
}

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
    fn only_reachable_v4_addresses_are_offered() {
        for (ip, ok) in [
            ("198.18.1.2", true),
            ("10.77.0.2", true),
            ("127.0.0.1", false),
            ("169.254.1.1", false),
            ("100.64.3.4", false),
            ("100.128.0.1", true),
            ("::1", false),
        ] {
            assert_eq!(offerable(ip.parse().unwrap()), ok, "{ip}");
        }
    }

    #[test]
    fn tcp_relays_rank_below_udp_relays() {
        let udp_relay = (65535 << 8) | 255;
        assert!(tcp_relay_priority(udp_relay) < udp_relay);
        assert!(tcp_relay_priority(udp_relay) > 0);
        assert_eq!(tcp_relay_priority(5), 1);
    }

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

    #[test]
    fn offers_become_servers() {
        let turn = ExternalService {
            kind: ServiceKind::Turn,
            transport: Transport::Udp,
            host: "198.18.0.20".into(),
            port: Some(3478),
            username: Some("u".into()),
            password: Some("p".into()),
            expires: None,
            restricted: false,
            name: None,
            action: Default::default(),
        };
        let mut stun = turn.clone();
        stun.kind = ServiceKind::Stun;
        stun.username = None;
        let mut tcp = turn.clone();
        tcp.transport = Transport::Tcp;
        let mut stun_tcp = stun.clone();
        stun_tcp.transport = Transport::Tcp;
        let s = IceServer::from_offers(&[turn, stun.clone(), stun, tcp, stun_tcp]);
        // STUN over UDP, TURN over UDP and over TCP; STUN over TCP is of no use to ICE.
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(s.iter().filter(|s| s.turn.is_some()).count(), 2);
        assert_eq!(s.iter().filter(|s| s.tcp).count(), 1);
        assert_eq!(format!("{:?}", s[2]), "turn:198.18.0.20:3478?transport=tcp");
    }
}
