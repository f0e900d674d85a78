//! The STUN and TURN servers a linker's agents use: those XEP-0215 offers (UDP STUN, TURN
//! over UDP and over TCP), with each TCP TURN server behind a [`TcpTurnBridge`].

use webrtc_ice::url::{ProtoType, SchemeType, Url};
use xmpp_ext::extdisco::{ExternalService, ServiceKind, Transport};

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

    pub(super) fn url(&self) -> Url {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_relays_rank_below_udp_relays() {
        let udp_relay = (65535 << 8) | 255;
        assert!(tcp_relay_priority(udp_relay) < udp_relay);
        assert!(tcp_relay_priority(udp_relay) > 0);
        assert_eq!(tcp_relay_priority(5), 1);
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
