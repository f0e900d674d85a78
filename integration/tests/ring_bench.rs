//! Ring benchmarks over real links (issue 6, "Benchmarks"; results in `docs/benchmarks.md`,
//! "Ring over real links"). Real `chamber up` daemons, measured, nothing asserted beyond the
//! ring forming. Run them one at a time, release build:
//!
//! ```text
//! cargo test --release -p chamber-lab --test ring_bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! The loopback lab is one public site (no NAT) whose host namespace holds every daemon. Its
//! accounts are all on Prosody unless `CHAMBER_BENCH_SPLIT=1` alternates them between Prosody
//! and ejabberd: split, a ring of 12 ends as two consistent rings, one per server, that never
//! merge (same-server friends are announced first, a node links only friends until it is in a
//! ring, and nothing joins two rings that each look whole; see `docs/benchmarks.md`).
//! `CHAMBER_BENCH_RINGS` (e.g. `3x3,12x3,50x1`, size × runs) and `CHAMBER_BENCH_BIG` (the 50 of
//! the memory benchmark) change the sizes.

mod common;
mod node_support;
mod ring_support;

use std::time::{Duration, Instant};

use chamber::node::NodeStatus;
use chamber::runtime::PingReport;
use chamber_lab::topology::{ALPHA, BETA};
use node_support::NodeHome;
use ring_support::{Ring, overlay, start_loopback, start_with, unix_ms};

/// A second ring secret: the memory baseline's node is alone in it.
const SOLO_HEX: &str = "736f6c6f2072696e67206f66206368616d626572206c61622062617365212121";

fn env_sizes() -> Vec<(usize, usize)> {
    let spec = std::env::var("CHAMBER_BENCH_RINGS").unwrap_or_else(|_| "3x3,12x3,50x1".into());
    spec.split(',')
        .map(|p| {
            let (n, runs) = p.split_once('x').unwrap_or((p, "1"));
            (
                n.trim().parse().expect("CHAMBER_BENCH_RINGS size"),
                runs.trim().parse().expect("CHAMBER_BENCH_RINGS runs"),
            )
        })
        .collect()
}

fn split() -> bool {
    std::env::var("CHAMBER_BENCH_SPLIT").is_ok_and(|v| v == "1")
}

fn big() -> usize {
    std::env::var("CHAMBER_BENCH_BIG").map_or(50, |v| v.parse().expect("CHAMBER_BENCH_BIG"))
}

/// Median, min and max.
fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (median, s[0], s[n - 1])
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One timed formation: daemons started, all logged in, ring consistent.
struct Formation {
    /// First daemon start → last login, ms.
    start_to_last_login: f64,
    /// Each daemon's own start → its login, ms (median, max).
    own_login: (f64, f64),
    /// Last login → consistent, ms.
    after_last_login: f64,
    /// The resolution: the status round that found it, ms.
    round: f64,
}

/// Times `n` started nodes to a consistent ring; on a timeout, says how many nodes had their
/// true neighbours at the end.
fn form(ring: &Ring, n: usize) -> Result<Formation, String> {
    let limit = Duration::from_secs(60 + n as u64);
    let last_login = ring.all_online_within(limit);
    // How many nodes had their true neighbours, each time that changed (Unix ms, count).
    let mut steps: Vec<(u64, Option<usize>)> = Vec::new();
    let t = Instant::now();
    let mut found = None;
    while t.elapsed() < limit {
        let round = Instant::now();
        let statuses = ring.statuses();
        let correct = Ring::correct_nodes(&statuses);
        if steps.last().map(|s| s.1) != Some(correct) {
            steps.push((unix_ms(), correct));
        }
        if correct == Some(n) {
            found = Some(ring_support::Consistent {
                elapsed: t.elapsed(),
                at_ms: unix_ms(),
                round: round.elapsed(),
                statuses,
            });
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let timeline: Vec<String> = steps
        .iter()
        .map(|(at, c)| {
            let after = *at as i64 - last_login as i64;
            format!("{after}:{}", c.map_or("-".into(), |c| c.to_string()))
        })
        .collect();
    eprintln!(
        "BENCH ring={n}: nodes with their true neighbours over time (ms after the last login:count): {}",
        timeline.join(" ")
    );
    let Some(c) = found else {
        let statuses = ring.statuses();
        for w in wrong_nodes(&statuses) {
            eprintln!("BENCH ring={n}: wrong: {w}");
        }
        return Err(format!(
            "ring of {n} not consistent within {limit:?} of the last login: {:?} of {n} nodes \
             with their true neighbours at the end; load {}",
            Ring::correct_nodes(&statuses),
            load()
        ));
    };
    let st: Vec<&NodeStatus> = c
        .statuses
        .iter()
        .map(|s| s.as_ref().expect("status"))
        .collect();
    let first_start = st.iter().map(|s| s.started_ms).min().expect("nodes");
    let own: Vec<f64> = st
        .iter()
        .map(|s| {
            let login = s.accounts[0].online_since_ms.expect("online");
            login.saturating_sub(s.started_ms) as f64
        })
        .collect();
    let (own_median, _, own_max) = stats(&own);
    Ok(Formation {
        start_to_last_login: last_login.saturating_sub(first_start) as f64,
        own_login: (own_median, own_max),
        after_last_login: c.at_ms.saturating_sub(last_login) as f64,
        round: c.round.as_secs_f64() * 1e3,
    })
}

/// For each node without its true neighbours: what it has instead, and how it holds (or does
/// not hold) the true ones (a link, a relay edge, or nothing).
fn wrong_nodes(statuses: &[Option<NodeStatus>]) -> Vec<String> {
    let views: Vec<_> = statuses
        .iter()
        .filter_map(|s| s.as_ref().and_then(overlay))
        .collect();
    let mut addrs: Vec<String> = views.iter().map(|v| v.address.clone()).collect();
    addrs.sort_by_key(|a| a.parse::<brunet_compat::address::Address>().ok());
    let n = addrs.len();
    let short = |a: &str| a[a.len().saturating_sub(8)..].to_string();
    let mut out = Vec::new();
    for v in &views {
        let Some(k) = addrs.iter().position(|a| *a == v.address) else {
            continue;
        };
        let left = &addrs[(k + 1) % n];
        let right = &addrs[(k + n - 1) % n];
        let holds = |a: &str| {
            v.peers
                .iter()
                .find(|p| p.address == a)
                .map_or("nothing".to_string(), |p| match (&p.link, &p.relay_via) {
                    (Some(l), _) => format!("a {} link ({})", l.kind, p.roles),
                    (None, Some(via)) => format!("a relay edge via {} ({})", short(via), p.roles),
                    (None, None) => format!("an entry ({})", p.roles),
                })
        };
        for (side, want, have) in [
            ("left", left, v.left.first()),
            ("right", right, v.right.first()),
        ] {
            if have != Some(want) {
                out.push(format!(
                    "{} sees {} {side}, the true one is {} and it holds {}",
                    short(&v.address),
                    have.map_or("none".into(), |h| short(h)),
                    short(want),
                    holds(want)
                ));
            }
        }
    }
    out
}

fn print_formation(n: usize, run: usize, f: &Formation) {
    let servers = if split() { "split" } else { "prosody" };
    eprintln!(
        "BENCH ring={n} servers={servers} run={run}: consistent {:.0} ms after the last login (status round {:.0} ms); \
         first start -> last login {:.0} ms; own start -> login median {:.0} ms, max {:.0} ms; load {}",
        f.after_last_login,
        f.round,
        f.start_to_last_login,
        f.own_login.0,
        f.own_login.1,
        load()
    );
}

#[test]
#[ignore = "benchmark: time to a consistent ring of 3, 12 and 50 nodes on the loopback lab"]
fn time_to_a_consistent_ring_on_the_loopback_lab() {
    if !common::lab_available() {
        return;
    }
    for (n, runs) in env_sizes() {
        let mut after = Vec::new();
        let mut to_login = Vec::new();
        for run in 0..runs {
            let ring = start_loopback(n, 0, split());
            let f = match form(&ring, n) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("BENCH ring={n} run={run}: {e}");
                    continue;
                }
            };
            print_formation(n, run, &f);
            after.push(f.after_last_login);
            to_login.push(f.start_to_last_login);
        }
        if after.is_empty() {
            continue;
        }
        let (m, lo, hi) = stats(&after);
        let (lm, llo, lhi) = stats(&to_login);
        eprintln!(
            "BENCH SUMMARY ring={n} runs={runs}: last login -> consistent median {m:.0} ms \
             (min {lo:.0}, max {hi:.0}); first start -> last login median {lm:.0} ms \
             (min {llo:.0}, max {lhi:.0})"
        );
    }
}

#[test]
#[ignore = "benchmark: repair time after a SIGKILL in a ring of 12 on the loopback lab"]
fn repair_after_a_kill_in_a_ring_of_twelve() {
    if !common::lab_available() {
        return;
    }
    let mut ring = start_loopback(12, 0, split());
    let f = form(&ring, 12).unwrap_or_else(|e| panic!("{e}\n{}", ring.dump()));
    print_formation(12, 0, &f);
    let mut repairs = Vec::new();
    // Three kills in a row (12 → 11 → 10 → 9 nodes), each once the ring has settled.
    for k in 0..3 {
        std::thread::sleep(Duration::from_secs(3));
        let victim = ring.alive[(5 * k + 3) % ring.alive.len()];
        let t = Instant::now();
        ring.daemons[victim].kill();
        let killed = t.elapsed();
        ring.alive.retain(|&i| i != victim);
        let Some(c) =
            ring.wait_consistent_sampled(Duration::from_secs(40), Duration::from_millis(20))
        else {
            panic!(
                "ring not consistent within 40 s of a kill:\n{}",
                ring.dump()
            );
        };
        let ms = (c.elapsed + killed).as_secs_f64() * 1e3;
        eprintln!(
            "BENCH repair: {} of {} killed, ring of {} consistent again {ms:.0} ms after SIGKILL \
             (status round {:.0} ms); load {}",
            ring.names[victim],
            ring.alive.len() + 1,
            ring.alive.len(),
            c.round.as_secs_f64() * 1e3,
            load()
        );
        repairs.push(ms);
    }
    let (m, lo, hi) = stats(&repairs);
    eprintln!("BENCH SUMMARY repair: median {m:.0} ms (min {lo:.0}, max {hi:.0}) over 3 kills");
}

/// How a pair is connected, from the first node's table.
fn class_of(statuses: &[Option<NodeStatus>], a: usize, b: usize) -> Option<&'static str> {
    let va = overlay(statuses[a].as_ref()?)?;
    let vb = overlay(statuses[b].as_ref()?)?;
    let Some(p) = va.peers.iter().find(|p| p.address == vb.address) else {
        return Some("overlay");
    };
    match (&p.link, &p.relay_via) {
        (Some(l), _) if l.kind == "turn" => Some("turn"),
        (Some(l), _) if l.kind == "connecting" => None,
        (Some(_), _) => Some("direct"),
        (None, Some(_)) => Some("relay"),
        (None, None) => None,
    }
}

/// `chamber ping -c count --json` from node `a` (an index into `homes`) to `target`.
fn ping(ring: &Ring, a: usize, target: &str, count: u32) -> Vec<PingReport> {
    let c = count.to_string();
    let out = ring.homes[a].run(ring.host(a), &["ping", "-c", &c, "--json", target], "");
    // One pretty-printed JSON object per echo.
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<PingReport>()
        .map_while(Result::ok)
        .collect()
}

/// Pings up to `per_class` pairs of each class (direct, TURN, relay, overlay), `count` echoes
/// each, and prints the RTT and hops per class.
fn latency(ring: &Ring, label: &str, per_class: usize, count: u32) {
    let statuses = ring.statuses();
    let mut chosen: Vec<(&'static str, usize, usize)> = Vec::new();
    let n = ring.alive.len();
    // Walk pairs in a spread order so that the chosen pairs are not all from node 0.
    for step in 1..n {
        for ia in 0..n {
            let ib = (ia + step) % n;
            let Some(class) = class_of(&statuses, ia, ib) else {
                continue;
            };
            if chosen.iter().filter(|(c, _, _)| *c == class).count() < per_class {
                chosen.push((class, ia, ib));
            }
        }
    }
    for class in ["direct", "turn", "relay", "overlay"] {
        let mut rtts = Vec::new();
        let mut hops = Vec::new();
        for &(_, ia, ib) in chosen.iter().filter(|(c, _, _)| *c == class) {
            let (a, b) = (ring.alive[ia], ring.alive[ib]);
            let target = overlay(statuses[ib].as_ref().expect("status"))
                .expect("ring")
                .address
                .clone();
            let reports = ping(ring, a, &target, count);
            let r: Vec<f64> = reports.iter().map(|r| r.rtt_ms).collect();
            let h: Vec<String> = reports
                .iter()
                .map(|r| format!("{}+{}", r.hops_out, r.hops_back))
                .collect();
            let via = overlay(statuses[ia].as_ref().expect("status"))
                .and_then(|v| v.peers.iter().find(|p| p.address == target))
                .and_then(|p| p.relay_via.clone())
                .map(|v| format!(" via {v}"))
                .unwrap_or_default();
            eprintln!(
                "BENCH latency {label} {class}: {} -> {}{via}: {}/{count} answered, rtt {r:.2?} ms, hops out+back {h:?}",
                ring.names[a],
                ring.names[b],
                reports.len()
            );
            rtts.extend(r);
            hops.extend(reports.iter().map(|r| f64::from(r.hops_out)));
        }
        if rtts.is_empty() {
            eprintln!("BENCH SUMMARY latency {label} {class}: no such pair in this ring");
            continue;
        }
        let (m, lo, hi) = stats(&rtts);
        let (hm, hlo, hhi) = stats(&hops);
        eprintln!(
            "BENCH SUMMARY latency {label} {class}: {} echoes over {} pairs, rtt median {m:.2} ms \
             (min {lo:.2}, max {hi:.2}); hops out median {hm} (min {hlo}, max {hhi})",
            rtts.len(),
            chosen.iter().filter(|(c, _, _)| *c == class).count()
        );
    }
}

#[test]
#[ignore = "benchmark: ping over a direct link, a two-hop relay edge and overlay routing (NAT lab)"]
fn latency_direct_relay_and_overlay_on_the_nat_lab() {
    if !common::lab_available() {
        return;
    }
    // Twelve sites, two of each NAT kind: symmetric and UDP-blocked pairs end on relay edges
    // or TURN, the others direct.
    let ring = start_with(2, 0, split());
    ring.all_online_within(Duration::from_secs(60));
    let Some(c) = ring.wait_consistent_sampled(Duration::from_secs(60), Duration::from_millis(50))
    else {
        panic!("ring of 12 not consistent within 60 s:\n{}", ring.dump());
    };
    eprintln!("BENCH NAT lab: ring of 12 consistent after {:?}", c.elapsed);
    // Shortcuts and relays settle for a few seconds more.
    std::thread::sleep(Duration::from_secs(8));
    latency(&ring, "nat-lab-12", 4, 5);
}

/// A `/proc/<pid>/status` field in KB: `VmRSS` (resident memory) or `RssAnon` (its anonymous
/// part: heap and stacks, without the binary's code pages, which every daemon on a machine
/// shares through the page cache, and which a node touches more of once its links run).
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn rss_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmRSS:")
}

fn anon_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "RssAnon:")
}

#[test]
#[ignore = "benchmark: daemon memory with 50 peers against a daemon alone in its ring (loopback)"]
fn memory_with_fifty_peers_and_latency_on_the_loopback_lab() {
    if !common::lab_available() {
        return;
    }
    let n = big();
    let ring = start_loopback(n, 1, split());
    // The baseline: the same daemon, logged in with the same roster (every lab user is a
    // friend), but alone in a ring nobody else holds.
    let host = ring.host(0);
    let solo = NodeHome::new(&ring.lab, "solo");
    let k = n as u32 + 1;
    let (domain, tls) = if n.is_multiple_of(2) || !split() {
        (ALPHA, chamber::account::TlsMode::StartTls)
    } else {
        (BETA, chamber::account::TlsMode::Direct)
    };
    solo.add_account(host, &ring.lab, k, domain, tls);
    solo.set_rings(&[("solo", SOLO_HEX)]);
    let _solo_daemon = solo.up(host);
    // Memory is read whether or not the ring became wholly consistent.
    match form(&ring, n) {
        Ok(f) => print_formation(n, 0, &f),
        Err(e) => eprintln!("BENCH ring={n}: {e}"),
    }
    // Let links, shortcuts and buffers settle before memory is read, and the daemons return
    // what they freed meanwhile (every 30 s, `runtime::trim`).
    std::thread::sleep(Duration::from_secs(31));
    let statuses = ring.statuses();
    let base_status = solo.status().expect("baseline status");
    let base_peers = base_status
        .rings
        .iter()
        .filter_map(|r| r.overlay.as_ref())
        .map(|v| v.peers.len())
        .sum::<usize>();
    let base = rss_kb(base_status.pid).expect("baseline RSS") as f64;
    let base_anon = anon_kb(base_status.pid).expect("baseline RssAnon") as f64;
    let mut rss = Vec::new();
    let mut per_peer = Vec::new();
    let mut per_link = Vec::new();
    let mut anon = Vec::new();
    let mut anon_per_peer = Vec::new();
    let mut anon_per_link = Vec::new();
    let mut peers_n = Vec::new();
    let mut links_n = Vec::new();
    for s in statuses.iter().flatten() {
        let Some(v) = overlay(s) else { continue };
        let (Some(r), Some(a)) = (rss_kb(s.pid), anon_kb(s.pid)) else {
            continue;
        };
        let peers = v.peers.len() as f64;
        let links = v.peers.iter().filter(|p| p.link.is_some()).count() as f64;
        let extra = r as f64 - base;
        let extra_anon = a as f64 - base_anon;
        rss.push(r as f64);
        anon.push(a as f64);
        peers_n.push(peers);
        links_n.push(links);
        per_peer.push(extra / peers.max(1.0));
        per_link.push(extra / links.max(1.0));
        anon_per_peer.push(extra_anon / peers.max(1.0));
        anon_per_link.push(extra_anon / links.max(1.0));
    }
    let (rm, rlo, rhi) = stats(&rss);
    let (pm, plo, phi) = stats(&peers_n);
    let (lm, llo, lhi) = stats(&links_n);
    let (ppm, pplo, pphi) = stats(&per_peer);
    let (plm, pllo, plhi) = stats(&per_link);
    eprintln!(
        "BENCH SUMMARY memory ring={n}: baseline (alone in its ring, {base_peers} peers) {base:.0} KB; \
         ring nodes RSS median {rm:.0} KB (min {rlo:.0}, max {rhi:.0}) = {:.2}x baseline; \
         known peers median {pm} (min {plo}, max {phi}), active links median {lm} (min {llo}, max {lhi}); \
         (RSS - baseline) per known peer median {ppm:.1} KB (min {pplo:.1}, max {pphi:.1}); \
         per active link median {plm:.1} KB (min {pllo:.1}, max {plhi:.1}); {} nodes read; load {}",
        rm / base,
        rss.len(),
        load()
    );
    let (am, alo, ahi) = stats(&anon);
    let (apm, aplo, aphi) = stats(&anon_per_peer);
    let (alm, allo, alhi) = stats(&anon_per_link);
    eprintln!(
        "BENCH SUMMARY anonymous memory ring={n}: baseline {base_anon:.0} KB; ring nodes RssAnon \
         median {am:.0} KB (min {alo:.0}, max {ahi:.0}); (RssAnon - baseline) per known peer \
         median {apm:.1} KB (min {aplo:.1}, max {aphi:.1}); per active link median {alm:.1} KB \
         (min {allo:.1}, max {alhi:.1})"
    );
    latency(&ring, &format!("loopback-{n}"), 4, 5);
    eprintln!("BENCH wall clock at the end: {} ms", unix_ms());
}
