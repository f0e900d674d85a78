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
//! - the path and the driver ([`ice`], [`driver`]): webrtc-ice picks the UDP path, a tokio task
//!   runs the tunnel over it and restarts ICE when the path goes stale; [`Link`] is what the
//!   runtime holds.
#![warn(missing_docs)]

pub mod cipher;
pub mod config;
mod driver;
mod error;
pub mod handshake;
pub mod ice;
#[allow(clippy::module_inception)]
mod link;
mod manager;
pub mod replay;
mod session;
pub mod timers;
pub mod tunnel;
pub mod turn_tcp;
pub mod wire;

#[cfg(test)]
mod tests;

pub use config::TunnelConfig;
pub use error::LinkError;
pub use handshake::HandshakeError;
pub use ice::{IceConfig, IceServer, PathHint, PathInfo, PathKind, Servers};
pub use link::{Link, LinkEvent, LinkState, LinkStatus, MAX_DATAGRAM};
pub use manager::{Identity, Incoming, Linker, LinkerConfig, Policy};
pub use timers::Timer;
pub use tunnel::{
    DownReason, Output, Role, SendError, Tunnel, TunnelEvent, TunnelStats, buffer_for,
};
