//! Services on the ring (DESIGN.md §8), run by the daemon for local apps: datagrams,
//! requests, streams, broadcast, DHT and names. Apps reach them over the app socket
//! (`services.sock` beside the control socket) through [`crate::api::Client`].
//!
//! Unicast traffic between two nodes rides one QUIC connection per pair, carried in ring
//! datagrams ([`quic_socket`]) whatever the path (direct, TURN, relay edge, overlay hops),
//! with TLS bound to both nodes' identity keys ([`tls`]): forwarders read nothing, and each
//! end knows who the other is. Broadcasts and DHT values are signed instead ([`signed`]).
//!
//! - [`peer`]: QUIC connections, what arrives on them and what we open;
//! - [`app_socket`]: the daemon's side of an app's connection;
//! - [`signed`], [`tls`], [`quic_socket`]: as above.
#![warn(missing_docs)]

pub mod app_socket;
pub mod peer;
pub mod quic_socket;
pub mod signed;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brunet_compat::address::Address as RingAddress;
use tokio::sync::mpsc;
use xmpp_ext::NodeSecret;

use crate::api::frame::{Ev, Frame};
use crate::runtime::RuntimeHandle;
use crate::runtime::app::Inbound;
use quic_socket::{AddrMap, RingSocket};

/// Why a service could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// Building the TLS configuration failed.
    #[error("QUIC TLS setup: {0}")]
    Tls(String),
    /// The QUIC endpoint could not start.
    #[error("QUIC endpoint: {0}")]
    Endpoint(#[from] std::io::Error),
}

/// A message for one app connection.
pub type AppTx = mpsc::Sender<Frame>;

/// How long a peer connection may stay idle before QUIC closes it (keepalives stop before).
const IDLE: Duration = Duration::from_secs(60);

/// The services of every ring the node runs.
#[derive(Clone)]
pub struct Services {
    shared: Arc<Shared>,
}

struct Shared {
    runtime: RuntimeHandle,
    secret: NodeSecret,
    client: quinn::ClientConfig,
    server: quinn::ServerConfig,
    rings: Mutex<Vec<Option<Arc<RingServices>>>>,
    next_token: AtomicU64,
    internal: Mutex<HashMap<String, Handler>>,
}

/// A request service the daemon answers itself: ring name, proved sender, payload → answer.
pub type Handler = Arc<
    dyn Fn(
            String,
            RingAddress,
            Vec<u8>,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u8>, String>> + Send>>
        + Send
        + Sync,
>;

/// One ring's services.
pub struct RingServices {
    /// The runtime's index of the ring.
    pub index: usize,
    /// Its local name.
    pub name: String,
    /// Our address in it.
    pub address: RingAddress,
    endpoint: quinn::Endpoint,
    socket: Arc<RingSocket>,
    inbox: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    map: Arc<AddrMap>,
    conns: Mutex<HashMap<RingAddress, quinn::Connection>>,
    dialing: Mutex<HashMap<RingAddress, Arc<tokio::sync::Mutex<()>>>>,
    subs: Mutex<HashMap<String, Vec<AppTx>>>,
    listeners: Mutex<HashMap<String, AppTx>>,
    pending_streams: Mutex<HashMap<u64, peer::PendingStream>>,
    pending_requests: Mutex<HashMap<u64, quinn::SendStream>>,
    /// What was dropped, for status.
    pub counters: Counters,
}

/// Drops and refusals, each counted (and the first of each kind logged).
#[derive(Debug, Default)]
pub struct Counters {
    /// Datagrams or requests for a service nobody here subscribes to.
    pub no_service: AtomicU64,
    /// Broadcasts with a bad signature or sender.
    pub bad_broadcast: AtomicU64,
    /// Messages an app was too slow to take.
    pub app_slow: AtomicU64,
    /// Connections whose certificate did not match the ring address they came from.
    pub wrong_key: AtomicU64,
    /// Malformed datagrams or stream headers on a peer connection.
    pub malformed: AtomicU64,
}

impl Counters {
    /// Counts one; true for the first of its kind (log that one).
    pub fn bump(c: &AtomicU64) -> bool {
        c.fetch_add(1, Ordering::Relaxed) == 0
    }
}

impl Services {
    /// Starts the services for every ring `runtime` runs, now and later.
    pub async fn spawn(
        secret: &NodeSecret,
        runtime: RuntimeHandle,
    ) -> Result<Services, ServiceError> {
        let shared = Arc::new(Shared {
            runtime: runtime.clone(),
            secret: NodeSecret::from_bytes(&secret.to_bytes()),
            client: peer::tuned_client(tls::client_config(secret)?),
            server: peer::tuned_server(tls::server_config(secret)?),
            rings: Mutex::new(Vec::new()),
            next_token: AtomicU64::new(1),
            internal: Mutex::new(HashMap::new()),
        });
        let (tx, mut rx) = mpsc::channel(8192);
        runtime.attach_services(tx).await;
        let services = Services { shared };
        let s = services.clone();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                s.inbound(m);
            }
        });
        Ok(services)
    }

    /// Answers requests for `service` in the daemon itself (on every ring), before any app.
    pub fn handle(&self, service: &str, h: Handler) {
        if let Ok(mut m) = self.shared.internal.lock() {
            m.insert(service.to_owned(), h);
        }
    }

    fn internal(&self, service: &str) -> Option<Handler> {
        self.shared.internal.lock().ok()?.get(service).cloned()
    }

    /// Asks `to`'s `service` in ring `name` from the daemon itself.
    pub async fn request(
        &self,
        name: &str,
        to: RingAddress,
        service: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, String> {
        let ring = self.ring(Some(name))?;
        peer::request(self, &ring, to, service, payload, timeout).await
    }

    /// The node's secret (to sign broadcasts and values).
    pub fn secret(&self) -> &NodeSecret {
        &self.shared.secret
    }

    /// The runtime.
    pub fn runtime(&self) -> &RuntimeHandle {
        &self.shared.runtime
    }

    /// A fresh token for requests and streams handed to apps.
    pub fn token(&self) -> u64 {
        self.shared.next_token.fetch_add(1, Ordering::Relaxed)
    }

    /// The ring named `name`, or the only ring when `name` is `None`.
    pub fn ring(&self, name: Option<&str>) -> Result<Arc<RingServices>, String> {
        let rings = self
            .shared
            .rings
            .lock()
            .map_err(|_| "poisoned".to_owned())?;
        let live: Vec<&Arc<RingServices>> = rings.iter().flatten().collect();
        match name {
            Some(n) => live
                .into_iter()
                .find(|r| r.name == n)
                .cloned()
                .ok_or_else(|| {
                    format!("this node is not in a ring named {n:?}; see `chamber ring list`")
                }),
            None => match live.as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err(
                    "this node is in no ring yet; create or join one (`chamber ring create NAME`)"
                        .into(),
                ),
                _ => Err("this node is in several rings; name the one to use".into()),
            },
        }
    }

    fn ring_at(&self, index: usize) -> Option<Arc<RingServices>> {
        self.shared.rings.lock().ok()?.get(index).cloned().flatten()
    }

    fn inbound(&self, m: Inbound) {
        match m {
            Inbound::RingUp {
                ring,
                name,
                address,
            } => {
                if let Err(e) = self.ring_up(ring, name.clone(), address) {
                    tracing::warn!(ring = %name, %e, "services could not start on the ring");
                }
            }
            Inbound::RingGone { ring } => {
                let gone = self
                    .shared
                    .rings
                    .lock()
                    .ok()
                    .and_then(|mut v| v.get_mut(ring).and_then(Option::take));
                if let Some(r) = gone {
                    r.endpoint.close(0u32.into(), b"left the ring");
                }
            }
            Inbound::Quic { ring, src, packet } => {
                if let Some(r) = self.ring_at(ring) {
                    let from = r.map.socket_of(&src);
                    let _ = r.inbox.try_send((from, packet));
                }
            }
            Inbound::Broadcast {
                ring,
                src,
                hops,
                data,
            } => {
                if let Some(r) = self.ring_at(ring) {
                    r.broadcast_in(src, hops, &data);
                }
            }
        }
    }

    fn ring_up(
        &self,
        index: usize,
        name: String,
        address: RingAddress,
    ) -> Result<(), ServiceError> {
        let map = Arc::new(AddrMap::default());
        let (socket, inbox) =
            RingSocket::new(index, &address, self.shared.runtime.clone(), map.clone());
        let mut cfg = quinn::EndpointConfig::default();
        cfg.max_udp_payload_size(peer::MTU)
            .map_err(|e| ServiceError::Tls(e.to_string()))?;
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            cfg,
            Some(self.shared.server.clone()),
            socket.clone(),
            Arc::new(quinn::TokioRuntime),
        )?;
        let r = Arc::new(RingServices {
            index,
            name: name.clone(),
            address,
            endpoint,
            socket,
            inbox,
            map,
            conns: Mutex::new(HashMap::new()),
            dialing: Mutex::new(HashMap::new()),
            subs: Mutex::new(HashMap::new()),
            listeners: Mutex::new(HashMap::new()),
            pending_streams: Mutex::new(HashMap::new()),
            pending_requests: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        });
        if let Ok(mut rings) = self.shared.rings.lock() {
            if rings.len() <= index {
                rings.resize(index + 1, None);
            }
            rings[index] = Some(r.clone());
        }
        tokio::spawn(peer::accept_loop(self.clone(), r));
        tracing::info!(ring = %name, "services up");
        Ok(())
    }
}

impl RingServices {
    /// Delivers `ev` and `payload` to every app subscribed to `service`; false when none is.
    pub fn to_subscribers(&self, service: &str, ev: &Ev, payload: &[u8]) -> bool {
        let Ok(mut subs) = self.subs.lock() else {
            return false;
        };
        let Some(list) = subs.get_mut(service) else {
            return false;
        };
        list.retain(|tx| !tx.is_closed());
        for tx in list.iter() {
            if tx.try_send(Frame::message(ev, payload.to_vec())).is_err()
                && Counters::bump(&self.counters.app_slow)
            {
                tracing::warn!(
                    service,
                    "an app is too slow to take its messages; dropping (further drops counted)"
                );
            }
        }
        !list.is_empty()
    }

    /// One subscriber of `service` (requests go to one app only).
    pub fn subscriber(&self, service: &str) -> Option<AppTx> {
        let mut subs = self.subs.lock().ok()?;
        let list = subs.get_mut(service)?;
        list.retain(|tx| !tx.is_closed());
        list.first().cloned()
    }

    /// Adds an app's connection as a subscriber of `service`.
    pub fn subscribe(&self, service: &str, tx: AppTx) {
        if let Ok(mut subs) = self.subs.lock() {
            subs.entry(service.to_owned()).or_default().push(tx);
        }
    }

    /// Sets the app connection told of incoming streams for `service`.
    pub fn listen(&self, service: &str, tx: AppTx) -> Result<(), String> {
        let mut l = self.listeners.lock().map_err(|_| "poisoned".to_owned())?;
        if let Some(old) = l.get(service)
            && !old.is_closed()
        {
            return Err(format!(
                "another app already listens for {service:?} streams"
            ));
        }
        l.insert(service.to_owned(), tx);
        Ok(())
    }

    fn broadcast_in(&self, src: RingAddress, hops: u16, data: &[u8]) {
        match signed::open_broadcast(&src, data) {
            Ok((service, payload)) => {
                let ev = Ev::Datagram {
                    from: src.to_string(),
                    service: service.clone(),
                    broadcast_hops: Some(hops),
                };
                self.to_subscribers(&service, &ev, &payload);
            }
            Err(e) => {
                if Counters::bump(&self.counters.bad_broadcast) {
                    tracing::warn!(%src, %e, "broadcast dropped (further ones counted)");
                }
            }
        }
    }

    /// Packets dropped on the way out.
    pub fn quic_dropped(&self) -> u64 {
        self.socket.dropped.load(Ordering::Relaxed)
    }
}
