//! XEP-0176 Jingle ICE-UDP transport: credentials and candidates.
//!
//! Read first: XEP-0176 §5 (the `<transport/>` and `<candidate/>` syntax) and RFC 8445 §5.1 and
//! §15.1 (candidate types, priorities, foundation and ufrag/pwd grammar). xmpp-parsers'
//! `jingle_ice_udp::Transport` keeps ufrag, pwd and candidates private, so this module has its own
//! types over `Element`s.

use std::net::IpAddr;

use minidom::Element;
use xmpp_parsers::ns::JINGLE_ICE_UDP;

use crate::Error;
use crate::xml;

/// Most candidates in one transport. A host with a few interfaces, IPv4 and IPv6, one STUN and
/// one TURN server offers around ten.
pub const MAX_CANDIDATES: usize = 32;

/// Longest `id` attribute accepted.
const MAX_ID: usize = 64;

/// The ICE-UDP transport of a Jingle content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceUdpTransport {
    /// ICE username fragment (RFC 8445 §5.3): 4–256 ice-chars. Required in offers and answers;
    /// a trickled `transport-info` repeats it so the receiver can spot an ICE restart.
    pub ufrag: Option<String>,
    /// ICE password: 22–256 ice-chars.
    pub pwd: Option<String>,
    /// Candidates, possibly none (trickle ICE sends them later in `transport-info`).
    pub candidates: Vec<Candidate>,
}

/// How a candidate was learnt (RFC 8445 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateType {
    /// A local interface address.
    Host,
    /// Learnt from a peer's connectivity check.
    Prflx,
    /// Learnt from a STUN server.
    Srflx,
    /// Allocated on a TURN server.
    Relay,
}

impl CandidateType {
    fn as_str(self) -> &'static str {
        match self {
            CandidateType::Host => "host",
            CandidateType::Prflx => "prflx",
            CandidateType::Srflx => "srflx",
            CandidateType::Relay => "relay",
        }
    }
}

/// The candidate's transport protocol. ICE-UDP candidates are always UDP (XEP-0176 §5.2);
/// the enum leaves room for ICE-TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// UDP.
    Udp,
}

/// One ICE candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Component id, 1 for the single component chamber uses.
    pub component: u8,
    /// RFC 8445 foundation: 1–32 ice-chars.
    pub foundation: String,
    /// Incremented on ICE restart (XEP-0176 §5.2).
    pub generation: u8,
    /// Unique id within the session.
    pub id: String,
    /// Address; host names (mDNS `.local` candidates) are refused.
    pub ip: IpAddr,
    /// Port.
    pub port: u16,
    /// RFC 8445 §5.1.2 priority, 1 to 2³¹ − 1.
    pub priority: u32,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Candidate type.
    pub kind: CandidateType,
    /// Related (base or mapped) address of a reflexive or relayed candidate.
    pub rel_addr: Option<IpAddr>,
    /// Related port; present exactly when `rel_addr` is.
    pub rel_port: Option<u16>,
    /// Network interface index, informative.
    pub network: Option<u8>,
}

/// RFC 8445 §15.1: ice-char = ALPHA / DIGIT / "+" / "/".
fn ice_chars(field: &'static str, s: &str, min: usize, max: usize) -> Result<String, Error> {
    if s.len() < min || s.len() > max {
        return Err(Error::InvalidValue {
            field,
            reason: "wrong length",
        });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return Err(Error::InvalidValue {
            field,
            reason: "not ice-chars",
        });
    }
    Ok(s.to_owned())
}

fn ip(field: &'static str, s: &str) -> Result<IpAddr, Error> {
    s.parse().map_err(|_| Error::InvalidValue {
        field,
        reason: "not an IP address",
    })
}

impl Candidate {
    /// Parses one `<candidate/>`.
    pub fn from_element(e: &Element) -> Result<Self, Error> {
        xml::expect(e, "candidate", JINGLE_ICE_UDP)?;
        let attr = |name| xml::required(e, "candidate", name);
        let component = xml::decimal::<u8>("component", attr("component")?)?;
        if component == 0 {
            return Err(Error::InvalidValue {
                field: "component",
                reason: "zero",
            });
        }
        let priority = xml::decimal::<u32>("priority", attr("priority")?)?;
        if priority == 0 || priority > i32::MAX as u32 {
            return Err(Error::InvalidValue {
                field: "priority",
                reason: "outside 1..2^31",
            });
        }
        let protocol = match attr("protocol")? {
            p if p.eq_ignore_ascii_case("udp") => Protocol::Udp,
            _ => {
                return Err(Error::InvalidValue {
                    field: "protocol",
                    reason: "not udp",
                });
            }
        };
        let kind = match attr("type")? {
            "host" => CandidateType::Host,
            "prflx" => CandidateType::Prflx,
            "srflx" => CandidateType::Srflx,
            "relay" => CandidateType::Relay,
            _ => {
                return Err(Error::InvalidValue {
                    field: "candidate type",
                    reason: "not host, prflx, srflx or relay",
                });
            }
        };
        let (rel_addr, rel_port) = match (e.attr("rel-addr"), e.attr("rel-port")) {
            (None, None) => (None, None),
            (Some(a), Some(p)) => (Some(ip("rel-addr", a)?), Some(xml::decimal("rel-port", p)?)),
            _ => {
                return Err(Error::Inconsistent(
                    "rel-addr without rel-port or vice versa",
                ));
            }
        };
        let id = xml::bounded("candidate id", attr("id")?, MAX_ID)?;
        if id.is_empty() {
            return Err(Error::InvalidValue {
                field: "candidate id",
                reason: "empty",
            });
        }
        Ok(Candidate {
            component,
            foundation: ice_chars("foundation", attr("foundation")?, 1, 32)?,
            generation: xml::decimal("generation", attr("generation")?)?,
            id: id.to_owned(),
            ip: ip("ip", attr("ip")?)?,
            port: xml::decimal("port", attr("port")?)?,
            priority,
            protocol,
            kind,
            rel_addr,
            rel_port,
            network: e
                .attr("network")
                .map(|n| xml::decimal("network", n))
                .transpose()?,
        })
    }

    /// The `<candidate/>` element.
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("candidate", JINGLE_ICE_UDP)
            .attr(xml::name("component"), self.component.to_string())
            .attr(xml::name("foundation"), self.foundation.as_str())
            .attr(xml::name("generation"), self.generation.to_string())
            .attr(xml::name("id"), self.id.as_str())
            .attr(xml::name("ip"), self.ip.to_string())
            .attr(xml::name("port"), self.port.to_string())
            .attr(xml::name("priority"), self.priority.to_string())
            .attr(xml::name("protocol"), "udp")
            .attr(xml::name("type"), self.kind.as_str());
        if let Some(a) = self.rel_addr {
            b = b.attr(xml::name("rel-addr"), a.to_string());
        }
        if let Some(p) = self.rel_port {
            b = b.attr(xml::name("rel-port"), p.to_string());
        }
        if let Some(n) = self.network {
            b = b.attr(xml::name("network"), n.to_string());
        }
        b.build()
    }
}

impl IceUdpTransport {
    /// Parses a `<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'/>`. Children other than
    /// candidates (e.g. `remote-candidate`) are ignored.
    pub fn from_element(e: &Element) -> Result<Self, Error> {
        xml::expect(e, "transport", JINGLE_ICE_UDP)?;
        let ufrag = e
            .attr("ufrag")
            .map(|u| ice_chars("ufrag", u, 4, 256))
            .transpose()?;
        let pwd = e
            .attr("pwd")
            .map(|p| ice_chars("pwd", p, 22, 256))
            .transpose()?;
        let mut candidates = Vec::new();
        for c in e.children().filter(|c| c.is("candidate", JINGLE_ICE_UDP)) {
            if candidates.len() == MAX_CANDIDATES {
                return Err(Error::TooMany {
                    what: "candidates",
                    limit: MAX_CANDIDATES,
                });
            }
            candidates.push(Candidate::from_element(c)?);
        }
        Ok(IceUdpTransport {
            ufrag,
            pwd,
            candidates,
        })
    }

    /// The `<transport/>` element.
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("transport", JINGLE_ICE_UDP);
        if let Some(u) = &self.ufrag {
            b = b.attr(xml::name("ufrag"), u.as_str());
        }
        if let Some(p) = &self.pwd {
            b = b.attr(xml::name("pwd"), p.as_str());
        }
        b.append_all(self.candidates.iter().map(Candidate::to_element))
            .build()
    }

    /// Whether the ICE credentials are present (required in offers and answers).
    pub fn has_credentials(&self) -> bool {
        self.ufrag.is_some() && self.pwd.is_some()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn host() -> Candidate {
        Candidate {
            component: 1,
            foundation: "1".into(),
            generation: 0,
            id: "el0747fg11".into(),
            ip: "10.0.1.1".parse().unwrap(),
            port: 8998,
            priority: 2_130_706_431,
            protocol: Protocol::Udp,
            kind: CandidateType::Host,
            rel_addr: None,
            rel_port: None,
            network: Some(0),
        }
    }

    pub(crate) fn relay() -> Candidate {
        Candidate {
            component: 1,
            foundation: "3+f/x".into(),
            generation: 0,
            id: "y3s2b30v3r".into(),
            ip: "2001:db8::9".parse().unwrap(),
            port: 49152,
            priority: 16_777_215,
            protocol: Protocol::Udp,
            kind: CandidateType::Relay,
            rel_addr: Some("192.0.2.3".parse().unwrap()),
            rel_port: Some(45664),
            network: None,
        }
    }

    pub(crate) fn transport() -> IceUdpTransport {
        IceUdpTransport {
            ufrag: Some("8hhy".into()),
            pwd: Some("asd88fgpdd777uzjYhagZg".into()),
            candidates: vec![host(), relay()],
        }
    }

    #[test]
    fn round_trip() {
        let t = transport();
        let text = xml::to_string(&t.to_element()).unwrap();
        let back = IceUdpTransport::from_element(&text.parse().unwrap()).unwrap();
        assert_eq!(back, t);
        assert!(back.has_credentials());
    }

    /// XEP-0176 Example 1, verbatim.
    #[test]
    fn parses_the_xep_example() {
        let xml = "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' \
            pwd='asd88fgpdd777uzjYhagZg' ufrag='8hhy'>\
            <candidate component='1' foundation='1' generation='0' id='el0747fg11' \
              ip='10.0.1.1' network='1' port='8998' priority='2130706431' protocol='udp' type='host'/>\
            <candidate component='1' foundation='2' generation='0' id='y3s2b30v3r' \
              ip='192.0.2.3' network='1' port='45664' priority='1694498815' protocol='udp' \
              rel-addr='10.0.1.1' rel-port='8998' type='srflx'/></transport>";
        let t = IceUdpTransport::from_element(&xml.parse().unwrap()).unwrap();
        assert_eq!(t.candidates.len(), 2);
        assert_eq!(t.candidates[1].kind, CandidateType::Srflx);
        assert_eq!(t.candidates[1].rel_port, Some(8998));
    }

    #[test]
    fn bad_candidates_are_refused() {
        let good = xml::to_string(&host().to_element()).unwrap();
        for (from, to) in [
            ("ip='10.0.1.1'", "ip='abcd.local'"),
            ("component='1'", "component='0'"),
            ("priority='2130706431'", "priority='0'"),
            ("priority='2130706431'", "priority='4294967295'"),
            ("protocol='udp'", "protocol='tcp'"),
            ("type='host'", "type='stun'"),
            ("foundation='1'", "foundation='a b'"),
            ("port='8998'", "port='65536'"),
            ("id='el0747fg11'", "id=''"),
            ("port='8998'", "port='8998' rel-port='1'"),
        ] {
            assert!(good.contains(from), "{from} in {good}");
            let bad: Element = good.replace(from, to).parse().unwrap();
            assert!(Candidate::from_element(&bad).is_err(), "{to}");
        }
    }

    #[test]
    fn bad_credentials_and_too_many_candidates_are_refused() {
        let mut t = transport();
        t.ufrag = Some("abc".into());
        assert!(IceUdpTransport::from_element(&t.to_element()).is_err());
        let mut t = transport();
        t.pwd = Some("short".into());
        assert!(IceUdpTransport::from_element(&t.to_element()).is_err());
        let mut t = transport();
        t.ufrag = Some("ab cd".into());
        assert!(IceUdpTransport::from_element(&t.to_element()).is_err());
        let mut t = transport();
        t.candidates = vec![host(); MAX_CANDIDATES + 1];
        assert!(matches!(
            IceUdpTransport::from_element(&t.to_element()),
            Err(Error::TooMany { .. })
        ));
    }
}
