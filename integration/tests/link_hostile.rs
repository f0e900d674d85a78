//! Hostile packets on a live link, sent by an attacker on the lab's internet (the public
//! namespace, which sees and can forge every packet between sites): a replayed handshake
//! initiation or data packet is dropped and counted, and random garbage to a friend's ICE
//! port — from strangers, or forged to come from the peer itself — changes nothing.

#[path = "common/mod.rs"]
mod common;
#[path = "link_common.rs"]
mod link_common;
#[path = "link_raw.rs"]
mod link_raw;

use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use chamber::account::TlsMode;
use chamber::link::{Link, LinkState, LinkStatus, PathHint};
use chamber_lab::topology::ALPHA;
use chamber_lab::{Lab, LabSpec, NatKind, SiteSpec};
use link_common::{Turn, on, runtime_in, secret};
use link_raw::{Captured, Injector, Sniffer};
use tokio::runtime::Runtime;
use tokio::sync::watch;

/// A link from `a` (behind a port-restricted NAT) to `b` (a public host), direct (no TURN,
/// so every packet crosses the public namespace unwrapped).
struct Setup {
    lab: Lab,
    rt_a: Runtime,
    /// Keeps the responder's tasks running.
    _rt_b: Runtime,
    /// The initiator's end.
    a: Option<Link>,
    /// The responder's end, echoing; its status every 50 ms.
    b: watch::Receiver<LinkStatus>,
    /// Captures from before the link started.
    sniffer: Sniffer,
}

fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(v) => v,
        SocketAddr::V6(_) => panic!("the lab is IPv4"),
    }
}

fn setup() -> Option<Setup> {
    if !common::lab_available() {
        return None;
    }
    let mut spec = LabSpec::with_sites(vec![
        SiteSpec::new("a", NatKind::PortRestrictedCone),
        SiteSpec::new("b", NatKind::None),
    ]);
    spec.ejabberd = false;
    let lab = Lab::up(spec).expect("lab up");
    let sniffer = Sniffer::start(lab.public());
    let rt_a = runtime_in(&lab.site("a").expect("site").host);
    let rt_b = runtime_in(&lab.site("b").expect("site").host);
    let lc = || link_common::lab_linker(PathHint::Unknown);
    let cfg = common::account(&lab, 1, ALPHA, TlsMode::StartTls);
    let a = on(&rt_a, async move {
        link_common::start(cfg, &secret(1), &secret(1), Turn::Withheld, lc()).await
    });
    let cfg = common::account(&lab, 2, ALPHA, TlsMode::StartTls);
    let b = on(&rt_b, async move {
        link_common::start(cfg, &secret(2), &secret(2), Turn::Withheld, lc()).await
    });
    let b_in = link_common::forward_incoming(&rt_b, b.incoming);
    let (l, peer) = (a.linker.clone(), b.jid.clone());
    let mut link_a = on(&rt_a, async move { l.connect(vec![peer]).await }).expect("link up");
    let link_b = b_in
        .recv_timeout(Duration::from_secs(20))
        .expect("incoming link")
        .expect("link up");
    let (_echo, watched) = {
        let _g = rt_b.enter();
        link_common::echo_watched(link_b)
    };
    let (echoed, link_a) = on(&rt_a, async move {
        let ok = link_common::ping(&mut link_a, 20).await;
        (ok, link_a)
    });
    assert!(echoed, "the link carries data");
    Some(Setup {
        lab,
        rt_a,
        _rt_b: rt_b,
        a: Some(link_a),
        b: watched,
        sniffer,
    })
}

impl Setup {
    /// The responder's status after its next publication.
    fn b_status(&mut self) -> LinkStatus {
        std::thread::sleep(Duration::from_millis(120));
        self.b.borrow().clone()
    }

    /// Pings from the initiator; true when echoed.
    fn ping(&mut self) -> bool {
        let mut link = self.a.take().expect("link");
        let (ok, link) = on(&self.rt_a, async move {
            let ok = link_common::ping(&mut link, 20).await;
            (ok, link)
        });
        self.a = Some(link);
        ok
    }

    fn a_status(&self) -> LinkStatus {
        self.a.as_ref().expect("link").status()
    }

    /// Waits until `cond` holds for the responder's status (at most 5 s).
    fn b_until(&mut self, what: &str, cond: impl Fn(&LinkStatus) -> bool) -> LinkStatus {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let s = self.b_status();
            if cond(&s) {
                return s;
            }
            assert!(Instant::now() < until, "{what}: {:?}", s.stats);
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(l) = self.a.take() {
            on(&self.rt_a, async move { l.close().await });
        }
        let _ = &self.lab;
    }
}

#[test]
fn replayed_handshake_and_data_packets_are_dropped() {
    let Some(mut s) = setup() else { return };
    let b_ip = s.lab.site("b").expect("site").addrs.host;
    let to_b = |c: &Captured| *c.dst.ip() == b_ip;
    let init = s
        .sniffer
        .find(|c| to_b(c) && c.payload.len() == 112 && c.payload[0] == 1)
        .into_iter()
        .next()
        .expect("the handshake initiation was seen on the wire");
    let data = s
        .sniffer
        .find(|c| to_b(c) && c.payload.len() >= 32 && c.payload[0] == 3)
        .pop()
        .expect("a data packet was seen on the wire");
    let inject = Injector::new(s.lab.public());
    let before = s.b_status();
    eprintln!("before: {:?}", before.stats);

    inject.send(&data.ip);
    let after = s.b_until("the replayed data packet is dropped as a replay", |st| {
        st.stats.dropped_replay > before.stats.dropped_replay
    });
    assert_eq!(
        after.stats.rx_datagrams, before.stats.rx_datagrams,
        "nothing was delivered twice"
    );

    inject.send(&init.ip);
    let after = s.b_until("the replayed initiation is refused", |st| {
        st.stats.dropped_handshake > before.stats.dropped_handshake
    });
    assert_eq!(
        after.stats.handshakes, before.stats.handshakes,
        "no new session"
    );
    assert_eq!(after.state, LinkState::Up);
    assert!(s.ping(), "the link still carries data");
    let end = s.b_status();
    assert_eq!(end.path, before.path, "same path");
    eprintln!("after: {:?}", end.stats);
}

/// A small deterministic generator: the test needs variety, not secrecy.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = 1 + (self.next() as usize % max);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Random datagrams, most shaped like STUN or like link packets so they get past the first
/// checks of each parser: a data packet copies the header of a real one (`header`, 16 bytes)
/// with another counter, so only its authentication can refuse it.
fn garbage(rng: &mut XorShift, header: &[u8]) -> Vec<u8> {
    let mut g = rng.bytes(1400);
    match rng.next() % 5 {
        0 if g.len() >= 20 => {
            // A STUN binding request with the magic cookie.
            g[..8].copy_from_slice(&[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]);
        }
        1 => {
            g.resize(112, 7);
            g[..4].copy_from_slice(&[1, 0, 0, 0]); // a handshake initiation
        }
        2 => {
            g.resize(64, 7);
            g[..4].copy_from_slice(&[2, 0, 0, 0]); // a handshake response
            g[60..].fill(0);
        }
        3 => {
            g.resize(g.len().max(40), 7);
            g[..8].copy_from_slice(&header[..8]); // a data packet for the live session
        }
        _ => {}
    }
    g
}

#[test]
fn garbage_to_the_ice_port_changes_nothing() {
    let Some(mut s) = setup() else { return };
    let before_b = s.b_status();
    let before_a = s.a_status();
    let path_b = before_b.path.clone().expect("b has a path");
    // b's ICE port, and a's address as b sees it (a's NAT mapping).
    let (b_port, a_seen) = (v4(path_b.local), v4(path_b.remote));
    let header = |to: SocketAddrV4| {
        s.sniffer
            .find(|c| c.dst == to && c.payload.len() >= 32 && c.payload[0] == 3)
            .pop()
            .expect("a data packet was seen on the wire")
            .payload[..16]
            .to_vec()
    };
    let (to_b, to_a) = (header(b_port), header(a_seen));
    let inject = Injector::new(s.lab.public());
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let t0 = Instant::now();
    for i in 0..600u32 {
        // Strangers from all over the lab's internet …
        let ip = std::net::Ipv4Addr::new(198, 18, 200 + (i % 50) as u8, 1 + (i % 200) as u8);
        let stranger = SocketAddrV4::new(ip, 1024 + (rng.next() % 60000) as u16);
        inject.send_udp(stranger, b_port, &garbage(&mut rng, &to_b));
        // … and forged to come from the peer, in both directions.
        inject.send_udp(a_seen, b_port, &garbage(&mut rng, &to_b));
        inject.send_udp(b_port, a_seen, &garbage(&mut rng, &to_a));
    }
    eprintln!("1800 garbage datagrams sent in {:?}", t0.elapsed());
    let after_b = s.b_until("forged garbage is dropped and counted", |st| {
        let d = &st.stats;
        d.dropped_malformed + d.dropped_auth + d.dropped_handshake + d.dropped_replay
            > before_b.stats.dropped_malformed
                + before_b.stats.dropped_auth
                + before_b.stats.dropped_handshake
                + before_b.stats.dropped_replay
    });
    eprintln!("b after: {:?}", after_b.stats);
    for (what, n) in [
        ("malformed", after_b.stats.dropped_malformed),
        ("unauthenticated", after_b.stats.dropped_auth),
        ("bad handshake", after_b.stats.dropped_handshake),
    ] {
        assert!(n > 0, "b counted no {what} packets");
    }
    assert!(s.ping(), "the link still carries data");
    let (end_a, end_b) = (s.a_status(), s.b_status());
    eprintln!("a after: {:?}", end_a.stats);
    for (who, before, end) in [("a", &before_a, &end_a), ("b", &before_b, &end_b)] {
        assert_eq!(end.state, LinkState::Up, "{who} is up");
        assert_eq!(end.path, before.path, "{who} kept its path");
        assert_eq!(end.restarts, before.restarts, "{who} did not restart ICE");
        assert_eq!(
            end.stats.handshakes, before.stats.handshakes,
            "{who}: no new session"
        );
    }
    // Only this test's pings and pongs were delivered: garbage never became a datagram.
    assert!(end_b.stats.rx_datagrams - before_b.stats.rx_datagrams <= 20);
    assert!(end_a.stats.rx_datagrams - before_a.stats.rx_datagrams <= 20);
}
