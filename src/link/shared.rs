//! The state behind a [`Link`](super::Link), shared by its handle, the driver and two tasks:
//! one reader per path feeds received packets into the tunnel, one timer task runs handshake
//! retries, keepalives and probes, woken early only when a deadline moved closer.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast, mpsc};

use super::ice::{PathInfo, PathKind};
use super::link::{LinkEvent, LinkState, LinkStatus, PATH_MTU, PathConn};
use super::tunnel::{DownReason, Output, Tunnel, TunnelEvent, TunnelStats, buffer_for};

pub(super) struct Core {
    pub(super) tunnel: Tunnel,
    pub(super) conn: Option<PathConn>,
    /// The id of the path `conn` is (each path gets the next of `path_ids`).
    pub(super) path_gen: u32,
    pub(super) path_ids: u32,
    /// A relayed path the peer may move the link to: taken when an authentic packet arrives
    /// on it (see [`Shared::add_standby`]).
    pub(super) standby: Option<Standby>,
    pub(super) status: LinkStatus,
    /// When the timer task wakes next (`None`: it is not asleep): it is woken early only when
    /// the tunnel's next deadline moved before that, not for every packet.
    pub(super) timer_at: Option<Instant>,
}

impl Core {
    /// Whether the timer task must wake now to reschedule.
    pub(super) fn timer_late(&self) -> bool {
        match (self.tunnel.poll_timeout(), self.timer_at) {
            (_, None) => true,
            (Some((t, _)), Some(at)) => t < at,
            (None, Some(_)) => false,
        }
    }
}

/// A connected path that does not carry the link (yet).
pub(super) struct Standby {
    id: u32,
    conn: PathConn,
    path: PathInfo,
    /// The ICE generation it came from.
    generation: u8,
}

/// State shared by the handle, the reader and timer tasks and the driver.
pub(super) struct Shared {
    core: Mutex<Core>,
    pub(super) wake: Notify,
    pub(super) events: broadcast::Sender<LinkEvent>,
    datagrams: mpsc::Sender<Vec<u8>>,
    /// Tells the driver the path is stale (restart ICE) or the tunnel is over.
    pub(super) to_driver: mpsc::UnboundedSender<DriverNote>,
}

/// What the tunnel tells the driver.
#[derive(Debug, Clone)]
pub(super) enum DriverNote {
    Up,
    Stale,
    Down(DownReason),
    Refused(String),
    /// The peer moved the link to the standby path of this ICE generation.
    Followed(u8),
}

impl Shared {
    pub(super) fn new(
        tunnel: Tunnel,
        to_driver: mpsc::UnboundedSender<DriverNote>,
    ) -> (Arc<Shared>, mpsc::Receiver<Vec<u8>>) {
        let (datagrams, rx) = mpsc::channel(1024);
        // Up, down and path changes: a few per link's life.
        let (events, _) = broadcast::channel(16);
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                tunnel,
                conn: None,
                path_gen: 0,
                path_ids: 0,
                standby: None,
                timer_at: None,
                status: LinkStatus {
                    state: LinkState::Connecting,
                    path: None,
                    rtt: None,
                    observed_by_peer: None,
                    stats: TunnelStats::default(),
                    restarts: 0,
                },
            }),
            wake: Notify::new(),
            events,
            datagrams,
            to_driver,
        });
        (shared, rx)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock is a bug elsewhere; the state is still consistent
        // enough to shut down, so take it anyway.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the link to a new path; the first path of an initiator starts the handshake.
    /// Returns packets to send on it.
    pub(super) fn set_path(self: &Arc<Self>, conn: PathConn, path: PathInfo) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut c = self.lock();
        c.path_ids += 1;
        c.path_gen = c.path_ids;
        c.standby = None;
        c.conn = Some(conn.clone());
        c.tunnel.set_observed(path.remote);
        c.tunnel.arm(Instant::now());
        let old = c.status.path.replace(path.clone());
        if c.tunnel.is_up() {
            c.status.state = LinkState::Up;
            if old.as_ref() != Some(&path) {
                let _ = self.events.send(LinkEvent::PathChanged(path));
            }
        } else if c.tunnel.role() == super::Role::Initiator {
            let mut buf = vec![0u8; buffer_for(0)];
            if let Some(n) = c.tunnel.initiate(Instant::now(), &mut buf) {
                tracing::debug!(n, "handshake initiation");
                buf.truncate(n);
                out.push(buf);
            }
        }
        let gen_now = c.path_gen;
        drop(c);
        spawn_reader(self.clone(), conn, gen_now);
        self.wake.notify_one();
        out
    }

    /// Listens on a path without moving the link to it: a healthy link keeps its path when
    /// the peer's ICE restart finds only a relay, but the peer may have moved already (it
    /// lost the old path; we did not notice), so its first authentic packet there moves
    /// us too.
    pub(super) fn add_standby(self: &Arc<Self>, conn: PathConn, path: PathInfo, generation: u8) {
        let id = {
            let mut c = self.lock();
            c.path_ids += 1;
            let id = c.path_ids;
            c.standby = Some(Standby {
                id,
                conn: conn.clone(),
                path,
                generation,
            });
            id
        };
        spawn_reader(self.clone(), conn, id);
    }

    /// Moves the link to the standby path `id`, if that is the standby.
    fn follow(&self, c: &mut Core, id: u32) {
        if c.standby.as_ref().is_none_or(|s| s.id != id) {
            return;
        }
        let Some(s) = c.standby.take() else { return };
        tracing::info!(kind = s.path.kind.as_str(), remote = %s.path.remote, "the peer moved the link: following");
        c.conn = Some(s.conn);
        c.path_gen = id;
        c.tunnel.set_observed(s.path.remote);
        if c.tunnel.is_up() {
            c.status.state = LinkState::Up;
        }
        c.status.path = Some(s.path.clone());
        let _ = self.events.send(LinkEvent::PathChanged(s.path));
        let _ = self.to_driver.send(DriverNote::Followed(s.generation));
    }

    /// Runs tunnel events into status, link events and driver notes; whether there were any.
    fn drain_events(&self, c: &mut Core) -> bool {
        let mut any = false;
        while let Some(e) = c.tunnel.poll_event() {
            any = true;
            match e {
                TunnelEvent::Up => {
                    c.status.state = LinkState::Up;
                    let _ = self.to_driver.send(DriverNote::Up);
                    if let Some(p) = &c.status.path {
                        let _ = self.events.send(LinkEvent::Up(p.clone()));
                    }
                }
                TunnelEvent::Rtt(d) => c.status.rtt = Some(d),
                TunnelEvent::Observed(a) => c.status.observed_by_peer = Some(a),
                TunnelEvent::Rekeyed => {}
                TunnelEvent::PathStale => {
                    c.status.state = LinkState::Restarting;
                    let _ = self.events.send(LinkEvent::Stale);
                    let _ = self.to_driver.send(DriverNote::Stale);
                }
                TunnelEvent::Refused(e) => {
                    let _ = self.events.send(LinkEvent::Refused(e.to_string()));
                    let _ = self.to_driver.send(DriverNote::Refused(e.to_string()));
                }
                TunnelEvent::Down(r) => {
                    c.status.state = LinkState::Down;
                    let why = match r {
                        DownReason::Silence => "silence".to_string(),
                        DownReason::PeerClosed(_) => "closed by the peer".into(),
                        DownReason::HandshakeTimeout => "no handshake".into(),
                        DownReason::LocalClose => "closed".into(),
                    };
                    let _ = self.events.send(LinkEvent::Down(why));
                    let _ = self.to_driver.send(DriverNote::Down(r));
                }
            }
        }
        c.status.stats = c.tunnel.stats();
        any
    }

    /// Sends a close message on the current path and stops.
    pub(super) async fn close(&self) {
        let (conn, pkt) = {
            let mut c = self.lock();
            let mut buf = vec![0u8; buffer_for(1)];
            let n = c.tunnel.close(Instant::now(), 0, &mut buf);
            self.drain_events(&mut c);
            (c.conn.take(), n.map(|n| buf[..n].to_vec()))
        };
        if let (Some(conn), Some(p)) = (conn, pkt) {
            let _ = conn.send(&p).await;
        }
        self.wake.notify_one();
    }

    /// A path ICE called peer-reflexive whose remote end turned out to be one of the peer's
    /// relay candidates (the candidate came after the checks) is a TURN path.
    pub(super) fn relabel_relayed(&self, relays: &HashSet<SocketAddr>) {
        let mut c = self.lock();
        if let Some(p) = c.status.path.as_mut()
            && p.kind == PathKind::PeerReflexive
            && relays.contains(&p.remote)
        {
            p.kind = PathKind::TurnRelay;
            let p = p.clone();
            let _ = self.events.send(LinkEvent::PathChanged(p));
        }
    }

    pub(super) fn status(&self) -> LinkStatus {
        let mut c = self.lock();
        c.status.stats = c.tunnel.stats();
        c.status.clone()
    }

    pub(super) fn set_restarts(&self, n: u32) {
        self.lock().status.restarts = n;
    }
}

thread_local! {
    /// Where a reader decrypts a packet: used only between two awaits, so one per thread
    /// does, where one per link cost 8 KiB each.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; PATH_MTU]);
}

fn spawn_reader(shared: Arc<Shared>, conn: PathConn, generation: u32) {
    tokio::spawn(async move {
        // Nothing longer comes out of webrtc-ice.
        let mut buf = vec![0u8; PATH_MTU];
        loop {
            let n = match conn.recv(&mut buf).await {
                Ok(n) => n,
                // A datagram longer than the buffer is dropped, not the reader.
                Err(e) if e.to_string().contains("short") => continue,
                Err(e) => {
                    tracing::debug!(%e, generation, "path reader ends");
                    return;
                }
            };
            tracing::trace!(n, generation, "packet in");
            let reply = {
                let mut c = shared.lock();
                if c.conn.is_none() {
                    return;
                }
                let other_path = c.path_gen != generation;
                let authentic_before = c.tunnel.stats().rx_packets;
                let r = SCRATCH.with_borrow_mut(|out| {
                    match c.tunnel.decapsulate(Instant::now(), &buf[..n], out) {
                        Output::Done => None,
                        Output::Transmit(p) => Some(p.to_vec()),
                        Output::Datagram(d) => {
                            if shared.datagrams.try_send(d.to_vec()).is_err() {
                                tracing::trace!("receiver slow: datagram dropped");
                            }
                            None
                        }
                    }
                });
                if other_path && c.tunnel.stats().rx_packets > authentic_before {
                    shared.follow(&mut c, generation);
                }
                let wake = shared.drain_events(&mut c) || c.timer_late();
                drop(c);
                if wake {
                    shared.wake.notify_one();
                }
                r
            };
            if let Some(p) = reply {
                let _ = conn.send(&p).await;
            }
        }
    });
}

/// How long the timer task sleeps when the tunnel has no deadline.
const IDLE_WAKE: Duration = Duration::from_secs(3600);

/// Runs the tunnel's timers until it is closed.
pub(super) fn spawn_timers(shared: Arc<Shared>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; buffer_for(64)];
        loop {
            let (deadline, packets, conn, closed) = {
                let mut c = shared.lock();
                let now = Instant::now();
                let mut packets = Vec::new();
                while let Some(n) = c.tunnel.update_timers(now, &mut buf) {
                    packets.push(buf[..n].to_vec());
                }
                shared.drain_events(&mut c);
                let closed = c.status.state == LinkState::Down && !c.tunnel.is_up();
                let deadline = c.tunnel.poll_timeout();
                c.timer_at = Some(deadline.map_or(now + IDLE_WAKE, |d| d.0));
                (deadline, packets, c.conn.clone(), closed)
            };
            if let Some(conn) = conn {
                for p in packets {
                    let _ = conn.send(&p).await;
                }
            }
            if closed && deadline.is_none() {
                return;
            }
            let sleep = match deadline {
                Some((at, _)) => tokio::time::sleep_until(at.into()),
                None => tokio::time::sleep(IDLE_WAKE),
            };
            tokio::select! {
                _ = sleep => {}
                _ = shared.wake.notified() => {}
            }
        }
    });
}
