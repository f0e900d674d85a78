//! The runtime task: one loop that owns every ring core and link, fed by commands and woken at
//! the cores' deadlines.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use brunet_compat::address::Address as RingAddress;
use brunet_compat::ring::{Event, Input, LinkId, Output, Time, codec};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use xmpp_ext::NodeSecret;

use super::app::{DhtDone, Inbound};
use super::envelope::Envelope;
use super::links::LinkEntry;
use super::reqrep::ReqRep;
use super::ring::RingRun;
use super::status::PingReport;
use super::{Cmd, RingSpec, RuntimeConfig};
use crate::account::AccountHandle;
use crate::link::{IceServer, PathHint};
use tokio_xmpp::jid::FullJid;

/// How often signalling requests are sent again when due (and, every fifth tick, link RTTs
/// fed to the cores and ping deadlines checked).
const TICK: Duration = Duration::from_millis(200);
/// How long a peer's "reach me through" stays in use.
const VIA_KEEP: Duration = Duration::from_secs(60);
/// How long a ping waits for its pong.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct Account {
    pub handle: AccountHandle,
    pub jid: Option<FullJid>,
    pub servers: Option<Vec<IceServer>>,
}

pub(super) struct PendingPing {
    pub sent: Instant,
    pub target: RingAddress,
    pub reply: oneshot::Sender<Result<PingReport, String>>,
}

pub(super) struct Task {
    pub secret: NodeSecret,
    pub cfg: RuntimeConfig,
    pub cmds: mpsc::Sender<Cmd>,
    pub epoch: Instant,
    pub rings: Vec<RingRun>,
    pub accounts: Vec<Account>,
    pub hint: PathHint,
    pub links: BTreeMap<u64, LinkEntry>,
    pub next_link: u64,
    pub pings: HashMap<u64, PendingPing>,
    pub reqrep: ReqRep,
    pub next_id: u32,
    /// Runtime datagrams that failed to decode (logged once each kind).
    pub malformed: u64,
    /// The services' inbox, once attached.
    pub services: Option<mpsc::Sender<super::app::Inbound>>,
    /// Messages for the services dropped because they fell behind.
    pub app_dropped: u64,
    /// DHT requests the services wait on.
    pub dht_waits: super::app::DhtWaits,
    /// Warm restarts: the knock socket and the peer cache.
    pub warm: Option<super::rejoin::Warm>,
    /// Fingerprints of our friends' pinned identity keys (friends rings admit them).
    pub friend_keys: std::collections::BTreeSet<[u8; 32]>,
}

impl Task {
    pub fn new(
        secret: &NodeSecret,
        specs: Vec<RingSpec>,
        accounts: Vec<AccountHandle>,
        cfg: RuntimeConfig,
        cmds: mpsc::Sender<Cmd>,
    ) -> Task {
        let n = accounts.len();
        let cfg_friend_keys = cfg.friend_keys.clone();
        let rings = specs
            .iter()
            .map(|s| RingRun::new(secret, s, n, Time::ZERO))
            .collect();
        Task {
            secret: NodeSecret::from_bytes(&secret.to_bytes()),
            cfg,
            cmds,
            epoch: Instant::now(),
            rings,
            accounts: accounts
                .into_iter()
                .map(|handle| Account {
                    handle,
                    jid: None,
                    servers: None,
                })
                .collect(),
            hint: PathHint::Unknown,
            links: BTreeMap::new(),
            next_link: 1,
            pings: HashMap::new(),
            reqrep: ReqRep::default(),
            next_id: 1,
            malformed: 0,
            services: None,
            app_dropped: 0,
            dht_waits: Default::default(),
            warm: None,
            friend_keys: cfg_friend_keys,
        }
    }

    pub fn now(&self) -> Time {
        Time::from_micros(u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    fn instant(&self, t: Time) -> Option<Instant> {
        (t != Time::NEVER).then(|| self.epoch + Duration::from_micros(t.as_micros()))
    }

    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<Cmd>,
        mut quic: mpsc::Receiver<(usize, RingAddress, Vec<u8>)>,
    ) {
        for r in 0..self.rings.len() {
            self.revocations_from_disk(r);
            self.drain(r);
        }
        if let Some(path) = self.cfg.cache_file.clone() {
            self.warm_start(path).await;
        }
        let beacon_ticks = (super::rejoin::BEACON_EVERY.as_millis() / TICK.as_millis()) as u64;
        let trim_ticks = (super::trim::EVERY.as_millis() / TICK.as_millis()) as u64;
        let mut tick = tokio::time::interval(TICK);
        let mut ticks = 0u64;
        loop {
            let next = self
                .rings
                .iter()
                .map(|r| r.deadline)
                .min()
                .unwrap_or(Time::NEVER);
            let wake = self.instant(next);
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Shutdown(done)) => {
                        self.shutdown();
                        let _ = done.send(());
                        return;
                    }
                    Some(cmd) => self.handle(cmd),
                    None => return,
                },
                Some((r, to, packet)) = quic.recv() => self.quic_out(r, to, packet),
                () = sleep_until(wake) => {
                    let now = self.now();
                    for r in 0..self.rings.len() {
                        if !self.rings[r].left && self.rings[r].deadline <= now {
                            self.rings[r].core.handle_input(now, Input::Timeout);
                            self.drain(r);
                        }
                    }
                }
                _ = tick.tick() => {
                    ticks += 1;
                    if ticks.is_multiple_of(5) {
                        self.feed_rtts();
                        // Friends are looked at again every second, not only when one comes
                        // or a link goes: a node that got into a ring after its friends
                        // announced themselves must still see the nearer ones (the two rings
                        // a split start makes merge through them), and a friend whose link
                        // failed is tried again once its wait is over.
                        for r in 0..self.rings.len() {
                            if !self.rings[r].left {
                                self.link_friends(r);
                            }
                        }
                        self.admission_tick();
                        self.friends_tick(std::time::Instant::now());
                        self.warm_tick(ticks.is_multiple_of(beacon_ticks));
                    }
                    self.signal_tick();
                    if ticks.is_multiple_of(trim_ticks) {
                        super::trim::release_freed();
                    }
                }
            }
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::AccountOnline { account, jid } => self.account_online(account, jid),
            Cmd::AccountServices { account, servers } => self.account_services(account, servers),
            Cmd::FriendUp {
                ring,
                account,
                jid,
                address,
            } => self.friend_up(&ring, account, jid, address),
            Cmd::FriendDown { ring, jid } => self.friend_down(&ring, &jid),
            Cmd::FriendKeys(keys) => self.friend_keys = keys,
            Cmd::Jingle {
                account,
                from,
                jingle,
                reply,
            } => self.jingle(account, from, *jingle, reply),
            Cmd::Hint(h) => self.hint = h,
            Cmd::SignalOut {
                ring,
                to,
                xml,
                reply,
            } => self.signal_out(ring, to, xml, reply),
            Cmd::SignalReply {
                ring,
                to,
                id,
                reply,
            } => self.signal_answer_out(ring, to, id, reply),
            Cmd::LinkMade {
                ring,
                via,
                wanted,
                result,
            } => self.link_made(ring, via, wanted, result),
            Cmd::LinkData { link, bytes } => {
                let Some(r) = self.links.get(&link).map(|l| l.ring) else {
                    return;
                };
                let mut bytes = Some(bytes);
                if self.admission_data(link, &mut bytes) {
                    return;
                }
                let Some(bytes) = bytes else {
                    return;
                };
                let now = self.now();
                let input = Input::ReceiveBytes {
                    link: LinkId(link),
                    bytes,
                };
                let before = self.rings[r].core.stats().malformed;
                self.rings[r].core.handle_input(now, input);
                if before == 0 && self.rings[r].core.stats().malformed > 0 {
                    let peer = self.links.get(&link).map(|l| l.peer.to_string());
                    tracing::warn!(ring = %self.rings[r].name, ?peer,
                        "malformed ring message dropped (further ones are counted in status)");
                }
                self.drain(r);
            }
            Cmd::LinkGone { link } => self.link_gone(link),
            Cmd::Knock(k) => self.knock_in(*k),
            Cmd::Status(reply) => {
                let _ = reply.send(self.views());
            }
            Cmd::Ping { target, reply } => self.ping(&target, reply),
            Cmd::AddRing(spec) => self.add_ring(&spec),
            Cmd::LeaveRing(name) => self.leave_ring(&name),
            Cmd::AttachServices(tx) => self.attach_services(tx),
            Cmd::Broadcast { ring, end, data } => self.broadcast(ring, end, data),
            Cmd::Dht { ring, key, op } => self.dht(ring, key, op),
            Cmd::Revoke { ring, jid, reply } => {
                let _ = reply.send(self.revoke(&ring, &jid));
            }
            Cmd::Renew {
                ring,
                from,
                cert,
                reply,
            } => {
                let _ = reply.send(self.renew(&ring, from, &cert));
            }
            Cmd::SetCert { ring, cert } => self.set_cert(&ring, *cert),
            Cmd::Friends { ring, reply } => {
                let _ = reply.send(self.friends_of(ring));
            }
            Cmd::Shutdown(_) => unreachable!("handled by the loop"),
        }
    }

    pub fn fresh_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.next_id
    }

    /// Sends a runtime datagram over ring `r` to `to`: directly or by exact routing when
    /// routing can reach it, else through a peer linked to it (one it named itself, or one
    /// of ours whose near list has it): a node still joining is reachable only that way.
    pub fn send_envelope(&mut self, r: usize, to: RingAddress, e: &Envelope) {
        let now = self.now();
        let ring = &mut self.rings[r];
        let via = if ring.core.table().contains(&to) {
            None
        } else {
            ring.vias
                .get(&to)
                .map(|(v, _)| *v)
                .or_else(|| ring.core.neighbour_of(&to))
        };
        let via = via.filter(|v| *v != ring.me());
        if !matches!(e, Envelope::Quic(_)) {
            tracing::debug!(%to, ?via, kind = e.kind(), "runtime datagram out");
        }
        ring.core.send_control(now, to, via, e.encode());
        self.drain(r);
    }

    /// The peer others should reach us through while routing may not find us: our
    /// routable linked peer nearest to us (a ring neighbour, or the leaf we joined by).
    pub fn return_via(&self, r: usize) -> Option<RingAddress> {
        let core = &self.rings[r].core;
        let me = core.address();
        core.table()
            .iter()
            .filter(|p| p.routable && p.link().is_some())
            .min_by_key(|p| me.distance_to(&p.addr).abs())
            .map(|p| p.addr)
    }

    /// Carries out everything core `r` asks for, until it names its next deadline.
    pub fn drain(&mut self, r: usize) {
        loop {
            match self.rings[r].core.poll_output() {
                Output::Timeout(at) => {
                    self.rings[r].deadline = at;
                    return;
                }
                Output::Transmit(t) => {
                    if let Some(l) = self.links.get_mut(&t.link.0) {
                        l.send(codec::encode(&t.msg));
                    }
                }
                Output::Event(e) => self.event(r, e),
            }
        }
    }

    fn event(&mut self, r: usize, e: Event) {
        match e {
            Event::LinkWanted { peer, via, .. } => {
                if let Some(v) = via {
                    self.rings[r]
                        .vias
                        .insert(peer, (v, std::time::Instant::now()));
                }
                self.link_wanted(r, peer);
            }
            Event::CloseLink { link } => {
                if let Some(l) = self.links.remove(&link.0) {
                    tracing::debug!(ring = %self.rings[r].name, peer = %l.peer, "core closes link");
                    l.close();
                }
            }
            Event::Deliver {
                src, hops, data, ..
            } => self.deliver(r, src, hops, &data),
            Event::Broadcast { data, .. } if data.starts_with(super::admission::REVOKE) => {
                self.revocation_in(r, &data[super::admission::REVOKE.len()..]);
            }
            Event::Broadcast { src, hops, data } => {
                self.tell_services(Inbound::Broadcast {
                    ring: r,
                    src,
                    hops,
                    data,
                });
            }
            Event::DhtPutDone { id, ok } | Event::DhtRemoveDone { id, ok } => {
                self.dht_done(r, id, DhtDone::Ok(ok));
            }
            Event::DhtGetDone { id, values } => self.dht_done(r, id, DhtDone::Values(values)),
            Event::RingState { connected } => {
                tracing::info!(ring = %self.rings[r].name, connected, size = self.rings[r].core.size_estimate(), "ring state");
            }
            Event::RelayUp { peer, via } => {
                tracing::info!(ring = %self.rings[r].name, %peer, %via, "relay edge up");
            }
            Event::RelayDown { peer } => {
                tracing::info!(ring = %self.rings[r].name, %peer, "relay edge down");
            }
            _ => {}
        }
    }

    fn deliver(&mut self, r: usize, src: RingAddress, hops: u16, data: &[u8]) {
        let e = Envelope::decode(data);
        if let Ok(e) = &e
            && !matches!(e, Envelope::Quic(_))
        {
            tracing::debug!(%src, hops, kind = e.kind(), "runtime datagram in");
        }
        match e {
            Ok(Envelope::SigRequest { id, via, xml }) => {
                if let Some(v) = via {
                    self.rings[r]
                        .vias
                        .insert(src, (v, std::time::Instant::now()));
                }
                self.signal_request_in(r, src, id, &xml);
            }
            Ok(Envelope::SigReply { id, reply }) => self.signal_answer_in(src, id, reply),
            Ok(Envelope::Ping { nonce }) => {
                self.send_envelope(r, src, &Envelope::Pong { nonce, hops });
            }
            Ok(Envelope::Pong { nonce, hops: out }) => {
                if let Some(p) = self.pings.remove(&nonce)
                    && p.target == src
                {
                    let _ = p.reply.send(Ok(PingReport {
                        ring: self.rings[r].name.clone(),
                        target: src.to_string(),
                        hops_out: out,
                        hops_back: hops,
                        rtt_ms: p.sent.elapsed().as_secs_f64() * 1e3,
                    }));
                }
            }
            Ok(Envelope::Quic(packet)) => self.tell_services(Inbound::Quic {
                ring: r,
                src,
                packet,
            }),
            Ok(Envelope::KnockAt { port }) => self.knock_port_in(r, src, port),
            Err(e) => {
                self.malformed += 1;
                if self.malformed == 1 {
                    tracing::warn!(%src, %e, "malformed runtime datagram dropped (further ones counted)");
                }
            }
        }
    }

    fn feed_rtts(&mut self) {
        let now = self.now();
        let rtts: Vec<(usize, u64, Duration)> = self
            .links
            .iter()
            .filter_map(|(id, l)| Some((l.ring, *id, l.status().rtt?)))
            .collect();
        for (r, id, rtt) in rtts {
            self.rings[r].core.handle_input(
                now,
                Input::LinkRtt {
                    link: LinkId(id),
                    rtt,
                },
            );
        }
        for r in 0..self.rings.len() {
            self.drain(r);
        }
        let now_i = Instant::now();
        for ring in &mut self.rings {
            ring.vias.retain(|_, (_, t)| t.elapsed() < VIA_KEEP);
        }
        let expired: Vec<u64> = self
            .pings
            .iter()
            .filter(|(_, p)| now_i.duration_since(p.sent) >= PING_TIMEOUT)
            .map(|(n, _)| *n)
            .collect();
        for n in expired {
            if let Some(p) = self.pings.remove(&n) {
                let _ = p.reply.send(Err(format!(
                    "no answer from {} within {} s",
                    p.target,
                    PING_TIMEOUT.as_secs()
                )));
            }
        }
    }

    /// The live ring named `name`.
    pub fn ring_index(&self, name: &str) -> Option<usize> {
        self.rings.iter().position(|r| !r.left && r.name == name)
    }

    fn add_ring(&mut self, spec: &RingSpec) {
        if self.ring_index(&spec.name).is_some() {
            return;
        }
        let now = self.now();
        self.rings
            .push(RingRun::new(&self.secret, spec, self.accounts.len(), now));
        let r = self.rings.len() - 1;
        tracing::info!(ring = %spec.name, "joined a ring");
        self.revocations_from_disk(r);
        self.warm_add_ring(r);
        let up = Inbound::RingUp {
            ring: r,
            name: spec.name.clone(),
            address: self.rings[r].me(),
        };
        self.tell_services(up);
        for a in 0..self.accounts.len() {
            if self.accounts[a].servers.is_some() {
                self.start_xmpp_linker(r, a);
                if self.rings[r].overlay.is_none() {
                    self.start_overlay_linker(r);
                }
            }
        }
        self.drain(r);
    }

    fn leave_ring(&mut self, name: &str) {
        let Some(r) = self.ring_index(name) else {
            return;
        };
        let now = self.now();
        self.rings[r].core.leave(now);
        self.drain(r);
        // Whatever the core did not close (links still being made) goes too.
        let ids: Vec<u64> = self
            .links
            .iter()
            .filter(|(_, l)| l.ring == r)
            .map(|(i, _)| *i)
            .collect();
        for id in ids {
            if let Some(l) = self.links.remove(&id) {
                l.close();
            }
        }
        let ring = &mut self.rings[r];
        ring.left = true;
        ring.xmpp.iter_mut().for_each(|l| *l = None);
        ring.overlay = None;
        ring.friends.clear();
        tracing::info!(ring = %name, "left the ring");
        self.tell_services(Inbound::RingGone { ring: r });
    }

    fn shutdown(&mut self) {
        self.warm_stop();
        let now = self.now();
        for r in 0..self.rings.len() {
            self.rings[r].core.leave(now);
            self.drain(r);
        }
        for (_, l) in std::mem::take(&mut self.links) {
            l.close();
        }
    }
}

async fn sleep_until(when: Option<Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
