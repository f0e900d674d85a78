//! The sans-IO Symphony ring core (Brunet's structured overlay, re-done).
//!
//! A [`Node`] is a state machine in the manner of quinn-proto and str0m: it performs no
//! I/O, reads no clock and draws randomness only from the seed in its [`Config`]. The
//! runtime (or the simulator in [`crate::sim`]) owns links, time and sockets:
//!
//! ```no_run
//! use brunet_compat::address::Address;
//! use brunet_compat::ring::{Config, Input, Node, Output, Time};
//!
//! let me = Address::ah([7; 20]);
//! let mut node = Node::new(Config::with_seed(1), me, Time::ZERO);
//! let mut now = Time::ZERO;
//! loop {
//!     // 1. Feed one input: a link event, a received message, or a timeout.
//!     node.handle_input(now, Input::Timeout);
//!     // 2. Drain outputs until the node names its next deadline.
//!     let deadline = loop {
//!         match node.poll_output() {
//!             Output::Transmit(t) => { /* send t.msg on link t.link */ }
//!             Output::Event(e) => { /* LinkWanted → start signalling, CloseLink, Deliver… */ }
//!             Output::Timeout(at) => break at,
//!         }
//!     };
//!     // 3. Wait for the deadline or the next input, whichever comes first.
//!     now = deadline;
//! }
//! ```
//!
//! After every mutation (`handle_input`, `send`, `lookup`, `dht_*`, `broadcast`,
//! `leave`), drain `poll_output` until it returns `Timeout`.
//!
//! Concepts, one module each: the connection [`table`], [`near`] neighbours and joining,
//! Symphony [`shortcut`]s, [`ondemand`] links, [`routing`], [`relay`] edges,
//! [`requests`] (lookups, DHT client), the [`dht`] store, [`broadcast`], and the
//! message types ([`msg`]) with their byte [`codec`].

pub mod broadcast;
pub mod codec;
pub mod config;
pub mod dht;
mod forwarder;
pub mod io;
mod join;
mod links;
pub mod msg;
pub mod near;
pub mod node;
pub mod ondemand;
pub mod relay;
pub mod requests;
pub mod routing;
pub mod shortcut;
pub mod stats;
mod status;
pub mod table;
pub mod time;
mod timer;
mod writers;

pub use config::{
    AcceptAll, Admission, AdmitAll, Config, DhtValidator, RelaySelect, ShortcutCount,
};
pub use io::{Event, Input, Output, RequestId, Transmit};
pub use msg::{DhtValue, Header, Mode, Msg, NeighbourInfo, Payload, Req, Routed, Rsp};
pub use node::Node;
pub use stats::Stats;
pub use table::{ConnType, LinkId, LinkKind, Path, Peer, Table};
pub use time::Time;
