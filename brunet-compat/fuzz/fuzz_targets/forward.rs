//! Forwarding header: never panics; parse then emit gives the header bytes back.
#![no_main]

use brunet_compat::wire::forward::ForwardRepr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((repr, inner)) = ForwardRepr::parse(data) {
        let mut out = Vec::new();
        repr.emit(&mut out);
        out.extend_from_slice(inner);
        assert_eq!(out, data);
        assert_eq!(repr.buffer_len(), data.len() - inner.len());
    }
});
