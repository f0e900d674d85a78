//! Ring announce: bytes → XML → `Announce`; whatever parses must survive a round trip and a
//! verification attempt without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_ext::announce::Announce;
use xmpp_ext::xml;

fuzz_target!(|data: &[u8]| {
    let Ok(a) = Announce::from_xml(data) else {
        return;
    };
    let text = xml::to_string(&a.to_element()).expect("a parsed announce serialises");
    let b = Announce::from_xml(text.as_bytes()).expect("a serialised announce parses");
    assert_eq!(a, b);
    let jid: jid::BareJid = "alice@example.org".parse().expect("literal JID");
    let _ = a.verify(&jid);
});
