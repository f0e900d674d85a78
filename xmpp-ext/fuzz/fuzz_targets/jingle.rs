//! Jingle: bytes → XML → `Jingle`; whatever parses must round-trip through its XML text (the
//! form that travels over the ring).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_ext::jingle::Jingle;

fuzz_target!(|data: &[u8]| {
    let Ok(j) = Jingle::from_xml(data) else {
        return;
    };
    let text = j.to_xml().expect("a parsed jingle serialises");
    let el = minidom::Element::from_reader(text.as_bytes()).expect("our XML parses");
    assert_eq!(Jingle::from_element(&el).as_ref(), Ok(&j));
    if let Some(r) = j.content.as_ref().and_then(|c| c.record.as_ref()) {
        let _ = r.verify();
    }
});
