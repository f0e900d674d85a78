//! Why a link could not be made or used.

/// Why a link failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// ICE found no pair, and no TURN relay was available to fall back on. The ring's two-hop
    /// relays are the remedy (DESIGN.md §6).
    #[error("no direct path to {peer}, and no TURN relay to fall back on")]
    NoDirectPath {
        /// The peer.
        peer: String,
    },
    /// ICE found no pair even with TURN relays.
    #[error("no path to {peer}: ICE failed (relays were tried)")]
    IceFailed {
        /// The peer.
        peer: String,
    },
    /// The peer did not authenticate with the key of its signed record.
    #[error("link to {peer} refused: {reason}")]
    Refused {
        /// The peer.
        peer: String,
        /// What failed.
        reason: String,
    },
    /// Signalling failed: the offer was declined, nobody answered, or the session ended.
    #[error("signalling with {peer} failed: {reason}")]
    Signalling {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The link did not come up in time.
    #[error("no link to {peer} within {secs} s")]
    Timeout {
        /// The peer.
        peer: String,
        /// The deadline.
        secs: u64,
    },
    /// The ICE agent could not be created or used.
    #[error("ICE: {0}")]
    Ice(String),
    /// The link is closed or down.
    #[error("the link is closed")]
    Closed,
    /// The link is not up yet or lost its path.
    #[error("the link has no path right now")]
    NoPath,
    /// The datagram is larger than a link carries.
    #[error("datagram of {0} bytes is too large")]
    TooLarge(usize),
}
