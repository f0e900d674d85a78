//! A link survives a NAT mapping change: every router of the lab forgets its mappings (a
//! conntrack flush, as a NAT reboot would), the symmetric NAT then maps the friend's next
//! packet to a new port, the path goes quiet, and the link restarts ICE under the same
//! Noise session, carrying data again within 10 s.

#[path = "common/mod.rs"]
mod common;
#[path = "link_common.rs"]
mod link_common;

use std::time::{Duration, Instant};

use chamber::account::{LinkOptions, TlsMode};
use chamber::link::{Link, LinkState, PathHint};
use chamber_lab::topology::ALPHA;
use chamber_lab::{Lab, LabSpec, NatKind, SiteSpec};
use link_common::{Turn, on, runtime_in, secret};

#[test]
fn a_link_survives_a_nat_mapping_change_by_ice_restart() {
    if !common::lab_available() {
        return;
    }
    let started = Instant::now();
    let mut spec = LabSpec::with_sites(vec![
        SiteSpec::new("sym", NatKind::Symmetric),
        SiteSpec::new("full", NatKind::FullCone),
    ]);
    spec.ejabberd = false;
    let lab = Lab::up(spec).expect("lab up");
    let rt_a = runtime_in(&lab.site("sym").expect("site").host);
    let rt_b = runtime_in(&lab.site("full").expect("site").host);
    let lc = || link_common::lab_linker(PathHint::Unknown);
    // The NAT reboot also cuts both friends' XMPP connections, which carry the restart: the
    // accounts must notice within a couple of seconds. With the default options (a quiet
    // stream gets 20 s + 10 s) the link still came back, after about 15 s.
    let mut opts = LinkOptions::default();
    opts.timeouts.read_timeout = Duration::from_secs(2);
    opts.timeouts.response_timeout = Duration::from_secs(2);
    let friend = |rt: &tokio::runtime::Runtime, k: u32| {
        let cfg = common::account(&lab, k, ALPHA, TlsMode::StartTls);
        let opts = opts.clone();
        on(rt, async move {
            let (s, t) = (secret(k as u8), Turn::Offered);
            link_common::start_with(cfg, &s, &s, t, lc(), opts).await
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
    assert!(ping(&rt_a, &mut link, 20), "the link carries data");
    let status = |l: &Option<Link>| l.as_ref().expect("the link").status();
    let before = status(&link);
    eprintln!("up on {:?} after {:?}", before.path, started.elapsed());

    lab.flush_nat_mappings().expect("flush");
    let flushed = Instant::now();
    let mut back = None;
    while flushed.elapsed() < Duration::from_secs(20) {
        if ping(&rt_a, &mut link, 1) {
            back = Some(flushed.elapsed());
            break;
        }
    }
    // Data flowing again is the survival; both ends may still be finishing a second restart,
    // so give the state a bounded moment to settle.
    while status(&link).state != LinkState::Up && flushed.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = status(&link);
    let b_after = b_status.borrow().clone();
    eprintln!(
        "data again after {back:?} on {:?}; restarts {} here, {} there; state {:?}",
        after.path, after.restarts, b_after.restarts, after.state
    );
    let back = back.expect("the link carries data again");
    assert!(back <= Duration::from_secs(10), "back after {back:?}");
    assert!(
        after.restarts + b_after.restarts >= 1,
        "the new mapping was found by an ICE restart"
    );
    assert_eq!(after.state, LinkState::Up);
    assert_eq!(
        after.stats.handshakes, before.stats.handshakes,
        "the Noise session survived the restart"
    );
    eprintln!("done in {:?}", started.elapsed());
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
