//! A Brunet profile node fed arbitrary datagrams and timeouts: never panics, and every
//! datagram it sends decodes and re-encodes exactly.
//!
//! Input: records `ctl u8 | len u16 | datagram`. `ctl & 7` picks the source port
//! (15000 + n); with `ctl & 0x80`, time first moves on `(ctl >> 3) & 15` seconds and the
//! node gets a timeout.
#![no_main]

use std::net::SocketAddr;
use std::time::Duration;

use brunet_compat::address::Address;
use brunet_compat::profile::{Config, Input, Node, Output};
use brunet_compat::ring::Time;
use brunet_compat::wire::Packet;
use libfuzzer_sys::fuzz_target;

fn drain(node: &mut Node) {
    loop {
        match node.poll_output() {
            Output::Transmit { data, .. } => {
                let p = Packet::parse(&data).unwrap_or_else(|e| panic!("{e}: {data:02x?}"));
                assert_eq!(p.to_bytes().expect("re-encodes"), data);
            }
            Output::Event(_) => {}
            Output::Timeout(_) => return,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let listen = SocketAddr::from(([127, 0, 0, 1], 15000));
    let mut cfg = Config::new("LoopbackRing", listen, 1);
    cfg.bootstrap = vec!["brunet.udp://127.0.0.1:15001".parse().expect("TA")];
    let me: Address = "brunet:node:H3US32RQ7LDDQ464ZJKMP2VWX6LANY5O".parse().expect("address");
    let mut now = Time::ZERO;
    let mut node = Node::new(cfg, me, now);
    drain(&mut node);
    let mut rest = data;
    while rest.len() >= 3 {
        let ctl = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let (dgram, tail) = rest[3..].split_at(len);
        rest = tail;
        if ctl & 0x80 != 0 {
            now = now + Duration::from_secs(u64::from((ctl >> 3) & 15));
            node.handle_input(now, Input::Timeout);
            drain(&mut node);
        }
        let from = SocketAddr::from(([127, 0, 0, 1], 15000 + u16::from(ctl & 7)));
        node.handle_input(now, Input::Datagram { from, data: dgram });
        drain(&mut node);
    }
});
