//! Bootstrapping from friends, the way chamber's daemon does it: every node starts as a ring
//! of one (no node can know it is first), and leaf links follow who is friends with whom.
//! Separate one-node rings must merge into one consistent ring.

mod common;

use std::time::Duration;

use common::Ring;

/// A chain of friends: 0–1, 1–2, …: the sparsest connected friend graph.
fn chain(n: usize) -> Vec<(usize, usize)> {
    (1..n).map(|i| (i - 1, i)).collect()
}

/// A few friend circles joined by one friend each (how real rosters look).
fn circles(n: usize, size: usize) -> Vec<(usize, usize)> {
    let mut e = Vec::new();
    for start in (0..n).step_by(size) {
        let end = (start + size).min(n);
        for a in start..end {
            for b in a + 1..end {
                e.push((a, b));
            }
        }
        if start > 0 {
            e.push((start - 1, start));
        }
    }
    e
}

#[test]
fn one_node_rings_merge_along_a_chain_of_friends() {
    for seed in 1..=5 {
        let mut r = Ring::friends(
            12,
            seed,
            &chain(12),
            Duration::from_millis(50),
            Duration::from_secs(10),
        );
        assert!(
            r.consistent(),
            "seed {seed}: 12 friends in a chain, not consistent after 10 s"
        );
        r.run_for(Duration::from_secs(60));
        assert!(r.consistent(), "seed {seed}: lost consistency later");
    }
}

#[test]
fn one_node_rings_merge_across_friend_circles() {
    for seed in 1..=5 {
        let r = Ring::friends(
            50,
            seed,
            &circles(50, 5),
            Duration::from_millis(10),
            Duration::from_secs(10),
        );
        assert!(
            r.consistent(),
            "seed {seed}: 50 friends in circles of 5, not consistent"
        );
    }
}

#[test]
fn friends_all_at_once_merge() {
    // Everybody's leaf links come up at the same instant (a lab starting together).
    let all: Vec<(usize, usize)> = (0..12)
        .flat_map(|a| (a + 1..12).map(move |b| (a, b)))
        .collect();
    let r = Ring::friends(12, 9, &all, Duration::ZERO, Duration::from_secs(10));
    assert!(r.consistent(), "12 mutual friends at once, not consistent");
}
