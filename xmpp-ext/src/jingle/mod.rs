//! XEP-0166 Jingle sessions carrying a chamber link offer: one content whose description is the
//! signed node record and whose transport is ICE-UDP ([`ice`]).
//!
//! Read first: XEP-0166 §6–7 (actions, `<reason/>`), XEP-0176 §5 and DESIGN.md §3. Only the
//! actions the link layer uses are accepted: `session-initiate`, `session-accept`,
//! `transport-info` and `session-terminate`; anything else is refused with
//! [`Error::InvalidValue`] so the caller can answer `feature-not-implemented`.
//!
//! ```xml
//! <jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='…' initiator='a@x/r'>
//!   <content creator='initiator' name='chamber'>
//!     <description xmlns='urn:x-chamber:jingle:0'><record xmlns='urn:x-chamber:0' …/></description>
//!     <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='…' pwd='…'>…</transport>
//!   </content>
//! </jingle>
//! ```
//!
//! Nothing here depends on XMPP delivery: [`Jingle::to_xml`] and [`Jingle::from_xml`] move the
//! same offer and answer over the ring to members who are not XMPP friends.

pub mod ice;
mod reason;

use jid::Jid;
use minidom::Element;
use xmpp_parsers::ns::JINGLE;

use crate::record::NodeRecord;
use crate::xml::{self, Limits};
use crate::{Error, NS_CHAMBER, NS_CHAMBER_JINGLE};
pub use ice::{Candidate, CandidateType, IceUdpTransport, Protocol};
pub use reason::Reason;
use reason::parse_reason;

/// Bounds for a `<jingle/>`: the record, a transport with [`ice::MAX_CANDIDATES`] candidates
/// (~250 bytes each) and a reason.
pub const LIMITS: Limits = Limits {
    max_bytes: 16 * 1024,
    max_elements: 64,
};

/// The name of chamber's single content.
pub const CONTENT_NAME: &str = "chamber";

/// Longest session id accepted.
const MAX_SID: usize = 128;

/// The Jingle actions chamber uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Offer: our record and ICE credentials (and maybe first candidates).
    SessionInitiate,
    /// Answer: the responder's record and ICE credentials.
    SessionAccept,
    /// Trickled candidates (or an ICE restart with new credentials).
    TransportInfo,
    /// End of the session, with a reason.
    SessionTerminate,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::SessionInitiate => "session-initiate",
            Action::SessionAccept => "session-accept",
            Action::TransportInfo => "transport-info",
            Action::SessionTerminate => "session-terminate",
        }
    }
}

/// Which party created a content (XEP-0166 §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Creator {
    /// The session initiator.
    Initiator,
    /// The session responder.
    Responder,
}

/// The single content of a chamber session.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// Who created the content; chamber's is always the initiator's.
    pub creator: Creator,
    /// Content name ([`CONTENT_NAME`] for ours).
    pub name: String,
    /// The sender's signed node record (offers and answers). Unverified until
    /// [`NodeRecord::verify`].
    pub record: Option<NodeRecord>,
    /// The ICE-UDP transport.
    pub transport: Option<IceUdpTransport>,
}

/// A parsed or built `<jingle/>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Jingle {
    /// The action.
    pub action: Action,
    /// Session id, chosen by the initiator.
    pub sid: String,
    /// Initiator's full JID (absent when the offer travels over the ring).
    pub initiator: Option<Jid>,
    /// Responder's full JID.
    pub responder: Option<Jid>,
    /// The content (absent in `session-terminate`).
    pub content: Option<Content>,
    /// Why the session ends, and an optional human-readable text.
    pub reason: Option<(Reason, Option<String>)>,
}

impl Jingle {
    fn new(action: Action, sid: &str) -> Self {
        Jingle {
            action,
            sid: sid.to_owned(),
            initiator: None,
            responder: None,
            content: None,
            reason: None,
        }
    }

    fn with_content(mut self, record: Option<NodeRecord>, transport: IceUdpTransport) -> Self {
        self.content = Some(Content {
            creator: Creator::Initiator,
            name: CONTENT_NAME.to_owned(),
            record,
            transport: Some(transport),
        });
        self
    }

    /// An offer. `transport` must carry ufrag and pwd.
    pub fn session_initiate(
        sid: &str,
        initiator: Option<Jid>,
        record: NodeRecord,
        transport: IceUdpTransport,
    ) -> Self {
        let mut j = Self::new(Action::SessionInitiate, sid).with_content(Some(record), transport);
        j.initiator = initiator;
        j
    }

    /// An answer. `transport` must carry ufrag and pwd.
    pub fn session_accept(
        sid: &str,
        responder: Option<Jid>,
        record: NodeRecord,
        transport: IceUdpTransport,
    ) -> Self {
        let mut j = Self::new(Action::SessionAccept, sid).with_content(Some(record), transport);
        j.responder = responder;
        j
    }

    /// Trickled candidates, from either party.
    pub fn transport_info(sid: &str, transport: IceUdpTransport) -> Self {
        Self::new(Action::TransportInfo, sid).with_content(None, transport)
    }

    /// The end of a session.
    pub fn session_terminate(sid: &str, reason: Reason, text: Option<String>) -> Self {
        let mut j = Self::new(Action::SessionTerminate, sid);
        j.reason = Some((reason, text));
        j
    }

    /// The `<jingle/>` element, to send in an IQ set.
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("jingle", JINGLE)
            .attr(xml::name("action"), self.action.as_str())
            .attr(xml::name("sid"), self.sid.as_str());
        if let Some(i) = &self.initiator {
            b = b.attr(xml::name("initiator"), i.to_string());
        }
        if let Some(r) = &self.responder {
            b = b.attr(xml::name("responder"), r.to_string());
        }
        if let Some(c) = &self.content {
            let creator = match c.creator {
                Creator::Initiator => "initiator",
                Creator::Responder => "responder",
            };
            let mut content = Element::builder("content", JINGLE)
                .attr(xml::name("creator"), creator)
                .attr(xml::name("name"), c.name.as_str());
            if let Some(r) = &c.record {
                content = content.append(
                    Element::builder("description", NS_CHAMBER_JINGLE)
                        .append(r.to_element())
                        .build(),
                );
            }
            if let Some(t) = &c.transport {
                content = content.append(t.to_element());
            }
            b = b.append(content.build());
        }
        if let Some((reason, text)) = &self.reason {
            let mut r =
                Element::builder("reason", JINGLE).append(Element::bare(reason.as_str(), JINGLE));
            if let Some(t) = text {
                r = r.append(Element::builder("text", JINGLE).append(t.as_str()).build());
            }
            b = b.append(r.build());
        }
        b.build()
    }

    /// The XML text, for carrying the offer or answer over the ring.
    pub fn to_xml(&self) -> Result<String, Error> {
        xml::to_string(&self.to_element())
    }

    /// Parses XML bytes within [`LIMITS`].
    pub fn from_xml(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_element(&xml::parse(bytes, LIMITS)?)
    }

    /// Parses an incoming `<jingle/>` and checks that the action has what it needs: a record and
    /// ICE credentials in offers and answers, a transport in `transport-info`.
    pub fn from_element(e: &Element) -> Result<Self, Error> {
        xml::expect(e, "jingle", JINGLE)?;
        xml::check_elements(e, LIMITS.max_elements)?;
        let action = match xml::required(e, "jingle", "action")? {
            "session-initiate" => Action::SessionInitiate,
            "session-accept" => Action::SessionAccept,
            "transport-info" => Action::TransportInfo,
            "session-terminate" => Action::SessionTerminate,
            _ => {
                return Err(Error::InvalidValue {
                    field: "action",
                    reason: "not supported by chamber",
                });
            }
        };
        let sid = xml::bounded("sid", xml::required(e, "jingle", "sid")?, MAX_SID)?;
        if sid.is_empty() {
            return Err(Error::InvalidValue {
                field: "sid",
                reason: "empty",
            });
        }
        let jid = |field: &'static str| -> Result<Option<Jid>, Error> {
            e.attr(field)
                .map(|s| {
                    s.parse::<Jid>().map_err(|_| Error::InvalidValue {
                        field,
                        reason: "not a JID",
                    })
                })
                .transpose()
        };
        let mut contents = e.children().filter(|c| c.is("content", JINGLE));
        let content = contents.next().map(parse_content).transpose()?;
        if contents.next().is_some() {
            return Err(Error::TooMany {
                what: "contents",
                limit: 1,
            });
        }
        let reason = xml::single_child(e, "jingle", "reason", JINGLE)?
            .map(parse_reason)
            .transpose()?;
        let j = Jingle {
            action,
            sid: sid.to_owned(),
            initiator: jid("initiator")?,
            responder: jid("responder")?,
            content,
            reason,
        };
        j.check_action()?;
        Ok(j)
    }

    fn check_action(&self) -> Result<(), Error> {
        let transport = self.content.as_ref().and_then(|c| c.transport.as_ref());
        let record = self.content.as_ref().and_then(|c| c.record.as_ref());
        match self.action {
            Action::SessionInitiate | Action::SessionAccept => {
                if record.is_none() {
                    return Err(Error::Inconsistent("offer or answer without node record"));
                }
                if !transport.is_some_and(IceUdpTransport::has_credentials) {
                    return Err(Error::Inconsistent(
                        "offer or answer without ICE credentials",
                    ));
                }
            }
            Action::TransportInfo if transport.is_none() => {
                return Err(Error::Inconsistent("transport-info without transport"));
            }
            Action::TransportInfo | Action::SessionTerminate => {}
        }
        Ok(())
    }
}

fn parse_content(c: &Element) -> Result<Content, Error> {
    let creator = match xml::required(c, "content", "creator")? {
        "initiator" => Creator::Initiator,
        "responder" => Creator::Responder,
        _ => {
            return Err(Error::InvalidValue {
                field: "creator",
                reason: "neither initiator nor responder",
            });
        }
    };
    let name = xml::bounded("content name", xml::required(c, "content", "name")?, 64)?;
    let mut record = None;
    let mut transport = None;
    for child in c.children() {
        match child.name() {
            "description" => {
                if record.is_some() {
                    return Err(Error::DuplicateChild {
                        element: "content",
                        child: "description",
                    });
                }
                // A foreign description (RTP, file transfer…) means unsupported-applications.
                xml::expect(child, "description", NS_CHAMBER_JINGLE)?;
                let r = xml::single_child(child, "description", "record", NS_CHAMBER)?.ok_or(
                    Error::MissingChild {
                        element: "description",
                        child: "record",
                    },
                )?;
                record = Some(NodeRecord::from_element(r)?);
            }
            "transport" => {
                if transport.is_some() {
                    return Err(Error::DuplicateChild {
                        element: "content",
                        child: "transport",
                    });
                }
                // A foreign transport means unsupported-transports.
                transport = Some(IceUdpTransport::from_element(child)?);
            }
            _ => {}
        }
    }
    Ok(Content {
        creator,
        name: name.to_owned(),
        record,
        transport,
    })
}

#[cfg(test)]
mod tests;
