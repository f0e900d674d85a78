//! A node's keys answer: bytes → XML → `NodeKeys`; whatever parses must survive a round trip
//! and a verification attempt without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_ext::node_keys::NodeKeys;
use xmpp_ext::xml;

fuzz_target!(|data: &[u8]| {
    let Ok(k) = NodeKeys::from_xml(data) else {
        return;
    };
    let text = xml::to_string(&k.to_element()).expect("parsed keys serialise");
    assert_eq!(NodeKeys::from_xml(text.as_bytes()).as_ref(), Ok(&k));
    let jid: jid::BareJid = "bob@example.net".parse().expect("literal JID");
    let _ = k.verify(&jid);
});
