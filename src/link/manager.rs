//! [`Linker`]: makes and accepts links for one node over one signalling transport. One task owns
//! the [`Signaller`]; each link has its own driver task. Offers are checked (record signature,
//! the caller's policy) before any ICE work starts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use rand::RngCore;
use tokio::sync::{mpsc, oneshot};
use xmpp_ext::jingle::{IceUdpTransport, Jingle, Reason};
use xmpp_ext::record::NodeRecord;

use super::config::LinkerConfig;
use super::driver::{Driver, ManagerNote, Params, SigNote};
use super::error::LinkError;
use super::ice::Servers;
use super::identity::{Identity, Policy};
use super::link::Link;
use super::shared::{Shared, spawn_timers};
use super::{Role, Tunnel};
use crate::signal::xmpp::SignalTransport;
use crate::signal::{Address, Reply, SignalEvent, SignalOutput, Signaller};

/// Where a `connect` call waits for its link.
type Waiter = oneshot::Sender<Result<Link, LinkError>>;

enum Cmd<A> {
    Connect(Vec<A>, Box<Waiter>),
    Incoming(A, Box<Jingle>, oneshot::Sender<Reply>),
}

/// A handle on the linker task; cheap to clone.
pub struct Linker<A: Address> {
    cmds: mpsc::Sender<Cmd<A>>,
}

impl<A: Address> Clone for Linker<A> {
    fn clone(&self) -> Self {
        Linker {
            cmds: self.cmds.clone(),
        }
    }
}

/// Links that peers opened to us (or failed to).
pub type Incoming<A> = mpsc::Receiver<Result<(A, Link), (A, LinkError)>>;

impl<A: Address + Send + Sync + 'static> Linker<A>
where
    A::Party: Send,
{
    /// Starts the linker speaking as `local`.
    pub fn spawn(
        local: A,
        identity: Identity,
        transport: Arc<dyn SignalTransport<A>>,
        cfg: LinkerConfig,
        policy: Policy<A>,
    ) -> (Linker<A>, Incoming<A>) {
        let (cmds, cmd_rx) = mpsc::channel(64);
        let (incoming, in_rx) = mpsc::channel(64);
        let (notes_tx, notes) = mpsc::unbounded_channel();
        let (acks_tx, acks) = mpsc::unbounded_channel();
        let task = Task {
            sig: Signaller::new(local, cfg.signal.clone()),
            servers: Arc::new(Servers::new(&cfg.servers)),
            cfg,
            identity,
            transport,
            policy,
            links: HashMap::new(),
            waiting: HashMap::new(),
            adopt: Vec::new(),
            offers: HashMap::new(),
            incoming,
            notes_tx,
            acks_tx,
        };
        tokio::spawn(task.run(cmd_rx, notes, acks));
        (Linker { cmds }, in_rx)
    }

    /// Opens a link to a friend at the first of `resources` that takes the offer; resolves
    /// when the link is up (authenticated) or has failed.
    pub async fn connect(&self, resources: Vec<A>) -> Result<Link, LinkError> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(Cmd::Connect(resources, Box::new(tx)))
            .await
            .map_err(|_| LinkError::Closed)?;
        rx.await.unwrap_or(Err(LinkError::Closed))
    }

    /// Feeds an incoming Jingle request; returns how to answer it.
    pub async fn incoming(&self, from: A, jingle: Jingle) -> Reply {
        let (tx, rx) = oneshot::channel();
        if self
            .cmds
            .send(Cmd::Incoming(from, Box::new(jingle), tx))
            .await
            .is_err()
        {
            return Reply::Error(crate::signal::IqFailure::ServiceUnavailable);
        }
        rx.await
            .unwrap_or(Reply::Error(crate::signal::IqFailure::ServiceUnavailable))
    }
}

struct Entry<A> {
    peer: A,
    to_driver: mpsc::UnboundedSender<SigNote>,
}

struct Task<A: Address> {
    sig: Signaller<A>,
    /// The STUN/TURN servers, with the TURN over TCP bridges alive as long as the linker.
    servers: Arc<Servers>,
    cfg: LinkerConfig,
    identity: Identity,
    transport: Arc<dyn SignalTransport<A>>,
    policy: Policy<A>,
    links: HashMap<String, Entry<A>>,
    /// `connect` calls waiting for their link, by session id.
    waiting: HashMap<String, Waiter>,
    /// `connect` calls whose offer lost a tie-break: they take the peer's offer instead.
    adopt: Vec<(A::Party, Waiter)>,
    /// Resources of offers not yet sent, by session id.
    offers: HashMap<String, Vec<A>>,
    incoming: mpsc::Sender<Result<(A, Link), (A, LinkError)>>,
    notes_tx: mpsc::UnboundedSender<ManagerNote>,
    acks_tx: mpsc::UnboundedSender<(u64, Result<(), crate::signal::IqFailure>)>,
}

impl<A: Address + Send + Sync + 'static> Task<A>
where
    A::Party: Send,
{
    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Cmd<A>>,
        mut notes: mpsc::UnboundedReceiver<ManagerNote>,
        mut acks: mpsc::UnboundedReceiver<(u64, Result<(), crate::signal::IqFailure>)>,
    ) {
        loop {
            let timer = self.sig.poll_timeout();
            let sleep = async move {
                match timer {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                c = cmds.recv() => match c {
                    Some(Cmd::Connect(resources, reply)) => self.connect(resources, *reply),
                    Some(Cmd::Incoming(from, j, reply)) => {
                        let r = self.sig.handle_jingle(Instant::now(), from, *j);
                        let _ = reply.send(r);
                    }
                    None => return,
                },
                Some(n) = notes.recv() => self.on_note(n),
                Some((tag, r)) = acks.recv() => self.sig.handle_ack(Instant::now(), tag, r),
                _ = sleep => self.sig.handle_timeout(Instant::now()),
            }
            self.drain();
        }
    }

    fn new_link(
        &mut self,
        sid: String,
        peer: A,
        role: Role,
        remote: Option<(NodeRecord, IceUdpTransport)>,
    ) {
        let mut seed = [0u8; 4];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        // An initiator learns the peer's key from the answer; see `SigNote::Answer`.
        let key = remote
            .as_ref()
            .map_or([0u8; 32], |(r, _)| r.keys().noise_bytes());
        let mut tunnel = Tunnel::new(
            role,
            &self.identity.noise_secret,
            key,
            sid.as_bytes(),
            u32::from_le_bytes(seed),
            self.cfg.tunnel.clone(),
            Instant::now(),
        );
        tunnel.set_psk(&self.identity.ring_psk);
        let (notes_tx, notes_rx) = mpsc::unbounded_channel();
        let (shared, rx) = Shared::new(tunnel, notes_tx);
        spawn_timers(shared.clone());
        let (close_tx, mut close_rx) = mpsc::unbounded_channel::<()>();
        let (to_driver, sig_rx) = mpsc::unbounded_channel();
        let link = Link {
            sid: sid.clone(),
            peer: peer.to_string(),
            record: remote
                .as_ref()
                .map_or_else(|| self.identity.record.clone(), |(r, _)| r.clone()),
            shared: shared.clone(),
            rx,
            close: close_tx,
        };
        // Closing the Link handle ends the session from the driver's side.
        let closer = to_driver.clone();
        tokio::spawn(async move {
            if close_rx.recv().await.is_some() {
                let _ = closer.send(SigNote::Ended("closed".into()));
            }
        });
        self.links.insert(
            sid.clone(),
            Entry {
                peer: peer.clone(),
                to_driver,
            },
        );
        let params = Params {
            sid,
            peer: peer.to_string(),
            controlling: role == Role::Initiator,
            servers: self.servers.clone(),
            hint: self.cfg.hint,
            ice: self.cfg.ice.clone(),
            setup_timeout: self.cfg.setup_timeout,
            reprobe: self.cfg.reprobe_relayed,
        };
        let (driver, ev_rx) = Driver::new(params, shared, link, self.notes_tx.clone());
        let remote_t = remote.map(|(_, t)| t);
        tokio::spawn(driver.run(ev_rx, sig_rx, notes_rx, remote_t));
    }

    fn connect(&mut self, resources: Vec<A>, reply: Waiter) {
        let Some(first) = resources.first().cloned() else {
            let _ = reply.send(Err(LinkError::Signalling {
                peer: String::new(),
                reason: "no resource to offer to".into(),
            }));
            return;
        };
        let mut b = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut b);
        let sid = format!("ch{}", hex::encode(b));
        self.waiting.insert(sid.clone(), reply);
        self.offers.insert(sid.clone(), resources);
        self.new_link(sid, first, Role::Initiator, None);
    }

    fn check(&self, from: &A, record: &NodeRecord) -> Result<(), String> {
        record.verify().map_err(|e| format!("record: {e}"))?;
        (self.policy)(from, record)
    }

    fn on_note(&mut self, n: ManagerNote) {
        let now = Instant::now();
        match n {
            ManagerNote::Credentials(sid, t) => {
                let record = self.identity.record.clone();
                let r = match self.offers.remove(&sid) {
                    Some(resources) => self.sig.initiate(now, sid.clone(), resources, record, t),
                    None => self.sig.accept(&sid, record, t),
                };
                if let Err(e) = r {
                    tracing::warn!(%sid, e, "cannot send the offer or answer");
                }
            }
            ManagerNote::Trickle(sid, t) => {
                let _ = self.sig.trickle(&sid, t);
            }
            ManagerNote::Ready(sid, link) => {
                let peer = self.links.get(&sid).map(|e| e.peer.clone());
                match (self.waiting.remove(&sid), peer) {
                    (Some(w), _) => {
                        let _ = w.send(Ok(*link));
                    }
                    (None, Some(peer)) => {
                        let _ = self.incoming.try_send(Ok((peer, *link)));
                    }
                    (None, None) => {}
                }
            }
            ManagerNote::Failed(sid, e, reason) => {
                tracing::info!(%sid, %e, "link over");
                self.sig.terminate(&sid, reason, Some(e.to_string()));
                let entry = self.links.remove(&sid);
                self.offers.remove(&sid);
                match (self.waiting.remove(&sid), entry) {
                    (Some(w), _) => {
                        let _ = w.send(Err(e));
                    }
                    (None, Some(entry)) if !matches!(e, LinkError::Closed) => {
                        let _ = self.incoming.try_send(Err((entry.peer, e)));
                    }
                    _ => {}
                }
            }
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.sig.poll_output() {
            match o {
                SignalOutput::Send { to, jingle, tag } => {
                    let (t, acks) = (self.transport.clone(), self.acks_tx.clone());
                    tokio::spawn(async move {
                        let r = t.request(to, jingle).await;
                        let _ = acks.send((tag, r));
                    });
                }
                SignalOutput::Event(e) => self.on_event(e),
            }
        }
    }

    fn on_event(&mut self, e: SignalEvent<A>) {
        match e {
            SignalEvent::Offer {
                sid,
                from,
                record,
                transport,
            } => {
                if let Err(why) = self.check(&from, &record) {
                    tracing::warn!(%from, %why, "offer refused");
                    self.sig
                        .terminate(&sid, Reason::SecurityError, Some(why.clone()));
                    let peer = from.to_string();
                    let _ = self
                        .incoming
                        .try_send(Err((from, LinkError::Refused { peer, reason: why })));
                    return;
                }
                let party = from.party();
                if let Some(i) = self.adopt.iter().position(|(p, _)| *p == party) {
                    let (_, w) = self.adopt.remove(i);
                    self.waiting.insert(sid.clone(), w);
                }
                self.new_link(sid, from, Role::Responder, Some((record, transport)));
            }
            SignalEvent::Answer {
                sid,
                from,
                record,
                transport,
            } => {
                let checked = self.check(&from, &record);
                let Some(entry) = self.links.get_mut(&sid) else {
                    return;
                };
                if let Err(why) = checked {
                    tracing::warn!(%from, %why, "answer refused");
                    let _ = entry.to_driver.send(SigNote::Ended(why.clone()));
                    self.sig.terminate(&sid, Reason::SecurityError, Some(why));
                    return;
                }
                entry.peer = from;
                let _ = entry
                    .to_driver
                    .send(SigNote::Answer(Box::new(record), transport));
            }
            SignalEvent::Transport { sid, transport } => {
                if let Some(entry) = self.links.get(&sid) {
                    let _ = entry.to_driver.send(SigNote::Remote(transport));
                }
            }
            SignalEvent::Superseded { sid } => {
                if let Some(entry) = self.links.remove(&sid) {
                    if let Some(w) = self.waiting.remove(&sid) {
                        self.adopt.push((entry.peer.party(), w));
                    }
                    let _ = entry.to_driver.send(SigNote::Ended("superseded".into()));
                }
            }
            SignalEvent::Ended {
                sid, reason, text, ..
            } => {
                if let Some(entry) = self.links.get(&sid) {
                    let why = format!(
                        "{reason:?}{}",
                        text.map(|t| format!(": {t}")).unwrap_or_default()
                    );
                    let _ = entry.to_driver.send(SigNote::Ended(why));
                }
            }
        }
    }
}
