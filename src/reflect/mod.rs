//! Reflection: learning our public address and NAT behaviour from STUN servers, the first step
//! of a node's path (DESIGN.md §1).
//!
//! - [`stun`]: a Binding client over a socket the caller keeps (for ICE afterwards).
//! - [`nat`]: RFC 5780 mapping and filtering tests and the classic [`NatClass`].
//! - [`report`]: which servers to ask (XEP-0215 offers, else configured ones), asking them
//!   concurrently under one deadline, and the [`NetReport`] behind `chamber netcheck`.
//! - [`turn_cache`]: TURN credentials from XEP-0215 until they expire.
//!
//! Nothing here holds global state; every call gets its sockets, timing and clock from the
//! caller.
#![warn(missing_docs)]

mod codec;
mod error;
pub mod nat;
pub mod report;
pub mod stun;
pub mod turn_cache;

#[cfg(test)]
mod tests;

pub use error::ReflectError;
pub use nat::{Behaviour, Filtering, Mapping, NatClass, discover};
pub use report::{NetReport, ProbeConfig, ServerReport, Source, StunServer, probe, stun_servers};
pub use stun::{BindingResponse, Change, StunClient, StunConfig};
pub use turn_cache::{TurnCache, TurnCredentials, TurnKey};
