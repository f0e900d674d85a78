//! Scripted tunnel tests: two tunnels, packets carried by hand, time stepped explicitly.

use std::time::{Duration, Instant};

use super::handshake::public_key;
use super::*;

const A: [u8; 32] = [0x11; 32];
const B: [u8; 32] = [0x22; 32];

struct Pair {
    a: Tunnel,
    b: Tunnel,
    now: Instant,
    buf: Vec<u8>,
}

fn pair_with(cfg: TunnelConfig, b_secret: [u8; 32], b_expects_a: [u8; 32]) -> Pair {
    let now = Instant::now();
    let a = Tunnel::new(
        Role::Initiator,
        &A,
        public_key(&B),
        b"sid-1",
        7,
        cfg.clone(),
        now,
    );
    let b = Tunnel::new(
        Role::Responder,
        &b_secret,
        b_expects_a,
        b"sid-1",
        9,
        cfg,
        now,
    );
    Pair {
        a,
        b,
        now,
        buf: vec![0u8; 2048],
    }
}

fn pair() -> Pair {
    pair_with(TunnelConfig::default(), B, public_key(&A))
}

/// Delivers `packet` to `to`, returning a reply if any and a datagram if any.
fn deliver(to: &mut Tunnel, now: Instant, packet: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let mut buf = vec![0u8; 2048];
    match to.decapsulate(now, packet, &mut buf) {
        Output::Done => (None, None),
        Output::Transmit(p) => (Some(p.to_vec()), None),
        Output::Datagram(d) => (None, Some(d.to_vec())),
    }
}

fn events(t: &mut Tunnel) -> Vec<TunnelEvent> {
    std::iter::from_fn(|| t.poll_event()).collect()
}

impl Pair {
    /// Runs the handshake; returns message 1 for replay tests.
    fn handshake(&mut self) -> Vec<u8> {
        let n = self.a.initiate(self.now, &mut self.buf).expect("message 1");
        let m1 = self.buf[..n].to_vec();
        let (m2, _) = deliver(&mut self.b, self.now, &m1);
        let (confirm, _) = deliver(&mut self.a, self.now, &m2.expect("message 2"));
        let (pong, _) = deliver(&mut self.b, self.now, &confirm.expect("confirmation"));
        deliver(&mut self.a, self.now, &pong.expect("pong"));
        assert!(self.a.is_up() && self.b.is_up());
        m1
    }

    fn a_to_b(&mut self, data: &[u8]) -> Vec<u8> {
        let n = self.a.encapsulate(self.now, data, &mut self.buf).unwrap();
        self.buf[..n].to_vec()
    }
}

#[test]
fn handshake_then_datagrams_both_ways() {
    let mut p = pair();
    p.handshake();
    assert!(events(&mut p.a).contains(&TunnelEvent::Up));
    assert_eq!(events(&mut p.b), vec![TunnelEvent::Up]);
    let pkt = p.a_to_b(b"hello b");
    assert_eq!(pkt.len(), 7 + wire::DATA_OVERHEAD);
    assert_eq!(
        deliver(&mut p.b, p.now, &pkt).1.as_deref(),
        Some(&b"hello b"[..])
    );
    let n = p.b.encapsulate(p.now, b"hello a", &mut p.buf).unwrap();
    let pkt = p.buf[..n].to_vec();
    assert_eq!(
        deliver(&mut p.a, p.now, &pkt).1.as_deref(),
        Some(&b"hello a"[..])
    );
    assert_eq!(p.b.stats().rx_datagrams, 1);
}

#[test]
fn a_key_other_than_the_record_is_refused() {
    // B expects A's record key, but the initiator uses another static key.
    let mut p = pair_with(TunnelConfig::default(), B, public_key(&[0x33; 32]));
    let n = p.a.initiate(p.now, &mut p.buf).unwrap();
    let m1 = p.buf[..n].to_vec();
    assert_eq!(deliver(&mut p.b, p.now, &m1), (None, None));
    assert!(matches!(
        events(&mut p.b).as_slice(),
        [TunnelEvent::Refused(HandshakeError::KeyMismatch { .. })]
    ));
    assert!(!p.b.is_up());
}

#[test]
fn another_rings_key_is_refused_by_the_initiator_and_neither_end_comes_up() {
    // Right static keys, but B holds another ring's link key.
    let mut p = pair();
    p.a.set_psk(&[1; 32]);
    p.b.set_psk(&[2; 32]);
    let n = p.a.initiate(p.now, &mut p.buf).unwrap();
    let m1 = p.buf[..n].to_vec();
    let (m2, _) = deliver(&mut p.b, p.now, &m1);
    let (confirm, _) = deliver(
        &mut p.a,
        p.now,
        &m2.expect("B answers: psk2 is checked in message 2"),
    );
    assert_eq!(
        confirm, None,
        "A must not confirm a session under another ring's key"
    );
    // Counted, not reported: a forged answer looks the same.
    assert_eq!(p.a.stats().dropped_handshake, 1);
    assert!(!events(&mut p.a).contains(&TunnelEvent::Up));
    assert!(!p.a.is_up() && !p.b.is_up());
    // The same keys link.
    let mut q = pair();
    q.a.set_psk(&[3; 32]);
    q.b.set_psk(&[3; 32]);
    q.handshake();
}

#[test]
fn a_responder_without_the_recorded_key_cannot_answer_and_the_initiator_gives_up() {
    let mut p = pair_with(TunnelConfig::default(), [0x44; 32], public_key(&A));
    let n = p.a.initiate(p.now, &mut p.buf).unwrap();
    let m1 = p.buf[..n].to_vec();
    assert_eq!(deliver(&mut p.b, p.now, &m1), (None, None));
    assert_eq!(p.b.stats().dropped_handshake, 1);
    // The initiator retries every second, then gives up.
    let mut sent = 0;
    for _ in 0..40 {
        p.now += Duration::from_millis(500);
        while p.a.update_timers(p.now, &mut p.buf).is_some() {
            sent += 1;
        }
    }
    assert!(sent >= 10, "{sent} retries");
    assert!(events(&mut p.a).contains(&TunnelEvent::Down(DownReason::HandshakeTimeout)));
    assert_eq!(p.a.poll_timeout(), None);
}

#[test]
fn handshakes_of_another_session_do_not_open() {
    let now = Instant::now();
    let cfg = TunnelConfig::default();
    let mut a = Tunnel::new(
        Role::Initiator,
        &A,
        public_key(&B),
        b"sid-1",
        1,
        cfg.clone(),
        now,
    );
    let mut b = Tunnel::new(Role::Responder, &B, public_key(&A), b"sid-2", 2, cfg, now);
    let mut buf = [0u8; 256];
    let n = a.initiate(now, &mut buf).unwrap();
    assert_eq!(deliver(&mut b, now, &buf[..n]), (None, None));
    assert_eq!(b.stats().dropped_handshake, 1);
}

#[test]
fn replayed_handshakes_and_data_are_dropped() {
    let mut p = pair();
    let m1 = p.handshake();
    events(&mut p.b);
    assert_eq!(deliver(&mut p.b, p.now, &m1), (None, None));
    assert_eq!(p.b.stats().dropped_handshake, 1);
    assert!(
        events(&mut p.b).is_empty(),
        "a replay is counted, not reported"
    );
    let pkt = p.a_to_b(b"once");
    assert!(deliver(&mut p.b, p.now, &pkt).1.is_some());
    assert_eq!(deliver(&mut p.b, p.now, &pkt), (None, None));
    assert_eq!(p.b.stats().dropped_replay, 1);
    assert_eq!(p.b.stats().rx_datagrams, 1);
}

#[test]
fn garbage_changes_nothing() {
    let mut p = pair();
    p.handshake();
    let before_up = (p.b.is_up(), p.b.poll_timeout());
    let mut x = 0x9E37_79B9_u32;
    for len in 0..400usize {
        let mut g: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        if len > 0 && len % 3 == 0 {
            g[0] = 3; // looks like data
            if len > 4 {
                g[2..4].fill(0);
            }
        }
        assert_eq!(deliver(&mut p.b, p.now, &g), (None, None));
    }
    // Flipping any bit of a real packet makes it unauthentic.
    let pkt = p.a_to_b(b"real");
    for i in 0..pkt.len() {
        let mut bad = pkt.clone();
        bad[i] ^= 0x40;
        assert_eq!(deliver(&mut p.b, p.now, &bad).1, None, "bit flip at {i}");
    }
    assert_eq!((p.b.is_up(), p.b.poll_timeout()), before_up);
    let s = p.b.stats();
    assert!(s.dropped_malformed + s.dropped_auth + s.dropped_handshake >= 400);
    assert_eq!(
        deliver(&mut p.b, p.now, &pkt).1.as_deref(),
        Some(&b"real"[..])
    );
}

#[test]
fn rekeys_by_count_and_time_and_tolerates_reordering_across_epochs() {
    let cfg = TunnelConfig {
        rekey_after_packets: 3,
        ..TunnelConfig::default()
    };
    let mut p = pair_with(cfg, B, public_key(&A));
    p.handshake();
    let pkts: Vec<Vec<u8>> = (0..10u8).map(|i| p.a_to_b(&[i; 5])).collect();
    assert!(p.a.stats().rekeys >= 2);
    // Deliver out of order: the previous epoch's packets still open after the switch.
    let order = [0, 1, 3, 2, 4, 6, 5, 7, 9, 8];
    for i in order {
        let (_, d) = deliver(&mut p.b, p.now, &pkts[i]);
        assert_eq!(d, Some(vec![i as u8; 5]), "packet {i}");
    }
    // Time alone also rekeys.
    let cfg = TunnelConfig::default();
    let before = p.a.stats().rekeys;
    p.now += cfg.rekey_after_time;
    let pkt = p.a_to_b(b"later");
    assert_eq!(p.a.stats().rekeys, before + 1);
    assert!(deliver(&mut p.b, p.now, &pkt).1.is_some());
}

#[test]
fn keepalive_when_idle_and_death_after_silence() {
    let mut p = pair();
    p.handshake();
    events(&mut p.a);
    let cfg = TunnelConfig::default();
    let (at, why) = p.a.poll_timeout().unwrap();
    assert_eq!(why, Timer::Keepalive);
    assert_eq!(at, p.now + cfg.keepalive);
    p.now = at;
    let n = p.a.update_timers(p.now, &mut p.buf).expect("a keepalive");
    let ka = p.buf[..n].to_vec();
    assert_eq!(ka.len(), 4 + wire::DATA_OVERHEAD);
    let (pong, _) = deliver(&mut p.b, p.now, &ka);
    deliver(&mut p.a, p.now, &pong.expect("pong"));
    assert!(matches!(events(&mut p.a).as_slice(), [TunnelEvent::Rtt(_)]));
    assert_eq!(p.b.poll_timeout().map(|t| t.1), Some(Timer::Keepalive));
    // Now B goes silent: A probes, reports the path stale, then declares it dead.
    let mut seen = Vec::new();
    for _ in 0..100 {
        p.now += Duration::from_millis(500);
        while p.a.update_timers(p.now, &mut p.buf).is_some() {}
        seen.extend(events(&mut p.a));
    }
    assert_eq!(seen.first(), Some(&TunnelEvent::PathStale));
    assert!(seen.contains(&TunnelEvent::Down(DownReason::Silence)));
    assert!(!p.a.is_up());
}

#[test]
fn close_reaches_the_peer_and_observed_addresses_are_reported() {
    let mut p = pair();
    p.handshake();
    events(&mut p.b);
    p.a.set_observed("198.18.3.2:40000".parse().unwrap());
    let n = p.a.update_timers(p.now, &mut p.buf).expect("observed");
    let obs = p.buf[..n].to_vec();
    deliver(&mut p.b, p.now, &obs);
    assert_eq!(
        events(&mut p.b),
        vec![TunnelEvent::Observed("198.18.3.2:40000".parse().unwrap())]
    );
    let n = p.a.close(p.now, 0, &mut p.buf).unwrap();
    let close = p.buf[..n].to_vec();
    deliver(&mut p.b, p.now, &close);
    assert_eq!(
        events(&mut p.b),
        vec![TunnelEvent::Down(DownReason::PeerClosed(0))]
    );
    assert!(p.a.encapsulate(p.now, b"x", &mut p.buf).is_err());
}

#[test]
fn a_lost_response_is_retried_and_the_newer_session_wins() {
    let mut p = pair();
    let n = p.a.initiate(p.now, &mut p.buf).unwrap();
    let m1 = p.buf[..n].to_vec();
    let (_lost, _) = deliver(&mut p.b, p.now, &m1);
    p.now += Duration::from_secs(1);
    let n = p.a.update_timers(p.now, &mut p.buf).expect("a retry");
    let m1b = p.buf[..n].to_vec();
    assert_ne!(m1, m1b);
    let (m2, _) = deliver(&mut p.b, p.now, &m1b);
    let (c, _) = deliver(&mut p.a, p.now, &m2.unwrap());
    let (pong, _) = deliver(&mut p.b, p.now, &c.unwrap());
    deliver(&mut p.a, p.now, &pong.unwrap());
    assert!(p.a.is_up() && p.b.is_up());
    let pkt = p.a_to_b(b"after retry");
    assert!(deliver(&mut p.b, p.now, &pkt).1.is_some());
}
