//! The library API for apps on a chamber ring. An app talks to the local daemon (`chamber
//! up`) over its app socket; the daemon carries everything over the ring, end-to-end
//! encrypted between the two nodes (QUIC with TLS bound to both node keys) whether the path
//! is a direct link, TURN, a two-hop relay or several overlay hops.
//!
//! - **Datagrams** to an address and **subscriptions** by service name ([`Client::send`],
//!   [`Client::subscribe`]): unreliable, at most [`MAX_DATAGRAM`] bytes.
//! - **Requests** with a timeout ([`Client::request`]), answered by a subscriber's
//!   [`Incoming::respond`].
//! - **Broadcast** to the ring or an address range ([`Client::broadcast`]), signed by the
//!   sender so every member knows who sent it.
//! - **DHT** put/get/remove with a lifetime ([`Client::dht_put`]); values are signed by
//!   their writer and checked on read ([`DhtEntry::writer`]).
//! - **Streams**: reliable, congestion-controlled byte streams (QUIC) ([`Client::connect`],
//!   [`Client::listen`]). A stream that fails ends with an error, never a silent truncation.
//! - **Names**: a friend's JID, a name published in the DHT, or an address
//!   ([`Client::resolve`], [`Client::publish_name`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), chamber::api::ApiError> {
//! use chamber::api::{Client, Event};
//! let client = Client::connect(&chamber::api::default_socket(None)?, None).await?;
//! println!("I am {} in ring {}", client.address(), client.ring());
//! let mut inbox = client.subscribe("echo").await?;
//! let friend = client.resolve("bob@example.org").await?;
//! client.send(&friend, "echo", b"hello").await?;
//! while let Some(ev) = inbox.next().await {
//!     if let Event::Datagram(d) = ev {
//!         println!("{} says {:?}", d.from, String::from_utf8_lossy(&d.payload));
//!     }
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod frame;
mod stream;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brunet_compat::address::Address;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use frame::{Ev, Frame, Op, read_frame, write_frame};
pub use stream::{RingStream, StreamError};

/// Largest datagram payload (QUIC datagrams of 1200-byte packets, less the service name).
pub const MAX_DATAGRAM: usize = 1000;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No daemon at the socket.
    #[error("cannot reach the chamber daemon at {path} ({source}); start it with `chamber up`")]
    NotRunning {
        /// The app socket.
        path: PathBuf,
        /// The connect error.
        source: std::io::Error,
    },
    /// The daemon refused or failed the request.
    #[error("{0}")]
    Refused(String),
    /// The connection to the daemon broke.
    #[error("the connection to the chamber daemon broke: {0}")]
    Broken(String),
    /// Configuration could not be read (for [`default_socket`]).
    #[error("{0}")]
    Config(String),
}

/// The app socket of the daemon configured by `config` (default: the user's configuration).
pub fn default_socket(config: Option<&Path>) -> Result<PathBuf, ApiError> {
    let paths = crate::config::Paths::from_env().map_err(|e| ApiError::Config(e.to_string()))?;
    let file = config.map(Path::to_path_buf).unwrap_or(paths.config_file);
    let control = if file.exists() {
        crate::config::Config::load(&file)
            .map_err(|e| ApiError::Config(e.to_string()))?
            .control_socket
            .unwrap_or(paths.control_socket)
    } else {
        paths.control_socket
    };
    Ok(crate::services::app_socket::socket_path(&control))
}

/// A datagram or broadcast that arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Who sent it (proved by its node key).
    pub from: Address,
    /// The service it was sent to.
    pub service: String,
    /// `Some(hops)` when it came as a broadcast.
    pub broadcast_hops: Option<u16>,
    /// The bytes.
    pub payload: Vec<u8>,
}

/// A request waiting for this app's answer.
pub struct Incoming {
    /// Who asks.
    pub from: Address,
    /// The service asked.
    pub service: String,
    /// The request's bytes.
    pub payload: Vec<u8>,
    token: u64,
    out: mpsc::Sender<Frame>,
}

impl Incoming {
    /// Answers with `answer` (or refuses with `Err(message)`).
    pub async fn respond(self, answer: Result<Vec<u8>, String>) -> Result<(), ApiError> {
        let (payload, error) = match answer {
            Ok(b) => (b, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let op = Op::Respond {
            token: self.token,
            error,
        };
        self.out
            .send(Frame::message(&op, payload))
            .await
            .map_err(|_| ApiError::Broken("closed".into()))
    }
}

/// What a subscription yields.
pub enum Event {
    /// A datagram or broadcast.
    Datagram(Datagram),
    /// A request to answer.
    Request(Incoming),
}

/// A value read from the DHT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtEntry {
    /// The member whose key signed it.
    pub writer: Address,
    /// The bytes.
    pub value: Vec<u8>,
}

/// The events for the services this client subscribed to.
pub struct Subscription {
    rx: mpsc::Receiver<Event>,
}

impl Subscription {
    /// The next event; `None` once the daemon connection closed.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }
}

/// Incoming streams for a service.
pub struct Listener {
    rx: mpsc::Receiver<(u64, Address)>,
    socket: PathBuf,
    ring: String,
}

impl Listener {
    /// The next stream, accepted, with who opened it.
    pub async fn accept(&mut self) -> Result<(RingStream, Address), ApiError> {
        let (token, from) = self
            .rx
            .recv()
            .await
            .ok_or_else(|| ApiError::Broken("the daemon connection closed".into()))?;
        let s = stream::open(&self.socket, &self.ring, Op::Accept { token }).await?;
        Ok((s, from))
    }
}

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<(Ev, Vec<u8>)>>>>;
type EventSlot = Arc<Mutex<Option<mpsc::Sender<Event>>>>;
type StreamSlot = Arc<Mutex<Option<mpsc::Sender<(u64, Address)>>>>;

/// A connection to the local daemon, working in one ring. Cheap to share behind an `Arc`;
/// every method takes `&self`.
pub struct Client {
    socket: PathBuf,
    ring: String,
    address: Address,
    out: mpsc::Sender<Frame>,
    waiters: Waiters,
    next: AtomicU64,
    events: EventSlot,
    streams: StreamSlot,
}

impl Client {
    /// Connects to the daemon's app socket, in the ring named `ring` (`None`: the node's only
    /// ring).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use chamber::api::{ApiError, Client};
    /// let missing = std::path::Path::new("/nonexistent/chamber/services.sock");
    /// let err = Client::connect(missing, None).await.err().unwrap();
    /// assert!(matches!(err, ApiError::NotRunning { .. }));
    /// assert!(err.to_string().contains("chamber up")); // says what to do
    /// # });
    /// ```
    pub async fn connect(socket: &Path, ring: Option<&str>) -> Result<Client, ApiError> {
        let s = UnixStream::connect(socket)
            .await
            .map_err(|source| ApiError::NotRunning {
                path: socket.into(),
                source,
            })?;
        let (mut rx, mut wx) = s.into_split();
        let hello = Frame::message(
            &Op::Hello {
                ring: ring.map(str::to_owned),
            },
            Vec::new(),
        );
        write_frame(&mut wx, &hello)
            .await
            .map_err(|e| ApiError::Broken(e.to_string()))?;
        let (ring, address) = welcome(&mut rx).await?;
        let (out, mut out_rx) = mpsc::channel::<Frame>(1024);
        tokio::spawn(async move {
            while let Some(f) = out_rx.recv().await {
                if write_frame(&mut wx, &f).await.is_err() {
                    break;
                }
            }
        });
        let client = Client {
            socket: socket.into(),
            ring,
            address,
            out,
            waiters: Arc::default(),
            next: AtomicU64::new(1),
            events: Arc::default(),
            streams: Arc::default(),
        };
        tokio::spawn(reader(
            rx,
            client.waiters.clone(),
            client.events.clone(),
            client.streams.clone(),
            client.out.clone(),
        ));
        Ok(client)
    }

    /// Our address in the ring.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The ring's local name.
    pub fn ring(&self) -> &str {
        &self.ring
    }

    async fn put(&self, op: Op, payload: Vec<u8>) -> Result<(), ApiError> {
        self.out
            .send(Frame::message(&op, payload))
            .await
            .map_err(|_| ApiError::Broken("the daemon connection closed".into()))
    }

    async fn call(
        &self,
        make: impl FnOnce(u64) -> Op,
        payload: Vec<u8>,
    ) -> Result<(Ev, Vec<u8>), ApiError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.insert(id, tx);
        }
        self.put(make(id), payload).await?;
        rx.await
            .map_err(|_| ApiError::Broken("the daemon connection closed".into()))
    }

    async fn call_done(
        &self,
        make: impl FnOnce(u64) -> Op,
        payload: Vec<u8>,
    ) -> Result<(), ApiError> {
        match self.call(make, payload).await? {
            (Ev::Done { error: None, .. }, _) => Ok(()),
            (Ev::Done { error: Some(e), .. }, _) => Err(ApiError::Refused(e)),
            (ev, _) => Err(ApiError::Broken(format!("unexpected answer {ev:?}"))),
        }
    }

    /// Receives datagrams, broadcasts and requests for `service` (on one shared
    /// [`Subscription`]; subscribe to every service first, then read).
    pub async fn subscribe(&self, service: &str) -> Result<Subscription, ApiError> {
        let (tx, rx) = mpsc::channel(4096);
        if let Ok(mut e) = self.events.lock()
            && e.as_ref().is_none_or(mpsc::Sender::is_closed)
        {
            *e = Some(tx);
        }
        // Confirmed, so whatever is sent to the service from now on reaches this app.
        let service = service.to_owned();
        self.call_done(|id| Op::Subscribe { service, id }, Vec::new())
            .await?;
        Ok(Subscription { rx })
    }

    /// Sends a datagram to `to`'s `service`; fails if it cannot be sent (no route, too big),
    /// not if it is lost on the way.
    pub async fn send(&self, to: &Address, service: &str, payload: &[u8]) -> Result<(), ApiError> {
        if payload.len() > MAX_DATAGRAM {
            return Err(ApiError::Refused(format!(
                "a datagram carries at most {MAX_DATAGRAM} bytes ({} given); use a stream",
                payload.len()
            )));
        }
        let (to, service) = (to.to_string(), service.to_owned());
        self.call_done(|id| Op::Send { id, to, service }, payload.to_vec())
            .await
    }

    /// Sends a datagram without waiting to hear it left (for high rates, e.g. a VPN).
    pub async fn send_nowait(
        &self,
        to: &Address,
        service: &str,
        payload: &[u8],
    ) -> Result<(), ApiError> {
        let op = Op::Send {
            id: 0,
            to: to.to_string(),
            service: service.into(),
        };
        self.put(op, payload.to_vec()).await
    }

    /// Asks `to`'s `service` and waits at most `timeout` for the answer.
    pub async fn request(
        &self,
        to: &Address,
        service: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, ApiError> {
        let (to, service) = (to.to_string(), service.to_owned());
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        match self
            .call(
                |id| Op::Request {
                    id,
                    to,
                    service,
                    timeout_ms,
                },
                payload.to_vec(),
            )
            .await?
        {
            (Ev::Reply { error: None, .. }, answer) => Ok(answer),
            (Ev::Reply { error: Some(e), .. }, _) => Err(ApiError::Refused(e)),
            (ev, _) => Err(ApiError::Broken(format!("unexpected answer {ev:?}"))),
        }
    }

    /// Broadcasts to every member (`end: None`) or to the clockwise range from us to `end`.
    pub async fn broadcast(
        &self,
        service: &str,
        payload: &[u8],
        end: Option<&Address>,
    ) -> Result<(), ApiError> {
        let (service, end) = (service.to_owned(), end.map(ToString::to_string));
        self.call_done(|id| Op::Broadcast { id, service, end }, payload.to_vec())
            .await
    }

    /// Stores `value` (at most 1 KB) under `key` for `ttl`, signed with our node key.
    pub async fn dht_put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), ApiError> {
        let key = key.to_owned();
        let ttl_s = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX);
        self.call_done(|id| Op::DhtPut { id, key, ttl_s }, value.to_vec())
            .await
    }

    /// The values under `key` whose signatures check.
    pub async fn dht_get(&self, key: &str) -> Result<Vec<DhtEntry>, ApiError> {
        let key = key.to_owned();
        match self.call(|id| Op::DhtGet { id, key }, Vec::new()).await? {
            (Ev::Values { values, .. }, _) => values
                .into_iter()
                .map(|(w, v)| {
                    Ok(DhtEntry {
                        writer: w
                            .parse()
                            .map_err(|_| ApiError::Broken("bad writer".into()))?,
                        value: hex::decode(v).map_err(|_| ApiError::Broken("bad value".into()))?,
                    })
                })
                .collect(),
            (Ev::Done { error: Some(e), .. }, _) => Err(ApiError::Refused(e)),
            (ev, _) => Err(ApiError::Broken(format!("unexpected answer {ev:?}"))),
        }
    }

    /// Removes our `value` from under `key`.
    pub async fn dht_remove(&self, key: &str, value: &[u8]) -> Result<(), ApiError> {
        let key = key.to_owned();
        self.call_done(|id| Op::DhtRemove { id, key }, value.to_vec())
            .await
    }

    /// Publishes `name` for our address for `ttl` (publish again before it runs out).
    pub async fn publish_name(&self, name: &str, ttl: Duration) -> Result<(), ApiError> {
        let name = name.to_owned();
        let ttl_s = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX);
        self.call_done(|id| Op::PublishName { id, name, ttl_s }, Vec::new())
            .await
    }

    /// An address (as is), a friend's JID (its node in this ring) or a published name.
    pub async fn resolve(&self, name: &str) -> Result<Address, ApiError> {
        let name = name.to_owned();
        match self.call(|id| Op::Resolve { id, name }, Vec::new()).await? {
            (Ev::Resolved { address, .. }, _) => address
                .parse()
                .map_err(|_| ApiError::Broken("bad address".into())),
            (Ev::Done { error: Some(e), .. }, _) => Err(ApiError::Refused(e)),
            (ev, _) => Err(ApiError::Broken(format!("unexpected answer {ev:?}"))),
        }
    }

    /// Opens a stream to `to`'s `service` (once an app there accepts it).
    pub async fn connect_stream(
        &self,
        to: &Address,
        service: &str,
    ) -> Result<RingStream, ApiError> {
        let op = Op::Connect {
            to: to.to_string(),
            service: service.into(),
        };
        stream::open(&self.socket, &self.ring, op).await
    }

    /// Takes incoming streams for `service` (one listener per service per node).
    pub async fn listen(&self, service: &str) -> Result<Listener, ApiError> {
        let (tx, rx) = mpsc::channel(64);
        if let Ok(mut s) = self.streams.lock() {
            *s = Some(tx);
        }
        // Confirmed, so a stream opened from now on is announced here (and a service another
        // app already listens for is refused).
        let service = service.to_owned();
        self.call_done(|id| Op::Listen { service, id }, Vec::new())
            .await?;
        Ok(Listener {
            rx,
            socket: self.socket.clone(),
            ring: self.ring.clone(),
        })
    }
}

async fn welcome(
    rx: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Result<(String, Address), ApiError> {
    let f = read_frame(rx)
        .await
        .map_err(|e| ApiError::Broken(e.to_string()))?
        .ok_or_else(|| ApiError::Broken("the daemon closed the connection".into()))?;
    match f
        .header::<Ev>()
        .map_err(|e| ApiError::Broken(e.to_string()))?
    {
        Ev::Welcome { ring, address } => Ok((
            ring,
            address
                .parse()
                .map_err(|_| ApiError::Broken("bad address in welcome".into()))?,
        )),
        Ev::Error { message } => Err(ApiError::Refused(message)),
        ev => Err(ApiError::Broken(format!("unexpected answer {ev:?}"))),
    }
}

async fn reader(
    mut rx: tokio::net::unix::OwnedReadHalf,
    waiters: Waiters,
    events: EventSlot,
    streams: StreamSlot,
    out: mpsc::Sender<Frame>,
) {
    while let Ok(Some(f)) = read_frame(&mut rx).await {
        let Ok(ev) = f.header::<Ev>() else { continue };
        let Frame::Message { payload, .. } = f else {
            continue;
        };
        let event_tx = || events.lock().ok().and_then(|e| e.clone());
        match ev {
            Ev::Done { id, .. }
            | Ev::Reply { id, .. }
            | Ev::Values { id, .. }
            | Ev::Resolved { id, .. } => {
                if let Some(w) = waiters.lock().ok().and_then(|mut w| w.remove(&id)) {
                    let _ = w.send((ev, payload));
                }
            }
            Ev::Datagram {
                from,
                service,
                broadcast_hops,
            } => {
                let (Some(tx), Ok(from)) = (event_tx(), from.parse()) else {
                    continue;
                };
                let d = Datagram {
                    from,
                    service,
                    broadcast_hops,
                    payload,
                };
                let _ = tx.try_send(Event::Datagram(d));
            }
            Ev::Request {
                token,
                from,
                service,
            } => {
                let (Some(tx), Ok(from)) = (event_tx(), from.parse()) else {
                    continue;
                };
                let r = Incoming {
                    from,
                    service,
                    payload,
                    token,
                    out: out.clone(),
                };
                let _ = tx.send(Event::Request(r)).await;
            }
            Ev::Incoming { token, from, .. } => {
                let tx = streams.lock().ok().and_then(|s| s.clone());
                if let (Some(tx), Ok(from)) = (tx, from.parse()) {
                    let _ = tx.send((token, from)).await;
                }
            }
            Ev::Error { message } => {
                tracing::warn!(%message, "the chamber daemon refused a request")
            }
            Ev::Welcome { .. } | Ev::Connected { .. } => {}
        }
    }
    // Every pending call learns the connection is gone.
    if let Ok(mut w) = waiters.lock() {
        w.clear();
    }
}
