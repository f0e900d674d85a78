//! A discrete-event simulator that drives the very same [`crate::ring::Node`] as the runtime.
//!
//! One event queue ordered by (time, sequence number), one seeded RNG, no threads and
//! no iteration over hash maps: the same seed gives the same run, byte for byte. The
//! simulator plays the runtime's part: it turns [`crate::ring::Event::LinkWanted`] into links (or
//! failures for blocked pairs), carries transmits with the network model's latency and
//! loss, and delivers timeouts. See `ringsim` for the command line.

pub mod config;
pub mod engine;
mod links;
pub mod metrics;
pub mod net;
pub mod ops;
mod queue;
pub mod svg;
mod workload;

pub use config::SimConfig;
pub use engine::Sim;
pub use metrics::Report;
pub use net::{Latency, Net};
