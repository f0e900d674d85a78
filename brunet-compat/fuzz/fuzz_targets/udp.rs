//! UDP edge framing and control messages: never panic, re-encode exactly.
#![no_main]

use brunet_compat::wire::udp::UdpDatagram;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(datagram) = UdpDatagram::parse(data) else {
        return;
    };
    let mut out = Vec::new();
    match &datagram {
        UdpDatagram::HeaderOnly(h) => h.emit(&mut out),
        UdpDatagram::Data(h, payload) => {
            h.emit(&mut out);
            out.extend_from_slice(payload);
        }
        UdpDatagram::Control(h, control) => {
            h.emit(&mut out);
            control.emit(&mut out).expect("decoded control re-encodes");
        }
    }
    assert_eq!(out, data);
});
