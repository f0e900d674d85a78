//! Links: one encrypted, authenticated datagram path to a friend (DESIGN.md §4).
//!
//! Read first: the Noise Protocol Framework (rev. 34) §5 and §7.5, WireGuard's paper §5 (the
//! packet layout and timers this follows), RFC 8445 (ICE) and RFC 6479 (the replay window).
//!
//! Two layers, the lower one sans-IO:
//!
//! - [`Tunnel`] ([`tunnel`], [`wire`], [`handshake`], [`cipher`], [`replay`], [`timers`]): the
//!   Noise IK session over any datagram path. It never reads a clock or a socket:
//!
//! ```no_run
//! # use std::time::Instant;
//! # use chamber::link::{Tunnel, Output};
//! # fn recv() -> Vec<u8> { vec![] } fn send(_: &[u8]) {} fn deliver(_: &[u8]) {}
//! # fn run(mut tunnel: Tunnel) {
//! let mut buf = vec![0u8; 65536];
//! loop {
//!     let packet = recv(); // until tunnel.poll_timeout()
//!     let now = Instant::now();
//!     match tunnel.decapsulate(now, &packet, &mut buf) {
//!         Output::Datagram(d) => deliver(d),
//!         Output::Transmit(p) => send(p),
//!         Output::Done => {}
//!     }
//!     while let Some(n) = tunnel.update_timers(now, &mut buf) {
//!         send(&buf[..n]);
//!     }
//!     while let Some(event) = tunnel.poll_event() { /* up, down, rtt, … */ }
//! }
//! # }
//! ```
//!
//!   `events` holds what it reports, `receive` its receive side.
//!
//! - the path ([`ice`], [`servers`], [`candidates`], [`turn_tcp`], [`turn_frame`]): webrtc-ice
//!   picks the UDP path from host, server-reflexive and relay candidates, TURN reached over UDP
//!   or, from a site that blocks UDP, over TCP.
//! - the driver (`driver`, `generation`, `path_choice`, `shared`, `manager`): a tokio task per
//!   link runs the tunnel over the path, restarts ICE when the path goes stale and re-probes
//!   relayed links for a direct path; [`Linker`] makes and
//!   accepts links over any signalling transport; [`Link`] is what the runtime holds.
#![warn(missing_docs)]

pub mod candidates;
pub mod cipher;
pub mod config;
mod driver;
mod error;
mod events;
mod generation;
pub mod handshake;
pub mod ice;
mod identity;
#[allow(clippy::module_inception)]
mod link;
mod manager;
mod path_choice;
mod receive;
pub mod replay;
mod sender;
pub mod servers;
mod session;
mod shared;
pub mod timers;
pub mod tunnel;
pub mod turn_frame;
pub mod turn_tcp;
pub mod wire;

#[cfg(test)]
mod tests;

pub use config::{LinkerConfig, TunnelConfig};
pub use error::LinkError;
pub use handshake::HandshakeError;
pub use ice::{IceConfig, IceServer, PathHint, PathInfo, PathKind, Servers};
pub use identity::{Identity, Policy};
pub use link::{Link, LinkEvent, LinkState, LinkStatus, MAX_DATAGRAM};
pub use manager::{Incoming, Linker};
pub use sender::LinkSender;
pub use timers::Timer;
pub use tunnel::{
    DownReason, Output, Role, SendError, Tunnel, TunnelEvent, TunnelStats, buffer_for,
};
