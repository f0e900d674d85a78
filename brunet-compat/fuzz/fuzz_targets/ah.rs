//! AH header view and repr: never panic; parse then emit gives the header bytes back.
#![no_main]

use brunet_compat::wire::ah::{AhPacket, AhRepr, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = AhPacket::new_checked(data) {
        let repr = AhRepr::parse(&packet);
        let mut out = Vec::new();
        repr.emit(&mut out);
        assert_eq!(out, &data[..HEADER_LEN]);
        assert_eq!(packet.payload(), &data[HEADER_LEN..]);
    }
});
