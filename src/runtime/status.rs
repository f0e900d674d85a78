//! What the runtime reports: each ring's neighbours, shortcuts and links (`chamber status`,
//! `chamber ring show`) and ping results. Plain serde types, so the CLI reads them back from
//! the control socket's JSON.

use std::net::SocketAddr;
use std::str::FromStr;

use brunet_compat::address::Address as RingAddress;
use brunet_compat::ring::Path;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Via;
use super::envelope::Envelope;
use super::task::{PendingPing, Task};
use crate::link::PathKind;

/// One ring as this node sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RingView {
    /// Local name.
    pub name: String,
    /// Our ring address (`brunet:node:…`).
    pub address: String,
    /// Both ring neighbours are linked and agree nobody sits between (Brunet's IsConnected).
    pub connected: bool,
    /// Estimated number of members.
    pub size_estimate: f64,
    /// Nearest peers clockwise-before us (left), nearest first.
    pub left: Vec<String>,
    /// Nearest peers after us (right), nearest first.
    pub right: Vec<String>,
    /// Every peer in the connection table.
    pub peers: Vec<PeerView>,
    /// Ring messages that failed to decode.
    pub malformed: u64,
    /// Routed messages dropped: no next hop, or out of hops.
    pub dropped_unroutable: u64,
    /// Links the core asked for that could not be made (then relayed).
    pub link_failures: u64,
    /// Signalling requests over the ring (connect-to-me) refused: their source was over its
    /// rate.
    #[serde(default)]
    pub signals_limited: u64,
    /// DHT puts and removes refused as a key's owner: their writer was over its rate.
    #[serde(default)]
    pub dht_writes_limited: u64,
    /// An owned ring: the owner, our role and certificate, revocations known, links refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned: Option<OwnedView>,
    /// A friends ring: whether friends of friends may link, vouchers held, links refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friends: Option<FriendsView>,
    /// Warm restarts: our knock socket and the peers cached for this ring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<WarmView>,
}

/// The warm-restart state of a ring.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WarmView {
    /// The knock socket's UDP port.
    pub knock_port: u16,
    /// Cached peers with an address to knock at.
    pub cached_peers: usize,
    /// Knocks taken, on the whole socket.
    pub knocks_received: u64,
    /// Datagrams to the knock socket that were not knocks of our rings.
    pub knocks_dropped: u64,
}

/// An owned ring, as this node stands in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OwnedView {
    /// The owner key's fingerprint (SHA-256 of its identity key, hex).
    pub owner: String,
    /// This node is the owner.
    pub we_own: bool,
    /// Our certificate's role: member or admin; `revoked` once the owner revoked it.
    pub role: String,
    /// When our certificate expires (Unix ms).
    pub cert_expires_ms: u64,
    /// Members revoked.
    pub revoked: Vec<String>,
    /// Links refused for want of a valid certificate, and links closed after a revocation.
    pub refused: u64,
}

/// A friends ring, as this node stands in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FriendsView {
    /// Friends of friends may link (with a friend's voucher).
    pub fof: bool,
    /// Vouchers our friends gave us (shown to friends of friends).
    pub vouchers: usize,
    /// Links admitted on a friend's voucher.
    pub vouched: u64,
    /// Links refused: not a friend, or a friend of a friend without a voucher or not allowed.
    pub refused: u64,
}

/// A peer in the table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    /// Its ring address.
    pub address: String,
    /// Why we keep it: leaf, near, shortcut, ondemand, overlap.
    pub roles: String,
    /// The link, when direct (or TURN); `None` for a relay edge.
    pub link: Option<LinkView>,
    /// The forwarder, for a two-hop relay edge.
    pub relay_via: Option<String>,
}

/// A link's path and counters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkView {
    /// direct-host, direct-srflx, peer-reflexive or turn.
    pub kind: String,
    /// Our end.
    pub local: Option<SocketAddr>,
    /// Their end.
    pub remote: Option<SocketAddr>,
    /// Last round trip, ms.
    pub rtt_ms: Option<f64>,
    /// Bytes sent and received on the wire.
    pub tx_bytes: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// How it was signalled: the friend's JID, or `ring`.
    pub signalled: String,
    /// Seconds up.
    pub age_s: u64,
}

/// A `chamber ping` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PingReport {
    /// The ring it went over.
    pub ring: String,
    /// The address that answered.
    pub target: String,
    /// Hops there.
    pub hops_out: u16,
    /// Hops back.
    pub hops_back: u16,
    /// Round trip, ms.
    pub rtt_ms: f64,
}

/// The name `chamber status` prints for a path kind.
pub fn kind_name(k: PathKind) -> &'static str {
    match k {
        PathKind::DirectHost => "direct-host",
        PathKind::DirectServerReflexive => "direct-srflx",
        PathKind::PeerReflexive => "peer-reflexive",
        PathKind::TurnRelay => "turn",
    }
}

impl Task {
    pub(super) fn views(&self) -> Vec<RingView> {
        (0..self.rings.len())
            .filter(|&r| !self.rings[r].left)
            .map(|r| self.view(r))
            .collect()
    }

    fn view(&self, r: usize) -> RingView {
        let ring = &self.rings[r];
        let me = ring.me();
        let t = ring.core.table();
        let peers = t
            .iter()
            .map(|p| {
                let (link, relay_via) = match p.path {
                    Path::Link(id, _) => (
                        self.links.get(&id.0).map(|l| {
                            let s = l.status();
                            LinkView {
                                kind: s
                                    .path
                                    .as_ref()
                                    .map_or("connecting", |p| kind_name(p.kind))
                                    .into(),
                                local: s.path.as_ref().map(|p| p.local),
                                remote: s.path.as_ref().map(|p| p.remote),
                                rtt_ms: s.rtt.map(|d| d.as_secs_f64() * 1e3),
                                tx_bytes: s.stats.tx_bytes,
                                rx_bytes: s.stats.rx_bytes,
                                signalled: match &l.via {
                                    Via::Xmpp(j) => j.to_string(),
                                    Via::Ring => "ring".into(),
                                    Via::Knock => "cache".into(),
                                },
                                age_s: l.since.elapsed().as_secs(),
                            }
                        }),
                        None,
                    ),
                    Path::Relay { via } => (None, Some(via.to_string())),
                };
                PeerView {
                    address: p.addr.to_string(),
                    roles: format!("{:?}", p.types),
                    link,
                    relay_via,
                }
            })
            .collect();
        RingView {
            name: ring.name.clone(),
            address: me.to_string(),
            connected: ring.core.is_connected(),
            size_estimate: ring.core.size_estimate(),
            left: t.left_of(&me).take(3).map(|p| p.addr.to_string()).collect(),
            right: t
                .right_of(&me)
                .take(3)
                .map(|p| p.addr.to_string())
                .collect(),
            peers,
            malformed: ring.core.stats().malformed + self.malformed,
            dropped_unroutable: ring.core.stats().no_route + ring.core.stats().ttl_drops,
            link_failures: ring.core.stats().link_failures,
            signals_limited: ring.signals_limited,
            dht_writes_limited: ring.core.stats().dht_writes_limited,
            warm: self.warm_view(r),
            friends: ring.friends_ring.as_ref().map(|f| FriendsView {
                fof: f.policy.fof,
                vouchers: f.vouchers.len(),
                vouched: f.vouched,
                refused: f.refused,
            }),
            owned: ring.owned.as_ref().map(|o| {
                use sha2::{Digest, Sha256};
                OwnedView {
                    owner: hex::encode(Sha256::digest(o.owner)),
                    we_own: o.owner == self.secret.public().identity_bytes(),
                    role: if self.self_revoked(r) {
                        "revoked".into()
                    } else {
                        format!("{:?}", o.cert.role).to_lowercase()
                    },
                    cert_expires_ms: o.cert.expires_ms,
                    revoked: ring
                        .admission
                        .revocations
                        .iter()
                        .map(|r| r.jid.clone())
                        .collect(),
                    refused: ring.admission.refused,
                }
            }),
        }
    }

    /// Sends a ping over the first ring that has `target` (an address, or a friend's JID).
    pub(super) fn ping(
        &mut self,
        target: &str,
        reply: oneshot::Sender<Result<PingReport, String>>,
    ) {
        let found = if let Ok(a) = RingAddress::from_str(target) {
            self.rings
                .iter()
                .position(|r| r.core.is_routable())
                .map(|r| (r, a))
        } else {
            self.rings
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.left)
                .find_map(|(r, ring)| {
                    ring.friends.iter().find_map(|(addr, routes)| {
                        routes
                            .iter()
                            .any(|f| f.jid.as_str() == target || f.jid.to_bare().as_str() == target)
                            .then_some((r, *addr))
                    })
                })
        };
        let Some((r, addr)) = found else {
            let _ = reply.send(Err(format!(
                "`{target}` is neither a brunet:node: address nor a friend seen in a ring"
            )));
            return;
        };
        let nonce = u64::from(self.fresh_id()) << 32 | u64::from(rand::random::<u32>());
        self.pings.insert(
            nonce,
            PendingPing {
                sent: Instant::now(),
                target: addr,
                reply,
            },
        );
        self.send_envelope(r, addr, &Envelope::Ping { nonce });
    }
}
