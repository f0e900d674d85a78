//! Typed XMPP payloads for chamber, with no I/O.
//!
//! Everything a chamber node puts into or reads out of an XMPP stanza lives here, as a type with
//! a parser from [`minidom::Element`] (or bytes) and a serialiser back. The client crate does the
//! networking; this crate only decides what is well-formed, authentic and within size limits.
//!
//! | module | holds |
//! |---|---|
//! | [`keys`] | a node's public keys, fingerprint, overlay address, secret keys, domain-separated signatures |
//! | [`ring_id`] | ring secrets and the ring id derived from them |
//! | [`announce`] | the signed ring announce carried in presence |
//! | [`record`] | the signed node record, as XML and as a compact binary form |
//! | [`caps`] | XEP-0115 entity capabilities and the XEP-0030 disco#info answer |
//! | [`extdisco`] | XEP-0215 external service discovery (STUN/TURN) |
//! | [`jingle`] | XEP-0166 sessions with an XEP-0176 ICE-UDP transport and the chamber description |
//! | [`invite`] | a ring invite encrypted to a friend's node key |
//! | [`node_keys`] | a node's keys, asked for by a friend who wants to invite it |
//!
//! Parsers never panic on untrusted input: every failure is an [`Error`] variant, and every parser
//! bounds the size of what it accepts before doing real work (see [`xml::Limits`]).
//!
//! A received payload is *parsed* first and *verified* second, against what the stanza itself
//! says (its `from`):
//!
//! ```
//! use rand::rngs::OsRng;
//! use xmpp_ext::announce::Announce;
//! use xmpp_ext::{NodeSecret, RingSecret};
//!
//! let node = NodeSecret::generate(&mut OsRng);
//! let ring = RingSecret::generate(&mut OsRng);
//! let me: jid::BareJid = "alice@example.org".parse()?;
//! let presence_payload = Announce::new(&node, ring.ring_id(), &me).to_element();
//!
//! // On the friend's side, with the sender's bare JID taken from the presence stanza:
//! let announce = Announce::from_element(&presence_payload)?;
//! announce.verify(&me)?;
//! assert_eq!(announce.ring(), ring.ring_id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod announce;
pub mod caps;
pub mod cert;
mod error;
pub mod extdisco;
pub mod invite;
pub mod jingle;
pub mod keys;
pub mod node_keys;
pub mod record;
pub mod ring_id;
pub mod xml;

pub use error::Error;
pub use keys::{Fingerprint, NodeSecret, OverlayAddress, PublicKeys, SigContext};
pub use ring_id::{RingId, RingSecret};

/// The chamber namespace for presence, message and record payloads.
///
/// The trailing `0` names the namespace generation; the payload format inside it is versioned by
/// each element's `v` attribute (see [`PROTOCOL_VERSION`]).
pub const NS_CHAMBER: &str = "urn:x-chamber:0";

/// The namespace of the chamber Jingle application description.
pub const NS_CHAMBER_JINGLE: &str = "urn:x-chamber:jingle:0";

/// The protocol version written in every `v` attribute; parsers reject any other value, so a
/// future incompatible format fails loudly instead of being half-understood.
pub const PROTOCOL_VERSION: u8 = 1;
