//! Which linker makes a link, and what happens when one is made or lost. XMPP friends are
//! linked at once while the node is not yet in a ring (the bootstrap, Brunet's leaf links);
//! once it is, the core asks for the links it wants, signalled over the ring to any member
//! and over XMPP only to friends while the node has no ring link at all.

use std::sync::Arc;

use brunet_compat::address::Address as RingAddress;
use brunet_compat::ring::{Input, LinkId, LinkKind};
use tokio::sync::oneshot;
use tokio_xmpp::jid::FullJid;
use xmpp_ext::jingle::{Action, Jingle};

use super::links::LinkEntry;
use super::overlay_signal::{OverlayPeer, RingTransport};
use super::ring::FriendRoute;
use super::task::Task;
use super::{Cmd, Via};
use crate::link::{IceServer, Link, LinkError, Linker, PathKind};
use crate::signal::xmpp::XmppTransport;
use crate::signal::{IqFailure, Reply};

/// Friends linked at once while the node is not in a ring yet.
const LEAF_LINKS: usize = 2;
/// How long a friend we could not link to is left alone.
const FRIEND_RETRY: std::time::Duration = std::time::Duration::from_secs(30);
/// How long an XMPP signalling request waits for its IQ result.
const IQ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

impl Task {
    pub(super) fn account_online(&mut self, account: usize, jid: FullJid) {
        let Some(a) = self.accounts.get_mut(account) else {
            return;
        };
        a.jid = Some(jid);
        if a.servers.is_some() {
            return;
        }
        let (h, cmds) = (a.handle.clone(), self.cmds.clone());
        tokio::spawn(async move {
            // A busy server may miss one query; links without its TURN would fail behind
            // the harder NATs, so it is asked three times before going without.
            let mut servers = Vec::new();
            for attempt in 1..=3 {
                match h
                    .external_services(std::time::Duration::from_secs(10))
                    .await
                {
                    Ok(s) => {
                        servers = IceServer::from_offers(&s);
                        break;
                    }
                    Err(e) if attempt < 3 => {
                        tracing::info!(account = %h.jid(), attempt, "XEP-0215 query failed: {e}; asking again");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    Err(e) => tracing::warn!(account = %h.jid(),
                        "no STUN/TURN offers (XEP-0215): {e}; links use host candidates only"),
                }
            }
            let _ = cmds.send(Cmd::AccountServices { account, servers }).await;
        });
    }

    pub(super) fn account_services(&mut self, account: usize, servers: Vec<IceServer>) {
        self.warm_servers(&servers);
        let Some(a) = self.accounts.get_mut(account) else {
            return;
        };
        a.servers = Some(servers);
        for r in 0..self.rings.len() {
            if self.rings[r].left {
                continue;
            }
            self.start_xmpp_linker(r, account);
            // The ring linker starts with the first account's servers (TURN for members
            // behind UDP-blocking or symmetric NATs).
            if self.rings[r].overlay.is_none() {
                self.start_overlay_linker(r);
            }
            self.link_friends(r);
        }
    }

    pub(super) fn linker_config(&self, account: Option<usize>) -> crate::link::LinkerConfig {
        let mut cfg = self.cfg.linker.clone();
        cfg.hint = self.hint;
        cfg.servers = match account {
            Some(i) => self.accounts[i].servers.clone().unwrap_or_default(),
            // Before any account's server answered: the servers a warm restart cached.
            None => self
                .accounts
                .iter()
                .find_map(|a| a.servers.clone())
                .or_else(|| self.warm_servers_cached())
                .unwrap_or_default(),
        };
        cfg
    }

    pub(super) fn start_xmpp_linker(&mut self, r: usize, account: usize) {
        let a = &self.accounts[account];
        let Some(jid) = a.jid.clone() else { return };
        if self.rings[r].xmpp[account].is_some() {
            return;
        }
        let transport = Arc::new(XmppTransport::new(a.handle.clone(), IQ_TIMEOUT));
        let ring = &self.rings[r];
        let (linker, incoming) = Linker::spawn(
            jid,
            ring.identity.clone(),
            transport,
            self.linker_config(Some(account)),
            ring.xmpp_policy(),
        );
        forward_incoming(incoming, self.cmds.clone(), r, |from: &FullJid| {
            Via::Xmpp(from.clone())
        });
        self.rings[r].xmpp[account] = Some(linker);
    }

    /// Starts ring `r`'s linker over the ring with the servers known now.
    pub(super) fn start_overlay_linker(&mut self, r: usize) {
        let transport = Arc::new(RingTransport {
            ring: r,
            cmds: self.cmds.clone(),
            timeout: self.cfg.ring_signal_timeout,
        });
        let ring = &self.rings[r];
        let local = OverlayPeer(ring.me());
        let (linker, incoming) = Linker::spawn(
            local,
            ring.identity.clone(),
            transport,
            self.linker_config(None),
            ring.overlay_policy(),
        );
        forward_incoming(incoming, self.cmds.clone(), r, |_: &OverlayPeer| Via::Ring);
        self.rings[r].overlay = Some(linker);
    }

    pub(super) fn friend_up(
        &mut self,
        ring: &str,
        account: usize,
        jid: FullJid,
        addr: RingAddress,
    ) {
        let Some(r) = self.ring_index(ring) else {
            return;
        };
        let routes = self.rings[r].friends.entry(addr).or_default();
        let route = FriendRoute { account, jid };
        if !routes.contains(&route) {
            routes.push(route);
        }
        self.link_friends(r);
    }

    pub(super) fn friend_down(&mut self, ring: &str, jid: &FullJid) {
        let Some(r) = self.ring_index(ring) else {
            return;
        };
        let friends = &mut self.rings[r].friends;
        for routes in friends.values_mut() {
            routes.retain(|f| f.jid != *jid);
        }
        friends.retain(|_, v| !v.is_empty());
    }

    fn linked(&self, r: usize, peer: &RingAddress) -> bool {
        self.links.values().any(|l| l.ring == r && l.peer == *peer)
    }

    /// While not in a ring yet, link the friends nearest to us on the ring, [`LEAF_LINKS`] at
    /// a time, alternating sides: they are most likely our ring neighbours, so the bootstrap
    /// links double as near links, and a dozen nodes starting together do not run a dozen ICE
    /// searches each. Once in, friends are members like any other and the core decides.
    pub(super) fn link_friends(&mut self, r: usize) {
        if self.self_revoked(r) {
            return;
        }
        let now = std::time::Instant::now();
        self.rings[r]
            .failed
            .retain(|_, t| now.duration_since(*t) < FRIEND_RETRY);
        if self.ring_linked(r) {
            self.link_nearer_friends(r);
            return;
        }
        let ring = &self.rings[r];
        let busy = ring.connecting.len()
            + self
                .links
                .values()
                .filter(|l| l.ring == r && matches!(l.via, Via::Xmpp(_)))
                .count();
        let mut wanted = LEAF_LINKS.saturating_sub(busy);
        for peer in self.rings[r].nearest_friends() {
            if wanted == 0 {
                break;
            }
            let ring = &self.rings[r];
            if self.linked(r, &peer)
                || ring.connecting.contains(&peer)
                || ring.failed.contains_key(&peer)
            {
                continue;
            }
            if self.connect_xmpp(r, peer, false) {
                wanted -= 1;
            }
        }
    }

    /// In a ring already, a friend nearer to us than our nearest peer on its side is linked at
    /// once: friends announced late (another server's, over federation) may have formed a ring
    /// of their own, and this link is what merges the two.
    fn link_nearer_friends(&mut self, r: usize) {
        let ring = &self.rings[r];
        let me = ring.me();
        let table = ring.core.table();
        let (left, right) = (table.left_of(&me).next(), table.right_of(&me).next());
        let cw = |a: &RingAddress| a.to_ring_int().wrapping_sub(me.to_ring_int());
        let ccw = |a: &RingAddress| me.to_ring_int().wrapping_sub(a.to_ring_int());
        let friends: Vec<RingAddress> = ring.friends.keys().copied().collect();
        let nearest_cw = friends.iter().min_by_key(|a| cw(a)).copied();
        let nearest_ccw = friends.iter().min_by_key(|a| ccw(a)).copied();
        let mut wanted = Vec::new();
        if let Some(f) = nearest_cw
            && left.is_none_or(|p| cw(&f) < cw(&p.addr))
        {
            wanted.push(f);
        }
        if let Some(f) = nearest_ccw
            && right.is_none_or(|p| ccw(&f) < ccw(&p.addr))
        {
            wanted.push(f);
        }
        for peer in wanted {
            let ring = &self.rings[r];
            if !self.linked(r, &peer)
                && !ring.connecting.contains(&peer)
                && !ring.failed.contains_key(&peer)
            {
                tracing::info!(ring = %ring.name, %peer, "a friend nearer than our neighbour: linking");
                self.connect_xmpp(r, peer, false);
            }
        }
    }

    /// The node is in ring `r` for good: consistent, with links to [`LEAF_LINKS`] routable
    /// peers or more (one link makes a two-node ring look consistent from inside).
    fn ring_linked(&self, r: usize) -> bool {
        let core = &self.rings[r].core;
        let linked = core
            .table()
            .iter()
            .filter(|p| p.routable && p.link().is_some())
            .count();
        core.is_connected() && linked >= LEAF_LINKS
    }

    fn connect_xmpp(&mut self, r: usize, peer: RingAddress, wanted: bool) -> bool {
        let Some((linker, jid)) = self.rings[r].friend_route(&peer) else {
            return false;
        };
        self.rings[r].connecting.insert(peer);
        let cmds = self.cmds.clone();
        tokio::spawn(async move {
            let result = linker
                .connect(vec![jid.clone()])
                .await
                .map(Box::new)
                .map_err(|e| (peer, e));
            let cmd = Cmd::LinkMade {
                ring: r,
                via: Via::Xmpp(jid),
                wanted,
                result,
            };
            let _ = cmds.send(cmd).await;
        });
        true
    }

    /// The core wants a link to `peer`. Once the node is in the ring for good, over the ring
    /// (XMPP is the door: the ring carries its own signalling, and a friend's server is not
    /// asked to carry a Jingle session for every link of a busy ring: in a lab ring of 50 on
    /// one Prosody, more sessions timed out there than links came up). Before that, a friend
    /// is signalled over XMPP while its account is online (the servers deliver at once,
    /// however unsettled the ring still is); any other member, or a friend while the servers
    /// are down, over the ring. With neither, the link fails at once and the core relays.
    pub(super) fn link_wanted(&mut self, r: usize, peer: RingAddress) {
        if self.linked(r, &peer) || self.rings[r].connecting.contains(&peer) || self.self_revoked(r)
        {
            return;
        }
        if !self.ring_linked(r) && self.friend_online(r, &peer) && self.connect_xmpp(r, peer, true)
        {
            return;
        }
        let has_links = self.links.values().any(|l| l.ring == r);
        match self.rings[r].overlay.clone() {
            Some(linker) if has_links => {
                self.rings[r].connecting.insert(peer);
                let cmds = self.cmds.clone();
                tokio::spawn(async move {
                    let result = linker
                        .connect(vec![OverlayPeer(peer)])
                        .await
                        .map(Box::new)
                        .map_err(|e| (peer, e));
                    let cmd = Cmd::LinkMade {
                        ring: r,
                        via: Via::Ring,
                        wanted: true,
                        result,
                    };
                    let _ = cmds.send(cmd).await;
                });
            }
            _ => {
                let now = self.now();
                self.rings[r]
                    .core
                    .handle_input(now, Input::LinkFailed { peer });
                self.drain(r);
            }
        }
    }

    /// `peer` is a friend whom one of our online accounts sees now.
    fn friend_online(&self, r: usize, peer: &RingAddress) -> bool {
        self.rings[r].friends.get(peer).is_some_and(|routes| {
            routes.iter().any(|f| {
                self.accounts[f.account].handle.status().state == crate::account::LinkState::Online
            })
        })
    }

    pub(super) fn link_made(
        &mut self,
        r: usize,
        via: Via,
        wanted: bool,
        result: Result<Box<Link>, (RingAddress, LinkError)>,
    ) {
        let link = match result {
            Ok(l) => *l,
            Err((peer, e)) => {
                self.rings[r].connecting.remove(&peer);
                tracing::info!(ring = %self.rings[r].name, %peer, %e, "no link");
                if wanted {
                    let now = self.now();
                    self.rings[r]
                        .core
                        .handle_input(now, Input::LinkFailed { peer });
                    self.drain(r);
                } else {
                    self.rings[r].failed.insert(peer, std::time::Instant::now());
                    self.link_friends(r);
                }
                return;
            }
        };
        let peer = RingAddress::from_bytes(link.record().address().to_bytes());
        self.rings[r].connecting.remove(&peer);
        // Two links to one peer (offers crossed on different transports): both ends keep the
        // one with the smaller session id. A link from a newer record of the peer replaces
        // the old one whatever the ids: the peer restarted, and the old link is dead (it
        // would otherwise hold the new one off until its silence timeout).
        let seq = link.record().sequence();
        let existing = self
            .links
            .iter()
            .find(|(_, l)| l.ring == r && l.peer == peer)
            .map(|(&id, l)| {
                let keep_old = match l.record_seq.cmp(&seq) {
                    std::cmp::Ordering::Less => false,
                    std::cmp::Ordering::Greater => true,
                    std::cmp::Ordering::Equal => l.sid.as_str() <= link.sid(),
                };
                (id, keep_old)
            });
        match existing {
            Some((_, true)) => {
                tracing::debug!(%peer, "duplicate link closed");
                tokio::spawn(link.close());
                return;
            }
            Some((old, false)) => {
                if let Some(l) = self.drop_link(old) {
                    l.close();
                }
            }
            None => {}
        }
        let status = link.status();
        let kind = match status.path.as_ref().map(|p| p.kind) {
            Some(PathKind::TurnRelay) => LinkKind::Relay,
            _ => LinkKind::Direct,
        };
        let id = self.next_link;
        self.next_link += 1;
        let leaf = matches!(via, Via::Xmpp(_) | Via::Knock) && !wanted;
        tracing::info!(ring = %self.rings[r].name, %peer, ?kind, leaf, path = ?status.path.as_ref().map(|p| p.kind), "link up");
        let entry = LinkEntry::start(id, r, via, link, peer, self.cmds.clone());
        self.links.insert(id, entry);
        let input = Input::LinkUp {
            link: LinkId(id),
            peer,
            kind,
            rtt: status.rtt,
            leaf,
        };
        self.admit_or_up(id, r, input);
    }

    pub(super) fn link_gone(&mut self, id: u64) {
        let Some(l) = self.drop_link(id) else {
            return;
        };
        tracing::info!(ring = %self.rings[l.ring].name, peer = %l.peer, "link down");
        self.link_friends(l.ring);
    }

    /// Forgets link `id` and tells its core; the caller closes it if it is still open.
    pub(super) fn drop_link(&mut self, id: u64) -> Option<LinkEntry> {
        let l = self.links.remove(&id)?;
        let now = self.now();
        self.rings[l.ring]
            .core
            .handle_input(now, Input::LinkDown { link: LinkId(id) });
        self.drain(l.ring);
        Some(l)
    }

    /// A Jingle request from a roster friend: an offer goes to the linker of its record's
    /// ring; anything else to whichever ring's linker knows the session.
    pub(super) fn jingle(
        &mut self,
        account: usize,
        from: FullJid,
        jingle: Jingle,
        reply: oneshot::Sender<Reply>,
    ) {
        let ring_of_offer = (jingle.action == Action::SessionInitiate)
            .then(|| jingle.content.as_ref()?.record.as_ref().map(|r| r.ring()))
            .flatten();
        let linkers: Vec<Linker<FullJid>> = self
            .rings
            .iter()
            .filter(|r| !r.left && ring_of_offer.is_none_or(|id| id == r.id))
            .filter_map(|r| r.xmpp.get(account)?.clone())
            .collect();
        tokio::spawn(async move {
            let mut answer = Reply::Error(IqFailure::ServiceUnavailable);
            for l in linkers {
                answer = l.incoming(from.clone(), jingle.clone()).await;
                if answer != Reply::Error(IqFailure::ItemNotFound) {
                    break;
                }
            }
            let _ = reply.send(answer);
        });
    }

    /// A Jingle request that came over ring `r` from `src`.
    pub(super) fn signal_in(&mut self, r: usize, src: RingAddress, id: u32, xml: &[u8]) {
        let Some(linker) = self.rings[r].overlay.clone() else {
            return;
        };
        let jingle = match Jingle::from_xml(xml) {
            Ok(j) => j,
            Err(e) => {
                tracing::debug!(%src, %e, "malformed Jingle over the ring");
                let reply = Reply::Error(IqFailure::Other("bad-request".into()));
                self.send_envelope(r, src, &super::envelope::Envelope::SigReply { id, reply });
                return;
            }
        };
        let cmds = self.cmds.clone();
        tokio::spawn(async move {
            let reply = linker.incoming(OverlayPeer(src), jingle).await;
            let _ = cmds
                .send(Cmd::SignalReply {
                    ring: r,
                    to: src,
                    id,
                    reply,
                })
                .await;
        });
    }
}

/// Passes the links a linker accepted from peers to the runtime task, as made `via` the
/// transport they were signalled over.
pub(super) fn forward_incoming<A>(
    mut incoming: crate::link::Incoming<A>,
    cmds: tokio::sync::mpsc::Sender<Cmd>,
    r: usize,
    via: impl Fn(&A) -> Via + Send + 'static,
) where
    A: crate::signal::Address + Send + Sync + 'static,
{
    tokio::spawn(async move {
        while let Some(made) = incoming.recv().await {
            let (via, result) = match made {
                Ok((from, link)) => (via(&from), Ok(Box::new(link))),
                Err((from, e)) => {
                    tracing::info!(%from, %e, "incoming link failed");
                    continue;
                }
            };
            let cmd = Cmd::LinkMade {
                ring: r,
                via,
                wanted: false,
                result,
            };
            if cmds.send(cmd).await.is_err() {
                return;
            }
        }
    });
}
