//! The knock socket: one UDP socket per daemon, on a port kept across restarts, over which ring
//! members reach each other without a link, a ring route or an XMPP server.
//!
//! Linked members send each other a beacon now and then, so each knows where the other's knock
//! socket is heard from (through any NAT, the mapping the beacons keep open). After a restart,
//! the node knocks at its cached peers' addresses with the same Jingle offer a friend gets over
//! XMPP, and ICE and Noise take it from there.
//!
//! Requests are sent again until answered (UDP loses packets) and answers are kept, so a
//! repeated request is answered the same without being handled twice, as over the ring.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use brunet_compat::address::Address as RingAddress;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::wire::{self, KnockError, KnockKey, MAX_KNOCK};
use crate::runtime::envelope::Envelope;
use crate::signal::{IqFailure, Reply};

/// A knock's clock may differ from ours by this much (friends' machines are not in sync).
const CLOCK_SLACK_MS: u64 = 10 * 60 * 1000;
/// Nonces remembered against replays (beyond this, the oldest half is forgotten; a replay
/// older than that is still stopped by [`CLOCK_SLACK_MS`] or answered from `answered`).
const NONCES_MAX: usize = 8192;
/// When a request is sent again, after it was first sent.
const RESENDS: [Duration; 3] = [
    Duration::from_millis(300),
    Duration::from_millis(800),
    Duration::from_millis(1600),
];
/// How long a request waits for its answer in all.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(2500);
/// How long an answer is kept for repeated requests.
const ANSWER_KEEP: Duration = Duration::from_secs(30);
/// Requests remembered at most: a member's storm of new requests is dropped here, counted,
/// beyond what the runtime's per-source rate would answer in [`ANSWER_KEEP`] anyway.
const ANSWERED_MAX: usize = 4096;

/// A request taken: when, and its answer once the runtime gave it.
type Answer = (Instant, Option<Reply>);

/// A knock for the runtime: a beacon (a `Ping`) or a signalling request.
#[derive(Debug)]
pub struct KnockIn {
    /// The ring (index in the order the socket was given the keys).
    pub ring: usize,
    /// The sender, as it claims.
    pub from: RingAddress,
    /// Where it came from.
    pub src: SocketAddr,
    /// What it carries.
    pub envelope: Envelope,
}

/// Counters for `status`.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct KnockCounters {
    /// Datagrams that were not knocks of our rings (forged, foreign, damaged, replayed).
    pub dropped: u64,
    /// Knocks taken.
    pub received: u64,
}

/// The daemon's knock socket; cheap to share.
pub struct KnockSocket {
    sock: UdpSocket,
    /// The same socket for sending from any thread without waiting for the reactor (tokio's
    /// `try_send_to` refuses until the reactor has seen the socket writable once).
    out: std::net::UdpSocket,
    me: RingAddress,
    keys: std::sync::RwLock<Vec<KnockKey>>,
    next_id: AtomicU32,
    waiting: Mutex<HashMap<u32, oneshot::Sender<Reply>>>,
    answered: Mutex<HashMap<(RingAddress, u32), Answer>>,
    nonces: Mutex<HashMap<[u8; 12], u64>>,
    dropped: AtomicU64,
    received: AtomicU64,
}

impl KnockSocket {
    /// Binds the knock socket on `port` (any port if it is taken or 0) for rings with `keys`,
    /// speaking as `me`; knocks for the runtime arrive on `tx`.
    pub async fn bind(
        port: u16,
        me: RingAddress,
        keys: Vec<KnockKey>,
        tx: mpsc::Sender<KnockIn>,
    ) -> std::io::Result<Arc<KnockSocket>> {
        let std_sock = match std::net::UdpSocket::bind(("0.0.0.0", port)) {
            Ok(s) => s,
            Err(e) if port != 0 => {
                tracing::info!(port, %e, "the cached knock port is taken; using another");
                std::net::UdpSocket::bind(("0.0.0.0", 0))?
            }
            Err(e) => return Err(e),
        };
        std_sock.set_nonblocking(true)?;
        let out = std_sock.try_clone()?;
        let sock = UdpSocket::from_std(std_sock)?;
        let socket = Arc::new(KnockSocket {
            sock,
            out,
            me,
            keys: std::sync::RwLock::new(keys),
            next_id: AtomicU32::new(rand::random::<u32>() >> 1),
            waiting: Mutex::default(),
            answered: Mutex::default(),
            nonces: Mutex::default(),
            dropped: AtomicU64::new(0),
            received: AtomicU64::new(0),
        });
        let reader = Arc::downgrade(&socket);
        tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_KNOCK + 1];
            loop {
                let Some(s) = reader.upgrade() else { return };
                let got = s.sock.recv_from(&mut buf).await;
                match got {
                    Ok((n, src)) => {
                        if let Some(k) = s.take(&buf[..n], src)
                            && tx.send(k).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(%e, "knock socket read");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Ok(socket)
    }

    /// Takes knocks for one more ring, whose index is the one returned.
    pub fn add_ring(&self, key: KnockKey) -> usize {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        keys.push(key);
        keys.len() - 1
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.sock.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Counters.
    pub fn counters(&self) -> KnockCounters {
        KnockCounters {
            dropped: self.dropped.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
        }
    }

    /// Opens a datagram: answers complete their request here, a repeated request gets its
    /// kept answer, and beacons and new requests go to the runtime.
    fn take(&self, bytes: &[u8], src: SocketAddr) -> Option<KnockIn> {
        match self.open(bytes) {
            Ok((ring, k)) => {
                self.received.fetch_add(1, Ordering::Relaxed);
                match k.envelope {
                    Envelope::SigReply { id, reply } => {
                        let w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
                        let mut w = w;
                        if let Some(tx) = w.remove(&id) {
                            let _ = tx.send(reply);
                        }
                        None
                    }
                    Envelope::SigRequest { id, .. } => {
                        let mut a = self.answered.lock().unwrap_or_else(|p| p.into_inner());
                        a.retain(|_, (t, _)| t.elapsed() < ANSWER_KEEP);
                        match a.get(&(k.from, id)) {
                            Some((_, Some(reply))) => {
                                let env = Envelope::SigReply {
                                    id,
                                    reply: reply.clone(),
                                };
                                drop(a);
                                self.send(ring, src, &env);
                                None
                            }
                            Some((_, None)) => None,
                            None if a.len() >= ANSWERED_MAX => {
                                self.dropped.fetch_add(1, Ordering::Relaxed);
                                None
                            }
                            None => {
                                a.insert((k.from, id), (Instant::now(), None));
                                Some(KnockIn {
                                    ring,
                                    from: k.from,
                                    src,
                                    envelope: k.envelope,
                                })
                            }
                        }
                    }
                    envelope @ Envelope::Ping { .. } => Some(KnockIn {
                        ring,
                        from: k.from,
                        src,
                        envelope,
                    }),
                    other => {
                        tracing::debug!(kind = other.kind(), %src, "a knock of a kind not used here");
                        None
                    }
                }
            }
            Err(e) => {
                // Counted, and logged once per kind: anyone can send to this port.
                let n = self.dropped.fetch_add(1, Ordering::Relaxed);
                if n < 8 {
                    tracing::debug!(%src, %e, "knock dropped");
                }
                None
            }
        }
    }

    fn open(&self, bytes: &[u8]) -> Result<(usize, wire::Knock), KnockError> {
        let tag = wire::tag_of(bytes)?;
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let ring = keys
            .iter()
            .position(|k| k.tag() == tag)
            .ok_or(KnockError::UnknownRing)?;
        let k = wire::open(&keys[ring], bytes)?;
        drop(keys);
        if k.from == self.me {
            return Err(KnockError::Malformed("our own address".into()));
        }
        let now = unix_ms();
        if now.abs_diff(k.sent_ms) > CLOCK_SLACK_MS {
            return Err(KnockError::Malformed(format!(
                "sent {} s away from our clock",
                now.abs_diff(k.sent_ms) / 1000
            )));
        }
        let mut seen = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains_key(&k.nonce) {
            return Err(KnockError::Malformed("replayed".into()));
        }
        if seen.len() >= NONCES_MAX {
            let mut times: Vec<u64> = seen.values().copied().collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            seen.retain(|_, t| *t > cut);
        }
        seen.insert(k.nonce, now);
        Ok((ring, k))
    }

    /// Sends `envelope` to `to` for ring `ring` (best effort, like any UDP datagram).
    pub fn send(&self, ring: usize, to: SocketAddr, envelope: &Envelope) {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let Some(key) = keys.get(ring) else {
            return;
        };
        let bytes = wire::seal(key, &self.me, unix_ms(), envelope);
        drop(keys);
        if let Err(e) = self.out.send_to(&bytes, to) {
            tracing::debug!(%to, %e, "knock not sent");
        }
    }

    /// A beacon to `to`, so its owner learns (and its NAT keeps) where we are.
    pub fn beacon(&self, ring: usize, to: SocketAddr) {
        self.send(
            ring,
            to,
            &Envelope::Ping {
                nonce: rand::random(),
            },
        );
    }

    /// Sends a Jingle request (`xml`) to `to` and waits for its answer, sending it again
    /// while none comes.
    pub async fn request(
        &self,
        ring: usize,
        to: SocketAddr,
        xml: Vec<u8>,
    ) -> Result<(), IqFailure> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        let env = Envelope::SigRequest { id, via: None, xml };
        let start = tokio::time::Instant::now();
        self.send(ring, to, &env);
        let mut resends = RESENDS.iter();
        let answer = loop {
            let next = resends
                .next()
                .map(|d| start + *d)
                .unwrap_or(start + REQUEST_TIMEOUT);
            tokio::select! {
                r = &mut rx => break r.ok(),
                () = tokio::time::sleep_until(next) => {
                    if next >= start + REQUEST_TIMEOUT {
                        break None;
                    }
                    self.send(ring, to, &env);
                }
            }
        };
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        match answer {
            Some(Reply::Ack) => Ok(()),
            Some(Reply::Error(f)) => Err(f),
            None => Err(IqFailure::Timeout),
        }
    }

    /// Answers request `id` from `from` at `to`, and keeps the answer for repeats.
    pub fn reply(&self, ring: usize, to: SocketAddr, from: RingAddress, id: u32, reply: Reply) {
        self.answered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((from, id), (Instant::now(), Some(reply.clone())));
        self.send(ring, to, &Envelope::SigReply { id, reply });
    }
}

/// Now, in Unix milliseconds.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_ext::RingSecret;

    async fn pair() -> (
        Arc<KnockSocket>,
        mpsc::Receiver<KnockIn>,
        Arc<KnockSocket>,
        mpsc::Receiver<KnockIn>,
    ) {
        let secret = RingSecret::from_bytes([3; 32]);
        let (atx, arx) = mpsc::channel(8);
        let (btx, brx) = mpsc::channel(8);
        let a = KnockSocket::bind(
            0,
            RingAddress::from_bytes([1; 20]),
            vec![KnockKey::new(&secret)],
            atx,
        )
        .await
        .unwrap();
        let b = KnockSocket::bind(
            0,
            RingAddress::from_bytes([2; 20]),
            vec![KnockKey::new(&secret)],
            btx,
        )
        .await
        .unwrap();
        (a, arx, b, brx)
    }

    fn at(s: &KnockSocket) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], s.port()))
    }

    #[tokio::test]
    async fn a_request_is_answered_once_however_often_it_is_sent() {
        let (a, _arx, b, mut brx) = pair().await;
        let to = at(&b);
        let req = tokio::spawn({
            let a = a.clone();
            async move { a.request(0, to, b"<jingle/>".to_vec()).await }
        });
        let k = brx.recv().await.unwrap();
        assert_eq!(k.from, RingAddress::from_bytes([1; 20]));
        let Envelope::SigRequest { id, xml, .. } = k.envelope else {
            panic!("a request");
        };
        assert_eq!(xml, b"<jingle/>");
        // Unanswered for a while: the resends are not handed over again.
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(brx.try_recv().is_err());
        b.reply(0, k.src, k.from, id, Reply::Ack);
        assert_eq!(req.await.unwrap(), Ok(()));
        assert!(brx.try_recv().is_err());
    }

    #[tokio::test]
    async fn beacons_arrive_and_strangers_bytes_are_counted_not_taken() {
        let (a, _arx, b, mut brx) = pair().await;
        a.beacon(0, at(&b));
        let k = brx.recv().await.unwrap();
        assert!(matches!(k.envelope, Envelope::Ping { .. }));
        let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        stranger.send_to(b"CHK1garbage", at(&b)).await.unwrap();
        let other = KnockKey::new(&RingSecret::from_bytes([4; 32]));
        let forged = wire::seal(
            &other,
            &RingAddress::from_bytes([9; 20]),
            unix_ms(),
            &Envelope::Ping { nonce: 1 },
        );
        stranger.send_to(&forged, at(&b)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(brx.try_recv().is_err());
        assert_eq!(b.counters().dropped, 2);
    }

    #[tokio::test]
    async fn a_request_nobody_answers_times_out() {
        let (a, _arx, _b, _brx) = pair().await;
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = silent.local_addr().unwrap();
        let t = Instant::now();
        assert_eq!(
            a.request(0, to, b"<jingle/>".to_vec()).await,
            Err(IqFailure::Timeout)
        );
        assert!(t.elapsed() >= REQUEST_TIMEOUT);
    }
}
