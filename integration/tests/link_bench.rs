//! Link benchmarks in the lab (measured, not asserted; results go to the "Links" section of
//! `docs/benchmarks.md`):
//!
//! - setup time per NAT pair, from `session-initiate` to the first authenticated datagram,
//!   median and p95 over `CHAMBER_BENCH_RUNS` (default 20) links made one after another;
//! - what an idle link costs on the wire (ICE consent checks and Noise keepalives), counted
//!   in the lab's internet.
//!
//! ```text
//! cargo test --release -p chamber-lab --test link_bench -- --ignored --nocapture --test-threads 1
//! ```
//! `CHAMBER_BENCH_SERVER=beta.lab` runs the setup times over ejabberd instead of Prosody.

#[path = "common/mod.rs"]
mod common;
#[path = "link_common.rs"]
mod link_common;
#[path = "link_raw.rs"]
mod link_raw;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chamber::account::TlsMode;
use chamber::link::{Link, PathHint, PathKind};
use chamber_lab::topology::{ALPHA, BETA};
use chamber_lab::{Lab, LabSpec, NatKind, SiteSpec};
use link_common::{Friend, Turn, on, runtime_in, secret};
use link_raw::Sniffer;
use tokio::runtime::Runtime;

fn quantile(v: &[Duration], q: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// A friend on its own runtime in its site, echoing every link made to it.
struct Node {
    rt: Runtime,
    friend: Friend,
}

fn node(lab: &Lab, site: &str, k: u32, domain: &'static str, hint: PathHint) -> Node {
    let rt = runtime_in(&lab.site(site).expect("site").host);
    let cfg = common::account(lab, k, domain, TlsMode::StartTls);
    let mut friend = on(&rt, async move {
        let s = secret(k as u8);
        link_common::start(cfg, &s, &s, Turn::Offered, link_common::lab_linker(hint)).await
    });
    let mut incoming = std::mem::replace(&mut friend.incoming, tokio::sync::mpsc::channel(1).1);
    rt.spawn(async move {
        while let Some(r) = incoming.recv().await {
            if let Ok((_, link)) = r {
                let _ = link_common::echo_watched(link);
            }
        }
    });
    Node { rt, friend }
}

/// Links `a` to `b` `runs` times, one after another; setup times and the path of the last.
fn setups(a: &Node, b: &Node, runs: usize) -> (Vec<Duration>, Option<PathKind>, usize) {
    let (linker, peer) = (a.friend.linker.clone(), b.friend.jid.clone());
    on(&a.rt, async move {
        let (mut times, mut kind, mut failed) = (Vec::new(), None, 0);
        for _ in 0..runs {
            let t0 = Instant::now();
            match linker.connect(vec![peer.clone()]).await {
                Ok(link) => {
                    times.push(t0.elapsed());
                    kind = link.status().path.map(|p| p.kind);
                    close(link).await;
                }
                Err(e) => {
                    eprintln!("  failed: {e}");
                    failed += 1;
                }
            }
        }
        (times, kind, failed)
    })
}

async fn close(link: Link) {
    let _ = link.send(b"bye").await;
    link.close().await;
    // Let both ends finish with their agents before the next run.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[test]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
fn setup_time_per_nat_pair() {
    if !common::lab_available() {
        return;
    }
    let runs: usize = std::env::var("CHAMBER_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let domain = match std::env::var("CHAMBER_BENCH_SERVER").as_deref() {
        Ok(BETA) => BETA,
        _ => ALPHA,
    };
    let mut spec = LabSpec::each_kind(2);
    spec.prosody = domain == ALPHA;
    spec.ejabberd = !spec.prosody;
    spec.coturn = spec.prosody;
    // A second set of accounts for the nodes that know they cannot punch.
    spec.users *= 2;
    let sites = spec.sites.len() as u32;
    let lab = Lab::up(spec).expect("lab up");
    let mut nodes = BTreeMap::new();
    for (i, s) in lab.sites().iter().enumerate() {
        let name = s.spec.name.clone();
        nodes.insert(
            name.clone(),
            node(&lab, &name, i as u32 + 1, domain, PathHint::Unknown),
        );
    }
    eprintln!("\n| pair | path | median | p95 | runs | hint |\n|---|---|---|---|---|---|");
    let only: Option<Vec<String>> = std::env::var("CHAMBER_NAT_PAIRS")
        .ok()
        .map(|s| s.split(',').map(str::to_owned).collect());
    let wanted = |a: &NatKind, b: &NatKind| {
        only.as_ref()
            .is_none_or(|o| o.contains(&format!("{a}-{b}")))
    };
    let mut rows = Vec::new();
    for (i, a) in NatKind::ALL.iter().enumerate() {
        for b in &NatKind::ALL[i..] {
            if !wanted(a, b) {
                continue;
            }
            let (na, nb) = (&nodes[&format!("{a}-1")], &nodes[&format!("{b}-2")]);
            let (t, kind, failed) = setups(na, nb, runs);
            let row = format!(
                "| {a} ↔ {b} | {} | {} ms | {} ms | {}{} | none |",
                kind.map_or("—", |k| k.as_str()),
                quantile(&t, 0.5).as_millis(),
                quantile(&t, 0.95).as_millis(),
                t.len(),
                if failed > 0 {
                    format!(" ({failed} failed)")
                } else {
                    String::new()
                },
            );
            eprintln!("{row}");
            rows.push(row);
        }
    }
    // The pairs that cannot punch, from nodes whose reflection said so (no relay wait).
    let mut hinted = BTreeMap::new();
    for (i, s) in lab.sites().iter().enumerate() {
        let k = s.spec.nat;
        if matches!(k, NatKind::Symmetric | NatKind::UdpBlocked) || s.spec.name.ends_with("-2") {
            let name = s.spec.name.clone();
            let n = node(
                &lab,
                &name,
                sites + i as u32 + 1,
                domain,
                PathHint::NoDirect,
            );
            hinted.insert(name, n);
        }
    }
    for (i, a) in NatKind::ALL.iter().enumerate() {
        for b in &NatKind::ALL[i..] {
            if a.can_punch(*b) || !wanted(a, b) {
                continue;
            }
            let Some(na) = hinted.get(&format!("{a}-1")) else {
                continue;
            };
            let nb = &hinted[&format!("{b}-2")];
            let (t, kind, failed) = setups(na, nb, runs);
            let row = format!(
                "| {a} ↔ {b} | {} | {} ms | {} ms | {}{} | no direct path |",
                kind.map_or("—", |k| k.as_str()),
                quantile(&t, 0.5).as_millis(),
                quantile(&t, 0.95).as_millis(),
                t.len(),
                if failed > 0 {
                    format!(" ({failed} failed)")
                } else {
                    String::new()
                },
            );
            eprintln!("{row}");
            rows.push(row);
        }
    }
    eprintln!(
        "\nover {domain}, {runs} runs each:\n| pair | path | median | p95 | runs | hint |\n|---|---|---|---|---|---|\n{}",
        rows.join("\n")
    );
}

#[test]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
fn wire_cost_of_an_idle_link() {
    if !common::lab_available() {
        return;
    }
    const IDLE: Duration = Duration::from_secs(60);
    let mut spec = LabSpec::with_sites(vec![
        SiteSpec::new("a", NatKind::PortRestrictedCone),
        SiteSpec::new("b", NatKind::PortRestrictedCone),
    ]);
    spec.ejabberd = false;
    let lab = Lab::up(spec).expect("lab up");
    let a = node(&lab, "a", 1, ALPHA, PathHint::Unknown);
    let b = node(&lab, "b", 2, ALPHA, PathHint::Unknown);
    let (linker, peer) = (a.friend.linker.clone(), b.friend.jid.clone());
    let link = on(&a.rt, async move { linker.connect(vec![peer]).await }).expect("up");
    eprintln!("idle link on {:?}", link.status().path);
    // Let ICE finish with the pairs it did not pick.
    std::thread::sleep(Duration::from_secs(5));
    let (wan_a, wan_b) = (
        lab.site("a").expect("site").addrs.wan,
        lab.site("b").expect("site").addrs.wan,
    );
    let sniffer = Sniffer::start(lab.public());
    let before = link.status().stats;
    std::thread::sleep(IDLE);
    let after = link.status().stats;
    let between = |c: &link_raw::Captured| {
        (*c.src.ip() == wan_a && *c.dst.ip() == wan_b)
            || (*c.src.ip() == wan_b && *c.dst.ip() == wan_a)
    };
    let packets = sniffer.find(between);
    drop(sniffer);
    let wire = |p: &link_raw::Captured| p.payload.len() as u64 + 28;
    let stun: Vec<_> = packets.iter().filter(|p| p.payload[0] < 2).collect();
    let noise: Vec<_> = packets.iter().filter(|p| p.payload[0] == 3).collect();
    let secs = IDLE.as_secs_f64();
    let total: u64 = packets.iter().map(wire).sum();
    eprintln!(
        "idle link, both directions, {secs:.0} s, IP+UDP headers included:\n  all: {} packets, {:.1} B/s\n  ICE consent (STUN): {} packets, {:.1} B/s\n  Noise keepalives: {} packets, {:.1} B/s (tunnel counters: {} sent by this end)",
        packets.len(),
        total as f64 / secs,
        stun.len(),
        stun.iter().map(|p| wire(p)).sum::<u64>() as f64 / secs,
        noise.len(),
        noise.iter().map(|p| wire(p)).sum::<u64>() as f64 / secs,
        after.tx_packets - before.tx_packets,
    );
    on(&a.rt, async move { link.close().await });
}
