//! Certificate renewal over real nodes (issue 8): n0 owns ring `club` and invites n1 with a
//! certificate of about two minutes. Once two thirds of it are gone, n1's daemon asks n0 for a
//! fresh one over the ring, keeps it, shows it on its link, and is still linked after the
//! first certificate's expiry.

mod common;
mod node_support;
mod ring_support;

use std::time::{Duration, Instant};

use chamber::node::NodeStatus;
use chamber::runtime::{OwnedView, RingView};
use node_support::unix_ms;
use ring_support::start_loopback;

fn club(s: &NodeStatus) -> Option<&RingView> {
    s.rings.iter().find(|r| r.name == "club")?.overlay.as_ref()
}

fn owned(s: &NodeStatus) -> Option<&OwnedView> {
    club(s)?.owned.as_ref()
}

fn linked_to(s: &NodeStatus, addr: &str) -> bool {
    club(s).is_some_and(|v| {
        v.peers
            .iter()
            .any(|p| p.address == addr && p.link.is_some())
    })
}

#[test]
fn a_member_certificate_is_renewed_before_it_expires() {
    if !common::lab_available() {
        return;
    }
    let ring = start_loopback(2, 0, false);
    ring.all_online();
    ring.sees_all(0, Duration::from_secs(30));
    ring.run_ok(0, &["ring", "create", "club", "--owned"]);
    // 0.0015 days: 129.6 s; renewal is due after 86 s and looked for every 30 s.
    ring.run_ok(
        0,
        &[
            "ring",
            "invite",
            "club",
            "user2@alpha.lab",
            "--days",
            "0.0015",
        ],
    );
    ring.homes[1]
        .wait_status(Duration::from_secs(20), |s| !s.invites.is_empty())
        .expect("the invite arrives");
    ring.run_ok(1, &["ring", "join", "club"]);
    let addr = |i: usize| {
        let s = ring.homes[i]
            .wait_status(Duration::from_secs(20), |s| club(s).is_some())
            .unwrap_or_else(|| panic!("n{i} shows no ring club"));
        club(&s).expect("club").address.clone()
    };
    let (a0, a1) = (addr(0), addr(1));
    let s1 = ring.homes[1]
        .wait_status(Duration::from_secs(40), |s| linked_to(s, &a0))
        .unwrap_or_else(|| panic!("n1 never linked to n0:\n{}", ring.daemons[1].tail(30)));
    let first = owned(&s1).expect("owned view").cert_expires_ms;
    let left_ms = first.saturating_sub(unix_ms());
    assert!(
        (60_000..=130_000).contains(&left_ms),
        "the first certificate has {left_ms} ms left"
    );
    let start = Instant::now();
    let renewed = ring.homes[1]
        .wait_status(Duration::from_millis(left_ms), |s| {
            owned(s).is_some_and(|o| o.cert_expires_ms > first)
        })
        .unwrap_or_else(|| {
            panic!(
                "not renewed before it expired:\n{}\nowner:\n{}",
                ring.daemons[1].tail(40),
                ring.daemons[0].tail(40)
            )
        });
    let second = owned(&renewed).expect("owned view").cert_expires_ms;
    eprintln!(
        "renewed {} ms before expiry (after {} ms of waiting); new expiry {} ms later",
        first.saturating_sub(unix_ms()),
        start.elapsed().as_millis(),
        second - first
    );
    // Past the first certificate's expiry, the link holds on the fresh one.
    std::thread::sleep(Duration::from_millis(
        first.saturating_sub(unix_ms()) + 3_000,
    ));
    let s0 = ring.homes[0]
        .wait_status(Duration::from_secs(10), |_| true)
        .expect("n0 status");
    assert!(
        linked_to(&s0, &a1),
        "n0 dropped n1 after its first certificate expired:\n{}",
        ring.daemons[0].tail(30)
    );
    let s1 = ring.homes[1]
        .wait_status(Duration::from_secs(10), |_| true)
        .expect("n1 status");
    assert!(linked_to(&s1, &a0), "n1 lost its link to n0");
}
