//! Ring invite: bytes → XML → `Invite`; whatever parses must round-trip, and opening it with the
//! key the seed corpus was sealed to must fail cleanly or succeed, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_ext::invite::Invite;
use xmpp_ext::{NodeSecret, xml};

/// The recipient key of the seed corpus (see `examples/fuzz_seeds.rs`).
const RECIPIENT: [u8; 64] = [7; 64];

fuzz_target!(|data: &[u8]| {
    let Ok(i) = Invite::from_xml(data) else {
        return;
    };
    let text = xml::to_string(&i.to_element()).expect("a parsed invite serialises");
    assert_eq!(Invite::from_xml(text.as_bytes()).as_ref(), Ok(&i));
    let jid: jid::BareJid = "alice@example.org".parse().expect("literal JID");
    let _ = i.open(&NodeSecret::from_bytes(&RECIPIENT), &jid);
});
