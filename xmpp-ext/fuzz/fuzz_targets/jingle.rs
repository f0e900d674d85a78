//! Jingle: bytes → XML → `Jingle`; whatever parses must serialise, and its XML text (the form
//! that travels over the ring) must round-trip exactly from the first re-parse on.
//!
//! Not from the first parse itself: JIDs are normalised when parsed, and the `jid` crate's
//! normalisation is not idempotent for some compatibility characters (fuzz finding, session 6:
//! U+1D32 in a domain becomes 'Ǝ' on the first parse and 'ǝ' on the next). A JID that changes
//! once and then stays is harmless here; one that kept changing, or a panic, is not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_ext::jingle::Jingle;

fn reparse(j: &Jingle) -> Jingle {
    let text = j.to_xml().expect("a parsed jingle serialises");
    let el = minidom::Element::from_reader(text.as_bytes()).expect("our XML parses");
    Jingle::from_element(&el).expect("our XML is a jingle")
}

fuzz_target!(|data: &[u8]| {
    let Ok(j) = Jingle::from_xml(data) else {
        return;
    };
    let once = reparse(&j);
    assert_eq!(reparse(&once), once);
    if let Some(r) = j.content.as_ref().and_then(|c| c.record.as_ref()) {
        let _ = r.verify();
    }
});
