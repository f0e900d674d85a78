//! Benchmarks of one link on loopback, measured against raw UDP in the same run (not timed
//! tests: they print, they do not assert). Two linkers in one process signal through memory
//! and link over 127.0.0.1 with ICE and Noise exactly as between friends.
//!
//! ```text
//! cargo test --release -p chamber-lab --test link_bench_loopback -- --ignored --nocapture --test-threads 1
//! ```

#[path = "link_common.rs"]
mod link_common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chamber::link::{Identity, Link, Linker, LinkerConfig, Policy};
use chamber::signal::IqFailure;
use chamber::signal::Reply;
use chamber::signal::xmpp::SignalTransport;
use tokio::net::UdpSocket;
use tokio_xmpp::jid::FullJid;
use xmpp_ext::jingle::Jingle;
use xmpp_ext::record::{Capabilities, NodeRecord};

/// Counts live heap bytes, so memory per link is measured, not guessed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: as for `realloc` on the system allocator.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    pages * 4
}

/// Signalling through memory: a request to an address is handed to that linker at once.
#[derive(Clone, Default)]
struct Loop {
    linkers: Arc<Mutex<HashMap<FullJid, Linker<FullJid>>>>,
}

struct Via {
    from: FullJid,
    net: Loop,
}

impl SignalTransport<FullJid> for Via {
    fn request<'a, 'b>(
        &'a self,
        to: FullJid,
        jingle: Jingle,
    ) -> Pin<Box<dyn Future<Output = Result<(), IqFailure>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async move {
            let peer = self.net.linkers.lock().expect("lock").get(&to).cloned();
            let Some(peer) = peer else {
                return Err(IqFailure::ServiceUnavailable);
            };
            match peer.incoming(self.from.clone(), jingle).await {
                Reply::Ack => Ok(()),
                Reply::Error(e) => Err(e),
            }
        })
    }
}

fn loopback_linker() -> LinkerConfig {
    let mut c = LinkerConfig::default();
    c.ice.interfaces = Some(vec!["lo".into()]);
    c.ice.loopback = true;
    c
}

/// A node on the loopback "network": its linker and the links made to it.
fn node(
    net: &Loop,
    name: &str,
    seed: u8,
) -> (Linker<FullJid>, chamber::link::Incoming<FullJid>, FullJid) {
    let jid: FullJid = format!("{name}@loop/bench").parse().expect("jid");
    let secret = link_common::secret(seed);
    let record = NodeRecord::new(
        &secret,
        link_common::ring().ring_id(),
        Capabilities::empty(),
        1,
    );
    let policy: Policy<FullJid> = Arc::new(|_, _| Ok(()));
    let via = Arc::new(Via {
        from: jid.clone(),
        net: net.clone(),
    });
    let (linker, incoming) = Linker::spawn(
        jid.clone(),
        Identity::new(&secret, record, &link_common::ring()),
        via,
        loopback_linker(),
        policy,
    );
    net.linkers
        .lock()
        .expect("lock")
        .insert(jid.clone(), linker.clone());
    (linker, incoming, jid)
}

fn quantile(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

const PAYLOAD: usize = 1200;
const ROUND_TRIPS: usize = 5000;
const BLAST: Duration = Duration::from_secs(2);
/// Throughput rounds, link and raw UDP alternating, so both see the same machine state.
const ROUNDS: usize = 5;

/// Round trips of 64-byte datagrams, one at a time.
async fn link_rtts(a: &mut Link) -> Vec<Duration> {
    let mut v = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        a.send(&[7u8; 64]).await.expect("send");
        let _ = a.recv().await.expect("echo");
        v.push(t.elapsed());
    }
    v
}

async fn udp_rtts(a: &UdpSocket) -> Vec<Duration> {
    let mut v = Vec::with_capacity(ROUND_TRIPS);
    let mut buf = [0u8; 2048];
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        a.send(&[7u8; 64]).await.expect("send");
        let _ = a.recv(&mut buf).await.expect("echo");
        v.push(t.elapsed());
    }
    v
}

fn mbit(bytes: u64, d: Duration) -> f64 {
    bytes as f64 * 8.0 / d.as_secs_f64() / 1e6
}

/// `a` sends as fast as it can for [`BLAST`] while `b` counts what arrives (until half a
/// second after: one timer, not one per datagram). Bytes sent, bytes delivered, sending time.
async fn blast_link(a: &Link, mut b: Link) -> (u64, u64, Duration, Link) {
    let counted = Arc::new(AtomicU64::new(0));
    let c = counted.clone();
    let end = tokio::time::Instant::now() + BLAST + Duration::from_millis(500);
    let sink = tokio::spawn(async move {
        let stop = tokio::time::sleep_until(end);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                d = b.recv() => match d {
                    Some(d) => { c.fetch_add(d.len() as u64, Ordering::Relaxed); }
                    None => break,
                },
                _ = &mut stop => break,
            }
        }
        b
    });
    let payload = vec![9u8; PAYLOAD];
    let (t, mut sent) = (Instant::now(), 0u64);
    while t.elapsed() < BLAST {
        for _ in 0..64 {
            if a.send(&payload).await.is_ok() {
                sent += PAYLOAD as u64;
            }
        }
    }
    let elapsed = t.elapsed();
    let b = sink.await.expect("sink");
    (sent, counted.load(Ordering::Relaxed), elapsed, b)
}

/// [`blast_link`] over two connected UDP sockets.
async fn blast_udp(ua: &UdpSocket, ub: &Arc<UdpSocket>) -> (u64, u64, Duration) {
    let counted = Arc::new(AtomicU64::new(0));
    let (c, ub) = (counted.clone(), ub.clone());
    let end = tokio::time::Instant::now() + BLAST + Duration::from_millis(500);
    let sink = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        let stop = tokio::time::sleep_until(end);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                r = ub.recv(&mut buf) => match r {
                    Ok(n) => { c.fetch_add(n as u64, Ordering::Relaxed); }
                    Err(_) => break,
                },
                _ = &mut stop => break,
            }
        }
    });
    let payload = vec![9u8; PAYLOAD];
    let (t, mut sent) = (Instant::now(), 0u64);
    while t.elapsed() < BLAST {
        for _ in 0..64 {
            if ua.send(&payload).await.is_ok() {
                sent += PAYLOAD as u64;
            }
        }
    }
    let elapsed = t.elapsed();
    sink.await.expect("udp sink");
    (sent, counted.load(Ordering::Relaxed), elapsed)
}

#[test]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
fn link_against_raw_udp_on_loopback() {
    link_common::init_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let net = Loop::default();
        let (la, _ia, _) = node(&net, "a", 1);
        let (_lb, mut ib, jb) = node(&net, "b", 2);
        let t0 = Instant::now();
        let mut a = la.connect(vec![jb]).await.expect("link up");
        let setup = t0.elapsed();
        let (_, mut b) = ib.recv().await.expect("incoming").expect("up");
        eprintln!("link up on loopback in {setup:?} ({:?})", a.status().path);

        // --- latency: a pings, b echoes ---
        let echo = tokio::spawn(async move {
            while let Some(d) = b.recv().await {
                if d == b"stop" {
                    break;
                }
                if d.len() == 64 {
                    let _ = b.send(&d).await;
                }
            }
            b
        });
        let mut link = link_rtts(&mut a).await;
        let ua = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let ub = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        ua.connect(ub.local_addr().expect("addr")).await.expect("connect");
        ub.connect(ua.local_addr().expect("addr")).await.expect("connect");
        let (ua, ub) = (Arc::new(ua), Arc::new(ub));
        let ub2 = ub.clone();
        let udp_echo = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok(n) = ub2.recv(&mut buf).await {
                if n == 64 {
                    let _ = ub2.send(&buf[..n]).await;
                } else if n == 4 {
                    break;
                }
            }
        });
        let mut udp = udp_rtts(&ua).await;
        let (l50, l99) = (quantile(&mut link, 0.5), quantile(&mut link, 0.99));
        let (u50, u99) = (quantile(&mut udp, 0.5), quantile(&mut udp, 0.99));
        eprintln!(
            "RTT, 64 B, {ROUND_TRIPS} round trips: link median {l50:?} p99 {l99:?}; raw UDP median {u50:?} p99 {u99:?}"
        );
        a.send(b"stop").await.expect("stop");
        let mut b = echo.await.expect("echo");
        ua.send(b"stop").await.expect("stop");
        udp_echo.await.expect("udp echo");

        // --- throughput: rounds of a blast over the link then one over raw UDP ---
        let (mut ratios, mut offered, mut rows) = (Vec::new(), Vec::new(), Vec::new());
        for round in 1..=ROUNDS {
            let (l_sent, l_rx, l_t, back) = blast_link(&a, b).await;
            b = back;
            let (u_sent, u_rx, u_t) = blast_udp(&ua, &ub).await;
            let (lm, um) = (mbit(l_rx, l_t), mbit(u_rx, u_t));
            let (lo, uo) = (mbit(l_sent, l_t), mbit(u_sent, u_t));
            eprintln!(
                "round {round}: link {lm:.0} Mbit/s delivered ({lo:.0} offered), raw UDP {um:.0} delivered ({uo:.0} offered); ratio {:.0} %",
                100.0 * lm / um
            );
            ratios.push(lm / um);
            offered.push(lo / uo);
            rows.push((lm, um));
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (mut lms, mut ums): (Vec<f64>, Vec<f64>) = rows.into_iter().unzip();
        eprintln!(
            "throughput, {PAYLOAD} B datagrams, {ROUNDS} rounds of {BLAST:?} each: median link {:.0} Mbit/s, raw UDP {:.0} Mbit/s delivered; median ratio delivered {:.0} %, offered {:.0} %",
            median(&mut lms),
            median(&mut ums),
            100.0 * median(&mut ratios),
            100.0 * median(&mut offered)
        );
        eprintln!("link stats after: {:?}", b.status().stats);
    });
}

#[test]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
fn memory_per_idle_and_active_link() {
    const LINKS: usize = 20;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let net = Loop::default();
        let (la, _ia, _) = node(&net, "a", 1);
        let (_lb, mut ib, jb) = node(&net, "b", 2);
        // One link first, so lazily built state (runtime, allocator pools) is not counted.
        let warm = la.connect(vec![jb.clone()]).await.expect("up");
        let (_, warm_b) = ib.recv().await.expect("incoming").expect("up");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (heap0, rss0) = (LIVE.load(Ordering::Relaxed), rss_kib());
        let mut ends = Vec::new();
        for _ in 0..LINKS {
            let a = la.connect(vec![jb.clone()]).await.expect("up");
            let (_, b) = ib.recv().await.expect("incoming").expect("up");
            ends.push((a, b));
        }
        // Let ICE close its losing pairs and the handshakes settle.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (heap1, rss1) = (LIVE.load(Ordering::Relaxed), rss_kib());
        let per_end = |h: isize| (h - heap0) as f64 / (2 * LINKS) as f64 / 1024.0;
        eprintln!(
            "idle: {LINKS} links (both ends in this process): heap {:.1} KiB per link end, RSS {:.1} KiB per link end",
            per_end(heap1),
            (rss1 - rss0) as f64 / (2 * LINKS) as f64
        );
        // Active: every link carries 1200-byte datagrams both ways, 200 per second each.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (mut a, mut b) in ends {
            let s = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(5));
                let payload = vec![1u8; PAYLOAD];
                while !s.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let _ = a.send(&payload).await;
                    let _ = b.send(&payload).await;
                    while let Ok(Some(_)) = tokio::time::timeout(Duration::ZERO, a.recv()).await {}
                    while let Ok(Some(_)) = tokio::time::timeout(Duration::ZERO, b.recv()).await {}
                }
                (a, b)
            }));
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (heap2, rss2) = (LIVE.load(Ordering::Relaxed), rss_kib());
        eprintln!(
            "active (200 datagrams/s each way): heap {:.1} KiB per link end, RSS {:.1} KiB per link end",
            per_end(heap2),
            (rss2 - rss0) as f64 / (2 * LINKS) as f64
        );
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let (a, _b) = t.await.expect("task");
            a.close().await;
        }
        warm.close().await;
        drop(warm_b);
    });
}
