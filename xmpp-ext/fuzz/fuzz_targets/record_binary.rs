//! Node record, binary form: whatever parses must re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_ext::record::NodeRecord;

fuzz_target!(|data: &[u8]| {
    let Ok(r) = NodeRecord::from_bytes(data) else {
        return;
    };
    assert_eq!(&r.to_bytes()[..], data);
    assert_eq!(NodeRecord::from_element(&r.to_element()).as_ref(), Ok(&r));
    let _ = r.verify();
});
