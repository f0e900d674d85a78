//! XEP-0215 external service discovery (`urn:xmpp:extdisco:2`): asking our own XMPP server for
//! its STUN and TURN services and for short-lived TURN credentials.
//!
//! Read first: XEP-0215 §3.1 (services request), §3.3 (credentials request) and §4 (pushes with
//! `action`); RFC 7064/7065 for the default ports. xmpp-parsers' `extdisco::Service` keeps its
//! fields private and knows only `stun` and `turn` (Prosody also sends `turns`), so services are
//! read from the `Element`s here.

use std::str::FromStr;

use minidom::Element;
use xmpp_parsers::date::DateTime;
use xmpp_parsers::ns::EXT_DISCO;

use crate::Error;
use crate::xml::{self, Limits};

/// Bounds for a services or credentials answer (services may carry XEP-0128 forms).
pub const LIMITS: Limits = Limits {
    max_bytes: 32 * 1024,
    max_elements: 256,
};

/// Most services accepted in one answer; a server offering more is misconfigured or hostile.
pub const MAX_SERVICES: usize = 32;

/// Longest host name (RFC 1035) or textual address.
const MAX_HOST: usize = 255;

/// Longest username, password or name; TURN REST credentials are well under this.
const MAX_TEXT: usize = 512;

/// The protocol a service speaks (the `type` attribute).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    /// STUN (RFC 8489).
    Stun,
    /// STUN over TLS.
    Stuns,
    /// TURN (RFC 8656).
    Turn,
    /// TURN over TLS.
    Turns,
    /// Anything else (ftp, http, …): kept so a caller can log it, never used for ICE.
    Other(String),
}

impl ServiceKind {
    fn as_str(&self) -> &str {
        match self {
            ServiceKind::Stun => "stun",
            ServiceKind::Stuns => "stuns",
            ServiceKind::Turn => "turn",
            ServiceKind::Turns => "turns",
            ServiceKind::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "stun" => ServiceKind::Stun,
            "stuns" => ServiceKind::Stuns,
            "turn" => ServiceKind::Turn,
            "turns" => ServiceKind::Turns,
            other => ServiceKind::Other(xml::bounded("service type", other, 64)?.to_owned()),
        })
    }

    /// The port to use when the server names none (RFC 7064 §3.1, RFC 7065 §3.1).
    pub fn default_port(&self) -> Option<u16> {
        match self {
            ServiceKind::Stun | ServiceKind::Turn => Some(3478),
            ServiceKind::Stuns | ServiceKind::Turns => Some(5349),
            ServiceKind::Other(_) => None,
        }
    }
}

/// The transport a service listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP (TLS for `stuns`/`turns`).
    Tcp,
}

/// What a push (XEP-0215 §4) does with a service; answers to requests are always `Add`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Action {
    /// A new service.
    #[default]
    Add,
    /// A service that is gone.
    Remove,
    /// A changed service.
    Modify,
}

/// One external service offered by the server.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalService {
    /// Protocol.
    pub kind: ServiceKind,
    /// Transport; when the server omits it, UDP except for the TLS kinds, which use TCP.
    pub transport: Transport,
    /// Host name or IP address.
    pub host: String,
    /// Port, when the server names one; see [`ExternalService::port_or_default`].
    pub port: Option<u16>,
    /// TURN username (short-lived with Prosody's `turn_external` and ejabberd's `mod_stun_disco`).
    pub username: Option<String>,
    /// TURN password.
    pub password: Option<String>,
    /// When the credentials stop working (XEP-0082 timestamp).
    pub expires: Option<DateTime>,
    /// True when credentials are needed but were not included: ask with [`credentials_request`].
    pub restricted: bool,
    /// Human-readable name.
    pub name: Option<String>,
    /// Push action.
    pub action: Action,
}

impl ExternalService {
    /// The port, or the protocol's default.
    pub fn port_or_default(&self) -> Option<u16> {
        self.port.or(self.kind.default_port())
    }

    /// Seconds since the Unix epoch when the credentials expire.
    pub fn expires_unix(&self) -> Option<i64> {
        self.expires.as_ref().map(|d| d.0.timestamp())
    }

    /// Parses one `<service/>`.
    pub fn from_element(e: &Element) -> Result<Self, Error> {
        xml::expect(e, "service", EXT_DISCO)?;
        let kind = ServiceKind::parse(xml::required(e, "service", "type")?)?;
        let host = xml::bounded("host", xml::required(e, "service", "host")?, MAX_HOST)?;
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(Error::InvalidValue {
                field: "host",
                reason: "empty or contains whitespace",
            });
        }
        let port = match e.attr("port") {
            None => None,
            Some(p) => match xml::decimal::<u16>("port", p)? {
                0 => {
                    return Err(Error::InvalidValue {
                        field: "port",
                        reason: "zero",
                    });
                }
                p => Some(p),
            },
        };
        let transport = match e.attr("transport") {
            Some("udp") => Transport::Udp,
            Some("tcp") => Transport::Tcp,
            Some(_) => {
                return Err(Error::InvalidValue {
                    field: "transport",
                    reason: "neither udp nor tcp",
                });
            }
            None if matches!(kind, ServiceKind::Stuns | ServiceKind::Turns) => Transport::Tcp,
            None => Transport::Udp,
        };
        let text = |field: &'static str| -> Result<Option<String>, Error> {
            e.attr(field)
                .map(|v| xml::bounded(field, v, MAX_TEXT).map(str::to_owned))
                .transpose()
        };
        let expires =
            match e.attr("expires") {
                None => None,
                Some(s) => Some(DateTime::from_str(xml::bounded("expires", s, 64)?).map_err(
                    |_| Error::InvalidValue {
                        field: "expires",
                        reason: "not an XEP-0082 timestamp",
                    },
                )?),
            };
        let restricted = match e.attr("restricted") {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(_) => {
                return Err(Error::InvalidValue {
                    field: "restricted",
                    reason: "not a boolean",
                });
            }
        };
        let action = match e.attr("action") {
            None | Some("add") => Action::Add,
            Some("remove") => Action::Remove,
            Some("modify") => Action::Modify,
            Some(_) => {
                return Err(Error::InvalidValue {
                    field: "action",
                    reason: "not add, remove or modify",
                });
            }
        };
        Ok(ExternalService {
            kind,
            transport,
            host: host.to_owned(),
            port,
            username: text("username")?,
            password: text("password")?,
            expires,
            restricted,
            name: text("name")?,
            action,
        })
    }

    /// The `<service/>` element (as a server would send it; used by tests and lab fakes).
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("service", EXT_DISCO)
            .attr(xml::name("type"), self.kind.as_str())
            .attr(xml::name("host"), self.host.as_str())
            .attr(
                xml::name("transport"),
                match self.transport {
                    Transport::Udp => "udp",
                    Transport::Tcp => "tcp",
                },
            );
        let optional = [
            ("port", self.port.map(|p| p.to_string())),
            ("username", self.username.clone()),
            ("password", self.password.clone()),
            ("expires", self.expires.as_ref().map(|d| d.0.to_rfc3339())),
            ("name", self.name.clone()),
            ("restricted", self.restricted.then(|| "true".to_owned())),
            (
                "action",
                match self.action {
                    Action::Add => None,
                    Action::Remove => Some("remove".to_owned()),
                    Action::Modify => Some("modify".to_owned()),
                },
            ),
        ];
        for (attr, value) in optional {
            if let Some(v) = value {
                b = b.attr(xml::name(attr), v);
            }
        }
        b.build()
    }
}

/// `<services/>` for an IQ get to the server's domain (§3.1); `kind` narrows it to one type.
pub fn services_request(kind: Option<&ServiceKind>) -> Element {
    let b = Element::builder("services", EXT_DISCO);
    match kind {
        Some(k) => b.attr(xml::name("type"), k.as_str()).build(),
        None => b.build(),
    }
}

/// `<credentials/>` for an IQ get asking credentials for one restricted service (§3.3).
pub fn credentials_request(host: &str, kind: &ServiceKind, port: Option<u16>) -> Element {
    let mut service = Element::builder("service", EXT_DISCO)
        .attr(xml::name("host"), host)
        .attr(xml::name("type"), kind.as_str());
    if let Some(p) = port {
        service = service.attr(xml::name("port"), p.to_string());
    }
    Element::builder("credentials", EXT_DISCO)
        .append(service.build())
        .build()
}

/// `<services/>` answer or push holding `services`.
pub fn services_response(services: &[ExternalService]) -> Element {
    Element::builder("services", EXT_DISCO)
        .append_all(services.iter().map(ExternalService::to_element))
        .build()
}

/// Parses a `<services/>` or `<credentials/>` answer (or a `<services/>` push).
pub fn parse_response(e: &Element) -> Result<Vec<ExternalService>, Error> {
    if !(e.is("services", EXT_DISCO) || e.is("credentials", EXT_DISCO)) {
        return Err(Error::UnexpectedElement {
            expected: "services",
            ns: EXT_DISCO,
            found: format!("{{{}}}{}", e.ns(), e.name()),
        });
    }
    xml::check_elements(e, LIMITS.max_elements)?;
    let mut out = Vec::new();
    for child in e.children().filter(|c| c.is("service", EXT_DISCO)) {
        if out.len() == MAX_SERVICES {
            return Err(Error::TooMany {
                what: "services",
                limit: MAX_SERVICES,
            });
        }
        out.push(ExternalService::from_element(child)?);
    }
    Ok(out)
}

/// Parses an answer from XML bytes within [`LIMITS`].
pub fn parse_response_xml(bytes: &[u8]) -> Result<Vec<ExternalService>, Error> {
    parse_response(&xml::parse(bytes, LIMITS)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Prosody 0.12 with `turn_external` answers (lab capture, credentials shortened).
    const PROSODY: &str = "<services xmlns='urn:xmpp:extdisco:2'>\
        <service type='stun' transport='udp' host='turn.lab' port='3478'/>\
        <service type='turn' transport='udp' host='turn.lab' port='3478' \
          username='1700003600' password='kM3dDhVx1yD+6bKQ1d0Cw6rZ3kE=' \
          expires='2023-11-14T23:13:20Z' restricted='1'/>\
        </services>";

    #[test]
    fn parses_prosody_answer() {
        let s = parse_response_xml(PROSODY.as_bytes()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].kind, ServiceKind::Stun);
        assert_eq!(s[0].transport, Transport::Udp);
        assert_eq!(s[0].port, Some(3478));
        assert_eq!(s[0].username, None);
        assert_eq!(s[1].kind, ServiceKind::Turn);
        assert_eq!(s[1].username.as_deref(), Some("1700003600"));
        assert_eq!(
            s[1].password.as_deref(),
            Some("kM3dDhVx1yD+6bKQ1d0Cw6rZ3kE=")
        );
        assert_eq!(s[1].expires_unix(), Some(1_700_003_600));
        assert!(s[1].restricted);
    }

    #[test]
    fn round_trip() {
        let services = parse_response_xml(PROSODY.as_bytes()).unwrap();
        let text = xml::to_string(&services_response(&services)).unwrap();
        assert_eq!(parse_response_xml(text.as_bytes()).unwrap(), services);

        let other = ExternalService {
            kind: ServiceKind::Turns,
            transport: Transport::Tcp,
            host: "2001:db8::1".into(),
            port: None,
            username: None,
            password: None,
            expires: None,
            restricted: false,
            name: Some("relay".into()),
            action: Action::Remove,
        };
        let text = xml::to_string(&services_response(std::slice::from_ref(&other))).unwrap();
        assert_eq!(parse_response_xml(text.as_bytes()).unwrap(), vec![other]);
    }

    #[test]
    fn defaults_follow_the_kind() {
        let xml = "<services xmlns='urn:xmpp:extdisco:2'>\
            <service type='turns' host='t'/><service type='stun' host='s'/>\
            <service type='ftp' host='f'/></services>";
        let s = parse_response_xml(xml.as_bytes()).unwrap();
        assert_eq!(s[0].transport, Transport::Tcp);
        assert_eq!(s[0].port_or_default(), Some(5349));
        assert_eq!(s[1].transport, Transport::Udp);
        assert_eq!(s[1].port_or_default(), Some(3478));
        assert_eq!(s[2].kind, ServiceKind::Other("ftp".into()));
        assert_eq!(s[2].port_or_default(), None);
    }

    #[test]
    fn requests_have_the_xep_shape() {
        assert_eq!(
            xml::to_string(&services_request(None)).unwrap(),
            "<services xmlns='urn:xmpp:extdisco:2'/>"
        );
        let turn = services_request(Some(&ServiceKind::Turn));
        assert_eq!(turn.attr("type"), Some("turn"));
        let c = credentials_request("turn.lab", &ServiceKind::Turn, Some(3478));
        assert!(c.is("credentials", EXT_DISCO));
        let s = c.get_child("service", EXT_DISCO).unwrap();
        assert_eq!(s.attr("host"), Some("turn.lab"));
        assert_eq!(s.attr("type"), Some("turn"));
        assert_eq!(s.attr("port"), Some("3478"));
        // A credentials answer has the same shape and parses the same way.
        let answer = "<credentials xmlns='urn:xmpp:extdisco:2'><service type='turn' host='turn.lab' username='u' password='p'/></credentials>";
        assert_eq!(parse_response_xml(answer.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn malformed_services_are_refused() {
        let bad = [
            "<service type='stun'/>",
            "<service host='h'/>",
            "<service type='stun' host=''/>",
            "<service type='stun' host='a b'/>",
            "<service type='stun' host='h' port='0'/>",
            "<service type='stun' host='h' port='70000'/>",
            "<service type='stun' host='h' transport='sctp'/>",
            "<service type='stun' host='h' restricted='yes'/>",
            "<service type='stun' host='h' expires='tomorrow'/>",
            "<service type='stun' host='h' action='drop'/>",
        ];
        for b in bad {
            let xml = format!("<services xmlns='urn:xmpp:extdisco:2'>{b}</services>");
            assert!(parse_response_xml(xml.as_bytes()).is_err(), "{b}");
        }
        let long_host = format!(
            "<services xmlns='urn:xmpp:extdisco:2'><service type='stun' host='{}'/></services>",
            "h".repeat(300)
        );
        assert!(parse_response_xml(long_host.as_bytes()).is_err());
        assert!(matches!(
            parse_response_xml(b"<query xmlns='urn:xmpp:extdisco:2'/>"),
            Err(Error::UnexpectedElement { .. })
        ));
    }

    #[test]
    fn too_many_services_are_refused() {
        let many: String = (0..MAX_SERVICES + 1)
            .map(|i| format!("<service type='stun' host='h{i}'/>"))
            .collect();
        let xml = format!("<services xmlns='urn:xmpp:extdisco:2'>{many}</services>");
        assert!(matches!(
            parse_response_xml(xml.as_bytes()),
            Err(Error::TooMany {
                what: "services",
                ..
            })
        ));
    }
}
