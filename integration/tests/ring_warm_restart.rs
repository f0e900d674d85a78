//! Warm restarts (issue 6): a node that restarts rejoins its ring from its peer cache, through
//! the knock socket, with both XMPP servers down: after a clean stop (SIGTERM) and after a
//! crash (SIGKILL), from the port-restricted site. Then, with the servers back, the same node restarted cold (its cache
//! deleted) for comparison. The times go to docs/benchmarks.md.

mod common;
mod node_support;
mod ring_support;

use std::time::{Duration, Instant};

use ring_support::{Ring, overlay, start_with};

/// Links of node `i` by how they were signalled.
fn links_signalled(ring: &Ring, i: usize) -> Vec<String> {
    ring.homes[i]
        .status()
        .and_then(|s| {
            Some(
                overlay(&s)?
                    .peers
                    .iter()
                    .filter_map(|p| Some(p.link.as_ref()?.signalled.clone()))
                    .collect(),
            )
        })
        .unwrap_or_default()
}

fn cached_peers(ring: &Ring, i: usize) -> usize {
    ring.homes[i]
        .status()
        .and_then(|s| Some(overlay(&s)?.warm.as_ref()?.cached_peers))
        .unwrap_or(0)
}

/// Restarts node `i` (`crash`: SIGKILL, else SIGTERM) and measures how long after its start
/// the ring is consistent with it in again.
fn restart(ring: &mut Ring, i: usize, crash: bool) -> Duration {
    if crash {
        ring.daemons[i].kill();
    } else {
        ring.daemons[i].terminate();
    }
    let t = Instant::now();
    ring.daemons[i] = ring.homes[i].up(ring.host(i));
    // The victim must answer with its own view first: a consistency check before it is up
    // would count the others' view of a ring without it.
    ring.homes[i]
        .wait_status(Duration::from_secs(20), |s| overlay(s).is_some())
        .unwrap_or_else(|| panic!("{} did not start:\n{}", ring.names[i], ring.dump()));
    let Some(_) = ring.wait_consistent(Duration::from_secs(60)) else {
        panic!(
            "{} not back in a consistent ring within 60 s:\n{}",
            ring.names[i],
            ring.dump()
        );
    };
    t.elapsed()
}

#[test]
fn a_restarted_node_rejoins_from_its_cache_with_the_xmpp_servers_down() {
    if !common::lab_available() {
        return;
    }
    // Every account on Prosody, whose STUN/TURN (coturn) keeps running when the XMPP servers
    // stop: ejabberd's STUN and TURN stop with ejabberd, and a node left without reflexive or
    // relay candidates reaches only open and full-cone peers, restart or not.
    let mut ring = start_with(1, 0, false);
    ring.all_online();
    let Some(_) = ring.wait_consistent(Duration::from_secs(40)) else {
        panic!("ring not consistent within 40 s:\n{}", ring.dump());
    };
    let victim = ring.names.iter().position(|n| n == "port0").expect("port0");
    // Linked peers tell each other their knock ports and beacon each other.
    let t = Instant::now();
    while cached_peers(&ring, victim) < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the victim cached fewer than 2 peers in 30 s:\n{}",
            ring.dump()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "{} cached {} peers {} ms after the ring was consistent",
        ring.names[victim],
        cached_peers(&ring, victim),
        t.elapsed().as_millis()
    );

    ring.lab.stop_server("Prosody");
    ring.lab.stop_server("ejabberd");
    let mut times = Vec::new();
    for crash in [false, true] {
        let took = restart(&mut ring, victim, crash);
        let via = links_signalled(&ring, victim);
        eprintln!(
            "warm restart ({}), XMPP down: consistent {} ms after the start; links signalled {via:?}",
            if crash { "SIGKILL" } else { "SIGTERM" },
            took.as_millis()
        );
        assert!(
            via.iter().any(|v| v == "cache"),
            "no link from the cache: {via:?}\n{}",
            ring.dump()
        );
        let failed: Vec<String> = ring
            .alive
            .clone()
            .into_iter()
            .filter(|&j| j != victim)
            .filter(|&j| (0..3).all(|_| ring.ping(victim, j).is_err()))
            .map(|j| ring.names[j].clone())
            .collect();
        assert!(
            failed.is_empty(),
            "no ping from the restarted node to {failed:?}\n{}",
            ring.dump()
        );
        times.push(took);
        // The cache must hold the peers again before the next restart.
        let t = Instant::now();
        while cached_peers(&ring, victim) < 2 && t.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(6));
    }

    // For comparison: servers up, the cache deleted, a cold start through XMPP.
    ring.lab.start_server("Prosody").expect("Prosody back");
    ring.lab.start_server("ejabberd").expect("ejabberd back");
    ring.all_online_within(Duration::from_secs(60));
    ring.daemons[victim].terminate();
    let cache = ring.homes[victim].dir.join("xdg-data/chamber/peers.json");
    std::fs::remove_file(&cache).expect("the cache file exists");
    let cold = restart(&mut ring, victim, false);
    eprintln!(
        "cold restart, XMPP up, no cache: consistent {} ms after the start; links signalled {:?}",
        cold.as_millis(),
        links_signalled(&ring, victim)
    );
    eprintln!(
        "BENCH warm_restart sigterm_ms={} sigkill_ms={} cold_with_xmpp_ms={}",
        times[0].as_millis(),
        times[1].as_millis(),
        cold.as_millis()
    );
}
