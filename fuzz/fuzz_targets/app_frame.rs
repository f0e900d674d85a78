//! What reaches the services from outside the daemon: app socket frames (from a local app) and
//! service datagrams and broadcasts (from ring members). Any bytes give an error or a value;
//! a decoded frame encodes to bytes that decode to the same frame (a reset's reason is read
//! lossily as UTF-8, so its bytes may change once).
#![no_main]

use brunet_compat::address::Address;
use chamber::api::frame::{Ev, Frame, Op};
use chamber::services::signed::{open_broadcast, split_service};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = Frame::decode(data) {
        let bytes = f.encode();
        let again = Frame::decode(&bytes[4..]).expect("an encoded frame decodes");
        assert_eq!(again, f, "a frame survives encoding");
        let _ = f.header::<Op>();
        let _ = f.header::<Ev>();
    }
    let _ = split_service(data);
    let _ = open_broadcast(&Address::from_bytes([0; 20]), data);
});
