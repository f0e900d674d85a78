//! Transport addresses: where an edge to a node can be made.
//!
//! `Transport/TransportAddress.cs`, `Relay/RelayTransportAddress.cs`:
//!
//! * `brunet.udp://IP:port`, `brunet.tcp://…` (also `function`, `tls`, `tlstest`), with an
//!   optional path (`/`, `/<n>`) that `PathEdgeListener` appends when several nodes share a
//!   socket: the captures advertise `brunet.udp://127.0.0.1:15002/`.
//! * `brunet.tunnel://<b32 target>/<8 chars>+<8 chars>…`: a relay edge through forwarders
//!   named by the first 8 base32 characters (5 bytes) of their addresses.
//!
//! Brunet keeps the original string; we parse into fields and only accept strings that
//! format back identically, so a TA always re-encodes byte for byte.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use crate::address::Address;

/// The kind of an IP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpKind {
    /// `brunet.udp`
    Udp,
    /// `brunet.tcp`
    Tcp,
    /// `brunet.function` (in-process test edges)
    Function,
    /// `brunet.tls`
    Tls,
    /// `brunet.tlstest`
    TlsTest,
}

impl IpKind {
    fn scheme(self) -> &'static str {
        match self {
            IpKind::Udp => "udp",
            IpKind::Tcp => "tcp",
            IpKind::Function => "function",
            IpKind::Tls => "tls",
            IpKind::TlsTest => "tlstest",
        }
    }

    fn from_scheme(s: &str) -> Option<IpKind> {
        Some(match s {
            "udp" => IpKind::Udp,
            "tcp" => IpKind::Tcp,
            "function" => IpKind::Function,
            "tls" => IpKind::Tls,
            "tlstest" => IpKind::TlsTest,
            _ => return None,
        })
    }
}

/// The host part of an IP transport address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A literal address (IPv6 is written in brackets).
    Ip(IpAddr),
    /// A DNS name such as `localhost`.
    Name(String),
}

/// A parsed transport address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransportAddress {
    /// UDP, TCP and friends.
    Ip {
        /// Which transport.
        kind: IpKind,
        /// Host.
        host: Host,
        /// Port.
        port: u16,
        /// `""`, or the PathEdgeListener path starting with `/`.
        path: String,
    },
    /// A relay ("tunnel") edge.
    Relay {
        /// The node the edge leads to.
        target: Address,
        /// First 5 bytes of each forwarder's address, in the order written.
        forwarders: Vec<[u8; 5]>,
    },
}

/// Why a string is not a transport address we understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaError {
    /// Not `brunet.<kind>://…`.
    #[error("not a brunet transport address")]
    NotBrunet,
    /// A kind we do not handle (`subring`, `xmpp`, `s`, …).
    #[error("unsupported transport kind {0:?}")]
    UnsupportedKind(String),
    /// `host:port` missing or malformed.
    #[error("malformed host or port")]
    BadHostPort,
    /// A relay target or forwarder prefix that is not base32.
    #[error("malformed relay address")]
    BadRelay,
    /// Parses, but would not format back to the same string (e.g. a port with leading
    /// zeros), which would break byte-exact re-encoding.
    #[error("non-canonical transport address")]
    NonCanonical,
}

const PREFIX: &str = "brunet.";
const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

impl FromStr for TransportAddress {
    type Err = TaError;

    fn from_str(s: &str) -> Result<Self, TaError> {
        let rest = s.strip_prefix(PREFIX).ok_or(TaError::NotBrunet)?;
        let (kind, body) = rest.split_once("://").ok_or(TaError::NotBrunet)?;
        let ta = if kind == "tunnel" {
            parse_relay(body)?
        } else {
            let kind = IpKind::from_scheme(kind)
                .ok_or_else(|| TaError::UnsupportedKind(kind.to_owned()))?;
            parse_ip(kind, body)?
        };
        if ta.to_string() != s {
            return Err(TaError::NonCanonical);
        }
        Ok(ta)
    }
}

fn parse_ip(kind: IpKind, body: &str) -> Result<TransportAddress, TaError> {
    let (hostport, path) = match body.find('/') {
        Some(i) => body.split_at(i),
        None => (body, ""),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (addr, port) = v6.split_once("]:").ok_or(TaError::BadHostPort)?;
        let ip = Ipv6Addr::from_str(addr).map_err(|_| TaError::BadHostPort)?;
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = hostport.rsplit_once(':').ok_or(TaError::BadHostPort)?;
        let host = match IpAddr::from_str(host) {
            Ok(ip @ IpAddr::V4(_)) => Host::Ip(ip),
            _ if is_dns_name(host) => Host::Name(host.to_owned()),
            _ => return Err(TaError::BadHostPort),
        };
        (host, port)
    };
    let port = u16::from_str(port).map_err(|_| TaError::BadHostPort)?;
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TaError::BadHostPort);
    }
    Ok(TransportAddress::Ip {
        kind,
        host,
        port,
        path: path.to_owned(),
    })
}

fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn parse_relay(body: &str) -> Result<TransportAddress, TaError> {
    let (target, list) = body.split_once('/').ok_or(TaError::BadRelay)?;
    let target = Address::from_base32(target).map_err(|_| TaError::BadRelay)?;
    let forwarders = if list.is_empty() {
        Vec::new()
    } else {
        list.split('+')
            .map(decode_prefix)
            .collect::<Result<_, _>>()?
    };
    Ok(TransportAddress::Relay { target, forwarders })
}

/// 8 base32 characters → 5 bytes.
fn decode_prefix(s: &str) -> Result<[u8; 5], TaError> {
    if s.len() != 8 {
        return Err(TaError::BadRelay);
    }
    let mut v: u64 = 0;
    for c in s.bytes() {
        let d = B32
            .iter()
            .position(|&x| x == c.to_ascii_uppercase())
            .ok_or(TaError::BadRelay)?;
        v = (v << 5) | d as u64;
    }
    let b = v.to_be_bytes();
    Ok([b[3], b[4], b[5], b[6], b[7]])
}

fn encode_prefix(p: &[u8; 5]) -> String {
    let v = u64::from_be_bytes([0, 0, 0, p[0], p[1], p[2], p[3], p[4]]);
    // Each digit is masked to 5 bits, so the index is in bounds.
    (0..8)
        .rev()
        .map(|i| B32[((v >> (i * 5)) & 0x1f) as usize] as char)
        .collect()
}

impl TransportAddress {
    /// A UDP address without a path.
    pub fn udp(ip: IpAddr, port: u16) -> TransportAddress {
        TransportAddress::Ip {
            kind: IpKind::Udp,
            host: Host::Ip(ip),
            port,
            path: String::new(),
        }
    }

    /// A relay address through forwarders, written with the first 5 bytes of each.
    pub fn relay<'a>(target: Address, forwarders: impl IntoIterator<Item = &'a Address>) -> Self {
        let forwarders = forwarders
            .into_iter()
            .map(|a| {
                let b = a.as_bytes();
                [b[0], b[1], b[2], b[3], b[4]]
            })
            .collect();
        TransportAddress::Relay { target, forwarders }
    }
}

impl TransportAddress {
    /// The `brunet.udp://IP:port` address of a socket address.
    pub fn udp_socket(sa: SocketAddr) -> TransportAddress {
        TransportAddress::udp(sa.ip(), sa.port())
    }

    /// The socket address of a UDP transport address with a literal IP (any path is
    /// PathEdgeListener's and does not change the socket); `None` for other kinds and for
    /// DNS names, which a sans-IO caller cannot resolve.
    pub fn udp_socket_addr(&self) -> Option<SocketAddr> {
        match self {
            TransportAddress::Ip {
                kind: IpKind::Udp,
                host: Host::Ip(ip),
                port,
                ..
            } => Some(SocketAddr::new(*ip, *port)),
            _ => None,
        }
    }
}

impl fmt::Display for TransportAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportAddress::Ip {
                kind,
                host,
                port,
                path,
            } => {
                write!(f, "{PREFIX}{}://", kind.scheme())?;
                match host {
                    Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
                    Host::Ip(ip) => write!(f, "{ip}")?,
                    Host::Name(n) => f.write_str(n)?,
                }
                write!(f, ":{port}{path}")
            }
            TransportAddress::Relay { target, forwarders } => {
                write!(f, "{PREFIX}tunnel://{}/", target.to_base32())?;
                for (i, p) in forwarders.iter().enumerate() {
                    if i > 0 {
                        f.write_str("+")?;
                    }
                    f.write_str(&encode_prefix(p))?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> TransportAddress {
        let ta: TransportAddress = s.parse().unwrap();
        assert_eq!(ta.to_string(), s);
        ta
    }

    #[test]
    fn capture_forms() {
        let ta = rt("brunet.udp://127.0.0.1:15000");
        assert_eq!(ta, TransportAddress::udp([127, 0, 0, 1].into(), 15000));
        match rt("brunet.udp://127.0.0.1:15002/") {
            TransportAddress::Ip { path, port, .. } => {
                assert_eq!((path.as_str(), port), ("/", 15002))
            }
            other => panic!("{other:?}"),
        }
        match rt("brunet.tunnel://H3US32RQ7LDDQ464ZJKMP2VWX6LANY5O/") {
            TransportAddress::Relay { target, forwarders } => {
                assert_eq!(
                    target.to_string(),
                    "brunet:node:H3US32RQ7LDDQ464ZJKMP2VWX6LANY5O"
                );
                assert!(forwarders.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn udp_socket_addresses() {
        let sa: SocketAddr = "127.0.0.1:15002".parse().unwrap();
        assert_eq!(TransportAddress::udp_socket(sa).udp_socket_addr(), Some(sa));
        assert_eq!(
            rt("brunet.udp://127.0.0.1:15002/").udp_socket_addr(),
            Some(sa)
        );
        assert_eq!(rt("brunet.tcp://127.0.0.1:15002").udp_socket_addr(), None);
        assert_eq!(rt("brunet.udp://localhost:15002").udp_socket_addr(), None);
    }

    #[test]
    fn other_forms() {
        rt("brunet.tcp://10.5.144.69:5000");
        rt("brunet.function://localhost:3000");
        rt("brunet.udp://[::1]:5000/7");
        // From Brunet's TunTATester.
        let ta = rt("brunet.tunnel://UBU72YLHU5C3SY7JMYMJRTKK4D5BGW22/FE4QWASN+FE4QWASM");
        let target: Address = "brunet:node:OIHZCNNUAXTLLARQIOBNCUWXYNAS62LO"
            .parse()
            .unwrap();
        let fwd: Address = "brunet:node:CADSL6GVVBM6V442CETP4JTEAWACLC5A"
            .parse()
            .unwrap();
        let built = TransportAddress::relay(target, [&fwd]);
        assert_eq!(
            built.to_string(),
            "brunet.tunnel://OIHZCNNUAXTLLARQIOBNCUWXYNAS62LO/CADSL6GV"
        );
        assert!(
            matches!(ta, TransportAddress::Relay { ref forwarders, .. } if forwarders.len() == 2)
        );
    }

    #[test]
    fn malformed() {
        let err = |s: &str| s.parse::<TransportAddress>().unwrap_err();
        assert_eq!(err("udp://1.2.3.4:5"), TaError::NotBrunet);
        assert_eq!(err("brunet.udp:1.2.3.4:5"), TaError::NotBrunet);
        assert_eq!(
            err("brunet.xmpp://a@b/c"),
            TaError::UnsupportedKind("xmpp".into())
        );
        assert_eq!(err("brunet.udp://1.2.3.4"), TaError::BadHostPort);
        assert_eq!(err("brunet.udp://1.2.3.4:70000"), TaError::BadHostPort);
        assert_eq!(err("brunet.udp://:5"), TaError::BadHostPort);
        assert_eq!(err("brunet.udp://a b:5"), TaError::BadHostPort);
        assert_eq!(err("brunet.udp://1.2.3.4:05"), TaError::NonCanonical);
        assert_eq!(err("brunet.udp://[::0:1]:5"), TaError::NonCanonical);
        assert_eq!(err("brunet.tunnel://ABC/"), TaError::BadRelay);
        assert_eq!(
            err("brunet.tunnel://H3US32RQ7LDDQ464ZJKMP2VWX6LANY5O/ABC"),
            TaError::BadRelay
        );
        assert_eq!(
            err("brunet.tunnel://H3US32RQ7LDDQ464ZJKMP2VWX6LANY5O/abcdefgh"),
            TaError::NonCanonical
        );
    }
}
