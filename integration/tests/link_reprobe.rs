//! A relayed link moves to a direct path once one opens: UDP between two full-cone sites is
//! dropped on the lab's internet (their TURN relays still work), so the link comes up on a
//! relay; re-probes (3 s apart here, about a minute by default) find only relays and leave
//! the link where it is; once the drop is lifted, the next re-probe moves the link to a
//! direct path under the same Noise session.

#[path = "common/mod.rs"]
mod common;
#[path = "link_common.rs"]
mod link_common;

use std::time::{Duration, Instant};

use chamber::account::TlsMode;
use chamber::link::{Link, LinkEvent, PathHint, PathKind};
use chamber_lab::topology::ALPHA;
use chamber_lab::{Lab, LabSpec, NatKind, SiteSpec};
use link_common::{Turn, on, runtime_in, secret};

#[test]
fn a_relayed_link_moves_to_a_direct_path_once_one_opens() {
    if !common::lab_available() {
        return;
    }
    let mut spec = LabSpec::with_sites(vec![
        SiteSpec::new("one", NatKind::FullCone),
        SiteSpec::new("two", NatKind::FullCone),
    ]);
    spec.ejabberd = false;
    let lab = Lab::up(spec).expect("lab up");
    let wan = |s: &str| lab.site(s).expect("site").addrs.wan;
    let (one, two) = (wan("one"), wan("two"));
    lab.public()
        .nft(&format!(
            "table ip reprobe_block {{\n  chain block {{ type filter hook forward priority 0; \
             ip saddr {one} ip daddr {two} meta l4proto udp drop; \
             ip saddr {two} ip daddr {one} meta l4proto udp drop; }}\n}}\n"
        ))
        .expect("block UDP between the sites");
    let rt_a = runtime_in(&lab.site("one").expect("site").host);
    let rt_b = runtime_in(&lab.site("two").expect("site").host);
    let lc = || {
        let mut c = link_common::lab_linker(PathHint::Unknown);
        c.reprobe_relayed = Duration::from_secs(3);
        c
    };
    let friend = |rt: &tokio::runtime::Runtime, k: u32| {
        let cfg = common::account(&lab, k, ALPHA, TlsMode::StartTls);
        on(rt, async move {
            let s = secret(k as u8);
            link_common::start(cfg, &s, &s, Turn::Offered, lc()).await
        })
    };
    let a = friend(&rt_a, 1);
    let b = friend(&rt_b, 2);
    let b_in = link_common::forward_incoming(&rt_b, b.incoming);
    let (l, peer) = (a.linker.clone(), b.jid.clone());
    let mut link = Some(on(&rt_a, async move { l.connect(vec![peer]).await }).expect("link up"));
    let link_b = b_in
        .recv_timeout(Duration::from_secs(20))
        .expect("incoming link")
        .expect("link up");
    let (_echo, b_status) = {
        let _g = rt_b.enter();
        link_common::echo_watched(link_b)
    };
    let status = |l: &Option<Link>| l.as_ref().expect("the link").status();
    let mut events = link.as_ref().expect("the link").events();
    assert!(ping(&rt_a, &mut link, 20), "the link carries data");
    let relayed = status(&link);
    eprintln!("up on {:?}", relayed.path);
    let relay_path = relayed.path.clone().expect("a path");
    assert_eq!(
        relay_path.kind,
        PathKind::TurnRelay,
        "direct UDP is dropped"
    );

    // Re-probes while no direct path exists: the link stays on its relay and keeps carrying.
    let blocked = Instant::now();
    while blocked.elapsed() < Duration::from_secs(12) {
        assert!(ping(&rt_a, &mut link, 8), "data flows while re-probing");
        std::thread::sleep(Duration::from_millis(200));
    }
    let probes = b_status.borrow().restarts;
    eprintln!("re-probes seen by the peer while blocked: {probes}");
    assert!(
        probes >= 2,
        "re-probes every 3 s, each about 2 s long (seen {probes} in 12 s)"
    );
    assert_eq!(
        status(&link).path.as_ref(),
        Some(&relay_path),
        "still on the relay"
    );
    assert!(events.try_recv().is_err(), "no path change while blocked");

    lab.public()
        .nft("delete table ip reprobe_block\n")
        .expect("lift the block");
    let lifted = Instant::now();
    let mut direct = None;
    while lifted.elapsed() < Duration::from_secs(20) && direct.is_none() {
        assert!(
            ping(&rt_a, &mut link, 8),
            "data flows while the path changes"
        );
        while let Ok(e) = events.try_recv() {
            if let LinkEvent::PathChanged(p) = e
                && p.kind != PathKind::TurnRelay
            {
                direct = Some((p, lifted.elapsed()));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (path, after) = direct.expect("a direct path within 20 s of the block lifting");
    eprintln!("direct after {after:?}: {path:?}");
    let now = status(&link);
    assert_eq!(now.path.as_ref(), Some(&path));
    assert!(ping(&rt_a, &mut link, 8), "data flows on the direct path");
    assert_eq!(
        now.stats.handshakes, relayed.stats.handshakes,
        "the Noise session survived the move"
    );
    let until = Instant::now() + Duration::from_secs(5);
    while b_status.borrow().path.as_ref().map(|p| p.kind) == Some(PathKind::TurnRelay)
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let b_path = b_status.borrow().path.clone().expect("the peer's path");
    assert_ne!(b_path.kind, PathKind::TurnRelay, "the peer moved too");
    let l = link.take().expect("the link");
    on(&rt_a, async move { l.close().await });
}

/// Pings over `link` from `rt`'s workers (the link moves in and back out).
fn ping(rt: &tokio::runtime::Runtime, link: &mut Option<Link>, tries: u32) -> bool {
    let mut l = link.take().expect("the link");
    let (ok, l) = on(
        rt,
        async move { (link_common::ping(&mut l, tries).await, l) },
    );
    *link = Some(l);
    ok
}
