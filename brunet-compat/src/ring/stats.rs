//! Counters: what a node dropped and why, and how much it sent.

/// Per-node counters. Malformed or unroutable input is counted here, never an error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Link messages sent.
    pub msgs_out: u64,
    /// Link messages received from table peers.
    pub msgs_in: u64,
    /// Bytes that did not decode.
    pub malformed: u64,
    /// Messages on a link the table does not know.
    pub unknown_link: u64,
    /// Routed messages dropped at their TTL.
    pub ttl_drops: u64,
    /// Routed messages with nowhere to go (exact miss, no neighbour).
    pub no_route: u64,
    /// Routed messages delivered here.
    pub delivered: u64,
    /// Routed messages forwarded.
    pub forwarded: u64,
    /// Links refused by the admission policy.
    pub refused: u64,
    /// Links asked of the runtime.
    pub links_wanted: u64,
    /// Links the runtime could not make.
    pub link_failures: u64,
    /// Links that went down.
    pub links_lost: u64,
    /// Relay messages passed on as a forwarder.
    pub relayed: u64,
    /// Relay messages refused (quota, not direct, relay over relay).
    pub relay_refused: u64,
    /// Relay attempts started.
    pub relay_attempts: u64,
    /// Relay attempts that found no working forwarder (retried after a backoff).
    pub relay_failures: u64,
    /// Relay edges built (confirmed by the far end).
    pub relays_built: u64,
    /// DHT values refused (signature, size, TTL).
    pub dht_rejected: u64,
    /// DHT values refused because their key or the whole store was full.
    pub dht_full: u64,
    /// DHT puts and removes refused because their writer was over its rate.
    pub dht_writes_limited: u64,
    /// Connect-to-me requests sent.
    pub ctm_sent: u64,
}
