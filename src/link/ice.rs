//! The path: a webrtc-ice agent set up the way a lab and a real network both need (STACK.md
//! trap 9); its servers are in [`servers`](super::servers), its candidates and paths in
//! [`candidates`](super::candidates).
//!
//! - Candidates: host (UDP4 only, on the interfaces allowed), server-reflexive from every STUN
//!   service known, relay from every TURN service with credentials (XEP-0215).
//! - mDNS is off: candidates carry IP addresses, which XEP-0176 requires anyway.
//! - Link-local, CGNAT-range and loopback addresses are never offered: they cannot reach a
//!   friend, and `100.64.0.0/10` is where chamber's own VPN lives (a path must never run
//!   through the overlay it carries).
//! - A relay pair is accepted after [`IceConfig::relay_wait`] (2 s, the library default): a
//!   guess that a direct pair might still win; when we know none can (UDP blocked here, a
//!   symmetric NAT here, see [`PathHint`]), the wait is zero.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use webrtc_ice::agent::Agent;
use webrtc_ice::agent::agent_config::AgentConfig;
use webrtc_ice::candidate::{Candidate, CandidateType};
use webrtc_ice::mdns::MulticastDnsMode;
use webrtc_ice::network_type::NetworkType;

pub use super::candidates::{PathInfo, PathKind, from_jingle, path_of, to_jingle};
pub use super::servers::{IceServer, Servers, tcp_relay_priority};

/// What a node knows about its own network before a link starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PathHint {
    /// Nothing known: direct pairs get [`IceConfig::relay_wait`] to win.
    #[default]
    Unknown,
    /// Reflection saw a symmetric NAT or no UDP at all: a relay pair is taken at once.
    NoDirect,
}

/// How the agent gathers and checks.
#[derive(Debug, Clone)]
pub struct IceConfig {
    /// Interfaces to gather host candidates on; `None`: all but loopback.
    pub interfaces: Option<Vec<String>>,
    /// Offer loopback addresses too: only for two nodes on one machine (tests, benchmarks);
    /// a friend elsewhere could never reach them.
    pub loopback: bool,
    /// How long a relay pair waits for a direct pair to win.
    pub relay_wait: Duration,
    /// How long the controlled side holds its credentials for its candidates to be gathered
    /// (see the driver): a site whose STUN or UDP TURN never answers waits this long.
    pub gather_wait: Duration,
    /// ICE's consent checks on the selected pair (RFC 7675), sent by both ends whatever the
    /// traffic: they are most of what an idle link costs (measured: 2 s made 348 B/s per
    /// idle link, the Noise keepalives 13 B/s), and the tunnel already notices a dead path
    /// that carries data within [`TunnelConfig::stale_after`](super::TunnelConfig).
    pub keepalive: Duration,
    /// ICE reports the pair disconnected (and the driver restarts ICE) after this silence:
    /// how soon a path that dies while idle is replaced. Longer than two consent checks.
    pub disconnected: Duration,
    /// And failed after this much more; checks that find no pair fail after both.
    pub failed: Duration,
}

impl Default for IceConfig {
    fn default() -> Self {
        IceConfig {
            interfaces: None,
            loopback: false,
            // webrtc-ice's own default: punching through two NATs takes a few rounds of
            // checks, more on a slow or busy path; a relay pair nominated first stays.
            relay_wait: Duration::from_millis(2000),
            gather_wait: Duration::from_millis(1000),
            keepalive: Duration::from_secs(5),
            disconnected: Duration::from_secs(12),
            failed: Duration::from_secs(8),
        }
    }
}

fn offerable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || (o[0] == 100 && (o[1] & 0xC0) == 64))
        }
        IpAddr::V6(_) => false,
    }
}

/// A new agent. The controlling one (the Jingle initiator) nominates the pair.
pub async fn agent(
    cfg: &IceConfig,
    servers: &Servers,
    controlling: bool,
    hint: PathHint,
) -> Result<Agent, webrtc_ice::Error> {
    let allowed = cfg.interfaces.clone();
    let interface_filter: webrtc_ice::agent::agent_config::InterfaceFilterFn =
        Box::new(move |name: &str| match &allowed {
            Some(list) => list.iter().any(|n| n == name),
            None => name != "lo",
        });
    let relay_wait = match hint {
        PathHint::NoDirect => Duration::ZERO,
        PathHint::Unknown => cfg.relay_wait,
    };
    let config = AgentConfig {
        urls: servers.for_agent().iter().map(IceServer::url).collect(),
        network_types: vec![NetworkType::Udp4],
        candidate_types: vec![
            CandidateType::Host,
            CandidateType::ServerReflexive,
            CandidateType::Relay,
        ],
        multicast_dns_mode: MulticastDnsMode::Disabled,
        interface_filter: Arc::new(Some(interface_filter)),
        ip_filter: Arc::new(Some(if cfg.loopback {
            Box::new(|ip: IpAddr| ip.is_loopback() || offerable(ip))
        } else {
            Box::new(offerable)
        })),
        include_loopback: cfg.loopback,
        is_controlling: controlling,
        host_acceptance_min_wait: Some(Duration::ZERO),
        srflx_acceptance_min_wait: Some(Duration::from_millis(100)),
        prflx_acceptance_min_wait: Some(Duration::from_millis(200)),
        relay_acceptance_min_wait: Some(relay_wait),
        keepalive_interval: Some(cfg.keepalive),
        disconnected_timeout: Some(cfg.disconnected),
        failed_timeout: Some(cfg.failed),
        ..AgentConfig::default()
    };
    Agent::new(config).await
}

/// Frees the local candidates a connected generation does not use: webrtc-ice checks only
/// the selected pair from then on, yet each candidate keeps a socket, a reader task with an
/// 8 KiB buffer, and a relay also its TURN client (a 64 KiB buffer), an allocation and its
/// refreshes on the friend's server. A path that dies later restarts ICE, which gathers
/// afresh.
pub fn release_unused(agent: Arc<Agent>, keep: Arc<dyn Candidate + Send + Sync>) {
    tokio::spawn(async move {
        let Ok(local) = agent.get_local_candidates().await else {
            return;
        };
        for c in local.into_iter().filter(|c| !c.equal(keep.as_ref())) {
            release(c);
        }
    });
}

/// Closes a local candidate the link will not use (a relay deallocates on its TURN server).
pub fn release(c: Arc<dyn Candidate + Send + Sync>) {
    tokio::spawn(async move {
        tracing::debug!(candidate = %c, "path chosen: releasing an unused candidate");
        let _ = c.close().await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reachable_v4_addresses_are_offered() {
        for (ip, ok) in [
            ("198.18.1.2", true),
            ("10.77.0.2", true),
            ("127.0.0.1", false),
            ("169.254.1.1", false),
            ("100.64.3.4", false),
            ("100.128.0.1", true),
            ("::1", false),
        ] {
            assert_eq!(offerable(ip.parse().unwrap()), ok, "{ip}");
        }
    }
}
