//! The runtime's side of warm restarts ([`crate::warm`]): the knock socket and its linker per
//! ring, telling new links' peers our knock port, beacons to linked peers, and the peer cache
//! kept on disk and read again at start, when the cached peers are knocked at at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brunet_compat::address::Address as RingAddress;
use tokio::sync::mpsc;
use xmpp_ext::jingle::Jingle;
use xmpp_ext::record::NodeRecord;

use super::envelope::Envelope;
use super::task::Task;
use super::{Cmd, Via};
use crate::link::{IceServer, Linker, Policy};
use crate::signal::{IqFailure, Reply};
use crate::warm::socket::unix_ms;
use crate::warm::{KnockIn, KnockPeer, KnockSocket, KnockTransport, PeerCache};

/// Cached peers heard from longer ago than this are not knocked at.
const KNOCK_SINCE: Duration = Duration::from_secs(24 * 3600);
/// Cached peers knocked at, per ring, at start.
const KNOCK_AT_START: usize = 8;
/// How often linked peers get a beacon (NAT mappings of UDP last 30 s or more).
pub(super) const BEACON_EVERY: Duration = Duration::from_secs(15);
/// The cache is written at most this often while it changes (and at shutdown).
const SAVE_EVERY: Duration = Duration::from_secs(5);

/// The knock socket and the cache.
pub(super) struct Warm {
    pub socket: Arc<KnockSocket>,
    pub cache: PeerCache,
    path: PathBuf,
    dirty: bool,
    saved: Instant,
    servers: Vec<IceServer>,
}

/// The knock policy: the record is for this ring and for the member the knock named.
fn knock_policy(id: xmpp_ext::RingId) -> Policy<KnockPeer> {
    Arc::new(move |from: &KnockPeer, r: &NodeRecord| {
        if r.ring() != id {
            Err("its record is for another ring".into())
        } else if from.addr.as_bytes() != &r.address().to_bytes() {
            Err(format!(
                "its record is for another address than {}",
                from.addr
            ))
        } else {
            Ok(())
        }
    })
}

impl Task {
    /// Reads the cache, binds the knock socket on the cached port, and knocks at the cached
    /// peers of every ring with the cached servers.
    pub(super) async fn warm_start(&mut self, path: PathBuf) {
        let mut cache = match PeerCache::load(&path) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("{e}");
                PeerCache::default()
            }
        };
        let me = self.rings.first().map(|r| r.me()).unwrap_or_else(|| {
            let record = NodeRecord::new(
                &self.secret,
                xmpp_ext::RingId([0; 32]),
                xmpp_ext::record::Capabilities::empty(),
                0,
            );
            RingAddress::from_bytes(record.address().to_bytes())
        });
        if !cache.node.is_empty() && cache.node != me.to_string() {
            tracing::warn!(path = %path.display(), "the peer cache was written under another node key; starting without it");
            cache = PeerCache::default();
        }
        cache.node = me.to_string();
        let keys = self
            .rings
            .iter_mut()
            .map(|r| r.knock_key.take().expect("a key per ring"))
            .collect();
        let (tx, mut rx) = mpsc::channel::<KnockIn>(256);
        let socket = match KnockSocket::bind(cache.knock_port, me, keys, tx).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%e, "no knock socket: restarts will wait for XMPP");
                return;
            }
        };
        let cmds = self.cmds.clone();
        tokio::spawn(async move {
            while let Some(k) = rx.recv().await {
                if cmds.send(Cmd::Knock(Box::new(k))).await.is_err() {
                    return;
                }
            }
        });
        let now = unix_ms();
        let servers = cache.fresh_servers(now);
        let peers: usize = cache.rings.values().map(Vec::len).sum();
        tracing::info!(
            port = socket.port(),
            cached_peers = peers,
            servers = servers.len(),
            "knock socket up"
        );
        self.warm = Some(Warm {
            socket,
            cache,
            path,
            dirty: true,
            saved: Instant::now(),
            servers,
        });
        for r in 0..self.rings.len() {
            self.start_knock_linker(r);
            self.knock_cached(r);
        }
    }

    /// A ring joined while running: its knocks too.
    pub(super) fn warm_add_ring(&mut self, r: usize) {
        let Some(w) = &self.warm else { return };
        if let Some(key) = self.rings[r].knock_key.take() {
            let i = w.socket.add_ring(key);
            debug_assert_eq!(i, r, "rings and knock keys share indices");
        }
        self.start_knock_linker(r);
    }

    fn start_knock_linker(&mut self, r: usize) {
        let Some(w) = &self.warm else { return };
        let transport = Arc::new(KnockTransport {
            ring: r,
            socket: w.socket.clone(),
        });
        let cfg = self.linker_config(None);
        let ring = &self.rings[r];
        let local = KnockPeer {
            addr: ring.me(),
            at: SocketAddr::from(([0, 0, 0, 0], w.socket.port())),
        };
        let (linker, incoming) = Linker::spawn(
            local,
            ring.identity.clone(),
            transport,
            cfg,
            knock_policy(ring.id),
        );
        super::connect::forward_incoming(incoming, self.cmds.clone(), r, |_: &KnockPeer| {
            Via::Knock
        });
        self.rings[r].knock = Some(linker);
        // With servers cached, the ring linker need not wait for XMPP's either (without, it
        // starts once an account's server offers them, or links would have no TURN).
        if self.rings[r].overlay.is_none() && self.warm_servers_cached().is_some() {
            self.start_overlay_linker(r);
        }
    }

    /// The servers cached by the last run, if any are fresh.
    pub(super) fn warm_servers_cached(&self) -> Option<Vec<IceServer>> {
        self.warm
            .as_ref()
            .filter(|w| !w.servers.is_empty())
            .map(|w| w.servers.clone())
    }

    /// Knocks at ring `r`'s cached peers, freshest first.
    fn knock_cached(&mut self, r: usize) {
        let (Some(w), Some(linker)) = (&self.warm, self.rings[r].knock.clone()) else {
            return;
        };
        let since = unix_ms().saturating_sub(KNOCK_SINCE.as_millis() as u64);
        let peers = w.cache.peers(&self.rings[r].id.to_hex(), since);
        for (peer, addrs) in peers.into_iter().take(KNOCK_AT_START) {
            if self.rings[r].connecting.contains(&peer) {
                continue;
            }
            tracing::info!(ring = %self.rings[r].name, %peer, ?addrs, "knocking at a cached peer");
            self.rings[r].connecting.insert(peer);
            let resources = addrs
                .into_iter()
                .map(|at| KnockPeer { addr: peer, at })
                .collect();
            let (linker, cmds) = (linker.clone(), self.cmds.clone());
            tokio::spawn(async move {
                let result = linker
                    .connect(resources)
                    .await
                    .map(Box::new)
                    .map_err(|e| (peer, e));
                let cmd = Cmd::LinkMade {
                    ring: r,
                    via: Via::Knock,
                    wanted: false,
                    result,
                };
                let _ = cmds.send(cmd).await;
            });
        }
    }

    /// A knock arrived: a beacon tells where a member's knock socket is; a request goes to
    /// the ring's knock linker and its answer back to where it came from.
    pub(super) fn knock_in(&mut self, k: KnockIn) {
        let Some(r) = (k.ring < self.rings.len() && !self.rings[k.ring].left).then_some(k.ring)
        else {
            return;
        };
        let over =
            matches!(k.envelope, Envelope::SigRequest { .. }) && !self.signal_allowed(r, k.from);
        let ring_hex = self.rings[r].id.to_hex();
        let Some(w) = &mut self.warm else { return };
        w.cache.heard(&ring_hex, &k.from, Some(k.src), unix_ms());
        w.dirty = true;
        match k.envelope {
            Envelope::Ping { .. } => {}
            Envelope::SigRequest { id, .. } if over => {
                let reply = Reply::Error(IqFailure::ResourceConstraint);
                w.socket.reply(r, k.src, k.from, id, reply);
            }
            Envelope::SigRequest { id, xml, .. } => {
                let socket = w.socket.clone();
                let Some(linker) = self.rings[r].knock.clone() else {
                    return;
                };
                let (from, src) = (k.from, k.src);
                tokio::spawn(async move {
                    let reply = match Jingle::from_xml(&xml) {
                        Ok(j) => {
                            linker
                                .incoming(
                                    KnockPeer {
                                        addr: from,
                                        at: src,
                                    },
                                    j,
                                )
                                .await
                        }
                        Err(e) => {
                            tracing::debug!(%src, %e, "malformed Jingle in a knock");
                            Reply::Error(IqFailure::Other("bad-request".into()))
                        }
                    };
                    socket.reply(r, src, from, id, reply);
                });
            }
            _ => {}
        }
    }

    /// A linked peer told us its knock port: it can be knocked at there, at the address its
    /// link comes from; a beacon goes at once so it learns where we are.
    pub(super) fn knock_port_in(&mut self, r: usize, src: RingAddress, port: u16) {
        let Some(w) = &mut self.warm else { return };
        // Only a linked peer's word is taken: the address is the one its link comes from.
        let Some(link) = self.links.values().find(|l| l.ring == r && l.peer == src) else {
            return;
        };
        // A relayed link's far end is the relay, not the peer.
        let remote = link
            .status()
            .path
            .filter(|p| p.kind != crate::link::PathKind::TurnRelay)
            .map(|p| p.remote);
        let ring_hex = self.rings[r].id.to_hex();
        w.cache.heard(&ring_hex, &src, None, unix_ms());
        if let Some(remote) = remote {
            let at = SocketAddr::new(remote.ip(), port);
            w.cache.may_be_at(&ring_hex, &src, at);
            w.socket.beacon(r, at);
        }
        w.dirty = true;
    }

    /// Every few seconds: tell new links' peers our knock port, beacon every linked peer at
    /// the addresses we know for it, and write the cache if it changed.
    pub(super) fn warm_tick(&mut self, beacon: bool) {
        let Some(port) = self.warm.as_ref().map(|w| w.socket.port()) else {
            return;
        };
        let untold: Vec<(usize, RingAddress)> = self
            .links
            .values()
            .filter(|l| !l.knock_told && self.rings[l.ring].core.table().contains(&l.peer))
            .map(|l| (l.ring, l.peer))
            .collect();
        for (r, peer) in untold {
            self.send_envelope(r, peer, &Envelope::KnockAt { port });
            if let Some(l) = self
                .links
                .values_mut()
                .find(|l| l.ring == r && l.peer == peer)
            {
                l.knock_told = true;
            }
        }
        let Some(w) = &mut self.warm else { return };
        if beacon {
            let now = unix_ms();
            for l in self.links.values() {
                let ring_hex = self.rings[l.ring].id.to_hex();
                w.cache.heard(&ring_hex, &l.peer, None, now);
                for at in w.cache.knock_addrs(&ring_hex, &l.peer).into_iter().take(2) {
                    w.socket.beacon(l.ring, at);
                }
            }
            w.dirty = true;
        }
        if w.dirty && w.saved.elapsed() >= SAVE_EVERY {
            w.save();
        }
    }

    /// XMPP offered servers: kept for the next start, and given to the knock linkers that
    /// started without any (a first start: they answer restarted peers' knocks, and need
    /// reflexive and relay candidates as much as those do).
    pub(super) fn warm_servers(&mut self, servers: &[IceServer]) {
        let Some(w) = &mut self.warm else { return };
        if servers.is_empty() {
            return;
        }
        w.cache.set_servers(servers, unix_ms());
        w.dirty = true;
        if w.servers.is_empty() {
            w.servers = servers.to_vec();
            for r in 0..self.rings.len() {
                if !self.rings[r].left {
                    self.start_knock_linker(r);
                }
            }
        }
    }

    /// Shutting down: the cache as it is now.
    pub(super) fn warm_stop(&mut self) {
        let now = unix_ms();
        if let Some(w) = &mut self.warm {
            for l in self.links.values() {
                w.cache
                    .heard(&self.rings[l.ring].id.to_hex(), &l.peer, None, now);
            }
            w.save();
        }
    }

    /// For status.
    pub(super) fn warm_view(&self, r: usize) -> Option<super::status::WarmView> {
        let w = self.warm.as_ref()?;
        let c = w.socket.counters();
        Some(super::status::WarmView {
            knock_port: w.socket.port(),
            cached_peers: w.cache.peers(&self.rings[r].id.to_hex(), 0).len(),
            knocks_received: c.received,
            knocks_dropped: c.dropped,
        })
    }
}

impl Warm {
    fn save(&mut self) {
        self.cache.knock_port = self.socket.port();
        if let Err(e) = self.cache.save(&self.path) {
            tracing::warn!("{e}");
        }
        self.dirty = false;
        self.saved = Instant::now();
    }
}
