//! Friends rings (issue 8, SocialVPN style) over real nodes: user1 and user3 are both friends
//! of user2 but not of each other (Prosody's rosters say so). Each makes `ring create pals
//! --friends` with the CLI. Without friends of friends, user1 and user3 each link to user2 and
//! never to each other (no link, no relay edge), and the one the core asks to link refuses.
//! With `--fof` on all three, user2 vouches for each to the other and they link.

mod common;
mod node_support;

use std::time::{Duration, Instant};

use chamber::account::TlsMode;
use chamber::node::NodeStatus;
use chamber::runtime::RingView;
use chamber_lab::topology::ALPHA;
use chamber_lab::{Lab, LabSpec, NatKind, SiteSpec};
use node_support::{Daemon, NodeHome};

fn pals(s: &NodeStatus) -> Option<&RingView> {
    s.rings.iter().find(|r| r.name == "pals")?.overlay.as_ref()
}

/// Whether `s` has a link or a relay edge in `pals` to `addr`.
fn reaches(s: &NodeStatus, addr: &str) -> bool {
    pals(s).is_some_and(|v| {
        v.peers
            .iter()
            .any(|p| p.address == addr && (p.link.is_some() || p.relay_via.is_some()))
    })
}

fn linked(s: &NodeStatus, addr: &str) -> bool {
    pals(s).is_some_and(|v| {
        v.peers
            .iter()
            .any(|p| p.address == addr && p.link.is_some())
    })
}

fn address(h: &NodeHome, d: &Daemon) -> String {
    h.wait_status(Duration::from_secs(30), |s| {
        s.accounts.iter().all(|a| a.online_since_ms.is_some()) && pals(s).is_some()
    })
    .and_then(|s| pals(&s).map(|v| v.address.clone()))
    .unwrap_or_else(|| panic!("node not online in ring pals:\n{}", d.tail(30)))
}

fn logs(daemons: &[Daemon]) -> String {
    daemons
        .iter()
        .enumerate()
        .map(|(i, d)| format!("--- user{}:\n{}", i + 1, d.tail(40)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Makes ring `pals` on every node with the CLI (no daemon running) and starts them.
fn start(lab: &Lab, homes: &[NodeHome], fof: bool) -> (Vec<Daemon>, Vec<String>) {
    let mut daemons = Vec::new();
    for (i, h) in homes.iter().enumerate() {
        let ns = &lab.site(&format!("s{i}")).expect("site").host;
        h.set_rings(&[]);
        let mut args = vec!["ring", "create", "pals", "--friends"];
        if fof {
            args.push("--fof");
        }
        let out = h.run(ns, &args, "");
        assert!(out.status.success(), "ring create: {out:?}");
        daemons.push(h.up(ns));
    }
    let addrs = homes
        .iter()
        .zip(&daemons)
        .map(|(h, d)| address(h, d))
        .collect();
    (daemons, addrs)
}

#[test]
fn friends_rings_link_friends_and_friends_of_friends_only_when_allowed() {
    if !common::lab_available() {
        return;
    }
    let started = Instant::now();
    let mut spec = LabSpec::with_sites(vec![
        SiteSpec::new("s0", NatKind::None),
        SiteSpec::new("s1", NatKind::FullCone),
        SiteSpec::new("s2", NatKind::RestrictedCone),
    ]);
    spec.ejabberd = false;
    spec.strangers = vec![(1, 3)];
    let lab = Lab::up(spec).expect("lab up");
    let homes: Vec<NodeHome> = (0..3)
        .map(|i| NodeHome::new(&lab, &format!("n{i}")))
        .collect();
    for (i, h) in homes.iter().enumerate() {
        let ns = &lab.site(&format!("s{i}")).expect("site").host;
        h.add_account(ns, &lab, i as u32 + 1, ALPHA, TlsMode::StartTls);
    }

    // Friends only.
    let (mut daemons, addrs) = start(&lab, &homes, false);
    let t = Instant::now();
    let both = |i: usize| {
        homes[i]
            .wait_status(Duration::from_secs(60), |s| linked(s, &addrs[1]))
            .unwrap_or_else(|| panic!("user{} not linked to user2:\n{}", i + 1, logs(&daemons)))
    };
    both(0);
    both(2);
    eprintln!("friends linked in {} ms", t.elapsed().as_millis());
    // The core wants user1 and user3 linked (three nodes: everyone is a near neighbour); the
    // one asked refuses.
    let refused = homes[0].wait_status(Duration::from_secs(40), |s0| {
        homes[2].status().is_some_and(|s2| {
            let r = |s: &NodeStatus| {
                pals(s)
                    .and_then(|v| v.friends.as_ref())
                    .map_or(0, |f| f.refused)
            };
            r(s0) + r(&s2) >= 1
        })
    });
    assert!(
        refused.is_some(),
        "no refusal between strangers within 40 s:\n{}",
        logs(&daemons)
    );
    // A few more seconds: still no link and no relay edge between them.
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        for (i, j) in [(0, 2), (2, 0)] {
            let s = homes[i].status().expect("status");
            assert!(
                !reaches(&s, &addrs[j]),
                "user{} reached user{} in a friends-only ring:\n{}",
                i + 1,
                j + 1,
                logs(&daemons)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let s0 = homes[0].status().expect("status");
    let f0 = pals(&s0)
        .and_then(|v| v.friends.clone())
        .expect("friends view");
    assert!(!f0.fof && f0.vouched == 0, "{f0:?}");
    eprintln!("friends only: user1 {f0:?}");
    for d in &mut daemons {
        d.terminate();
    }

    // Friends of friends allowed everywhere: user2 vouches, user1 and user3 link.
    let (daemons, addrs) = start(&lab, &homes, true);
    let t = Instant::now();
    let s = homes[0]
        .wait_status(Duration::from_secs(90), |s| {
            linked(s, &addrs[2]) && homes[2].status().is_some_and(|s2| linked(&s2, &addrs[0]))
        })
        .unwrap_or_else(|| panic!("user1 and user3 never linked with fof:\n{}", logs(&daemons)));
    let f = pals(&s)
        .and_then(|v| v.friends.clone())
        .expect("friends view");
    eprintln!(
        "friends of friends linked {} ms after start: user1 {f:?}",
        t.elapsed().as_millis()
    );
    assert!(f.fof && f.vouchers >= 1, "{f:?}");
    let s2 = homes[2].status().expect("status");
    let f2 = pals(&s2)
        .and_then(|v| v.friends.clone())
        .expect("friends view");
    assert!(f.vouched + f2.vouched >= 1, "{f:?} {f2:?}");
    let text = homes[0].run(&lab.site("s0").expect("site").host, &["status"], "");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("friends ring"), "{text}");
    eprintln!("total {} ms", started.elapsed().as_millis());
}
