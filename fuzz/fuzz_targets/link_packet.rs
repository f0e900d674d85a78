//! The link packet decoder and the tunnel behind it: arbitrary bytes, as an attacker on the path
//! would send them, to a tunnel that is up. Nothing may panic; nothing unauthentic may come out
//! as a datagram; the tunnel stays up.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chamber::link::handshake::public_key;
use chamber::link::wire::{Inner, Packet};
use chamber::link::{Output, Role, Tunnel, TunnelConfig};
use libfuzzer_sys::fuzz_target;

const A: [u8; 32] = [0x11; 32];
const B: [u8; 32] = [0x22; 32];

/// A responder that completed a handshake with A, and the time it happened.
fn up_pair() -> (Tunnel, Instant) {
    let now = Instant::now();
    let cfg = TunnelConfig::default();
    let mut a = Tunnel::new(
        Role::Initiator,
        &A,
        public_key(&B),
        b"fuzz",
        1,
        cfg.clone(),
        now,
    );
    let mut b = Tunnel::new(Role::Responder, &B, public_key(&A), b"fuzz", 2, cfg, now);
    let mut buf = vec![0u8; 4096];
    let mut out = vec![0u8; 4096];
    let n = a.initiate(now, &mut buf).expect("message 1");
    let Output::Transmit(m2) = b.decapsulate(now, &buf[..n], &mut out) else {
        panic!("message 2")
    };
    let m2 = m2.to_vec();
    let Output::Transmit(c) = a.decapsulate(now, &m2, &mut buf) else {
        panic!("confirmation")
    };
    let c = c.to_vec();
    let _ = b.decapsulate(now, &c, &mut out);
    assert!(b.is_up());
    (b, now)
}

static START: OnceLock<Instant> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let _ = Packet::new_checked(data);
    let _ = Inner::parse(data);
    let (mut b, now) = up_pair();
    START.get_or_init(|| now);
    let mut out = vec![0u8; data.len().max(128)];
    match b.decapsulate(now + Duration::from_millis(1), data, &mut out) {
        Output::Datagram(_) => panic!("forged bytes opened as a datagram"),
        Output::Transmit(_) | Output::Done => {}
    }
    assert!(b.is_up());
});
