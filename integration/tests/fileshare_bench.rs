//! Benchmarks of the file share app and ring streams (issue 7), release build:
//!
//! ```sh
//! cargo test --release -p chamber-lab --test fileshare_bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! - stream throughput between two ring members over a direct link and over a relayed path
//!   (symmetric NAT ↔ symmetric NAT), against a plain QUIC transfer (`examples/quic_baseline`,
//!   quinn over UDP with default settings) between the same two namespaces in the same run:
//!   directly for the direct pair, and through a UDP forwarder at the TURN server's address
//!   for the relayed pair; plus a `fileshare fetch` on each path;
//! - memory (RSS) of a node serving 10 concurrent fetches: its daemon and its `fileshare
//!   share` process, against the same processes idle.
//!
//! Every figure is printed as a `BENCH` line.

mod common;
mod fileshare_support;
mod node_support;
mod ring_support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chamber::account::TlsMode;
use chamber::api::Client;
use chamber_lab::topology::{ALPHA, STUN_PRIMARY};
use chamber_lab::{Lab, LabSpec, NatKind, SiteSpec};
use fileshare_support::{Sharer, run, summary};
use node_support::NodeHome;
use ring_support::{Ring, overlay, start_loopback};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes per throughput round.
fn stream_bytes() -> u64 {
    std::env::var("CHAMBER_BENCH_STREAM_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(100)
        * 1_000_000
}

const ROUNDS: usize = 3;

fn start_sites(sites: &[(&str, NatKind)]) -> Ring {
    let names: Vec<String> = sites.iter().map(|(n, _)| n.to_string()).collect();
    let mut spec = LabSpec::with_sites(
        sites
            .iter()
            .map(|(n, k)| SiteSpec::new(n.to_string(), *k))
            .collect(),
    );
    spec.users = names.len() as u32;
    let lab = Lab::up(spec).expect("lab up");
    let homes: Vec<NodeHome> = names.iter().map(|n| NodeHome::new(&lab, n)).collect();
    for (i, (h, n)) in homes.iter().zip(&names).enumerate() {
        let site = lab.site(n).expect("site");
        h.add_account(&site.host, &lab, i as u32 + 1, ALPHA, TlsMode::StartTls);
    }
    let daemons = homes
        .iter()
        .zip(&names)
        .map(|(h, n)| h.up(&lab.site(n).expect("site").host))
        .collect();
    Ring {
        lab,
        homes,
        daemons,
        sites: names.clone(),
        alive: (0..names.len()).collect(),
        names,
    }
}

fn path_kind(ring: &Ring, from: usize, to: usize) -> Option<String> {
    let statuses = ring.statuses();
    let target = overlay(statuses[to].as_ref()?)?.address.clone();
    let view = overlay(statuses[from].as_ref()?)?;
    let p = view.peers.iter().find(|p| p.address == target)?;
    match (&p.link, &p.relay_via) {
        (Some(l), _) => Some(l.kind.clone()),
        (None, Some(_)) => Some("relay".into()),
        (None, None) => None,
    }
}

fn wait_path(ring: &Ring, from: usize, to: usize) -> String {
    let t = Instant::now();
    loop {
        match path_kind(ring, from, to) {
            Some(k) if k != "connecting" => return k,
            _ if t.elapsed() > Duration::from_secs(60) => {
                panic!("{} never linked {}", ring.names[from], ring.names[to])
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// One ring stream of `bytes` from node `from` to node `to`, timed at the receiver from the
/// stream's opening to the end of the data. MB/s.
fn ring_stream(ring: &Ring, from: usize, to: usize, bytes: u64) -> f64 {
    let (a, b) = (
        fileshare_support::app_socket(ring, from),
        fileshare_support::app_socket(ring, to),
    );
    // A service name per round: the last round's listener is released by the daemon when its
    // app's connection closes, which may be a moment after this round starts.
    static ROUND: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let service = format!(
        "bench-{}",
        ROUND.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let rx = Client::connect(&b, None).await.expect("client");
        let tx = Client::connect(&a, None).await.expect("client");
        let mut listener = rx.listen(&service).await.expect("listen");
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            loop {
                let n = s.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            s.write_all(&total.to_be_bytes()).await.expect("ack");
            s.shutdown().await.expect("finish");
            total
        });
        let start = Instant::now();
        let mut s = tx
            .connect_stream(&rx.address(), &service)
            .await
            .expect("stream");
        let block = vec![0x5au8; 256 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            s.write_all(&block[..n]).await.expect("write");
            left -= n as u64;
        }
        s.shutdown().await.expect("finish");
        let mut ack = [0u8; 8];
        s.read_exact(&mut ack).await.expect("ack");
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(u64::from_be_bytes(ack), bytes);
        assert_eq!(reader.await.expect("reader"), bytes);
        bytes as f64 / 1e6 / secs
    })
}

fn baseline_bin() -> std::path::PathBuf {
    node_support::example_bin("quic_baseline")
}

/// A plain QUIC transfer of `bytes` from a client in `client_ns` to a server in `server_ns`
/// listening on `listen` (reached at `connect`), optionally registered with a relay. MB/s.
fn plain_quic(
    server_ns: &chamber_lab::Netns,
    client_ns: &chamber_lab::Netns,
    listen: &str,
    connect: &str,
    via: Option<&str>,
    dir: &Path,
    bytes: u64,
) -> f64 {
    let bin = baseline_bin();
    let cert = dir.join("baseline.der");
    let _ = std::fs::remove_file(&cert);
    let mut server = server_ns.command(&bin.to_string_lossy());
    server
        .args(["server", "--listen", listen, "--cert-out"])
        .arg(&cert);
    if let Some(v) = via {
        server.args(["--via", v]);
    }
    let mut server = Killed(
        server
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("baseline server"),
    );
    let t = Instant::now();
    while !cert.exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "baseline server");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let out = client_ns
        .command(&bin.to_string_lossy())
        .args(["client", "--connect", connect, "--cert"])
        .arg(&cert)
        .args(["--bytes", &bytes.to_string()])
        .output()
        .expect("baseline client");
    assert!(
        out.status.success(),
        "baseline client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = server.0.wait();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("baseline client output");
    v["mbytes_per_s"].as_f64().expect("rate")
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn fmt(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
#[ignore = "benchmark: ring stream throughput, direct and relayed, against plain QUIC"]
fn stream_throughput_direct_and_relayed_against_plain_quic() {
    if !common::lab_available() {
        return;
    }
    fileshare_support::bin();
    baseline_bin();
    let ring = start_sites(&[
        ("open0", NatKind::None),
        ("symmetric0", NatKind::Symmetric),
        ("symmetric1", NatKind::Symmetric),
    ]);
    ring.all_online_within(Duration::from_secs(60));
    assert!(
        ring.wait_consistent(Duration::from_secs(60)).is_some(),
        "ring not consistent:\n{}",
        ring.dump()
    );
    let dir = ring.lab.dir().join("fileshare-bench");
    std::fs::create_dir_all(&dir).expect("dir");
    let bytes = stream_bytes();
    // Direct: symmetric0 → open0 (NATLAB: a symmetric NAT punches to an open host).
    // Relayed: symmetric1 → symmetric0 (no punching between two symmetric NATs).
    let open_ip = ring.lab.site("open0").expect("site").addrs.host;
    let relay_addr = format!("{STUN_PRIMARY}:40000");
    let _relay = Killed(
        ring.lab
            .public()
            .command(&baseline_bin().to_string_lossy())
            .args(["relay", "--listen", &relay_addr])
            .stdout(Stdio::null())
            .spawn()
            .expect("baseline relay"),
    );
    for (label, from, to) in [("direct", 1, 0), ("relayed", 2, 1)] {
        let kind = wait_path(&ring, from, to);
        let mut ringv = Vec::new();
        let mut plain = Vec::new();
        for _ in 0..ROUNDS {
            ringv.push(ring_stream(&ring, from, to, bytes));
            plain.push(if label == "direct" {
                plain_quic(
                    ring.host(to),
                    ring.host(from),
                    "0.0.0.0:40001",
                    &format!("{open_ip}:40001"),
                    None,
                    &dir,
                    bytes,
                )
            } else {
                plain_quic(
                    ring.host(to),
                    ring.host(from),
                    "0.0.0.0:40001",
                    &relay_addr,
                    Some(&relay_addr),
                    &dir,
                    bytes,
                )
            });
        }
        let after = wait_path(&ring, from, to);
        let (r, p) = (median(ringv.clone()), median(plain.clone()));
        println!(
            "BENCH stream {label} {} -> {} (link {kind}, after {after}): ring stream {:.1} MB/s [{}], plain QUIC {:.1} MB/s [{}], ratio {:.2}",
            ring.names[from],
            ring.names[to],
            r,
            fmt(&ringv),
            p,
            fmt(&plain),
            r / p
        );
        // The app on the same path: a 100 MB fetch.
        let src = dir.join(format!("{label}.bin"));
        let hash = fileshare_support::random_file(&src, bytes as usize);
        let sharer = Sharer::start(&ring, to, &[&src], dir.join(format!("{label}.log")));
        fileshare_support::wait_listed(&ring, from, &hash, 1, Duration::from_secs(60));
        let out = dir.join(format!("{label}.out"));
        let s = summary(&run(
            &ring,
            from,
            &[
                "fetch",
                &hash,
                "--out",
                out.to_str().expect("path"),
                "--json",
            ],
        ));
        drop(sharer);
        println!(
            "BENCH fetch {label} {} MB: {:.1} MB/s ({:.2} s) = {:.2} of the ring stream",
            bytes / 1_000_000,
            s.mbytes_per_s,
            s.seconds,
            s.mbytes_per_s / r
        );
        assert!(fileshare_support::same_bytes(&src, &out));
        let _ = std::fs::remove_file(&src);
        let _ = std::fs::remove_file(&out);
    }
}

/// Resident memory of a process, KB (`VmRSS`).
fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
#[ignore = "benchmark: memory of a node serving 10 concurrent fetches"]
fn memory_of_a_node_serving_ten_concurrent_fetches() {
    if !common::lab_available() {
        return;
    }
    fileshare_support::bin();
    let ring = start_loopback(3, 0, false);
    ring.all_online();
    assert!(ring.wait_consistent(Duration::from_secs(30)).is_some());
    let dir = ring.lab.dir().join("fileshare-mem");
    std::fs::create_dir_all(&dir).expect("dir");
    let size = 64 << 20;
    let src = dir.join("shared.bin");
    let hash = fileshare_support::random_file(&src, size);
    let mut sharer = Sharer::start(&ring, 0, &[&src], dir.join("share.log"));
    for i in [1, 2] {
        fileshare_support::wait_listed(&ring, i, &hash, 1, Duration::from_secs(60));
    }
    let daemon_pid = ring.homes[0].status().expect("status").pid;
    let share_pid = sharer.child.id();
    std::thread::sleep(Duration::from_secs(2));
    let idle = (
        rss_kb(daemon_pid).expect("rss"),
        rss_kb(share_pid).expect("rss"),
    );
    let fetchers: Vec<Child> = (0..10)
        .map(|k| {
            let out = dir.join(format!("out{k}.bin"));
            fileshare_support::command(
                &ring,
                1 + k % 2,
                &[
                    "fetch",
                    &hash,
                    "--out",
                    out.to_str().expect("path"),
                    "--json",
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fetch")
        })
        .collect();
    let start = Instant::now();
    let mut peak = idle;
    let mut samples = Vec::new();
    let mut fetchers: Vec<Option<Child>> = fetchers.into_iter().map(Some).collect();
    let mut outputs = Vec::new();
    while fetchers.iter().any(Option::is_some) {
        let now = (
            rss_kb(daemon_pid).unwrap_or(0),
            rss_kb(share_pid).unwrap_or(0),
        );
        samples.push(now.0);
        peak = (peak.0.max(now.0), peak.1.max(now.1));
        for f in &mut fetchers {
            if let Some(c) = f
                && !matches!(c.try_wait(), Ok(None))
            {
                outputs.push(f.take().expect("child").wait_with_output().expect("output"));
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "fetches too slow"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let wall = start.elapsed().as_secs_f64();
    let rates: Vec<f64> = outputs.iter().map(|o| summary(o).mbytes_per_s).collect();
    assert!(sharer.alive());
    let busy = median(samples.iter().map(|&s| s as f64).collect());
    println!(
        "BENCH memory serving 10 concurrent fetches of {} MB (5 each from two nodes): daemon idle {} KB, median {busy:.0} KB, peak {} KB (+{} KB, {} KB per fetch); fileshare share idle {} KB, peak {} KB; all done in {wall:.1} s ({:.1} MB/s served), per fetch {:.1} MB/s median",
        size >> 20,
        idle.0,
        peak.0,
        peak.0 - idle.0,
        (peak.0 - idle.0) / 10,
        idle.1,
        peak.1,
        10.0 * size as f64 / 1e6 / wall,
        median(rates)
    );
    for k in 0..10 {
        let out = dir.join(format!("out{k}.bin"));
        assert!(
            fileshare_support::same_bytes(&src, &out),
            "fetch {k} differs"
        );
        let _ = std::fs::remove_file(out);
    }
    let _ = std::fs::remove_file(&src);
}
