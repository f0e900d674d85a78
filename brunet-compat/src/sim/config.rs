//! What a simulation run models: size, timing, network, churn and workload.

use crate::ring::{RelaySelect, ShortcutCount};

use super::net::Latency;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Nodes in the ring.
    pub nodes: usize,
    /// Seed of everything.
    pub seed: u64,
    /// Joins per simulated second while the ring is built.
    pub join_rate: f64,
    /// Settling time after the last join before measuring, seconds.
    pub settle_s: f64,
    /// Length of the measured steady phase, seconds.
    pub steady_s: f64,
    /// Latency source.
    pub latency: Latency,
    /// Share of node pairs that cannot link directly.
    pub blocked: f64,
    /// Message loss probability.
    pub loss: f64,
    /// Share of the nodes replaced every `churn_period_s` during the steady phase.
    pub churn_frac: f64,
    /// See `churn_frac`.
    pub churn_period_s: f64,
    /// Share of departures that are graceful (the rest crash).
    pub graceful_share: f64,
    /// Crash this share of nodes at once, this many seconds into the steady phase.
    pub mass_leave: Option<(f64, f64)>,
    /// Lookups per simulated second (steady phase).
    pub lookups_per_s: f64,
    /// DHT puts per simulated second (steady phase).
    pub dht_puts_per_s: f64,
    /// DHT gets per simulated second (steady phase).
    pub dht_gets_per_s: f64,
    /// A crashed peer's links are reported down after a uniform delay in this range,
    /// seconds (keepalives every 15 s, dead after 45 s of silence).
    pub detect_s: (f64, f64),
    /// A link attempt to a blocked or dead peer fails after this long, seconds.
    pub link_fail_s: f64,
    /// Metric sampling period, seconds.
    pub sample_s: f64,
    /// Shortcut rule of the nodes.
    pub shortcuts: ShortcutCount,
    /// Relay forwarder choice of the nodes.
    pub relay_select: RelaySelect,
    /// Pass every message through [`crate::ring::codec`] as bytes, so the byte counts in
    /// the report are real (slower).
    pub wire: bool,
    /// Print every input and output of these nodes to stderr (debugging aid).
    pub trace: Vec<u32>,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            nodes: 1000,
            seed: 1,
            join_rate: 100.0,
            settle_s: 60.0,
            steady_s: 600.0,
            latency: Latency::HeavyTailed,
            blocked: 0.0,
            loss: 0.0,
            churn_frac: 0.0,
            churn_period_s: 600.0,
            graceful_share: 0.0,
            mass_leave: None,
            lookups_per_s: 50.0,
            dht_puts_per_s: 5.0,
            dht_gets_per_s: 20.0,
            detect_s: (30.0, 45.0),
            link_fail_s: 5.0,
            sample_s: 10.0,
            shortcuts: ShortcutCount::Log2 { factor: 1.0 },
            relay_select: RelaySelect::Latency,
            wire: false,
            trace: Vec::new(),
        }
    }
}
