//! Signalling: the Jingle offer/answer that sets up a link (DESIGN.md §3), independent of how the
//! messages travel.
//!
//! Read first: XEP-0166 §6 (session flow, resource handling), §7.2 (actions) and §8 (errors:
//! `<conflict/>` + `<tie-break/>`, `<item-not-found/>` + `<unknown-session/>`), XEP-0176 §5–6
//! (ICE-UDP, trickling with `transport-info`).
//!
//! [`Signaller`] is sans-IO and generic over the address type: a full JID when the offer rides
//! XMPP IQs ([`xmpp`]), an overlay address when it rides the ring. Every message is a request
//! that the far end acknowledges (an IQ `result` or `error`), which is how a gone resource is
//! noticed and the next one tried.
//!
//! ```text
//!  initiator                               responder
//!  session-initiate (record, ufrag, pwd) ─►         Offer event → app checks the record
//!  transport-info (candidates)* ─────────►          Transport events
//!                                    ◄──── session-accept (record, ufrag, pwd)   Answer event
//!                                    ◄──── transport-info*
//!  session-terminate (reason) ◄──────────► Ended event
//! ```
#![warn(missing_docs)]

mod incoming;
mod machine;
mod types;
pub mod xmpp;

#[cfg(test)]
mod tests;

pub use machine::Signaller;
pub use types::{Address, IqFailure, Reply, SignalConfig, SignalEvent, SignalOutput, Tag};
