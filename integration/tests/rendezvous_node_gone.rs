//! Friends leaving. A node stopped cleanly (SIGTERM) ends its streams, so its friends see it go
//! at once (no ghost presence). A node killed with SIGKILL leaves a ghost: its servers keep the
//! session for resumption (Prosody's hibernation, ejabberd's resume timeout) and send no
//! unavailable presence; its friends must still see it gone within 60 s, through their pings.

mod common;
mod node_support;

use std::time::{Duration, Instant};

use chamber::account::TlsMode;
use chamber_lab::topology::{ALPHA, BETA};
use chamber_lab::{Lab, LabSpec, NatKind, SiteSpec};
use node_support::{NodeHome, bound_jids, seen};

#[test]
fn rendezvous_friends_see_a_stopped_or_killed_node_go() {
    if !common::lab_available() {
        return;
    }
    let started = Instant::now();
    let lab = Lab::up(LabSpec::with_sites(vec![
        SiteSpec::new("restricted", NatKind::RestrictedCone),
        SiteSpec::new("open", NatKind::None),
        SiteSpec::new("symmetric", NatKind::Symmetric),
    ]))
    .expect("lab up");
    node_support::chamber_bin();
    let lab_up = started.elapsed();
    // a: alpha; b: beta (stopped cleanly); c: alpha and beta (killed).
    let homes: Vec<NodeHome> = ["a", "b", "c"]
        .iter()
        .map(|n| NodeHome::new(&lab, n))
        .collect();
    let sites: Vec<_> = ["restricted", "open", "symmetric"]
        .iter()
        .map(|n| &lab.site(n).expect("site").host)
        .collect();
    homes[0].add_account(sites[0], &lab, 1, ALPHA, TlsMode::StartTls);
    homes[1].add_account(sites[1], &lab, 2, BETA, TlsMode::StartTls);
    homes[2].add_account(sites[2], &lab, 3, ALPHA, TlsMode::StartTls);
    homes[2].add_account(sites[2], &lab, 3, BETA, TlsMode::Direct);
    let mut daemons: Vec<_> = homes.iter().zip(&sites).map(|(h, s)| h.up(s)).collect();
    for (h, d) in homes.iter().zip(&daemons) {
        h.wait_status(Duration::from_secs(20), |s| {
            s.accounts.iter().all(|a| a.bound_jid.is_some())
        })
        .unwrap_or_else(|| panic!("not online:\n{}", d.tail(20)));
    }
    // Every node sees every other node's sessions as they are now: a session that drops and
    // comes back under a new resource must be found again, not waited for under its old one.
    let found = Instant::now();
    let jids: Vec<Vec<String>> = loop {
        let statuses: Vec<_> = homes.iter().map(|h| h.status()).collect();
        let jids: Vec<Vec<String>> = statuses
            .iter()
            .map(|s| {
                s.as_ref()
                    .filter(|s| s.accounts.iter().all(|a| a.bound_jid.is_some()))
                    .map(bound_jids)
                    .unwrap_or_default()
            })
            .collect();
        let all_seen = statuses.iter().enumerate().all(|(i, s)| {
            s.as_ref().is_some_and(|s| {
                (0..3)
                    .filter(|j| *j != i)
                    .all(|j| !jids[j].is_empty() && jids[j].iter().all(|x| seen(s).contains(x)))
            })
        });
        if all_seen {
            break jids;
        }
        if found.elapsed() > Duration::from_secs(15) {
            let logs: Vec<String> = daemons
                .iter()
                .enumerate()
                .map(|(i, d)| format!("--- node {i}:\n{}", d.tail(60)))
                .collect();
            panic!(
                "friends not all discovered after 15 s: bound {jids:?}, seen {:?}\n{}",
                statuses
                    .iter()
                    .map(|s| s.as_ref().map(seen))
                    .collect::<Vec<_>>(),
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "all friends discovered in {} ms",
        found.elapsed().as_millis()
    );
    let logs: Vec<std::path::PathBuf> = daemons.iter().map(|d| d.log.clone()).collect();
    let gone = |observer: usize, node: usize, within: Duration| -> Duration {
        let t = Instant::now();
        homes[observer]
            .wait_status(within, |s| jids[node].iter().all(|j| !seen(s).contains(j)))
            .unwrap_or_else(|| {
                panic!(
                    "node {observer} still sees node {node} after {within:?}:\n{}",
                    std::fs::read_to_string(&logs[observer]).unwrap_or_default()
                )
            });
        t.elapsed()
    };

    // Clean stop: gone at once for both friends.
    let t = Instant::now();
    daemons[1].terminate();
    let stop_ms = t.elapsed().as_millis();
    let seen_a = gone(0, 1, Duration::from_secs(5));
    let seen_c = gone(2, 1, Duration::from_secs(5));
    eprintln!(
        "SIGTERM: node b exited in {stop_ms} ms; a saw it go after {} ms, c after {} ms",
        seen_a.as_millis(),
        seen_c.as_millis()
    );

    // SIGKILL: a ghost presence, found out by pings.
    let t = Instant::now();
    daemons[2].kill();
    let seen_a = gone(0, 2, Duration::from_secs(60));
    eprintln!(
        "SIGKILL: node a saw node c (both its sessions) go after {} ms",
        t.elapsed().as_millis()
    );
    assert!(seen_a < Duration::from_secs(60));
    let log = std::fs::read_to_string(&daemons[0].log).unwrap_or_default();
    assert!(
        log.contains("ghost") || log.contains("ping refused"),
        "how was it found?"
    );
    eprintln!(
        "lab up {} ms, total {} ms",
        lab_up.as_millis(),
        started.elapsed().as_millis()
    );
}
