//! TURN over TCP for sites that block UDP (RFC 8656 §3.1, §12.5): the client talks to its
//! TURN server over a TCP connection, and the server relays over UDP as usual.
//!
//! webrtc-ice 0.17 only allocates over UDP, so a [`TcpTurnBridge`] presents a TCP TURN server
//! to it as a UDP one on loopback: every UDP source (one per relay candidate the agent
//! gathers) gets its own TCP connection to the server, and each datagram is one frame on it.
//! The bridge never reads or changes a message (integrity covers the message, not the
//! transport); it only frames, so permissions, channels, refreshes and ICE checks are all
//! still the library's. The framing itself is in [`turn_frame`](super::turn_frame).
//!

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::turn_frame::{Deframer, ends_allocation, to_stream};

/// How long a connection may carry nothing: an allocation not refreshed for 10 min is gone
/// on the server (RFC 8656 §7.1 default lifetime), so nothing is lost by closing it.
const IDLE: Duration = Duration::from_secs(600);
/// After the client ends its allocation, wait this long for the server's answer, then close.
const LINGER: Duration = Duration::from_secs(2);
/// How long the TCP connection to the server may take.
const CONNECT: Duration = Duration::from_secs(5);
/// Datagrams queued towards one connection before more are dropped (TCP is backed up).
const QUEUE: usize = 256;
/// Bytes read from a server's stream at a time. The deframer collects frames across reads,
/// so this only sets the number of reads: a bridge holds a connection per relay candidate,
/// and a 64 KiB buffer each was most of a relayed link's memory.
const READ_CHUNK: usize = 4096;

/// What a bridge counts.
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// TCP connections opened to the server.
    pub connections: AtomicU64,
    /// Datagrams dropped: not from loopback, not TURN, or the connection was backed up.
    pub dropped: AtomicU64,
    /// Connections closed because the server's stream could not be framed.
    pub bad_streams: AtomicU64,
}

/// A TCP TURN server offered to webrtc-ice as a UDP one on `127.0.0.1`. Dropping the bridge
/// closes every connection.
pub struct TcpTurnBridge {
    local: SocketAddr,
    server: String,
    clients: Arc<Mutex<HashSet<u16>>>,
    stats: Arc<BridgeStats>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for TcpTurnBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TcpTurnBridge({} -> tcp {})", self.local, self.server)
    }
}

impl TcpTurnBridge {
    /// Starts a bridge to `server` (`host:port`, over TCP). Needs a tokio runtime.
    pub fn start(server: String) -> std::io::Result<TcpTurnBridge> {
        let std_sock = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        std_sock.set_nonblocking(true)?;
        let sock = Arc::new(UdpSocket::from_std(std_sock)?);
        let local = sock.local_addr()?;
        let clients = Arc::new(Mutex::new(HashSet::new()));
        let stats = Arc::new(BridgeStats::default());
        let task = tokio::spawn(run(sock, server.clone(), clients.clone(), stats.clone()));
        tracing::debug!(%local, %server, "TURN over TCP bridge up");
        Ok(TcpTurnBridge {
            local,
            server,
            clients,
            stats,
            task,
        })
    }

    /// Where webrtc-ice should send its TURN traffic.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Whether a relay candidate whose base (its related address) is on local UDP `port` runs
    /// through this bridge, i.e. over TCP.
    pub fn serves(&self, port: u16) -> bool {
        lock(&self.clients).contains(&port)
    }

    /// Counters.
    pub fn stats(&self) -> &BridgeStats {
        &self.stats
    }
}

impl Drop for TcpTurnBridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Client {
    tx: mpsc::Sender<Vec<u8>>,
    task: JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    sock: Arc<UdpSocket>,
    server: String,
    ports: Arc<Mutex<HashSet<u16>>>,
    stats: Arc<BridgeStats>,
) {
    let mut clients: HashMap<SocketAddr, Client> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            // An ICMP error from an earlier send to a client that is gone.
            Err(e) => {
                tracing::trace!(%e, "bridge socket");
                continue;
            }
        };
        let Some(frame) = to_stream(&buf[..n]).filter(|_| from.ip().is_loopback()) else {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        // A finished connection: a new datagram from the same port is a new client (the
        // server sees a new 5-tuple, as it would for a new UDP socket).
        if clients.get(&from).is_some_and(|c| c.tx.is_closed()) {
            clients.remove(&from);
            lock(&ports).remove(&from.port());
        }
        clients.retain(|_, c| !c.task.is_finished());
        let client = clients.entry(from).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            stats.connections.fetch_add(1, Ordering::Relaxed);
            lock(&ports).insert(from.port());
            let task = tokio::spawn(connection(
                sock.clone(),
                server.clone(),
                from,
                rx,
                ports.clone(),
                stats.clone(),
            ));
            Client { tx, task }
        });
        if client.tx.try_send(frame.into_owned()).is_err() {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One client's TCP connection: datagrams in order onto the stream, frames back as datagrams.
async fn connection(
    sock: Arc<UdpSocket>,
    server: String,
    client: SocketAddr,
    mut rx: mpsc::Receiver<Vec<u8>>,
    ports: Arc<Mutex<HashSet<u16>>>,
    stats: Arc<BridgeStats>,
) {
    let stream = match tokio::time::timeout(CONNECT, TcpStream::connect(&server)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%server, %e, "TURN over TCP: cannot connect");
            return;
        }
        Err(_) => {
            tracing::debug!(%server, "TURN over TCP: connect timed out");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    tracing::debug!(%server, %client, "TURN over TCP: connected");
    let (mut rd, mut wr) = stream.into_split();
    let mut deframer = Deframer::default();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut deadline = tokio::time::Instant::now() + IDLE;
    loop {
        tokio::select! {
            d = rx.recv() => {
                let Some(d) = d else { break };
                if wr.write_all(&d).await.is_err() {
                    break;
                }
                deadline = tokio::time::Instant::now() + if ends_allocation(&d) { LINGER } else { IDLE };
            }
            r = rd.read(&mut buf) => {
                let n = match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                deframer.push(&buf[..n]);
                loop {
                    match deframer.next_frame() {
                        Ok(Some(f)) => {
                            let _ = sock.send_to(&f, client).await;
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(%server, %e, "TURN over TCP: bad stream, closing");
                            stats.bad_streams.fetch_add(1, Ordering::Relaxed);
                            lock(&ports).remove(&client.port());
                            return;
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    tracing::debug!(%server, %client, "TURN over TCP: closed");
    lock(&ports).remove(&client.port());
}

#[cfg(test)]
mod tests {
    use super::super::turn_frame::stun;
    use super::*;

    /// A TURN server stand-in on TCP: echoes every frame back; the bridge must deliver the
    /// echo to the UDP client that sent it.
    #[tokio::test]
    async fn bridge_carries_datagrams_both_ways() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 4096];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 || s.write_all(&b[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let bridge = TcpTurnBridge::start(server).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let msg = stun(0x0003, &[(0x0019, &[17, 0, 0, 0])]);
        client.send_to(&msg, bridge.local_addr()).await.unwrap();
        client
            .send_to(&[0x40, 0, 0, 3, 1, 2, 3], bridge.local_addr())
            .await
            .unwrap();
        client.send_to(b"junk", bridge.local_addr()).await.unwrap();
        let mut b = [0u8; 100];
        let n = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&b[..n], &msg[..]);
        let n = client.recv(&mut b).await.unwrap();
        assert_eq!(&b[..n], &[0x40, 0, 0, 3, 1, 2, 3, 0]);
        assert!(bridge.serves(client.local_addr().unwrap().port()));
        assert_eq!(bridge.stats().dropped.load(Ordering::Relaxed), 1);
        assert_eq!(bridge.stats().connections.load(Ordering::Relaxed), 1);
    }
}
