//! XEP-0215 answers: bytes → XML → `Vec<ExternalService>`; whatever parses must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_ext::extdisco;

fuzz_target!(|data: &[u8]| {
    let Ok(services) = extdisco::parse_response_xml(data) else {
        return;
    };
    let el = extdisco::services_response(&services);
    assert_eq!(extdisco::parse_response(&el).as_ref(), Ok(&services));
    for s in &services {
        let _ = (s.port_or_default(), s.expires_unix());
    }
});
