//! The link packet decoder and the tunnel behind it: arbitrary bytes, as an attacker on the path
//! would send them, to a tunnel that is up. Nothing may panic; nothing unauthentic may come out
//! as a datagram; the tunnel stays up.
//!
//! The input is a sequence of packets (`len: u16 LE ‖ bytes`, up to 16), fed in order with the
//! clock moving 1–256 ms before each and the timers run after each, so the state machine sees
//! runs of packets and not just one. The first byte of each packet picks how much of it is the
//! attacker's: 0 → all of it; 1 → a data packet carrying the live session's receiver index
//! (past the session lookup, into the replay window and AEAD); 2 → a replay of the peer's own
//! confirmation packet with the rest as trailing bytes.
#![no_main]

use std::time::{Duration, Instant};

use chamber::link::handshake::public_key;
use chamber::link::wire::{Inner, Packet};
use chamber::link::{Output, Role, Tunnel, TunnelConfig, buffer_for};
use libfuzzer_sys::fuzz_target;

const A: [u8; 32] = [0x11; 32];
const B: [u8; 32] = [0x22; 32];

/// A responder that completed a handshake with A, the time, and A's first data packet to it.
fn up_pair() -> (Tunnel, Instant, Vec<u8>) {
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
    (b, now, c)
}

/// Splits the input into packets.
fn packets(mut data: &[u8]) -> Vec<&[u8]> {
    let mut v = Vec::new();
    while data.len() >= 2 && v.len() < 16 {
        let n = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
        v.push(&data[2..2 + n]);
        data = &data[2 + n..];
    }
    v
}

thread_local! {
    /// One handshake per fuzzing process; each input gets a copy of the tunnel it left up
    /// (`Tunnel: Clone` under `cfg(fuzzing)` only), so the fuzzer spends its time on packets.
    static UP: (Tunnel, Instant, Vec<u8>) = up_pair();
}

fuzz_target!(|data: &[u8]| {
    let _ = Packet::new_checked(data);
    let _ = Inner::parse(data);
    let (mut b, mut now, confirmation) = UP.with(|(t, n, c)| (t.clone(), *n, c.clone()));
    let mut out = vec![0u8; 70_000];
    let mut timers = vec![0u8; buffer_for(64)];
    let before = b.stats();
    for p in packets(data) {
        let Some((&mode, rest)) = p.split_first() else {
            continue;
        };
        now += Duration::from_millis(1 + u64::from(mode));
        let mut packet = rest.to_vec();
        match mode % 3 {
            1 if packet.len() >= 8 => {
                packet[..4].copy_from_slice(&[3, 0, 0, 0]);
                packet[4..8].copy_from_slice(&confirmation[4..8]);
            }
            2 => {
                packet = confirmation.clone();
                packet.extend_from_slice(rest);
            }
            _ => {}
        }
        match b.decapsulate(now, &packet, &mut out) {
            Output::Datagram(_) => panic!("forged bytes opened as a datagram"),
            Output::Transmit(_) | Output::Done => {}
        }
        while b.update_timers(now, &mut timers).is_some() {}
        while b.poll_event().is_some() {}
    }
    let after = b.stats();
    assert_eq!(after.rx_datagrams, before.rx_datagrams);
    assert_eq!(
        after.handshakes, before.handshakes,
        "no session from forged bytes"
    );
    assert!(b.is_up());
});
