//! Bounded broadcast over an address range: every node in the range gets exactly one
//! copy, no node outside it gets any, and the depth stays small.

mod common;

use std::time::Duration;

use brunet_compat::ring::{Config, Event};
use common::Ring;

/// (node, hops) of every broadcast received since event `mark`.
fn received(r: &Ring, mark: usize) -> Vec<(usize, u16)> {
    r.events[mark..]
        .iter()
        .filter_map(|(i, _, e)| match e {
            Event::Broadcast { hops, .. } => Some((*i, *hops)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_range_broadcast_reaches_each_node_in_it_once() {
    let n = 40;
    let mut r = Ring::build(
        n,
        2,
        |i| Config::with_seed(i as u64),
        Duration::from_secs(90),
    );
    assert!(r.consistent());
    let order = r.ring_order();
    // From the 5th node clockwise to the 25th (exclusive), and a range that wraps.
    for (from, to) in [(5, 25), (30, 8)] {
        let (src, end) = (order[from], r.addrs[order[to]]);
        let mark = r.events.len();
        r.with(src, |node, now| node.broadcast(now, end, b"hello".to_vec()));
        r.run_for(Duration::from_secs(5));
        let got = received(&r, mark);
        let inside: Vec<usize> = (0..n)
            .map(|k| order[(from + k) % n])
            .take_while(|&i| i != order[to])
            .collect();
        for &i in &order {
            let copies = got.iter().filter(|(j, _)| *j == i).count();
            let want = usize::from(inside.contains(&i));
            assert_eq!(copies, want, "node {i}, range {from}..{to}");
        }
        let depth = got.iter().map(|&(_, h)| h).max().unwrap_or(0);
        assert!(depth <= 8, "depth {depth} for {} nodes", inside.len());
    }
}

#[test]
fn a_whole_ring_broadcast_reaches_everyone_once() {
    let n = 40;
    let mut r = Ring::build(
        n,
        3,
        |i| Config::with_seed(i as u64),
        Duration::from_secs(90),
    );
    let src = r.ring_order()[11];
    let me = r.addrs[src];
    let mark = r.events.len();
    r.with(src, |node, now| node.broadcast(now, me, b"all".to_vec()));
    r.run_for(Duration::from_secs(5));
    let got = received(&r, mark);
    assert_eq!(got.len(), n, "{got:?}");
    let mut who: Vec<usize> = got.iter().map(|&(i, _)| i).collect();
    who.sort();
    who.dedup();
    assert_eq!(who.len(), n, "each node once");
    // The originator hears its own broadcast at hop 0; no copy travels more than a few
    // hops (it splits its range among its peers, log-depth).
    assert!(got.contains(&(src, 0)));
    assert!(got.iter().all(|&(_, h)| h <= 8), "{got:?}");
}
