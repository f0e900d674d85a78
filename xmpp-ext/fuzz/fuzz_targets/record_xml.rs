//! Node record, XML form: bytes → XML → `NodeRecord`; the XML and binary forms of whatever
//! parses must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_ext::record::NodeRecord;
use xmpp_ext::xml;

fuzz_target!(|data: &[u8]| {
    let Ok(r) = NodeRecord::from_xml(data) else {
        return;
    };
    let text = xml::to_string(&r.to_element()).expect("a parsed record serialises");
    assert_eq!(NodeRecord::from_xml(text.as_bytes()).as_ref(), Ok(&r));
    assert_eq!(NodeRecord::from_bytes(&r.to_bytes()).as_ref(), Ok(&r));
    let _ = r.verify();
});
