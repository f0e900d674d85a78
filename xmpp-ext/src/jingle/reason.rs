//! XEP-0166 §7.4 `<reason/>`: why a session ends.

use minidom::Element;
use xmpp_parsers::ns::JINGLE;

use crate::Error;
use crate::xml;

/// Longest reason text accepted.
const MAX_TEXT: usize = 1024;

/// XEP-0166 §7.4 reason conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A session with this peer already exists; use that one.
    AlternativeSession,
    /// The party is busy and cannot take the session.
    Busy,
    /// The initiator withdraws the offer.
    Cancel,
    /// The transport could not connect.
    ConnectivityError,
    /// The party refuses the session (e.g. not in the same ring).
    Decline,
    /// The session has expired.
    Expired,
    /// The application (node record check) failed.
    FailedApplication,
    /// The transport (ICE) failed.
    FailedTransport,
    /// Something else went wrong.
    GeneralError,
    /// The party is going offline.
    Gone,
    /// The parties cannot agree on parameters.
    IncompatibleParameters,
    /// A media (data path) error occurred.
    MediaError,
    /// A security check failed (e.g. keys do not match the record).
    SecurityError,
    /// The session ended normally.
    Success,
    /// A timer expired.
    Timeout,
    /// The application description is not supported.
    UnsupportedApplications,
    /// The transport is not supported.
    UnsupportedTransports,
}

pub(super) const REASONS: [(Reason, &str); 17] = [
    (Reason::AlternativeSession, "alternative-session"),
    (Reason::Busy, "busy"),
    (Reason::Cancel, "cancel"),
    (Reason::ConnectivityError, "connectivity-error"),
    (Reason::Decline, "decline"),
    (Reason::Expired, "expired"),
    (Reason::FailedApplication, "failed-application"),
    (Reason::FailedTransport, "failed-transport"),
    (Reason::GeneralError, "general-error"),
    (Reason::Gone, "gone"),
    (Reason::IncompatibleParameters, "incompatible-parameters"),
    (Reason::MediaError, "media-error"),
    (Reason::SecurityError, "security-error"),
    (Reason::Success, "success"),
    (Reason::Timeout, "timeout"),
    (Reason::UnsupportedApplications, "unsupported-applications"),
    (Reason::UnsupportedTransports, "unsupported-transports"),
];

impl Reason {
    pub(super) fn as_str(self) -> &'static str {
        // Invariant: REASONS lists every variant.
        REASONS
            .iter()
            .find(|(r, _)| *r == self)
            .map(|(_, s)| *s)
            .expect("every reason is in REASONS")
    }

    /// The reason to terminate with when an incoming offer or answer was refused with `error`
    /// (by [`super::Jingle::from_element`] or by verifying its record): a foreign description
    /// or transport is unsupported, a bad signature or key is a security error, anything else a
    /// failed application.
    pub fn for_error(error: &Error) -> Reason {
        match error {
            Error::UnexpectedElement {
                expected: "description",
                ..
            } => Reason::UnsupportedApplications,
            Error::UnexpectedElement {
                expected: "transport",
                ..
            } => Reason::UnsupportedTransports,
            Error::BadSignature | Error::KeyMismatch { .. } => Reason::SecurityError,
            _ => Reason::FailedApplication,
        }
    }
}

/// Parses `<reason><condition/><text>…</text></reason>`.
pub(super) fn parse_reason(r: &Element) -> Result<(Reason, Option<String>), Error> {
    let mut condition = None;
    let mut text = None;
    for child in r.children().filter(|c| c.has_ns(JINGLE)) {
        if child.name() == "text" {
            if text.is_some() {
                return Err(Error::DuplicateChild {
                    element: "reason",
                    child: "text",
                });
            }
            text = Some(xml::bounded("reason text", &child.text(), MAX_TEXT)?.to_owned());
        } else if let Some((reason, _)) = REASONS.iter().find(|(_, s)| *s == child.name()) {
            if condition.replace(*reason).is_some() {
                return Err(Error::DuplicateChild {
                    element: "reason",
                    child: "condition",
                });
            }
        } else {
            return Err(Error::InvalidValue {
                field: "reason",
                reason: "unknown condition",
            });
        }
    }
    let condition = condition.ok_or(Error::MissingChild {
        element: "reason",
        child: "condition",
    })?;
    Ok((condition, text))
}
