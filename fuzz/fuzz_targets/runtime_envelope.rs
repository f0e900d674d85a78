//! The runtime's own ring datagrams (signalling requests and answers, pings): any bytes a ring
//! member sends must decode to an error or an envelope that encodes back to the same bytes.
#![no_main]

use chamber::runtime::envelope::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = Envelope::decode(data) {
        let again = Envelope::decode(&e.encode()).expect("an encoded envelope decodes");
        assert_eq!(again, e);
    }
});
