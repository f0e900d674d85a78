//! A whole datagram through every layer: never panics, re-encodes exactly.
#![no_main]

use brunet_compat::wire::Packet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::parse(data) {
        assert_eq!(packet.to_bytes().expect("decoded packets re-encode"), data);
    }
});
