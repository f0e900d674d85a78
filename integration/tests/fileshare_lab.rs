//! The file share app (`examples/fileshare`, issue 7) on real rings:
//!
//! 1. three daemons on the loopback lab: a file shared on two nodes is listed and fetched
//!    from both by the third, byte-exact; malformed requests and ranges outside the file are
//!    refused without harming the holder; a fetch SIGKILLed midway resumes from its partial
//!    file; a holder SIGKILLed mid-fetch is replaced by the other; with no holder left the
//!    fetch stops with an error, and resumes once a holder is back;
//! 2. a 200 MB random file crosses a relayed path (symmetric NAT ↔ symmetric NAT, linked over
//!    TURN or a two-hop relay, never direct) byte-exact.

mod common;
mod fileshare_support;
mod node_support;
mod ring_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use chamber::account::TlsMode;
use chamber::api::Client;
use chamber_lab::topology::ALPHA;
use chamber_lab::{Lab, LabSpec, NatKind, SiteSpec};
use fileshare_support::{Sharer, chunks_done, run, same_bytes, summary, wait_chunks};
use node_support::NodeHome;
use ring_support::{Ring, overlay, start_loopback};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A folder for the test's files inside the lab's folder (removed with the lab).
fn work_dir(ring: &Ring, name: &str) -> PathBuf {
    let d = ring.lab.dir().join(name);
    std::fs::create_dir_all(&d).expect("work dir");
    d
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn a_file_shared_on_two_nodes_is_fetched_from_both_resumed_and_survives_holders_dying() {
    if !common::lab_available() {
        return;
    }
    fileshare_support::bin();
    let ring = start_loopback(3, 0, false);
    ring.all_online();
    assert!(
        ring.wait_consistent(Duration::from_secs(30)).is_some(),
        "ring not consistent:\n{}",
        ring.dump()
    );
    let dir = work_dir(&ring, "fileshare");
    let src = dir.join("big.bin");
    let size = 40 << 20;
    let hash = fileshare_support::random_file(&src, size);
    let mut sharers = vec![
        Sharer::start(&ring, 0, &[&src], dir.join("share0.log")),
        Sharer::start(&ring, 1, &[&src], dir.join("share1.log")),
    ];
    fileshare_support::wait_listed(&ring, 2, &hash, 2, Duration::from_secs(60));
    let list = run(&ring, 2, &["list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("big.bin") && text.contains(&hash[..16]),
        "the table lists the file:\n{text}"
    );

    // 1. Fetched by name from both holders at once, byte-exact.
    let f1 = dir.join("f1.bin");
    let s = summary(&run(
        &ring,
        2,
        &["fetch", "big.bin", "--out", path_str(&f1), "--json"],
    ));
    assert_eq!(
        (s.size, s.sha256.as_str(), s.resumed),
        (size as u64, &*hash, 0)
    );
    assert_eq!(s.holders.len(), 2, "{s:?}");
    assert!(
        s.holders.iter().all(|h| h.bytes > 0),
        "both holders must send part of the file: {s:?}"
    );
    assert!(same_bytes(&src, &f1), "fetched file differs");
    eprintln!(
        "fetched {} MB from 2 holders in {:.2} s ({:.1} MB/s)",
        size >> 20,
        s.seconds,
        s.mbytes_per_s
    );
    // Without --json: one plain final line (stdout is not a terminal, so no bar).
    let f1b = dir.join("f1b.bin");
    let plain = run(&ring, 2, &["fetch", &hash[..12], "--out", path_str(&f1b)]);
    let out = String::from_utf8_lossy(&plain.stdout);
    assert!(plain.status.success(), "{out}");
    assert_eq!(out.lines().count(), 1, "one plain line: {out:?}");
    assert!(out.contains("verified"), "{out}");
    assert!(sha_ok(&f1b, &hash));
    let again = run(&ring, 2, &["fetch", &hash, "--out", path_str(&f1b)]);
    assert!(
        !again.status.success(),
        "an existing file is never overwritten"
    );
    let nobody = run(&ring, 2, &["fetch", "no-such-file"]);
    assert!(
        String::from_utf8_lossy(&nobody.stderr).contains("nobody in ring"),
        "{nobody:?}"
    );

    // 2. Bad requests from a peer are refused; the holder keeps serving.
    bad_requests(&ring, &hash, size as u64);
    assert!(sharers[1].alive(), "the holder died of bad requests");

    // 3. A fetch SIGKILLed midway resumes from its partial file, byte-exact.
    let f2 = dir.join("f2.bin");
    let mut child = fileshare_support::command(
        &ring,
        2,
        &["fetch", &hash, "--out", path_str(&f2), "--limit-rate", "4M"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("start fetch");
    wait_chunks(&f2, 8, &mut child, Duration::from_secs(60));
    child.kill().expect("SIGKILL the fetch");
    let _ = child.wait();
    assert!(!f2.exists(), "a killed fetch must not leave the final file");
    let before = chunks_done(&f2);
    assert!((8..40).contains(&before), "{before} chunks done");
    let s = summary(&run(
        &ring,
        2,
        &["fetch", &hash, "--out", path_str(&f2), "--json"],
    ));
    assert!(
        s.resumed >= before << 20 && s.fetched + s.resumed == size as u64,
        "resumed {} fetched {} ({before} chunks were done)",
        s.resumed,
        s.fetched
    );
    assert!(same_bytes(&src, &f2), "resumed file differs");

    // 4. A holder SIGKILLed mid-fetch: the other takes over its chunks.
    let f3 = dir.join("f3.bin");
    let child = fileshare_support::command(
        &ring,
        2,
        &[
            "fetch",
            &hash,
            "--out",
            path_str(&f3),
            "--json",
            "--limit-rate",
            "5M",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start fetch");
    let mut child = child;
    wait_chunks(&f3, 6, &mut child, Duration::from_secs(60));
    sharers[0].kill();
    let out = wait_output(child, Duration::from_secs(120));
    let s = summary(&out);
    let n0 = ring_address(&ring, 0);
    let h0 = s
        .holders
        .iter()
        .find(|h| h.address == n0)
        .expect("n0 held it");
    let h1 = s
        .holders
        .iter()
        .find(|h| h.address != n0)
        .expect("n1 held it");
    assert!(h0.bytes > 0 && h1.bytes > 0, "{s:?}");
    assert!(h1.bytes > h0.bytes, "n1 took over n0's part: {s:?}");
    assert!(same_bytes(&src, &f3), "file differs after a holder died");

    // 5. The last holder dies mid-fetch: an explicit error; resumed once a holder is back.
    let f4 = dir.join("f4.bin");
    let mut child = fileshare_support::command(
        &ring,
        2,
        &["fetch", &hash, "--out", path_str(&f4), "--limit-rate", "5M"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start fetch");
    wait_chunks(&f4, 6, &mut child, Duration::from_secs(60));
    sharers[1].kill();
    let out = wait_output(child, Duration::from_secs(120));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the fetch cannot finish without holders"
    );
    assert!(
        err.contains("every holder failed") && err.contains("run the same command again"),
        "{err}"
    );
    assert!(!f4.exists());
    let kept = chunks_done(&f4);
    assert!(kept >= 6, "{kept} chunks kept");
    sharers.push(Sharer::start(&ring, 1, &[&src], dir.join("share1b.log")));
    let s = summary(&run(
        &ring,
        2,
        &["fetch", &hash, "--out", path_str(&f4), "--json"],
    ));
    assert!(s.resumed >= kept << 20, "{s:?}");
    assert!(same_bytes(&src, &f4), "file differs after resuming");
    for f in [&src, &f1, &f1b, &f2, &f3, &f4] {
        let _ = std::fs::remove_file(f);
    }
}

fn sha_ok(path: &Path, hash: &str) -> bool {
    fileshare_support::sha256_of(path) == hash
}

fn ring_address(ring: &Ring, i: usize) -> String {
    let st = ring.homes[i].status().expect("status");
    overlay(&st).expect("in the ring").address.clone()
}

/// Waits for a child's output, killing it after `limit`.
fn wait_output(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let t = Instant::now();
    while matches!(child.try_wait(), Ok(None)) {
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("the fetch did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("fetch output")
}

/// Malformed requests and ranges outside the file, sent by hand to node 1's holder: each is
/// refused, and a good request on the same stream is still answered.
fn bad_requests(ring: &Ring, hash: &str, size: u64) {
    let socket = fileshare_support::app_socket(ring, 2);
    let holder = ring_address(ring, 1);
    let hash: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hash[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let c = Client::connect(&socket, None).await.expect("client");
        let to = holder.parse().expect("address");
        let req = |offset: u64, len: u32, magic: &[u8; 4]| {
            let mut b = magic.to_vec();
            b.extend_from_slice(&hash);
            b.extend_from_slice(&offset.to_be_bytes());
            b.extend_from_slice(&len.to_be_bytes());
            b
        };
        let mut s = c.connect_stream(&to, "fileshare").await.expect("stream");
        // Outside the file, overflowing, empty, too long, unknown file: refused, stream kept.
        for r in [
            req(size, 1, b"FSR1"),
            req(size - 10, 11, b"FSR1"),
            req(u64::MAX - 1, 4096, b"FSR1"),
            req(0, 0, b"FSR1"),
            req(0, 64 << 20, b"FSR1"),
        ] {
            s.write_all(&r).await.expect("write");
            assert_eq!(s.read_u8().await.expect("status"), 1, "must be refused");
            let n = s.read_u16().await.expect("len");
            let mut m = vec![0u8; usize::from(n)];
            s.read_exact(&mut m).await.expect("reason");
            assert!(!m.is_empty());
        }
        let mut unknown = req(0, 16, b"FSR1");
        unknown[4] ^= 0xff;
        s.write_all(&unknown).await.expect("write");
        assert_eq!(s.read_u8().await.expect("status"), 1);
        let n = s.read_u16().await.expect("len");
        let mut m = vec![0u8; usize::from(n)];
        s.read_exact(&mut m).await.expect("reason");
        // A good request still works on the same stream.
        s.write_all(&req(size - 16, 16, b"FSR1"))
            .await
            .expect("write");
        assert_eq!(s.read_u8().await.expect("status"), 0);
        let mut tail = [0u8; 16];
        s.read_exact(&mut tail).await.expect("data");
        // Garbage: refused and the stream closed.
        s.write_all(&[0x55; 48]).await.expect("write");
        assert_eq!(s.read_u8().await.expect("status"), 1);
        let n = s.read_u16().await.expect("len");
        let mut m = vec![0u8; usize::from(n)];
        s.read_exact(&mut m).await.expect("reason");
        let mut rest = Vec::new();
        let end = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
        assert!(end.is_ok(), "the holder must close a stream after garbage");
        // A stream dropped mid-request does not hurt it either.
        let mut s2 = c.connect_stream(&to, "fileshare").await.expect("stream");
        s2.write_all(&req(0, 16, b"FSR1")[..10])
            .await
            .expect("write");
        drop(s2);
    });
}

/// The nodes of a NAT lab with the given sites (one node each, all on Prosody), started.
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

/// How node `from` reaches node `to` according to its status: `Some("turn")`, `Some("relay")`
/// (a two-hop relay edge), `Some(<direct kind>)`, or `None` when `to` is not in its table.
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

#[test]
fn two_hundred_megabytes_cross_a_relayed_path_between_symmetric_nats_byte_exact() {
    if !common::lab_available() {
        return;
    }
    fileshare_support::bin();
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
    let (holder, fetcher) = (1, 2);
    // The symmetric pair has no direct path (NATLAB.md): TURN or a relay, once settled.
    let t = Instant::now();
    let kind = loop {
        match path_kind(&ring, fetcher, holder) {
            Some(k) if k != "connecting" => break k,
            _ if t.elapsed() > Duration::from_secs(60) => {
                panic!("symmetric1 never linked symmetric0:\n{}", ring.dump())
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    assert!(
        kind == "turn" || kind == "relay",
        "symmetric ↔ symmetric must be relayed, not {kind}:\n{}",
        ring.dump()
    );
    let dir = work_dir(&ring, "fileshare-200");
    let src = dir.join("two-hundred.bin");
    let size: u64 = 200_000_000;
    let hash = fileshare_support::random_file(&src, size as usize);
    let _sharer = Sharer::start(&ring, holder, &[&src], dir.join("share.log"));
    fileshare_support::wait_listed(&ring, fetcher, &hash, 1, Duration::from_secs(60));
    let out = dir.join("fetched.bin");
    let s = summary(&run(
        &ring,
        fetcher,
        &["fetch", &hash, "--out", path_str(&out), "--json"],
    ));
    let after = path_kind(&ring, fetcher, holder);
    let ok = sha_ok(&out, &hash) && same_bytes(&src, &out);
    let _ = std::fs::remove_file(&src);
    let _ = std::fs::remove_file(&out);
    assert!(ok, "the 200 MB file differs after crossing the relay");
    assert_eq!((s.size, s.resumed), (size, 0));
    assert!(
        after.as_deref().is_none_or(|k| k == "turn" || k == "relay"),
        "the pair went direct during the transfer: {after:?}"
    );
    eprintln!(
        "BENCH fileshare 200 MB symmetric0 -> symmetric1 over {kind}: {:.1} s, {:.1} MB/s",
        s.seconds, s.mbytes_per_s
    );
}
