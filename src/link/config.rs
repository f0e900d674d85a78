//! Timing and limits of a link and of a linker, with the reasons for the defaults.

use std::time::Duration;

use super::ice::{IceConfig, IceServer, PathHint};
use crate::signal::SignalConfig;

/// How a link's Noise session keeps time. Defaults follow DESIGN.md §4.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TunnelConfig {
    /// Send a keepalive after this long without sending anything: Linux conntrack forgets an
    /// unanswered UDP flow after 30 s, so 15 s keeps every NAT on the path open.
    #[serde(with = "millis")]
    pub keepalive: Duration,
    /// Declare the link dead after this long without hearing anything (three keepalives).
    #[serde(with = "millis")]
    pub dead_after: Duration,
    /// When we have been sending but heard nothing for this long, probe with a ping.
    #[serde(with = "millis")]
    pub probe_after: Duration,
    /// When we have been sending but heard nothing for this long, report the path stale, so
    /// the driver restarts ICE (a NAT mapping changed or a network went away) long before
    /// `dead_after`.
    #[serde(with = "millis")]
    pub stale_after: Duration,
    /// Move to the next key epoch after this long (Noise REKEY).
    #[serde(with = "millis")]
    pub rekey_after_time: Duration,
    /// Move to the next key epoch after this many packets sent.
    pub rekey_after_packets: u64,
    /// Resend the handshake initiation this often until answered.
    #[serde(with = "millis")]
    pub handshake_retry: Duration,
    /// Give up a handshake after this long.
    #[serde(with = "millis")]
    pub handshake_timeout: Duration,
}

impl Default for TunnelConfig {
    fn default() -> Self {
        TunnelConfig {
            keepalive: Duration::from_secs(15),
            dead_after: Duration::from_secs(45),
            probe_after: Duration::from_millis(1500),
            stale_after: Duration::from_secs(4),
            rekey_after_time: Duration::from_secs(120),
            rekey_after_packets: 1 << 24,
            handshake_retry: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(15),
        }
    }
}

/// Everything a linker needs besides identity and transport.
#[derive(Clone)]
pub struct LinkerConfig {
    /// Tunnel timing.
    pub tunnel: TunnelConfig,
    /// ICE settings.
    pub ice: IceConfig,
    /// Signalling timing.
    pub signal: SignalConfig,
    /// STUN and TURN servers.
    pub servers: Vec<IceServer>,
    /// What reflection told us about our network.
    pub hint: PathHint,
    /// A link not up after this long has failed.
    pub setup_timeout: Duration,
    /// How often a link on a TURN relay looks for a direct path again (DESIGN.md §4: about
    /// once a minute), jittered by ±15 % so links made together do not probe together: a
    /// relay costs the server bandwidth and every packet a detour, and the network that
    /// forced it (a UDP-blocking café, a symmetric NAT) may be gone. Zero never re-probes.
    pub reprobe_relayed: Duration,
}

impl Default for LinkerConfig {
    fn default() -> Self {
        LinkerConfig {
            tunnel: TunnelConfig::default(),
            ice: IceConfig::default(),
            signal: SignalConfig::default(),
            servers: Vec::new(),
            hint: PathHint::Unknown,
            setup_timeout: Duration::from_secs(30),
            reprobe_relayed: Duration::from_secs(60),
        }
    }
}

mod millis {
    use std::time::Duration;
    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Duration, D::Error> {
        <u64 as serde::Deserialize>::deserialize(d).map(Duration::from_millis)
    }
}
