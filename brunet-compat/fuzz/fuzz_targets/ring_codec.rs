//! Ring messages in Brunet's formats: never panic; whatever decodes re-encodes to bytes
//! that decode to the same message (compared as bytes: a status may carry NaN).
#![no_main]

use brunet_compat::ring::codec::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode(data) {
        let bytes = encode(&msg);
        let again = decode(&bytes).expect("an encoded message decodes");
        assert_eq!(encode(&again), bytes);
    }
});
