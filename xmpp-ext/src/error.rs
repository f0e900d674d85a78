//! The one error type every parser and verifier in this crate returns.

/// Why a payload was rejected.
///
/// Every variant is the result of untrusted input (or of a caller's invalid argument); none means
/// a bug in this crate. Callers drop the stanza and count it; they never tear down a session for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is longer than the limit for its payload kind, so it was not parsed at all.
    #[error("input of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of the input in bytes.
        size: usize,
        /// The limit for this payload kind.
        limit: usize,
    },
    /// The input holds more XML elements (or list items) than the payload can legitimately have.
    #[error("more than {limit} {what}")]
    TooMany {
        /// What was counted (elements, candidates, services, …).
        what: &'static str,
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The bytes are not well-formed, namespace-valid XML.
    #[error("malformed XML: {0}")]
    Xml(String),
    /// An element has another name or namespace than the one expected at this place.
    #[error("expected <{expected} xmlns='{ns}'/>, found <{found}/>")]
    UnexpectedElement {
        /// Local name expected.
        expected: &'static str,
        /// Namespace expected.
        ns: &'static str,
        /// Name (and namespace) found, as `{ns}name`.
        found: String,
    },
    /// A required attribute is absent.
    #[error("<{element}/> lacks the '{attribute}' attribute")]
    MissingAttribute {
        /// Element name.
        element: &'static str,
        /// Attribute name.
        attribute: &'static str,
    },
    /// A required child element is absent.
    #[error("<{element}/> lacks a <{child}/> child")]
    MissingChild {
        /// Parent element name.
        element: &'static str,
        /// Child element name.
        child: &'static str,
    },
    /// A child element that may appear once appears more than once.
    #[error("<{element}/> has more than one <{child}/> child")]
    DuplicateChild {
        /// Parent element name.
        element: &'static str,
        /// Child element name.
        child: &'static str,
    },
    /// A field is present but its value is malformed (bad hex or base64, out of range, too long…).
    #[error("invalid {field}: {reason}")]
    InvalidValue {
        /// The field (attribute, text or binary field) at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The payload carries a protocol version this build does not speak.
    #[error("unsupported protocol version {found:?}")]
    UnknownVersion {
        /// The version found, as written on the wire.
        found: String,
    },
    /// A signature does not verify under the key it claims.
    #[error("bad signature")]
    BadSignature,
    /// A field that must be derived from the signing key (overlay address, fingerprint) is not.
    #[error("{field} does not match the identity key")]
    KeyMismatch {
        /// `"overlay address"` or `"fingerprint"`.
        field: &'static str,
    },
    /// Binary input ended before the payload did.
    #[error("truncated: need {needed} bytes, have {got}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// Binary input continues after the payload ended.
    #[error("{extra} trailing bytes after the payload")]
    TrailingBytes {
        /// Number of bytes left over.
        extra: usize,
    },
    /// An encrypted payload is addressed to a key other than ours.
    #[error("payload is encrypted to another key")]
    NotForUs,
    /// Authenticated decryption failed: wrong key or tampered ciphertext.
    #[error("decryption failed")]
    Decryption,
    /// A payload violates a rule that ties its fields together (e.g. an action without the
    /// element it requires, or a ring id that does not match the enclosed ring secret).
    #[error("inconsistent payload: {0}")]
    Inconsistent(&'static str),
}
