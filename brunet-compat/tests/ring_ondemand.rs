//! On-demand links: made after a few exact-mode messages to one peer, capped, and
//! released once idle.

mod common;

use std::time::Duration;

use brunet_compat::ring::{Config, ConnType, Event, Mode};
use common::Ring;

fn cfg(i: usize) -> Config {
    Config {
        ondemand_max: 2,
        ondemand_idle: Duration::from_secs(120),
        ..Config::with_seed(i as u64 + 100)
    }
}

fn ondemand_peers(r: &mut Ring, i: usize) -> Vec<usize> {
    let addrs = r.addrs.clone();
    r.node(i)
        .table()
        .iter()
        .filter(|p| p.types.contains(ConnType::ONDEMAND))
        .filter_map(|p| addrs.iter().position(|a| *a == p.addr))
        .collect()
}

/// Sends `n` exact-mode datagrams from `s` to `t`, one a second.
fn talk(r: &mut Ring, s: usize, t: usize, n: usize) {
    let dst = r.addrs[t];
    for _ in 0..n {
        r.with(s, |node, now| {
            node.send(now, dst, Mode::Exact, b"x".to_vec())
        });
        r.run_for(Duration::from_secs(1));
    }
}

#[test]
fn traffic_makes_links_the_cap_holds_and_idle_ones_go() {
    let mut r = Ring::build(24, 1, cfg, Duration::from_secs(90));
    assert!(r.consistent());
    // The node with the smallest table (not node 0, everyone's bootstrap).
    let s = (1..24)
        .min_by_key(|&i| r.node(i).table().len())
        .expect("nodes");
    let strangers: Vec<usize> = (1..24)
        .filter(|&j| {
            let a = r.addrs[j];
            j != s && !r.node(s).table().contains(&a)
        })
        .take(3)
        .collect();
    assert_eq!(strangers.len(), 3, "{s} knows almost everyone");
    let (t1, t2, t3) = (strangers[0], strangers[1], strangers[2]);

    // A few messages are not enough; the fourth within a minute asks for a link.
    let mark = r.events.len();
    talk(&mut r, s, t1, 3);
    assert!(ondemand_peers(&mut r, s).is_empty());
    talk(&mut r, s, t1, 2);
    let wanted = r.events_of(s, mark).any(|e| {
        matches!(e, Event::LinkWanted { peer, reasons, .. }
            if *peer == r.addrs[t1] && reasons.contains(ConnType::ONDEMAND))
    });
    assert!(wanted);
    assert_eq!(ondemand_peers(&mut r, s), vec![t1]);
    // Every datagram arrived, the later ones directly over the new link.
    let delivered = r
        .events_of(t1, mark)
        .filter(|e| matches!(e, Event::Deliver { .. }))
        .count();
    assert_eq!(delivered, 5);

    // A second busy peer gets a link too; a third pushes out the least recently used.
    talk(&mut r, s, t2, 5);
    let mut both = ondemand_peers(&mut r, s);
    both.sort();
    let mut want = vec![t1, t2];
    want.sort();
    assert_eq!(both, want);
    talk(&mut r, s, t1, 1); // t1 is now the most recently used
    talk(&mut r, s, t3, 5);
    let now = ondemand_peers(&mut r, s);
    assert_eq!(now.len(), 2, "capped at ondemand_max: {now:?}");
    assert!(now.contains(&t3) && now.contains(&t1), "{now:?}");

    // Silence: after the idle time (and the next minute's sweep) they are released.
    r.run_for(Duration::from_secs(200));
    assert!(ondemand_peers(&mut r, s).is_empty());
    assert!(r.consistent(), "releasing them left the ring whole");
}
