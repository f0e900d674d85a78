//! Prosody, then ejabberd, restart under three running nodes (two on Prosody, one on ejabberd,
//! across the federation): the nodes on Prosody reconnect on their own (backoff with jitter, a new session
//! since the server forgot the old one) and every node sees every other's new session within
//! 15 s of the server being back.
//! Prosody is stopped, left down for a second (so the nodes see the outage), and started
//! again from the lab's own files (`Lab::start_server`).

mod common;
mod node_support;

use std::time::{Duration, Instant};

use chamber::account::{LinkState, TlsMode};
use chamber_lab::topology::{ALPHA, BETA};
use chamber_lab::{Lab, LabSpec, NatKind, SiteSpec};
use node_support::{NodeHome, bound_jids, seen};

/// Every node sees the current sessions of every other node.
fn all_see_all(homes: &[NodeHome]) -> Result<(), String> {
    let statuses: Vec<_> = homes.iter().map(|h| h.status()).collect();
    for (i, s) in statuses.iter().enumerate() {
        let s = s.as_ref().ok_or(format!("node {i} does not answer"))?;
        for (j, other) in statuses.iter().enumerate() {
            if i == j {
                continue;
            }
            let other = other.as_ref().ok_or(format!("node {j} does not answer"))?;
            if other.accounts.iter().any(|a| a.state != LinkState::Online) {
                return Err(format!("node {j} is not online"));
            }
            for jid in bound_jids(other) {
                if !seen(s).contains(&jid) {
                    return Err(format!("node {i} does not see {jid}"));
                }
            }
        }
    }
    Ok(())
}

fn wait_all_see_all(homes: &[NodeHome], timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        match all_see_all(homes) {
            Ok(()) => return Ok(start.elapsed()),
            Err(e) if start.elapsed() > timeout => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[test]
fn rendezvous_nodes_reconnect_and_rediscover_after_a_server_restart() {
    if !common::lab_available() {
        return;
    }
    let started = Instant::now();
    let mut lab = Lab::up(LabSpec::with_sites(vec![
        SiteSpec::new("full", NatKind::FullCone),
        SiteSpec::new("port", NatKind::PortRestrictedCone),
        SiteSpec::new("symmetric", NatKind::Symmetric),
    ]))
    .expect("lab up");
    node_support::chamber_bin();
    let lab_up = started.elapsed();
    let plan = [
        ("full", 1, ALPHA),
        ("port", 2, BETA),
        ("symmetric", 3, ALPHA),
    ];
    let homes: Vec<NodeHome> = plan
        .iter()
        .map(|(site, k, domain)| {
            let home = NodeHome::new(&lab, site);
            let ns = &lab.site(site).expect("site").host;
            home.add_account(ns, &lab, *k, domain, TlsMode::StartTls);
            home
        })
        .collect();
    let daemons: Vec<_> = plan
        .iter()
        .zip(&homes)
        .map(|((site, ..), h)| h.up(&lab.site(site).expect("site").host))
        .collect();
    let first = wait_all_see_all(&homes, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("no first discovery: {e}\n{}", daemons[0].tail(30)));
    eprintln!("first discovery after {} ms", first.as_millis());
    let before: Vec<Vec<String>> = homes
        .iter()
        .map(|h| bound_jids(&h.status().expect("status")))
        .collect();

    let down = Instant::now();
    lab.stop_server("Prosody");
    eprintln!("Prosody stopped in {} ms", down.elapsed().as_millis());
    // The nodes on Prosody notice (their TCP connection closes) and start retrying.
    let noticed = homes[0].wait_status(Duration::from_secs(10), |s| {
        s.accounts[0].state != LinkState::Online
    });
    assert!(
        noticed.is_some(),
        "node a did not notice the outage:\n{}",
        daemons[0].tail(20)
    );
    std::thread::sleep(Duration::from_secs(1));
    let t = Instant::now();
    lab.start_server("Prosody").expect("start Prosody again");
    eprintln!("Prosody started again in {} ms", t.elapsed().as_millis());
    let back = Instant::now();
    let took = wait_all_see_all(&homes, Duration::from_secs(15)).unwrap_or_else(|e| {
        panic!(
            "not rediscovered within 15 s: {e}\nnode a:\n{}\nnode b:\n{}",
            daemons[0].tail(60),
            daemons[1].tail(60)
        )
    });
    eprintln!(
        "everyone rediscovered {} ms after Prosody was back ({} ms after it stopped)",
        took.as_millis(),
        down.elapsed().as_millis()
    );
    assert!(back.elapsed() < Duration::from_secs(15));
    for (i, h) in homes.iter().enumerate() {
        let s = h.status().expect("status");
        let a = &s.accounts[0];
        eprintln!(
            "node {i}: {} reconnects {}, resumptions {}, XEP-0198 {}",
            a.jid, a.reconnects, a.resumptions, a.stream_management
        );
        if plan[i].2 == ALPHA {
            assert!(a.reconnects >= 1, "node {i} did not log in again");
            assert_ne!(bound_jids(&s), before[i], "node {i} kept its old session");
        } else {
            assert_eq!(
                bound_jids(&s),
                before[i],
                "node {i} on ejabberd was not affected"
            );
        }
    }

    // The same with ejabberd, under node b, but as a crash: no stream is closed, so node b
    // tries to resume its XEP-0198 session with a server that forgot it (and that says so
    // in a `<failed/>` tokio-xmpp cannot parse: see `account::link`).
    let down = Instant::now();
    lab.crash_server("ejabberd");
    homes[1]
        .wait_status(Duration::from_secs(10), |s| {
            s.accounts[0].state != LinkState::Online
        })
        .unwrap_or_else(|| panic!("node b did not notice:\n{}", daemons[1].tail(20)));
    let t = Instant::now();
    lab.start_server("ejabberd").expect("start ejabberd again");
    eprintln!(
        "ejabberd started again after a crash in {} ms",
        t.elapsed().as_millis()
    );
    let took = wait_all_see_all(&homes, Duration::from_secs(15)).unwrap_or_else(|e| {
        panic!(
            "not rediscovered within 15 s of ejabberd's restart: {e}\n{}",
            daemons[1].tail(60)
        )
    });
    eprintln!(
        "everyone rediscovered {} ms after ejabberd was back ({} ms after it stopped)",
        took.as_millis(),
        down.elapsed().as_millis()
    );
    let b = homes[1].status().expect("status");
    assert!(b.accounts[0].reconnects >= 1, "node b did not log in again");
    eprintln!(
        "lab up {} ms, total {} ms",
        lab_up.as_millis(),
        started.elapsed().as_millis()
    );
}
