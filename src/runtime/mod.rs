//! The ring runtime (DESIGN.md §5–6): drives one sans-IO [`brunet_compat::ring::Node`] per ring
//! with real links and real time. XMPP friends become the first (leaf) links; the core then
//! asks for near, shortcut and on-demand links, signalled over XMPP to friends before the node
//! is in the ring and over the ring itself afterwards ([`overlay_signal`]); links that cannot
//! be direct become the core's two-hop relay edges.
//!
//! One task owns every core, link table and pending request; everything else talks to it
//! through [`RuntimeHandle`] commands, so no lock is shared with the daemon loop:
//!
//! - [`task`]: the loop (commands in, core deadlines);
//! - [`ring`]: one ring's core, its links and how its outputs are carried out;
//! - [`connect`]: which linker makes a link (XMPP to friends, the ring to other members);
//! - [`links`]: each link's reader and writer task;
//! - [`envelope`]: the runtime's own datagrams on the ring (signalling, ping);
//! - `reqrep`: signalling requests over the ring sent again until answered;
//! - `admission`: owned rings: member certificates on every link, revocations;
//! - `rejoin`: warm restarts: the knock socket, beacons and the peer cache (`crate::warm`);
//! - [`app`]: the services' packets, broadcasts and DHT requests (`crate::services`);
//! - [`status`]: what `chamber status` and `chamber ring show` print.
#![warn(missing_docs)]

mod admission;
pub mod app;
mod connect;
pub mod envelope;
pub mod friends;
mod links;
pub mod overlay_signal;
mod owned_relays;
mod rejoin;
mod reqrep;
mod revoked_file;
mod ring;
pub mod status;
mod task;
mod trim;

use std::time::Duration;

use brunet_compat::address::Address as RingAddress;
use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::jid::FullJid;
use xmpp_ext::jingle::Jingle;
use xmpp_ext::{NodeSecret, RingSecret};

use crate::account::AccountHandle;
pub use crate::config::FriendsPolicy;
use crate::link::{IceServer, Link, LinkError, LinkerConfig, PathHint};
use crate::signal::{IqFailure, Reply};
pub use admission::OwnedRing;
pub use status::{FriendsView, LinkView, OwnedView, PeerView, PingReport, RingView, WarmView};

/// A ring the runtime runs.
#[derive(Clone, Debug)]
pub struct RingSpec {
    /// Local name.
    pub name: String,
    /// The ring's secret (its id and link key derive from it).
    pub secret: RingSecret,
    /// For an owned ring: the owner's key and our certificate.
    pub owned: Option<OwnedRing>,
    /// For a friends ring: who besides roster friends may link.
    pub friends: Option<FriendsPolicy>,
}

/// How a link came to be (for status and for choosing the leaf flag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    /// Signalled over XMPP with this friend's full JID.
    Xmpp(FullJid),
    /// Signalled over the ring.
    Ring,
    /// Signalled through the knock socket, from the peer cache (a warm restart).
    Knock,
}

/// Commands to the runtime task.
pub(crate) enum Cmd {
    AccountOnline {
        account: usize,
        jid: FullJid,
    },
    AccountServices {
        account: usize,
        servers: Vec<IceServer>,
    },
    FriendUp {
        ring: String,
        account: usize,
        jid: FullJid,
        address: RingAddress,
    },
    FriendDown {
        ring: String,
        jid: FullJid,
    },
    FriendKeys(std::collections::BTreeSet<[u8; 32]>),
    Jingle {
        account: usize,
        from: FullJid,
        jingle: Box<Jingle>,
        reply: oneshot::Sender<Reply>,
    },
    Hint(PathHint),
    SignalOut {
        ring: usize,
        to: RingAddress,
        xml: Vec<u8>,
        reply: oneshot::Sender<Result<(), IqFailure>>,
    },
    SignalReply {
        ring: usize,
        to: RingAddress,
        id: u32,
        reply: Reply,
    },
    LinkMade {
        ring: usize,
        via: Via,
        wanted: bool,
        result: Result<Box<Link>, (RingAddress, LinkError)>,
    },
    LinkData {
        link: u64,
        bytes: Vec<u8>,
    },
    LinkGone {
        link: u64,
    },
    Knock(Box<crate::warm::KnockIn>),
    Status(oneshot::Sender<Vec<RingView>>),
    Ping {
        target: String,
        reply: oneshot::Sender<Result<PingReport, String>>,
    },
    AddRing(RingSpec),
    AttachServices(mpsc::Sender<app::Inbound>),
    Broadcast {
        ring: usize,
        end: Option<RingAddress>,
        data: Vec<u8>,
    },
    Dht {
        ring: usize,
        key: RingAddress,
        op: app::DhtOp,
    },
    Friends {
        ring: usize,
        reply: oneshot::Sender<Vec<(String, RingAddress)>>,
    },
    Revoke {
        ring: String,
        jid: String,
        reply: oneshot::Sender<Result<String, String>>,
    },
    Renew {
        ring: String,
        from: RingAddress,
        cert: Box<xmpp_ext::cert::MemberCert>,
        reply: oneshot::Sender<Result<xmpp_ext::cert::MemberCert, String>>,
    },
    SetCert {
        ring: String,
        cert: Box<xmpp_ext::cert::MemberCert>,
    },
    LeaveRing(String),
    Shutdown(oneshot::Sender<()>),
}

/// Settings of the runtime.
#[derive(Clone)]
pub struct RuntimeConfig {
    /// Link settings (STUN/TURN servers are filled in from each account's XEP-0215 answer).
    pub linker: LinkerConfig,
    /// How long a ring member has to acknowledge a signalling request.
    pub ring_signal_timeout: Duration,
    /// The peer cache of warm restarts; `None` runs without a knock socket.
    pub cache_file: Option<std::path::PathBuf>,
    /// Where owned rings' revocations are kept across restarts; `None` keeps them in memory.
    pub revoked_file: Option<std::path::PathBuf>,
    /// Fingerprints (SHA-256) of our friends' pinned identity keys, for friends rings; kept
    /// current with [`RuntimeHandle::set_friend_keys`].
    pub friend_keys: std::collections::BTreeSet<[u8; 32]>,
}

impl Default for RuntimeConfig {
    /// Ring links keep time tighter than a lone friend's link: a keepalive every second each
    /// way, so a peer that died is noticed after 6 s of silence and the ring repairs itself
    /// within seconds (about 37 bytes a second each way per idle link).
    fn default() -> Self {
        let mut linker = LinkerConfig::default();
        linker.tunnel.keepalive = Duration::from_secs(1);
        linker.tunnel.stale_after = Duration::from_secs(3);
        linker.tunnel.dead_after = Duration::from_secs(6);
        // A ring link left on TURN (a direct check that lost the race on a busy machine, a
        // network since changed) looks for a direct path sooner than a lone friend's link.
        linker.reprobe_relayed = Duration::from_secs(20);
        RuntimeConfig {
            linker,
            ring_signal_timeout: Duration::from_secs(8),
            cache_file: None,
            revoked_file: None,
            friend_keys: Default::default(),
        }
    }
}

/// The daemon's handle on the runtime task; cheap to clone.
#[derive(Clone)]
pub struct RuntimeHandle {
    cmds: mpsc::Sender<Cmd>,
    quic: mpsc::Sender<(usize, RingAddress, Vec<u8>)>,
}

impl RuntimeHandle {
    /// Starts the runtime for `rings`, speaking as `secret`, over `accounts`.
    pub fn spawn(
        secret: &NodeSecret,
        rings: Vec<RingSpec>,
        accounts: Vec<AccountHandle>,
        cfg: RuntimeConfig,
    ) -> RuntimeHandle {
        let (tx, rx) = mpsc::channel(1024);
        let (quic, quic_rx) = mpsc::channel(app::QUIC_QUEUE);
        let task = task::Task::new(secret, rings, accounts, cfg, tx.clone());
        tokio::spawn(task.run(rx, quic_rx));
        RuntimeHandle { cmds: tx, quic }
    }

    /// Where the services hear of rings, QUIC packets and broadcasts.
    pub async fn attach_services(&self, tx: mpsc::Sender<app::Inbound>) {
        self.send(Cmd::AttachServices(tx)).await;
    }

    /// Queues a QUIC packet to `to` on ring `ring`; false (dropped) when the queue is full.
    pub fn quic_out(&self, ring: usize, to: RingAddress, packet: Vec<u8>) -> bool {
        self.quic.try_send((ring, to, packet)).is_ok()
    }

    /// Broadcasts `data` to the ring, or to the clockwise range from us to `end`.
    pub async fn broadcast(&self, ring: usize, end: Option<RingAddress>, data: Vec<u8>) {
        self.send(Cmd::Broadcast { ring, end, data }).await;
    }

    /// Runs a DHT operation on `key` in ring `ring`; its answer comes on the op's channel.
    pub async fn dht(&self, ring: usize, key: RingAddress, op: app::DhtOp) {
        self.send(Cmd::Dht { ring, key, op }).await;
    }

    /// Our friends' pinned keys changed (a new friend, or `chamber trust`).
    pub async fn set_friend_keys(&self, keys: std::collections::BTreeSet<[u8; 32]>) {
        self.send(Cmd::FriendKeys(keys)).await;
    }

    /// Puts the member with bare JID `jid` out of the owned ring `ring` (owner or admin only).
    pub async fn revoke(&self, ring: String, jid: String) -> Result<String, String> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Revoke {
            ring,
            jid,
            reply: tx,
        })
        .await;
        rx.await
            .unwrap_or_else(|_| Err("the node is shutting down".into()))
    }

    /// Owner or admin: a fresh certificate for the member at `from` who shows `cert`.
    pub async fn renew(
        &self,
        ring: String,
        from: RingAddress,
        cert: xmpp_ext::cert::MemberCert,
    ) -> Result<xmpp_ext::cert::MemberCert, String> {
        let (tx, rx) = oneshot::channel();
        let cmd = Cmd::Renew {
            ring,
            from,
            cert: Box::new(cert),
            reply: tx,
        };
        self.send(cmd).await;
        rx.await
            .unwrap_or_else(|_| Err("the node is shutting down".into()))
    }

    /// Our renewed certificate for ring `ring` (shown on new links from now on).
    pub async fn set_cert(&self, ring: String, cert: xmpp_ext::cert::MemberCert) {
        self.send(Cmd::SetCert {
            ring,
            cert: Box::new(cert),
        })
        .await;
    }

    /// Friends' bare JIDs and their addresses in ring `ring`.
    pub async fn friends(&self, ring: usize) -> Vec<(String, RingAddress)> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Friends { ring, reply: tx }).await;
        rx.await.unwrap_or_default()
    }

    async fn send(&self, cmd: Cmd) {
        let _ = self.cmds.send(cmd).await;
    }

    /// An account is online as `jid`: its STUN/TURN offers are fetched for its links.
    pub async fn account_online(&self, account: usize, jid: FullJid) {
        self.send(Cmd::AccountOnline { account, jid }).await;
    }

    /// A friend's node announced itself in `ring` (rendezvous).
    pub async fn friend_up(
        &self,
        ring: String,
        account: usize,
        jid: FullJid,
        address: RingAddress,
    ) {
        self.send(Cmd::FriendUp {
            ring,
            account,
            jid,
            address,
        })
        .await;
    }

    /// The friend's node left `ring`.
    pub async fn friend_down(&self, ring: String, jid: FullJid) {
        self.send(Cmd::FriendDown { ring, jid }).await;
    }

    /// A Jingle request from a roster friend; returns how to answer it.
    pub async fn jingle(&self, account: usize, from: FullJid, jingle: Jingle) -> Reply {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Jingle {
            account,
            from,
            jingle: Box::new(jingle),
            reply: tx,
        })
        .await;
        rx.await
            .unwrap_or(Reply::Error(IqFailure::ServiceUnavailable))
    }

    /// What the network check learnt: whether a direct path can be expected at all.
    pub async fn hint(&self, hint: PathHint) {
        self.send(Cmd::Hint(hint)).await;
    }

    /// Every ring's state.
    pub async fn status(&self) -> Vec<RingView> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Status(tx)).await;
        rx.await.unwrap_or_default()
    }

    /// Echo over the ring to `target` (a `brunet:node:` address, or a friend's JID).
    pub async fn ping(&self, target: String) -> Result<PingReport, String> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Ping { target, reply: tx }).await;
        rx.await
            .unwrap_or_else(|_| Err("the node is shutting down".into()))
    }

    /// Joins one more ring (after `chamber ring join` or `create`).
    pub async fn add_ring(&self, spec: RingSpec) {
        self.send(Cmd::AddRing(spec)).await;
    }

    /// Leaves the ring named `name`: tells its peers and closes its links.
    pub async fn leave_ring(&self, name: String) {
        self.send(Cmd::LeaveRing(name)).await;
    }

    /// Leaves every ring and closes every link.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Shutdown(tx)).await;
        let _ = tokio::time::timeout(Duration::from_secs(3), rx).await;
    }
}
