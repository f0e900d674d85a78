//! Transport addresses and node addresses from text: never panic; parse then format is
//! the identity.
#![no_main]

use brunet_compat::address::Address;
use brunet_compat::wire::ta::TransportAddress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ta) = s.parse::<TransportAddress>() {
        assert_eq!(ta.to_string(), s);
    }
    if let Ok(a) = s.parse::<Address>() {
        assert_eq!(a.to_string().parse::<Address>(), Ok(a));
    }
});
