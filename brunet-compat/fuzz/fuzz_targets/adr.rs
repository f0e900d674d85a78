//! ADR decoding: never panics; what decodes re-encodes to the bytes it came from.
#![no_main]

use brunet_compat::wire::adr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((value, used)) = adr::parse(data) {
        let bytes = value.to_bytes().expect("decoded values re-encode");
        assert_eq!(bytes, &data[..used]);
        assert_eq!(value.buffer_len(), used);
    }
});
