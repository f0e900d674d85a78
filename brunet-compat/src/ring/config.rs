//! Node configuration: every knob of the ring core, with Brunet's defaults where they
//! made sense and the reason where we differ.

use std::fmt;
use std::time::Duration;

use crate::address::Address;

use super::table::{ConnType, LinkKind};

/// How many shortcuts a node keeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ShortcutCount {
    /// ⌈factor · log2 N⌉ with N the size estimate (none while N ≤ 10, as in Brunet).
    /// The default factor is 1.0; Brunet used 0.5.
    Log2 {
        /// Multiplier on log2 N.
        factor: f64,
    },
    /// A fixed count, whatever the size.
    Fixed(usize),
}

/// How a relay forwarder is picked among the common neighbours of two nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelaySelect {
    /// Smallest sum of round-trip times (Brunet's `NCRelayOverlap`).
    Latency,
    /// Oldest links on both sides, i.e. the most stable (Brunet's `SimpleRelayOverlap`,
    /// with its keep-the-newest bug fixed).
    Age,
}

/// Decides whether a new link may join the connection table: the membership hook.
/// The runtime plugs in ring credentials here; a refusal closes the link.
pub trait Admission: Send {
    /// True to admit `peer` over a link of `kind`, wanted for `reasons` (empty when the
    /// peer asked for it).
    fn admit(&mut self, peer: &Address, kind: LinkKind, reasons: ConnType) -> bool;
}

/// Admits every link.
#[derive(Clone, Copy, Debug, Default)]
pub struct AdmitAll;

impl Admission for AdmitAll {
    fn admit(&mut self, _: &Address, _: LinkKind, _: ConnType) -> bool {
        true
    }
}

/// Checks the signature a DHT value carries before it is stored (the signature hook).
pub trait DhtValidator: Send {
    /// True when `sig` vouches for `value` under `key`.
    fn verify(&self, key: &Address, value: &[u8], sig: &[u8]) -> bool;
}

/// Accepts every value (no signatures).
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptAll;

impl DhtValidator for AcceptAll {
    fn verify(&self, _: &Address, _: &[u8], _: &[u8]) -> bool {
        true
    }
}

/// Everything a [`crate::ring::Node`] needs besides its address and the time.
pub struct Config {
    /// Seed of the node's RNG; the same seed and inputs give the same outputs.
    pub seed: u64,
    /// Near neighbours wanted on each side (Brunet: 2).
    pub near_per_side: usize,
    /// A near link is trimmed only once it ranks beyond `near_per_side + near_trim_slack`
    /// on both sides, so a single join next door does not churn links.
    pub near_trim_slack: usize,
    /// Quiet time after the last near change before trimming (Brunet: 30 s).
    pub trim_quiet: Duration,
    /// Period of the near check while the ring looks consistent.
    pub near_interval: Duration,
    /// First retry period of near seeking while it does not (doubles up to `near_interval`).
    pub seek_interval: Duration,
    /// Debounce before a changed near set is announced.
    pub status_debounce: Duration,
    /// Period of the status refresh to near neighbours (repairs lost announcements).
    pub status_interval: Duration,
    /// Shortcut count rule.
    pub shortcuts: ShortcutCount,
    /// Period of the shortcut check.
    pub shortcut_interval: Duration,
    /// Mean life of a shortcut before it is re-drawn (uniform in 0.5–1.5×).
    pub shortcut_lifetime: Duration,
    /// Connect-to-me requests for shortcuts in flight at once.
    pub shortcut_parallel: usize,
    /// On-demand links kept at most.
    pub ondemand_max: usize,
    /// Exact-mode messages to one peer that make it worth a direct link.
    pub ondemand_threshold: u32,
    /// An on-demand link unused this long is released.
    pub ondemand_idle: Duration,
    /// Leaf links are released this long after the ring first holds us.
    pub leaf_hold: Duration,
    /// A wished-for link that has not come up by then is forgotten.
    pub link_timeout: Duration,
    /// A peer whose link went down is not re-linked from stale status lists for this long.
    pub lost_memory: Duration,
    /// After the runtime failed to link to a peer directly, relay to it at once,
    /// without asking the runtime again, for this long.
    pub direct_retry: Duration,
    /// Forwarder choice for relays.
    pub relay_select: RelaySelect,
    /// Messages a forwarder passes per source per second.
    pub relay_quota_msgs: u32,
    /// Bytes a forwarder passes per source per second (payload bytes of app messages).
    pub relay_quota_bytes: u64,
    /// Relay edges one node builds through a single forwarder.
    pub relay_max_per_forwarder: usize,
    /// Nodes holding each DHT value: the owner and the next nearest.
    pub dht_replicas: usize,
    /// Largest DHT value (Brunet: 1024 bytes).
    pub dht_max_value: usize,
    /// Longest DHT lifetime accepted.
    pub dht_max_ttl: Duration,
    /// Values held under one key at most (new ones beyond are refused; refreshes are not).
    pub dht_max_values_per_key: usize,
    /// Values held in all at most: the store's memory is bounded whatever members write.
    pub dht_max_values: usize,
    /// DHT puts and removes a key's owner serves per writer and second, sustained…
    pub dht_write_rate: f64,
    /// … and in a burst.
    pub dht_write_burst: u32,
    /// Retransmission timeout of lookups and DHT requests.
    pub request_timeout: Duration,
    /// Attempts of a request before giving up; later attempts start on a random
    /// first hop and use annealing delivery, to route around dead nodes.
    pub request_attempts: u32,
    /// Routed messages get TTL ⌈ttl_factor · log2 N⌉ + ttl_base hops (Brunet's (ln N)³ is
    /// loose; every mode enforces it).
    pub ttl_factor: f64,
    /// See `ttl_factor`.
    pub ttl_base: u16,
    /// Membership hook for every new link.
    pub admission: Box<dyn Admission>,
    /// Signature hook for DHT values.
    pub validator: Box<dyn DhtValidator>,
}

impl Config {
    /// Defaults, with the RNG seeded by `seed`.
    pub fn with_seed(seed: u64) -> Config {
        Config {
            seed,
            ..Config::default()
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            seed: 0,
            near_per_side: 2,
            near_trim_slack: 2,
            trim_quiet: Duration::from_secs(30),
            near_interval: Duration::from_secs(15),
            seek_interval: Duration::from_millis(1500),
            status_debounce: Duration::from_millis(500),
            status_interval: Duration::from_secs(60),
            shortcuts: ShortcutCount::Log2 { factor: 1.0 },
            shortcut_interval: Duration::from_secs(10),
            shortcut_lifetime: Duration::from_secs(1800),
            shortcut_parallel: 4,
            ondemand_max: 32,
            ondemand_threshold: 4,
            ondemand_idle: Duration::from_secs(600),
            leaf_hold: Duration::from_secs(300),
            link_timeout: Duration::from_secs(20),
            lost_memory: Duration::from_secs(120),
            direct_retry: Duration::from_secs(600),
            relay_select: RelaySelect::Latency,
            relay_quota_msgs: 200,
            relay_quota_bytes: 256 * 1024,
            relay_max_per_forwarder: 8,
            dht_replicas: 3,
            dht_max_value: 1024,
            dht_max_ttl: Duration::from_secs(24 * 3600),
            dht_max_values_per_key: 1024,
            dht_max_values: 65_536,
            dht_write_rate: 2.0,
            dht_write_burst: 60,
            request_timeout: Duration::from_millis(2000),
            request_attempts: 5,
            ttl_factor: 2.0,
            ttl_base: 4,
            admission: Box::new(AdmitAll),
            validator: Box::new(AcceptAll),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("seed", &self.seed)
            .field("near_per_side", &self.near_per_side)
            .field("shortcuts", &self.shortcuts)
            .field("relay_select", &self.relay_select)
            .field("dht_replicas", &self.dht_replicas)
            .finish_non_exhaustive()
    }
}
